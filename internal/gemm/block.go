package gemm

import "unsafe"

// worker holds one thread's packing buffers.
type worker struct {
	bufA []float32 // packed mc×kc block of op(A)
	bufB []float32 // packed kc×nc block of op(B)
	tile []float32 // mr×nr scratch tile for edges of C
	cbuf []float32 // a chunk of C (SgemmEach)

	jobs chan *job // work for a worker goroutine
}

// task is a piece of an Sgemm call: rows [i0, i1) and columns [j0, j1) of
// C, accumulated over [p0, p1) of the k dimension.
//
// The k dimension of the whole product is cut into blocks of kb steps (the
// last one shorter), which the micro-kernel sums one at a time: each value
// of C becomes beta·C + alpha·(block 0), then + alpha·(block 1), and so on,
// every term rounded as it is added. kb depends only on k (see blockK), and
// p0 is always the start of a block, so a task that covers some blocks does
// exactly the arithmetic the whole product does on them, whichever thread
// runs it and however the product was split.
type task struct {
	kern           kernel
	kc, mc, nc     int
	kb             int // steps of k per block
	transA, transB bool
	i0, i1         int
	j0, j1         int
	p0, p1         int
	alpha, beta    float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	bp             Packer // packs op(B) instead of packB when not nil
	c              []float32
	ldc            int
}

// run computes task t on w's buffers.
func (w *worker) run(t *task) {
	k := t.kern
	mr, nr := k.mr, k.nr
	kcMax := min(t.kb, t.p1-t.p0)
	mcMax := min(t.mc, roundUp(t.i1-t.i0, mr))
	ncMax := min(t.nc, roundUp(t.j1-t.j0, nr))
	w.bufA = grow(w.bufA, ceilDiv(mcMax, mr)*panelStride(mr, kcMax))
	w.bufB = grow(w.bufB, ceilDiv(ncMax, nr)*panelStride(nr, kcMax))
	w.tile = grow(w.tile, mr*nr)

	for jc := t.j0; jc < t.j1; jc += ncMax {
		nc := min(ncMax, t.j1-jc)
		for pc := t.p0; pc < t.p1; pc += kcMax {
			kc := min(kcMax, t.p1-pc)
			beta := t.beta
			if pc > t.p0 {
				beta = 1
			}
			if t.bp != nil {
				t.bp.PackB(w.bufB, panelStride(nr, kc), nr, pc, kc, jc, nc)
			} else {
				packB(w.bufB, t.b, t.ldb, t.transB, pc, kc, jc, nc, &k)
			}
			for ic := t.i0; ic < t.i1; ic += mcMax {
				mc := min(mcMax, t.i1-ic)
				packA(w.bufA, t.a, t.lda, t.transA, ic, mc, pc, kc, &k)
				w.macro(t, k, w.bufA, ic, mc, jc, nc, kc, beta)
			}
		}
	}
}

// macro multiplies the packed mc×kc block of A in bufA by the packed kc×nc
// block of B into C(ic:ic+mc, jc:jc+nc).
func (w *worker) macro(t *task, k kernel, bufA []float32, ic, mc, jc, nc, kc int, beta float32) {
	mr, nr := k.mr, k.nr
	ldc := t.ldc
	psA, psB := panelStride(mr, kc), panelStride(nr, kc)
	for jr := 0; jr < nc; jr += nr {
		bp := w.bufB[jr/nr*psB : jr/nr*psB+nr*kc]
		cols := min(nr, nc-jr)
		for ir := 0; ir < mc; ir += mr {
			ap := bufA[ir/mr*psA : ir/mr*psA+mr*kc]
			rows := min(mr, mc-ir)
			off := (ic+ir)*ldc + jc + jr
			fn, width := k.fn, nr
			if cols <= nr/2 && k.half != nil {
				fn, width = k.half, nr/2
			}
			if rows == mr && cols == width {
				fn(kc, ap, bp, t.c[off:off+(mr-1)*ldc+width], ldc, t.alpha, beta)
				continue
			}
			// Edge tile: compute it in full into the scratch tile,
			// then merge the part that lies inside C.
			fn(kc, ap, bp, w.tile, nr, t.alpha, 0)
			for r := 0; r < rows; r++ {
				cr := t.c[off+r*ldc : off+r*ldc+cols]
				tr := w.tile[r*nr : r*nr+cols]
				switch beta {
				case 0:
					copy(cr, tr)
				case 1:
					for j, v := range tr {
						cr[j] += v
					}
				default:
					for j, v := range tr {
						cr[j] = v + beta*cr[j]
					}
				}
			}
		}
	}
}

// scale sets C = beta·C (C = 0 when beta == 0, whatever C held).
func scale(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		cr := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(cr)
		case 1:
		default:
			for j := range cr {
				cr[j] *= beta
			}
		}
	}
}

// grow returns a slice of length n whose first element is 64-byte aligned,
// reusing buf when it is big enough.
func grow(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	const align = 64 / 4
	s := make([]float32, n+align)
	off := int(uintptr(unsafe.Pointer(&s[0]))%64) / 4
	if off != 0 {
		off = align - off
	}
	return s[off : off+n : off+n]
}

// blockK returns the number of steps of k per block of a product with k
// steps when a block spans at most kc: the blocks are balanced, so k = 300
// is two blocks of 150, not 256 + 44.
func blockK(k, kc int) int { return ceilDiv(k, ceilDiv(k, kc)) }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }
