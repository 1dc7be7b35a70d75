package cuda

import (
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/kernels"
)

// The fused Adam kernel reads its segment table (offset, length, step size
// and bias correction per tensor) from device memory. Tables are written
// into pinned host memory and copied asynchronously, so each Adam call
// takes its own slot of a ring; an event per slot keeps the host from
// rewriting a slot whose copy has not run yet.
const (
	adamSlots   = 64
	adamMaxSegs = 64
	adamSegSize = int(unsafe.Sizeof(kernels.AdamSeg{}))
)

type adamRing struct {
	host   unsafe.Pointer // pinned, adamSlots·adamMaxSegs AdamSegs
	dev    cu.DevicePtr
	events [adamSlots]cu.Event
	used   [adamSlots]bool
	next   int
}

func (r *adamRing) init(b *Backend) error {
	bytes := adamSlots * adamMaxSegs * adamSegSize
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

func (r *adamRing) close() {
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

func (r *adamRing) slot(i int) []kernels.AdamSeg {
	base := unsafe.Add(r.host, i*adamMaxSegs*adamSegSize)
	return unsafe.Slice((*kernels.AdamSeg)(base), adamMaxSegs)
}

// Adam applies one Adam step to each segment, in one kernel launch.
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
	r := &b.adam
	i := r.next
	r.next = (r.next + 1) % adamSlots
	if r.used[i] {
		if err := r.events[i].Synchronize(); err != nil {
			b.fail("Adam", err)
			return
		}
	}
	table := r.slot(i)
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
	dev := r.dev.Offset(i * adamMaxSegs * adamSegSize)
	if err := cu.MemcpyHtoDAsync(dev, unsafe.Pointer(&table[0]), len(segs)*adamSegSize, b.stream); err != nil {
		b.fail("Adam", err)
		return
	}
	if err := r.events[i].Record(b.stream); err != nil {
		b.fail("Adam", err)
		return
	}
	r.used[i] = true
	b.fail("Adam", b.k.Adam(b.stream, pp, gp, mp, vp, dev, len(segs), maxLen, float32(h.Beta1), float32(h.Beta2), float32(h.Eps)))
}
