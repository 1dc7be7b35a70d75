package eval

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pad-dreaming/pad/internal/rng"
)

// Random numbers of the probe come from rng.StreamEval of the configured
// seed: the shuffle of probe epoch e (counted from 0) uses Seq = e, the
// initial weights use Seq = ProbeInitSeq. Other users of StreamEval should
// stay clear of both.
const ProbeInitSeq uint64 = 1 << 32

// ProbeConfig sets the linear probe. Zero fields take the paper's values
// (see DefaultProbeConfig); Seed 0 is a seed like any other.
type ProbeConfig struct {
	// Epochs is the number of passes over the training features (20).
	Epochs int
	// Batch is the mini-batch size (64); the last partial batch of every
	// epoch is dropped.
	Batch int
	// LR is the plain-SGD learning rate (0.2).
	LR float64
	// Seed seeds the initial weights and the per-epoch shuffles.
	Seed uint64
	// Classes is the number of output classes K (10).
	Classes int
	// Stop, when set, is asked before every epoch of the probe; an error
	// from it ends the probe with that error (an interrupt).
	Stop func() error
}

// DefaultProbeConfig returns the paper's probe settings: 20 epochs of plain
// SGD, learning rate 0.2, batch 64, 10 classes, seed 0.
func DefaultProbeConfig() ProbeConfig {
	return ProbeConfig{Epochs: 20, Batch: 64, LR: 0.2, Classes: 10}
}

// withDefaults fills zero fields with the paper's values and rejects
// negative or non-finite ones.
func (c ProbeConfig) withDefaults() (ProbeConfig, error) {
	d := DefaultProbeConfig()
	if c.Epochs == 0 {
		c.Epochs = d.Epochs
	}
	if c.Batch == 0 {
		c.Batch = d.Batch
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	if c.Classes == 0 {
		c.Classes = d.Classes
	}
	switch {
	case c.Epochs < 0:
		return c, fmt.Errorf("probe: epochs %d < 0", c.Epochs)
	case c.Batch < 0:
		return c, fmt.Errorf("probe: batch %d < 0", c.Batch)
	case c.LR < 0 || math.IsNaN(c.LR) || math.IsInf(c.LR, 0):
		return c, fmt.Errorf("probe: invalid learning rate %v", c.LR)
	case c.Classes < 2 || c.Classes > 256:
		return c, fmt.Errorf("probe: classes %d outside 2..256", c.Classes)
	}
	return c, nil
}

// Probe is a trained linear classifier logits = W·z + b.
type Probe struct {
	// D is the input (feature) dimension.
	D int
	// K is the number of classes.
	K int
	// W holds the K×D weights in PyTorch's nn.Linear layout: row k at
	// W[k*D : (k+1)*D].
	W []float32
	// B holds the K biases.
	B []float32
}

// ProbeResult is the outcome of RunProbe. The accuracies are in percent.
type ProbeResult struct {
	// Probe is the trained classifier.
	Probe *Probe
	// TrainAcc is the reference code's train accuracy: the mean over the
	// mini-batches of the last training epoch of each batch's accuracy,
	// each measured on the logits computed before that batch's SGD step.
	TrainAcc float64
	// TestAcc is the reference code's test accuracy: the mean of the
	// per-batch accuracies over the test features cut, in their given
	// order, into batches of cfg.Batch with the last partial batch
	// dropped. With fewer test rows than one batch it equals TestAccAll.
	TestAcc float64
	// TestAccAll is the plain accuracy over every test row.
	TestAccAll float64
	// EpochLoss is the mean training cross-entropy of each epoch.
	EpochLoss []float64
}

// TrainProbe trains the paper's linear probe on train: a linear layer
// D→cfg.Classes with PyTorch's default nn.Linear initialisation (weights and
// biases uniform in ±1/√D), plain SGD on the batch-mean cross-entropy of the
// log-softmax, the training rows shuffled every epoch and the last partial
// batch dropped.
func TrainProbe(train Features, cfg ProbeConfig) (*Probe, error) {
	r, err := trainProbe(train, cfg)
	if err != nil {
		return nil, err
	}
	return r.Probe, nil
}

// RunProbe trains the probe on train (see TrainProbe) and measures it on
// test, returning both the reference code's batch-averaged accuracies and
// the plain accuracy over all test rows.
func RunProbe(train, test Features, cfg ProbeConfig) (ProbeResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ProbeResult{}, err
	}
	if err := test.Validate(true); err != nil {
		return ProbeResult{}, fmt.Errorf("probe: test %w", err)
	}
	if test.D != train.D {
		return ProbeResult{}, fmt.Errorf("probe: test features have %d columns, train features %d", test.D, train.D)
	}
	if test.N == 0 {
		return ProbeResult{}, errors.New("probe: no test features")
	}
	r, err := trainProbe(train, cfg)
	if err != nil {
		return ProbeResult{}, err
	}
	if r.TestAcc, err = r.Probe.BatchAccuracy(test, cfg.Batch); err != nil {
		return ProbeResult{}, err
	}
	if r.TestAccAll, err = r.Probe.Accuracy(test); err != nil {
		return ProbeResult{}, err
	}
	return r, nil
}

// trainProbe does the work of TrainProbe and fills TrainAcc and EpochLoss.
func trainProbe(train Features, cfg ProbeConfig) (ProbeResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ProbeResult{}, err
	}
	if err := train.Validate(true); err != nil {
		return ProbeResult{}, fmt.Errorf("probe: train %w", err)
	}
	if err := train.checkLabels(cfg.Classes); err != nil {
		return ProbeResult{}, fmt.Errorf("probe: train %w", err)
	}
	if train.N < cfg.Batch {
		return ProbeResult{}, fmt.Errorf("probe: %d training rows, fewer than one batch of %d", train.N, cfg.Batch)
	}
	w, b := initLinear(train.D, cfg.Classes, cfg.Seed)
	t, err := newProbeTrainer(train.D, cfg.Classes, cfg.Batch, cfg.LR, w, b)
	if err != nil {
		return ProbeResult{}, err
	}
	defer t.close()

	perm := make([]int, train.N)
	nb := train.N / cfg.Batch
	res := ProbeResult{EpochLoss: make([]float64, cfg.Epochs)}
	for e := 0; e < cfg.Epochs; e++ {
		if cfg.Stop != nil {
			if err := cfg.Stop(); err != nil {
				return ProbeResult{}, err
			}
		}
		rng.Permutation(perm, rng.Key{Seed: cfg.Seed, Stream: rng.StreamEval, Seq: uint64(e)})
		var loss, acc float64
		for i := 0; i < nb; i++ {
			t.load(train, perm[i*cfg.Batch:(i+1)*cfg.Batch])
			l, correct, err := t.step()
			if err != nil {
				return ProbeResult{}, fmt.Errorf("probe: epoch %d batch %d: %w", e, i, err)
			}
			loss += l
			acc += float64(correct) / float64(cfg.Batch)
		}
		res.EpochLoss[e] = loss / float64(nb)
		res.TrainAcc = 100 * acc / float64(nb)
	}
	res.Probe = t.probe()
	return res, nil
}

// initLinear draws PyTorch's default nn.Linear initialisation for a d→k
// layer from the probe's init stream: uniform numbers 0..k·d−1 give the
// weights in [k][d] order, the next k the biases, all scaled to
// (−1/√d, 1/√d).
func initLinear(d, k int, seed uint64) (w, b []float32) {
	u := make([]float32, k*d+k)
	rng.FillUniform(u, rng.Key{Seed: seed, Stream: rng.StreamEval, Seq: ProbeInitSeq})
	bound := 1 / math.Sqrt(float64(d))
	for i, v := range u {
		u[i] = float32(bound * (2*float64(v) - 1))
	}
	return u[:k*d], u[k*d:]
}

// probeTrainer holds the gorgonia graph of one SGD step for a fixed batch
// size, built once; step runs it on the tape machine and applies the update.
//
// The graph works on transposed batches, one sample per column:
// logitsᵀ (K×B) = W (K×D) · xᵀ (D×B) + b, so that W keeps PyTorch's layout
// and the inner loops of the matrix products run along the batch (64) and
// feature (D) dimensions rather than along the 10 classes, which makes the
// step about twice as fast as the row-per-sample form.
type probeTrainer struct {
	d, k, batch int
	lr          float32

	g            *gorgonia.ExprGraph
	vm           gorgonia.VM
	logits, cost *gorgonia.Node
	gradW, gradB *gorgonia.Node
	xBuf, yBuf   []float32 // inputs: d×batch features, k×batch one-hot targets
	wBuf, bBuf   []float32 // parameters: k×d weights, k×1 biases
	labels       []uint8
	rows         [][]float32 // the rows of the loaded batch
}

// newProbeTrainer builds the graph of a d→k linear layer over batches of
// the given size, starting from PyTorch-layout weights w (k×d) and biases b.
func newProbeTrainer(d, k, batch int, lr float64, w, b []float32) (t *probeTrainer, err error) {
	if d <= 0 || k <= 0 || batch <= 0 || len(w) != k*d || len(b) != k {
		return nil, fmt.Errorf("probe: %d weights and %d biases for a %d→%d layer, batch %d", len(w), len(b), d, k, batch)
	}
	t = &probeTrainer{
		d: d, k: k, batch: batch, lr: float32(lr),
		xBuf:   make([]float32, d*batch),
		yBuf:   make([]float32, k*batch),
		wBuf:   append([]float32(nil), w...),
		bBuf:   append([]float32(nil), b...),
		labels: make([]uint8, batch),
		rows:   make([][]float32, batch),
	}
	// Gorgonia reports some graph-building mistakes by panicking; turn any
	// such panic into an error.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("probe: building the graph: %v", r)
		}
	}()
	g := gorgonia.NewGraph()
	matrix := func(name string, rows, cols int, backing []float32) *gorgonia.Node {
		return gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(rows, cols), gorgonia.WithName(name),
			gorgonia.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(backing))))
	}
	x := matrix("xT", d, batch, t.xBuf)
	y := matrix("yT", k, batch, t.yBuf)
	wn := matrix("w", k, d, t.wBuf)
	bn := matrix("b", k, 1, t.bBuf)

	wx, err := gorgonia.Mul(wn, x)
	if err != nil {
		return nil, fmt.Errorf("probe: w·xᵀ: %w", err)
	}
	if t.logits, err = gorgonia.BroadcastAdd(wx, bn, nil, []byte{1}); err != nil {
		return nil, fmt.Errorf("probe: w·xᵀ + b: %w", err)
	}
	logp, err := gorgonia.LogSoftMax(t.logits, 0)
	if err != nil {
		return nil, fmt.Errorf("probe: log-softmax: %w", err)
	}
	picked, err := gorgonia.HadamardProd(logp, y)
	if err != nil {
		return nil, fmt.Errorf("probe: pick target log-probabilities: %w", err)
	}
	total, err := gorgonia.Sum(picked)
	if err != nil {
		return nil, fmt.Errorf("probe: sum: %w", err)
	}
	if t.cost, err = gorgonia.Mul(total, gorgonia.NewConstant(float32(-1/float64(batch)))); err != nil {
		return nil, fmt.Errorf("probe: mean: %w", err)
	}
	grads, err := gorgonia.Grad(t.cost, wn, bn)
	if err != nil {
		return nil, fmt.Errorf("probe: gradients: %w", err)
	}
	t.gradW, t.gradB = grads[0], grads[1]
	// Compile only what the step reads, which leaves out the unused
	// gradient with respect to the inputs.
	prog, locMap, err := gorgonia.CompileFunction(g, gorgonia.Nodes{x, y, wn, bn},
		gorgonia.Nodes{t.logits, t.cost, t.gradW, t.gradB})
	if err != nil {
		return nil, fmt.Errorf("probe: compiling the graph: %w", err)
	}
	t.g = g
	t.vm = gorgonia.NewTapeMachine(g, gorgonia.WithPrecompiled(prog, locMap))
	return t, nil
}

// load copies the rows idx of f, transposed, into the input buffers.
func (t *probeTrainer) load(f Features, idx []int) {
	clear(t.yBuf)
	nb := t.batch
	for i, r := range idx {
		t.rows[i] = f.Row(r)
		t.labels[i] = f.Labels[r]
		t.yBuf[int(f.Labels[r])*nb+i] = 1
	}
	// Column by column: the writes run contiguously while the reads touch
	// one cache line per row, which stays cached for the next columns.
	for j := 0; j < t.d; j++ {
		col := t.xBuf[j*nb : (j+1)*nb]
		for i, row := range t.rows {
			col[i] = row[j]
		}
	}
}

// step runs forward and backward on the loaded batch, applies one SGD
// update and returns the batch's loss and the number of rows the logits
// (before the update) classify correctly.
func (t *probeTrainer) step() (loss float64, correct int, err error) {
	defer t.vm.Reset()
	if err := t.vm.RunAll(); err != nil {
		return 0, 0, fmt.Errorf("running the graph: %w", err)
	}
	logits, err := valueF32(t.logits)
	if err != nil {
		return 0, 0, err
	}
	nb := t.batch
	for i := 0; i < nb; i++ {
		best := 0
		for c := 1; c < t.k; c++ {
			if logits[c*nb+i] > logits[best*nb+i] {
				best = c
			}
		}
		if best == int(t.labels[i]) {
			correct++
		}
	}
	c, err := valueF32(t.cost)
	if err != nil {
		return 0, 0, err
	}
	gw, err := valueF32(t.gradW)
	if err != nil {
		return 0, 0, err
	}
	gb, err := valueF32(t.gradB)
	if err != nil {
		return 0, 0, err
	}
	if len(gw) != len(t.wBuf) || len(gb) != len(t.bBuf) {
		return 0, 0, fmt.Errorf("gradient sizes %d, %d; want %d, %d", len(gw), len(gb), len(t.wBuf), len(t.bBuf))
	}
	for i, g := range gw {
		t.wBuf[i] -= t.lr * g
	}
	for i, g := range gb {
		t.bBuf[i] -= t.lr * g
	}
	return float64(c[0]), correct, nil
}

// probe returns a copy of the current parameters.
func (t *probeTrainer) probe() *Probe {
	return &Probe{D: t.d, K: t.k, W: append([]float32(nil), t.wBuf...), B: append([]float32(nil), t.bBuf...)}
}

func (t *probeTrainer) close() {
	if t.vm != nil {
		t.vm.Close()
	}
}

// valueF32 returns the float32 data of a node's current value.
func valueF32(n *gorgonia.Node) ([]float32, error) {
	v := n.Value()
	if v == nil {
		return nil, fmt.Errorf("node %s has no value", n.Name())
	}
	switch d := v.Data().(type) {
	case []float32:
		return d, nil
	case float32:
		return []float32{d}, nil
	default:
		return nil, fmt.Errorf("node %s holds %T, want float32 data", n.Name(), d)
	}
}

// argmax returns the index of the first largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// check reports whether f can be fed to p.
func (p *Probe) check(f Features) error {
	if p == nil || len(p.W) != p.K*p.D || len(p.B) != p.K || p.K < 1 {
		return errors.New("probe: not a trained probe")
	}
	if err := f.Validate(false); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if f.D != p.D {
		return fmt.Errorf("probe: features have %d columns, the probe takes %d", f.D, p.D)
	}
	return nil
}

// Logits returns the N×K logits W·z + b of every row of f.
func (p *Probe) Logits(f Features) ([]float32, error) {
	if err := p.check(f); err != nil {
		return nil, err
	}
	out := make([]float32, f.N*p.K)
	for i := 0; i < f.N; i++ {
		z := f.Row(i)
		for k := 0; k < p.K; k++ {
			w := p.W[k*p.D : (k+1)*p.D]
			s := p.B[k]
			for j, v := range z {
				s += w[j] * v
			}
			out[i*p.K+k] = s
		}
	}
	return out, nil
}

// Predict returns the predicted class of every row of f (the first largest
// logit).
func (p *Probe) Predict(f Features) ([]uint8, error) {
	logits, err := p.Logits(f)
	if err != nil {
		return nil, err
	}
	out := make([]uint8, f.N)
	for i := range out {
		out[i] = uint8(argmax(logits[i*p.K : (i+1)*p.K]))
	}
	return out, nil
}

// Accuracy returns the percentage of rows of f whose predicted class equals
// their label.
func (p *Probe) Accuracy(f Features) (float64, error) {
	if len(f.Labels) != f.N {
		return 0, fmt.Errorf("probe: %d labels for %d rows", len(f.Labels), f.N)
	}
	if f.N == 0 {
		return 0, errors.New("probe: accuracy of no rows")
	}
	pred, err := p.Predict(f)
	if err != nil {
		return 0, err
	}
	correct := 0
	for i, c := range pred {
		if c == f.Labels[i] {
			correct++
		}
	}
	return 100 * float64(correct) / float64(f.N), nil
}

// BatchAccuracy returns the reference code's accuracy (in percent): f is cut,
// in its given order, into batches of the given size, the last partial batch
// is dropped, and the per-batch accuracies are averaged. When f holds fewer
// rows than one batch it returns the plain accuracy over all rows.
func (p *Probe) BatchAccuracy(f Features, batch int) (float64, error) {
	if batch <= 0 {
		return 0, fmt.Errorf("probe: batch size %d", batch)
	}
	if len(f.Labels) != f.N {
		return 0, fmt.Errorf("probe: %d labels for %d rows", len(f.Labels), f.N)
	}
	nb := f.N / batch
	if nb == 0 {
		return p.Accuracy(f)
	}
	pred, err := p.Predict(f)
	if err != nil {
		return 0, err
	}
	var sum float64
	for b := 0; b < nb; b++ {
		correct := 0
		for i := b * batch; i < (b+1)*batch; i++ {
			if pred[i] == f.Labels[i] {
				correct++
			}
		}
		sum += float64(correct) / float64(batch)
	}
	return 100 * sum / float64(nb), nil
}
