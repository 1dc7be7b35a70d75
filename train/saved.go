package train

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// SavedRun is a finished (or running) run opened for evaluation: its config,
// its model with the checkpoint's weights, its data and an encoder.
type SavedRun struct {
	Dir        string
	Config     configs.Config
	Checkpoint *Checkpoint
	Model      *phases.PAD
	Train      *dataset.Set
	Test       *dataset.Set
	Encoder    *eval.FrozenEncoder
}

// OpenSavedRun reads dir's config.toml, checkpoint and data
// (ReadSavedRun) and rebuilds the model on b (Build). It does not take the
// run's lock: evaluation only reads the run.
func OpenSavedRun(dir string, b backend.Backend) (*SavedRun, error) {
	r, err := ReadSavedRun(dir)
	if err != nil {
		return nil, err
	}
	if err := r.Build(b); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadSavedRun reads what a saved run holds without a device: its config,
// its checkpoint and its data sets. A command opens the device after it,
// so that a run whose data or checkpoint is missing fails before a GPU is
// checked or kernels compile. Model and Encoder stay nil until Build.
func ReadSavedRun(dir string) (*SavedRun, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("run %s: not a run directory (pad train writes runs/<name>/)", dir)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	ckpt, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	data, err := LoadData(cfg)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	if _, err := Condition(cfg); err != nil {
		return nil, err
	}
	return &SavedRun{Dir: dir, Config: cfg, Checkpoint: ckpt, Train: data.Train, Test: data.Test}, nil
}

// Build rebuilds the run's model on b with the checkpoint's weights, and
// the frozen encoder that evaluates it.
func (r *SavedRun) Build(b backend.Backend) error {
	if r.Model != nil {
		return fmt.Errorf("run %s: the model is built already", r.Dir)
	}
	cfg := r.Config
	cond, err := Condition(cfg)
	if err != nil {
		return err
	}
	spec := model.Spec{C: r.Train.C, NF: cfg.Model.NF, NZ: cfg.Model.NZ, Batch: cfg.Train.Batch}
	p, err := phases.New(b, spec, cond, phases.Options{Seed: cfg.Seed, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: cfg.Train.MaxTile})
	if err != nil {
		return err
	}
	if err := r.Checkpoint.LoadWeights(b, p); err != nil {
		return err
	}
	enc, err := eval.NewFrozenEncoder(p)
	if err != nil {
		return err
	}
	r.Model, r.Encoder = p, enc
	return nil
}

// Close releases the run's device buffers.
func (r *SavedRun) Close() {
	if r.Encoder != nil {
		r.Encoder.Close()
	}
}

// Dreams writes fresh sample grids of the run's model into dir: the first
// test batch and its reconstructions, NREM dreams of its latents occluded
// as in training, REM dreams mixing its latents with the next batch's and
// noise, and conv1's filters. seed picks the masks and noise.
// It returns the files and the NREM masks' drop probability and tile size.
func (r *SavedRun) Dreams(dir string, seed uint64) (files []string, occP float32, occTile int, err error) {
	p := r.Model
	b := p.Backend()
	s := p.Spec
	img := s.C * model.ImageSize * model.ImageSize
	x := make([]float32, s.Batch*img)
	xb, err := b.Alloc(len(x))
	if err != nil {
		return nil, 0, 0, err
	}
	defer b.Free(xb)
	// Memories of two test batches: the older one first.
	for k, mem := range []backend.Buf{p.MemoryOld, p.Memory} {
		for i := 0; i < s.Batch; i++ {
			dataset.Scale(x[i*img:(i+1)*img], r.Test.Image((((1-k)*s.Batch)+i)%r.Test.N))
		}
		b.Upload(xb, x)
		p.E.Forward(xb, model.Latent)
		b.Copy(mem, p.E.Z)
	}
	p.SetHasOld(true)
	p.Perturb(seed)
	p.Dreams()
	if err := b.Sync(); err != nil {
		return nil, 0, 0, err
	}
	occP, occTile = p.OcclusionParams(seed)
	files, err = WriteSamples(dir, "", p, r.Test)
	return files, occP, occTile, err
}
