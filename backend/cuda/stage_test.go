package cuda

import (
	"testing"
	"unsafe"

	"github.com/pad-dreaming/pad/internal/cu"
)

// TestStagingRingWraps puts arguments of several megabytes through the
// staging ring so that it comes round more than twice, with the unused
// tail before each wrap given up. The simulated driver runs a copy only
// when something waits for it, so bytes rewritten before their copy ran
// would reach the device as the later argument's values; each argument
// must arrive as it was put, and the ring must be waited on only where
// its bytes come round.
func TestStagingRingWraps(t *testing.T) {
	b := gpu(t)
	const size = 5<<20 + 123 // three fit the ring; the tail of each round is given up
	type put struct {
		p cu.DevicePtr
		v byte
	}
	var puts []put
	data := make([]byte, size)
	check := func() {
		t.Helper()
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		for _, p := range puts {
			got := make([]byte, size)
			if err := cu.MemcpyDtoH(unsafe.Pointer(&got[0]), p.p, size); err != nil {
				t.Fatal(err)
			}
			for i, v := range got {
				if want := p.v ^ byte(i*7); v != want {
					t.Fatalf("argument %d: byte %d is %d, want %d", p.v, i, v, want)
				}
			}
		}
		puts = puts[:0]
	}
	for k := range 8 {
		for i := range data {
			data[i] = byte(k) ^ byte(i*7)
		}
		p, err := b.eagerArg(data)
		if err != nil {
			t.Fatal(err)
		}
		// Once round the ring, the oldest arguments' device twin is
		// rewritten as well: check what the ring still holds first.
		if len(puts) == 2 {
			check()
		}
		puts = append(puts, put{p, byte(k)})
	}
	check()
	if _, err := b.eagerArg(make([]byte, stageBytes+1)); err == nil {
		t.Fatal("an argument bigger than the ring was accepted")
	}
}

// TestStagingRingReserve checks the ring's bookkeeping alone: which marks
// a reservation waits for, and where it wraps.
func TestStagingRingReserve(t *testing.T) {
	b := gpu(t)
	r := &b.stage
	if r.n != 0 {
		t.Fatalf("%d marks in flight on a new backend", r.n)
	}
	x := make([]byte, stageBytes/4)
	for range 3 {
		if _, err := r.put(b.stream, x); err != nil {
			t.Fatal(err)
		}
	}
	if r.n != 3 || r.head != 3*stageBytes/4 {
		t.Fatalf("after three quarter-ring puts: %d marks, head %d", r.n, r.head)
	}
	// A quarter fits before the end: nothing is waited for.
	off, err := r.reserve(stageBytes / 4)
	if err != nil || off != 3*stageBytes/4 || r.n != 3 {
		t.Fatalf("reserve of the last quarter: offset %d, %v, %d marks in flight", off, err, r.n)
	}
	// One byte more wraps to the start: the first two marks are in the way.
	off, err = r.reserve(stageBytes/4 + 1)
	if err != nil || off != 0 || r.n != 1 {
		t.Fatalf("reserve past the end: offset %d, %v, %d marks in flight; want 0 and 1", off, err, r.n)
	}
	if err := r.upload(b.stream, b.stage.dev, off, stageBytes/4+1); err != nil {
		t.Fatal(err)
	}
	// Aligned, a quarter less 16 bytes ends where the oldest mark (the
	// third quarter) begins: nothing is waited for. A quarter reaches 16
	// bytes into it: it waits for it, and the newer mark stays.
	off, err = r.reserve(stageBytes/4 - 16)
	if err != nil || off != stageBytes/4+16 || r.n != 2 {
		t.Fatalf("reserve after the wrap: offset %d, %v, %d marks in flight; want %d and 2", off, err, r.n, stageBytes/4+16)
	}
	off, err = r.reserve(stageBytes / 4)
	if err != nil || off != stageBytes/4+16 || r.n != 1 || r.marks[r.first] != (stageMark{0, stageBytes/4 + 1}) {
		t.Fatalf("reserve into the oldest mark: offset %d, %v, %d marks in flight (oldest %v)", off, err, r.n, r.marks[r.first])
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}
