// Package phases is PAD's learning cycle: Wake, NREM and REM and the order
// they run in, written once against backend.Backend. What varies between
// the paper's conditions (ablations and appendix variants) is data, in
// package conditions; a PAD runs the one it is given.
package phases

import (
	"fmt"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// Stat indexes the per-iteration numbers the phases record on the device;
// Stats downloads them with one copy.
type Stat int

const (
	StatWakeRec    Stat = iota // Wake: MSE(G(z), x)
	StatKL                     // Wake: batch-statistics KL of z
	StatReal                   // Wake: BCE(d(x), 1)
	StatNREM                   // NREM: MSE(E_z(dream), z)
	StatFake                   // REM: BCE(d(G(z_mix)), 0)
	StatDX                     // Wake: mean d(x)
	StatDGZ                    // REM: mean d(G(z_mix))
	StatLatentNorm             // Wake: mean ‖z‖
	NumStats
)

// Options are the settings of a cycle beyond its condition.
type Options struct {
	Seed              uint64
	AdamE, AdamG      backend.AdamHyper
	MaxTile           int  // largest occlusion tile (8)
	OcclusionPerImage bool // one mask per image instead of per mini-batch
	// StatSlots is how many QueueStats tickets may be outstanding at once
	// (DefaultStatSlots if 0).
	StatSlots int
}

// DefaultAdam is the reference's optimiser: lr 2e-4, betas (0.5, 0.999).
var DefaultAdam = backend.AdamHyper{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}

// PAD is one model learning through the cycle: E, G, the episodic
// memories and the buffers of the three phases.
type PAD struct {
	E    *model.Encoder
	G    *model.Generator
	Cond conditions.Condition
	Opt  Options
	Spec model.Spec
	b    backend.Backend

	// Memory is this iteration's z (detached), MemoryOld the previous
	// iteration's; hasOld says whether MemoryOld belongs to this epoch.
	Memory, MemoryOld backend.Buf
	hasOld            bool

	// Perturbations of the current iteration, drawn by Perturb (tests may
	// upload their own instead).
	WakeNoise, REMNoise backend.Buf // [N, nz]
	Mask                backend.Buf // [H·W] or [N·H·W] (per image)

	zWake backend.Buf // z + ε·n fed to G in Wake (used when ε > 0)
	zNREM backend.Buf // NREM's latent when it replays a mix
	ZMix  backend.Buf // REM's latent
	Dream backend.Buf // NREM's occluded dream [N, C, 32, 32]
	stats backend.Buf // NumStats values
	statV []backend.Buf
	host  []float32
	queue statQueue // QueueStats

	// OnPhase, if set, is called after each phase of Cycle with its name
	// ("wake", "nrem", "rem"); benchmarks use it to time the phases.
	OnPhase func(phase string)
}

// New builds a PAD model for spec on b and initialises it from opt.Seed.
func New(b backend.Backend, spec model.Spec, cond conditions.Condition, opt Options) (*PAD, error) {
	if err := cond.Validate(); err != nil {
		return nil, err
	}
	if spec.Batch < 2 {
		return nil, fmt.Errorf("phases: batch %d: the KL loss needs at least 2 images per batch", spec.Batch)
	}
	if opt.MaxTile < 1 {
		return nil, fmt.Errorf("phases: max tile %d must be at least 1", opt.MaxTile)
	}
	e, err := model.NewEncoder(b, spec)
	if err != nil {
		return nil, err
	}
	g, err := model.NewGenerator(b, spec)
	if err != nil {
		return nil, err
	}
	p := &PAD{E: e, G: g, Cond: cond, Opt: opt, Spec: spec, b: b}
	n, nz, img := spec.Batch, spec.NZ, spec.C*model.ImageSize*model.ImageSize
	masks := 1
	if opt.OcclusionPerImage {
		masks = n
	}
	for _, a := range []struct {
		p    *backend.Buf
		size int
	}{
		{&p.Memory, n * nz}, {&p.MemoryOld, n * nz}, {&p.WakeNoise, n * nz}, {&p.REMNoise, n * nz},
		{&p.Mask, masks * model.ImageSize * model.ImageSize},
		{&p.zWake, n * nz}, {&p.zNREM, n * nz}, {&p.ZMix, n * nz}, {&p.Dream, n * img}, {&p.stats, int(NumStats)},
	} {
		if *a.p, err = b.Alloc(a.size); err != nil {
			return nil, fmt.Errorf("phases: buffers: %w", err)
		}
	}
	p.statV = make([]backend.Buf, NumStats)
	for i := range p.statV {
		p.statV[i] = p.stats.Slice(i, 1)
	}
	p.host = make([]float32, NumStats)
	if err := p.queue.init(b, opt.StatSlots); err != nil {
		return nil, err
	}
	p.Init(opt.Seed)
	return p, b.Err()
}

// Init draws fresh parameters from seed and resets the optimisers and
// memories.
func (p *PAD) Init(seed uint64) {
	p.E.Init(p.b, seed, 0)
	p.G.Init(p.b, seed, uint64(len(p.E.Tensors)))
	p.hasOld = false
}

func (p *PAD) stat(s Stat) backend.Buf { return p.statV[s] }

// Perturb draws the random inputs of iteration iter (counted over the whole
// run): the Wake noise (if ε > 0), NREM's occlusion mask and REM's noise.
func (p *PAD) Perturb(iter uint64) {
	seed := p.Opt.Seed
	if p.Cond.Epsilon > 0 {
		p.b.RandNormal(p.WakeNoise, rng.Key{Seed: seed, Stream: rng.StreamWakeNoise, Seq: iter})
	}
	p.b.OcclusionMask(p.Mask, p.occlusion(iter))
	p.b.RandNormal(p.REMNoise, rng.Key{Seed: seed, Stream: rng.StreamREMNoise, Seq: iter})
}

// occlusion describes NREM's masks at iteration iter.
func (p *PAD) occlusion(iter uint64) backend.Occlusion {
	masks := 1
	if p.Opt.OcclusionPerImage {
		masks = p.Spec.Batch
	}
	return backend.Occlusion{
		H: model.ImageSize, W: model.ImageSize, Masks: masks, P: -1, MaxTile: p.Opt.MaxTile,
		Key: rng.Key{Seed: p.Opt.Seed, Stream: rng.StreamNREMMask, Seq: iter},
	}
}

// OcclusionParams returns the drop probability and tile size NREM's first
// mask uses at iteration iter (for logs and dream grids).
func (p *PAD) OcclusionParams(iter uint64) (float32, int) { return p.occlusion(iter).Params(0) }

// Iterate runs one iteration of the cycle on the images x [N, C, 32, 32]:
// Perturb, then Wake, NREM and REM in the condition's order. first marks
// the first iteration of an epoch (REM has no older memory to mix then).
//
// On a backend that replays whole iterations (backend.GraphRecorder: the CUDA
// backend's graphs), the iteration is bracketed by BeginGraph and EndGraph.
func (p *PAD) Iterate(x backend.Buf, iter uint64, first bool) {
	if st, ok := p.b.(backend.GraphRecorder); ok {
		st.BeginGraph()
		defer st.EndGraph()
	}
	p.Perturb(iter)
	p.Cycle(x, first)
}

// Cycle runs Wake, NREM and REM on x with the perturbations already in
// WakeNoise, Mask and REMNoise.
func (p *PAD) Cycle(x backend.Buf, first bool) {
	p.begin(first)
	p.Wake(x)
	p.phaseDone("wake")
	if p.Cond.REMFirst {
		p.REM()
		p.phaseDone("rem")
		p.NREM()
		p.phaseDone("nrem")
	} else {
		p.NREM()
		p.phaseDone("nrem")
		p.REM()
		p.phaseDone("rem")
	}
	p.end()
}

func (p *PAD) phaseDone(name string) {
	if p.OnPhase != nil {
		p.OnPhase(name)
	}
}

// begin starts an iteration; the first of an epoch has no older memory.
func (p *PAD) begin(first bool) {
	if first {
		p.hasOld = false
	}
}

// end makes this iteration's memory the older one of the next.
func (p *PAD) end() {
	p.Memory, p.MemoryOld = p.MemoryOld, p.Memory
	p.hasOld = true
}

// Wake reconstructs x through E and G: L = W·MSE(G(z + ε·n), x) + KL(z)
// (+ BCE(d(x), 1) when R > 0); one backward pass, then an Adam step of E
// and one of G. z is kept as the episodic memory.
func (p *PAD) Wake(x backend.Buf) {
	b, e, g, c := p.b, p.E, p.G, p.Cond
	e.ForgetGrads()
	g.ForgetGrads()
	e.Forward(x, model.Both)
	zIn := e.Z
	if c.Epsilon > 0 {
		b.LatentMix(p.zWake, e.Z, nil, p.WakeNoise, 1, 0, float32(c.Epsilon))
		zIn = p.zWake
	}
	g.Forward(zIn)
	var dOut, dd backend.Buf
	if c.W > 0 {
		dOut = g.DOut
	}
	if c.R > 0 {
		dd = e.DD
	}
	b.MSE(g.Out, x, p.stat(StatWakeRec), dOut, float32(c.W))
	b.KLBatch(e.Z, p.Spec.Batch, p.Spec.NZ, p.stat(StatKL), e.DZ, 1, 0)
	b.BCE(e.D, 1, p.stat(StatReal), dd, 1)
	b.Mean(e.D, p.stat(StatDX))
	b.RowNormMean(e.Z, p.Spec.Batch, p.Spec.NZ, p.stat(StatLatentNorm))
	b.Copy(p.Memory, e.Z)
	if c.W > 0 {
		g.Backward(zIn, true)
		b.Axpby(e.DZ, g.DZ, 1, 1)
	}
	heads := model.Latent
	if c.R > 0 {
		heads |= model.Dis
	}
	e.Backward(x, heads, nil)
	e.AdamStep(b, p.Opt.AdamE)
	g.AdamStep(b, p.Opt.AdamG)
}

// NREM dreams G(z) from the memory (no gradient), occludes the dream with
// the mask and teaches E to recover z: L = N·MSE(E_z(dream), z), one Adam
// step of E. With N = 0 the loss is still computed, for the record.
func (p *PAD) NREM() {
	b, e, g, c := p.b, p.E, p.G, p.Cond
	e.ForgetGrads()
	g.ForgetGrads() // G learns nothing in NREM
	z := p.nremDream()
	e.Forward(p.Dream, model.Latent)
	var dz backend.Buf
	if c.N > 0 {
		dz = e.DZ
	}
	b.MSE(e.Z, z, p.stat(StatNREM), dz, float32(c.N))
	if c.N > 0 {
		e.Backward(p.Dream, model.Latent, nil)
		e.AdamStep(b, p.Opt.AdamE)
	}
}

// REM dreams G(z_mix) from mixed memories and noise and plays the GAN
// game: L = BCE(d(G(z_mix)), 0); E descends it, G ascends it through the
// gradient reversal at G's output; one Adam step of E and one of G. With
// R = 0 the loss is still computed, for the record.
func (p *PAD) REM() {
	b, e, g, c := p.b, p.E, p.G, p.Cond
	e.ForgetGrads()
	g.ForgetGrads()
	p.remDream()
	e.Forward(g.Out, model.Dis)
	var dd backend.Buf
	if c.R > 0 {
		dd = e.DD
	}
	b.BCE(e.D, 0, p.stat(StatFake), dd, 1)
	b.Mean(e.D, p.stat(StatDGZ))
	if c.R > 0 {
		e.Backward(g.Out, model.Dis, g.DOut)
		b.Scale(g.DOut, -1) // gradient reversal: G learns to fool E
		g.Backward(p.ZMix, false)
		e.AdamStep(b, p.Opt.AdamE)
		g.AdamStep(b, p.Opt.AdamG)
	}
}

// nremDream writes NREM's occluded dream G(z) to Dream and returns the
// latent it was dreamt from: the memory, or a mix of two (NREMMix).
func (p *PAD) nremDream() backend.Buf {
	b, c := p.b, p.Cond
	z := p.Memory
	if c.NREMMix && p.hasOld {
		l := float32(c.Lambda)
		b.LatentMix(p.zNREM, p.Memory, p.MemoryOld, nil, l, 1-l, 0)
		z = p.zNREM
	}
	p.G.Forward(z)
	b.Copy(p.Dream, p.G.Out)
	b.ApplyMask(p.Dream, p.Mask, p.Spec.Batch, p.Spec.C, model.ImageSize*model.ImageSize, p.Opt.OcclusionPerImage)
	return z
}

// remDream mixes memories and noise into ZMix as the condition says and
// leaves the REM dream G(ZMix) in G.Out.
func (p *PAD) remDream() {
	b, c := p.b, p.Cond
	l := float32(c.Lambda)
	switch {
	case c.Mix == conditions.MixNoise:
		b.Copy(p.ZMix, p.REMNoise)
	case c.Mix == conditions.MixNoNoise && p.hasOld:
		b.LatentMix(p.ZMix, p.Memory, p.MemoryOld, nil, l, 1-l, 0)
	case c.Mix == conditions.MixNoNoise:
		b.Copy(p.ZMix, p.Memory)
	case c.Mix == conditions.MixMemories && p.hasOld:
		b.LatentMix(p.ZMix, p.Memory, p.MemoryOld, p.REMNoise, l*l, l*(1-l), 1-l)
	default: // MixOne, or the first iteration of an epoch
		b.LatentMix(p.ZMix, p.Memory, nil, p.REMNoise, l, 0, 1-l)
	}
	p.G.Forward(p.ZMix)
}

// Dreams draws both kinds of dream from the current memories and
// perturbations without learning: NREM's occluded dreams in Dream, REM's
// in G.Out.
func (p *PAD) Dreams() {
	p.nremDream()
	p.remDream()
}

// Stats downloads the numbers of the last iteration. It waits for the
// device and returns its first error.
func (p *PAD) Stats() ([NumStats]float32, error) {
	var out [NumStats]float32
	p.b.Download(p.host, p.stats)
	if err := p.b.Sync(); err != nil {
		return out, err
	}
	copy(out[:], p.host)
	return out, nil
}

// StatsBuf returns the buffer each iteration writes its NumStats numbers to
// (Stats downloads it as float32; the CPU float64 twin's exact values are
// read from it with cpu.Values).
func (p *PAD) StatsBuf() backend.Buf { return p.stats }

// HasOld reports whether MemoryOld holds the previous iteration's memory
// of the current epoch (checkpoints save it to resume exactly).
func (p *PAD) HasOld() bool { return p.hasOld }

// SetHasOld restores what HasOld reports, when resuming from a checkpoint.
func (p *PAD) SetHasOld(v bool) { p.hasOld = v }

// Backend returns the backend the model lives on.
func (p *PAD) Backend() backend.Backend { return p.b }
