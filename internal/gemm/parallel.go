package gemm

import (
	"sync"
	"sync/atomic"
	"time"
)

// serialFlops is the size m·n·k below which Sgemm runs on the calling
// goroutine alone: for smaller products the hand-off costs more than it
// saves.
const serialFlops = 1 << 19

// Parallel chunking: a product is cut along one dimension into about
// chunksPerThread chunks per thread. Chunks of m or n are taken in turn by
// whichever thread is free, so that a thread that starts late or runs
// slowly (the machine may be shared) does less of the work; every value of
// C is still computed by one thread in one order. Chunks of k are dealt
// out in a fixed pattern instead (chunk c to thread c mod threads) and the
// threads' partial sums added in thread order, so that the result is the
// same bit for bit however the threads are scheduled. A chunk spans at least minChunkMN rows
// or columns, or minChunkK steps of k.
const (
	chunksPerThread = 2
	minChunkMN      = 128
	minChunkK       = 512
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
)

// job is a product cut into chunks.
type job struct {
	t      task // the whole product
	dim    split
	size   int // rows, columns or steps of k per chunk
	chunks int
	parts  int          // threads taking part (k chunks are dealt out by thread)
	next   atomic.Int64 // next chunk to take (m and n chunks)
}

// pool is the part of a Gemm that its worker goroutines share. It does not
// point back to the Gemm, so an unreachable Gemm can be cleaned up.
type pool struct {
	workers []*worker     // served by the worker goroutines
	done    chan struct{} // a worker goroutine sends once per job it finished
	job     job           // the current job, reused from call to call
	closed  atomic.Bool
	once    sync.Once
}

func newPool(workers []*worker) *pool {
	p := &pool{workers: workers, done: make(chan struct{}, len(workers))}
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
		j.work(w, false)
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
// cutting k costs a pass over C per thread instead.
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
	try(splitK, k, 1, minChunkK, func(c float64) float64 {
		return fm*fk + fk*fn + 3*fm*fn*float64(min(g.threads, int(c)))
	})
	if best < 0 {
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
	workers := p.workers[:min(len(p.workers), chunks-1)]
	j.parts = len(workers) + 1
	m, n := t.i1, t.j1
	for _, w := range workers {
		if dim == splitK {
			w.part = grow(w.part, m*n)
			w.partUsed = false
		}
		w.jobs <- j
	}
	did := 0
	if !testIdleCaller || dim == splitK {
		did = j.work(g.w[0], true)
	}
	spin(func() bool { return len(p.done) == len(workers) })
	for range workers {
		<-p.done
	}
	if dim != splitK {
		return
	}
	// The calling goroutine accumulated its chunks in C with the caller's
	// beta, the workers theirs in their part buffers.
	if did == 0 {
		scale(m, n, t.beta, t.c, t.ldc)
	}
	for _, w := range workers {
		if !w.partUsed {
			continue
		}
		for r := 0; r < m; r++ {
			cr := t.c[r*t.ldc : r*t.ldc+n]
			for i, v := range w.part[r*n : r*n+n] {
				cr[i] += v
			}
		}
	}
}

// testIdleCaller makes the calling goroutine leave all m and n chunks to
// the workers, for tests (its k chunks are its own by construction).
var testIdleCaller bool

// work takes chunks of j and runs them on w until none is left, and returns
// how many it ran. The calling goroutine (main) accumulates k chunks into C,
// the workers into their part buffers.
func (j *job) work(w *worker, main bool) int {
	did := 0
	for turn := 0; ; turn++ {
		var c int
		if j.dim == splitK {
			c = turn*j.parts + w.id
		} else {
			c = int(j.next.Add(1)) - 1
		}
		if c >= j.chunks {
			return did
		}
		s := j.t
		lo := c * j.size
		switch j.dim {
		case splitM:
			s.i0, s.i1 = lo, min(s.i1, lo+j.size)
		case splitN:
			s.j0, s.j1 = lo, min(s.j1, lo+j.size)
		case splitK:
			s.p0, s.p1 = lo, min(s.p1, lo+j.size)
			switch {
			case main && did > 0:
				s.beta = 1
			case !main:
				s.c, s.ldc, s.beta = w.part, s.j1, 0
				if w.partUsed {
					s.beta = 1
				}
				w.partUsed = true
			}
		}
		w.run(&s)
		did++
	}
}
