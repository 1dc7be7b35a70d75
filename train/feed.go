package train

import (
	"fmt"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/dataset"
)

// feeder moves the loader's batches to the device. On a backend.Streamer
// it keeps two device buffers: while iteration i computes on one, the copy
// of batch i+1 into the other runs on the copy stream, from page-locked
// loader buffers. On other backends each batch is uploaded just before its
// iteration. Both give the same batches in the same order.
//
// A batch's host buffer goes back to the loader once its copy is surely
// done: when the trainer has read the numbers of its iteration (settled).
// The trainer reads them up to lag iterations late, so the feeder holds
// the batches of up to lag+1 iterations, and the one copied ahead.
type feeder struct {
	b      backend.Backend
	s      backend.Streamer // nil: plain uploads
	loader *dataset.Loader
	x      [2]backend.Buf
	cur    int
	held   []*dataset.Batch // the batches of the iterations queued and not settled, oldest first
	fence  [2]backend.Fence // the work that last read x[i]
	ahead  *dataset.Batch   // copied (or being copied) into x[1-cur]
}

// newFeeder makes the loader and the device buffers for batches of n
// floats, for a trainer that reads an iteration's numbers at most lag
// iterations after queueing it.
func newFeeder(b backend.Backend, set *dataset.Set, batch int, seed uint64, n, lag int) (*feeder, error) {
	f := &feeder{b: b}
	var opts []dataset.LoaderOption
	var hostErr error
	if s, ok := b.(backend.Streamer); ok {
		f.s = s
		f.held = make([]*dataset.Batch, 0, lag+1)
		// Up to lag+2 batches are out of the loader at once (lag+1 held
		// until the trainer reads their iteration's numbers, one copied
		// ahead); the others are being filled.
		opts = append(opts, dataset.WithPrefetch(lag+5), dataset.WithBuffers(func(n int) []float32 {
			buf, err := s.HostBuffer(n)
			if err != nil && hostErr == nil {
				hostErr = err
			}
			return buf
		}))
	}
	var err error
	f.loader, err = dataset.NewLoader(set, batch, seed, opts...)
	if hostErr != nil {
		if f.loader != nil {
			f.loader.Close()
		}
		return nil, fmt.Errorf("page-locked batch buffers: %w", hostErr)
	}
	if err != nil {
		return nil, err
	}
	buffers := 1
	if f.s != nil {
		buffers = 2
	}
	for i := 0; i < buffers; i++ {
		if f.x[i], err = b.Alloc(n); err != nil {
			f.loader.Close()
			return nil, err
		}
	}
	return f, nil
}

// next returns the device buffer that holds (or will hold, in stream
// order) batch index of epoch epoch.
func (f *feeder) next(epoch, index int) (backend.Buf, error) {
	if f.ahead != nil {
		b := f.ahead
		f.ahead = nil
		if b.Epoch == epoch && b.Index == index {
			f.cur = 1 - f.cur
			f.held = append(f.held, b)
			return f.x[f.cur], nil
		}
		// Not the batch wanted (the caller moved): forget it.
		f.loader.Release(b)
		if err := f.loader.Seek(epoch, index); err != nil {
			return nil, err
		}
	}
	b, err := f.fetch(epoch, index)
	if err != nil {
		return nil, err
	}
	if f.s == nil {
		f.b.Upload(f.x[0], b.X)
		f.loader.Release(b)
		return f.x[0], nil
	}
	f.cur = 1 - f.cur
	f.s.UploadAsync(f.x[f.cur], b.X, f.fence[f.cur])
	f.held = append(f.held, b)
	return f.x[f.cur], nil
}

func (f *feeder) fetch(epoch, index int) (*dataset.Batch, error) {
	b, err := f.loader.Next()
	if err != nil {
		return nil, err
	}
	if b.Epoch != epoch || b.Index != index {
		f.loader.Release(b)
		return nil, fmt.Errorf("loader out of step: batch %d of epoch %d, expected %d of %d", b.Index, b.Epoch, index, epoch)
	}
	return b, nil
}

// queued is called once the iteration on the current buffer is queued: it
// marks the buffer's last reader and starts copying batch index of epoch
// epoch (the next iteration's) into the other buffer.
func (f *feeder) queued(epoch, index int, prefetch bool) error {
	if f.s == nil {
		return nil
	}
	f.fence[f.cur] = f.s.Fence()
	if !prefetch {
		return nil
	}
	b, err := f.fetch(epoch, index)
	if err != nil {
		return err
	}
	o := 1 - f.cur
	f.s.UploadAsync(f.x[o], b.X, f.fence[o])
	f.ahead = b
	return nil
}

// settled is called when the trainer has read the numbers of the oldest
// iteration queued and not settled: the device finished it, so the copy of
// its batch is done and the host buffer goes back to the loader.
func (f *feeder) settled() {
	if len(f.held) == 0 {
		return
	}
	f.loader.Release(f.held[0])
	n := copy(f.held, f.held[1:])
	f.held[n] = nil
	f.held = f.held[:n]
}

// drop gives back a batch fetched ahead and not used, and moves the loader
// back to it, so that the next run starts there.
func (f *feeder) drop() error {
	if f.ahead == nil {
		return nil
	}
	b := f.ahead
	f.ahead = nil
	// Its copy may still be running: wait before the buffer is refilled.
	err := f.b.Sync()
	f.loader.Release(b)
	if err != nil {
		return err
	}
	return f.loader.Seek(b.Epoch, b.Index)
}

// close releases everything; the device buffers go with the backend.
func (f *feeder) close() error {
	if f == nil || f.loader == nil {
		return nil
	}
	f.b.Sync()
	for _, b := range f.held {
		f.loader.Release(b)
	}
	f.held = nil
	if f.ahead != nil {
		f.loader.Release(f.ahead)
		f.ahead = nil
	}
	return f.loader.Close()
}
