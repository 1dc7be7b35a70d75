package model

import (
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
)

// recorder is a CPU backend that numbers every buffer it allocates.
type recorder struct {
	backend.Backend
	seq   map[backend.Buf]int
	sizes []int
}

func newRecorder() *recorder {
	return &recorder{Backend: cpu.New(1), seq: map[backend.Buf]int{}}
}

func (r *recorder) Alloc(n int) (backend.Buf, error) {
	x, err := r.Backend.Alloc(n)
	if err == nil {
		r.seq[x] = len(r.sizes)
		r.sizes = append(r.sizes, n)
	}
	return x, err
}

// inOrder fails unless bufs were allocated in the order given.
func (r *recorder) inOrder(t *testing.T, what string, names []string, bufs []backend.Buf) {
	t.Helper()
	prev := -1
	for i, x := range bufs {
		k, ok := r.seq[x]
		if !ok {
			t.Fatalf("%s.%s was not allocated through the backend", what, names[i])
		}
		if k <= prev {
			t.Fatalf("%s.%s allocated as buffer %d, before the buffer declared ahead of it (%d): the order is not the declaration order", what, names[i], k, prev)
		}
		prev = k
	}
}

// TestAllocationOrder checks that E and G allocate their buffers in
// declaration order, the same on every construction (a map would give a
// different order almost every time).
func TestAllocationOrder(t *testing.T) {
	spec := Spec{C: 1, NF: 4, NZ: 8, Batch: 3}
	var first []int
	for range 20 {
		r := newRecorder()
		e, err := NewEncoder(r, spec)
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGenerator(r, spec)
		if err != nil {
			t.Fatal(err)
		}
		r.inOrder(t, "E", []string{"A1", "A2", "A3", "Z", "D", "DZ", "DD", "dA1", "dA2", "dA3"},
			[]backend.Buf{e.A1, e.A2, e.A3, e.Z, e.D, e.DZ, e.DD, e.dA1, e.dA2, e.dA3})
		r.inOrder(t, "G", []string{"H1", "H2", "H3", "Out", "dH1", "dH2", "dH3", "DOut", "DZ"},
			[]backend.Buf{g.H1, g.H2, g.H3, g.Out, g.dH1, g.dH2, g.dH3, g.DOut, g.DZ})
		if first == nil {
			first = r.sizes
			continue
		}
		if len(r.sizes) != len(first) {
			t.Fatalf("%d allocations, first construction made %d", len(r.sizes), len(first))
		}
		for i := range first {
			if r.sizes[i] != first[i] {
				t.Fatalf("allocation %d: %d values, first construction %d", i, r.sizes[i], first[i])
			}
		}
	}
}
