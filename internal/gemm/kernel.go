package gemm

// kernelFunc computes one mr×nr tile of C:
//
//	C = alpha·Ap·Bp + beta·C
//
// where a holds kc steps of mr packed values of A (a[p*mr+i] = A(i, p)),
// b holds kc steps of nr packed values of B (b[p*nr+j] = B(p, j)) and c
// is the tile's top-left element, rows ldc apart. beta == 0 must not read
// C. The caller guarantees kc ≥ 1 and that a, b and c are long enough.
type kernelFunc func(kc int, a, b, c []float32, ldc int, alpha, beta float32)

// transposeFunc sets dst[p*ldd+r] = src[r*lds+p] for p < tw·blocks and
// r < rows, and dst[p*ldd+r] = 0 for rows ≤ r < width (rows ≤ width ≤ tw),
// where tw is the kernel's transposition block size. The caller guarantees
// that dst and src are long enough.
type transposeFunc func(dst []float32, ldd int, src []float32, lds int, rows, blocks, width int)

// copyFunc copies count rows of width floats: dst[i*ldd:i*ldd+width] =
// src[i*lds:i*lds+width]. The caller guarantees that dst and src are long
// enough.
type copyFunc func(dst []float32, ldd int, src []float32, lds int, count, width int)

// scatterFunc deals each of rows rows of src (lds apart) out to panels
// panels of width (8, 16 or 32) floats, ldp apart:
// dst[q*ldp+p*width : +width] = src[p*lds+q*width : +width]. The caller
// guarantees that dst and src are long enough.
type scatterFunc func(dst, src []float32, lds, ldp, rows, panels, width int)

// kernel is a micro-kernel and its tile shape, with optional fast
// transposition and copy routines for packing (nil if the kernel has none).
type kernel struct {
	name      string
	mr, nr    int
	fn        kernelFunc
	half      kernelFunc // mr×nr/2 tiles from the same packing, or nil
	transpose transposeFunc
	tw        int // block size of transpose: 16 or 8
	copy      copyFunc
	scatter   scatterFunc
}
