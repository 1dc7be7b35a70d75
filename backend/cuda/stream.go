package cuda

import (
	"fmt"
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
)

// Mini-batches reach the device on a copy stream of their own (Streamer):
// the loader fills page-locked host buffers (HostBuffer), UploadAsync
// queues the copy of the next batch on the copy stream behind a fence of
// the compute stream (the last iteration that read the target buffer), and
// the compute stream waits for the copy before the iteration that uses it.
// So the copy of batch i+1 runs while iteration i computes.

var _ backend.Streamer = (*Backend)(nil)

// fenceEvents is the number of fences that can be told apart; waiting on
// an older one waits on a newer point instead, which is later, so still
// correct. The trainer takes two fences per iteration and waits on them
// up to a log window later (train/trainer.go, at most maxLag iterations):
// the ring keeps them apart over that span, so that a wait for an old
// iteration does not wait for the newest. The events are created when
// first used.
const fenceEvents = 1024

type copier struct {
	stream cu.Stream
	done   cu.Event // recorded after each copy
	fences [fenceEvents]cu.Event
	seq    uint64 // fences handed out
	hosts  []unsafe.Pointer
}

func (c *copier) init() error {
	var err error
	if c.stream, err = cu.StreamCreate(cu.StreamNonBlocking); err != nil {
		return err
	}
	c.done, err = cu.EventCreate(cu.EventDisableTiming)
	return err
}

func (c *copier) close() {
	if c.stream != 0 {
		c.stream.Synchronize()
		c.stream.Destroy()
		c.stream = 0
	}
	for _, e := range append(c.fences[:], c.done) {
		if e != 0 {
			e.Destroy()
		}
	}
	c.fences = [fenceEvents]cu.Event{}
	c.done = 0
	for _, h := range c.hosts {
		cu.MemFreeHost(h)
	}
	c.hosts = nil
}

// HostBuffer returns n floats of page-locked host memory.
func (b *Backend) HostBuffer(n int) ([]float32, error) {
	if n <= 0 {
		return nil, nil
	}
	h, err := cu.MemHostAlloc(n*4, 0)
	if err != nil {
		return nil, fmt.Errorf("cuda: HostBuffer(%d floats): %w", n, err)
	}
	b.copy.hosts = append(b.copy.hosts, h)
	return unsafe.Slice((*float32)(h), n), nil
}

// Fence marks the work queued on the compute stream so far.
func (b *Backend) Fence() backend.Fence {
	if b.err != nil {
		return 0
	}
	b.flushGraph("Fence")
	return b.mark("Fence")
}

// mark records the next fence event on the compute stream.
func (b *Backend) mark(op string) backend.Fence {
	c := &b.copy
	e := &c.fences[(c.seq+1)%fenceEvents]
	if *e == 0 {
		ev, err := cu.EventCreate(cu.EventDisableTiming)
		if err != nil {
			b.fail(op, err)
			return 0
		}
		*e = ev
	}
	if err := e.Record(b.stream); err != nil {
		b.fail(op, err)
		return 0
	}
	c.seq++
	return backend.Fence(c.seq)
}

// UploadAsync copies src to dst on the copy stream after the work marked
// by after; later compute work waits for the copy.
func (b *Backend) UploadAsync(dst backend.Buf, src []float32, after backend.Fence) {
	if b.err != nil {
		return
	}
	p, _ := b.ptr("UploadAsync", "dst", dst, len(src))
	if p == 0 || len(src) == 0 {
		return
	}
	b.flushGraph("UploadAsync")
	c := &b.copy
	if after != 0 {
		if uint64(after) > c.seq {
			b.failf("UploadAsync", "fence %d was never handed out", after)
			return
		}
		// A fence older than the ring was overwritten by a later one,
		// which waits for more: still correct.
		b.fail("UploadAsync", c.stream.WaitEvent(c.fences[uint64(after)%fenceEvents]))
	}
	b.fail("UploadAsync", cu.MemcpyHtoDAsync(p, unsafe.Pointer(&src[0]), len(src)*4, c.stream))
	b.fail("UploadAsync", c.done.Record(c.stream))
	b.fail("UploadAsync", b.stream.WaitEvent(c.done))
}

var _ backend.AsyncReader = (*Backend)(nil)

// DownloadAsync queues the copy of src into dst (page-locked, from
// HostBuffer) on the compute stream and returns a fence after it.
func (b *Backend) DownloadAsync(dst []float32, src backend.Buf) backend.Fence {
	if b.err != nil {
		return 0
	}
	p, _ := b.ptr("DownloadAsync", "src", src, len(dst))
	if p == 0 || len(dst) == 0 {
		return 0
	}
	b.flushGraph("DownloadAsync")
	b.fail("DownloadAsync", cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), p, len(dst)*4, b.stream))
	return b.mark("DownloadAsync")
}

// Wait blocks until the work marked by f is done. A fence older than the
// ring waits on the later fence that took its event: still correct.
func (b *Backend) Wait(f backend.Fence) error {
	if b.err != nil {
		return b.err
	}
	if uint64(f) > b.copy.seq {
		b.failf("Wait", "fence %d was never handed out", f)
		return b.err
	}
	if f == 0 {
		return nil
	}
	b.fail("Wait", b.copy.fences[uint64(f)%fenceEvents].Synchronize())
	return b.err
}
