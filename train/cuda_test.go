package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/testkit"
	"github.com/pad-dreaming/pad/metrics"
)

func gpuBackend(t *testing.T, precision string, graphs bool) *cuda.Backend {
	t.Helper()
	runtime.LockOSThread()
	b, err := cuda.New(cuda.Options{Precision: precision, NoGraphs: !graphs, CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if errors.Is(err, cuda.ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mnistRoot(t *testing.T) string {
	for _, d := range []string{os.Getenv("PAD_MNIST"), mnistDir} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	t.Skip("real MNIST not available (set PAD_MNIST)")
	return ""
}

func mnistConfig(t *testing.T, root string, iters int) configs.Config {
	return tiny(t, "data.dataset=mnist", "data.root="+root, "data.train_limit=0", "data.test_limit=0",
		"model.nf=64", "model.nz=256", "train.batch=64", "train.epochs=1", "train.max_iters="+strconv.Itoa(iters), "seed=1")
}

// TestMNISTGPUMatchesCPU trains 200 iterations of the paper's model on
// real MNIST on the CPU and on the GPU (exact FP32) from the same seed, on
// the GPU once with every iteration replayed as a CUDA graph and once with
// every operation issued directly; the logged losses must agree with the
// CPU's to 1e-3 relative at every iteration.
func TestMNISTGPUMatchesCPU(t *testing.T) {
	root := mnistRoot(t)
	cfg := mnistConfig(t, root, 200)
	base := t.TempDir()
	gpuTime := map[bool]time.Duration{}
	for _, graphs := range []bool{true, false} {
		g := gpuBackend(t, "fp32", graphs)
		start := time.Now()
		tr, err := New(Options{Config: cfg, Dir: filepath.Join(base, "gpu"+strconv.FormatBool(graphs)), Backend: g, Progress: ProgressNone})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		gpuTime[graphs] = time.Since(start)
		if st := g.GraphStats(); graphs && (st.Replays < 190 || st.Off != "") {
			t.Errorf("graphs: %s", g.GraphSummary())
		} else {
			t.Logf("graphs=%v: %s", graphs, g.GraphSummary())
		}
		g.Close()
	}
	start := time.Now()
	tc, err := New(Options{Config: cfg, Dir: filepath.Join(base, "cpu"), Backend: cpu.New(0), Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	cpuTime := time.Since(start)
	b := trainRecords(t, filepath.Join(base, "cpu"))
	for _, graphs := range []bool{true, false} {
		compareRecords(t, fmt.Sprintf("gpu (graphs=%v, %v)", graphs, gpuTime[graphs].Round(time.Millisecond)), trainRecords(t, filepath.Join(base, "gpu"+strconv.FormatBool(graphs))), b, cpuTime)
	}
}

// compareRecords checks 200 logged iterations of a GPU run against the CPU's.
func compareRecords(t *testing.T, what string, a, b []metrics.Record, cpuTime time.Duration) {
	if len(a) != 200 || len(b) != 200 {
		t.Fatalf("records: %s %d, cpu %d", what, len(a), len(b))
	}
	worst, worstAt, worstName := 0.0, 0, ""
	for i := range a {
		for name, pair := range map[string][2]*float64{
			"wake_rec": {a[i].WakeRec, b[i].WakeRec}, "nrem_rec": {a[i].NREMRec, b[i].NREMRec}, "kl": {a[i].KL, b[i].KL},
			"d_loss": {a[i].DLoss, b[i].DLoss}, "g_loss": {a[i].GLoss, b[i].GLoss},
		} {
			g, c := *pair[0], *pair[1]
			rel := math.Abs(g-c) / math.Max(math.Abs(c), 1e-12)
			if rel > worst {
				worst, worstAt, worstName = rel, a[i].Iter, name
			}
		}
	}
	t.Logf("200 iterations: %s, cpu %v; worst relative loss difference %.3g (%s at iteration %d)", what, cpuTime.Round(time.Millisecond), worst, worstName, worstAt)
	t.Logf("last wake_rec: gpu %.6f cpu %.6f", *a[199].WakeRec, *b[199].WakeRec)
	if worst > 1e-3 {
		t.Errorf("%s and CPU losses differ by %.3g (> 1e-3) at iteration %d (%s)", what, worst, worstAt, worstName)
	}
}

// TestGPUMemoryIsFlat trains 2,000 iterations on the GPU: after the first
// iterations (algorithm search, workspaces) neither device memory nor the Go
// heap may grow.
func TestGPUMemoryIsFlat(t *testing.T) {
	root := mnistRoot(t)
	g := gpuBackend(t, "tf32", true)
	defer g.Close()
	measure := func() (dev int64, heap uint64) {
		g.Sync()
		free, total, _ := cu.MemGetInfo()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(total - free), ms.HeapAlloc
	}
	cfg := mnistConfig(t, root, 100)
	cfg.Train.Epochs = 3
	dir := t.TempDir()
	tr, err := New(Options{Config: cfg, Dir: dir, Backend: g, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dev0, heap0 := measure()
	alloc0, _ := g.PeakMemory()
	tr.cfg.Train.MaxIters = 2100
	start := time.Now()
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	dev1, heap1 := measure()
	alloc1, _ := g.PeakMemory()
	tr.Close()
	t.Logf("2,000 iterations in %v (%.2f ms/iteration incl. loading, stats sync, logging): device memory in use %d → %d MiB, pad's peak allocation %d → %d MiB, Go heap %d → %d KiB",
		el.Round(time.Millisecond), float64(el.Microseconds())/2000/1000, dev0>>20, dev1>>20, alloc0>>20, alloc1>>20, heap0>>10, heap1>>10)
	if dev1 > dev0+(16<<20) || alloc1 != alloc0 {
		t.Errorf("device memory grew over 2,000 iterations: %d → %d MiB in use, peak allocation %d → %d MiB", dev0>>20, dev1>>20, alloc0>>20, alloc1>>20)
	}
	if heap1 > heap0+(8<<20) {
		t.Errorf("Go heap grew over 2,000 iterations: %d → %d KiB", heap0>>10, heap1>>10)
	}
}
