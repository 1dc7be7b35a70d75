package cpu

import (
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
)

// The float32 backend's col2im. It adds the same values in the same order
// as the generic loop of conv.go, col2imPlanes, so the sums round the same
// way; what differs is the cost of a run. PAD's layers are 4×4
// convolutions of stride 2 on small planes (a run of an output row is 16,
// 8 or 4 values), so the generic loop spends most of its time slicing and
// bounds-checking per run and per value. Here the valid range of a tap is
// worked out once per (r, s) and the runs are moved through pointers.
// (The float32 backend needs no im2col: its convolutions pack from the
// images, implicit.go.)
//
// Every address formed lies inside col or dx: the runs cover the output
// positions whose input position is inside the plane (validRange), and
// the slices are checked once, up front.

// scatterAdd2D adds s[p·lds + i] to d[p·ldd + i·stride] for p < rows,
// i < n, in order of p, then i.
func scatterAdd2D(d, s unsafe.Pointer, rows, n, ldd, lds, stride int) {
	st := stride * 4
	for p := 0; p < rows; p++ {
		dr, sr := unsafe.Add(d, p*ldd*4), unsafe.Add(s, p*lds*4)
		i := 0
		for ; i+4 <= n; i += 4 {
			*(*float32)(unsafe.Add(dr, i*st)) += *(*float32)(unsafe.Add(sr, i*4))
			*(*float32)(unsafe.Add(dr, (i+1)*st)) += *(*float32)(unsafe.Add(sr, i*4+4))
			*(*float32)(unsafe.Add(dr, (i+2)*st)) += *(*float32)(unsafe.Add(sr, i*4+8))
			*(*float32)(unsafe.Add(dr, (i+3)*st)) += *(*float32)(unsafe.Add(sr, i*4+12))
		}
		for ; i < n; i++ {
			*(*float32)(unsafe.Add(dr, i*st)) += *(*float32)(unsafe.Add(sr, i*4))
		}
	}
}

// col2imPlanes32 adds col into the (n, c) planes [lo, hi) of dx, which
// hold beta·dx already (or zero).
func col2imPlanes32(g backend.ConvGeom, col, dx []float32, lo, hi int) {
	pq := g.P * g.Q
	npq := g.N * pq
	hw := g.H * g.W
	_ = dx[hi*hw-1]
	_ = col[g.C*g.R*g.S*npq-1]
	for nc := lo; nc < hi; nc++ {
		n, c := nc/g.C, nc%g.C
		plane := unsafe.Pointer(&dx[nc*hw])
		for r := 0; r < g.R; r++ {
			p0, p1 := validRange(g.P, g.Stride, r-g.Pad, g.H)
			for s := 0; s < g.S; s++ {
				q0, q1 := validRange(g.Q, g.Stride, s-g.Pad, g.W)
				if p0 >= p1 || q0 >= q1 {
					continue
				}
				nq := q1 - q0
				off := q0*g.Stride + s - g.Pad
				h0 := p0*g.Stride + r - g.Pad
				scatterAdd2D(unsafe.Add(plane, (h0*g.W+off)*4), unsafe.Pointer(&col[((c*g.R+r)*g.S+s)*npq+n*pq+p0*g.Q+q0]),
					p1-p0, nq, g.Stride*g.W, g.Q, g.Stride)
			}
		}
	}
}
