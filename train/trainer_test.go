package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/metrics"
)

// tiny returns a config that trains a very small model on the embedded
// sample: 10 batches of 16 per epoch, no probe, no samples.
func tiny(t *testing.T, sets ...string) configs.Config {
	t.Helper()
	c := configs.Default()
	for _, kv := range append([]string{
		"data.dataset=embedded", "data.train_limit=160", "data.test_limit=64",
		"model.nf=4", "model.nz=8", "train.batch=16", "train.epochs=2",
		"train.log_every=1", "train.sample_every=0", "eval.every=0", "device.kind=cpu",
	}, sets...) {
		if err := c.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, cfg configs.Config, dir string, resume bool, ctx context.Context) (Summary, error) {
	t.Helper()
	tr, err := New(Options{Config: cfg, Dir: dir, Resume: resume, Backend: cpu.New(2), Progress: ProgressNone})
	if err != nil {
		return Summary{}, err
	}
	defer tr.Close()
	return tr.Run(ctx)
}

func trainRecords(t *testing.T, dir string) []metrics.Record {
	t.Helper()
	recs, _, err := metrics.ReadFile(filepath.Join(dir, metrics.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var out []metrics.Record
	for _, r := range recs {
		if r.Kind == metrics.KindTrain {
			out = append(out, r)
		}
	}
	return out
}

func weights(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Read(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for name, ts := range f.Tensors {
		if ts.DType == "F32" {
			v, err := ts.F32()
			if err != nil {
				t.Fatal(err)
			}
			out[name] = v
		}
	}
	return out
}

// A run stopped after 7 iterations (mid-epoch) and resumed must produce
// exactly the losses and final parameters of an uninterrupted run.
func TestResumeIsExact(t *testing.T) {
	base := t.TempDir()
	whole, parts := filepath.Join(base, "whole"), filepath.Join(base, "parts")
	if _, err := run(t, tiny(t), whole, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, tiny(t, "train.max_iters=7"), parts, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, tiny(t, "train.max_iters=13"), parts, true, context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, tiny(t), parts, true, context.Background()); err != nil {
		t.Fatal(err)
	}
	a, b := trainRecords(t, whole), trainRecords(t, parts)
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("train records: %d uninterrupted, %d resumed; want 20 each", len(a), len(b))
	}
	for i := range a {
		if a[i].Iter != b[i].Iter || *a[i].WakeRec != *b[i].WakeRec || *a[i].NREMRec != *b[i].NREMRec ||
			*a[i].KL != *b[i].KL || *a[i].DLoss != *b[i].DLoss || *a[i].GLoss != *b[i].GLoss {
			t.Fatalf("iteration %d differs after resuming:\nwhole   %+v\nresumed %+v", a[i].Iter, a[i], b[i])
		}
	}
	wa, wb := weights(t, whole), weights(t, parts)
	for name, v := range wa {
		for i := range v {
			if v[i] != wb[name][i] {
				t.Fatalf("%s[%d]: %v uninterrupted, %v resumed", name, i, v[i], wb[name][i])
			}
		}
	}
}

// Cancelling the context finishes the iteration, checkpoints it and
// returns ErrInterrupted; resuming goes on from there.
func TestInterruptCheckpoints(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := run(t, tiny(t), dir, false, ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run with a cancelled context: %v, want ErrInterrupted", err)
	}
	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Iter != 1 || c.State.Index != 1 || c.State.Epoch != 0 {
		t.Fatalf("checkpoint at %+v, want after the first iteration", c.State.Position)
	}
	if _, err := run(t, tiny(t), dir, true, context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(trainRecords(t, dir)); n != 20 {
		t.Fatalf("%d train records after resuming, want 20", n)
	}
}

func TestExistingRunNeedsResume(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, tiny(t, "train.max_iters=2"), dir, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, tiny(t), dir, false, context.Background())
	if err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second run without --resume: %v", err)
	}
	// A different model cannot resume the run; the error names the keys.
	_, err = run(t, tiny(t, "model.nf=8", "train.lr_e=0.001"), dir, true, context.Background())
	if err == nil || !strings.Contains(err.Error(), "different config (model.nf 4 → 8, train.lr_e 0.0002 → 0.001)") {
		t.Fatalf("resume with another config: %v", err)
	}
	// Keys outside the config hash may change on a resume.
	if _, err = run(t, tiny(t, "train.max_iters=3", "train.log_every=2"), dir, true, context.Background()); err != nil {
		t.Fatalf("resume with another train.max_iters: %v", err)
	}
}

// A diverging run stops with an error naming the phase and the iteration,
// and leaves the last good checkpoint in place.
func TestNonFiniteLossStops(t *testing.T) {
	dir := t.TempDir()
	_, err := run(t, tiny(t, "train.lr_e=1e30", "train.lr_g=1e30", "train.checkpoint_every=1"), dir, false, context.Background())
	var nf *NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("Run with lr 1e30: %v, want a NonFiniteError", err)
	}
	if !strings.Contains(err.Error(), nf.Phase) || !strings.Contains(err.Error(), "iteration") {
		t.Fatalf("error does not name phase and iteration: %v", err)
	}
	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if nf.Iter == 0 {
		if err == nil {
			t.Fatal("a checkpoint was written for a run that failed at its first iteration")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Iter != nf.Iter {
		t.Fatalf("last checkpoint at iteration %d, the failure at %d: want the checkpoint just before it", c.State.Iter, nf.Iter)
	}
}

// A second process on the same run directory is refused while the first
// holds it.
func TestRunDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	first, err := New(Options{Config: tiny(t), Dir: dir, Backend: cpu.New(1), Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: tiny(t), Dir: dir, Backend: cpu.New(1), Progress: ProgressNone})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second trainer on the same directory: %v", err)
	}
	if _, err := first.Run(context.Background()); err != nil {
		t.Fatalf("the first run was harmed: %v", err)
	}
	first.Close()
	if _, err := os.Stat(filepath.Join(dir, CheckpointName)); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint of another shape is refused with every mismatched tensor
// listed, and the model is left as it was.
func TestCheckpointShapeMismatch(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, tiny(t, "train.max_iters=1"), dir, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	other := tiny(t, "model.nf=8", "model.nz=12")
	tr, err := New(Options{Config: other, Dir: t.TempDir(), Backend: cpu.New(1), Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before := make([]float32, tr.Model.E.Size)
	tr.b.Download(before, tr.Model.E.Values)
	err = c.LoadWeights(tr.b, tr.Model)
	if err == nil {
		t.Fatal("loading nf=4 weights into an nf=8 model succeeded")
	}
	for _, name := range []string{"E.conv1.0.weight", "E.conv4.0.bias", "G.tconv1.0.weight", "G.tconv4.0.weight"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not list %s:\n%v", name, err)
		}
	}
	after := make([]float32, tr.Model.E.Size)
	tr.b.Download(after, tr.Model.E.Values)
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("a refused checkpoint changed the model")
		}
	}
	if err := c.LoadState(tr.b, tr.Model); err == nil {
		t.Fatal("LoadState of a mismatched checkpoint succeeded")
	}
}
