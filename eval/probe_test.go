package eval

import (
	"math"
	"testing"

	"github.com/pad-dreaming/pad/internal/rng"
)

// gaussianClusters returns n rows of dimension d in k classes (label i%k),
// each row its class centre (k orthogonal axes scaled by sep) plus standard
// normal noise drawn from seq.
func gaussianClusters(n, d, k int, sep float32, seq uint64) Features {
	f := Features{X: make([]float32, n*d), N: n, D: d, Labels: make([]uint8, n)}
	rng.FillNormal(f.X, rng.Key{Seed: 99, Stream: rng.StreamEval, Seq: seq})
	for i := 0; i < n; i++ {
		c := i % k
		f.Labels[i] = uint8(c)
		f.X[i*d+c%d] += sep
	}
	return f
}

// refStep is a plain float64 SGD step of the batch-mean softmax
// cross-entropy of a linear layer (w in k×d layout).
func refStep(w, b []float64, x []float64, labels []uint8, d, k int, lr float64) {
	n := len(labels)
	gw := make([]float64, k*d)
	gb := make([]float64, k)
	logits := make([]float64, k)
	for i := 0; i < n; i++ {
		z := x[i*d : (i+1)*d]
		mx := math.Inf(-1)
		for c := 0; c < k; c++ {
			s := b[c]
			for j := 0; j < d; j++ {
				s += w[c*d+j] * z[j]
			}
			logits[c] = s
			mx = math.Max(mx, s)
		}
		var sum float64
		for c := 0; c < k; c++ {
			sum += math.Exp(logits[c] - mx)
		}
		for c := 0; c < k; c++ {
			g := math.Exp(logits[c]-mx) / sum
			if c == int(labels[i]) {
				g--
			}
			g /= float64(n)
			gb[c] += g
			for j := 0; j < d; j++ {
				gw[c*d+j] += g * z[j]
			}
		}
	}
	for i := range w {
		w[i] -= lr * gw[i]
	}
	for i := range b {
		b[i] -= lr * gb[i]
	}
}

func TestProbeGradientsMatchFloat64(t *testing.T) {
	const d, k, batch, steps = 24, 5, 16, 6
	const lr = 0.2
	f := gaussianClusters(batch*steps, d, k, 2, 1)
	w32, b32 := initLinear(d, k, 7)
	tr, err := newProbeTrainer(d, k, batch, lr, w32, b32)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	w := make([]float64, len(w32))
	b := make([]float64, len(b32))
	for i, v := range w32 {
		w[i] = float64(v)
	}
	for i, v := range b32 {
		b[i] = float64(v)
	}
	idx := make([]int, batch)
	x := make([]float64, batch*d)
	for s := 0; s < steps; s++ {
		for i := range idx {
			idx[i] = s*batch + i
		}
		tr.load(f, idx)
		if _, _, err := tr.step(); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			x[i] = float64(f.X[s*batch*d+i])
		}
		refStep(w, b, x, f.Labels[s*batch:(s+1)*batch], d, k, lr)
	}
	p := tr.probe()
	var maxDiff float64
	for i := range w {
		maxDiff = math.Max(maxDiff, math.Abs(float64(p.W[i])-w[i]))
	}
	for i := range b {
		maxDiff = math.Max(maxDiff, math.Abs(float64(p.B[i])-b[i]))
	}
	t.Logf("max |gorgonia − float64| after %d steps: %.3g", steps, maxDiff)
	if maxDiff > 1e-5 {
		t.Errorf("gorgonia SGD and float64 reference differ by %g after %d steps", maxDiff, steps)
	}
	// The parameters must have moved, or the comparison proves nothing.
	if math.Abs(float64(p.W[0]-w32[0])) < 1e-4 && math.Abs(float64(p.B[0]-b32[0])) < 1e-4 {
		t.Errorf("parameters did not change")
	}
}

func TestInitLinearBounds(t *testing.T) {
	w, b := initLinear(256, 10, 3)
	bound := float32(1 / math.Sqrt(256))
	var mean float64
	for _, v := range append(append([]float32(nil), w...), b...) {
		if v <= -bound || v >= bound {
			t.Fatalf("init value %v outside ±%v", v, bound)
		}
		mean += float64(v)
	}
	if mean /= float64(len(w) + len(b)); math.Abs(mean) > 0.01*float64(bound)*10 {
		t.Errorf("init mean %v, want ≈ 0", mean)
	}
}

func TestProbeSeparableClusters(t *testing.T) {
	train := gaussianClusters(2000, 32, 10, 8, 2)
	test := gaussianClusters(1000, 32, 10, 8, 3)
	r, err := RunProbe(train, test, ProbeConfig{Epochs: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.TestAcc < 99 || r.TestAccAll < 99 || r.TrainAcc < 98 {
		t.Errorf("separable clusters: train %.2f %%, test %.2f %% / %.2f %%, want ≈ 100", r.TrainAcc, r.TestAcc, r.TestAccAll)
	}
	if len(r.EpochLoss) != 3 || !(r.EpochLoss[2] < r.EpochLoss[0]) {
		t.Errorf("epoch losses %v do not decrease", r.EpochLoss)
	}
}

func TestProbeIdenticalFeaturesIsChance(t *testing.T) {
	const n, d = 3000, 16
	mk := func(seq uint64) Features {
		f := Features{X: make([]float32, n*d), N: n, D: d, Labels: make([]uint8, n)}
		for i := range f.X {
			f.X[i] = float32(i%d) * 0.1
		}
		key := rng.Key{Seed: 5, Stream: rng.StreamEval, Seq: seq}
		for i := range f.Labels {
			f.Labels[i] = uint8(key.Intn(uint64(i), 10))
		}
		return f
	}
	r, err := RunProbe(mk(1), mk(2), ProbeConfig{Epochs: 2, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.TestAccAll-10) > 3 || math.Abs(r.TestAcc-10) > 3 {
		t.Errorf("identical features: test accuracy %.2f %% / %.2f %%, want ≈ 10 %%", r.TestAcc, r.TestAccAll)
	}
}

// The classes are split by the line x0 + x1 = 0 with a margin; the learnt
// decision direction w1 − w0 must be parallel to (1, 1) and the boundary
// must pass near the origin.
func TestProbeTwoClassKnownSeparator(t *testing.T) {
	mk := func(n int, seq uint64) Features {
		f := Features{N: n, D: 2}
		key := rng.Key{Seed: 8, Stream: rng.StreamEval, Seq: seq}
		for i := uint64(0); f.N > len(f.Labels); i += 2 {
			x0, x1 := 2*key.Uniform(i)-1, 2*key.Uniform(i+1)-1
			if s := x0 + x1; s > -0.2 && s < 0.2 {
				continue
			}
			f.X = append(f.X, x0, x1)
			var l uint8
			if x0+x1 > 0 {
				l = 1
			}
			f.Labels = append(f.Labels, l)
		}
		return f
	}
	r, err := RunProbe(mk(4000, 1), mk(2000, 2), ProbeConfig{Classes: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.TestAccAll < 99.5 {
		t.Errorf("test accuracy %.2f %%, want ≈ 100", r.TestAccAll)
	}
	p := r.Probe
	u0, u1 := float64(p.W[2]-p.W[0]), float64(p.W[3]-p.W[1])
	cos := (u0 + u1) / (math.Sqrt2 * math.Hypot(u0, u1))
	if cos < 0.995 {
		t.Errorf("decision direction (%.3f, %.3f), cos to (1,1) = %.4f", u0, u1, cos)
	}
	// Distance of the boundary from the origin: |b1 − b0| / ‖u‖.
	if off := math.Abs(float64(p.B[1]-p.B[0])) / math.Hypot(u0, u1); off > 0.05 {
		t.Errorf("decision boundary passes %.3f from the origin", off)
	}
}

func TestProbeDeterministic(t *testing.T) {
	train := gaussianClusters(640, 8, 4, 1, 4)
	cfg := ProbeConfig{Epochs: 2, Classes: 4, Seed: 11}
	a, err := TrainProbe(train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TrainProbe(train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.W {
		if a.W[i] != b.W[i] {
			t.Fatalf("same seed, weight %d differs: %v vs %v", i, a.W[i], b.W[i])
		}
	}
	for i := range a.B {
		if a.B[i] != b.B[i] {
			t.Fatalf("same seed, bias %d differs", i)
		}
	}
	cfg.Seed = 12
	c, err := TrainProbe(train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.W[0] == a.W[0] && c.W[1] == a.W[1] {
		t.Errorf("different seeds gave the same weights")
	}
}

func TestBatchAccuracy(t *testing.T) {
	// A 1-D probe predicting class 1 for positive values.
	p := &Probe{D: 1, K: 2, W: []float32{-1, 1}, B: []float32{0, 0}}
	f := Features{X: []float32{1, 1, -1, -1, 1, -1, 1}, N: 7, D: 1, Labels: []uint8{1, 1, 1, 1, 0, 0, 0}}
	// Batches of 3: {1,1,-1}→{1,1,0} vs {1,1,1}: 2/3; {-1,1,-1}→{0,1,0} vs {1,0,0}: 1/3; 7th dropped.
	got, err := p.BatchAccuracy(f, 3)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-50) > 1e-9 {
		t.Errorf("BatchAccuracy = %v, want 50", got)
	}
	all, err := p.Accuracy(f)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(all-300.0/7) > 1e-9 {
		t.Errorf("Accuracy = %v, want %v", all, 300.0/7)
	}
	if got, _ := p.BatchAccuracy(f, 100); got != all {
		t.Errorf("BatchAccuracy with no full batch = %v, want %v", got, all)
	}
}

func TestProbeBadInput(t *testing.T) {
	good := gaussianClusters(200, 4, 3, 1, 5)
	cases := map[string]struct {
		train, test Features
		cfg         ProbeConfig
	}{
		"label out of range": {good, good, ProbeConfig{Classes: 2}},
		"too few rows":       {good, good, ProbeConfig{Classes: 3, Batch: 500}},
		"size mismatch":      {Features{X: good.X[:10], N: 200, D: 4, Labels: good.Labels}, good, ProbeConfig{Classes: 3}},
		"label count":        {Features{X: good.X, N: 200, D: 4, Labels: good.Labels[:3]}, good, ProbeConfig{Classes: 3}},
		"test columns":       {good, Features{X: good.X, N: 100, D: 8, Labels: good.Labels[:100]}, ProbeConfig{Classes: 3}},
		"negative epochs":    {good, good, ProbeConfig{Classes: 3, Epochs: -1}},
		"nan feature":        {Features{X: append([]float32{float32(math.NaN())}, good.X[1:]...), N: 200, D: 4, Labels: good.Labels}, good, ProbeConfig{Classes: 3}},
		"empty test":         {good, Features{D: 4}, ProbeConfig{Classes: 3}},
	}
	for name, c := range cases {
		if _, err := RunProbe(c.train, c.test, c.cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var nilProbe *Probe
	if _, err := nilProbe.Accuracy(good); err == nil {
		t.Errorf("nil probe: no error")
	}
}

// BenchmarkProbeMNISTShape times the paper's probe (20 epochs, batch 64) on
// 60,000×256 random features: run with -bench ProbeMNIST -benchtime 1x.
func BenchmarkProbeMNISTShape(b *testing.B) {
	f := gaussianClusters(60000, 256, 10, 0.5, 6)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := TrainProbe(f, DefaultProbeConfig()); err != nil {
			b.Fatal(err)
		}
	}
}
