package kernels

// Every kernel, through its Go launcher, against the CPU backend (the
// reference) on random data, on the GPU or the simulated GPU (gpu_test.go).
//
// Tolerances: bit-exact where the kernel and the CPU compute the same
// float operations in the same order; at most 1 ulp where a double libm
// function (tanh, exp, log, sincos) is rounded to float32 (glibc on the
// simulated device, libdevice on a GPU, Go's math on the CPU backend: each
// within a double ulp or two, so the float32 results differ only in rare
// double-rounding cases); 1e-6 relative where a sum is accumulated in
// double in another order.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
)

// gpuSizes cover n = 1, sizes that are not multiples of 4 or of the block
// size, and grids from 1 block up to 10.
var gpuSizes = []int{1, 3, 4, 5, 31, 255, 256, 257, 1000, 2053, 2500}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// randFloats returns n values in [lo, hi).
func randFloats(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// withSpecials overwrites some values of v with zeros, subnormals,
// infinities, NaN and large values.
func withSpecials(r *rand.Rand, v []float32) []float32 {
	specials := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 1e-30, -3e-8,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 40, -40, 1e30, -1e30, 0.5, -0.5}
	for i := range v {
		if r.IntN(5) == 0 {
			v[i] = specials[r.IntN(len(specials))]
		}
	}
	return v
}

func clone(v []float32) []float32 { return append([]float32(nil), v...) }

// ulps is the distance between a and b in units in the last place (0 for
// two NaNs, and for +0 and −0).
func ulps(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	key := func(x float32) int64 {
		i := int64(int32(math.Float32bits(x)))
		if i < 0 {
			i = math.MinInt32 - i
		}
		return i
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// sameBits reports whether got and want are bit for bit equal (any NaN
// equals any NaN).
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// expectBits fails unless got and want are equal bit for bit.
func expectBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	expectULP(t, what, got, want, 0)
}

// expectULP fails if got and want differ by more than maxULP anywhere and
// returns how many values differ at all.
func expectULP(t *testing.T, what string, got, want []float32, maxULP int64) int {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad, inexact := 0, 0
	for i := range got {
		if sameBits(got[i], want[i]) {
			continue
		}
		inexact++
		if ulps(got[i], want[i]) > maxULP {
			if bad < 5 {
				t.Errorf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values wrong", what, bad, len(got))
	}
	return inexact
}

// expectClose fails unless |got − want| ≤ rel·|want| + abs.
func expectClose(t *testing.T, what string, got, want float32, rel, abs float64) {
	t.Helper()
	g, w := float64(got), float64(want)
	if math.IsNaN(g) || math.IsNaN(w) || math.Abs(g-w) > rel*math.Abs(w)+abs {
		t.Errorf("%s = %v, want %v (difference %.3g)", what, got, want, g-w)
	}
}

func expectCloseAll(t *testing.T, what string, got, want []float32, rel, abs float64) {
	t.Helper()
	bad := 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) || math.Abs(g-w) > rel*math.Abs(w)+abs {
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want %v (difference %.3g)", what, i, got[i], want[i], g-w)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values wrong", what, bad, len(got))
	}
}

// refCheck fails on an error of the CPU backend.
func refCheck(t *testing.T, ref *cpu.Backend[float32]) {
	t.Helper()
	if err := ref.Err(); err != nil {
		t.Fatalf("cpu backend: %v", err)
	}
}

func sumAbs(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += math.Abs(float64(x))
	}
	return s
}

func TestGPUActivations(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(1)
		inexact := map[string]int{}
		for _, n := range gpuSizes {
			x := withSpecials(r, randFloats(r, n, -6, 6))
			slope := float32(0.2)

			// In place: f(x).
			unary := []struct {
				name string
				gpu  func(p cu.DevicePtr) error
				cpu  func(b backend.Buf)
				ulp  int64
			}{
				{"LeakyReLU", func(p cu.DevicePtr) error { return d.k.LeakyReLU(0, p, n, slope) }, func(b backend.Buf) { ref.LeakyReLU(b, slope) }, 0},
				{"Tanh", func(p cu.DevicePtr) error { return d.k.Tanh(0, p, n) }, ref.Tanh, 1},
				{"Sigmoid", func(p cu.DevicePtr) error { return d.k.Sigmoid(0, p, n) }, ref.Sigmoid, 1},
				{"Scale", func(p cu.DevicePtr) error { return d.k.Scale(0, p, n, -0.37) }, func(b backend.Buf) { ref.Scale(b, -0.37) }, 0},
				{"Fill", func(p cu.DevicePtr) error { return d.k.Fill(0, p, n, 2.5) }, func(b backend.Buf) { ref.Fill(b, 2.5) }, 0},
			}
			for _, u := range unary {
				p := d.floats(x)
				d.must(u.gpu(p))
				want := clone(x)
				u.cpu(cpu.Wrap(want))
				refCheck(t, ref)
				inexact[u.name] += expectULP(t, u.name, d.download32(p, n), want, u.ulp)
			}

			// Backward: dy *= f'(y), with y as the forward pass leaves it.
			dy := withSpecials(r, randFloats(r, n, -3, 3))
			ys := map[string][]float32{
				"LeakyReLUBackward": withSpecials(r, randFloats(r, n, -2, 2)),
				"TanhBackward":      withSpecials(r, randFloats(r, n, -1, 1)),
				"SigmoidBackward":   withSpecials(r, randFloats(r, n, 0, 1)),
			}
			backward := []struct {
				name string
				gpu  func(y, dy cu.DevicePtr) error
				cpu  func(y, dy backend.Buf)
			}{
				{"LeakyReLUBackward", func(y, g cu.DevicePtr) error { return d.k.LeakyReLUBackward(0, y, g, n, slope) },
					func(y, g backend.Buf) { ref.LeakyReLUBackward(y, g, slope) }},
				{"TanhBackward", func(y, g cu.DevicePtr) error { return d.k.TanhBackward(0, y, g, n) }, ref.TanhBackward},
				{"SigmoidBackward", func(y, g cu.DevicePtr) error { return d.k.SigmoidBackward(0, y, g, n) }, ref.SigmoidBackward},
			}
			for _, b := range backward {
				y := ys[b.name]
				yp, gp := d.floats(y), d.floats(dy)
				d.must(b.gpu(yp, gp))
				want := clone(dy)
				b.cpu(cpu.Wrap(clone(y)), cpu.Wrap(want))
				refCheck(t, ref)
				expectBits(t, b.name, d.download32(gp, n), want)
				expectBits(t, b.name+" y (read only)", d.download32(yp, n), y)
			}
		}
		for name, k := range inexact {
			if k > 0 {
				t.Logf("%s: %d values 1 ulp from the CPU backend (libm differences)", name, k)
			}
		}
	})
}

func TestGPUAxpbyLatentMix(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(2)
		for _, n := range gpuSizes {
			x := withSpecials(r, randFloats(r, n, -4, 4))
			y := randFloats(r, n, -4, 4)
			for _, ab := range [][2]float32{{0.7, -1.3}, {1, 0}, {0, 1}, {-2.5, 0.999}} {
				// A view at an offset, as backends pass slices of larger buffers.
				big := d.alloc(4 * (n + 8))
				yp := big + 4*3
				d.upload32(yp, y)
				xp := d.floats(x)
				d.must(d.k.Axpby(0, yp, xp, n, ab[0], ab[1]))
				want := clone(y)
				ref.Axpby(cpu.Wrap(want), cpu.Wrap(clone(x)), ab[0], ab[1])
				refCheck(t, ref)
				got := d.download32(big, n+8)
				expectBits(t, "Axpby", got[3:3+n], want)
				expectBits(t, "Axpby (outside the view)", append(got[:3:3], got[3+n:]...), make([]float32, 8))
			}

			z, zOld, noise := randFloats(r, n, -3, 3), randFloats(r, n, -3, 3), randFloats(r, n, -1, 1)
			type mix struct {
				name       string
				old, noise bool
				a, b, c    float32
			}
			for _, m := range []mix{
				{"all", true, true, 0.8, 0.15, 0.05},
				{"no zOld", false, true, 0.9, 0, 0.1},
				{"no noise", true, false, 0.5, 0.5, 0},
				{"z only", false, false, -1, 0, 0},
				{"zero weights given", true, true, 1, 0, 0},
			} {
				dst := d.alloc(4 * n)
				zp := d.floats(z)
				var op, np cu.DevicePtr
				var ob, nb backend.Buf
				if m.old {
					op, ob = d.floats(zOld), cpu.Wrap(clone(zOld))
				}
				if m.noise {
					np, nb = d.floats(noise), cpu.Wrap(clone(noise))
				}
				d.must(d.k.LatentMix(0, dst, zp, op, np, n, m.a, m.b, m.c))
				want := make([]float32, n)
				ref.LatentMix(cpu.Wrap(want), cpu.Wrap(clone(z)), ob, nb, m.a, m.b, m.c)
				refCheck(t, ref)
				expectBits(t, "LatentMix "+m.name, d.download32(dst, n), want)
			}
			// In place (dst = z).
			zp := d.floats(z)
			np := d.floats(noise)
			d.must(d.k.LatentMix(0, zp, zp, 0, np, n, 0.75, 0, 0.25))
			want := clone(z)
			ref.LatentMix(cpu.Wrap(want), cpu.Wrap(want), nil, cpu.Wrap(clone(noise)), 0.75, 0, 0.25)
			expectBits(t, "LatentMix in place", d.download32(zp, n), want)
		}
	})
}

// shapes [n, c, hw] for the per-channel kernels.
var gpuShapes = [][3]int{{1, 1, 1}, {1, 3, 1}, {2, 3, 5}, {3, 2, 17}, {4, 3, 64}, {2, 5, 300}, {7, 9, 13}, {16, 4, 49}}

func TestGPUMaskAndBias(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(3)
		for _, s := range gpuShapes {
			n, c, hw := s[0], s[1], s[2]
			x := randFloats(r, n*c*hw, -2, 2)
			for _, perImage := range []bool{false, true} {
				mn := hw
				if perImage {
					mn = n * hw
				}
				mask := randFloats(r, mn, 0, 1)
				for i := range mask {
					if r.IntN(3) == 0 {
						mask[i] = 0
					} else if r.IntN(2) == 0 {
						mask[i] = 1
					}
				}
				xp, mp := d.floats(x), d.floats(mask)
				d.must(d.k.ApplyMask(0, xp, mp, n, c, hw, perImage))
				want := clone(x)
				ref.ApplyMask(cpu.Wrap(want), cpu.Wrap(clone(mask)), n, c, hw, perImage)
				refCheck(t, ref)
				expectBits(t, "ApplyMask", d.download32(xp, n*c*hw), want)
			}

			b := randFloats(r, c, -1, 1)
			yp, bp := d.floats(x), d.floats(b)
			d.must(d.k.BiasAdd(0, yp, bp, n, c, hw))
			want := clone(x)
			ref.BiasAdd(cpu.Wrap(want), cpu.Wrap(clone(b)), n, c, hw)
			refCheck(t, ref)
			expectBits(t, "BiasAdd", d.download32(yp, n*c*hw), want)

			for act := backend.ActNone; act <= backend.ActSigmoid; act++ {
				y := clone(x)
				for i := range y {
					y[i] *= 4
				}
				yp := d.floats(y)
				d.must(d.k.BiasAct(0, yp, bp, n, c, hw, int(act), 0.2))
				want := clone(y)
				ref.BiasAct(cpu.Wrap(want), cpu.Wrap(clone(b)), n, c, hw, act, 0.2)
				refCheck(t, ref)
				what := fmt.Sprintf("BiasAct(activation %d)", act)
				if act == backend.ActTanh || act == backend.ActSigmoid {
					expectULP(t, what, d.download32(yp, n*c*hw), want, 1) // libm
				} else {
					expectBits(t, what, d.download32(yp, n*c*hw), want)
				}
			}

			for _, beta := range []float32{0, 1} {
				db := randFloats(r, c, -1, 1)
				dyp, dbp := d.floats(x), d.floats(db)
				d.must(d.k.BiasGrad(0, dyp, dbp, n, c, hw, beta))
				want := clone(db)
				ref.BiasGrad(cpu.Wrap(clone(x)), cpu.Wrap(want), n, c, hw, beta)
				refCheck(t, ref)
				got := d.download32(dbp, c)
				for ch := range got {
					expectClose(t, "BiasGrad", got[ch], want[ch], 1e-6, 1e-13*sumAbs(x))
				}
			}
		}
		// An empty batch: db = beta·db.
		db := []float32{1, -2, 3}
		dbp := d.floats(db)
		d.must(d.k.BiasGrad(0, d.alloc(0), dbp, 0, 3, 4, 1))
		expectBits(t, "BiasGrad of an empty batch", d.download32(dbp, 3), db)
	})
}

// lossBufs allocates the scratch and output buffers the CUDA backend
// passes to the loss launchers.
func lossBufs(d *gpuDev) (partial, loss cu.DevicePtr) {
	return d.alloc(8 * ReduceBlocks), d.alloc(4)
}

// gpuReduceSizes reach past ReduceBlocks·Threads, where the fixed grid of
// the loss reductions strides.
var gpuReduceSizes = []int{1, 7, 256, 1001, ReduceBlocks*Threads + 1003}

// The loss reductions launch ReduceBlocks (264) blocks with barriers: on
// the threads engine of the simulation that takes seconds per launch, so
// they run on fibers only (pad_finish_mean, their second stage, runs on
// both in TestGPUBlockSumShapes; block_sum on threads in TestGPUKLBatch,
// TestGPUMaskAndBias and TestGPURowNormMean).
func TestGPUMSEAndMean(t *testing.T) {
	onGPU(t, fibersOnly, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(4)
		for _, n := range gpuReduceSizes {
			a, b := randFloats(r, n, -3, 3), randFloats(r, n, -3, 3)
			for _, withGrad := range []bool{false, true} {
				scale := float32(0.5)
				ap, bp := d.floats(a), d.floats(b)
				partial, loss := lossBufs(d)
				var gp cu.DevicePtr
				var gb backend.Buf
				wantGrad := make([]float32, n)
				if withGrad {
					gp, gb = d.alloc(4*n), cpu.Wrap(wantGrad)
				}
				d.must(d.k.MSE(0, ap, bp, gp, n, scale, partial, loss))
				want := []float32{0}
				ref.MSE(cpu.Wrap(clone(a)), cpu.Wrap(clone(b)), cpu.Wrap(want), gb, scale)
				refCheck(t, ref)
				expectClose(t, "MSE loss", d.download32(loss, 1)[0], want[0], 1e-6, 0)
				if withGrad {
					expectBits(t, "MSE grad", d.download32(gp, n), wantGrad)
				}
			}

			xp := d.floats(a)
			partial, out := lossBufs(d)
			d.must(d.k.Mean(0, xp, n, partial, out))
			want := []float32{0}
			ref.Mean(cpu.Wrap(clone(a)), cpu.Wrap(want))
			refCheck(t, ref)
			expectClose(t, "Mean", d.download32(out, 1)[0], want[0], 1e-6, 1e-13*sumAbs(a)/float64(n))
		}
	})
}

func TestGPUBCE(t *testing.T) {
	onGPU(t, fibersOnly, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(5)
		for _, n := range gpuReduceSizes {
			probs := randFloats(r, n, 0, 1)
			for i := range probs {
				switch r.IntN(12) {
				case 0:
					probs[i] = 0 // log clamped at −100; grad denominator clamped at 1e-12
				case 1:
					probs[i] = 1
				case 2:
					probs[i] = 1e-30
				case 3:
					probs[i] = 1 - 0x1p-24
				}
			}
			inputs := map[string][]float32{"random": probs, "all 0": make([]float32, n), "all 1": make([]float32, n)}
			for i := range inputs["all 1"] {
				inputs["all 1"][i] = 1
			}
			for what, dv := range inputs {
				for _, target := range []float32{0, 1, 0.25} {
					scale := float32(-0.75)
					dp := d.floats(dv)
					partial, loss := lossBufs(d)
					gp := d.alloc(4 * n)
					wantGrad := make([]float32, n)
					d.must(d.k.BCE(0, dp, target, gp, n, scale, partial, loss))
					want := []float32{0}
					ref.BCE(cpu.Wrap(clone(dv)), target, cpu.Wrap(want), cpu.Wrap(wantGrad), scale)
					refCheck(t, ref)
					expectClose(t, "BCE loss "+what, d.download32(loss, 1)[0], want[0], 1e-6, 0)
					expectBits(t, "BCE grad "+what, d.download32(gp, n), wantGrad)

					if target == 1 {
						// Without a gradient.
						partial, loss = lossBufs(d)
						d.must(d.k.BCE(0, dp, target, 0, n, scale, partial, loss))
						expectClose(t, "BCE loss (no grad) "+what, d.download32(loss, 1)[0], want[0], 1e-6, 0)
					}
				}
				if n > 300 {
					break // the constant inputs once, at small sizes, suffice
				}
			}
		}
	})
}

func TestGPUKLBatch(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(6)
		for _, s := range [][2]int{{2, 1}, {3, 5}, {17, 3}, {300, 2}, {64, 20}, {1000, 1}} {
			n, nz := s[0], s[1]
			z := randFloats(r, n*nz, -2, 3)
			for _, c := range []struct {
				grad        bool
				scale, beta float32
			}{{false, 1, 0}, {true, 1, 0}, {true, 0.3, 1}} {
				zp := d.floats(z)
				terms, loss := d.alloc(8*nz), d.alloc(4)
				g0 := randFloats(r, n*nz, -1, 1)
				var gp cu.DevicePtr
				var gb backend.Buf
				wantGrad := clone(g0)
				if c.grad {
					gp, gb = d.floats(g0), cpu.Wrap(wantGrad)
				}
				d.must(d.k.KLBatch(0, zp, n, nz, terms, gp, c.scale, c.beta, loss))
				want := []float32{0}
				ref.KLBatch(cpu.Wrap(clone(z)), n, nz, cpu.Wrap(want), gb, c.scale, c.beta)
				refCheck(t, ref)
				expectClose(t, "KLBatch loss", d.download32(loss, 1)[0], want[0], 1e-6, 1e-12)
				if c.grad {
					var maxAbs float64
					for _, v := range wantGrad {
						maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
					}
					expectCloseAll(t, "KLBatch grad", d.download32(gp, n*nz), wantGrad, 1e-6, 1e-9*maxAbs)
				}
			}
		}
	})
}

func TestGPURowNormMean(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(7)
		for _, s := range [][2]int{{1, 1}, {3, 5}, {2, 300}, {9, 17}, {1, 1000}, {4, 257}} {
			rows, cols := s[0], s[1]
			x := randFloats(r, rows*cols, -2, 2)
			xp, out := d.floats(x), d.alloc(4)
			d.must(d.k.RowNormMean(0, xp, rows, cols, out))
			want := []float32{0}
			ref.RowNormMean(cpu.Wrap(clone(x)), rows, cols, cpu.Wrap(want))
			refCheck(t, ref)
			expectClose(t, "RowNormMean", d.download32(out, 1)[0], want[0], 1e-6, 0)
		}
	})
}

var gpuKeys = []rng.Key{
	{Seed: 1, Stream: rng.StreamWakeNoise, Seq: 0},
	{Seed: 0xdeadbeef12345678, Stream: rng.StreamREMNoise, Seq: 1<<33 + 5},
	{Seed: 42, Stream: rng.StreamNREMMask, Seq: 0xffffffff},
}

// key places the KeyWords of k in a device buffer of their own.
func (d *gpuDev) key(k rng.Key) cu.DevicePtr {
	d.t.Helper()
	p := d.alloc(KeyBytes)
	w := KeyWords(k)
	d.must(cu.CopyHtoD(p, w[:]))
	return p
}

func TestGPURandom(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		inexact := 0
		for _, key := range gpuKeys {
			for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 1023, 1024, 1025, 5003} {
				p := d.alloc(4 * n)
				d.must(d.k.RandUniform(0, p, n, d.key(key)))
				want := make([]float32, n)
				ref.RandUniform(cpu.Wrap(want), key)
				refCheck(t, ref)
				expectBits(t, "RandUniform", d.download32(p, n), want)
				direct := make([]float32, n)
				rng.FillUniform(direct, key)
				expectBits(t, "RandUniform vs rng.FillUniform", d.download32(p, n), direct)

				p = d.alloc(4 * n)
				d.must(d.k.RandNormal(0, p, n, d.key(key)))
				ref.RandNormal(cpu.Wrap(want), key)
				refCheck(t, ref)
				inexact += expectULP(t, "RandNormal", d.download32(p, n), want, 1)
			}
		}
		if inexact > 0 {
			t.Logf("RandNormal: %d values 1 ulp from rng.FillNormal (libm differences)", inexact)
		}
	})
}

func TestGPUOcclusionMask(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		cases := []backend.Occlusion{
			{H: 1, W: 1, Masks: 1, P: -1, MaxTile: 8},
			{H: 5, W: 7, Masks: 3, P: -1, MaxTile: 8},
			{H: 16, W: 16, Masks: 4, P: -1, MaxTile: 8},
			{H: 13, W: 31, Masks: 2, P: 0.3, MaxTile: 5},
			{H: 32, W: 32, Masks: 2, P: 0.5, Tile: 3},
			{H: 9, W: 11, Masks: 3, P: -1, Tile: 1},
			{H: 6, W: 6, Masks: 2, P: 0, MaxTile: 8},
			{H: 6, W: 6, Masks: 2, P: 1, MaxTile: 8},
			{H: 8, W: 8, Masks: 1, P: 0.4, Tile: 40}, // one tile bigger than the image
			{H: 28, W: 28, Masks: 9, P: -1, MaxTile: 8},
		}
		for i, o := range cases {
			o.Key = gpuKeys[i%len(gpuKeys)]
			n := o.H * o.W * o.Masks
			p := d.alloc(4 * n)
			prob := float32(-1) // as backend/cuda passes it
			if o.P >= 0 {
				prob = float32(o.P)
			}
			d.must(d.k.OcclusionMask(0, p, o.H, o.W, o.Masks, prob, o.Tile, o.MaxTile, d.key(o.Key)))
			want := make([]float32, n)
			ref.OcclusionMask(cpu.Wrap(want), o)
			refCheck(t, ref)
			expectBits(t, "OcclusionMask", d.download32(p, n), want)
			direct := make([]float32, n)
			o.Mask(direct)
			expectBits(t, "OcclusionMask vs Occlusion.Mask", d.download32(p, n), direct)
		}
	})
}

// adamTable writes the segment table as backend/cuda/adam.go builds it into
// a slot of a larger device buffer (its ring) and returns its address.
func adamTable(t *testing.T, d *gpuDev, segs []backend.AdamSegment, h backend.AdamHyper) (table cu.DevicePtr, maxLen int) {
	t.Helper()
	if int(sizeofAdamSeg()) != 24 {
		t.Fatalf("AdamSeg is %d bytes", sizeofAdamSeg())
	}
	rows := make([]AdamSeg, len(segs))
	for j, s := range segs {
		ss, bc := h.Scalars(s.Step)
		rows[j] = AdamSeg{Off: int64(s.Off), Len: int64(s.Len), StepSize: float32(ss), BC2Sqrt: float32(bc)}
		maxLen = max(maxLen, s.Len)
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, rows); err != nil {
		t.Fatal(err)
	}
	const slot, slotBytes = 3, 64 * 24
	ring := d.alloc(8 * slotBytes)
	table = ring + slot*slotBytes
	d.must(cu.CopyHtoD(table, b.Bytes()))
	return table, maxLen
}

func testAdam(t *testing.T, d *gpuDev, size int, segs []backend.AdamSegment, h backend.AdamHyper, steps int, r *rand.Rand) {
	t.Helper()
	ref := cpu.New(1)
	p := randFloats(r, size, -1, 1)
	m, v := make([]float32, size), make([]float32, size)
	pp, gp, mp, vp := d.floats(p), d.alloc(4*size), d.floats(m), d.floats(v)
	for step := 0; step < steps; step++ {
		g := randFloats(r, size, -0.1, 0.1)
		for i := range g {
			if r.IntN(50) == 0 {
				g[i] = 0
			}
		}
		d.upload32(gp, g)
		cur := make([]backend.AdamSegment, len(segs))
		for j, s := range segs {
			s.Step += step
			cur[j] = s
		}
		table, maxLen := adamTable(t, d, cur, h)
		d.must(d.k.Adam(0, pp, gp, mp, vp, table, len(cur), maxLen, float32(h.Beta1), float32(h.Beta2), float32(h.Eps)))
		ref.Adam(cpu.Wrap(p), cpu.Wrap(g), cpu.Wrap(m), cpu.Wrap(v), cur, h)
		refCheck(t, ref)
	}
	// backend.AdamElem rounds every product explicitly, so it matches the
	// kernel bit for bit on every Go target, fused multiply-add or not.
	expectBits(t, "Adam p", d.download32(pp, size), p)
	expectBits(t, "Adam m", d.download32(mp, size), m)
	expectBits(t, "Adam v", d.download32(vp, size), v)
}

func TestGPUAdam(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		r := newRand(8)
		// Gaps between segments (no gradient: left alone), one value, one
		// segment with a large step count, steps that differ per segment.
		segs := []backend.AdamSegment{
			{Off: 0, Len: 100, Step: 1},
			{Off: 100, Len: 250, Step: 3},
			{Off: 400, Len: 1, Step: 7},
			{Off: 401, Len: 333, Step: 1000},
			{Off: 950, Len: 0, Step: 1},
			{Off: 900, Len: 37, Step: 2}, // the last segment (blockIdx.y) too
		}
		for _, h := range []backend.AdamHyper{
			{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
			{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8},
		} {
			testAdam(t, d, 1000, segs, h, 3, r)
		}
		testAdam(t, d, 5, []backend.AdamSegment{{Off: 2, Len: 1, Step: 1}}, backend.AdamHyper{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6}, 2, r)
	})
}

// TestGPUGridStride caps every grid at two blocks (512 threads), so that
// each thread of the grid-stride kernels covers several values, then runs
// the real launch shapes past the launchers' grid caps (maxGrid blocks of
// elementwise kernels, 512 blocks per Adam segment).
func TestGPUGridStride(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		ref := cpu.New(1)
		r := newRand(9)
		d.maxGridX = 2
		const n = 3001
		x, y := randFloats(r, n, -2, 2), randFloats(r, n, -2, 2)
		xp, yp := d.floats(x), d.floats(y)
		d.must(d.k.Axpby(0, yp, xp, n, 0.5, -2))
		want := clone(y)
		ref.Axpby(cpu.Wrap(want), cpu.Wrap(clone(x)), 0.5, -2)
		expectBits(t, "Axpby (2 blocks)", d.download32(yp, n), want)

		xp = d.floats(x)
		d.must(d.k.Tanh(0, xp, n))
		want = clone(x)
		ref.Tanh(cpu.Wrap(want))
		expectULP(t, "Tanh (2 blocks)", d.download32(xp, n), want, 1)

		const bn, bc, bhw = 3, 7, 143
		xs := randFloats(r, bn*bc*bhw, -1, 1)
		mask := randFloats(r, bn*bhw, 0, 1)
		xp, mp := d.floats(xs), d.floats(mask)
		d.must(d.k.ApplyMask(0, xp, mp, bn, bc, bhw, true))
		want = clone(xs)
		ref.ApplyMask(cpu.Wrap(want), cpu.Wrap(clone(mask)), bn, bc, bhw, true)
		expectBits(t, "ApplyMask (2 blocks)", d.download32(xp, len(xs)), want)

		bias := randFloats(r, bc, -1, 1)
		xp, bp := d.floats(xs), d.floats(bias)
		d.must(d.k.BiasAdd(0, xp, bp, bn, bc, bhw))
		want = clone(xs)
		ref.BiasAdd(cpu.Wrap(want), cpu.Wrap(clone(bias)), bn, bc, bhw)
		expectBits(t, "BiasAdd (2 blocks)", d.download32(xp, len(xs)), want)

		key := gpuKeys[1]
		const rn = 5003
		p := d.alloc(4 * rn)
		d.must(d.k.RandUniform(0, p, rn, d.key(key)))
		want = make([]float32, rn)
		rng.FillUniform(want, key)
		expectBits(t, "RandUniform (2 blocks)", d.download32(p, rn), want)
		p = d.alloc(4 * rn)
		d.must(d.k.RandNormal(0, p, rn, d.key(key)))
		rng.FillNormal(want, key)
		expectULP(t, "RandNormal (2 blocks)", d.download32(p, rn), want, 1)

		o := backend.Occlusion{H: 40, W: 40, Masks: 2, P: -1, MaxTile: 8, Key: key}
		p = d.alloc(4 * 3200)
		d.must(d.k.OcclusionMask(0, p, o.H, o.W, o.Masks, -1, 0, o.MaxTile, d.key(o.Key)))
		want = make([]float32, 3200)
		o.Mask(want)
		expectBits(t, "OcclusionMask (2 blocks)", d.download32(p, 3200), want)

		testAdam(t, d, 4100, []backend.AdamSegment{{Off: 0, Len: 2000, Step: 1}, {Off: 2050, Len: 2050, Step: 4}},
			backend.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1, r)

		// The real shapes: more values than maxGrid·Threads and than
		// 512·Threads. Not on the threads engine of the simulation (seconds
		// for a few thousand blocks): the fibers run them.
		if simEngine() == engineThreads {
			return
		}
		d.maxGridX = 0
		big := maxGrid*Threads + 77
		x = randFloats(r, big, -2, 2)
		xp = d.floats(x)
		d.must(d.k.Scale(0, xp, big, 1.5))
		want = clone(x)
		ref.Scale(cpu.Wrap(want), 1.5)
		expectBits(t, "Scale (maxGrid blocks)", d.download32(xp, big), want)
		if l := d.lastLaunch(); l.grid[0] != maxGrid {
			t.Errorf("Scale of %d values launched %d blocks, want the cap %d", big, l.grid[0], maxGrid)
		}

		alen := 512*Threads + 999
		testAdam(t, d, alen+10, []backend.AdamSegment{{Off: 10, Len: alen, Step: 2}, {Off: 0, Len: 10, Step: 1}},
			backend.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1, r)
		if l := d.lastLaunch(); l.grid[0] != 512 || l.grid[1] != 2 {
			t.Errorf("Adam launched grid %v, want 512×2", l.grid)
		}
	})
}
