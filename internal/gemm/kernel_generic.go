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
		c00 = fma32(a0, b0, c00)
		c01 = fma32(a0, b1, c01)
		c02 = fma32(a0, b2, c02)
		c03 = fma32(a0, b3, c03)
		c10 = fma32(a1, b0, c10)
		c11 = fma32(a1, b1, c11)
		c12 = fma32(a1, b2, c12)
		c13 = fma32(a1, b3, c13)
		c20 = fma32(a2, b0, c20)
		c21 = fma32(a2, b1, c21)
		c22 = fma32(a2, b2, c22)
		c23 = fma32(a2, b3, c23)
		c30 = fma32(a3, b0, c30)
		c31 = fma32(a3, b1, c31)
		c32 = fma32(a3, b2, c32)
		c33 = fma32(a3, b3, c33)
		a = a[4:]
		b = b[4:]
	}
	store4(c[:4], alpha, beta, c00, c01, c02, c03)
	store4(c[ldc:ldc+4], alpha, beta, c10, c11, c12, c13)
	store4(c[2*ldc:2*ldc+4], alpha, beta, c20, c21, c22, c23)
	store4(c[3*ldc:3*ldc+4], alpha, beta, c30, c31, c32, c33)
}

// store4 writes alpha·v + beta·C with the assembly kernels' rounding:
// alpha·v rounded, then beta·C added to it in one fused multiply-add.
func store4(c []float32, alpha, beta, v0, v1, v2, v3 float32) {
	c = c[:4]
	if beta == 0 {
		c[0] = alpha * v0
		c[1] = alpha * v1
		c[2] = alpha * v2
		c[3] = alpha * v3
		return
	}
	c[0] = fma32(beta, c[0], float32(alpha*v0))
	c[1] = fma32(beta, c[1], float32(alpha*v1))
	c[2] = fma32(beta, c[2], float32(alpha*v2))
	c[3] = fma32(beta, c[3], float32(alpha*v3))
}
