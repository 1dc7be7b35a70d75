package gemm

// genericKernel is the portable micro-kernel, used on architectures without
// an assembly kernel and on amd64 CPUs without AVX2 and FMA.
var genericKernel = kernel{name: "go4x4", mr: 4, nr: 4, fn: kernGo4x4}

// kernGo4x4 is a 4×4 pure-Go micro-kernel with its 16 accumulators in
// local variables.
func kernGo4x4(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var (
		c00, c01, c02, c03 float32
		c10, c11, c12, c13 float32
		c20, c21, c22, c23 float32
		c30, c31, c32, c33 float32
	)
	a = a[:4*kc]
	b = b[:4*kc]
	for len(a) >= 4 && len(b) >= 4 {
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		a = a[4:]
		b = b[4:]
	}
	store4(c[:4], alpha, beta, c00, c01, c02, c03)
	store4(c[ldc:ldc+4], alpha, beta, c10, c11, c12, c13)
	store4(c[2*ldc:2*ldc+4], alpha, beta, c20, c21, c22, c23)
	store4(c[3*ldc:3*ldc+4], alpha, beta, c30, c31, c32, c33)
}

// store4 writes alpha·v + beta·C with the assembly kernels' rounding where
// Go fuses multiply-adds (arm64 and others): alpha·v is rounded first (the
// conversion forbids fusing it), then beta·C is added to it in one
// multiply-add. Where Go does not fuse (amd64), beta·C is rounded too, and
// so is each step of the k loop above: the pure-Go kernel then gives other
// bits than the assembly ones, but the same for any number of threads.
func store4(c []float32, alpha, beta, v0, v1, v2, v3 float32) {
	c = c[:4]
	if beta == 0 {
		c[0] = alpha * v0
		c[1] = alpha * v1
		c[2] = alpha * v2
		c[3] = alpha * v3
		return
	}
	c[0] = float32(alpha*v0) + beta*c[0]
	c[1] = float32(alpha*v1) + beta*c[1]
	c[2] = float32(alpha*v2) + beta*c[2]
	c[3] = float32(alpha*v3) + beta*c[3]
}
