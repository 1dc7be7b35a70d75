package cpu

import (
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
)

// The explicit float32 convolution path as the backend ran it before its
// convolutions packed from the images (implicit.go): im2col into a whole
// col, then the GEMM, then col2im. It is the reference the implicit path's
// bits are held against and the baseline of the convolution benchmarks.

// explicitIm2col fills col [C·R·S, N·P·Q] from x on be's threads.
func explicitIm2col(be *Backend[float32], g backend.ConvGeom, x, col []float32) {
	be.parallel(g.C*g.R*g.S, func(lo, hi int) { im2colRows32(g, x, col, lo, hi) })
}

// explicitCol2im adds col into dx (after scaling dx by beta) on be's
// threads.
func explicitCol2im(be *Backend[float32], g backend.ConvGeom, col, dx []float32, beta float32) {
	hw := g.H * g.W
	be.parallel(g.N*g.C, func(lo, hi int) {
		scaleBy(dx[lo*hw:hi*hw], beta)
		col2imPlanes32(g, col, dx, lo, hi)
	})
}

// gather2D sets d[p·ldd + i] = s[p·lds + i·stride] for p < rows, i < n.
func gather2D(d, s unsafe.Pointer, rows, n, ldd, lds, stride int) {
	for p := 0; p < rows; p++ {
		gather1D(unsafe.Add(d, p*ldd*4), unsafe.Add(s, p*lds*4), n, stride)
	}
}

// im2colRows32 fills rows [lo, hi) of col [C·R·S, N·P·Q] from x [N, C, H, W].
func im2colRows32(g backend.ConvGeom, x, col []float32, lo, hi int) {
	pq := g.P * g.Q
	npq := g.N * pq
	hw := g.H * g.W
	_ = x[g.N*g.C*hw-1]
	_ = col[hi*npq-1]
	for row := lo; row < hi; row++ {
		c, rs := row/(g.R*g.S), row%(g.R*g.S)
		r, s := rs/g.S, rs%g.S
		q0, q1 := validRange(g.Q, g.Stride, s-g.Pad, g.W)
		p0, p1 := validRange(g.P, g.Stride, r-g.Pad, g.H)
		dst := col[row*npq : (row+1)*npq]
		if p0 >= p1 || q0 >= q1 {
			clear(dst)
			continue
		}
		border := p0 > 0 || p1 < g.P || q0 > 0 || q1 < g.Q
		nq := q1 - q0
		off := q0*g.Stride + s - g.Pad // input column of output column q0
		for n := 0; n < g.N; n++ {
			o := dst[n*pq : (n+1)*pq]
			if border {
				clear(o)
			}
			h0 := p0*g.Stride + r - g.Pad // input row of output row p0
			gather2D(unsafe.Pointer(&o[p0*g.Q+q0]), unsafe.Pointer(&x[(n*g.C+c)*hw+h0*g.W+off]),
				p1-p0, nq, g.Q, g.Stride*g.W, g.Stride)
		}
	}
}
