package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/internal/cu"
)

// simWindow is what the simulated driver counted over some iterations.
type simWindow map[string]uint64

func readSimCounters() simWindow {
	w := simWindow{}
	for _, c := range cu.SimCounters() {
		w[c.Name] = c.Value
	}
	return w
}

// table prints every counter, in the driver's order, for failure messages.
func (w simWindow) table(iters int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %10s %12s\n", "counter", "total", "per iter")
	for _, c := range cu.SimCounters() { // the names, in the driver's order
		fmt.Fprintf(&b, "%-22s %10d %12.2f\n", c.Name, w[c.Name], float64(w[c.Name])/float64(iters))
	}
	return b.String()
}

// simSteadyState trains on b with the trainer's own iteration (Run's loop
// body, driven here so that the counters can be read between iterations):
// warm iterations first (cuDNN's algorithm search, the captures of the
// graphs, the rings of events and argument slots wrapping), then the
// counters of steady iterations with no log line, then those of the one
// iteration that writes a log line (train.log_every = warm+steady+1).
func simSteadyState(t *testing.T, b *cuda.Backend, warm, steady int) (steadyW, logW simWindow) {
	t.Helper()
	cfg := tiny(t, "device.kind=cuda", "data.train_limit=640", "model.nf=8", "model.nz=16", "train.batch=16",
		"train.epochs=1", "train.checkpoint_every=0", fmt.Sprintf("train.log_every=%d", warm+steady+1))
	tr, err := New(Options{Config: cfg, Dir: filepath.Join(t.TempDir(), "run"), Backend: b, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// What Run sets up before its loop.
	r := &runState{sum: Summary{ProbeAcc: math.NaN()}, bpe: tr.feed.loader.BatchesPerEpoch(), started: time.Now()}
	if r.bpe < warm+steady+2 {
		t.Fatalf("%d batches per epoch: the epoch would end inside the measurement", r.bpe)
	}
	r.prog = newProgress(io.Discard, ProgressNone, cfg.Train.Epochs, r.bpe, cfg.Train.MaxIters)
	r.lastLog, r.lastIter = time.Now(), tr.pos.Iter
	r.lag = tr.Model.AsyncStats()
	if !r.lag {
		t.Fatal("the CUDA backend should read the loss numbers behind the host (AsyncStats)")
	}
	ctx := context.Background()
	step := func() {
		t.Helper()
		if err := tr.iteration(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for range warm {
		step()
	}
	// Under the default (lazy) schedule queued work runs when the host
	// waits for it: nothing waits in the steady window, and the iterations
	// queued since the last wait run in the one that logs.
	cu.ResetSimCounters()
	for range steady {
		step()
	}
	steadyW = readSimCounters()
	cu.ResetSimCounters()
	step() // writes the log line
	logW = readSimCounters()
	if tr.win.n != 0 || r.lastIter != warm+steady+1 {
		t.Fatalf("the last iteration should have written a log line (window of %d left, last log at %d)", tr.win.n, r.lastIter)
	}
	return steadyW, logW
}

// TestSimulatedSteadyStateCounts pins what one steady-state training
// iteration asks of the (simulated) GPU, for a small fixed run (the
// embedded 32×32 single-channel set, nf 8, nz 16, batch 16, the pad
// condition, tf32), once replayed as CUDA graphs and once issued op by op,
// both with the second stream: no allocation, no pageable copy, the
// expected graph launches, and exact numbers of kernel launches, cuDNN
// calls, graph nodes, copies and host synchronisations, so that a change
// that adds any shows up here. A change meant to alter a number updates it
// and the comment beside it. The whole counter table is printed on failure
// (and with -v).
func TestSimulatedSteadyStateCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 2 × 23 iterations on the simulated GPU")
	}
	// graph_nodes are counted when the nodes run, the others when the host
	// calls: the numbers below assume the default lazy schedule, where
	// queued work runs when the host waits for it.
	lazy := os.Getenv("PAD_CUDASIM_SCHEDULE") == "" || os.Getenv("PAD_CUDASIM_SCHEDULE") == "lazy"
	const warm, steady = 12, 10
	type want map[string]uint64
	// Every iteration of the trainer, graphs or not, also does this (the
	// feeder's and the loss numbers' traffic, all from page-locked memory):
	//   htod: the next batch, 16×1×32×32 floats = 65,536 bytes, on the copy
	//     stream (feeder.queued → UploadAsync);
	//   dtoh: the 8 loss numbers, 32 bytes (phases.QueueStats →
	//     DownloadAsync);
	//   events 3: the copy's completion, the feeder's fence on the buffer the
	//     iteration read, the loss numbers' fence; stream waits 2: the main
	//     stream on the copy, the copy stream on the fence of the buffer's
	//     previous reader;
	//   host_syncs 0: the trainer reads the loss numbers once per log
	//     window (lagDepth iterations may be pending); the iteration that
	//     writes a log line waits once, for its own numbers, which covers
	//     the whole window (settle): logExtra.
	for _, tc := range []struct {
		name   string
		graphs bool
		// perIter: per iteration in the steady window (no log line);
		// logExtra: what the iteration that writes a log line adds.
		perIter, logExtra want
	}{{
		name: "graphs, 2 streams", graphs: true,
		perIter: want{
			// The iteration (wake, NREM, REM: forward, backward, Adam) is
			// one recorded step, replayed as one graph.
			"kernel_launches": 0, "dnn_calls": 0, "blas_calls": 0, "captures": 0,
			"graph_launches": 1,
			// The graph's nodes: the 91 kernels and 64 cuDNN convolutions of
			// the direct case below and its 2 device copies.
			"graph_nodes": 91 + 64 + 2,
			"host_syncs":  0,
			// The batch (above), and the step's arguments (keys, Adam
			// tables, 1,072 bytes) copied from the staging ring to the
			// arena before the graph is launched.
			"htod_copies": 2, "htod_bytes": 65536 + 1072, "dtoh_copies": 1, "dtoh_bytes": 32,
			"dtod_copies": 0, "memsets": 0,
			// 3 (above) + the staging ring's mark on the arguments' bytes.
			// The side stream's fork and join are inside the graph.
			"events_recorded": 4, "stream_waits": 2,
			"allocs": 0, "frees": 0, "host_allocs": 0, "pageable_async_copies": 0,
		},
		logExtra: want{"host_syncs": 1},
	}, {
		name: "direct, 2 streams", graphs: false,
		perIter: want{
			"kernel_launches": 91, "dnn_calls": 64, "blas_calls": 0,
			"graph_launches": 0, "graph_nodes": 0, "captures": 0,
			// Each of the 7 small arguments of an iteration (keys, Adam
			// tables) goes through the staging ring (backend/cuda
			// stage.go), which waits only when it comes round to bytes
			// whose copy has not run, or with 1,024 copies in flight
			// (≈ 146 iterations): not within a window.
			"host_syncs": 0,
			// The batch (65,536 bytes) + the 7 arguments (1,072 bytes).
			"htod_copies": 8, "htod_bytes": 65536 + 1072, "dtoh_copies": 1, "dtoh_bytes": 32,
			// phases: Memory ← Z (16×16 floats) and Dream ← G(z) (16×1×32×32).
			"dtod_copies": 2, "dtod_bytes": 1024 + 65536, "memsets": 0,
			// 3 (above) + 7 staging marks + 13 side-stream regions × (fork,
			// join); each region is one stream wait each way.
			"events_recorded": 3 + 7 + 26, "stream_waits": 2 + 26,
			"allocs": 0, "frees": 0, "host_allocs": 0, "pageable_async_copies": 0,
		},
		logExtra: want{"host_syncs": 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := gpuBackend(t, "tf32", tc.graphs)
			defer b.Close()
			if !cu.Simulated() {
				t.Skip("counts are the simulated driver's (internal/cudasim); this is a real GPU")
			}
			st, lg := simSteadyState(t, b, warm, steady)
			t.Logf("%s\nsteady state, %d iterations:\n%s\nthe iteration with a log line:\n%s", b.Name(), steady, st.table(steady), lg.table(1))
			for name, v := range tc.perIter {
				if name == "graph_nodes" && v > 0 {
					if !lazy {
						continue
					}
					// Nothing waits in the steady window, so no graph ran
					// there; the log line's wait runs every graph queued
					// since the last wait, the window's among them.
					if st[name] != 0 || lg[name]%v != 0 || lg[name] < v*(steady+1) {
						t.Errorf("graph_nodes: %d in the steady window, %d in the iteration that logs; want 0, and a multiple of %d for at least %d iterations",
							st[name], lg[name], v, steady+1)
					}
					continue
				}
				if got := st[name]; got != v*steady {
					t.Errorf("%s: %d over %d steady iterations, want %d per iteration", name, got, steady, v)
				}
				if got, w := lg[name], v+tc.logExtra[name]; got != w {
					t.Errorf("%s: %d in the iteration that logs, want %d", name, got, w)
				}
			}
			if t.Failed() {
				t.Errorf("%s\nsteady state, %d iterations:\n%s\nthe iteration with a log line:\n%s", b.Name(), steady, st.table(steady), lg.table(1))
			}
		})
	}
}
