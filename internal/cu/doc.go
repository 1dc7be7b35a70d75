// Package cu is pad's thin run-time binding of the NVIDIA libraries the CUDA
// backend needs: the CUDA driver API, NVRTC (the runtime compiler), cuBLAS
// and cuDNN. The rest of pad never calls NVIDIA libraries except through
// this package.
//
// # No cgo: the libraries are loaded at run time
//
// The libraries are opened with dlopen (through github.com/ebitengine/purego)
// when first used, so pad builds with CGO_ENABLED=0, needs no CUDA headers or
// toolkit to compile, vets and tests its GPU code on machines without a GPU,
// and one static binary runs on any machine with a driver. The sonames
// tried, newest first:
//
//	driver  libcuda.so.1                                      (drivers from CUDA 11.8 on)
//	NVRTC   libnvrtc.so.13,  libnvrtc.so.12,  libnvrtc.so.11.2 (CUDA 11.2 to 11.8)
//	cuBLAS  libcublas.so.13, libcublas.so.12, libcublas.so.11
//	cuDNN   libcudnn.so.9,   libcudnn.so.8
//
// They are searched for where NVIDIA's libraries are on real machines, in
// order: the folders named by $PAD_CUDA_LIB_DIR, $CUDA_HOME or $CUDA_PATH,
// the active virtualenv's and python3's pip wheels
// (site-packages/nvidia/*/lib), $CONDA_PREFIX/lib, the toolkits under
// /usr/local (cuda, then cuda-X.Y newest first), and last the dynamic
// loader's own path. The driver is looked for in $PAD_CUDA_LIB_DIR and on
// the loader's path only. A library loaded from a folder off the loader's
// path gets the libraries it opens by bare name opened first from the same
// folder (NVRTC's builtins, cuBLASLt, cuDNN's sub-libraries), or NVRTC
// would fail every compile. Libraries reports, for each library, the file
// and the place it came from, or where pad looked.
//
// A missing library yields a *LoadError whose text is one sentence saying
// what is missing and what to install; a missing driver matches ErrNoDriver
// and a driver without a usable device (cuInit fails) matches ErrNoDevice,
// which is how `--device auto` decides to fall back to the CPU. Loading is
// done once per library; later calls return the same error.
//
// Every C signature is declared as the headers of CUDA 13.0, cuDNN 9 and
// cuBLAS 13 declare it (the same as in CUDA 11.8, cuDNN 8 and cuBLAS 11 for
// every function bound here), binding the versioned symbols the headers map the
// API names to (cuMemAlloc_v2, cuMemcpyHtoDAsync_v2, cuStreamBeginCapture_v2,
// cuDevicePrimaryCtxRelease_v2, cublasCreate_v2, cublasSgemm_v2, ...). The
// context is the device's primary context (cuDevicePrimaryCtxRetain and
// cuCtxSetCurrent), the context cuBLAS and cuDNN use too; cuCtxCreate is
// avoided because its signature changed in CUDA 13. Graphs are instantiated
// with cuGraphInstantiateWithFlags. cuDNN is used through its legacy
// convolution API (cudnnConvolutionForward, cudnnFindConvolution*AlgorithmEx,
// cudnnGetConvolution*Algorithm_v7, ...), deprecated in cuDNN 9 but still
// exported by libcudnn.so.9, which forwards to libcudnn_cnn.so.9.
//
// Every call's status is checked. A failure is an *Error naming the C call
// with its sizes or shapes and the status, e.g.
//
//	cuMemAlloc_v2(268435456 bytes): CUDA_ERROR_OUT_OF_MEMORY (out of memory)
//
// # Threading: one goroutine, locked to its OS thread
//
// A CUDA context is current per OS thread, and Go moves goroutines between
// threads. Run all device work on one goroutine that has called
// runtime.LockOSThread, and make the context current on it before the first
// call:
//
//	runtime.LockOSThread()
//	defer runtime.UnlockOSThread()
//	dev, err := cu.DeviceGet(0)
//	ctx, err := dev.RetainPrimaryContext()
//	err = ctx.SetCurrent()
//
// cuBLAS and cuDNN handles (BLAS, DNN) and KernelArgs blocks belong to that
// goroutine too. Other goroutines may prepare data in pinned host memory
// (MemHostAlloc) and hand it over.
//
// # Allocation-free calls
//
// The calls used in a training step (LaunchKernelArgs, the *Async copies,
// MemsetD32Async, GraphLaunch, Event.Record, Stream.WaitEvent, BLAS.Sgemm,
// BLAS.SgemmStridedBatched, DNN.ConvForward and the other convolution
// calls) allocate no Go memory: arguments travel through a pooled buffer,
// and alpha/beta live in the handle. LaunchKernel, with its variadic
// pointers, allocates; use it for setup and tests.
//
// # Why not gorgonia.org/cu
//
// gorgonia.org/cu v0.9.6, the newest release, does not compile against CUDA
// 13.0 headers (cuCtxCreate takes a CUctxCreateParams*; cuMemAdvise,
// cuMemPrefetchAsync, cuGraphAddDependencies and cuGraphGetEdges changed
// signature), and its dnn package does not compile against cuDNN 9.14 (the
// algorithm-descriptor and algorithm-performance APIs were removed). It also
// needs cgo and the headers at build time. CUDA 13 and cuDNN 9 are what
// current machines and containers ship (see docs/gpu-notes.md in the
// project's shared folder).
package cu
