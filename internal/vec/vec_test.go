package vec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// values returns n floats: mostly normal draws, with zeros of both signs,
// infinities, NaNs, subnormals and huge values mixed in.
func values(rnd *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 1e-40, -1e-40, 3e38, -3e38, 1, -1}
	x := make([]float32, n)
	for i := range x {
		if rnd.IntN(8) == 0 {
			x[i] = special[rnd.IntN(len(special))]
		} else {
			x[i] = float32(rnd.NormFloat64())
		}
	}
	return x
}

// sameBits is FirstBitDiff with any two NaNs taken as equal (the payload
// of a NaN that meets another may differ, see the package comment).
func sameBits(got, want []float32) int {
	if len(got) != len(want) {
		return min(len(got), len(want))
	}
	for i := range got {
		if got[i] != got[i] && want[i] != want[i] {
			continue
		}
		if testkit.FirstBitDiff(got[i:i+1], want[i:i+1]) >= 0 {
			return i
		}
	}
	return -1
}

// TestAsmGivesGoBits: every loop gives the Go loop's bits, on every length
// from 0 to 70 and at every start within a block of eight, on values
// including zeros of both signs, infinities, NaNs and subnormals.
func TestAsmGivesGoBits(t *testing.T) {
	if !Best.asm {
		t.Skip("no AVX2 on this CPU: only the Go loops run")
	}
	rnd := rand.New(rand.NewPCG(3, 1))
	for n := 0; n <= 70; n++ {
		for off := 0; off < 8; off++ {
			p, g, m, v := values(rnd, n+off), values(rnd, n+off), values(rnd, n+off), values(rnd, n+off)
			for i := range v {
				v[i] = float32(math.Abs(float64(v[i])))
			}
			run := func(l Loops) [][]float32 {
				pp, mm, vv := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
				l.Adam(pp[off:], g[off:], mm[off:], vv[off:], 0.5, 0.999, 1-0.999, 1e-8, 2e-4, 0.03)
				lk := append([]float32(nil), p...)
				l.Leaky(lk[off:], 0.25, 0.2)
				l0 := append([]float32(nil), p...)
				l.Leaky(l0[off:], 0, 0.2)
				lb := append([]float32(nil), g...)
				l.LeakyBackward(p[off:], lb[off:], 0.2)
				return [][]float32{pp, mm, vv, lk, l0, lb}
			}
			got, want := run(Best), run(Portable)
			for k, name := range []string{"Adam p", "Adam m", "Adam v", "Leaky", "Leaky without bias", "LeakyBackward"} {
				if i := sameBits(got[k], want[k]); i >= 0 {
					t.Fatalf("%s, %d values from %d: value %d is %v, Go gives %v", name, n, off, i, got[k][i], want[k][i])
				}
			}
		}
	}
}

// Leaky and LeakyBackward (assembly, and the branch-free Go loops) give
// the branching loops' bits, signed zeros, infinities, NaNs and subnormals
// included.
func TestLeakyMatchesTheBranchingLoops(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), -float32(math.NaN()), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32}
	rnd := rand.New(rand.NewPCG(3, 4))
	x := append([]float32(nil), special...)
	for range 1000 {
		x = append(x, float32(rnd.NormFloat64()))
	}
	for _, v := range []float32{0, 0.5, -0.25, float32(math.Copysign(0, -1))} {
		for _, s := range []float32{0.2, 0, -3, float32(math.Inf(1))} {
			want := append([]float32(nil), x...)
			for j := range want {
				y := want[j] + v
				if y < 0 {
					y *= s
				}
				want[j] = y
			}
			for _, l := range []Loops{Best, Portable} {
				got := append([]float32(nil), x...)
				l.Leaky(got, v, s)
				if i := testkit.FirstBitDiff(got, want); i >= 0 {
					t.Fatalf("Leaky (asm %v) bias %v slope %v: value %d (%v): %v, want %v", l.asm, v, s, i, x[i], got[i], want[i])
				}
			}
		}
	}
	for _, s := range []float32{0.2, -1, float32(math.NaN())} {
		for _, y := range [][]float32{x, special} {
			g := make([]float32, len(y))
			for i := range g {
				g[i] = special[i%len(special)]
				if i%3 == 0 {
					g[i] = float32(rnd.NormFloat64())
				}
			}
			want := append([]float32(nil), g...)
			for i, v := range y {
				if v <= 0 {
					want[i] *= s
				}
			}
			for _, l := range []Loops{Best, Portable} {
				got := append([]float32(nil), g...)
				l.LeakyBackward(y, got, s)
				if i := testkit.FirstBitDiff(got, want); i >= 0 {
					t.Fatalf("LeakyBackward (asm %v) slope %v: value %d (y %v): %v, want %v", l.asm, s, i, y[i], got[i], want[i])
				}
			}
		}
	}
}
