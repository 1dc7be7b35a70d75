//go:build linux && (amd64 || arm64)

package cu

import "github.com/ebitengine/purego"

// platformSupported reports whether this build can load the NVIDIA
// libraries at all (linux/amd64 and linux/arm64, the platforms CUDA ships
// for).
const platformSupported = true

// dlopen loads a shared library with RTLD_NOW|RTLD_GLOBAL, as the verified
// probe does, and returns the loader's message on failure.
func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

// dlsym resolves one symbol of a loaded library.
func dlsym(handle uintptr, name string) (uintptr, error) {
	return purego.Dlsym(handle, name)
}

// syscallN calls the C function fn with integer-class arguments (pointers,
// integers, enums, size_t) and returns the integer result register. No
// function bound by this package takes a floating-point value by value:
// scalars such as cuBLAS's alpha and beta are passed by pointer.
//
// args must live on the heap (the callers pass a pooled buffer), so the
// variadic expansion below does not allocate.
func syscallN(fn uintptr, args []uintptr) uintptr {
	r1, _, _ := purego.SyscallN(fn, args...)
	return r1
}
