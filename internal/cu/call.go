package cu

import (
	"sync"
	"unsafe"
)

// The helpers below are the only way this package calls C. Each has a fixed
// number of uintptr parameters and is marked //go:uintptrescapes: an
// argument written as uintptr(unsafe.Pointer(p)) in the call expression
// makes the compiler keep *p alive and unmoved (on the heap) until the call
// returns, which is the rule package unsafe sets for calls that take
// pointers as uintptr. The values are copied into a pooled heap buffer and
// handed to purego, so a call allocates nothing: a kernel launch through
// KernelArgs, an async copy, a graph launch, a cuBLAS GEMM or a cuDNN
// convolution costs no garbage.
//
// A variadic helper would be simpler but is not free: the compiler moves the
// argument slice of a //go:uintptrescapes variadic function to the heap on
// every call.

// maxCArgs is the largest arity bound here (cublasSgemmStridedBatched).
const maxCArgs = 18

type argBuf [maxCArgs]uintptr

var argPool = sync.Pool{New: func() any { return new(argBuf) }}

func getArgs() *argBuf { return argPool.Get().(*argBuf) }

func callBuf(fn uintptr, b *argBuf, n int) uintptr {
	r := syscallN(fn, b[:n])
	*b = argBuf{}
	argPool.Put(b)
	return r
}

//go:uintptrescapes
func call0(fn uintptr) uintptr {
	return callBuf(fn, getArgs(), 0)
}

//go:uintptrescapes
func call1(fn, a1 uintptr) uintptr {
	b := getArgs()
	b[0] = a1
	return callBuf(fn, b, 1)
}

//go:uintptrescapes
func call2(fn, a1, a2 uintptr) uintptr {
	b := getArgs()
	b[0], b[1] = a1, a2
	return callBuf(fn, b, 2)
}

//go:uintptrescapes
func call3(fn, a1, a2, a3 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2] = a1, a2, a3
	return callBuf(fn, b, 3)
}

//go:uintptrescapes
func call4(fn, a1, a2, a3, a4 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3] = a1, a2, a3, a4
	return callBuf(fn, b, 4)
}

//go:uintptrescapes
func call5(fn, a1, a2, a3, a4, a5 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4] = a1, a2, a3, a4, a5
	return callBuf(fn, b, 5)
}

//go:uintptrescapes
func call6(fn, a1, a2, a3, a4, a5, a6 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5] = a1, a2, a3, a4, a5, a6
	return callBuf(fn, b, 6)
}

//go:uintptrescapes
func call7(fn, a1, a2, a3, a4, a5, a6, a7 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6] = a1, a2, a3, a4, a5, a6, a7
	return callBuf(fn, b, 7)
}

//go:uintptrescapes
func call8(fn, a1, a2, a3, a4, a5, a6, a7, a8 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7] = a1, a2, a3, a4, a5, a6, a7, a8
	return callBuf(fn, b, 8)
}

//go:uintptrescapes
func call9(fn, a1, a2, a3, a4, a5, a6, a7, a8, a9 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8] = a1, a2, a3, a4, a5, a6, a7, a8, a9
	return callBuf(fn, b, 9)
}

//go:uintptrescapes
func call11(fn, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8] = a1, a2, a3, a4, a5, a6, a7, a8, a9
	b[9], b[10] = a10, a11
	return callBuf(fn, b, 11)
}

//go:uintptrescapes
func call13(fn, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8] = a1, a2, a3, a4, a5, a6, a7, a8, a9
	b[9], b[10], b[11], b[12] = a10, a11, a12, a13
	return callBuf(fn, b, 13)
}

//go:uintptrescapes
func call14(fn, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8] = a1, a2, a3, a4, a5, a6, a7, a8, a9
	b[9], b[10], b[11], b[12], b[13] = a10, a11, a12, a13, a14
	return callBuf(fn, b, 14)
}

//go:uintptrescapes
func call18(fn, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18 uintptr) uintptr {
	b := getArgs()
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8] = a1, a2, a3, a4, a5, a6, a7, a8, a9
	b[9], b[10], b[11], b[12], b[13], b[14], b[15], b[16], b[17] = a10, a11, a12, a13, a14, a15, a16, a17, a18
	return callBuf(fn, b, 18)
}

// status extracts a 32-bit C enum return value (CUresult, cublasStatus_t,
// cudnnStatus_t, nvrtcResult) from the result register, whose upper half is
// unspecified.
func status(r uintptr) int32 { return int32(uint32(r)) }

// ptr converts a C pointer held in a uintptr (a value written by C through
// an out-parameter, never a Go pointer) to an unsafe.Pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// gostring copies a NUL-terminated C string. It reads at most 1 MiB.
func gostring(p uintptr) string {
	if p == 0 {
		return ""
	}
	base := ptr(p)
	n := 0
	for n < 1<<20 && *(*byte)(unsafe.Add(base, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(base), n))
}

// cstr returns s as a NUL-terminated byte slice for C.
func cstr(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// cbytes trims a C buffer at its first NUL.
func cbytes(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
