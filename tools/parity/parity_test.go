package parity

import (
	"fmt"
	"testing"
)

// shortFile is a 40-iteration PyTorch trajectory of full PAD on the
// tinted colour sample (C = 3, nf 4, nz 8, batch 8, 100 images: 12
// batches per epoch, 4 images dropped at each epoch's end, epoch
// boundaries at iterations 12, 24 and 36), recorded in float64 by
// `make parity-short` (scripts/pad_torch.py trajectory).
const shortFile = "../../testdata/parity/pad-c3-40.safetensors"

// Tolerances of the short replay. Identical algorithms differ by float64
// round-off, amplified by the training dynamics (the KL gradient at
// initialisation is a sum of large cancelling terms): about 1e-10 after
// 40 iterations here (losses 1.2e-10, parameters 4e-11), the same as
// between two pad runs whose initial parameters differ by one ulp (2.5e-10
// and 7e-11). A semantic difference moves the parameters by ~1e-3 and the
// losses by ~3e-8 (see TestShortTrajectoryCatchesDifference). The initial
// parameters are the same float32 draws on both sides: equal exactly.
const (
	shortTol      = 1e-8
	shortFirstTol = 1e-10 // iteration 0: no dynamics yet
)

func loadShort(t *testing.T) (*Trajectory, Settings) {
	t.Helper()
	torch, s, err := ReadTrajectory(shortFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.Channels != 3 || s.Iters < 2*s.BatchesPerEpoch()+1 || s.Images%s.Batch == 0 {
		t.Fatalf("%s: %s: want C = 3, two epoch boundaries and a dropped partial batch", shortFile, s)
	}
	return torch, s
}

// overTol lists every number of r beyond the short replay's tolerances.
func overTol(r *Result) []string {
	var bad []string
	if e := r.MaxLossErr[0]; !(e <= shortFirstTol) {
		bad = append(bad, fmt.Sprintf("iteration 0: loss error %.3g > %g", e, shortFirstTol))
	}
	for _, name := range Losses {
		for i, e := range r.LossErr[name] {
			if !(e <= shortTol) {
				bad = append(bad, fmt.Sprintf("%s at iteration %d: relative error %.3g > %g", name, i, e, shortTol))
			}
		}
	}
	for k, m := range r.ParamErr {
		tol := shortTol
		if k == 0 {
			tol = 0
		}
		for name, e := range m {
			if !(e <= tol) {
				bad = append(bad, fmt.Sprintf("%s after iteration %d: relative error %.3g > %g", name, k, e, tol))
			}
		}
	}
	return bad
}

// TestShortTrajectory replays the committed PyTorch trajectory with pad's
// trainer on the float64 CPU twin: the same images in the same batches,
// the same occlusion draws, the same initial parameters, every loss of
// every iteration and every parameter at the end within round-off.
func TestShortTrajectory(t *testing.T) {
	torch, s := loadShort(t)
	pad, set, err := RunPad(s, t.TempDir(), RunOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if h := SHA256(set); h != torch.Meta["data_sha256"] {
		t.Fatalf("pad trained on other images than the script (sha256 %s, script %s)", h, torch.Meta["data_sha256"])
	}
	if it, err := CheckBatches(s, set, torch); err != nil {
		t.Fatal(err)
	} else if it >= 0 {
		t.Fatalf("pad's loader and the script differ in the images of iteration %d", it)
	}
	if it, err := CheckOcclusion(pad, torch); err != nil {
		t.Fatal(err)
	} else if it >= 0 {
		t.Fatalf("pad's occlusion draw differs from the script's at iteration %d", it)
	}
	r, err := Compare(s, pad, torch)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range overTol(r) {
		t.Error(b)
	}
	t.Logf("%s: worst loss error %.3g (%s, iteration %d), worst parameter error %.3g (%s after %d)", s,
		r.WorstLoss, r.WorstLossAt, r.WorstLossIter, r.WorstParam, r.WorstParamAt, r.WorstParamIter)
}

// TestShortTrajectoryCatchesDifference runs pad with REM mixing one
// memory with noise instead of two (no-memory-mix) against the full-PAD
// trajectory: iteration 0 agrees (an epoch's first iteration mixes one
// memory in both), the parameters part by far more than the tolerance,
// and TestShortTrajectory's check fails.
func TestShortTrajectoryCatchesDifference(t *testing.T) {
	torch, s := loadShort(t)
	s.Condition = "no-memory-mix"
	pad, _, err := RunPad(s, t.TempDir(), RunOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compare(s, pad, torch)
	if err != nil {
		t.Fatal(err)
	}
	if !(r.MaxLossErr[0] <= shortFirstTol) {
		t.Errorf("iteration 0: error %.3g, want ≤ %g (the same computation)", r.MaxLossErr[0], shortFirstTol)
	}
	// Forty steps of lr 2e-4 move the losses little, so the parameters
	// carry the signal: they part by ~1e-3, the losses by ~3e-8.
	if !(r.WorstParam > 1e3*shortTol) {
		t.Errorf("worst parameter error %.3g: want far above %g", r.WorstParam, shortTol)
	}
	if len(overTol(r)) == 0 {
		t.Error("TestShortTrajectory's check passes no-memory-mix against full PAD")
	}
	t.Logf("no-memory-mix against full PAD: worst loss error %.3g (%s, iteration %d), worst parameter error %.3g (%s)",
		r.WorstLoss, r.WorstLossAt, r.WorstLossIter, r.WorstParam, r.WorstParamAt)
}
