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
type feeder struct {
	b      backend.Backend
	s      backend.Streamer // nil: plain uploads
	loader *dataset.Loader
	x      [2]backend.Buf
	cur    int
	held   [2]*dataset.Batch // the batch copied into x[i], until its copy is surely done
	fence  [2]backend.Fence  // the work that last read x[i]
	ahead  *dataset.Batch    // copied (or being copied) into x[1-cur]
}

// newFeeder makes the loader and the device buffers for batches of n floats.
func newFeeder(b backend.Backend, set *dataset.Set, batch int, seed uint64, n int) (*feeder, error) {
	f := &feeder{b: b}
	var opts []dataset.LoaderOption
	var hostErr error
	if s, ok := b.(backend.Streamer); ok {
		f.s = s
		// Up to three batches are out of the loader at once (two held
		// until the trainer reads their iteration's numbers, one copied
		// ahead); the others are being filled.
		opts = append(opts, dataset.WithPrefetch(6), dataset.WithBuffers(func(n int) []float32 {
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
			f.held[f.cur] = b
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
	f.held[f.cur] = b
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

// settled is called after the device finished all but the last pending
// iterations queued (their stats were downloaded): the copies of the
// batches of the finished ones are done, so their host buffers go back to
// the loader. pending is 0 or 1: the trainer waits for an iteration's
// numbers at the latest after queueing the next one.
func (f *feeder) settled(pending int) {
	if f.s == nil {
		return
	}
	f.release(1 - f.cur)
	if pending == 0 {
		f.release(f.cur)
	}
}

// release gives the batch held in buffer i back to the loader.
func (f *feeder) release(i int) {
	if b := f.held[i]; b != nil {
		f.loader.Release(b)
		f.held[i] = nil
	}
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
	f.release(0)
	f.release(1)
	if f.ahead != nil {
		f.loader.Release(f.ahead)
		f.ahead = nil
	}
	return f.loader.Close()
}
