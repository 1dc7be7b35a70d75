package cpu

import (
	"sync"
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
)

// Implicit-GEMM convolutions of the float32 backend. The GEMMs of conv.go
// read their B operand from an explicit matrix: col, C·R·S × N·P·Q, four
// times the size of the images it comes from for PAD's 4×4 stride-2
// layers, written by im2col and read back once by the GEMM's packing. Here
// the GEMM's packing reads the images themselves (gemm.Packer): the values
// packed are the values col would hold, so forward and backward-filter
// give the bits of the explicit path, without writing or reading col.
//
// Backward-data keeps the explicit form, a GEMM into col, then col2im,
// but makes col a few images at a time and consumes each chunk in cache
// (convBackwardData32). Its phase-by-phase form, each of the stride²
// phases of dx a stride-1 correlation of dy, would gather B from dy, which
// in PAD's layers has twice as many channels as dx, so twice the values
// col holds: tried, it measured 2–7× slower on PAD's layers.

// tap is one row of a gathered B operand: the source plane and the offset
// of the tap from the output position, with the output positions whose
// source lies inside the plane, [y0, y1) × [x0, x1).
type tap struct {
	c, dh, dw      int
	y0, y1, x0, x1 int
}

// gatherB is op(B) of a convolution's forward GEMM, the im2col matrix
// (and, read as one-row planes, backward-data's dy; see convBackwardCols32):
// row p is taps[p], column j is output position (n, y, x) of an ny×nx grid
// (j = (n·ny + y)·nx + x), and the value is src[n, taps[p].c, y·st + dh,
// x·st + dw], zero outside the h×w plane. src holds N·planes planes.
type gatherB struct {
	src          []float32
	planes, h, w int
	ny, nx, st   int
	taps         []tap
}

// newTap returns the tap of plane c at offset (dh, dw) for the grid of b.
func (b *gatherB) newTap(c, dh, dw int) tap {
	t := tap{c: c, dh: dh, dw: dw}
	t.y0, t.y1 = validRange(b.ny, b.st, dh, b.h)
	t.x0, t.x1 = validRange(b.nx, b.st, dw, b.w)
	return t
}

// gatherRun is a run of a block's columns that lie on one output row:
// output positions (n, y, x…x+len−1) of the grid, whose tap-independent
// source offset is src (n·planes·h·w + y·st·w + x·st) and which go to
// panel offset dst.
type gatherRun struct{ src, dst, y, x, len int }

// runPool recycles the run lists of PackB, one per call in flight.
var runPool = sync.Pool{New: func() any { return new([]gatherRun) }}

// PackB implements gemm.Packer. The columns of the block are cut once
// into runs (one output row each, not crossing a panel's edge); then each
// row of B, a tap, is a gather per run from the tap's offset, with zeros
// where the tap reaches into the padding.
func (b *gatherB) PackB(dst []float32, ps, nr, p0, kc, j0, nc int) {
	panels := (nc + nr - 1) / nr
	_ = dst[(panels-1)*ps+kc*nr-1]
	yx := b.ny * b.nx
	hw := b.h * b.w
	if p0+kc > len(b.taps) || len(b.src) < ((j0+nc-1)/yx+1)*b.planes*hw {
		panic("gatherB: block outside the matrix")
	}
	rp := runPool.Get().(*[]gatherRun)
	runs := (*rp)[:0]
	n, y, x := j0/yx, j0%yx/b.nx, j0%b.nx
	for col := 0; col < nc; {
		run := min(b.nx-x, nc-col, nr-col%nr)
		runs = append(runs, gatherRun{
			src: n*b.planes*hw + y*b.st*b.w + x*b.st,
			dst: col/nr*ps + col%nr,
			y:   y, x: x, len: run,
		})
		col += run
		if x += run; x == b.nx {
			x = 0
			if y++; y == b.ny {
				y, n = 0, n+1
			}
		}
	}
	d0 := unsafe.Pointer(&dst[0])
	src := unsafe.Pointer(&b.src[0])
	st := b.st
	for p := 0; p < kc; p++ {
		t := &b.taps[p0+p]
		tapOff := t.c*hw + t.dh*b.w + t.dw
		row := p * nr
		for i := range runs {
			u := &runs[i]
			d := unsafe.Add(d0, (u.dst+row)*4)
			if u.y < t.y0 || u.y >= t.y1 {
				zero(d, u.len)
				continue
			}
			s := unsafe.Add(src, (u.src+tapOff)*4)
			if u.x >= t.x0 && u.x+u.len <= t.x1 {
				// gather1D's loop inline for PAD's stride 2 and runs of
				// 4, 8 and 16: the call costs 10–15 % of the packing
				// (BenchmarkPack).
				if st == 2 && u.len&3 == 0 {
					for k := 0; k < u.len; k += 4 {
						a0 := *(*float32)(unsafe.Add(s, k*8))
						a1 := *(*float32)(unsafe.Add(s, k*8+8))
						a2 := *(*float32)(unsafe.Add(s, k*8+16))
						a3 := *(*float32)(unsafe.Add(s, k*8+24))
						*(*[4]float32)(unsafe.Add(d, k*4)) = [4]float32{a0, a1, a2, a3}
					}
					continue
				}
				gather1D(d, s, u.len, st)
				continue
			}
			// Part of the run in the padding: zeros left of x0, values
			// up to x1, zeros after.
			lo := min(max(u.x, t.x0), u.x+u.len)
			hi := max(min(u.x+u.len, t.x1), lo)
			zero(d, lo-u.x)
			if hi > lo {
				gather1D(unsafe.Add(d, (lo-u.x)*4), unsafe.Add(s, (lo-u.x)*st*4), hi-lo, st)
			}
			zero(unsafe.Add(d, (hi-u.x)*4), u.x+u.len-hi)
		}
		if nc%nr != 0 {
			clear(dst[(panels-1)*ps+row+nc%nr : (panels-1)*ps+row+nr])
		}
	}
	*rp = runs
	runPool.Put(rp)
}

// zero clears n floats at d.
func zero(d unsafe.Pointer, n int) {
	for i := 0; i < n; i++ {
		*(*float32)(unsafe.Add(d, i*4)) = 0
	}
}

// gather1D sets d[i] = s[i·stride] for i < n.
func gather1D(d, s unsafe.Pointer, n, stride int) {
	if stride == 1 {
		copy(unsafe.Slice((*float32)(d), n), unsafe.Slice((*float32)(s), n))
		return
	}
	st := stride * 4
	i := 0
	for ; i+4 <= n; i += 4 {
		a := *(*float32)(unsafe.Add(s, i*st))
		b := *(*float32)(unsafe.Add(s, (i+1)*st))
		c := *(*float32)(unsafe.Add(s, (i+2)*st))
		e := *(*float32)(unsafe.Add(s, (i+3)*st))
		*(*float32)(unsafe.Add(d, i*4)) = a
		*(*float32)(unsafe.Add(d, i*4+4)) = b
		*(*float32)(unsafe.Add(d, i*4+8)) = c
		*(*float32)(unsafe.Add(d, i*4+12)) = e
	}
	for ; i < n; i++ {
		*(*float32)(unsafe.Add(d, i*4)) = *(*float32)(unsafe.Add(s, i*st))
	}
}

// patchCols is op(B) of a convolution's backward-filter GEMM, the
// transposed im2col matrix: row p is output position (n, y, x) of the
// P×Q grid, column j is tap (c, r, s), and the value is x[n, c, y·stride +
// r − pad, x·stride + s − pad], zero in the padding. A panel's columns
// are runs of consecutive s, each a contiguous piece of an input row.
type patchCols struct {
	x []float32
	g backend.ConvGeom
}

// colRun is a run of a panel's columns: taps (c, r, s0…s0+n−1) at panel
// column at; off = (c·H + r)·W + s0 is its offset in an image.
type colRun struct{ r, s0, n, at, off int }

// PackB implements gemm.Packer. Each panel's columns are cut into runs
// once; then, position by position, each run is a piece of an input row.
// Where the whole R×S window of a position lies inside the image (most
// positions of PAD's layers), no run needs a bounds check.
func (pc *patchCols) PackB(dst []float32, ps, nr, p0, kc, j0, nc int) {
	g := pc.g
	panels := (nc + nr - 1) / nr
	_ = dst[(panels-1)*ps+kc*nr-1]
	_ = pc.x[g.N*g.C*g.H*g.W-1]
	if p0+kc > g.N*g.P*g.Q || j0+nc > g.C*g.R*g.S {
		panic("patchCols: block outside the matrix")
	}
	x0 := unsafe.Pointer(&pc.x[0])
	d0 := unsafe.Pointer(&dst[0])
	chw, pq := g.C*g.H*g.W, g.P*g.Q
	var store [32]colRun
	for q := 0; q < panels; q++ {
		cols := min(nr, nc-q*nr)
		runs := store[:0]
		j := j0 + q*nr
		c, r, s := j/(g.R*g.S), j/g.S%g.R, j%g.S
		four := true // every run a whole row of 4 taps
		for at := 0; at < cols; {
			n := min(g.S-s, cols-at)
			runs = append(runs, colRun{r, s, n, at, (c*g.H+r)*g.W + s})
			four = four && n == 4
			at += n
			if s = 0; r+1 == g.R {
				r, c = 0, c+1
			} else {
				r++
			}
		}
		d := unsafe.Add(d0, q*ps*4)
		n, y, xo := p0/pq, p0%pq/g.Q, p0%g.Q
		for p := 0; p < kc; p++ {
			row := unsafe.Add(d, p*nr*4)
			hb, wb := y*g.Stride-g.Pad, xo*g.Stride-g.Pad
			base := n*chw + hb*g.W + wb // offset of the window's corner
			if four && hb >= 0 && hb+g.R <= g.H && wb >= 0 && wb+g.S <= g.W {
				for i := range runs {
					u := &runs[i]
					*(*[4]float32)(unsafe.Add(row, u.at*4)) = *(*[4]float32)(unsafe.Add(x0, (base+u.off)*4))
				}
			} else {
				for i := range runs {
					u := &runs[i]
					out := unsafe.Add(row, u.at*4)
					h, w := hb+u.r, wb+u.s0
					if h < 0 || h >= g.H {
						zero(out, u.n)
						continue
					}
					line := unsafe.Add(x0, (base+u.off-u.s0-wb)*4) // start of input row h
					for i := 0; i < u.n; i++ {
						v := float32(0)
						if wi := w + i; wi >= 0 && wi < g.W {
							v = *(*float32)(unsafe.Add(line, wi*4))
						}
						*(*float32)(unsafe.Add(out, i*4)) = v
					}
				}
			}
			zero(unsafe.Add(row, cols*4), nr-cols)
			if xo++; xo == g.Q {
				xo = 0
				if y++; y == g.P {
					y, n = 0, n+1
				}
			}
		}
	}
}

// convForward32 is ConvForward on the float32 backend: tmp [K, N·P·Q] =
// w · col with col packed from x, handed over a few images at a time
// (gemm.SgemmEach) and put in place in y [N, K, P·Q] by the thread that
// made them, while they are in its cache.
func (b *Backend[T]) convForward32(g backend.ConvGeom, x, w, y []float32) {
	gb := &b.gather
	*gb = gatherB{src: x, planes: g.C, h: g.H, w: g.W, ny: g.P, nx: g.Q, st: g.Stride, taps: grow(gb.taps, g.C*g.R*g.S)}
	for row := range gb.taps {
		c, r, s := row/(g.R*g.S), row/g.S%g.R, row%g.S
		gb.taps[row] = gb.newTap(c, r-g.Pad, s-g.Pad)
	}
	crs, pq, npq := g.C*g.R*g.S, g.P*g.Q, g.N*g.P*g.Q
	images := max(1, colChunk/(g.K*pq))
	b.flops.Add(2 * uint64(g.K) * uint64(npq) * uint64(crs))
	b.gemm.SgemmEach(false, g.K, npq, crs, 1, w, crs, gb, images*pq, func(j0, j1 int, tmp []float32) {
		cols := j1 - j0
		for n := j0 / pq; n < j1/pq; n++ {
			for k := 0; k < g.K; k++ {
				copy(y[(n*g.K+k)*pq:(n*g.K+k+1)*pq], tmp[k*cols+n*pq-j0:][:pq])
			}
		}
	})
	gb.src = nil
}

// convBackwardData32 is ConvBackwardData on the float32 backend: col =
// wᵀ · dy, then col2im into dx. dy [N, K, P·Q] is read as the [K, N·P·Q]
// matrix that nchwToKM would write, packed straight from dy: a gatherB
// whose planes are dy's (n, k) planes laid out as one row of P·Q, so that
// a run is as long as a whole plane. col never exists whole: the product
// hands it over a few images at a time (gemm.SgemmEach), each chunk small
// enough to stay in cache, and the thread that made a chunk adds it into
// those images' planes of dx at once. The values and the order of the
// additions are col2im's, so are the bits.
func (b *Backend[T]) convBackwardData32(g backend.ConvGeom, dy, w, dx []float32, beta float32) {
	pq := g.P * g.Q
	gb := &b.gather
	*gb = gatherB{src: dy, planes: g.K, h: 1, w: pq, ny: 1, nx: pq, st: 1, taps: grow(gb.taps, g.K)}
	for k := range gb.taps {
		gb.taps[k] = gb.newTap(k, 0, 0)
	}
	crs, npq, chw := g.C*g.R*g.S, g.N*pq, g.C*g.H*g.W
	images := max(1, colChunk/(crs*pq))
	b.flops.Add(2 * uint64(crs) * uint64(npq) * uint64(g.K))
	b.gemm.SgemmEach(true, crs, npq, g.K, 1, w, crs, gb, images*pq, func(j0, j1 int, col []float32) {
		gg := g
		gg.N = (j1 - j0) / pq
		planes := dx[j0/pq*chw : j1/pq*chw]
		scaleBy(planes, beta)
		col2imPlanes32(gg, col, planes, 0, gg.N*g.C)
	})
	gb.src = nil
}

// colChunk is the size, in values, of the chunks of the product's output
// (col in backward-data, the output before reordering in forward) that
// are made and consumed at a time: 64 Ki values, 256 KiB, which stay in a
// core's cache between the product and their consumer.
const colChunk = 1 << 16

// convBackwardFilter32 is ConvBackwardFilter's product on the float32
// backend: dw = tmp · colᵀ + beta·dw, with colᵀ packed from x.
func (b *Backend[T]) convBackwardFilter32(g backend.ConvGeom, x, tmp, dw []float32, beta float32) {
	crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
	b.flops.Add(2 * uint64(g.K) * uint64(npq) * uint64(crs))
	b.patches = patchCols{x: x, g: g}
	b.gemm.SgemmPacked(false, g.K, crs, npq, 1, tmp, npq, &b.patches, beta, dw, crs)
	b.patches.x = nil
}
