package cuda

import (
	"fmt"
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/kernels"
)

// Arguments that are read from device memory (random-number keys, Adam
// tables) are written by the host into pinned memory and copied to the
// device on the stream. Outside a recorded step each such argument takes
// a slot of a ring; an event per slot keeps the host from rewriting a slot
// whose copy has not run yet. Inside a recorded step they go to the arena
// (graph.go).
const (
	argSlots    = 64
	argSlotSize = adamMaxSegs * adamSegSize
	adamMaxSegs = 64
	adamSegSize = int(unsafe.Sizeof(kernels.AdamSeg{}))
)

type argRing struct {
	host   unsafe.Pointer // pinned, argSlots·argSlotSize bytes
	dev    cu.DevicePtr
	events [argSlots]cu.Event
	used   [argSlots]bool
	next   int
}

func (r *argRing) init(b *Backend) error {
	bytes := argSlots * argSlotSize
	h, err := cu.MemHostAlloc(bytes, 0)
	if err != nil {
		return err
	}
	r.host = h
	if r.dev, err = b.rawAlloc(bytes); err != nil {
		return err
	}
	for i := range r.events {
		if r.events[i], err = cu.EventCreate(cu.EventDisableTiming); err != nil {
			return err
		}
	}
	return nil
}

func (r *argRing) close() {
	for i, e := range r.events {
		if e != 0 {
			e.Destroy()
			r.events[i] = 0
		}
	}
	if r.host != nil {
		cu.MemFreeHost(r.host)
		r.host = nil
	}
}

// put copies data into the next slot and queues its upload on s.
func (r *argRing) put(s cu.Stream, data []byte) (cu.DevicePtr, error) {
	if len(data) > argSlotSize {
		return 0, fmt.Errorf("an argument of %d bytes does not fit a slot of %d", len(data), argSlotSize)
	}
	i := r.next
	r.next = (r.next + 1) % argSlots
	if r.used[i] {
		if err := r.events[i].Synchronize(); err != nil {
			return 0, err
		}
	}
	host := unsafe.Slice((*byte)(unsafe.Add(r.host, i*argSlotSize)), argSlotSize)
	copy(host, data)
	dev := r.dev.Offset(i * argSlotSize)
	if len(data) > 0 {
		if err := cu.MemcpyHtoDAsync(dev, unsafe.Pointer(&host[0]), len(data), s); err != nil {
			return 0, err
		}
	}
	if err := r.events[i].Record(s); err != nil {
		return 0, err
	}
	r.used[i] = true
	return dev, nil
}

// Adam applies one Adam step to each segment, in one kernel launch. The
// segment table (offsets, step sizes, bias corrections) is an argument in
// device memory, so a replayed graph uses the current steps.
func (b *Backend) Adam(p, g, m, v backend.Buf, segs []backend.AdamSegment, h backend.AdamHyper) {
	if b.err != nil || len(segs) == 0 {
		return
	}
	pp, n := b.ptr("Adam", "p", p, -1)
	gp, _ := b.ptr("Adam", "g", g, n)
	mp, _ := b.ptr("Adam", "m", m, n)
	vp, _ := b.ptr("Adam", "v", v, n)
	if b.err != nil {
		return
	}
	if len(segs) > adamMaxSegs {
		b.failf("Adam", "%d segments, at most %d", len(segs), adamMaxSegs)
		return
	}
	table := b.adamTable[:len(segs)]
	maxLen := 0
	for j, s := range segs {
		if s.Off < 0 || s.Len < 0 || s.Off+s.Len > n || s.Step < 1 {
			b.failf("Adam", "segment %+v outside a buffer of %d values", s, n)
			return
		}
		ss, bc := h.Scalars(s.Step)
		table[j] = kernels.AdamSeg{Off: int64(s.Off), Len: int64(s.Len), StepSize: float32(ss), BC2Sqrt: float32(bc)}
		maxLen = max(maxLen, s.Len)
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&table[0])), len(segs)*adamSegSize)
	dev, err := b.arg(raw)
	if err != nil {
		b.fail("Adam", err)
		return
	}
	b.fail("Adam", b.k.Adam(b.stream, pp, gp, mp, vp, dev, len(segs), maxLen, float32(h.Beta1), float32(h.Beta2), float32(h.Eps)))
}
