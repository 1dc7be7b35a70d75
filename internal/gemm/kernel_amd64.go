//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:generate go run gen_kernels.go

// Assembly micro-kernels (kernel_amd64.s); see kernelFunc.

//go:noescape
func kernAVX512x12x32(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x12x16s32(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x8x16s32(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX2x6x8s16(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x8x32(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX2x6x16(kc int, a, b, c []float32, ldc int, alpha, beta float32)

//go:noescape
func transpose16(dst []float32, ldd int, src []float32, lds int, rows, blocks, width int)

//go:noescape
func copyBlocks(dst []float32, ldd int, src []float32, lds int, count, width int)

//go:noescape
func scatterRows(dst, src []float32, lds, ldp, rows, panels, width int)

//go:noescape
func transpose8(dst []float32, ldd int, src []float32, lds int, rows, blocks, width int)

//go:noescape
func copyBlocks8(dst []float32, ldd int, src []float32, lds int, count, width int)

//go:noescape
func scatterRows8(dst, src []float32, lds, ldp, rows, panels, width int)

//go:noescape
func addAVX(dst, src []float32)

// addVec adds src[i] to dst[i] for i below len(src) rounded down to a
// multiple of 8, if this CPU has AVX, and returns how many values it added.
func addVec(dst, src []float32) int {
	n := len(src) &^ 7
	if n == 0 || !cpu.X86.HasAVX {
		return 0
	}
	addAVX(dst[:n], src[:n])
	return n
}

var (
	avx512Kernels = []kernel{
		{name: "avx512-8x32", mr: 8, nr: 32, fn: kernAVX512x8x32, half: kernAVX512x8x16s32, transpose: transpose16, tw: 16, copy: copyBlocks, scatter: scatterRows},
		{name: "avx512-12x32", mr: 12, nr: 32, fn: kernAVX512x12x32, half: kernAVX512x12x16s32, transpose: transpose16, tw: 16, copy: copyBlocks, scatter: scatterRows},
	}
	avx2Kernels = []kernel{
		{name: "avx2-6x16", mr: 6, nr: 16, fn: kernAVX2x6x16, half: kernAVX2x6x8s16,
			transpose: transpose8, tw: 8, copy: copyBlocks8, scatter: scatterRows8},
	}
)

// availableKernels lists the micro-kernels this CPU (and OS) can run, best
// first. cpu.X86 reports AVX and AVX-512 only when the OS saves the wider
// registers.
func availableKernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernels...)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernels...)
	}
	return append(ks, genericKernel)
}
