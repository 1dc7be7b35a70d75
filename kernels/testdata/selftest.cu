// Kernels that check the simulated GPU's emulation of CUDA
// (internal/cudasim/csrc/emu.h) against CUDA's rules
// (gpu_semantics_test.go compiles them like Load compiles pad's families).
// Not part of pad.

// out[t] = the value __shfl_down_sync gives thread t when every thread
// offers its own index.
extern "C" __global__ void emu_shfl_down(int* out, unsigned delta, int width) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    out[t] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, delta, width);
}

// Shared memory is one array per block: out[t] = s[n − 1 − t] after every
// thread wrote s[t] = t + 1000·block.
extern "C" __global__ void emu_shared_reverse(int* out) {
    __shared__ int s[1024];
    int t = threadIdx.x, n = blockDim.x;
    s[t] = t + 1000 * (int)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * n + t] = s[n - 1 - t];
}

// Threads 0..31 return early; the others then wait at a __syncthreads: a
// barrier not every thread reaches (undefined behaviour in CUDA).
extern "C" __global__ void emu_divergent_sync(int* out) {
    if (threadIdx.x < 32) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

// Lanes 0..15 of warp 0 shuffle while everyone else waits at
// __syncthreads: no barrier can complete.
extern "C" __global__ void emu_deadlock(int* out) {
    if (threadIdx.x < 16) {
        out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1, 1);
    } else {
        __syncthreads();
    }
}

// Writes one value past the end of out[0..n).
extern "C" __global__ void emu_write_past(int* out, int n) {
    if (threadIdx.x == 0) out[n] = 1;
}
