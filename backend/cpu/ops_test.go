package cpu

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// Test helpers on the float64 backend, where finite differences are exact
// enough to check gradients to ~1e-7.

func randVec(n int, seed uint64) []float32 {
	v := make([]float32, n)
	rng.FillNormal(v, rng.Key{Seed: seed, Stream: 99})
	return v
}

func alloc(t *testing.T, b backend.Backend, v []float32) backend.Buf {
	t.Helper()
	x, err := b.Alloc(len(v))
	if err != nil {
		t.Fatal(err)
	}
	b.Upload(x, v)
	return x
}

func down(t *testing.T, b backend.Backend, x backend.Buf) []float32 {
	t.Helper()
	v := make([]float32, x.Len())
	b.Download(v, x)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	return v
}

// put64 and get64 move float64 values in and out of the float64 backend
// without passing through float32, so identities can be checked to 1e-12.
func put64(v []float64) backend.Buf { return &buf[float64]{d: append([]float64(nil), v...)} }

func get64(x backend.Buf) []float64 { return x.(*buf[float64]).d }

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func relErr64(a, b []float64) float64 {
	var n, d float64
	for i := range a {
		e := a[i] - b[i]
		n += e * e
		d += b[i] * b[i]
	}
	if d == 0 {
		return math.Sqrt(n)
	}
	return math.Sqrt(n / d)
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// naiveConv is the convolution straight from its definition.
func naiveConv(g backend.ConvGeom, x, w []float64) []float64 {
	y := make([]float64, g.YLen())
	for n := 0; n < g.N; n++ {
		for k := 0; k < g.K; k++ {
			for p := 0; p < g.P; p++ {
				for q := 0; q < g.Q; q++ {
					var s float64
					for c := 0; c < g.C; c++ {
						for r := 0; r < g.R; r++ {
							for u := 0; u < g.S; u++ {
								h, v := p*g.Stride+r-g.Pad, q*g.Stride+u-g.Pad
								if h >= 0 && h < g.H && v >= 0 && v < g.W {
									s += x[((n*g.C+c)*g.H+h)*g.W+v] * w[((k*g.C+c)*g.R+r)*g.S+u]
								}
							}
						}
					}
					y[((n*g.K+k)*g.P+p)*g.Q+q] = s
				}
			}
		}
	}
	return y
}

// geometries covers PAD's layers at small sizes and a few others.
var geometries = []backend.ConvGeom{
	backend.NewConv(3, 2, 32, 32, 4, 4, 2, 1), // conv1
	backend.NewConv(2, 4, 16, 16, 5, 4, 2, 1), // conv2
	backend.NewConv(2, 6, 4, 4, 7, 4, 2, 0),   // conv4 / dis
	backend.NewConv(3, 5, 4, 4, 3, 4, 1, 0),   // tconv1's adjoint
	backend.NewConv(2, 3, 9, 7, 4, 3, 1, 1),
	backend.NewConv(1, 2, 11, 10, 3, 4, 3, 2),
}

func TestConvForwardMatchesDefinition(t *testing.T) {
	for _, b := range []backend.Backend{New(2), New64(2)} {
		for i, g := range geometries {
			x, w := randVec(g.XLen(), uint64(i)), randVec(g.WLen(), uint64(i+100))
			y, _ := b.Alloc(g.YLen())
			b.ConvForward(g, alloc(t, b, x), alloc(t, b, w), y)
			if e := relErr64(to64(down(t, b, y)), naiveConv(g, to64(x), to64(w))); e > 1e-6 {
				t.Errorf("%s %v: forward differs from the definition by %.3g", b.Name(), g, e)
			}
		}
	}
}

// Backward-data must be the adjoint of forward: <conv(x), dy> = <x, convᵀ(dy)>,
// and backward-filter the adjoint in w: <conv(x, w), dy> = <w, dW(x, dy)>.
// beta = 1 must add to what the output holds.
func TestConvAdjoints(t *testing.T) {
	b := New64(1)
	for i, g := range geometries {
		x, w, dy := to64(randVec(g.XLen(), uint64(i))), to64(randVec(g.WLen(), uint64(i+10))), to64(randVec(g.YLen(), uint64(i+20)))
		lhs := dot64(naiveConv(g, x, w), dy)
		near := func(a float64) bool { return math.Abs(a-lhs) <= 1e-12*(1+math.Abs(lhs)) }

		dx := put64(make([]float64, g.XLen()))
		b.ConvBackwardData(g, put64(dy), put64(w), dx, 0)
		if r := dot64(x, get64(dx)); !near(r) {
			t.Errorf("%v: <x, convᵀ dy> = %v, <conv x, dy> = %v", g, r, lhs)
		}
		dw := put64(make([]float64, g.WLen()))
		b.ConvBackwardFilter(g, put64(x), put64(dy), dw, 0)
		if r := dot64(w, get64(dw)); !near(r) {
			t.Errorf("%v: <w, dW> = %v, <conv x, dy> = %v", g, r, lhs)
		}

		// Accumulation: running each backward again with beta 1 doubles it.
		before := append([]float64(nil), get64(dx)...)
		b.ConvBackwardData(g, put64(dy), put64(w), dx, 1)
		for j, v := range get64(dx) {
			if math.Abs(v-2*before[j]) > 1e-12*(1+math.Abs(v)) {
				t.Fatalf("%v: backward-data with beta 1 does not accumulate", g)
			}
		}
		beforeW := append([]float64(nil), get64(dw)...)
		b.ConvBackwardFilter(g, put64(x), put64(dy), dw, 1)
		for j, v := range get64(dw) {
			if math.Abs(v-2*beforeW[j]) > 1e-12*(1+math.Abs(v)) {
				t.Fatalf("%v: backward-filter with beta 1 does not accumulate", g)
			}
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBias(t *testing.T) {
	b := New64(1)
	n, c, hw := 3, 4, 5
	y := randVec(n*c*hw, 1)
	bias := randVec(c, 2)
	yb := alloc(t, b, y)
	b.BiasAdd(yb, alloc(t, b, bias), n, c, hw)
	got := down(t, b, yb)
	for i := range got {
		if want := y[i] + bias[(i/hw)%c]; math.Abs(float64(got[i]-want)) > 1e-6 {
			t.Fatalf("BiasAdd[%d] = %v, want %v", i, got[i], want)
		}
	}
	// BiasGrad is the adjoint of BiasAdd.
	dy := randVec(n*c*hw, 3)
	db := alloc(t, b, make([]float32, c))
	b.BiasGrad(alloc(t, b, dy), db, n, c, hw, 0)
	lhs := dot(dy, got) - dot(dy, y) // <dy, bias broadcast>
	if r := dot(bias, down(t, b, db)); math.Abs(r-lhs) > 1e-6*math.Abs(lhs) {
		t.Fatalf("<b, db> = %v, want %v", r, lhs)
	}
}

// BiasAct is BiasAdd followed by the activation, bit for bit, on both
// element types.
func TestBiasActIsBiasAddThenActivation(t *testing.T) {
	for _, b := range []backend.Backend{New(1), New64(1)} {
		n, c, hw := 3, 5, 7
		y := randVec(n*c*hw, 4)
		for i := range y {
			y[i] *= 3 // reach both sides of zero and tanh's flat parts
		}
		bias := randVec(c, 5)
		bb := alloc(t, b, bias)
		acts := map[backend.Activation]func(x backend.Buf){
			backend.ActNone:      func(backend.Buf) {},
			backend.ActLeakyReLU: func(x backend.Buf) { b.LeakyReLU(x, 0.2) },
			backend.ActTanh:      b.Tanh,
			backend.ActSigmoid:   b.Sigmoid,
		}
		for act, f := range acts {
			fused, apart := alloc(t, b, y), alloc(t, b, y)
			b.BiasAct(fused, bb, n, c, hw, act, 0.2)
			b.BiasAdd(apart, bb, n, c, hw)
			f(apart)
			got, want := down(t, b, fused), down(t, b, apart)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s, activation %d: value %d is %v fused, %v apart", b.Name(), act, i, got[i], want[i])
				}
			}
		}
		b.BiasAct(alloc(t, b, y), bb, n, c, hw, backend.Activation(9), 0.2)
		if err := b.Sync(); err == nil || !strings.Contains(err.Error(), "activation") {
			t.Fatalf("unknown activation: %v", err)
		}
	}
}

// fdCheck compares an analytic gradient with central differences of the
// scalar function f at x, all in float64.
func fdCheck(t *testing.T, name string, x []float64, grad []float64, f func(x []float64) float64) {
	t.Helper()
	const h = 1e-6
	num := make([]float64, len(x))
	for i := range x {
		xp := append([]float64(nil), x...)
		xm := append([]float64(nil), x...)
		xp[i] += h
		xm[i] -= h
		num[i] = (f(xp) - f(xm)) / (2 * h)
	}
	if e := relErr64(grad, num); e > 1e-7 {
		t.Errorf("%s: analytic gradient differs from finite differences by %.3g\nanalytic %v\nnumeric  %v", name, e, grad, num)
	}
}

// Elementwise activations: ∂/∂x Σ r·f(x) via the backward op.
func TestActivationGradients(t *testing.T) {
	b := New64(1)
	x := to64(randVec(12, 5))
	for i := range x { // keep LeakyReLU's kink away from the differences
		if math.Abs(x[i]) < 0.01 {
			x[i] = 0.5
		}
	}
	r := to64(randVec(12, 6))
	cases := []struct {
		name string
		fwd  func(backend.Buf)
		bwd  func(y, dy backend.Buf)
	}{
		{"LeakyReLU", func(v backend.Buf) { b.LeakyReLU(v, 0.2) }, func(y, dy backend.Buf) { b.LeakyReLUBackward(y, dy, 0.2) }},
		{"Tanh", b.Tanh, b.TanhBackward},
		{"Sigmoid", b.Sigmoid, b.SigmoidBackward},
	}
	for _, c := range cases {
		f := func(v []float64) float64 {
			xb := put64(v)
			c.fwd(xb)
			return dot64(r, get64(xb))
		}
		y := put64(x)
		c.fwd(y)
		dy := put64(r)
		c.bwd(y, dy)
		fdCheck(t, c.name, x, get64(dy), f)
	}
}

func TestLossGradients(t *testing.T) {
	b := New64(1)
	loss := put64([]float64{0})
	value := func() float64 { return get64(loss)[0] }

	// MSE with a scale.
	a, tv := to64(randVec(10, 7)), to64(randVec(10, 8))
	g := put64(make([]float64, 10))
	b.MSE(put64(a), put64(tv), loss, g, 0.7)
	fdCheck(t, "MSE", a, get64(g), func(v []float64) float64 {
		b.MSE(put64(v), put64(tv), loss, nil, 1)
		return 0.7 * value()
	})

	// BCE against both targets, probabilities away from 0 and 1.
	d := to64(randVec(9, 3))
	for i := range d {
		d[i] = 0.5 + 0.4*math.Tanh(d[i])
	}
	for _, target := range []float32{0, 1} {
		g := put64(make([]float64, len(d)))
		b.BCE(put64(d), target, loss, g, 1.5)
		fdCheck(t, fmt.Sprintf("BCE(t=%v)", target), d, get64(g), func(v []float64) float64 {
			b.BCE(put64(v), target, loss, nil, 1)
			return 1.5 * value()
		})
	}

	// KL of batch statistics, and beta accumulation.
	n, nz := 6, 4
	z := to64(randVec(n*nz, 9))
	prev := to64(randVec(n*nz, 10))
	gk := put64(prev)
	b.KLBatch(put64(z), n, nz, loss, gk, 2, 1)
	got := append([]float64(nil), get64(gk)...)
	for i := range got {
		got[i] -= prev[i]
	}
	fdCheck(t, "KLBatch", z, got, func(v []float64) float64 {
		b.KLBatch(put64(v), n, nz, loss, nil, 1, 0)
		return 2 * value()
	})
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestBCEClamp(t *testing.T) {
	b := New(1)
	loss, _ := b.Alloc(1)
	g, _ := b.Alloc(2)
	b.BCE(alloc(t, b, []float32{0, 1}), 1, loss, g, 1)
	if v := down(t, b, loss)[0]; v != 50 {
		t.Fatalf("BCE([0 1], 1) = %v, want 50 (log clamped at -100)", v)
	}
	for _, v := range down(t, b, g) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("BCE gradient at the clamp is %v", v)
		}
	}
}

func TestSmallOps(t *testing.T) {
	b := New(1)
	z, o, nz := []float32{1, 2}, []float32{10, 20}, []float32{100, 200}
	dst, _ := b.Alloc(2)
	b.LatentMix(dst, alloc(t, b, z), alloc(t, b, o), alloc(t, b, nz), 0.25, 0.25, 0.5)
	if got := down(t, b, dst); got[0] != 52.75 || got[1] != 105.5 {
		t.Fatalf("LatentMix = %v", got)
	}
	b.LatentMix(dst, alloc(t, b, z), nil, alloc(t, b, nz), 0.5, 0, 0.5)
	if got := down(t, b, dst); got[0] != 50.5 || got[1] != 101 {
		t.Fatalf("LatentMix without zOld = %v", got)
	}
	y := alloc(t, b, []float32{1, 2})
	b.Axpby(y, alloc(t, b, []float32{3, 4}), 2, -1)
	if got := down(t, b, y); got[0] != 5 || got[1] != 6 {
		t.Fatalf("Axpby = %v", got)
	}
	out, _ := b.Alloc(1)
	b.Mean(alloc(t, b, []float32{1, 2, 3, 6}), out)
	if got := down(t, b, out)[0]; got != 3 {
		t.Fatalf("Mean = %v", got)
	}
	b.RowNormMean(alloc(t, b, []float32{3, 4, 0, 0, 5, 12}), 3, 2, out)
	if got := down(t, b, out)[0]; got != 6 {
		t.Fatalf("RowNormMean = %v, want (5+0+13)/3", got)
	}
	x := alloc(t, b, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	b.ApplyMask(x, alloc(t, b, []float32{1, 0}), 2, 2, 2, false)
	if got := down(t, b, x); fmt.Sprint(got) != "[1 0 3 0 5 0 7 0]" {
		t.Fatalf("ApplyMask shared = %v", got)
	}
	x = alloc(t, b, []float32{1, 2, 3, 4})
	b.ApplyMask(x, alloc(t, b, []float32{1, 0, 0, 1}), 2, 1, 2, true)
	if got := down(t, b, x); fmt.Sprint(got) != "[1 0 0 4]" {
		t.Fatalf("ApplyMask per image = %v", got)
	}
	s := alloc(t, b, []float32{1, -2})
	b.Scale(s, -1)
	if got := down(t, b, s); got[0] != -1 || got[1] != 2 {
		t.Fatalf("Scale = %v", got)
	}
}

func TestOcclusionMask(t *testing.T) {
	b := New(1)
	// Fixed p and tile: each tile is all-kept or all-dropped, edge tiles cut
	// by the border, and the dropped fraction is near p.
	o := backend.Occlusion{H: 32, W: 32, Masks: 40, P: 0.3, Tile: 5, Key: rng.Key{Seed: 4, Stream: rng.StreamEval}}
	m, _ := b.Alloc(o.Masks * 32 * 32)
	b.OcclusionMask(m, o)
	v := down(t, b, m)
	dropped, tiles := 0, 0
	for k := 0; k < o.Masks; k++ {
		plane := v[k*1024 : (k+1)*1024]
		for ty := 0; ty < 32; ty += 5 {
			for tx := 0; tx < 32; tx += 5 {
				first := plane[ty*32+tx]
				for y := ty; y < min(ty+5, 32); y++ {
					for x := tx; x < min(tx+5, 32); x++ {
						if plane[y*32+x] != first {
							t.Fatalf("mask %d: tile at (%d,%d) is not uniform", k, ty, tx)
						}
					}
				}
				tiles++
				if first == 0 {
					dropped++
				}
			}
		}
	}
	if f := float64(dropped) / float64(tiles); math.Abs(f-0.3) > 0.03 {
		t.Fatalf("dropped fraction %.3f, want about 0.3", f)
	}
	// p = 0 keeps everything, p = 1 drops everything.
	for _, p := range []float64{0, 1} {
		o.P = p
		b.OcclusionMask(m, o)
		for _, x := range down(t, b, m) {
			if x != float32(1-p) {
				t.Fatalf("p=%v: mask value %v", p, x)
			}
		}
	}
	// Drawn p and tile: both within range and varying between masks.
	o = backend.Occlusion{H: 32, W: 32, Masks: 200, P: -1, MaxTile: 8, Key: rng.Key{Seed: 1, Stream: rng.StreamNREMMask}}
	seen := map[int]bool{}
	for k := 0; k < o.Masks; k++ {
		p, tile := o.Params(k)
		if p <= 0 || p >= 1 || tile < 1 || tile > 8 {
			t.Fatalf("mask %d: p %v tile %d out of range", k, p, tile)
		}
		seen[tile] = true
	}
	if len(seen) != 8 {
		t.Fatalf("200 masks drew tile sizes %v, want all of 1..8", seen)
	}
}

// Adam must follow PyTorch's update: checked against the formula written
// out in float64 for three steps, with a segment skipped.
func TestAdam(t *testing.T) {
	b := New64(1)
	h := backend.AdamHyper{LR: 0.01, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	p0 := randVec(6, 11)
	pb, gb, mb, vb := alloc(t, b, p0), alloc(t, b, make([]float32, 6)), alloc(t, b, make([]float32, 6)), alloc(t, b, make([]float32, 6))
	P := make([]float64, 6)
	M := make([]float64, 6)
	V := make([]float64, 6)
	for i := range P {
		P[i] = float64(p0[i])
	}
	for step := 1; step <= 3; step++ {
		g := randVec(6, uint64(20+step))
		b.Upload(gb, g)
		// Only the first four values form a tensor with a gradient.
		b.Adam(pb, gb, mb, vb, []backend.AdamSegment{{Off: 0, Len: 4, Step: step}}, h)
		for i := 0; i < 4; i++ {
			gi := float64(g[i])
			M[i] = 0.5*M[i] + 0.5*gi
			V[i] = 0.999*V[i] + 0.001*gi*gi
			bc1 := 1 - math.Pow(0.5, float64(step))
			bc2 := 1 - math.Pow(0.999, float64(step))
			P[i] -= 0.01 / bc1 * M[i] / (math.Sqrt(V[i])/math.Sqrt(bc2) + 1e-8)
		}
	}
	got := down(t, b, pb)
	for i := range got {
		if math.Abs(float64(got[i])-P[i]) > 1e-6 {
			t.Errorf("p[%d] = %v, want %v", i, got[i], P[i])
		}
	}
	if got[4] != p0[4] || got[5] != p0[5] {
		t.Errorf("values outside the segment changed: %v", got[4:])
	}
}

// The float32 and float64 backends run the same code: on well-conditioned
// random data they agree to float32 precision.
func TestFloat32MatchesFloat64(t *testing.T) {
	g := backend.NewConv(4, 3, 16, 16, 8, 4, 2, 1)
	x, w, dy := randVec(g.XLen(), 1), randVec(g.WLen(), 2), randVec(g.YLen(), 3)
	var outs [2][3][]float32
	for i, b := range []backend.Backend{New(2), New64(2)} {
		y, _ := b.Alloc(g.YLen())
		dx, _ := b.Alloc(g.XLen())
		dw, _ := b.Alloc(g.WLen())
		b.ConvForward(g, alloc(t, b, x), alloc(t, b, w), y)
		b.ConvBackwardData(g, alloc(t, b, dy), alloc(t, b, w), dx, 0)
		b.ConvBackwardFilter(g, alloc(t, b, x), alloc(t, b, dy), dw, 0)
		outs[i] = [3][]float32{down(t, b, y), down(t, b, dx), down(t, b, dw)}
	}
	for j, name := range []string{"forward", "backward-data", "backward-filter"} {
		if e := testkit.RelErr(outs[0][j], outs[1][j]); e > 1e-6 {
			t.Errorf("%s: float32 and float64 differ by %.3g", name, e)
		}
	}
}

// Misuse is reported as an error naming the op and the operand, and the
// backend stays usable for reading the error.
func TestErrorsAreSticky(t *testing.T) {
	b := New(1)
	x, _ := b.Alloc(4)
	y, _ := b.Alloc(5)
	b.Copy(y, x)
	err := b.Sync()
	if err == nil || !strings.Contains(err.Error(), "Copy") || !strings.Contains(err.Error(), "dst") {
		t.Fatalf("Copy of mismatched sizes: error %v", err)
	}
	b.Fill(x, 1) // a later op does not clear the first error
	if b.Err() != err {
		t.Fatal("the first error was replaced")
	}
	c := New(1)
	c.ConvForward(backend.NewConv(1, 1, 4, 4, 1, 4, 2, 1), x, x, x)
	if err := c.Sync(); err == nil || !strings.Contains(err.Error(), "ConvForward") {
		t.Fatalf("ConvForward with wrong sizes: error %v", err)
	}
	d := New64(1)
	d.Upload(x, []float32{1, 2, 3, 4}) // a float32 buffer handed to the float64 backend
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), "not a CPU buffer") {
		t.Fatalf("foreign buffer: error %v", err)
	}
}

// The float32 Adam (vec.Adam, eight values at a time) gives
// backend.AdamElem's bits, on segments of every length and start.
func TestAdamFloat32IsAdamElem(t *testing.T) {
	b := New(2)
	h := backend.AdamHyper{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	const n = 1 << 16
	p0, g := randVec(n, 1), randVec(n, 2)
	m0, v0 := randVec(n, 3), randVec(n, 4)
	for i := range v0 {
		v0[i] = float32(math.Abs(float64(v0[i])))
	}
	segs := []backend.AdamSegment{{Off: 0, Len: 5, Step: 1}, {Off: 7, Len: 61, Step: 3}, {Off: 100, Len: n - 100, Step: 12}}
	p, m, v := append([]float32(nil), p0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
	b.Adam(Wrap(p), Wrap(g), Wrap(m), Wrap(v), segs, h)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	wp, wm, wv := append([]float32(nil), p0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
	for _, s := range segs {
		ss, bc := h.Scalars(s.Step)
		for i := s.Off; i < s.Off+s.Len; i++ {
			wp[i], wm[i], wv[i] = backend.AdamElem(wp[i], g[i], wm[i], wv[i], float32(h.Beta1), float32(h.Beta2), float32(h.Eps), float32(ss), float32(bc))
		}
	}
	for k, c := range [][2][]float32{{p, wp}, {m, wm}, {v, wv}} {
		if i := testkit.FirstBitDiff(c[0], c[1]); i >= 0 {
			t.Fatalf("%s[%d] = %v, AdamElem gives %v", []string{"p", "m", "v"}[k], i, c[0][i], c[1][i])
		}
	}
}

// BiasGrad sums each channel in one order, whatever the channels it is
// computed beside: its bits are those of the plain loop, for channel
// counts that leave every remainder of four, on one and three threads.
func TestBiasGradIsThePlainSum(t *testing.T) {
	for _, threads := range []int{1, 3} {
		b := New(threads)
		for c := 1; c <= 9; c++ {
			const n, hw = 5, 300
			dy := randVec(n*c*hw, uint64(c))
			db0 := randVec(c, uint64(c+50))
			for _, beta := range []float32{0, 1, 0.5} {
				want := make([]float32, c)
				for ch := range want {
					var s float64
					for i := 0; i < n; i++ {
						for _, v := range dy[(i*c+ch)*hw : (i*c+ch+1)*hw] {
							s += float64(v)
						}
					}
					want[ch] = float32(s + float64(beta)*float64(db0[ch]))
				}
				db := append([]float32(nil), db0...)
				b.BiasGrad(Wrap(dy), Wrap(db), n, c, hw, beta)
				if i := testkit.FirstBitDiff(db, want); i >= 0 {
					t.Fatalf("%d threads, %d channels, beta %v: db[%d] = %v, want %v", threads, c, beta, i, db[i], want[i])
				}
			}
		}
		b.Close()
	}
}
