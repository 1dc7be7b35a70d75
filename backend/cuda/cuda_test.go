package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// Every custom kernel and cuDNN path is checked against its CPU twin on
// random sizes. Without a GPU these tests skip, except the no-driver test;
// where a GPU is expected (testkit.GPUExpected) they fail instead.

// gpu opens the CUDA backend in exact FP32 mode, or skips the test (fails
// it where a GPU is expected).
func gpu(t *testing.T) *Backend {
	t.Helper()
	runtime.LockOSThread()
	b, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if errors.Is(err, ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestNoGPUFallsBackCleanly checks the error New returns where the GPU
// cannot be used. It runs wherever New fails, also where a GPU is
// expected: the fallback must be clean there too, while the tests that
// need the GPU fail (gpu above).
func TestNoGPUFallsBackCleanly(t *testing.T) {
	runtime.LockOSThread()
	b, err := New(Options{})
	if err == nil {
		b.Close()
		t.Skip("a GPU is present")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("New without a GPU: %v, want an error matching ErrUnavailable", err)
	}
	if strings.Count(err.Error(), "\n") > 0 || len(err.Error()) < 20 {
		t.Fatalf("the error should be one clear sentence: %q", err)
	}
	if ok, why := testkit.GPUExpected(); ok {
		t.Logf("%s, yet New falls back: %v", why, err)
	}
}

// pair holds the same tensor on both backends.
type pair struct {
	c, g backend.Buf
}

type twins struct {
	t *testing.T
	c *cpu.Backend[float32]
	g *Backend
}

func (w *twins) buf(v []float32) pair {
	w.t.Helper()
	cb, _ := w.c.Alloc(len(v))
	gb, err := w.g.Alloc(len(v))
	if err != nil {
		w.t.Fatal(err)
	}
	w.c.Upload(cb, v)
	w.g.Upload(gb, v)
	return pair{cb, gb}
}

func (w *twins) zeros(n int) pair { return w.buf(make([]float32, n)) }

func (w *twins) get(p pair) (c, g []float32) {
	w.t.Helper()
	c = make([]float32, p.c.Len())
	g = make([]float32, p.g.Len())
	w.c.Download(c, p.c)
	w.g.Download(g, p.g)
	if err := w.c.Sync(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.g.Sync(); err != nil {
		w.t.Fatal(err)
	}
	return c, g
}

// same compares the GPU result of p with the CPU's to tol (relative norm;
// 0 = bit for bit).
func (w *twins) same(name string, p pair, tol float64) {
	w.t.Helper()
	c, g := w.get(p)
	if tol == 0 {
		for i := range c {
			if math.Float32bits(c[i]) != math.Float32bits(g[i]) {
				w.t.Errorf("%s: value %d differs: cpu %v, gpu %v (must be identical)", name, i, c[i], g[i])
				return
			}
		}
		return
	}
	if e := testkit.RelErr(g, c); !(e <= tol) {
		w.t.Errorf("%s: gpu differs from cpu by %.3g (tolerance %g)", name, e, tol)
	}
}

func randn(n int, seed uint64) []float32 {
	v := make([]float32, n)
	rng.FillNormal(v, rng.Key{Seed: seed, Stream: 77})
	return v
}

func TestKernelsMatchCPU(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	for trial, n := range []int{1, 7, 255, 256, 257, 4099, 100003} {
		name := func(op string) string { return fmt.Sprintf("%s n=%d", op, n) }
		x := randn(n, uint64(trial))
		y := randn(n, uint64(trial+50))

		a := w.buf(x)
		w.c.LeakyReLU(a.c, 0.2)
		w.g.LeakyReLU(a.g, 0.2)
		w.same(name("LeakyReLU"), a, 0)
		d := w.buf(y)
		w.c.LeakyReLUBackward(a.c, d.c, 0.2)
		w.g.LeakyReLUBackward(a.g, d.g, 0.2)
		w.same(name("LeakyReLUBackward"), d, 0)

		a = w.buf(x)
		w.c.Tanh(a.c)
		w.g.Tanh(a.g)
		w.same(name("Tanh"), a, 1e-7)
		d = w.buf(y)
		w.c.TanhBackward(a.c, d.c)
		w.g.TanhBackward(a.g, d.g)
		w.same(name("TanhBackward"), d, 1e-6)

		a = w.buf(x)
		w.c.Sigmoid(a.c)
		w.g.Sigmoid(a.g)
		w.same(name("Sigmoid"), a, 1e-7)
		d = w.buf(y)
		w.c.SigmoidBackward(a.c, d.c)
		w.g.SigmoidBackward(a.g, d.g)
		w.same(name("SigmoidBackward"), d, 1e-6)

		a = w.buf(x)
		w.c.Scale(a.c, -1)
		w.g.Scale(a.g, -1)
		w.same(name("Scale"), a, 0)
		a = w.buf(x)
		w.c.Axpby(a.c, w.buf(y).c, 0.5, -2)
		yb := w.buf(y)
		w.g.Axpby(a.g, yb.g, 0.5, -2)
		w.same(name("Axpby"), a, 0)

		z, zo, nz := w.buf(x), w.buf(y), w.buf(randn(n, 9))
		dst := w.zeros(n)
		w.c.LatentMix(dst.c, z.c, zo.c, nz.c, 0.25, 0.25, 0.5)
		w.g.LatentMix(dst.g, z.g, zo.g, nz.g, 0.25, 0.25, 0.5)
		w.same(name("LatentMix"), dst, 0)
		w.c.LatentMix(dst.c, z.c, nil, nz.c, 0.5, 0, 0.5)
		w.g.LatentMix(dst.g, z.g, nil, nz.g, 0.5, 0, 0.5)
		w.same(name("LatentMix/no old"), dst, 0)

		loss := w.zeros(1)
		grad := w.zeros(n)
		w.c.MSE(w.buf(x).c, w.buf(y).c, loss.c, grad.c, 0.7)
		xa, ya := w.buf(x), w.buf(y)
		w.g.MSE(xa.g, ya.g, loss.g, grad.g, 0.7)
		w.same(name("MSE loss"), loss, 1e-7)
		w.same(name("MSE grad"), grad, 1e-7)

		prob := make([]float32, n)
		for i, v := range x {
			prob[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
		prob[0] = 0 // the clamp
		for _, target := range []float32{0, 1} {
			pb := w.buf(prob)
			w.c.BCE(pb.c, target, loss.c, grad.c, 1.3)
			w.g.BCE(pb.g, target, loss.g, grad.g, 1.3)
			w.same(name(fmt.Sprintf("BCE(t=%v) loss", target)), loss, 1e-7)
			w.same(name(fmt.Sprintf("BCE(t=%v) grad", target)), grad, 1e-7)
		}

		out := w.zeros(1)
		xb := w.buf(x)
		w.c.Mean(xb.c, out.c)
		w.g.Mean(xb.g, out.g)
		w.same(name("Mean"), out, 1e-6)

		for _, k := range []rng.Key{{Seed: 3, Stream: rng.StreamREMNoise, Seq: uint64(trial)}, {Seed: 1 << 40, Stream: 9, Seq: 1<<33 + 5}} {
			r := w.zeros(n)
			w.c.RandUniform(r.c, k)
			w.g.RandUniform(r.g, k)
			w.same(name("RandUniform"), r, 0)
			w.c.RandNormal(r.c, k)
			w.g.RandNormal(r.g, k)
			w.same(name("RandNormal"), r, 1e-7)
		}
	}
}

func TestShapedKernelsMatchCPU(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	for _, s := range [][3]int{{1, 1, 1}, {3, 5, 7}, {8, 16, 1}, {64, 64, 256}, {64, 3, 1024}} {
		n, c, hw := s[0], s[1], s[2]
		name := func(op string) string { return fmt.Sprintf("%s %v", op, s) }
		y := w.buf(randn(n*c*hw, 1))
		bias := w.buf(randn(c, 2))
		w.c.BiasAdd(y.c, bias.c, n, c, hw)
		w.g.BiasAdd(y.g, bias.g, n, c, hw)
		w.same(name("BiasAdd"), y, 0)
		db := w.buf(randn(c, 3))
		w.c.BiasGrad(y.c, db.c, n, c, hw, 1)
		w.g.BiasGrad(y.g, db.g, n, c, hw, 1)
		w.same(name("BiasGrad"), db, 1e-6)
		for _, per := range []bool{false, true} {
			mn := hw
			if per {
				mn = n * hw
			}
			m := make([]float32, mn)
			for i := range m {
				m[i] = float32(i % 2)
			}
			x := w.buf(randn(n*c*hw, 4))
			mb := w.buf(m)
			w.c.ApplyMask(x.c, mb.c, n, c, hw, per)
			w.g.ApplyMask(x.g, mb.g, n, c, hw, per)
			w.same(name(fmt.Sprintf("ApplyMask per-image=%v", per)), x, 0)
		}
		if n >= 2 {
			z := w.buf(randn(n*hw, 5))
			loss := w.zeros(1)
			grad := w.buf(randn(n*hw, 6))
			w.c.KLBatch(z.c, n, hw, loss.c, grad.c, 1, 1)
			w.g.KLBatch(z.g, n, hw, loss.g, grad.g, 1, 1)
			w.same(name("KLBatch loss"), loss, 1e-6)
			w.same(name("KLBatch grad"), grad, 1e-6)
		}
		out := w.zeros(1)
		x := w.buf(randn(n*c*hw, 7))
		w.c.RowNormMean(x.c, n, c*hw, out.c)
		w.g.RowNormMean(x.g, n, c*hw, out.g)
		w.same(name("RowNormMean"), out, 1e-6)
	}
}

func TestOcclusionMasksIdentical(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	for i, o := range []backend.Occlusion{
		{H: 32, W: 32, Masks: 1, P: -1, MaxTile: 8},
		{H: 32, W: 32, Masks: 64, P: -1, MaxTile: 8},
		{H: 32, W: 32, Masks: 16, P: 0.3, Tile: 4},
		{H: 17, W: 9, Masks: 3, P: 0.5, Tile: 0, MaxTile: 5},
	} {
		for seq := uint64(0); seq < 20; seq++ {
			o.Key = rng.Key{Seed: uint64(i + 1), Stream: rng.StreamNREMMask, Seq: seq}
			m := w.zeros(o.Masks * o.H * o.W)
			w.c.OcclusionMask(m.c, o)
			w.g.OcclusionMask(m.g, o)
			w.same(fmt.Sprintf("OcclusionMask %d seq %d", i, seq), m, 0)
		}
	}
}

func TestAdamMatchesCPU(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	const n = 10000
	h := backend.AdamHyper{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	p, m, v := w.buf(randn(n, 1)), w.zeros(n), w.zeros(n)
	for step := 1; step <= 5; step++ {
		gr := w.buf(randn(n, uint64(10+step)))
		segs := []backend.AdamSegment{{Off: 0, Len: 3000, Step: step}, {Off: 5000, Len: 4999, Step: 2 * step}}
		w.c.Adam(p.c, gr.c, m.c, v.c, segs, h)
		w.g.Adam(p.g, gr.g, m.g, v.g, segs, h)
	}
	w.same("Adam p", p, 0)
	w.same("Adam m", m, 0)
	w.same("Adam v", v, 0)
}

// cuDNN against the CPU's im2col convolutions, on PAD's geometries and
// others, in exact FP32 math.
func TestConvolutionsMatchCPU(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	geoms := []backend.ConvGeom{
		backend.NewConv(64, 1, 32, 32, 64, 4, 2, 1),
		backend.NewConv(64, 3, 32, 32, 64, 4, 2, 1),
		backend.NewConv(64, 64, 16, 16, 128, 4, 2, 1),
		backend.NewConv(64, 128, 8, 8, 256, 4, 2, 1),
		backend.NewConv(64, 256, 4, 4, 256, 4, 2, 0),
		backend.NewConv(64, 256, 4, 4, 1, 4, 2, 0),
		backend.NewConv(64, 256, 4, 4, 256, 4, 1, 0),
		backend.NewConv(3, 5, 9, 7, 4, 3, 1, 1),
	}
	for i, cg := range geoms {
		name := func(op string) string { return fmt.Sprintf("%s %v", op, cg) }
		x, wt, dy := w.buf(randn(cg.XLen(), uint64(i))), w.buf(randn(cg.WLen(), uint64(i+10))), w.buf(randn(cg.YLen(), uint64(i+20)))
		y := w.zeros(cg.YLen())
		w.c.ConvForward(cg, x.c, wt.c, y.c)
		w.g.ConvForward(cg, x.g, wt.g, y.g)
		w.same(name("ConvForward"), y, 1e-5)
		dx := w.buf(randn(cg.XLen(), 3))
		w.c.ConvBackwardData(cg, dy.c, wt.c, dx.c, 1)
		w.g.ConvBackwardData(cg, dy.g, wt.g, dx.g, 1)
		w.same(name("ConvBackwardData beta=1"), dx, 1e-5)
		dw := w.zeros(cg.WLen())
		w.c.ConvBackwardFilter(cg, x.c, dy.c, dw.c, 0)
		w.g.ConvBackwardFilter(cg, x.g, dy.g, dw.g, 0)
		w.same(name("ConvBackwardFilter"), dw, 1e-5)
	}
}

func TestBadArgumentsAreErrors(t *testing.T) {
	g := gpu(t)
	x, _ := g.Alloc(4)
	y, _ := g.Alloc(5)
	g.Copy(y, x)
	err := g.Sync()
	if err == nil || !strings.Contains(err.Error(), "Copy") {
		t.Fatalf("Copy of mismatched sizes: %v", err)
	}
	h, err := New(Options{Precision: "fp32"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Upload(x, []float32{1, 2, 3, 4}) // another backend's buffer is fine (same device)…
	h.ConvForward(backend.NewConv(1, 1, 4, 4, 1, 4, 2, 1), x, x, x)
	if err := h.Sync(); err == nil || !strings.Contains(err.Error(), "ConvForward") {
		t.Fatalf("ConvForward with wrong sizes: %v", err)
	}
}

// TestGraphStepsMatchCPU records a step (an upload, random numbers, a mask,
// a sum) and replays it: every replay must see the values uploaded and the
// key given for its own iteration, exactly as the CPU computes them.
func TestGraphStepsMatchCPU(t *testing.T) {
	g := gpu(t)
	w := &twins{t: t, c: cpu.New(0), g: g}
	const n = 3000
	x, r, m := w.zeros(n), w.zeros(n), w.zeros(32*32)
	for it := 0; it < 8; it++ {
		host := randn(n, uint64(100+it))
		key := rng.Key{Seed: 9, Stream: rng.StreamREMNoise, Seq: uint64(it)}
		o := backend.Occlusion{H: 32, W: 32, Masks: 1, P: -1, MaxTile: 8, Key: rng.Key{Seed: 9, Stream: rng.StreamNREMMask, Seq: uint64(it)}}
		g.BeginGraph()
		g.Upload(x.g, host)
		g.RandNormal(r.g, key)
		g.Axpby(r.g, x.g, 1, 1)
		g.OcclusionMask(m.g, o)
		g.EndGraph()
		w.c.Upload(x.c, host)
		w.c.RandNormal(r.c, key)
		w.c.Axpby(r.c, x.c, 1, 1)
		w.c.OcclusionMask(m.c, o)
		w.same(fmt.Sprintf("iteration %d: noise + upload", it), r, 1e-6)
		w.same(fmt.Sprintf("iteration %d: mask", it), m, 0)
	}
	// The tape runs directly the first time (iteration 0), is captured the
	// second (1) and replayed from then on (2 to 7).
	if st := g.GraphStats(); st.Captures != 1 || st.Replays != 6 || st.Direct != 1 || st.Off != "" {
		t.Errorf("graphs: %s", g.GraphSummary())
	}
}

// TestGraphConvStepsMatchCPU records steps of convolutions with the weight
// gradient on the side stream (so both cuDNN handles work inside the
// graphs) and checks every iteration against the CPU: the first run of
// each tape is direct, the next captured, the later ones replayed.
func TestGraphConvStepsMatchCPU(t *testing.T) {
	runtime.LockOSThread()
	g, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if errors.Is(err, ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.side.stream == 0 || g.graphs == nil || !g.graphs.enabled {
		t.Fatalf("want graphs and a side stream: %s", g.Name())
	}
	w := &twins{t: t, c: cpu.New(0), g: g}
	cg := backend.NewConv(8, 16, 16, 16, 32, 4, 2, 1)
	x, wt, dy := w.zeros(cg.XLen()), w.buf(randn(cg.WLen(), 1)), w.zeros(cg.YLen())
	y, dx, dw := w.zeros(cg.YLen()), w.zeros(cg.XLen()), w.zeros(cg.WLen())
	for it := 0; it < 6; it++ {
		hx, hdy := randn(cg.XLen(), uint64(10+it)), randn(cg.YLen(), uint64(20+it))
		g.BeginGraph()
		g.Upload(x.g, hx)
		g.Upload(dy.g, hdy)
		g.ConvForward(cg, x.g, wt.g, y.g)
		g.BeginSide()
		g.ConvBackwardFilter(cg, x.g, dy.g, dw.g, 0)
		g.EndSide()
		g.ConvBackwardData(cg, dy.g, wt.g, dx.g, 0)
		g.JoinSide()
		g.EndGraph()
		w.c.Upload(x.c, hx)
		w.c.Upload(dy.c, hdy)
		w.c.ConvForward(cg, x.c, wt.c, y.c)
		w.c.ConvBackwardFilter(cg, x.c, dy.c, dw.c, 0)
		w.c.ConvBackwardData(cg, dy.c, wt.c, dx.c, 0)
		w.same(fmt.Sprintf("iteration %d: ConvForward", it), y, 1e-5)
		w.same(fmt.Sprintf("iteration %d: ConvBackwardData", it), dx, 1e-5)
		w.same(fmt.Sprintf("iteration %d: ConvBackwardFilter (side stream)", it), dw, 1e-5)
	}
	if st := g.GraphStats(); st.Direct != 1 || st.Captures != 1 || st.Replays != 4 || st.Off != "" {
		t.Errorf("graphs: %s", g.GraphSummary())
	}
}

// In FP32 mode only results measured with FMA math are accepted; without
// any, each algorithm is tried with FMA math set explicitly. In TF32 mode
// every usable result counts, with its own math type.
func TestRankAlgosPrefersDeterministic(t *testing.T) {
	det := func(algo int, d cu.Determinism) cu.AlgoPerf {
		return cu.AlgoPerf{Algo: algo, MathType: cu.DNNFMAMath, Determinism: d}
	}
	got := rankAlgos([]cu.AlgoPerf{det(0, cu.NonDeterministic), det(3, cu.NonDeterministic), det(1, cu.Deterministic), det(5, cu.Deterministic)}, true, 1<<20)
	var order []int
	for _, c := range got {
		order = append(order, c.perf.Algo)
	}
	if !reflect.DeepEqual(order, []int{1, 5, 0, 3}) {
		t.Errorf("order %v, want the deterministic 1 and 5 first, then 0 and 3", order)
	}
}

func TestRankAlgos(t *testing.T) {
	const limit = 1 << 20
	perf := func(algo int, m cu.DNNMath, status int, mem uintptr) cu.AlgoPerf {
		return cu.AlgoPerf{Algo: algo, Status: status, Memory: mem, MathType: m}
	}
	type pick struct {
		algo   int
		math   cu.DNNMath
		forced bool
	}
	picks := func(cs []algoChoice) []pick {
		var out []pick
		for _, c := range cs {
			out = append(out, pick{c.perf.Algo, c.math, c.forced})
		}
		return out
	}
	mixed := []cu.AlgoPerf{
		perf(1, cu.DNNTensorOpMath, 0, 0),  // fastest, tensor cores
		perf(6, cu.DNNDefaultMath, 0, 100), // may be TF32 on Ampere and later
		perf(7, cu.DNNFMAMath, 3, 0),       // failed
		perf(4, cu.DNNFMAMath, 0, limit+1), // too much workspace
		perf(0, cu.DNNFMAMath, 0, 0),       // usable
		perf(2, cu.DNNTensorOpMathAllowConversion, 0, 0),
		perf(5, cu.DNNFMAMath, 0, limit), // usable, at the limit
	}
	noFMA := []cu.AlgoPerf{
		perf(1, cu.DNNTensorOpMath, 0, 0),
		perf(6, cu.DNNDefaultMath, 3, 0), // failed
		perf(0, cu.DNNDefaultMath, 0, 10),
		perf(1, cu.DNNDefaultMath, 0, 20),       // also measured with tensor ops
		perf(3, cu.DNNTensorOpMath, 0, limit+1), // too much workspace
		perf(2, cu.DNNTensorOpMathAllowConversion, 0, 0),
	}
	for _, c := range []struct {
		name  string
		perfs []cu.AlgoPerf
		fp32  bool
		want  []pick
	}{
		{"fp32 takes FMA results only", mixed, true, []pick{{0, cu.DNNFMAMath, false}, {5, cu.DNNFMAMath, false}}},
		{"tf32 takes every usable result", mixed, false, []pick{
			{1, cu.DNNTensorOpMath, false}, {6, cu.DNNDefaultMath, false}, {0, cu.DNNFMAMath, false},
			{2, cu.DNNTensorOpMathAllowConversion, false}, {5, cu.DNNFMAMath, false}}},
		{"fp32 without FMA results forces FMA", noFMA, true, []pick{
			{0, cu.DNNFMAMath, true}, {1, cu.DNNFMAMath, true}, {2, cu.DNNFMAMath, true}}},
		{"tf32 without FMA results", noFMA, false, []pick{
			{1, cu.DNNTensorOpMath, false}, {0, cu.DNNDefaultMath, false}, {1, cu.DNNDefaultMath, false},
			{2, cu.DNNTensorOpMathAllowConversion, false}}},
		{"nothing usable", []cu.AlgoPerf{perf(0, cu.DNNFMAMath, 9, 0), perf(1, cu.DNNDefaultMath, 0, limit+1)}, true, nil},
		{"no results", nil, true, nil},
	} {
		if got := picks(rankAlgos(c.perfs, c.fp32, limit)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// DownloadAsync copies in stream order: a download queued between two
// kernels sees the first one's result, not the second's, and Wait on an
// old fence (after more than the ring holds) still waits long enough.
func TestDownloadAsyncInStreamOrder(t *testing.T) {
	b := gpu(t)
	const n = 1 << 20
	x, err := b.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	host, err := b.HostBuffer(3 * n)
	if err != nil {
		t.Fatal(err)
	}
	var fences []backend.Fence
	for k := 0; k < 3; k++ {
		b.Fill(x, float32(k+1))
		fences = append(fences, b.DownloadAsync(host[k*n:(k+1)*n], x))
	}
	for i := 0; i < 2*fenceEvents; i++ { // overwrite the ring
		b.Fill(x.Slice(0, 16), -1)
		b.Fence()
	}
	for _, k := range []int{2, 0, 1} {
		if err := b.Wait(fences[k]); err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			if got := host[k*n+i]; got != float32(k+1) {
				t.Fatalf("download %d, value %d: %v, want %v", k, i, got, k+1)
			}
		}
	}
	if err := b.Wait(backend.Fence(1 << 40)); err == nil {
		t.Fatal("Wait on a fence never handed out: no error")
	}
}
