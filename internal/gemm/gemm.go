// Package gemm is pad's single-precision matrix multiply for the CPU
// backend: C = alpha·op(A)·op(B) + beta·C on row-major matrices, spread over
// a fixed number of threads.
//
// The implementation follows the blocked scheme of Goto and van de Geijn
// (and BLIS): op(B) is packed kc×nc at a time into contiguous micro-panels
// of nr columns, op(A) mc×kc at a time into micro-panels of mr rows, and a
// register-blocked micro-kernel computes each mr×nr tile of C from one
// micro-panel of each. On amd64 the micro-kernels (and the packing) are
// written in assembly for AVX-512 and for AVX2+FMA and chosen at run time;
// elsewhere, or without FMA, a pure-Go kernel is used.
//
// A product big enough to be worth it is cut into chunks along m, n or k,
// which the calling goroutine and the worker goroutines started by New take
// in turn, each packing into its own buffers.
//
// The result does not depend on the number of threads, nor on how a product
// is cut or which thread runs which chunk: every value of C is summed over
// the same blocks of k (a function of k alone), in block order, with the
// same rounding, as a single thread does, and every micro-kernel sums it
// as the same chain of fused multiply-adds (the pure-Go kernel with an
// exact software FMA where Go does not fuse, fma_soft.go). A run can
// therefore move between machines with different core counts, or from
// AVX-512 to AVX2 or to the pure-Go fallback, without changing a bit.
package gemm

import "runtime"

// Default cache blocking: kc steps of k per packed panel (the B micro-panel
// of kc·nr values stays in L1), mc rows of A per packed block (in L2) and
// nc columns of B per packed block (in L3).
const (
	defaultKC = 256
	defaultMC = 192
	defaultNC = 4096
)

// Gemm multiplies matrices using a fixed number of threads. It owns its
// packing buffers and worker goroutines, so a Gemm must not be used by
// several goroutines at once; use one Gemm per goroutine instead.
type Gemm struct {
	threads int
	kern    kernel
	kc      int
	mc      int
	nc      int

	// w[0] is used by the calling goroutine, w[1:] by the worker
	// goroutines started by New.
	w    []*worker
	pool *pool
	each eachJob // SgemmEach's shared state, reused from call to call
}

// New returns a Gemm that uses up to threads threads (at least 1). It
// starts threads-1 worker goroutines, which Close stops; they are also
// stopped once the Gemm becomes unreachable.
//
// After each product the workers keep polling for the next one for a
// short while (spinTime) before they go to sleep, so that the products of
// a sequence start on all threads at once.
func New(threads int) *Gemm { return newGemm(threads, availableKernels()[0]) }

// NewPortable is New with the pure-Go micro-kernel, whatever the CPU: the
// same bits as New's, to compare the two.
func NewPortable(threads int) *Gemm { return newGemm(threads, genericKernel) }

func newGemm(threads int, k kernel) *Gemm {
	if threads < 1 {
		threads = 1
	}
	g := &Gemm{
		threads: threads,
		kc:      defaultKC,
		mc:      defaultMC,
		nc:      defaultNC,
	}
	g.setKernel(k)
	g.w = make([]*worker, threads)
	for i := range g.w {
		g.w[i] = &worker{}
	}
	g.pool = newPool(g.w[0], g.w[1:])
	g.each.a.packBlocks = g.each.a.pack
	runtime.AddCleanup(g, (*pool).close, g.pool)
	return g
}

// setKernel makes g use micro-kernel k, rounding mc and nc to its tile.
func (g *Gemm) setKernel(k kernel) {
	g.kern = k
	g.mc = max(k.mr, defaultMC/k.mr*k.mr)
	g.nc = max(k.nr, defaultNC/k.nr*k.nr)
}

// Threads returns the number of threads g uses.
func (g *Gemm) Threads() int { return g.threads }

// Close stops g's worker goroutines. Sgemm may still be called after Close
// but then runs on the calling goroutine only.
func (g *Gemm) Close() { g.pool.close() }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ
// (transA, transB), op(A) is m×k, op(B) is k×n and C is m×n; all matrices
// are row-major with leading dimensions lda, ldb, ldc. With beta == 0, C
// need not be initialised (NaNs in it are overwritten); with alpha == 0 or
// k == 0, A and B are not read. Sgemm panics if a slice is too short for
// its dimensions. It must not be called concurrently on the same Gemm.
//
// The result is the same bit for bit for any number of threads and with
// any micro-kernel: every one, assembly or pure Go, computes each value as
// the same chain of fused multiply-adds.
func (g *Gemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	checkMat("A", transA, m, k, a, lda)
	checkMat("B", transB, k, n, b, ldb)
	g.run(task{
		transA: transA, transB: transB,
		a: a, lda: lda, b: b, ldb: ldb,
	}, m, n, k, alpha, beta, c, ldc)
}

// Packer supplies op(B) of a product that is not stored as a matrix (the
// patches of an image, say) by packing blocks of it the way Sgemm packs a
// stored op(B). It is called from several goroutines at once, each with
// its own dst, so it must not change shared state.
type Packer interface {
	// PackB writes the kc×nc block of op(B) whose top-left element is
	// op(B)(p0, j0) to dst as ⌈nc/nr⌉ micro-panels of nr columns, ps
	// floats apart: dst[(c/nr)·ps + p·nr + c%nr] = op(B)(p0+p, j0+c) for
	// p < kc, c < nc, and 0 for nc ≤ c < ⌈nc/nr⌉·nr. Nothing else of dst
	// may be written.
	PackB(dst []float32, ps, nr, p0, kc, j0, nc int)
}

// SgemmPacked is Sgemm with op(B), k×n, supplied by a Packer. Packing is
// the only thing that differs: each value of C is summed over the same
// blocks of k, in the same order, so the result is the same bit for bit as
// Sgemm's on the matrix that b packs.
func (g *Gemm) SgemmPacked(transA bool, m, n, k int, alpha float32, a []float32, lda int, b Packer, beta float32, c []float32, ldc int) {
	if trivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	checkMat("A", transA, m, k, a, lda)
	g.run(task{transA: transA, a: a, lda: lda, bp: b}, m, n, k, alpha, beta, c, ldc)
}

// trivial checks C's dimensions and, when the product is empty or alpha or
// k is zero, does all there is to do (C = beta·C) and returns true.
func trivial(m, n, k int, alpha, beta float32, c []float32, ldc int) bool {
	if m < 0 || n < 0 || k < 0 {
		panic("gemm: negative dimension")
	}
	if ldc < max(1, n) {
		panic("gemm: ldc < n")
	}
	if m == 0 || n == 0 {
		return true
	}
	if len(c) < (m-1)*ldc+n {
		panic("gemm: C too short")
	}
	if k == 0 || alpha == 0 {
		scale(m, n, beta, c, ldc)
		return true
	}
	return false
}

// run computes the m×n×k product t describes (its operands set), on the
// calling goroutine or cut between g's threads.
func (g *Gemm) run(t task, m, n, k int, alpha, beta float32, c []float32, ldc int) {
	g.frame(&t, m, n, k, alpha, beta)
	t.c, t.ldc = c, ldc
	if g.threads > 1 && !g.pool.closed.Load() {
		if dim, size, chunks := g.plan(m, n, k); chunks > 1 {
			g.parallel(&t, dim, size, chunks)
			return
		}
	}
	g.w[0].run(&t)
}

// frame sets what every task of an m×n×k product shares: g's kernel and
// blocking, the product's k block, the whole ranges of rows, columns and
// k, alpha and beta.
func (g *Gemm) frame(t *task, m, n, k int, alpha, beta float32) {
	t.kern, t.kc, t.mc, t.nc, t.kb = g.kern, g.kc, g.mc, g.nc, blockK(max(k, 1), g.kc)
	t.i0, t.i1, t.j0, t.j1, t.p0, t.p1 = 0, m, 0, n, 0, k
	t.alpha, t.beta = alpha, beta
}

// checkMat panics unless x is long enough to hold op(X), an r×c matrix
// stored row-major with leading dimension ld (transposed when trans).
func checkMat(name string, trans bool, r, c int, x []float32, ld int) {
	if trans {
		r, c = c, r
	}
	if ld < max(1, c) {
		panic("gemm: leading dimension of " + name + " too small")
	}
	if len(x) < (r-1)*ld+c {
		panic("gemm: " + name + " too short")
	}
}
