package cu

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// nvrtcSpec: CUDA 11.2 to 11.8 all ship libnvrtc.so.11.2.
var nvrtcSpec = libSpec{
	lib:      "nvrtc",
	sonames:  []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"},
	deps:     []string{"libnvrtc-builtins.so.*"},
	missing:  "libnvrtc.so.13 (or .12, .11.2) not found",
	install:  "install the CUDA runtime compiler NVRTC (pip install nvidia-cuda-nvrtc, the cuda-nvrtc-13-0 package, or an nvidia/cuda runtime image) or set " + LibDirEnv + " to its folder",
	sentinel: ErrNoLibrary,
}

var nvrtc struct {
	once sync.Once
	err  error
	lib  loaded

	nvrtcVersion, nvrtcGetErrorString, nvrtcCreateProgram, nvrtcCompileProgram, nvrtcDestroyProgram uintptr
	nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetPTXSize, nvrtcGetPTX                        uintptr
	nvrtcGetCUBINSize, nvrtcGetCUBIN                                                                uintptr
}

// LoadNVRTC loads libnvrtc (13, else 12, else 11.2) and, from the same
// folder, its builtins, once; every NVRTC function calls
// it. Its error matches ErrNoLibrary and says what to install.
func LoadNVRTC() error {
	nvrtc.once.Do(func() {
		nvrtc.lib, nvrtc.err = nvrtcSpec.load([]symbol{
			need(&nvrtc.nvrtcVersion, "nvrtcVersion"),
			need(&nvrtc.nvrtcGetErrorString, "nvrtcGetErrorString"),
			need(&nvrtc.nvrtcCreateProgram, "nvrtcCreateProgram"),
			need(&nvrtc.nvrtcCompileProgram, "nvrtcCompileProgram"),
			need(&nvrtc.nvrtcDestroyProgram, "nvrtcDestroyProgram"),
			need(&nvrtc.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"),
			need(&nvrtc.nvrtcGetProgramLog, "nvrtcGetProgramLog"),
			need(&nvrtc.nvrtcGetPTXSize, "nvrtcGetPTXSize"),
			need(&nvrtc.nvrtcGetPTX, "nvrtcGetPTX"),
			need(&nvrtc.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"),
			need(&nvrtc.nvrtcGetCUBIN, "nvrtcGetCUBIN"),
		})
	})
	return nvrtc.err
}

// NVRTCLibrary returns the file NVRTC was loaded from, or "".
func NVRTCLibrary() string {
	if LoadNVRTC() != nil {
		return ""
	}
	return nvrtc.lib.path
}

// NVRTCResult is an nvrtcResult.
type NVRTCResult int

// nvrtcResult values (nvrtc.h).
const (
	NVRTCSuccess                            NVRTCResult = 0
	NVRTCErrorOutOfMemory                   NVRTCResult = 1
	NVRTCErrorProgramCreationFailure        NVRTCResult = 2
	NVRTCErrorInvalidInput                  NVRTCResult = 3
	NVRTCErrorInvalidProgram                NVRTCResult = 4
	NVRTCErrorInvalidOption                 NVRTCResult = 5
	NVRTCErrorCompilation                   NVRTCResult = 6
	NVRTCErrorBuiltinOperationFailure       NVRTCResult = 7
	NVRTCErrorNoNameExpressionsAfterCompile NVRTCResult = 8
	NVRTCErrorNoLoweredNamesBeforeCompile   NVRTCResult = 9
	NVRTCErrorNameExpressionNotValid        NVRTCResult = 10
	NVRTCErrorInternalError                 NVRTCResult = 11
	NVRTCErrorTimeFileWriteFailed           NVRTCResult = 12
)

var nvrtcNames = map[NVRTCResult]string{
	NVRTCSuccess:                            "NVRTC_SUCCESS",
	NVRTCErrorOutOfMemory:                   "NVRTC_ERROR_OUT_OF_MEMORY",
	NVRTCErrorProgramCreationFailure:        "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
	NVRTCErrorInvalidInput:                  "NVRTC_ERROR_INVALID_INPUT",
	NVRTCErrorInvalidProgram:                "NVRTC_ERROR_INVALID_PROGRAM",
	NVRTCErrorInvalidOption:                 "NVRTC_ERROR_INVALID_OPTION",
	NVRTCErrorCompilation:                   "NVRTC_ERROR_COMPILATION",
	NVRTCErrorBuiltinOperationFailure:       "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
	NVRTCErrorNoNameExpressionsAfterCompile: "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
	NVRTCErrorNoLoweredNamesBeforeCompile:   "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION",
	NVRTCErrorNameExpressionNotValid:        "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID",
	NVRTCErrorInternalError:                 "NVRTC_ERROR_INTERNAL_ERROR",
	NVRTCErrorTimeFileWriteFailed:           "NVRTC_ERROR_TIME_FILE_WRITE_FAILED",
}

// nvrtcError builds the *Error of a failed NVRTC call; nvrtcGetErrorString
// returns the status's name.
func nvrtcError(code int32, format string, args ...any) *Error {
	e := &Error{Call: fmt.Sprintf(format, args...), Code: int(code)}
	if nvrtc.nvrtcGetErrorString != 0 {
		e.Name = gostring(call1(nvrtc.nvrtcGetErrorString, uintptr(code)))
	}
	if e.Name == "" {
		if n, ok := nvrtcNames[NVRTCResult(code)]; ok {
			e.Name = n
		} else {
			e.Name = fmt.Sprintf("nvrtcResult(%d)", code)
		}
	}
	return e
}

// NVRTCVersion returns the version of the loaded NVRTC, e.g. 13, 0.
func NVRTCVersion() (major, minor int, err error) {
	if err := LoadNVRTC(); err != nil {
		return 0, 0, err
	}
	var ma, mi int32
	if r := status(call2(nvrtc.nvrtcVersion, uintptr(unsafe.Pointer(&ma)), uintptr(unsafe.Pointer(&mi)))); r != 0 {
		return 0, 0, nvrtcError(r, "nvrtcVersion")
	}
	return int(ma), int(mi), nil
}

// ArchFlag returns the NVRTC option that compiles CUBIN for a device of the
// given compute capability, e.g. "--gpu-architecture=sm_90".
func ArchFlag(major, minor int) string {
	return fmt.Sprintf("--gpu-architecture=sm_%d%d", major, minor)
}

// VirtualArchFlag returns the NVRTC option that compiles PTX for a compute
// capability, e.g. "--gpu-architecture=compute_90".
func VirtualArchFlag(major, minor int) string {
	return fmt.Sprintf("--gpu-architecture=compute_%d%d", major, minor)
}

// Compile compiles CUDA C++ source with NVRTC and returns the CUBIN for
// ModuleLoadData. opts must name a real architecture (ArchFlag). name is the
// source's file name in messages. log is the compiler's log (warnings);
// when compilation fails the error is an *Error whose Message is the log.
func Compile(src, name string, opts []string) (cubin []byte, log string, err error) {
	return compile(src, name, opts, true)
}

// CompilePTX is Compile producing PTX text (NUL-terminated) instead of
// CUBIN; use VirtualArchFlag or ArchFlag. The driver compiles PTX for the
// device in ModuleLoadData.
func CompilePTX(src, name string, opts []string) (ptx []byte, log string, err error) {
	return compile(src, name, opts, false)
}

func compile(src, name string, opts []string, cubin bool) (out []byte, log string, err error) {
	if err := LoadNVRTC(); err != nil {
		return nil, "", err
	}
	csrc, cname := cstr(src), cstr(name)
	var prog uintptr
	if r := status(call6(nvrtc.nvrtcCreateProgram, uintptr(unsafe.Pointer(&prog)),
		uintptr(unsafe.Pointer(&csrc[0])), uintptr(unsafe.Pointer(&cname[0])), 0, 0, 0)); r != 0 {
		return nil, "", nvrtcError(r, "nvrtcCreateProgram(%s)", name)
	}
	defer func() {
		if r := status(call1(nvrtc.nvrtcDestroyProgram, uintptr(unsafe.Pointer(&prog)))); r != 0 && err == nil {
			err = nvrtcError(r, "nvrtcDestroyProgram(%s)", name)
		}
	}()

	// The option strings and the array of pointers to them are Go memory on
	// the heap; call3 keeps the array alive for the call, and the array keeps
	// the strings alive.
	copts := make([][]byte, len(opts))
	optPtrs := make([]*byte, len(opts)+1)
	for i, o := range opts {
		copts[i] = cstr(o)
		optPtrs[i] = &copts[i][0]
	}
	optDesc := strings.Join(opts, " ")
	rc := status(call3(nvrtc.nvrtcCompileProgram, prog, uintptr(len(opts)), uintptr(unsafe.Pointer(&optPtrs[0]))))

	var logSize uint64
	if r := status(call2(nvrtc.nvrtcGetProgramLogSize, prog, uintptr(unsafe.Pointer(&logSize)))); r == 0 && logSize > 1 {
		buf := make([]byte, logSize)
		if r := status(call2(nvrtc.nvrtcGetProgramLog, prog, uintptr(unsafe.Pointer(&buf[0])))); r == 0 {
			log = strings.TrimSpace(cbytes(buf))
		}
	}
	if rc != 0 {
		e := nvrtcError(rc, "nvrtcCompileProgram(%s, %q)", name, optDesc)
		e.Message = log
		return nil, log, e
	}

	sizeFn, getFn, what := nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX, "PTX"
	if cubin {
		sizeFn, getFn, what = nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN, "CUBIN"
	}
	var size uint64
	if r := status(call2(sizeFn, prog, uintptr(unsafe.Pointer(&size)))); r != 0 {
		e := nvrtcError(r, "nvrtcGet%sSize(%s, %q)", what, name, optDesc)
		if cubin {
			e.Message = "no CUBIN: compile for a real architecture (" + ArchFlag(9, 0) + ") or use CompilePTX"
		}
		return nil, log, e
	}
	if size == 0 {
		return nil, log, fmt.Errorf("nvrtc: %s (%s) produced no %s: compile for a real architecture such as %s, or use CompilePTX",
			name, optDesc, what, ArchFlag(9, 0))
	}
	out = make([]byte, size)
	if r := status(call2(getFn, prog, uintptr(unsafe.Pointer(&out[0])))); r != 0 {
		return nil, log, nvrtcError(r, "nvrtcGet%s(%s)", what, name)
	}
	return out, log, nil
}
