package gemm

// SgemmEach computes C = alpha·op(A)·B, m×n, with B supplied by a Packer,
// a chunk of columns at a time, and hands each chunk to done as soon as it
// is computed, on the thread that computed it:
//
//	done(j0, j1, c) with c[i·(j1−j0) + j] = C(i, j0+j)
//
// Chunks are [0, chunk), [chunk, 2·chunk), … ; each is made in a buffer of
// its own thread, small enough to stay in that core's cache, so that done
// reads it from there rather than from memory: a consumer of C that needs
// only a chunk at a time (col2im needs the columns of whole images) saves
// the round trip of the whole C through memory. c is valid only during
// the call; done is called concurrently for different chunks and must
// write nothing that another chunk's call writes.
//
// op(A) is packed once, before the chunks start, and shared; each value of
// a chunk is summed over the same blocks of k, in the same order, as
// Sgemm sums it, so the values handed to done are Sgemm's bits, on any
// number of threads.
func (g *Gemm) SgemmEach(transA bool, m, n, k int, alpha float32, a []float32, lda int, b Packer, chunk int, done func(j0, j1 int, c []float32)) {
	if m < 0 || n < 0 || k < 0 || chunk < 1 {
		panic("gemm: negative dimension or chunk")
	}
	if m == 0 || n == 0 {
		return
	}
	if k > 0 && alpha != 0 {
		checkMat("A", transA, m, k, a, lda)
	}
	e := &g.each
	e.t = task{transA: transA, a: a, lda: lda, bp: b}
	g.frame(&e.t, m, n, k, alpha, 0)
	e.chunk, e.done = chunk, done
	g.prepackA(&e.a, &e.t)
	chunks := ceilDiv(n, chunk)
	if g.threads > 1 && chunks > 1 && !g.pool.closed.Load() {
		j := &g.pool.job
		j.dim, j.size, j.chunks, j.each = splitEach, chunk, chunks, e
		j.next.Store(0)
		g.pool.run(j)
		j.each = nil
	} else {
		for c := 0; c < chunks; c++ {
			e.run(g.w[0], c)
		}
	}
	e.done, e.t.a, e.t.bp = nil, nil, nil
}

// eachJob is the state of an SgemmEach call that its threads share: the
// product, the chunk size and consumer, and op(A) packed once for all.
type eachJob struct {
	t     task
	chunk int
	done  func(j0, j1 int, c []float32)
	a     packedA
}

// packedA is all of op(A) of a product packed ahead, block by block as
// worker.run packs it, for threads that each compute some columns of C
// and would otherwise each pack all of op(A) again. (For Sgemm's own cuts
// along n this measured no faster: packed ahead, a block comes from L3
// rather than from L2 where it was just packed.)
type packedA struct {
	t          task // the product being packed, during prepackA
	packBlocks func(lo, hi int)
	buf        []float32
	block      int // floats per packed block
	kcMax      int // steps of k per block (the product's k block)
	mcMax      int // rows per block
	icBlocks   int
}

// at returns the packed block of rows from ic and steps of k from pc.
func (a *packedA) at(pc, ic int) []float32 {
	off := (pc/a.kcMax*a.icBlocks + ic/a.mcMax) * a.block
	return a.buf[off : off+a.block]
}

// prepackA packs op(A) of t (rows 0…m, steps 0…k) into a, the blocks
// spread over g's threads.
func (g *Gemm) prepackA(a *packedA, t *task) {
	k := t.kern
	m, kk := t.i1, t.p1
	if kk == 0 || t.alpha == 0 {
		return
	}
	a.kcMax = min(t.kb, kk)
	a.mcMax = min(t.mc, roundUp(m, k.mr))
	a.block = ceilDiv(a.mcMax, k.mr) * panelStride(k.mr, a.kcMax)
	a.icBlocks = ceilDiv(m, a.mcMax)
	blocks := ceilDiv(kk, a.kcMax) * a.icBlocks
	a.buf = grow(a.buf, blocks*a.block)
	a.t = *t
	g.For(blocks, a.packBlocks)
	a.t = task{}
}

// pack packs blocks [lo, hi) of a.t's op(A), in order pc, then ic. Its
// method value is made once, in New (packBlocks), so that handing it to
// For allocates nothing.
func (a *packedA) pack(lo, hi int) {
	t := &a.t
	k := t.kern
	m, kk := t.i1, t.p1
	for b := lo; b < hi; b++ {
		pc, ic := b/a.icBlocks*a.kcMax, b%a.icBlocks*a.mcMax
		packA(a.at(pc, ic), t.a, t.lda, t.transA, ic, min(a.mcMax, m-ic), pc, min(a.kcMax, kk-pc), &k)
	}
}

// run computes chunk c into w's chunk buffer and hands it to done.
func (e *eachJob) run(w *worker, c int) {
	t := e.t // a copy: its C is w's buffer
	k := t.kern
	m, kk := t.i1, t.p1
	j0 := c * e.chunk
	cols := min(e.chunk, t.j1-j0)
	w.cbuf = grow(w.cbuf, m*cols)
	t.c, t.ldc = w.cbuf[:m*cols], cols
	if kk == 0 || t.alpha == 0 {
		clear(t.c)
		e.done(j0, j0+cols, t.c)
		return
	}
	nr := k.nr
	a := &e.a
	w.bufB = grow(w.bufB, ceilDiv(cols, nr)*panelStride(nr, a.kcMax))
	w.tile = grow(w.tile, k.mr*nr)
	for pc := 0; pc < kk; pc += a.kcMax {
		kc := min(a.kcMax, kk-pc)
		beta := float32(0)
		if pc > 0 {
			beta = 1
		}
		t.bp.PackB(w.bufB, panelStride(nr, kc), nr, pc, kc, j0, cols)
		for ic := 0; ic < m; ic += a.mcMax {
			w.macro(&t, k, a.at(pc, ic), ic, min(a.mcMax, m-ic), 0, cols, kc, beta)
		}
	}
	e.done(j0, j0+cols, t.c)
}
