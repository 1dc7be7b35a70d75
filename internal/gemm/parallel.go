package gemm

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// serialFlops is the size m·n·k below which Sgemm runs on the calling
// goroutine alone: for smaller products the hand-off costs more than it
// saves.
const serialFlops = 1 << 19

// Parallel chunking: a product is cut along one dimension into about
// chunksPerThread chunks per thread, which are taken in turn by whichever
// thread is free, so that a thread that starts late or runs slowly (the
// machine may be shared) does less of the work.
//
// Cuts along m or n leave each value of C to one thread, which sums it
// exactly as a single thread would. A cut along k is made at the
// boundaries of the product's k blocks (see task), and the sum is kept in
// block order: the first chunk (blocks 0…b−1) is accumulated in C as a
// single thread would, every later block's alpha·A·B is written to a part
// buffer of its own, and the parts are added to C one block after the
// other, chunk by chunk as the chunks before them are in C (see finish).
// That is the single thread's arithmetic term by term (the micro-kernel
// adds a block into C by rounding alpha·A·B, then the sum), so the result
// is the same bit for bit whatever the number of threads, the size of the
// chunks or the scheduling. A chunk spans at least minChunkMN rows or
// columns, or minChunkK steps of k; the parts of a cut along k hold at most
// about maxParts values.
const (
	chunksPerThread = 2
	minChunkMN      = 128
	minChunkK       = 512
	maxParts        = 1 << 22
)

// spinTime is how long an idle worker goroutine polls for the next product,
// and the calling goroutine for the workers to finish, before they block.
// Waking a sleeping thread can take a long time (over 100µs on a virtual
// machine), longer than many products.
const spinTime = 200 * time.Microsecond

// split is the dimension a product is cut along.
type split int

const (
	splitM split = iota
	splitN
	splitK
	splitFor  // not a product: a loop run by For
	splitEach // the column chunks of SgemmEach
)

// job is a product cut into chunks, SgemmEach's chunks of columns or a
// loop of For's.
type job struct {
	t      task // the whole product
	dim    split
	size   int // rows, columns or steps of k per chunk (k: whole blocks)
	chunks int
	next   atomic.Int64 // next chunk to take

	// For: the loop body and the end of its range.
	fn func(lo, hi int)
	n  int

	each *eachJob // SgemmEach

	// Cuts along k: parts holds alpha·A·B of each k block after the first
	// chunk, m×n each, in block order; ready[c] says chunk c is computed,
	// added the number of chunks whose blocks are in C (under addMu). The
	// buffers are reused from call to call.
	parts []float32
	ready []atomic.Bool
	added atomic.Int64
	addMu sync.Mutex
}

// pool is the part of a Gemm that its worker goroutines share. It does not
// point back to the Gemm, so an unreachable Gemm can be cleaned up.
type pool struct {
	caller  *worker       // the calling goroutine's buffers
	workers []*worker     // served by the worker goroutines
	done    chan struct{} // a worker goroutine sends once per job it finished
	job     job           // the current job, reused from call to call
	closed  atomic.Bool
	once    sync.Once
}

func newPool(caller *worker, workers []*worker) *pool {
	p := &pool{caller: caller, workers: workers, done: make(chan struct{}, len(workers))}
	for _, w := range workers {
		w.jobs = make(chan *job, 1)
		go p.serve(w)
	}
	return p
}

func (p *pool) close() {
	p.once.Do(func() {
		p.closed.Store(true)
		for _, w := range p.workers {
			close(w.jobs)
		}
	})
}

// serve is a worker goroutine's loop.
func (p *pool) serve(w *worker) {
	for {
		spin(func() bool { return len(w.jobs) > 0 || p.closed.Load() })
		j, ok := <-w.jobs
		if !ok {
			return
		}
		j.work(w)
		p.done <- struct{}{}
	}
}

// spin polls ready for up to spinTime and reports whether it became true.
func spin(ready func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if ready() {
			return true
		}
		if i%64 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > spinTime {
				return false
			}
		}
	}
}

// plan decides how to cut an m×n×k product between g's threads: along dim
// into chunks pieces of size. One chunk means running it on the calling
// goroutine. Of the cuts that make at least two chunks, plan takes the one
// that packs the fewest elements, as each chunk packs its own blocks of A
// and B: cutting n repacks A for each chunk, cutting m repacks B, and
// cutting k costs a pass over C per k block after the first chunk instead.
// The choice changes the speed, never the result.
func (g *Gemm) plan(m, n, k int) (dim split, size, chunks int) {
	if float64(m)*float64(n)*float64(k) < serialFlops {
		return 0, 0, 1
	}
	target := chunksPerThread * g.threads
	mr, nr := g.kern.mr, g.kern.nr
	fm, fn, fk := float64(m), float64(n), float64(k)
	best := -1.0
	try := func(d split, extent, unit, minChunk int, cost func(chunks float64) float64) {
		c := min(target, extent/minChunk)
		if c < 2 {
			return
		}
		s := roundUp(ceilDiv(extent, c), unit)
		c = ceilDiv(extent, s)
		if c < 2 {
			return
		}
		if x := cost(float64(c)); best < 0 || x < best {
			best, dim, size, chunks = x, d, s, c
		}
	}
	try(splitN, n, nr, max(nr, minChunkMN), func(c float64) float64 { return c*fm*fk + fk*fn })
	try(splitM, m, mr, max(mr, minChunkMN), func(c float64) float64 { return c*fk*fn + fm*fk })
	// Along k the unit is the product's k block, and the parts (one m×n
	// buffer per block after the first chunk) must fit in maxParts.
	kb := blockK(k, g.kc)
	blocks := ceilDiv(k, kb)
	try(splitK, k, kb, max(kb, minChunkK), func(c float64) float64 {
		parts := float64(blocks - ceilDiv(blocks, int(c)))
		if parts*fm*fn > maxParts {
			return math.Inf(1)
		}
		return fm*fk + fk*fn + 2*fm*fn*parts
	})
	if best < 0 || math.IsInf(best, 1) {
		return 0, 0, 1
	}
	return dim, size, chunks
}

// parallel runs t cut along dim into chunks of size on the calling
// goroutine and as many worker goroutines as there are further chunks.
func (g *Gemm) parallel(t *task, dim split, size, chunks int) {
	p := g.pool
	j := &p.job
	j.t, j.dim, j.size, j.chunks = *t, dim, size, chunks
	j.next.Store(0)
	if dim == splitK {
		j.parts = grow(j.parts, ceilDiv(t.p1-size, t.kb)*t.i1*t.j1)
		if cap(j.ready) < chunks {
			j.ready = make([]atomic.Bool, chunks)
		}
		j.ready = j.ready[:chunks]
		for i := range j.ready {
			j.ready[i].Store(false)
		}
		j.added.Store(0)
	}
	p.run(j)
	if dim == splitK && j.added.Load() != int64(chunks) {
		panic("gemm: k chunks left out of C")
	}
}

// run hands j to as many worker goroutines as it has chunks after the
// first, works on it on the calling goroutine too, and waits until every
// chunk is done.
func (p *pool) run(j *job) {
	workers := p.workers[:min(len(p.workers), j.chunks-1)]
	for _, w := range workers {
		w.jobs <- j
	}
	if !testIdleCaller {
		j.work(p.caller)
	}
	spin(func() bool { return len(p.done) == len(workers) })
	for range workers {
		<-p.done
	}
}

// For runs fn(lo, hi) over [0, n) cut into contiguous chunks, on g's
// threads: the worker goroutines that run its products, which are likely
// still polling for work, and the calling goroutine. fn must give the same
// result however [0, n) is cut (each index's output computed on its own,
// no sums across indexes), as the chunks depend on the number of threads.
// Like Sgemm, For must not be called concurrently on the same Gemm, nor
// from within fn.
func (g *Gemm) For(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := min(n, chunksPerThread*g.threads)
	if chunks < 2 || g.pool.closed.Load() {
		fn(0, n)
		return
	}
	size := ceilDiv(n, chunks)
	j := &g.pool.job
	j.dim, j.size, j.chunks, j.fn, j.n = splitFor, size, ceilDiv(n, size), fn, n
	j.next.Store(0)
	g.pool.run(j)
	j.fn = nil
}

// finish marks k chunk c as computed and then, unless another thread is
// at it, adds to C every computed chunk whose predecessors are all in C, in
// chunk order. So the parts of a chunk are usually added by the thread that
// computed them, while the other threads compute later chunks.
func (j *job) finish(c int) {
	j.ready[c].Store(true)
	for {
		if !j.addMu.TryLock() {
			return // the thread holding addMu sees ready[c] below
		}
		for a := int(j.added.Load()); a < j.chunks && j.ready[a].Load(); a++ {
			j.addChunk(a)
			j.added.Store(int64(a + 1))
		}
		j.addMu.Unlock()
		// A chunk marked ready after the loop above looked at it, whose
		// thread found addMu locked, is added here.
		if a := int(j.added.Load()); a == j.chunks || !j.ready[a].Load() {
			return
		}
	}
}

// addChunk adds the parts of k chunk c to C, block after block (chunk 0
// was accumulated in C itself).
func (j *job) addChunk(c int) {
	t := &j.t
	if c == 0 {
		return
	}
	m, n := t.i1, t.j1
	for p := c * j.size; p < min(t.p1, (c+1)*j.size); p += t.kb {
		part := j.part(p)
		if t.ldc == n {
			addTo(t.c[:m*n], part)
			continue
		}
		for r := range m {
			addTo(t.c[r*t.ldc:r*t.ldc+n], part[r*n:r*n+n])
		}
	}
}

// part returns the part buffer of the k block that starts at step p (not
// in the first chunk).
func (j *job) part(p int) []float32 {
	mn := j.t.i1 * j.t.j1
	b := (p - j.size) / j.t.kb
	return j.parts[b*mn : (b+1)*mn]
}

// addTo adds src to dst element by element, each sum rounded once.
func addTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i := addVec(dst, src); i < len(src); i++ {
		dst[i] += src[i]
	}
}

// testIdleCaller makes the calling goroutine leave all chunks to the
// workers, for tests.
var testIdleCaller bool

// work takes chunks of j and runs them on w until none is left. The first
// chunk of a cut along k is accumulated into C, each later k block into its
// part buffer.
func (j *job) work(w *worker) {
	for {
		c := int(j.next.Add(1)) - 1
		if c >= j.chunks {
			return
		}
		lo := c * j.size
		switch j.dim {
		case splitFor:
			j.fn(lo, min(j.n, lo+j.size))
			continue
		case splitEach:
			j.each.run(w, c)
			continue
		}
		s := j.t
		switch j.dim {
		case splitM:
			s.i0, s.i1 = lo, min(s.i1, lo+j.size)
		case splitN:
			s.j0, s.j1 = lo, min(s.j1, lo+j.size)
		case splitK:
			hi := min(s.p1, lo+j.size)
			if c == 0 {
				s.p0, s.p1 = lo, hi
				w.run(&s)
			} else {
				s.ldc, s.beta = s.j1, 0
				for p := lo; p < hi; p += s.kb {
					s.c = j.part(p)
					s.p0, s.p1 = p, min(hi, p+s.kb)
					w.run(&s)
				}
			}
			j.finish(c)
			continue
		}
		w.run(&s)
	}
}
