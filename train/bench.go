package train

import (
	"fmt"
	"github.com/pad-dreaming/pad/internal/gemm"
	"runtime"
	"time"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// BenchOptions describe a throughput measurement.
type BenchOptions struct {
	Spec      model.Spec
	Condition conditions.Condition
	Adam      backend.AdamHyper
	Warmup    int // untimed iterations first
	Iters     int // timed iterations
	EpochSize int // images per epoch for the seconds-per-epoch figure (50,000 as the peer)
	Seed      uint64
	Phases    bool // also time each phase (with a sync after each; slower)
	// Stream copies a host batch to the device before every iteration, as
	// training does (on a copy stream where the backend has one), instead
	// of keeping one batch on the device.
	Stream bool
}

// BenchResult is what a measurement found.
type BenchResult struct {
	Backend       string
	Spec          model.Spec
	Condition     string
	Iters         int
	SecPerIter    float64
	SecPerEpoch   float64 // (EpochSize / batch) iterations
	ImagesPerSec  float64
	PhaseSec      map[string]float64 // per iteration, when timed
	PeakMemoryMiB float64            // device memory (CUDA) or Go heap (CPU)
	MemoryKind    string
	Graphs        string `json:",omitempty"` // how the timed iterations ran (CUDA graphs)
	Streamed      bool   // a batch was copied from the host every iteration
	// Simulated: the backend ran on pad's simulated NVIDIA stack
	// (internal/cudasim), whose times are not a GPU's but whose Counters
	// are exact.
	Simulated bool `json:",omitempty"`
	// Counters are the simulated driver's counters per timed iteration
	// (nil on real hardware and on the CPU).
	Counters []SimCount `json:",omitempty"`

	// What the limit is, on backends that count their floating-point
	// operations (the CPU's: its matrix products, 2·m·n·k each):
	// GFLOPPerIter per iteration, GFLOPS delivered over the timed
	// iterations, PhaseGFLOPS per phase (when timed), PeakGFLOPS the FP32
	// peak of the cores the threads can use (gemm.MeasurePeak, as `make
	// gemm-rates` estimates it: measured clock × 2 × vector lanes × 2 FMA
	// pipes) and PeakShare = GFLOPS / PeakGFLOPS.
	GFLOPPerIter float64            `json:",omitempty"`
	GFLOPS       float64            `json:",omitempty"`
	PhaseGFLOPS  map[string]float64 `json:",omitempty"`
	PeakGFLOPS   float64            `json:",omitempty"`
	PeakShare    float64            `json:",omitempty"`
	ClockGHz     float64            `json:",omitempty"`
	VectorLanes  int                `json:",omitempty"`
	// BusyCores is the process's CPU time over the wall time of the timed
	// iterations: how many cores were busy on average (0 where the CPU
	// time cannot be read). Threads is the backend's thread count (CPU).
	BusyCores float64 `json:",omitempty"`
	Threads   int     `json:",omitempty"`
}

// FLOPCounter is implemented by backends that count the floating-point
// operations they do (the CPU backend: its matrix products).
type FLOPCounter interface{ FLOPs() uint64 }

// threadCounter is implemented by the CPU backend.
type threadCounter interface{ Threads() int }

// SimCount is one counter of the simulated driver (internal/cudasim's
// padsim.h says what each counts) over the timed iterations.
type SimCount struct {
	Name    string
	Total   uint64  // over all timed iterations
	PerIter float64 // Total / Iters
}

// SimCounterReporter is implemented by backends that can run on pad's
// simulated NVIDIA stack (the CUDA backend): SimCounters returns nil on
// real hardware.
type SimCounterReporter interface {
	SimCounters() []cu.SimCounter
	ResetSimCounters()
}

// simCounterSpan reads the simulated driver's counters over a span of
// iterations; it does nothing where the backend reports none.
type simCounterSpan struct {
	r  SimCounterReporter
	at []cu.SimCounter // the counters when the span's host work ended
}

func newSimCounterSpan(b backend.Backend) *simCounterSpan {
	r, ok := b.(SimCounterReporter)
	if !ok || r.SimCounters() == nil {
		return &simCounterSpan{}
	}
	return &simCounterSpan{r: r}
}

// start sets the counters to zero: the span begins.
func (s *simCounterSpan) start() {
	if s.r != nil {
		s.r.ResetSimCounters()
	}
}

// hostDone takes the counters when the host has queued the span's work,
// before the synchronise that ends the measurement.
func (s *simCounterSpan) hostDone() {
	if s.r != nil {
		s.at = s.r.SimCounters()
	}
}

// result returns the counters per iteration once the device has run the
// span's work (after the closing synchronise). Counters of host API calls
// are those at hostDone, so that the bench's own closing synchronise is not
// counted; graph_nodes, the only counter of device work (nodes run by
// graph replays, counted when they run), is read now.
func (s *simCounterSpan) result(iters int) []SimCount {
	if s.r == nil || s.at == nil {
		return nil
	}
	now := s.r.SimCounters()
	out := make([]SimCount, 0, len(s.at))
	for i, c := range s.at {
		v := c.Value
		if c.Name == "graph_nodes" && i < len(now) && now[i].Name == c.Name {
			v = now[i].Value
		}
		out = append(out, SimCount{Name: c.Name, Total: v, PerIter: float64(v) / float64(iters)})
	}
	return out
}

// GraphReporter is implemented by backends that replay iterations as
// graphs.
type GraphReporter interface {
	GraphSummary() string
}

// MemoryReporter is implemented by backends that track their peak memory.
type MemoryReporter interface {
	PeakMemory() (bytes int64, kind string)
}

// Bench times training iterations on synthetic images in [-1, 1] (the
// data stay on the device, as the peer's do).
func Bench(b backend.Backend, o BenchOptions) (BenchResult, error) {
	if o.Iters < 1 {
		return BenchResult{}, fmt.Errorf("bench: %d iterations", o.Iters)
	}
	if o.EpochSize <= 0 {
		o.EpochSize = 50000
	}
	p, err := phases.New(b, o.Spec, o.Condition, phases.Options{Seed: o.Seed, AdamE: o.Adam, AdamG: o.Adam, MaxTile: 8})
	if err != nil {
		return BenchResult{}, err
	}
	host := make([]float32, o.Spec.Batch*o.Spec.C*model.ImageSize*model.ImageSize)
	rng.FillUniform(host, rng.Key{Seed: o.Seed, Stream: rng.StreamEval, Seq: 7})
	for i := range host {
		host[i] = 2*host[i] - 1
	}
	x, err := b.Alloc(len(host))
	if err != nil {
		return BenchResult{}, err
	}
	b.Upload(x, host)
	it := uint64(0)
	step := func() {
		p.Iterate(x, it, it == 0)
		it++
	}
	if o.Stream {
		if step, err = streamedStep(b, p, host, x, &it); err != nil {
			return BenchResult{}, err
		}
	}
	for i := 0; i < o.Warmup; i++ {
		step()
	}
	if err := b.Sync(); err != nil {
		return BenchResult{}, err
	}
	counts := newSimCounterSpan(b)
	counts.start()
	fc, _ := b.(FLOPCounter)
	var flops0 uint64
	if fc != nil {
		flops0 = fc.FLOPs()
	}
	cpu0 := gemm.CPUTime()
	start := time.Now()
	for i := 0; i < o.Iters; i++ {
		step()
	}
	counts.hostDone()
	if err := b.Sync(); err != nil {
		return BenchResult{}, err
	}
	el := time.Since(start).Seconds()
	cpuSec := (gemm.CPUTime() - cpu0).Seconds()
	var graphs string
	if g, ok := b.(GraphReporter); ok {
		graphs = g.GraphSummary()
	}
	r := BenchResult{
		Backend: b.Name(), Spec: o.Spec, Condition: o.Condition.Name, Iters: o.Iters,
		SecPerIter: el / float64(o.Iters), Graphs: graphs, Streamed: o.Stream,
		Counters: counts.result(o.Iters),
	}
	r.Simulated = r.Counters != nil
	r.SecPerEpoch = r.SecPerIter * float64(o.EpochSize/o.Spec.Batch)
	r.ImagesPerSec = float64(o.Spec.Batch) / r.SecPerIter
	if cpu0 > 0 && cpuSec > 0 {
		r.BusyCores = cpuSec / el
	}
	if fc != nil {
		flops := float64(fc.FLOPs() - flops0)
		r.GFLOPPerIter = flops / float64(o.Iters) / 1e9
		r.GFLOPS = flops / el / 1e9
		if tc, ok := b.(threadCounter); ok {
			r.Threads = tc.Threads()
			pk := gemm.MeasurePeak(300 * time.Millisecond)
			r.ClockGHz, r.VectorLanes = pk.GHz, pk.Lanes
			r.PeakGFLOPS = pk.PerCore * float64(min(r.Threads, runtime.NumCPU()))
			r.PeakShare = r.GFLOPS / r.PeakGFLOPS
		}
	}
	if o.Phases {
		r.PhaseSec = map[string]float64{}
		phaseFLOPs := map[string]uint64{}
		var last time.Time
		var lastFLOPs uint64
		flopsNow := func() uint64 {
			if fc == nil {
				return 0
			}
			return fc.FLOPs()
		}
		p.OnPhase = func(name string) {
			b.Sync()
			now := time.Now()
			r.PhaseSec[name] += now.Sub(last).Seconds()
			f := flopsNow()
			phaseFLOPs[name] += f - lastFLOPs
			last, lastFLOPs = now, f
		}
		n := max(o.Iters/4, 1)
		for i := 0; i < n; i++ {
			b.Sync()
			last, lastFLOPs = time.Now(), flopsNow()
			step()
		}
		p.OnPhase = nil
		if fc != nil {
			r.PhaseGFLOPS = map[string]float64{}
			for k, f := range phaseFLOPs {
				if r.PhaseSec[k] > 0 {
					r.PhaseGFLOPS[k] = float64(f) / r.PhaseSec[k] / 1e9
				}
			}
		}
		for k := range r.PhaseSec {
			r.PhaseSec[k] /= float64(n)
		}
		if err := b.Sync(); err != nil {
			return r, err
		}
	}
	if m, ok := b.(MemoryReporter); ok {
		bytes, kind := m.PeakMemory()
		r.PeakMemoryMiB, r.MemoryKind = float64(bytes)/(1<<20), kind
	} else {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.PeakMemoryMiB, r.MemoryKind = float64(ms.HeapSys)/(1<<20), "Go heap"
	}
	return r, nil
}

// streamedStep returns an iteration that first copies one of two host
// batches to one of two device buffers, as the trainer's feeder does: on a
// backend.Streamer from page-locked memory on the copy stream, behind the
// fence of the iteration that last read the buffer, so the copy overlaps
// the previous iteration; elsewhere with a plain Upload.
func streamedStep(b backend.Backend, p *phases.PAD, host []float32, x0 backend.Buf, it *uint64) (func(), error) {
	s, _ := b.(backend.Streamer)
	var hosts [2][]float32
	var xs [2]backend.Buf
	var fences [2]backend.Fence
	xs[0] = x0
	var err error
	if xs[1], err = b.Alloc(len(host)); err != nil {
		return nil, err
	}
	for i := range hosts {
		if s != nil {
			if hosts[i], err = s.HostBuffer(len(host)); err != nil {
				return nil, err
			}
		} else {
			hosts[i] = make([]float32, len(host))
		}
		copy(hosts[i], host)
		if i == 1 {
			for j := range hosts[i] {
				hosts[i][j] = -hosts[i][j]
			}
		}
	}
	return func() {
		i := *it % 2
		if s != nil {
			s.UploadAsync(xs[i], hosts[i], fences[i])
		} else {
			b.Upload(xs[i], hosts[i])
		}
		p.Iterate(xs[i], *it, *it == 0)
		if s != nil {
			fences[i] = s.Fence()
		}
		*it++
	}, nil
}
