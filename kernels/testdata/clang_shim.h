// clang_shim.h: declarations of the CUDA built-ins pad's kernels use, for a
// syntax-only pass of clang's CUDA front end without a CUDA installation
// (-nocudainc -nocudalib). NVRTC declares all of these itself; here they
// only need to exist with CUDA's signatures, so that clang checks the
// kernels' types, overload resolution and host/device calls.
#pragma once

#define __host__ __attribute__((host))
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))

// threadIdx, blockIdx, blockDim, gridDim (part of clang, not of CUDA).
#include <__clang_cuda_builtin_vars.h>

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
struct __align__(16) uint4 {
    unsigned int x, y, z, w;
};

__device__ uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w);
__device__ unsigned int __umulhi(unsigned int a, unsigned int b);
__device__ void __syncthreads();

__device__ int __shfl_down_sync(unsigned int mask, int var, unsigned int delta, int width = 32);
__device__ unsigned int __shfl_down_sync(unsigned int mask, unsigned int var, unsigned int delta, int width = 32);
__device__ long long __shfl_down_sync(unsigned int mask, long long var, unsigned int delta, int width = 32);
__device__ unsigned long long __shfl_down_sync(unsigned int mask, unsigned long long var, unsigned int delta, int width = 32);
__device__ float __shfl_down_sync(unsigned int mask, float var, unsigned int delta, int width = 32);
__device__ double __shfl_down_sync(unsigned int mask, double var, unsigned int delta, int width = 32);

// CUDA's integer min/max overloads (crt/math_functions.hpp), mixed
// signedness converting to unsigned.
__device__ int min(int a, int b);
__device__ unsigned int min(unsigned int a, unsigned int b);
__device__ unsigned int min(int a, unsigned int b);
__device__ unsigned int min(unsigned int a, int b);
__device__ long long min(long long a, long long b);
__device__ unsigned long long min(unsigned long long a, unsigned long long b);
__device__ float min(float a, float b);
__device__ double min(double a, double b);
__device__ int max(int a, int b);
__device__ unsigned int max(unsigned int a, unsigned int b);
__device__ unsigned int max(int a, unsigned int b);
__device__ unsigned int max(unsigned int a, int b);
__device__ long long max(long long a, long long b);
__device__ unsigned long long max(unsigned long long a, unsigned long long b);
__device__ float max(float a, float b);
__device__ double max(double a, double b);

__device__ float sqrtf(float x);
__device__ float expf(float x);
__device__ float logf(float x);
__device__ float tanhf(float x);
__device__ float fmaxf(float a, float b);
__device__ float fminf(float a, float b);
__device__ void sincosf(float x, float* s, float* c);
__device__ double sqrt(double x);
__device__ double exp(double x);
__device__ double log(double x);
__device__ double tanh(double x);
__device__ double fmax(double a, double b);
__device__ double fmin(double a, double b);
__device__ void sincos(double x, double* s, double* c);
