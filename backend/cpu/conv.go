package cpu

import (
	"math"

	"github.com/pad-dreaming/pad/backend"
)

// The convolutions work on the whole batch at once through two matrices:
//
//	col [C·R·S, N·P·Q]: column (n, p, q) holds the input patch under output
//	                    position (p, q) of image n (im2col);
//	tmp [K, N·P·Q]:     the output (or its gradient) with the batch moved
//	                    next to the spatial positions.
//
// so that forward is tmp = W·col, backward-data is col = Wᵀ·tmp followed by
// col2im, and backward-filter is dW = tmp·colᵀ — three large GEMMs instead
// of N small ones. The float64 twin builds col; the float32 backend packs
// col straight from x for forward and backward-filter (implicit.go), and
// dense layers need no col at all (see dense).

func (b *Backend[T]) convCheck(op string, g backend.ConvGeom) bool {
	if err := g.Validate(); err != nil {
		b.fail("%s: %v", op, err)
		return false
	}
	return true
}

// dense reports whether g is a fully connected layer: a single output
// position whose window is the whole unpadded input (PAD's conv4 and dis
// heads, and G's first layer run backwards). Its im2col matrix is x itself
// read as [N, C·H·W], transposed, and the output needs no reordering, so
// all three products run on x, y, dy, dx as they lie, with no im2col,
// col2im or transposition pass: the same values meet in the same order as
// on the explicit path (col2im only copies here), so the bits are the same
// too, except that backward-data adds beta·dx inside the product.
func dense(g backend.ConvGeom) bool { return g.Pad == 0 && g.H == g.R && g.W == g.S }

func (b *Backend[T]) workspaces(g backend.ConvGeom) (col, tmp []T) {
	npq := g.N * g.P * g.Q
	b.col = grow(b.col, g.C*g.R*g.S*npq)
	b.tmp = grow(b.tmp, g.K*npq)
	return b.col, b.tmp
}

// validRange returns the output positions q in [0, n) whose input
// position q·stride + off lies in [0, size).
func validRange(n, stride, off, size int) (lo, hi int) {
	// q·stride + off ≥ 0  ⇔  q ≥ ⌈−off/stride⌉
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	// q·stride + off ≤ size − 1  ⇔  q ≤ ⌊(size − 1 − off)/stride⌋
	if size-1-off < 0 {
		return lo, lo
	}
	hi = min(n, (size-1-off)/stride+1)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// im2col fills col [C·R·S, N·P·Q] from x [N, C, H, W] (the float64 twin;
// the float32 backend packs from x, implicit.go).
func (b *Backend[T]) im2col(g backend.ConvGeom, x, col []T) {
	b.parallel(g.C*g.R*g.S, func(lo, hi int) { im2colRows(g, x, col, lo, hi) })
}

// im2colRows fills rows [lo, hi) of col: row (c, r, s) holds, for each
// output position (n, p, q), the input value under tap (r, s) of channel
// c, or 0 in the padding.
func im2colRows[T Float](g backend.ConvGeom, x, col []T, lo, hi int) {
	pq := g.P * g.Q
	npq := g.N * pq
	for row := lo; row < hi; row++ {
		c, rs := row/(g.R*g.S), row%(g.R*g.S)
		r, s := rs/g.S, rs%g.S
		q0, q1 := validRange(g.Q, g.Stride, s-g.Pad, g.W)
		p0, p1 := validRange(g.P, g.Stride, r-g.Pad, g.H)
		dst := col[row*npq : (row+1)*npq]
		for n := 0; n < g.N; n++ {
			plane := x[(n*g.C+c)*g.H*g.W : (n*g.C+c+1)*g.H*g.W]
			o := dst[n*pq : (n+1)*pq]
			clear(o[:p0*g.Q])
			clear(o[p1*g.Q:])
			for p := p0; p < p1; p++ {
				h := p*g.Stride + r - g.Pad
				line := o[p*g.Q : (p+1)*g.Q]
				clear(line[:q0])
				clear(line[q1:])
				src := plane[h*g.W : (h+1)*g.W]
				off := s - g.Pad
				if g.Stride == 1 {
					copy(line[q0:q1], src[q0+off:q1+off])
					continue
				}
				for q := q0; q < q1; q++ {
					line[q] = src[q*g.Stride+off]
				}
			}
		}
	}
}

// col2im adds col [C·R·S, N·P·Q] into dx [N, C, H, W] (after scaling dx by
// beta), for the float64 twin (the float32 backend runs col2imPlanes32 on
// chunks of col, convBackwardData32). Each (n, c) plane is written by one
// worker only.
func (b *Backend[T]) col2im(g backend.ConvGeom, col, dx []T, beta float32) {
	hw := g.H * g.W
	b.parallel(g.N*g.C, func(lo, hi int) {
		scaleBy(dx[lo*hw:hi*hw], beta)
		col2imPlanes(g, col, dx, lo, hi)
	})
}

// scaleBy sets x = beta·x (x = 0 when beta is 0, whatever x held).
func scaleBy[T Float](x []T, beta float32) {
	switch beta {
	case 0:
		clear(x)
	case 1:
	default:
		for i := range x {
			x[i] *= T(beta)
		}
	}
}

// col2imPlanes adds col into the (n, c) planes [lo, hi) of dx: each tap
// (r, s) of each output position adds its column value to the input value
// under it, taps in order r, s, then positions p, q. The float32 backend
// uses col2imPlanes32, which adds in the same order.
func col2imPlanes[T Float](g backend.ConvGeom, col, dx []T, lo, hi int) {
	pq := g.P * g.Q
	npq := g.N * pq
	hw := g.H * g.W
	for nc := lo; nc < hi; nc++ {
		n, c := nc/g.C, nc%g.C
		plane := dx[nc*hw : (nc+1)*hw]
		for r := 0; r < g.R; r++ {
			p0, p1 := validRange(g.P, g.Stride, r-g.Pad, g.H)
			for s := 0; s < g.S; s++ {
				q0, q1 := validRange(g.Q, g.Stride, s-g.Pad, g.W)
				src := col[((c*g.R+r)*g.S+s)*npq+n*pq:]
				for p := p0; p < p1; p++ {
					h := p*g.Stride + r - g.Pad
					line := plane[h*g.W : (h+1)*g.W]
					off := s - g.Pad
					from := src[p*g.Q : (p+1)*g.Q]
					for q := q0; q < q1; q++ {
						line[q*g.Stride+off] += from[q]
					}
				}
			}
		}
	}
}

// nchwToKM copies y [N, K, P·Q] to t [K, N·P·Q].
func (b *Backend[T]) nchwToKM(g backend.ConvGeom, y, t []T) {
	pq := g.P * g.Q
	b.parallel(g.K, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			for n := 0; n < g.N; n++ {
				copy(t[(k*g.N+n)*pq:(k*g.N+n+1)*pq], y[(n*g.K+k)*pq:(n*g.K+k+1)*pq])
			}
		}
	})
}

// ConvForward computes y = conv(x, w).
func (b *Backend[T]) ConvForward(g backend.ConvGeom, x, w, y backend.Buf) {
	if !b.convCheck("ConvForward", g) {
		return
	}
	xd := b.data("ConvForward", "x", x, g.XLen())
	wd := b.data("ConvForward", "w", w, g.WLen())
	yd := b.data("ConvForward", "y", y, g.YLen())
	if b.err != nil {
		return
	}
	crs, pq, npq := g.C*g.R*g.S, g.P*g.Q, g.N*g.P*g.Q
	if dense(g) { // y [N, K] = x [N, CRS] · wᵀ
		b.sgemm(false, true, g.N, g.K, crs, 1, xd, crs, wd, crs, 0, yd, g.K)
		return
	}
	if x32, ok := any(xd).([]float32); ok {
		b.convForward32(g, x32, any(wd).([]float32), any(yd).([]float32))
		return
	}
	col, tmp := b.workspaces(g)
	b.im2col(g, xd, col)
	b.sgemm(false, false, g.K, npq, crs, 1, wd, crs, col, npq, 0, tmp, npq)
	b.parallel(g.N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			for k := 0; k < g.K; k++ {
				copy(yd[(n*g.K+k)*pq:(n*g.K+k+1)*pq], tmp[(k*g.N+n)*pq:(k*g.N+n+1)*pq])
			}
		}
	})
}

// ConvBackwardData computes dx = conv_transpose(dy, w) + beta·dx.
func (b *Backend[T]) ConvBackwardData(g backend.ConvGeom, dy, w, dx backend.Buf, beta float32) {
	if !b.convCheck("ConvBackwardData", g) {
		return
	}
	dyd := b.data("ConvBackwardData", "dy", dy, g.YLen())
	wd := b.data("ConvBackwardData", "w", w, g.WLen())
	dxd := b.data("ConvBackwardData", "dx", dx, g.XLen())
	if b.err != nil {
		return
	}
	crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
	if dense(g) { // dx [N, CRS] = dy [N, K] · w + beta·dx
		b.sgemm(false, false, g.N, crs, g.K, 1, dyd, g.K, wd, crs, T(beta), dxd, crs)
		return
	}
	if dy32, ok := any(dyd).([]float32); ok {
		b.convBackwardData32(g, dy32, any(wd).([]float32), any(dxd).([]float32), beta)
		return
	}
	col, tmp := b.workspaces(g)
	b.nchwToKM(g, dyd, tmp)
	b.sgemm(true, false, crs, npq, g.K, 1, wd, crs, tmp, npq, 0, col, npq)
	b.col2im(g, col, dxd, beta)
}

// ConvBackwardFilter computes dw = Σ_n dy ⋆ x + beta·dw.
func (b *Backend[T]) ConvBackwardFilter(g backend.ConvGeom, x, dy, dw backend.Buf, beta float32) {
	if !b.convCheck("ConvBackwardFilter", g) {
		return
	}
	xd := b.data("ConvBackwardFilter", "x", x, g.XLen())
	dyd := b.data("ConvBackwardFilter", "dy", dy, g.YLen())
	dwd := b.data("ConvBackwardFilter", "dw", dw, g.WLen())
	if b.err != nil {
		return
	}
	crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
	if dense(g) { // dw = dyᵀ [K, N] · x [N, CRS] + beta·dw
		b.sgemm(true, false, g.K, crs, g.N, 1, dyd, g.K, xd, crs, T(beta), dwd, crs)
		return
	}
	b.tmp = grow(b.tmp, g.K*npq)
	tmp := b.tmp
	b.nchwToKM(g, dyd, tmp)
	if x32, ok := any(xd).([]float32); ok {
		b.convBackwardFilter32(g, x32, any(tmp).([]float32), any(dwd).([]float32), beta)
		return
	}
	col, _ := b.workspaces(g)
	b.im2col(g, xd, col)
	b.sgemm(false, true, g.K, crs, npq, 1, tmp, npq, col, npq, T(beta), dwd, crs)
}

// BiasAdd adds bias[c] to channel c of y [n, c, hw].
func (b *Backend[T]) BiasAdd(y, bias backend.Buf, n, c, hw int) {
	yd := b.data("BiasAdd", "y", y, n*c*hw)
	bd := b.data("BiasAdd", "b", bias, c)
	if yd == nil || bd == nil {
		return
	}
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			p := yd[(i*c+ch)*hw : (i*c+ch+1)*hw]
			v := bd[ch]
			for j := range p {
				p[j] += v
			}
		}
	}
}

// BiasAct adds bias[ch] to channel ch of y and applies act, in one pass:
// each value goes through exactly the arithmetic of BiasAdd and then the
// activation's op.
func (b *Backend[T]) BiasAct(y, bias backend.Buf, n, c, hw int, act backend.Activation, slope float32) {
	yd := b.data("BiasAct", "y", y, n*c*hw)
	bd := b.data("BiasAct", "b", bias, c)
	if yd == nil || bd == nil {
		return
	}
	if act < backend.ActNone || act > backend.ActSigmoid {
		b.fail("BiasAct: unknown activation %d", act)
		return
	}
	if act == backend.ActNone {
		b.BiasAdd(y, bias, n, c, hw)
		return
	}
	s := T(slope)
	y32, is32 := any(yd).([]float32)
	b.each(n*c, n*c*hw, func(lo, hi int) {
		for plane := lo; plane < hi; plane++ {
			p := yd[plane*hw : (plane+1)*hw]
			v := bd[plane%c]
			switch act {
			case backend.ActLeakyReLU:
				if is32 {
					b.vec.Leaky(y32[plane*hw:(plane+1)*hw], float32(v), slope)
					continue
				}
				for j := range p {
					x := p[j] + v
					if x < 0 {
						x *= s
					}
					p[j] = x
				}
			case backend.ActTanh:
				for j := range p {
					p[j] = T(math.Tanh(float64(p[j] + v)))
				}
			case backend.ActSigmoid:
				for j := range p {
					p[j] = T(1 / (1 + math.Exp(-float64(p[j]+v))))
				}
			}
		}
	})
}

// BiasGrad sums dy [n, c, hw] over n and hw into db[c].
func (b *Backend[T]) BiasGrad(dy, db backend.Buf, n, c, hw int, beta float32) {
	dyd := b.data("BiasGrad", "dy", dy, n*c*hw)
	dbd := b.data("BiasGrad", "db", db, c)
	if dyd == nil || dbd == nil {
		return
	}
	// Channels split over the threads; each channel's sum runs in one
	// order, whatever the split.
	// Four channels go side by side, so that four chains of additions
	// (each waiting on the latency of the one before) run at once; each
	// channel's own sum keeps its order.
	b.each(c, n*c*hw, func(lo, hi int) {
		ch := lo
		for ; ch+4 <= hi; ch += 4 {
			var s0, s1, s2, s3 float64
			for i := 0; i < n; i++ {
				base := (i*c + ch) * hw
				p0 := dyd[base : base+hw]
				p1 := dyd[base+hw : base+2*hw]
				p2 := dyd[base+2*hw : base+3*hw]
				p3 := dyd[base+3*hw : base+4*hw]
				for j := range p0 {
					s0 += float64(p0[j])
					s1 += float64(p1[j])
					s2 += float64(p2[j])
					s3 += float64(p3[j])
				}
			}
			for k, s := range [4]float64{s0, s1, s2, s3} {
				dbd[ch+k] = T(s + float64(beta)*float64(dbd[ch+k]))
			}
		}
		for ; ch < hi; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range dyd[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			dbd[ch] = T(s + float64(beta)*float64(dbd[ch]))
		}
	})
}
