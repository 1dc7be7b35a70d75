package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mnistDir is where CI and developers have the real MNIST files.
var mnistDir = filepath.Join("..", "..", "shared", "data", "mnist")

// TestMNIST200Iterations trains the paper's model (nf 64, nz 256, batch
// 64, full PAD) for 200 iterations on real MNIST with a fixed seed: every
// loss stays finite and the Wake reconstruction loss ends at most half its
// first value.
func TestMNIST200Iterations(t *testing.T) {
	if testing.Short() {
		t.Skip("200 full-size iterations take a minute or two; skipped with -short")
	}
	if _, err := os.Stat(mnistDir); err != nil {
		t.Skipf("real MNIST not available at %s", mnistDir)
	}
	cfg := tiny(t, "data.dataset=mnist", "data.root="+mnistDir, "data.train_limit=0", "data.test_limit=0",
		"model.nf=64", "model.nz=256", "train.batch=64", "train.epochs=1", "train.max_iters=200", "seed=1")
	dir := t.TempDir()
	start := time.Now()
	if _, err := run(t, cfg, dir, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	recs := trainRecords(t, dir)
	if len(recs) != 200 {
		t.Fatalf("%d train records, want 200", len(recs))
	}
	for _, r := range recs {
		for name, v := range map[string]*float64{"wake_rec": r.WakeRec, "nrem_rec": r.NREMRec, "kl": r.KL, "d_loss": r.DLoss, "g_loss": r.GLoss} {
			if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
				t.Fatalf("iteration %d: %s = %v", r.Iter, name, v)
			}
		}
	}
	first, last := *recs[0].WakeRec, *recs[len(recs)-1].WakeRec
	var tail float64
	for _, r := range recs[len(recs)-10:] {
		tail += *r.WakeRec / 10
	}
	l := recs[len(recs)-1]
	t.Logf("200 iterations in %v (%.0f ms/iteration incl. data loading)", el.Round(time.Second), float64(el.Milliseconds())/200)
	t.Logf("wake_rec first %.4f, last %.4f (mean of last 10: %.4f, ratio %.3f)", first, last, tail, last/first)
	t.Logf("last: nrem_rec %.4f kl %.4f d_loss %.4f g_loss %.4f D(x) %.3f D(G(z)) %.3f |z| %.2f",
		*l.NREMRec, *l.KL, *l.DLoss, *l.GLoss, *l.DX, *l.DGZ, *l.LatentNorm)
	if last > first/2 {
		t.Fatalf("wake reconstruction went from %.4f to %.4f: not halved", first, last)
	}
}
