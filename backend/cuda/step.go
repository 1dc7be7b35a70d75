package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
)

// The Backend is the stepper's device (graph.go).

var _ backend.Stepper = (*Backend)(nil)

// BeginStep starts recording an iteration: until EndStep the operations
// are recorded, and EndStep replays them as a CUDA graph (see graph.go).
// Without graphs (Options.NoGraphs) it does nothing.
func (b *Backend) BeginStep() {
	if b.err != nil {
		return
	}
	b.fail("BeginStep", b.steps.begin())
}

// EndStep launches the recorded iteration.
func (b *Backend) EndStep() {
	if b.err != nil {
		// The tape may be incomplete: drop it.
		b.steps.rec = false
		return
	}
	b.fail("EndStep", b.steps.end())
}

// GraphStats says how the steps ran.
func (b *Backend) GraphStats() GraphStats { return b.steps.graphStats() }

// GraphSummary describes GraphStats in one line.
func (b *Backend) GraphSummary() string {
	st := b.GraphStats()
	if st.Off != "" {
		return fmt.Sprintf("off (%s); %d steps captured, %d replayed, %d direct before", st.Off, st.Captures, st.Replays, st.Direct)
	}
	if !st.Enabled {
		return "off"
	}
	return fmt.Sprintf("on: %d steps captured, %d replayed, %d direct, %d graphs kept", st.Captures, st.Replays, st.Direct, st.Cached)
}

// flushStep issues the step recorded so far directly, before an operation
// that needs the work done (or the memory settled) now.
func (b *Backend) flushStep(op string) {
	if b.steps != nil && b.steps.recording() {
		b.fail(op, b.steps.flush())
	}
}

// arg places data in device memory for the next operation.
func (b *Backend) arg(data []byte) (cu.DevicePtr, error) { return b.steps.arg(data) }

// launchKernel is the kernels' launcher: it records the launch inside a
// step and launches it otherwise.
func (b *Backend) launchKernel(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
	if b.steps == nil || !b.steps.recording() {
		return cu.LaunchKernelArgs(f, grid, block, 0, s, a)
	}
	if a.Len() > cu.MaxKernelArgs {
		return cu.LaunchKernelArgs(f, grid, block, 0, s, a) // reports the error
	}
	e := entry{kind: opLaunch, fn: f, grid: grid, block: block, nargs: a.Len()}
	copy(e.args[:], a.Values())
	return b.steps.add(&e)
}

// run issues one entry on the stream.
func (b *Backend) run(e *entry) error {
	switch e.kind {
	case opLaunch:
		var a cu.KernelArgs
		a.Reset()
		for _, v := range e.args[:e.nargs] {
			a.Uint64(v)
		}
		return cu.LaunchKernelArgs(e.fn, e.grid, e.block, 0, b.stream, &a)
	case opCopy:
		return cu.MemcpyDtoDAsync(e.p[0], e.p[1], e.n, b.stream)
	case opMemset:
		return cu.MemsetD32Async(e.p[0], e.v, e.n, b.stream)
	case opConvFwd:
		p := e.plan
		return b.dnn.ConvForward(1, p.x, e.p[0], p.w, e.p[1], p.fwdDesc, p.fwd, b.ws, b.wsSize, 0, p.y, e.p[2])
	case opConvBwdData:
		p := e.plan
		return b.dnn.ConvBackwardData(1, p.w, e.p[1], p.y, e.p[0], p.bdDesc, p.bd, b.ws, b.wsSize, f32frombits(e.v), p.x, e.p[2])
	case opConvBwdFilter:
		p := e.plan
		return b.dnn.ConvBackwardFilter(1, p.x, e.p[0], p.y, e.p[1], p.bfDesc, p.bf, b.ws, b.wsSize, f32frombits(e.v), p.w, e.p[2])
	}
	return errUnknownEntry
}

var errUnknownEntry = errors.New("unknown entry kind")

func (b *Backend) uploadArena(h, n int) error {
	if n == 0 {
		return nil
	}
	return cu.MemcpyHtoDAsync(b.arenaDev.Offset(h*arenaHalf), b.arena[h], n, b.stream)
}

func (b *Backend) eagerArg(data []byte) (cu.DevicePtr, error) { return b.args.put(b.stream, data) }

func (b *Backend) beginCapture() error {
	return cu.StreamBeginCapture(b.stream, cu.CaptureModeThreadLocal)
}

func (b *Backend) endCapture() (cu.GraphExec, error) {
	g, err := cu.StreamEndCapture(b.stream)
	if err != nil {
		return 0, err
	}
	defer cu.GraphDestroy(g)
	return cu.GraphInstantiate(g)
}

func (b *Backend) abortCapture() {
	if g, err := cu.StreamEndCapture(b.stream); err == nil && g != 0 {
		cu.GraphDestroy(g)
	}
}

func (b *Backend) launch(g cu.GraphExec) error { return cu.GraphLaunch(g, b.stream) }

func (b *Backend) destroy(g cu.GraphExec) { cu.GraphExecDestroy(g) }

func (b *Backend) markHalf(h int) error {
	b.arenaUse[h] = true
	return b.arenaEv[h].Record(b.stream)
}

func (b *Backend) waitHalf(h int) error {
	if !b.arenaUse[h] {
		return nil
	}
	return b.arenaEv[h].Synchronize()
}

func f32frombits(v uint32) float32 { return *(*float32)(unsafe.Pointer(&v)) }
