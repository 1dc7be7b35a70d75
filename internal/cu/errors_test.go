package cu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    *Error
		want string
	}{
		{&Error{Call: "cuMemAlloc_v2(268435456 bytes)", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Message: "out of memory"},
			"cuMemAlloc_v2(268435456 bytes): CUDA_ERROR_OUT_OF_MEMORY (out of memory)"},
		{&Error{Call: "cublasSgemm_v2(NN m=3 n=4 k=5 lda=1 ldb=5 ldc=3)", Code: 7, Name: "CUBLAS_STATUS_INVALID_VALUE"},
			"cublasSgemm_v2(NN m=3 n=4 k=5 lda=1 ldb=5 ldc=3): CUBLAS_STATUS_INVALID_VALUE"},
		{&Error{Call: "cuFoo", Code: 12345},
			"cuFoo: status 12345"},
		{&Error{Call: `nvrtcCompileProgram(k.cu, "--gpu-architecture=sm_90")`, Code: 6, Name: "NVRTC_ERROR_COMPILATION",
			Message: "k.cu(3): error: identifier \"y\" is undefined\n\n1 error detected in the compilation of \"k.cu\".\n"},
			"nvrtcCompileProgram(k.cu, \"--gpu-architecture=sm_90\"): NVRTC_ERROR_COMPILATION:\n" +
				"k.cu(3): error: identifier \"y\" is undefined\n\n1 error detected in the compilation of \"k.cu\"."},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestErrorWrapping(t *testing.T) {
	base := &Error{Call: "cuInit(0)", Code: 100, Name: "CUDA_ERROR_NO_DEVICE", kind: ErrNoDevice}
	wrapped := fmt.Errorf("backend: %w", base)
	var e *Error
	if !errors.As(wrapped, &e) || e.Code != 100 {
		t.Fatalf("errors.As failed on %v", wrapped)
	}
	if !errors.Is(wrapped, ErrNoDevice) {
		t.Errorf("cuInit error does not match ErrNoDevice")
	}
	if errors.Is(&Error{Call: "x", Code: 1}, ErrNoDevice) {
		t.Errorf("plain error matches ErrNoDevice")
	}
}

// The error constructors name statuses with the loaded library when there
// is one and with the tables otherwise; both must give the header names.
func TestDriverErrorNames(t *testing.T) {
	e := driverError(2, "cuMemAlloc_v2(%d bytes)", 268435456)
	if got, want := e.Error(), "cuMemAlloc_v2(268435456 bytes): CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if e := driverError(100, "cuInit(0)"); e.Name != "CUDA_ERROR_NO_DEVICE" || e.Code != 100 {
		t.Errorf("got %+v", e)
	}
	if e := driverError(500, "cuModuleGetFunction(%q)", "nope"); e.Name != "CUDA_ERROR_NOT_FOUND" ||
		!strings.HasPrefix(e.Error(), `cuModuleGetFunction("nope"): CUDA_ERROR_NOT_FOUND`) {
		t.Errorf("got %q", e.Error())
	}
	if e := driverError(424242, "cuX"); e.Name == "" || !strings.Contains(e.Error(), "cuX: ") {
		t.Errorf("unknown code: %q", e.Error())
	}
}

func TestLibraryErrorNames(t *testing.T) {
	if e := blasError(7, "cublasSgemm_v2(%s)", "NN"); e.Name != "CUBLAS_STATUS_INVALID_VALUE" || e.Code != 7 ||
		!strings.HasPrefix(e.Error(), "cublasSgemm_v2(NN): CUBLAS_STATUS_INVALID_VALUE (") {
		t.Errorf("cuBLAS: %q", e.Error())
	}
	if e := blasError(15, "x"); e.Name != "CUBLAS_STATUS_NOT_SUPPORTED" {
		t.Errorf("cuBLAS 15: %q", e.Name)
	}
	if e := nvrtcError(6, "nvrtcCompileProgram(%s)", "k.cu"); e.Name != "NVRTC_ERROR_COMPILATION" {
		t.Errorf("NVRTC: %q", e.Error())
	}
	if LoadDNN() != nil { // the table is used only without cuDNN
		if e := dnnError(2000, "cudnnSetTensor4dDescriptor(%s)", "x"); e.Error() != "cudnnSetTensor4dDescriptor(x): CUDNN_STATUS_BAD_PARAM" {
			t.Errorf("cuDNN: %q", e.Error())
		}
	}
	if n := dnnStatusName(0); n != "CUDNN_STATUS_SUCCESS" {
		t.Errorf("cuDNN success: %q", n)
	}
}

// The constants are the values of the headers (cuda.h of CUDA 11.6 to 13.0,
// cublas_api.h, cudnn_graph.h/cudnn_ops.h of cuDNN 9.6, nvrtc.h).
func TestHeaderValues(t *testing.T) {
	checks := []struct {
		name      string
		got, want int
	}{
		{"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR", int(AttrComputeCapabilityMajor), 75},
		{"CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR", int(AttrComputeCapabilityMinor), 76},
		{"CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT", int(AttrMultiprocessorCount), 16},
		{"CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN", int(AttrMaxSharedMemoryPerBlockOptin), 97},
		{"CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES", int(FuncMaxDynamicSharedSizeBytes), 8},
		{"CU_MEMHOSTALLOC_PORTABLE", int(HostAllocPortable), 1},
		{"CU_MEMHOSTALLOC_DEVICEMAP", int(HostAllocDeviceMap), 2},
		{"CU_MEMHOSTALLOC_WRITECOMBINED", int(HostAllocWriteCombined), 4},
		{"CU_STREAM_NON_BLOCKING", int(StreamNonBlocking), 1},
		{"CU_EVENT_DISABLE_TIMING", int(EventDisableTiming), 2},
		{"CU_STREAM_CAPTURE_MODE_GLOBAL", int(CaptureModeGlobal), 0},
		{"CU_STREAM_CAPTURE_MODE_THREAD_LOCAL", int(CaptureModeThreadLocal), 1},
		{"CU_STREAM_CAPTURE_MODE_RELAXED", int(CaptureModeRelaxed), 2},
		{"CU_STREAM_CAPTURE_STATUS_ACTIVE", int(CaptureStatusActive), 1},
		{"CUDA_ERROR_OUT_OF_MEMORY", int(ResultOutOfMemory), 2},
		{"CUDA_ERROR_NO_DEVICE", int(ResultNoDevice), 100},
		{"CUDA_ERROR_NOT_READY", int(ResultNotReady), 600},
		{"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", int(ResultStreamCaptureUnsupported), 900},
		{"CUBLAS_DEFAULT_MATH", int(BLASDefaultMath), 0},
		{"CUBLAS_PEDANTIC_MATH", int(BLASPedanticMath), 2},
		{"CUBLAS_TF32_TENSOR_OP_MATH", int(BLASTF32TensorOpMath), 3},
		{"CUBLAS_STATUS_INVALID_VALUE", int(BLASStatusInvalidValue), 7},
		{"CUDNN_STATUS_BAD_PARAM", int(DNNStatusBadParam), 2000},
		{"CUDNN_STATUS_NOT_SUPPORTED", int(DNNStatusNotSupported), 3000},
		{"CUDNN_DATA_FLOAT", int(DataFloat), 0},
		{"CUDNN_DATA_BFLOAT16", int(DataBFloat16), 9},
		{"CUDNN_TENSOR_NHWC", int(NHWC), 1},
		{"CUDNN_CROSS_CORRELATION", int(CrossCorrelation), 1},
		{"CUDNN_FMA_MATH", int(DNNFMAMath), 3},
		{"CUDNN_TENSOR_OP_MATH", int(DNNTensorOpMath), 1},
		{"CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED", int(ConvFwdWinogradNonfused), 7},
		{"CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING", int(ConvBwdDataFFTTiling), 3},
		{"CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING", int(ConvBwdFilterFFTTiling), 6},
		{"NVRTC_ERROR_COMPILATION", int(NVRTCErrorCompilation), 6},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if ConvFwdWinograd.String() != "WINOGRAD" || ConvBwdFilterAlgo3.String() != "ALGO_3" || ConvBwdDataAlgo1.String() != "ALGO_1" {
		t.Errorf("algorithm names: %v %v %v", ConvFwdWinograd, ConvBwdFilterAlgo3, ConvBwdDataAlgo1)
	}
	if ConvFwdAlgoCount.String() != "ConvFwdAlgo(8)" {
		t.Errorf("out-of-range name: %v", ConvFwdAlgoCount)
	}
}

func TestLoadErrorText(t *testing.T) {
	e := &LoadError{Lib: "cudnn", Tried: []string{"libcudnn.so.9", "libcudnn.so.8"},
		sentence: "cudnn: libcudnn.so.9 (or .8) not found: install cuDNN 9 (...), or run with --device cpu", kind: ErrNoLibrary}
	if errors.Is(e, ErrNoDriver) || !errors.Is(e, ErrNoLibrary) {
		t.Errorf("cuDNN load error sentinels wrong")
	}
	e.Detail = "libcudnn.so.9: wrong ELF class: ELFCLASS32"
	if !strings.HasSuffix(e.Error(), "[libcudnn.so.9: wrong ELF class: ELFCLASS32]") {
		t.Errorf("detail missing: %q", e.Error())
	}
	d := &LoadError{Lib: "cuda", sentence: "cuda: x", kind: ErrNoDriver}
	if !errors.Is(d, ErrNoDriver) || !errors.Is(d, ErrNoLibrary) {
		t.Errorf("driver load error sentinels wrong")
	}
}

// FaultOf sorts the statuses of every library into the kinds pad's
// messages name, through any wrapping.
func TestFaultOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Fault
	}{
		{"CUDA_ERROR_OUT_OF_MEMORY", FaultOutOfMemory}, {"CUDNN_STATUS_ALLOC_FAILED", FaultOutOfMemory},
		{"CUBLAS_STATUS_ALLOC_FAILED", FaultOutOfMemory}, {"NVRTC_ERROR_OUT_OF_MEMORY", FaultOutOfMemory},
		{"CUDA_ERROR_LAUNCH_FAILED", FaultKernel}, {"CUDA_ERROR_ILLEGAL_ADDRESS", FaultKernel},
		{"CUDA_ERROR_DEVICE_UNAVAILABLE", FaultDeviceLost}, {"CUDA_ERROR_ECC_UNCORRECTABLE", FaultDeviceLost},
		{"CUDA_ERROR_UNKNOWN", FaultOther}, {"CUDNN_STATUS_INTERNAL_ERROR", FaultOther}, {"CUDA_ERROR_INVALID_VALUE", FaultOther},
	} {
		err := fmt.Errorf("cuda: EndGraph: %w", &Error{Call: "f", Name: tc.name})
		if got := FaultOf(err); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if FaultOf(errors.New("cuda: not a library error")) != FaultOther || FaultOf(nil) != FaultOther {
		t.Error("an error without *Error (or nil) is not FaultOther")
	}
}
