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
	return gpuBackendStreams(t, precision, graphs, true)
}

// gpuBackendStreams opens the CUDA backend with graphs on or off and with
// one stream or two (overlap).
func gpuBackendStreams(t *testing.T, precision string, graphs, overlap bool) *cuda.Backend {
	t.Helper()
	runtime.LockOSThread()
	b, err := cuda.New(cuda.Options{Precision: precision, NoGraphs: !graphs, NoOverlap: !overlap, CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
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
	size := []string{"model.nf=64", "model.nz=256", "train.batch=64"}
	if cu.Simulated() {
		size = simSize
	}
	return tiny(t, append([]string{"data.dataset=mnist", "data.root=" + root, "data.train_limit=0", "data.test_limit=0",
		"train.epochs=1", "train.max_iters=" + strconv.Itoa(iters), "seed=1"}, size...)...)
}

// simSize is the model the GPU tests train where the GPU is pad's
// simulation (internal/cudasim): its convolutions run on the CPU in double
// precision and its kernels under emulation, so the paper's model would
// take minutes per test. Every code path of the backend is the same at
// any size.
var simSize = []string{"model.nf=8", "model.nz=16", "train.batch=16"}

// gpuVariants are the ways the GPU tests run the backend: graphs on and
// off, two streams; on the simulation also one stream (cheap there, and
// the simulation's lazy scheduler is what tests the stream ordering).
func gpuVariants() [][2]bool {
	v := [][2]bool{{true, true}, {false, true}}
	if cu.Simulated() {
		v = append(v, [2]bool{true, false}, [2]bool{false, false})
	}
	return v
}

// TestMNISTGPUMatchesCPU trains 200 iterations of the paper's model (on the
// simulated GPU: 100 iterations of a small one, in all four ways) on
// real MNIST on the CPU and on the GPU (exact FP32) from the same seed, on
// the GPU once with every iteration replayed as a CUDA graph and once with
// every operation issued directly; the logged losses must agree with the
// CPU's to 1e-3 relative at every iteration.
func TestMNISTGPUMatchesCPU(t *testing.T) {
	root := mnistRoot(t)
	iters := 200
	if cu.Simulated() {
		// The simulation's small model drifts chaotically from the CPU's
		// later (the KL of 16 latents over a batch of 16 is a small
		// difference of large terms); 100 iterations hold to 1e-3.
		iters = 100
	}
	cfg := mnistConfig(t, root, iters)
	base := t.TempDir()
	gpuTime := map[[2]bool]time.Duration{}
	variantDir := func(v [2]bool) string { return filepath.Join(base, fmt.Sprintf("gpu-graphs%v-overlap%v", v[0], v[1])) }
	for _, v := range gpuVariants() {
		graphs := v[0]
		g := gpuBackendStreams(t, "fp32", graphs, v[1])
		start := time.Now()
		tr, err := New(Options{Config: cfg, Dir: variantDir(v), Backend: g, Progress: ProgressNone})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		gpuTime[v] = time.Since(start)
		if st := g.GraphStats(); graphs && (st.Replays < iters-10 || st.Off != "") {
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
	for _, v := range gpuVariants() {
		compareRecords(t, fmt.Sprintf("gpu (graphs=%v, two streams=%v, %v)", v[0], v[1], gpuTime[v].Round(time.Millisecond)), iters, trainRecords(t, variantDir(v)), b, cpuTime)
	}
}

// compareRecords checks n logged iterations of a GPU run against the CPU's.
func compareRecords(t *testing.T, what string, n int, a, b []metrics.Record, cpuTime time.Duration) {
	if len(a) != n || len(b) != n {
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
	t.Logf("%d iterations: %s, cpu %v; worst relative loss difference %.3g (%s at iteration %d)", n, what, cpuTime.Round(time.Millisecond), worst, worstName, worstAt)
	t.Logf("last wake_rec: gpu %.6f cpu %.6f", *a[n-1].WakeRec, *b[n-1].WakeRec)
	if worst > 1e-3 {
		t.Errorf("%s and CPU losses differ by %.3g (> 1e-3) at iteration %d (%s)", what, worst, worstAt, worstName)
	}
}

// TestGPUMemoryIsFlat trains 2,000 iterations on the GPU (300 on the
// simulation): after the first iterations (algorithm search, workspaces)
// neither device memory nor the Go heap may grow.
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
	n := 2000
	if cu.Simulated() {
		n = 300
	}
	tr.cfg.Train.MaxIters = 100 + n
	start := time.Now()
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	dev1, heap1 := measure()
	alloc1, _ := g.PeakMemory()
	tr.Close()
	t.Logf("%d iterations in %v (%.2f ms/iteration incl. loading, stats sync, logging): device memory in use %d → %d MiB, pad's peak allocation %d → %d MiB, Go heap %d → %d KiB",
		n, el.Round(time.Millisecond), float64(el.Microseconds())/float64(n)/1000, dev0>>20, dev1>>20, alloc0>>20, alloc1>>20, heap0>>10, heap1>>10)
	if dev1 > dev0+(16<<20) || alloc1 != alloc0 {
		t.Errorf("device memory grew over %d iterations: %d → %d MiB in use, peak allocation %d → %d MiB", n, dev0>>20, dev1>>20, alloc0>>20, alloc1>>20)
	}
	if heap1 > heap0+(8<<20) {
		t.Errorf("Go heap grew over %d iterations: %d → %d KiB", n, heap0>>10, heap1>>10)
	}
}
