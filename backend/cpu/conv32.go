package cpu

import (
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
)

// The float32 backend's im2col and col2im. They move the same values in
// the same order as the generic loops of conv.go, im2colRows and
// col2imPlanes (col2im adds in the same order, so the sums round the same
// way); what differs is the cost of a run. PAD's layers are 4×4
// convolutions of stride 2 on small planes (a run of an output row is 16,
// 8 or 4 values), so the generic loops spend most of their time slicing
// and bounds-checking per run and per value. Here the valid range of a
// row is worked out once per (c, r, s), the runs are moved through
// pointers, and the borders are cleared per plane.
//
// Every address formed lies inside x, col or dx: the runs cover the output
// positions whose input position is inside the plane (validRange), and
// the slices are checked once, up front.

// gather2D sets d[p·ldd + i] = s[p·lds + i·stride] for p < rows, i < n.
func gather2D(d, s unsafe.Pointer, rows, n, ldd, lds, stride int) {
	for p := 0; p < rows; p++ {
		gather1D(unsafe.Add(d, p*ldd*4), unsafe.Add(s, p*lds*4), n, stride)
	}
}

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
