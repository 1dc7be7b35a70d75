package cuda

import (
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/kernels"
)

// The Adam segment table travels to the device like the random keys: in
// the staging ring (stage.go), or in the arena of a recorded step.
const (
	adamMaxSegs = 64
	adamSegSize = int(unsafe.Sizeof(kernels.AdamSeg{}))
)

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
