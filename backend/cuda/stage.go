package cuda

import (
	"fmt"
	"unsafe"

	"github.com/pad-dreaming/pad/internal/cu"
)

// Host values that the device reads (random-number keys, Adam tables, the
// arguments of a recorded step) are written by the host into page-locked
// memory and copied to the device on the main stream. The host memory
// must not be rewritten before its copy has run, which is all that ties
// the host to the device here: the device copies (the twin of an eager
// argument, the arena of a recorded step) are reused in stream order, after
// the work that read them.
//
// The stage is one ring of page-locked bytes. Each copy takes the next
// bytes and marks them with an event recorded after it; the host waits on
// a mark only when the ring comes round to its bytes again, or when more
// than stageMarks copies are in flight. With a step's copy of about a
// kilobyte, that is hundreds of iterations later: the trainer reads its
// numbers once per log window (train/trainer.go), and its host goes that
// far ahead of the device without waiting here.
const (
	// stageBytes is the size of the ring, and of its device twin.
	stageBytes = 16 << 20
	// stageMarks is how many copies may be in flight before the host
	// waits for the oldest. The events are created when first needed.
	stageMarks = 1024
	// stageAlign aligns each copy (the Adam table holds 64-bit integers;
	// 16 keeps vector loads possible).
	stageAlign = 16
)

// A stageMark is the byte range [start, end) of one copy in flight.
type stageMark struct{ start, end int }

type stageRing struct {
	host  unsafe.Pointer // page-locked, stageBytes
	buf   []byte         // the same memory
	dev   cu.DevicePtr   // device twin of buf, for eager arguments
	head  int            // where the next copy's bytes go (before alignment)
	marks [stageMarks]stageMark
	ev    [stageMarks]cu.Event
	first int // the oldest mark in flight
	n     int // marks in flight: marks[first], marks[first+1], … (mod stageMarks)
}

func (r *stageRing) init(b *Backend) error {
	h, err := cu.MemHostAlloc(stageBytes, 0)
	if err != nil {
		return err
	}
	r.host, r.buf = h, unsafe.Slice((*byte)(h), stageBytes)
	r.dev, err = b.rawAlloc(stageBytes)
	return err
}

// close frees the host ring and the events; the device twin goes with the
// backend's other allocations.
func (r *stageRing) close() {
	for i, e := range r.ev {
		if e != 0 {
			e.Destroy()
			r.ev[i] = 0
		}
	}
	if r.host != nil {
		cu.MemFreeHost(r.host)
		r.host, r.buf = nil, nil
	}
	r.n = 0
}

// reserve returns the offset of n free bytes, waiting for the copies that
// still read them. The bytes stay free until the next commit.
func (r *stageRing) reserve(n int) (int, error) {
	if n > stageBytes {
		return 0, fmt.Errorf("%d bytes do not fit the staging ring of %d", n, stageBytes)
	}
	start := (r.head + stageAlign - 1) &^ (stageAlign - 1)
	wrap := start+n > stageBytes
	if wrap {
		start = 0
	}
	// The marks in flight follow head round the ring, oldest first, so
	// those in the way are the oldest ones. On a wrap, the tail from head
	// on is given up as well.
	for r.n > 0 {
		m := r.marks[r.first]
		inTail := wrap && m.start >= r.head
		if !inTail && (m.end <= start || m.start >= start+n) {
			break
		}
		if err := r.pop(); err != nil {
			return 0, err
		}
	}
	return start, nil
}

// pop waits for the oldest copy in flight and forgets its mark.
func (r *stageRing) pop() error {
	if err := r.ev[r.first].Synchronize(); err != nil {
		return err
	}
	r.first = (r.first + 1) % stageMarks
	r.n--
	return nil
}

// upload copies the n bytes reserved at off to dst on s and marks them.
func (r *stageRing) upload(s cu.Stream, dst cu.DevicePtr, off, n int) error {
	if n == 0 {
		return nil
	}
	if r.n == stageMarks {
		if err := r.pop(); err != nil {
			return err
		}
	}
	if err := cu.MemcpyHtoDAsync(dst, unsafe.Pointer(&r.buf[off]), n, s); err != nil {
		return err
	}
	i := (r.first + r.n) % stageMarks
	if r.ev[i] == 0 {
		e, err := cu.EventCreate(cu.EventDisableTiming)
		if err != nil {
			return err
		}
		r.ev[i] = e
	}
	if err := r.ev[i].Record(s); err != nil {
		return err
	}
	r.marks[i] = stageMark{off, off + n}
	r.n++
	r.head = off + n
	return nil
}

// put copies data to the ring's device twin on s and returns its address.
func (r *stageRing) put(s cu.Stream, data []byte) (cu.DevicePtr, error) {
	off, err := r.reserve(len(data))
	if err != nil {
		return 0, err
	}
	copy(r.buf[off:], data)
	dev := r.dev.Offset(off)
	return dev, r.upload(s, dev, off, len(data))
}
