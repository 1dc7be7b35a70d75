package cuda

// Tests that pad's simulated GPU (internal/cudasim) catches what it claims
// to: here, a missing event wait between the main and the side stream.
// They run only on the simulation (cu.Simulated): on hardware a missing
// wait shows only now and then.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// simBackend opens the backend with graphs as configured, on the
// simulation only, with a side stream.
func simBackend(t *testing.T, graphs bool) *Backend {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	opts := Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE"), NoGraphs: !graphs}
	b, err := New(opts)
	if errors.Is(err, ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if !cu.Simulated() {
		t.Skip("not the simulated GPU: a missing wait shows on hardware only now and then")
	}
	if b.side.stream == 0 {
		t.Fatalf("want a side stream: %s", b.Name())
	}
	return b
}

// lazySchedule reports whether the simulation runs queued work as late as
// CUDA allows (PAD_CUDASIM_SCHEDULE unset or lazy), where a missing wait
// shows every time.
func lazySchedule() bool {
	s := os.Getenv("PAD_CUDASIM_SCHEDULE")
	return s == "" || s == "lazy"
}

// sideBackward is one layer's backward pass with the weight gradient on
// the side stream, and an SGD step that consumes it on the main stream
// after the join: the shape of pad's backward pass (phases).
type sideBackward struct {
	w                    *twins
	cg                   backend.ConvGeom
	x, wt, dy, dx, dw, p pair
}

func newSideBackward(w *twins) *sideBackward {
	cg := backend.NewConv(8, 16, 16, 16, 32, 4, 2, 1)
	s := &sideBackward{w: w, cg: cg}
	s.x, s.wt, s.dy = w.zeros(cg.XLen()), w.buf(randn(cg.WLen(), 1)), w.zeros(cg.YLen())
	s.dx, s.dw, s.p = w.zeros(cg.XLen()), w.zeros(cg.WLen()), w.buf(randn(cg.WLen(), 2))
	return s
}

// step runs iteration it on both backends (the GPU's inside a recorded
// step when graphs is set).
func (s *sideBackward) step(it int, graphs bool) {
	g, c, cg := s.w.g, s.w.c, s.cg
	hx, hdy := randn(cg.XLen(), uint64(10+it)), randn(cg.YLen(), uint64(20+it))
	if graphs {
		g.BeginGraph()
	}
	g.Upload(s.x.g, hx)
	g.Upload(s.dy.g, hdy)
	g.BeginSide()
	g.ConvBackwardFilter(cg, s.x.g, s.dy.g, s.dw.g, 0)
	g.EndSide()
	g.ConvBackwardData(cg, s.dy.g, s.wt.g, s.dx.g, 0)
	g.JoinSide()
	g.Axpby(s.p.g, s.dw.g, -0.01, 1) // the optimiser reads the side stream's gradient
	if graphs {
		g.EndGraph()
	}
	c.Upload(s.x.c, hx)
	c.Upload(s.dy.c, hdy)
	c.ConvBackwardFilter(cg, s.x.c, s.dy.c, s.dw.c, 0)
	c.ConvBackwardData(cg, s.dy.c, s.wt.c, s.dx.c, 0)
	c.Axpby(s.p.c, s.dw.c, -0.01, 1)
}

// errs returns the relative error of each result against the CPU's, in the
// order the host reads them: the parameters first (the consumer of the
// side work), then the gradient itself, then the main stream's dx.
func (s *sideBackward) errs() (p, dw, dx float64) {
	rel := func(q pair) float64 {
		c, g := s.w.get(q)
		return testkit.RelErr(g, c)
	}
	p = rel(s.p)
	dw = rel(s.dw)
	dx = rel(s.dx)
	return
}

// TestSimCatchesMissingJoinWait: a two-stream backward pass matches the
// CPU with the join's event wait, and differs from it without (the main
// stream's SGD step then reads a gradient the side stream has not written
// yet). Without graphs, every operation is issued directly.
func TestSimCatchesMissingJoinWait(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropJoinWait=%v", drop), func(t *testing.T) {
			if drop && !lazySchedule() {
				t.Skipf("PAD_CUDASIM_SCHEDULE=%s: a missing wait shows reliably only under the lazy schedule", os.Getenv("PAD_CUDASIM_SCHEDULE"))
			}
			g := simBackend(t, false)
			w := &twins{t: t, c: cpu.New(0), g: g}
			s := newSideBackward(w)
			// The first step plans the convolutions: cuDNN's algorithm
			// searches synchronise the device, which would run the side
			// work in time even without the wait. Plan them first.
			s.step(0, false)
			if p, dw, dx := s.errs(); p > 1e-5 || dw > 1e-5 || dx > 1e-5 {
				t.Fatalf("warm-up step: relative errors p %.3g, dw %.3g, dx %.3g", p, dw, dx)
			}
			dropJoinWait = drop
			t.Cleanup(func() { dropJoinWait = false })
			for it := 1; it <= 3; it++ {
				s.step(it, false)
				p, dw, dx := s.errs()
				t.Logf("iteration %d: relative error p %.3g, dw %.3g, dx %.3g", it, p, dw, dx)
				if dx > 1e-5 {
					t.Errorf("iteration %d: dx (main stream only) differs from the CPU by %.3g", it, dx)
				}
				if !drop {
					if p > 1e-5 || dw > 1e-5 {
						t.Errorf("iteration %d: with the wait, p differs by %.3g and dw by %.3g (want ≤ 1e-5)", it, p, dw)
					}
					continue
				}
				// Without the wait the main stream's read of dw (the SGD
				// step and the download, which synchronises the main
				// stream only) runs before the side stream computed it.
				if !(p > 1e-3) {
					t.Errorf("iteration %d: without the join's wait the SGD step still matches the CPU (relative error %.3g): the simulation did not catch the missing wait", it, p)
				}
			}
			if err := g.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		})
	}
}

// TestSimCatchesMissingJoinWaitInGraph: the same inside recorded steps.
// The first run of each tape is direct (the results differ without the
// wait), the second is captured: a capture whose side stream is never
// joined back is not a valid graph (CUDA_ERROR_STREAM_CAPTURE_UNJOINED),
// so the backend turns graphs off and goes on directly, still wrong.
func TestSimCatchesMissingJoinWaitInGraph(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropJoinWait=%v", drop), func(t *testing.T) {
			if drop && !lazySchedule() {
				t.Skipf("PAD_CUDASIM_SCHEDULE=%s: a missing wait shows reliably only under the lazy schedule", os.Getenv("PAD_CUDASIM_SCHEDULE"))
			}
			g := simBackend(t, true)
			if g.graphs == nil || !g.graphs.enabled {
				t.Fatalf("want graphs: %s", g.Name())
			}
			dropJoinWait = drop
			t.Cleanup(func() { dropJoinWait = false })
			w := &twins{t: t, c: cpu.New(0), g: g}
			s := newSideBackward(w)
			for it := range 6 {
				s.step(it, true)
				if err := g.Err(); err != nil {
					t.Fatalf("iteration %d: %v", it, err)
				}
				p, dw, dx := s.errs()
				t.Logf("iteration %d: relative error p %.3g, dw %.3g, dx %.3g; %s", it, p, dw, dx, g.GraphSummary())
				if dx > 1e-5 {
					t.Errorf("iteration %d: dx (main stream only) differs from the CPU by %.3g", it, dx)
				}
				if drop && !(p > 1e-3) {
					t.Errorf("iteration %d: without the join's wait the SGD step still matches the CPU (relative error %.3g): the simulation did not catch the missing wait", it, p)
				}
				if !drop && (p > 1e-5 || dw > 1e-5) {
					t.Errorf("iteration %d: with the wait, p differs by %.3g and dw by %.3g (want ≤ 1e-5)", it, p, dw)
				}
			}
			st := g.GraphStats()
			t.Logf("graphs: %s", g.GraphSummary())
			if !drop {
				if st.Direct != 1 || st.Captures != 1 || st.Replays != 4 || st.Off != "" {
					t.Errorf("graphs: %s", g.GraphSummary())
				}
				return
			}
			// The second run of the tape is captured: the capture fails,
			// and the backend turns graphs off and goes on directly.
			if !strings.Contains(st.Off, "CUDA_ERROR_STREAM_CAPTURE_UNJOINED") || st.Captures != 0 || st.Replays != 0 {
				t.Errorf("without the join's wait: graphs %s; want them off after CUDA_ERROR_STREAM_CAPTURE_UNJOINED, nothing captured or replayed", g.GraphSummary())
			}
		})
	}
}
