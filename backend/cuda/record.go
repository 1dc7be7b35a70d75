package cuda

import (
	"errors"
	"fmt"
	"math"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
)

// The Backend is the recorder's device (graph.go).

var _ backend.GraphRecorder = (*Backend)(nil)

// BeginGraph starts recording an iteration: until EndGraph the operations
// are recorded, and EndGraph replays them as a CUDA graph (see graph.go).
// Without graphs (Options.NoGraphs) it does nothing.
func (b *Backend) BeginGraph() {
	if b.err != nil {
		return
	}
	b.fail("BeginGraph", b.graphs.begin())
}

// EndGraph launches the recorded iteration.
func (b *Backend) EndGraph() {
	if b.err != nil {
		// The tape may be incomplete: drop it.
		b.graphs.rec = false
		return
	}
	b.fail("EndGraph", b.graphs.end())
}

// GraphStats says how the steps ran.
func (b *Backend) GraphStats() GraphStats { return b.graphs.graphStats() }

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

// flushGraph issues the step recorded so far directly, before an operation
// that needs the work done (or the memory settled) now.
// Side work queued so far is joined first, so that the host sees it.
func (b *Backend) flushGraph(op string) {
	if b.graphs == nil {
		return
	}
	b.fail(op, b.graphs.settle())
	if b.graphs.recording() {
		b.fail(op, b.graphs.flush())
	}
}

// arg places data in device memory for the next operation.
func (b *Backend) arg(data []byte) (cu.DevicePtr, error) { return b.graphs.arg(data) }

// launchKernel is the kernels' launcher: it records the launch inside a
// step and launches it otherwise.
func (b *Backend) launchKernel(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
	if b.graphs == nil || !b.graphs.recording() {
		if b.graphs != nil && b.graphs.side {
			s = b.side.stream
		}
		return cu.LaunchKernelArgs(f, grid, block, 0, s, a)
	}
	if a.Len() > cu.MaxKernelArgs {
		return fmt.Errorf("%d kernel arguments, at most %d", a.Len(), cu.MaxKernelArgs)
	}
	e := entry{kind: opLaunch, fn: f, grid: grid, block: block, nargs: a.Len()}
	copy(e.args[:], a.Values())
	return b.graphs.add(&e)
}

// run issues one entry on the stream.
func (b *Backend) run(e *entry) error {
	stream, dnn, ws := b.stream, b.dnn, b.ws
	if e.side {
		if b.side.stream == 0 {
			return errNoSide
		}
		stream, dnn, ws = b.side.stream, b.side.dnn, b.side.ws
	}
	switch e.kind {
	case opLaunch:
		var a cu.KernelArgs
		a.Reset()
		for _, v := range e.args[:e.nargs] {
			a.Uint64(v)
		}
		return cu.LaunchKernelArgs(e.fn, e.grid, e.block, 0, stream, &a)
	case opCopy:
		return cu.MemcpyDtoDAsync(e.p[0], e.p[1], e.n, stream)
	case opMemset:
		return cu.MemsetD32Async(e.p[0], e.v, e.n, stream)
	case opConvFwd:
		p := e.plan
		return dnn.ConvForward(1, p.x, e.p[0], p.w, e.p[1], p.fwdDesc, p.fwd, ws, b.wsSize, 0, p.y, e.p[2])
	case opConvBwdData:
		p := e.plan
		return dnn.ConvBackwardData(1, p.w, e.p[1], p.y, e.p[0], p.bdDesc, p.bd, ws, b.wsSize, math.Float32frombits(e.v), p.x, e.p[2])
	case opConvBwdFilter:
		p := e.plan
		return dnn.ConvBackwardFilter(1, p.x, e.p[0], p.y, e.p[1], p.bfDesc, p.bf, ws, b.wsSize, math.Float32frombits(e.v), p.w, e.p[2])
	case opFork:
		if b.side.stream == 0 {
			return errNoSide
		}
		if err := b.side.fork.Record(b.stream); err != nil {
			return err
		}
		return b.side.stream.WaitEvent(b.side.fork)
	case opJoin:
		if b.side.stream == 0 {
			return errNoSide
		}
		if err := b.side.join.Record(b.side.stream); err != nil {
			return err
		}
		if dropJoinWait {
			return nil
		}
		return b.stream.WaitEvent(b.side.join)
	}
	return errUnknownEntry
}

// dropJoinWait, set only by tests (sim_test.go), leaves out the main
// stream's wait on the side stream's join event: the missing-wait bug the
// simulated GPU must catch.
var dropJoinWait bool

var errNoSide = errors.New("side-stream work without a side stream (Options.NoOverlap)")

var errUnknownEntry = errors.New("unknown entry kind")

func (b *Backend) reserveArena() ([]byte, int, error) {
	off, err := b.stage.reserve(arenaBytes)
	if err != nil {
		return nil, 0, err
	}
	return b.stage.buf[off : off+arenaBytes], off, nil
}

func (b *Backend) uploadArena(off, n int) error {
	return b.stage.upload(b.stream, b.arena, off, n)
}

func (b *Backend) eagerArg(data []byte) (cu.DevicePtr, error) { return b.stage.put(b.stream, data) }

func (b *Backend) beginCapture() error {
	return cu.StreamBeginCapture(b.stream, cu.CaptureModeThreadLocal)
}

func (b *Backend) endCapture() (cu.GraphExec, error) {
	g, err := cu.StreamEndCapture(b.stream)
	if err != nil {
		if berr := b.stillCapturing(err); berr != nil {
			return 0, berr
		}
		return 0, err
	}
	defer cu.GraphDestroy(g)
	return cu.GraphInstantiate(g)
}

// abortCapture ends a capture that failed and discards its graph. Ending
// an invalidated capture reports an error, which is expected here: the
// error returned is about a stream left capturing only.
func (b *Backend) abortCapture() error {
	g, err := cu.StreamEndCapture(b.stream)
	if err == nil && g != 0 {
		cu.GraphDestroy(g)
	}
	return b.stillCapturing(err)
}

// stillCapturing checks, after cuStreamEndCapture returned endErr, that
// neither the main nor the side stream is still capturing. If one is, it
// returns an error matching errCaptureBroken; nil otherwise.
func (b *Backend) stillCapturing(endErr error) error {
	for _, s := range []struct {
		name string
		s    cu.Stream
	}{{"main", b.stream}, {"side", b.side.stream}} {
		if s.s == 0 {
			continue
		}
		st, err := cu.StreamIsCapturing(s.s)
		switch {
		case err != nil:
			return fmt.Errorf("%w (%s stream: %v; ending the capture: %v)", errCaptureBroken, s.name, err, endErr)
		case st != cu.CaptureStatusNone:
			return fmt.Errorf("%w (%s stream, capture status %d; ending the capture: %v)", errCaptureBroken, s.name, st, endErr)
		}
	}
	return nil
}

func (b *Backend) launch(g cu.GraphExec) error { return cu.GraphLaunch(g, b.stream) }

func (b *Backend) destroy(g cu.GraphExec) { cu.GraphExecDestroy(g) }

// arenaBytes is the size of the argument arena of a recorded step: enough
// for the keys and Adam tables of a step and for a few mini-batches
// uploaded inside one. Its host side is taken from the staging ring at
// the start of each step; its device side is one allocation, the same for
// every step, so that a graph captured from one step replays another.
const arenaBytes = 4 << 20
