package dataset

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pad-dreaming/pad/internal/rng"
)

// ErrClosed is returned by a Loader's methods after Close.
var ErrClosed = errors.New("dataset: loader closed")

// scaleLUT maps a pixel v to (v/255 − 0.5)/0.5 computed in float32 the way
// PyTorch's ToTensor and Normalize(0.5, 0.5) do: first x = float32(v)/255,
// then (x − 0.5)/0.5, each step rounded to float32.
var scaleLUT = func() (t [256]float32) {
	for v := range t {
		x := float32(v) / 255
		t[v] = (x - 0.5) / 0.5
	}
	return t
}()

// Scale writes the pixels src scaled to [-1, 1] to dst, as (v/255 − 0.5)/0.5
// rounded as PyTorch rounds it. It converts min(len(dst), len(src)) values.
func Scale(dst []float32, src []byte) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, v := range src {
		dst[i] = scaleLUT[v]
	}
}

// Batch is one mini-batch handed out by a Loader. Its memory belongs to the
// Loader: give it back with Release when done with it.
type Batch struct {
	X      []float32 // batch·C·H·W pixels in [-1, 1], NCHW
	Labels []uint8   // batch labels
	Epoch  int       // the epoch it belongs to, from 0
	Index  int       // its index within the epoch, from 0

	owner *Loader
	out   atomic.Bool // handed to the consumer and not yet released
}

// LoaderOption configures NewLoader.
type LoaderOption func(*loaderConfig)

type loaderConfig struct {
	alloc    func(n int) []float32
	prefetch int
}

// WithBuffers makes the Loader take the memory of each batch's X from
// alloc(n), n = batch·C·H·W floats, called once per buffer when the Loader is
// made (for instance pinned host memory a device copies from). alloc must
// return at least n floats; the Loader uses the first n.
func WithBuffers(alloc func(n int) []float32) LoaderOption {
	return func(c *loaderConfig) { c.alloc = alloc }
}

// WithPrefetch sets how many batch buffers the Loader cycles through
// (default 3): the prefetching goroutine fills all but the ones the
// consumer holds.
func WithPrefetch(n int) LoaderOption {
	return func(c *loaderConfig) { c.prefetch = n }
}

// Loader hands out the batches of a set in a shuffled order: in epoch e the
// images are taken in the order rng.Permutation gives for the key {seed,
// rng.StreamShuffle, e}, batch images at a time; the last, partial batch of
// an epoch is dropped. A goroutine fills a small ring of reusable buffers
// ahead of the consumer, so steady-state batches allocate nothing. The
// batches depend only on the set, the batch size, the seed and the position
// (Seek), never on timing.
//
// Next and Seek are for one consumer goroutine; Release and Close may be
// called from any goroutine.
type Loader struct {
	set   *Set
	batch int
	seed  uint64
	bpe   int // batches per epoch

	free  chan *Batch // buffers ready to be filled
	ready chan *Batch // filled batches, in order

	ctl     sync.Mutex // guards the producer's start and stop, and closed
	closed  bool
	closeCh chan struct{} // closed by Close
	stop    chan struct{} // closes to stop the running producer
	done    chan struct{} // closed when the running producer has returned

	// Producer state: owned by the producer goroutine while it runs.
	epoch, index int
	perm         []int
	permEpoch    int
}

// NewLoader returns a Loader of mini-batches of batch images of set,
// shuffled from seed, positioned at epoch 0, batch 0.
func NewLoader(set *Set, batch int, seed uint64, opts ...LoaderOption) (*Loader, error) {
	if err := set.Validate(); err != nil {
		return nil, err
	}
	if batch <= 0 || batch > set.N {
		return nil, fmt.Errorf("dataset: batch size %d for a set of %d images (want 1 to %d)", batch, set.N, set.N)
	}
	cfg := loaderConfig{prefetch: 3}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.prefetch < 1 || cfg.prefetch > 64 {
		return nil, fmt.Errorf("dataset: prefetch of %d buffers (want 1 to 64)", cfg.prefetch)
	}
	l := &Loader{
		set:       set,
		batch:     batch,
		seed:      seed,
		bpe:       set.N / batch,
		free:      make(chan *Batch, cfg.prefetch),
		ready:     make(chan *Batch, cfg.prefetch),
		closeCh:   make(chan struct{}),
		perm:      make([]int, set.N),
		permEpoch: -1,
	}
	n := batch * set.ImageSize()
	for i := 0; i < cfg.prefetch; i++ {
		var x []float32
		if cfg.alloc != nil {
			x = cfg.alloc(n)
			if len(x) < n {
				return nil, fmt.Errorf("dataset: WithBuffers returned %d floats, want %d", len(x), n)
			}
			x = x[:n:n]
		} else {
			x = make([]float32, n)
		}
		l.free <- &Batch{X: x, Labels: make([]uint8, batch), owner: l}
	}
	l.start()
	return l, nil
}

// BatchSize returns the number of images in a batch.
func (l *Loader) BatchSize() int { return l.batch }

// BatchesPerEpoch returns N/batch, the number of batches in an epoch.
func (l *Loader) BatchesPerEpoch() int { return l.bpe }

// Set returns the set the Loader reads.
func (l *Loader) Set() *Set { return l.set }

// Next returns the next batch, waiting for it if needed. The batch stays
// valid until it is given back with Release.
func (l *Loader) Next() (*Batch, error) {
	select {
	case <-l.closeCh:
		return nil, ErrClosed
	default:
	}
	select {
	case b := <-l.ready:
		b.out.Store(true)
		return b, nil
	case <-l.closeCh:
		return nil, ErrClosed
	}
}

// Release gives a batch back to the Loader for reuse. Releasing nil, a batch
// of another Loader, or a batch twice does nothing.
func (l *Loader) Release(b *Batch) {
	if b == nil || b.owner != l || !b.out.CompareAndSwap(true, false) {
		return
	}
	select {
	case l.free <- b:
	default: // cannot happen: there is room for every buffer
	}
}

// Seek positions the Loader so that the next batch Next returns is batch
// index of epoch epoch, exactly as if every batch before it had been
// consumed. Batches prefetched for the old position are dropped; batches the
// consumer holds stay valid until released.
func (l *Loader) Seek(epoch, index int) error {
	if epoch < 0 || index < 0 || index >= l.bpe {
		return fmt.Errorf("dataset: seek to epoch %d batch %d (want epoch ≥ 0, batch 0 to %d)", epoch, index, l.bpe-1)
	}
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.halt()
	for {
		select {
		case b := <-l.ready:
			l.free <- b
			continue
		default:
		}
		break
	}
	l.epoch, l.index = epoch, index
	l.start()
	return nil
}

// Close stops the prefetching goroutine and waits for it to return. Next
// and Seek fail with ErrClosed afterwards. Close is idempotent.
func (l *Loader) Close() error {
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.closeCh)
	l.halt()
	return nil
}

// start launches the producer; l.ctl is held (or l is not shared yet).
func (l *Loader) start() {
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.produce(l.stop, l.done)
}

// halt stops the producer and waits for it; l.ctl is held.
func (l *Loader) halt() {
	close(l.stop)
	<-l.done
}

// produce fills free buffers with consecutive batches until stop closes.
func (l *Loader) produce(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		var b *Batch
		select {
		case b = <-l.free:
		case <-stop:
			return
		}
		l.fill(b)
		select {
		case l.ready <- b:
		case <-stop:
			l.free <- b
			return
		}
	}
}

// fill writes the batch at the current position into b and advances.
func (l *Loader) fill(b *Batch) {
	if l.permEpoch != l.epoch {
		rng.Permutation(l.perm, rng.Key{Seed: l.seed, Stream: rng.StreamShuffle, Seq: uint64(l.epoch)})
		l.permEpoch = l.epoch
	}
	d := l.set.ImageSize()
	idx := l.perm[l.index*l.batch : (l.index+1)*l.batch]
	for j, k := range idx {
		Scale(b.X[j*d:(j+1)*d], l.set.Images[k*d:(k+1)*d])
		b.Labels[j] = l.set.Labels[k]
	}
	b.Epoch, b.Index = l.epoch, l.index
	if l.index++; l.index == l.bpe {
		l.epoch, l.index = l.epoch+1, 0
	}
}
