package phases

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// gpuMode is how the CUDA backend queues work.
type gpuMode struct {
	graphs  bool // replay steps as CUDA graphs
	overlap bool // weight gradients on a second stream
}

func (m gpuMode) String() string { return fmt.Sprintf("graphs=%v,overlap=%v", m.graphs, m.overlap) }

func openGPU(t *testing.T, precision string, m gpuMode) *cuda.Backend {
	t.Helper()
	runtime.LockOSThread()
	b, err := cuda.New(cuda.Options{Precision: precision, NoGraphs: !m.graphs, NoOverlap: !m.overlap, CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if errors.Is(err, cuda.ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestFixtureParityCUDA replays the PyTorch fixtures on the GPU in exact
// FP32 math, under the same rule as the CPU (1e-4, or 4× the float32
// floor measured on the GPU itself), and compares the GPU with the CPU
// tensor by tensor. With TF32 it reports the error it reaches. Each phase
// runs as a recorded step (graphs on), and again with every operation
// issued directly; both with the weight gradients on a second stream, and
// the recorded steps once more on one stream. A recorded step is captured
// only when its tape occurs a second time, and a replay builds its model
// anew, so no phase here is captured: the recorded steps run directly, as
// a new tape's first run does. Captured graphs are checked against the CPU
// by TestGraphConvStepsMatchCPU (backend/cuda) and TestGPUMatchesCPU
// (train).
func TestFixtureParityCUDA(t *testing.T) {
	for _, m := range []gpuMode{{true, true}, {false, true}, {true, false}} {
		for _, ch := range []int{1, 3} {
			t.Run(fmt.Sprintf("c%d/%v", ch, m), func(t *testing.T) { fixtureParityCUDA(t, ch, m) })
		}
	}
}

func fixtureParityCUDA(t *testing.T, ch int, m gpuMode) {
	graphs := m.graphs
	g := openGPU(t, "fp32", m)
	f := LoadFixture(t, ch, false)
	r := replay(t, g, f, false)
	checkGradSets(t, f, r)
	errs := errorsAgainst(t, f, r)
	// The perturbed replay runs on a backend of its own: on g, its six new
	// tapes after the first six would be steps 7 to 12 without a replay,
	// and graphs would be switched off at the ninth (missLimit).
	q := replay(t, openGPU(t, "fp32", m), f, true)
	c := replay(t, cpu.New(0), f, false)
	strict, worstCPU, worstCPUAt := 0, 0.0, ""
	for name, e := range errs {
		floor := testkit.RelErr(q.got[name], r.got[name])
		tol := math.Max(fixtureTol, 4*floor)
		if !(e <= tol) {
			t.Errorf("%s: gpu relative error %.3g > %.3g (float32 floor %.3g)", name, e, tol, floor)
		}
		if e <= fixtureTol {
			strict++
		}
		if d := testkit.RelErr(r.got[name], c.got[name]); d > worstCPU {
			worstCPU, worstCPUAt = d, name
		}
	}
	at, w := worst(errs)
	t.Logf("gpu fp32: %d of %d tensors within 1e-4 of PyTorch, the rest within their float32 floor; worst %.3g at %s; worst gpu-vs-cpu %.3g at %s",
		strict, len(errs), w, at, worstCPU, worstCPUAt)

	// Six phases, each a tape seen once: six direct first runs.
	if st := g.GraphStats(); graphs && (st.Direct != 6 || st.Captures != 0 || st.Off != "") {
		t.Errorf("graphs: %s; want 6 direct first runs, no capture", g.GraphSummary())
	} else {
		t.Logf("graphs: %s", g.GraphSummary())
	}

	tf := openGPU(t, "tf32", m)
	rt := replay(t, tf, f, false)
	et := errorsAgainst(t, f, rt)
	at, w = worst(et)
	n1, n2 := 0, 0
	for _, e := range et {
		if e <= 1e-3 {
			n1++
		}
		if e <= 1e-2 {
			n2++
		}
	}
	t.Logf("gpu tf32: worst %.3g at %s; %d of %d tensors within 1e-3, %d within 1e-2", w, at, n1, len(et), n2)
}
