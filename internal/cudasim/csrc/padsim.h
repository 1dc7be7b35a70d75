// padsim.h: the contract between the pieces of pad's simulated NVIDIA stack
// (cudasim). Every simulated library is built from the sources in this
// folder by internal/cudasim (Go) with the system's C++ compiler:
//
//	libcuda.so.1     driver.cpp      the CUDA driver API, the device, its
//	                                 memory, streams, events, capture and
//	                                 graphs, modules and launches; the
//	                                 runtime services below
//	libnvrtc.so.13   nvrtc.cpp       compiles CUDA C++ (the text pad sends)
//	                                 with the host C++ compiler around emu.h
//	                                 into a module image (below)
//	libcudnn.so.9    cudnn.cpp       the legacy convolution API, in double
//	libcudnn.so.8    cudnn.cpp       the same, built as cuDNN 8
//	libcublas.so.13  cublas.cpp      handles, SGEMM (plain and strided batched)
//
// cuDNN and cuBLAS link against libcuda.so.1 (DT_NEEDED, RUNPATH $ORIGIN)
// and reach the simulated device only through the padsim_* functions that
// libcuda.so.1 exports; NVRTC needs no driver. All other symbols are
// hidden (-fvisibility=hidden): each library exports exactly the NVIDIA
// API it simulates plus the padsim_* names declared here.
//
// Nothing here is part of a pad release or its container image.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PADSIM_EXPORT __attribute__((visibility("default")))

// ---- Versions the simulated libraries report --------------------------------
#define PADSIM_DRIVER_VERSION 13000  // cuDriverGetVersion: CUDA 13.0
#define PADSIM_NVRTC_MAJOR 13
#define PADSIM_NVRTC_MINOR 0
#define PADSIM_CUBLAS_VERSION 130100  // cublasGetVersion: 13.1.0
#define PADSIM_DEVICE_NAME "pad cudasim simulated GPU (sm_90, not hardware)"

// ---- Module images (nvrtcGetCUBIN -> cuModuleLoadData) ----------------------
//
// An image is
//	bytes 0..15   PADSIM_IMAGE_MAGIC (16 bytes, no terminator)
//	u32           header length H (little-endian)
//	H bytes       header: "key=value\n" lines: arch=sm_90, fmad=0|1,
//	              program=<name given to nvrtcCreateProgram>,
//	              kernels=<comma-separated names>
//	u64           shared-object length S
//	S bytes       an ELF shared object built from the program; it exports
//	              padsim_module_v1 (below) and nothing else
//
// nvrtcGetPTX returns text that begins with PADSIM_PTX_MAGIC followed by
// one ".visible .entry NAME(...)" line per kernel listing its parameters
// as PTX does (.param .u64 / .u32 / .f32 / .f64 / .align A .b8 NAME[S]) and
// then the image, hex-encoded, on a line that starts with "// image ".
// cuModuleLoadData accepts either form; anything else is
// CUDA_ERROR_INVALID_IMAGE.
#define PADSIM_IMAGE_MAGIC "PADSIM-CUBIN-01\n"
#define PADSIM_PTX_MAGIC "// padsim PTX 1\n"

// ---- The module ABI: what a compiled program's shared object exports --------

typedef struct padsim_param {
    uint32_t size;        // bytes of the parameter (as the kernel declares it)
    uint32_t align;       // its alignment
    uint32_t is_pointer;  // 1: a pointer (device address); 0: a value
    uint32_t pointee;     // for pointers: sizeof the pointee (alignment check); else 0
} padsim_param;

// Engines (emu.h): fibers is deterministic (one OS thread, round robin at
// barriers) and the default on x86-64; threads runs one OS thread per CUDA
// thread of a block.
enum { PADSIM_ENGINE_FIBERS = 0, PADSIM_ENGINE_THREADS = 1 };

typedef struct padsim_kernel {
    const char* name;
    uint32_t nparams;
    const padsim_param* params;
    uint32_t static_smem;  // bytes of __shared__ arrays the source declares (an upper bound)
    // run runs the whole grid. args[i] points at parameter i's bytes, laid
    // out as the kernel declares it (exactly what cuLaunchKernel's
    // kernelParams[i] points at). order_seed 0 runs blocks in order, else in
    // a permutation drawn from it. dyn_smem bytes of dynamic shared memory
    // (extern __shared__) are provided, zero-filled is NOT guaranteed (the
    // simulation fills it with a NaN pattern). Returns 0, or 1 with a
    // message in err (divergent barrier, deadlock, an unsupported call).
    int (*run)(const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_smem, void* const* args,
               uint32_t order_seed, int engine, char* err, size_t errlen);
} padsim_kernel;

typedef struct padsim_module {
    uint32_t abi;  // PADSIM_MODULE_ABI
    uint32_t nkernels;
    const padsim_kernel* kernels;
} padsim_module;

#define PADSIM_MODULE_ABI 1
typedef const padsim_module* (*padsim_module_fn)(void);
// extern "C" const padsim_module* padsim_module_v1(void);  (in every image's shared object)

// ---- Runtime services of libcuda.so.1 (for cudnn.cpp and cublas.cpp) --------
//
// Return values are CUresult codes (0 = CUDA_SUCCESS).

// padsim_check_range checks that [p, p+bytes) lies inside one live device
// allocation (bytes may be 0: p must then lie in or at the end of one). On
// failure it returns CUDA_ERROR_INVALID_VALUE and writes into msg a
// sentence naming what (e.g. "cudnnConvolutionForward: x"), the address,
// the size and the nearest allocation.
PADSIM_EXPORT int padsim_check_range(uint64_t p, uint64_t bytes, const char* what, char* msg, size_t msglen);

// padsim_enqueue queues fn(arg) on stream s (0: the legacy default stream)
// as one operation of kind PADSIM_OP_* named what; free_fn(arg) (may be
// NULL) runs when the operation can never run again (after it ran on a
// stream, or when the graph holding it is destroyed). While s is being
// captured the operation becomes a node of the graph and runs at every
// replay with the memory contents of that time. reads/writes list the
// device ranges the operation touches (pairs of address, bytes; n of each),
// checked when it is queued and again when it runs. fn returns 0, or a
// CUresult that becomes the context's sticky error, with the message it
// wrote into its msg argument. Returns a CUresult (capture rules, a
// destroyed stream, a sticky error).
enum { PADSIM_OP_KERNEL = 1, PADSIM_OP_DNN = 2, PADSIM_OP_BLAS = 3 };
typedef int (*padsim_op_fn)(void* arg, char* msg, size_t msglen);
PADSIM_EXPORT int padsim_enqueue(uint64_t stream, int kind, const char* what, padsim_op_fn fn, void* arg,
                                 void (*free_fn)(void*), const uint64_t* ranges, int nranges);

// padsim_fault reports whether the fault named by key fires now, consuming
// one count of it (see PAD_CUDASIM_FAULT below), e.g.
// padsim_fault("dnn_unsupported", "fwd:1"). detail narrows the key.
PADSIM_EXPORT int padsim_fault(const char* key, const char* detail);

// padsim_set_faults replaces the faults of PAD_CUDASIM_FAULT with spec (same
// syntax; NULL or "" clears them), their counts starting afresh. Tests use it
// to fail one call of a running process.
PADSIM_EXPORT void padsim_set_faults(const char* spec);

// padsim_faults_generation counts the calls of padsim_set_faults, so that
// a library that remembers a fault's effect (cuDNN's unsupported
// algorithms) forgets it when the faults change.
PADSIM_EXPORT uint64_t padsim_faults_generation(void);

// padsim_count adds n to the named counter (one of the names below).
PADSIM_EXPORT void padsim_count(const char* counter, uint64_t n);

// ---- Counters and messages (for pad: pad bench and pad doctor show them) ---
//
// Counters since the context was created or last reset: kernel_launches,
// dnn_calls, blas_calls, graph_launches, graph_nodes, host_syncs (a host
// thread blocked on device work: a stream or event synchronise whose work
// had not all run yet, a context synchronise, a blocking copy or memset), allocs, frees, host_allocs, htod_copies,
// htod_bytes, dtoh_copies, dtoh_bytes, dtod_copies, dtod_bytes, memsets,
// pageable_async_copies (an *Async copy whose host side is not pinned),
// captures, events_recorded, stream_waits.
PADSIM_EXPORT int padsim_counter_count(void);
PADSIM_EXPORT const char* padsim_counter_name(int i);
PADSIM_EXPORT uint64_t padsim_counter_value(int i);
PADSIM_EXPORT void padsim_counters_reset(void);

// padsim_last_message returns the text behind the last error the
// simulation reported (what, where, why), or "". Sticky errors also print
// it once to stderr, prefixed "cudasim: ".
PADSIM_EXPORT const char* padsim_last_message(void);

// ---- Environment --------------------------------------------------------------
//
// PAD_CUDASIM_SCHEDULE   lazy (default): queued work runs only when something
//                        forces it (a synchronise, an event the host waits on,
//                        an event another stream waits on when that stream is
//                        forced, a blocking copy, cuMemFree), as late as
//                        possible; eager: at once; random:SEED: forced work
//                        plus, at each API call, a seeded random choice of
//                        other ready streams advanced in a random legal order.
// PAD_CUDASIM_FAULT      comma-separated faults, each key[=detail][@N] (N: the
//                        N-th occasion, 1-based; default 1):
//                          oom@N             the N-th cuMemAlloc fails (OUT_OF_MEMORY)
//                          launch@N          the N-th kernel launch fails when it runs
//                                            (sticky CUDA_ERROR_LAUNCH_FAILED)
//                          capture@N         the N-th cuStreamEndCapture fails
//                                            (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)
//                          lost@N            from the N-th launch on, every call fails
//                                            (CUDA_ERROR_DEVICE_UNAVAILABLE)
//                          dnn_unsupported=OP:ALGO  that algorithm of OP (fwd, bwd_data,
//                                            bwd_filter) is NOT_SUPPORTED
//                          dnn_wrong=OP      every OP convolution computes a wrong result
//                                            (every output element 1 % too large)
//                          fail=FUNCTION@N   the N-th call of that exported function of
//                                            the driver, NVRTC, cuDNN or cuBLAS fails
//                                            before doing anything (CUDA_ERROR_UNKNOWN,
//                                            NVRTC_ERROR_INTERNAL_ERROR or the library's
//                                            INTERNAL_ERROR); fail@N: the N-th call of
//                                            any of them (error names and strings,
//                                            versions of cuDNN and padsim_* excepted)
// PAD_CUDASIM_ENGINE     fibers | threads (emu.h engine for kernels)
// PAD_CUDASIM_CACHE      the folder NVRTC keeps compiled programs in (default:
//                        the folder of libnvrtc.so.13 + "/cache")
// PAD_CUDASIM_CXX        the C++ compiler NVRTC runs (default: g++, then c++)
// PAD_CUDASIM_QUIET=1    no "cudasim:" lines on stderr
// PAD_CUDASIM_PLAIN=0    run barrier-free kernels on fibers too (by default NVRTC's
//                        scan runs a kernel that reaches no barrier, shuffle or vote
//                        as plain calls, one CUDA thread after another)
// PAD_CUDASIM_THREADS    threads the simulated cuDNN and cuBLAS compute with
//                        (default: the cores; results do not depend on it)
// PAD_CUDASIM_KEEP_TMP=1 NVRTC keeps each compile's folder (for debugging)
// NVIDIA_TF32_OVERRIDE=0 no TF32 rounding in cuDNN or cuBLAS, as NVIDIA's libraries

#ifdef __cplusplus
}
#endif
