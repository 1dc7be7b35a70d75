package cu

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ErrNoDriver is matched (with errors.Is) by the error of every driver call
// when libcuda.so.1 cannot be loaded: the machine has no NVIDIA driver, or
// this is not linux/amd64 or linux/arm64. `--device auto` falls back to the
// CPU on it.
var ErrNoDriver = errors.New("cu: no NVIDIA driver")

// ErrNoDevice is matched by the error of Init (and of every driver call
// after it) when the driver loads but cuInit fails: no CUDA-capable device is
// visible, or the driver and the kernel module disagree. `--device auto`
// falls back to the CPU on it too.
var ErrNoDevice = errors.New("cu: no usable CUDA device")

// ErrNoLibrary is matched by the error of every call into a library that
// cannot be loaded: libcuda, libnvrtc, libcublas or libcudnn.
var ErrNoLibrary = errors.New("cu: CUDA library not found")

// Error is a failed CUDA, NVRTC, cuBLAS or cuDNN call.
type Error struct {
	// Call names the C function and the arguments that matter, e.g.
	// "cuMemAlloc_v2(268435456 bytes)".
	Call string
	// Code is the status the call returned (CUresult, nvrtcResult,
	// cublasStatus_t or cudnnStatus_t).
	Code int
	// Name is the status's name, e.g. "CUDA_ERROR_OUT_OF_MEMORY".
	Name string
	// Message is the library's description of the status, or for NVRTC
	// compilation errors the compiler log. It may be empty.
	Message string

	kind error // a sentinel this error also matches, or nil
}

// Error formats the error as "call: NAME (message)"; a multi-line message
// (a compiler log) follows on its own lines.
func (e *Error) Error() string {
	name := e.Name
	if name == "" {
		name = fmt.Sprintf("status %d", e.Code)
	}
	msg := strings.TrimSpace(e.Message)
	switch {
	case msg == "":
		return e.Call + ": " + name
	case strings.Contains(msg, "\n"):
		return e.Call + ": " + name + ":\n" + msg
	default:
		return e.Call + ": " + name + " (" + msg + ")"
	}
}

// Unwrap returns the sentinel (ErrNoDevice) an error of cuInit also
// matches, or nil.
func (e *Error) Unwrap() error { return e.kind }

// LoadError reports a library that could not be loaded or lacks a function
// this package needs. It matches ErrNoLibrary, and ErrNoDriver when the
// library is the driver.
type LoadError struct {
	// Lib is the short name of the library: "cuda", "nvrtc", "cublas" or
	// "cudnn".
	Lib string
	// Tried lists the names and paths handed to the dynamic loader, in
	// order.
	Tried []string
	// Searched lists the places looked in, "from: folder" (see LibInfo.From),
	// in order.
	Searched []string
	// Loaded is the file that loaded when a symbol was missing, else "".
	Loaded string
	// Missing is the symbol that was not found, else "".
	Missing string
	// Detail is the dynamic loader's message for a file that exists but did
	// not load (a missing dependency, a wrong architecture), else "".
	Detail string

	sentence string
	kind     error
}

// Error returns one sentence saying what is missing and what to install,
// followed by the loader's detail when there is one.
func (e *LoadError) Error() string {
	if e.Detail == "" {
		return e.sentence
	}
	return e.sentence + " [" + e.Detail + "]"
}

// Unwrap lets errors.Is match ErrNoLibrary, and ErrNoDriver for the driver.
func (e *LoadError) Unwrap() []error {
	if e.kind == ErrNoDriver {
		return []error{ErrNoDriver, ErrNoLibrary}
	}
	return []error{ErrNoLibrary}
}

// argError reports arguments rejected before any C call.
func argError(call, format string, args ...any) error {
	return fmt.Errorf("cu: %s: %s", call, fmt.Sprintf(format, args...))
}

// Result is a CUresult of the driver API (cuda.h). Error.Code holds one for
// driver calls; names and messages come from cuGetErrorName and
// cuGetErrorString, with the table below as a fallback.
type Result int

// CUresult values (cuda.h).
const (
	ResultSuccess                  Result = 0
	ResultInvalidValue             Result = 1
	ResultOutOfMemory              Result = 2
	ResultNotInitialized           Result = 3
	ResultDeinitialized            Result = 4
	ResultStubLibrary              Result = 34
	ResultInsufficientDriver       Result = 35
	ResultNoDevice                 Result = 100
	ResultInvalidDevice            Result = 101
	ResultInvalidImage             Result = 200
	ResultInvalidContext           Result = 201
	ResultNoBinaryForGPU           Result = 209
	ResultInvalidPTX               Result = 218
	ResultUnsupportedPTXVersion    Result = 222
	ResultInvalidSource            Result = 300
	ResultInvalidHandle            Result = 400
	ResultIllegalState             Result = 401
	ResultNotFound                 Result = 500
	ResultNotReady                 Result = 600
	ResultIllegalAddress           Result = 700
	ResultLaunchOutOfResources     Result = 701
	ResultLaunchTimeout            Result = 702
	ResultLaunchFailed             Result = 719
	ResultNotPermitted             Result = 800
	ResultNotSupported             Result = 801
	ResultSystemDriverMismatch     Result = 803
	ResultStreamCaptureUnsupported Result = 900
	ResultStreamCaptureInvalidated Result = 901
	ResultStreamCaptureImplicit    Result = 906
	ResultCapturedEvent            Result = 907
	ResultStreamCaptureWrongThread Result = 908
	ResultUnknown                  Result = 999
)

// resultNames is the fallback for cuGetErrorName.
var resultNames = map[Result][2]string{
	ResultSuccess:                  {"CUDA_SUCCESS", "no error"},
	ResultInvalidValue:             {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	ResultOutOfMemory:              {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	ResultNotInitialized:           {"CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	ResultDeinitialized:            {"CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
	ResultStubLibrary:              {"CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
	ResultInsufficientDriver:       {"CUDA_ERROR_INSUFFICIENT_DRIVER", "CUDA driver version is insufficient"},
	ResultNoDevice:                 {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	ResultInvalidDevice:            {"CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	ResultInvalidImage:             {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	ResultInvalidContext:           {"CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	ResultNoBinaryForGPU:           {"CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	ResultInvalidPTX:               {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	ResultUnsupportedPTXVersion:    {"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
	ResultInvalidSource:            {"CUDA_ERROR_INVALID_SOURCE", "device kernel source is invalid"},
	ResultInvalidHandle:            {"CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	ResultIllegalState:             {"CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
	ResultNotFound:                 {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	ResultNotReady:                 {"CUDA_ERROR_NOT_READY", "device not ready"},
	ResultIllegalAddress:           {"CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	ResultLaunchOutOfResources:     {"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	ResultLaunchTimeout:            {"CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
	ResultLaunchFailed:             {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
	ResultNotPermitted:             {"CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
	ResultNotSupported:             {"CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
	ResultSystemDriverMismatch:     {"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
	ResultStreamCaptureUnsupported: {"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
	ResultStreamCaptureInvalidated: {"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
	ResultStreamCaptureImplicit:    {"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
	ResultCapturedEvent:            {"CUDA_ERROR_CAPTURED_EVENT", "operation not permitted on an event last recorded in a capturing stream"},
	ResultStreamCaptureWrongThread: {"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
	ResultUnknown:                  {"CUDA_ERROR_UNKNOWN", "unknown error"},
}

// driverError builds the *Error of a failed driver call, naming the status
// with cuGetErrorName/cuGetErrorString when the driver is loaded.
func driverError(code int32, format string, args ...any) *Error {
	e := &Error{Call: fmt.Sprintf(format, args...), Code: int(code)}
	if drv.cuGetErrorName != 0 {
		var p uintptr
		if status(call2(drv.cuGetErrorName, uintptr(code), uintptr(unsafe.Pointer(&p)))) == 0 {
			e.Name = gostring(p)
		}
		p = 0
		if status(call2(drv.cuGetErrorString, uintptr(code), uintptr(unsafe.Pointer(&p)))) == 0 {
			e.Message = gostring(p)
		}
	}
	if e.Name == "" {
		if t, ok := resultNames[Result(code)]; ok {
			e.Name, e.Message = t[0], t[1]
		} else {
			e.Name = fmt.Sprintf("CUresult(%d)", code)
		}
	}
	if m := simLastMessage(); m != "" {
		e.Message += "; simulation: " + m
	}
	return e
}

// Fault is what kind of failure an error of the NVIDIA libraries reports,
// for the messages and decisions that depend on it.
type Fault int

const (
	FaultOther       Fault = iota // any other failure of a call
	FaultOutOfMemory              // the device, or a library's allocation on it, ran out of memory
	FaultKernel                   // a kernel failed: the context is lost for this process
	FaultDeviceLost               // the device is unavailable or failed in hardware: every later call fails
)

// FaultOf classifies the first *Error that err wraps; FaultOther when
// there is none or its status names none of the kinds above.
func FaultOf(err error) Fault {
	var e *Error
	if !errors.As(err, &e) {
		return FaultOther
	}
	switch e.Name {
	case "CUDA_ERROR_OUT_OF_MEMORY", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED", "NVRTC_ERROR_OUT_OF_MEMORY":
		return FaultOutOfMemory
	case "CUDA_ERROR_LAUNCH_FAILED", "CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_ILLEGAL_INSTRUCTION", "CUDA_ERROR_MISALIGNED_ADDRESS":
		return FaultKernel
	case "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA_ERROR_ECC_UNCORRECTABLE", "CUDA_ERROR_HARDWARE_STACK_ERROR":
		return FaultDeviceLost
	}
	return FaultOther
}
