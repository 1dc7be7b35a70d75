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

// gpuData returns the data settings of the GPU training tests: real
// MNIST where it is (PAD_MNIST or ../shared), else the embedded
// Fashion-MNIST sample (8,000 training images), so that the tests run
// everywhere, CI included.
func gpuData() []string {
	for _, d := range []string{os.Getenv("PAD_MNIST"), mnistDir} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); err == nil {
			return []string{"data.dataset=mnist", "data.root=" + d, "data.train_limit=0", "data.test_limit=0"}
		}
	}
	return []string{"data.dataset=embedded", "data.train_limit=0", "data.test_limit=0"}
}

func gpuConfig(t *testing.T, iters int) configs.Config {
	size := []string{"model.nf=64", "model.nz=256", "train.batch=64"}
	if cu.Simulated() {
		size = simSize
	}
	return tiny(t, append(append(gpuData(), "train.epochs=1", "train.max_iters="+strconv.Itoa(iters), "seed=1"), size...)...)
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

// TestGPUMatchesCPU trains 200 iterations of the paper's model (on the
// simulated GPU a small one) on real MNIST where it is, else on the
// embedded sample, on the CPU and on the GPU (exact FP32) from the same
// seed, on the GPU with graphs on and off and with two streams and one.
// The logged losses must agree with the CPU's to 1e-3 relative for 100
// iterations, and after that within pad doctor's limit for sample runs
// (doctor.LimitSampleRun: 2e-2 of the range each number takes in the CPU
// run); the small model's trajectories drift apart chaotically later (the
// KL of 16 latents over a batch of 16 is a small difference of large
// terms). The GPU's ways of running compute the same bits: the other
// three must log exactly the first way's numbers.
func TestGPUMatchesCPU(t *testing.T) {
	iters, others := 200, 200
	base := t.TempDir()
	gpuTime := map[[2]bool]time.Duration{}
	variantDir := func(v [2]bool) string { return filepath.Join(base, fmt.Sprintf("gpu-graphs%v-overlap%v", v[0], v[1])) }
	variantIters := func(i int) int {
		if i == 0 {
			return iters
		}
		return others
	}
	for i, v := range gpuVariants() {
		graphs := v[0]
		cfg := gpuConfig(t, variantIters(i))
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
		if st := g.GraphStats(); graphs && (st.Replays < variantIters(i)-10 || st.Off != "") {
			t.Errorf("graphs: %s", g.GraphSummary())
		} else {
			t.Logf("graphs=%v: %s", graphs, g.GraphSummary())
		}
		g.Close()
	}
	start := time.Now()
	tc, err := New(Options{Config: gpuConfig(t, iters), Dir: filepath.Join(base, "cpu"), Backend: cpu.New(0), Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	cpuTime := time.Since(start)
	b := trainRecords(t, filepath.Join(base, "cpu"))
	first := trainRecords(t, variantDir(gpuVariants()[0]))
	for i, v := range gpuVariants() {
		n := variantIters(i)
		what := fmt.Sprintf("gpu (graphs=%v, two streams=%v, %v)", v[0], v[1], gpuTime[v].Round(time.Millisecond))
		recs := trainRecords(t, variantDir(v))
		compareRecords(t, what, n, recs, b[:min(n, len(b))], cpuTime)
		if i > 0 {
			sameRecords(t, what+" against graphs=true, two streams=true", first[:min(n, len(first))], recs)
		}
	}
}

// compareRecords checks n logged iterations of a GPU run against the
// CPU's: 1e-3 relative for the first strictIters, then sampleRunLimit of
// the range of each number in the CPU run.
func compareRecords(t *testing.T, what string, n int, a, b []metrics.Record, cpuTime time.Duration) {
	const strictIters, strict, sampleRunLimit = 100, 1e-3, 2e-2
	if len(a) != n || len(b) != n {
		t.Fatalf("records: %s %d, cpu %d", what, len(a), len(b))
	}
	field := func(r metrics.Record) map[string]*float64 {
		return map[string]*float64{"wake_rec": r.WakeRec, "nrem_rec": r.NREMRec, "kl": r.KL, "d_loss": r.DLoss, "g_loss": r.GLoss}
	}
	scale := map[string]float64{}
	for i := range b {
		for name, v := range field(b[i]) {
			scale[name] = math.Max(scale[name], math.Abs(*v))
		}
	}
	worst, worstAt, worstName := 0.0, 0, ""
	late, lateAt, lateName := 0.0, 0, ""
	for i := range a {
		fa, fb := field(a[i]), field(b[i])
		for name := range fa {
			g, c := *fa[name], *fb[name]
			if i < strictIters {
				if rel := math.Abs(g-c) / math.Max(math.Abs(c), 1e-12); rel > worst {
					worst, worstAt, worstName = rel, a[i].Iter, name
				}
			} else if rel := math.Abs(g-c) / math.Max(scale[name], 1e-12); rel > late {
				late, lateAt, lateName = rel, a[i].Iter, name
			}
		}
	}
	t.Logf("%d iterations: %s, cpu %v; worst relative loss difference %.3g (%s at iteration %d) in the first %d, %.3g of the range (%s at iteration %d) after",
		n, what, cpuTime.Round(time.Millisecond), worst, worstName, worstAt, min(n, strictIters), late, lateName, lateAt)
	t.Logf("last wake_rec: gpu %.6f cpu %.6f", *a[n-1].WakeRec, *b[n-1].WakeRec)
	if worst > strict {
		t.Errorf("%s and CPU losses differ by %.3g (> %g) at iteration %d (%s)", what, worst, strict, worstAt, worstName)
	}
	if late > sampleRunLimit {
		t.Errorf("%s and CPU losses differ by %.3g of their range (> %g) at iteration %d (%s)", what, late, sampleRunLimit, lateAt, lateName)
	}
}

// TestGPUMemoryIsFlat trains 2,000 iterations on the GPU (50 on the
// simulation, whose driver counts the allocations themselves: there must
// be none): after the first iterations (algorithm search, workspaces)
// neither device memory nor the Go heap may grow.
func TestGPUMemoryIsFlat(t *testing.T) {
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
	warm := 100
	if cu.Simulated() {
		warm = 20
	}
	cfg := gpuConfig(t, warm)
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
		n = 50
	}
	tr.cfg.Train.MaxIters = warm + n
	cu.ResetSimCounters()
	start := time.Now()
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if got := cu.SimCount("allocs", "frees"); got != 0 {
		t.Errorf("the simulated driver counted %d allocations and frees in %d steady-state iterations", got, n)
	}
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
