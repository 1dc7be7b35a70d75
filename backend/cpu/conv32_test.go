package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// testGeoms returns PAD's own layers and odd geometries, then random ones
// up to n: strides 1 to 3, kernels 1 to 5, paddings 0 to 3 (some so wide
// that a tap never lands inside the image), planes from 1×1 up.
func testGeoms(rnd *rand.Rand, n int) []backend.ConvGeom {
	geoms := []backend.ConvGeom{
		backend.NewConv(3, 3, 32, 32, 8, 4, 2, 1), // PAD's conv1
		backend.NewConv(2, 16, 8, 8, 32, 4, 2, 1), // conv3
		backend.NewConv(2, 32, 4, 4, 16, 4, 2, 0), // conv4: one position
		backend.NewConv(2, 4, 16, 16, 4, 3, 1, 1), // stride 1
		backend.NewConv(1, 2, 5, 7, 3, 5, 3, 3),   // taps all in the padding
		backend.NewConv(1, 1, 1, 1, 1, 1, 1, 0),   // 1×1
		backend.NewConv(3, 5, 9, 6, 2, 2, 2, 0),   // odd sizes
		backend.NewConv(2, 3, 11, 13, 4, 4, 2, 2), // pad 2
	}
	for len(geoms) < n {
		r := 1 + rnd.IntN(5)
		stride, pad := 1+rnd.IntN(3), rnd.IntN(4)
		h, w := 1+rnd.IntN(14), 1+rnd.IntN(14)
		g := backend.NewConv(1+rnd.IntN(3), 1+rnd.IntN(5), h, w, 1+rnd.IntN(4), r, stride, pad)
		if g.Validate() == nil {
			geoms = append(geoms, g)
		}
	}
	return geoms
}

// TestIm2colFastPathsMatchTheLoops: the float32 im2col and col2im
// (conv32.go) give the generic
// loops' bits on random geometries: strides
// 1 to 3, kernels 1 to 5, paddings 0 to 3 (some so wide that a tap
// never lands inside the image), planes from 1×1 up, PAD's own layers
// among them.
func TestIm2colFastPathsMatchTheLoops(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 9))
	geoms := testGeoms(rnd, 60)
	for _, g := range geoms {
		name := fmt.Sprintf("%+v", g)
		if err := g.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rows, npq := g.C*g.R*g.S, g.N*g.P*g.Q
		x := make([]float32, g.XLen())
		for i := range x {
			x[i] = float32(rnd.NormFloat64())
		}
		want := make([]float32, rows*npq)
		got := make([]float32, rows*npq)
		for i := range got { // the fast path must overwrite everything
			got[i], want[i] = float32(math.NaN()), float32(math.NaN())
		}
		im2colRows(g, x, want, 0, rows)
		im2colRows32(g, x, got, 0, rows)
		if i := testkit.FirstBitDiff(got, want); i >= 0 {
			t.Fatalf("%s: im2col value %d: %v, want %v", name, i, got[i], want[i])
		}
		col := make([]float32, rows*npq)
		for i := range col {
			col[i] = float32(rnd.NormFloat64())
		}
		dxWant := make([]float32, g.XLen())
		for i := range dxWant {
			dxWant[i] = float32(rnd.NormFloat64())
		}
		dxGot := append([]float32(nil), dxWant...)
		col2imPlanes(g, col, dxWant, 0, g.N*g.C)
		col2imPlanes32(g, col, dxGot, 0, g.N*g.C)
		if i := testkit.FirstBitDiff(dxGot, dxWant); i >= 0 {
			t.Fatalf("%s: col2im value %d: %v, want %v", name, i, dxGot[i], dxWant[i])
		}

	}
}
