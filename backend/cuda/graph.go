package cuda

import (
	"errors"
	"fmt"

	"github.com/pad-dreaming/pad/internal/cu"
)

// Graph replay.
//
// A training iteration queues a few hundred small launches; issued one by
// one, their launch cost alone is about as long as the arithmetic at batch
// 64. So between BeginGraph and EndGraph the backend does not issue work: it
// records each operation as an entry of a tape. At EndGraph the tape is
// looked up among the CUDA graphs captured before; if one was captured
// from an identical tape, it is launched (one call), else the tape is
// issued under stream capture, instantiated, kept and launched. In this
// package a "step" is that unit: the work of one iteration between
// BeginGraph and EndGraph (not an Adam step).
//
// What may differ between iterations without changing the tape lives in an
// argument arena: the random-number keys, the Adam tables (step sizes and
// bias corrections) and uploaded host data are written by the host into
// page-locked memory taken from the staging ring (stage.go), and copied,
// just before the step's graph is launched, to the arena's device side,
// which is the same for every step; so a replay reads the values the host
// wrote for this iteration. Everything else a launch depends on (pointers,
// sizes, the scalars passed by value, the cuDNN algorithms) is part of the
// entries, and entries are compared exactly: a graph is replayed only for
// the very work it was captured from. The host waits for the device only
// when the staging ring comes round to bytes whose copy has not run, which
// is hundreds of steps later.
//
// A tape is not captured the first time it is seen: its first run is
// issued directly, and only its next occurrence is captured. Whatever the
// work uses for the first time (the main and side streams' cuDNN handles,
// their workspaces, a kernel's module) is then set up outside a capture,
// where a library may allocate or synchronize; inside one that is illegal
// and breaks the capture.
//
// A Sync, Download, Free or an oversized argument inside a step flushes the
// tape: what was recorded is issued directly and the rest of the step runs
// without a graph. These happen while a step is recorded, never while it
// is captured: the capture issues a finished tape inside EndGraph. If
// capture fails (a library refusing to be captured, say), the capture is
// ended (after joining the side stream, if the failure came between a fork
// and its join), graphs are switched off for good and the step runs
// directly; the reason is kept for GraphStats.

type entryKind uint8

const (
	opLaunch        entryKind = iota + 1
	opCopy                    // device to device: p[0] ← p[1], n bytes
	opMemset                  // p[0][0..n) = v (32-bit words)
	opConvFwd                 // y p[2] = conv(x p[0], w p[1])
	opConvBwdData             // dx p[2] = convᵀ(dy p[0], w p[1]) + beta·dx
	opConvBwdFilter           // dw p[2] = Σ dy p[1] ⋆ x p[0] + beta·dw
	opFork                    // the side stream waits for the main stream's work so far
	opJoin                    // the main stream waits for the side stream's work so far
)

// entry is one recorded operation. Entries are compared with ==, so every
// field must be comparable and nothing that changes between iterations
// may be stored here (it goes to the arena).
type entry struct {
	kind        entryKind
	fn          cu.Function
	grid, block [3]uint32
	nargs       int
	args        [cu.MaxKernelArgs]uint64
	plan        *convPlan
	p           [3]cu.DevicePtr
	n           int
	v           uint32 // memset value, or beta of a convolution (float32 bits)
	side        bool   // queued on the side stream (Overlapper)
}

// errCaptureBroken is matched by the error of the backend's endCapture or
// abortCapture when a stream is left capturing: nothing more can be issued
// on it, so the step fails instead of running directly.
var errCaptureBroken = errors.New("a stream is still capturing after the capture was ended")

// GraphStats say how often steps were replayed from a graph.
type GraphStats struct {
	Enabled  bool   // graphs are wanted and have not failed
	Captures int    // graphs captured
	Replays  int    // steps launched from a graph captured before
	Direct   int    // steps issued without a graph (a new tape's first run, flushed or failed)
	Cached   int    // graphs kept now
	Off      string // why graphs were switched off, if they were
}

// A knownTape is a tape seen before: one that ran directly once (exec 0),
// or one captured into a graph (exec ≠ 0).
type knownTape struct {
	hash  uint64
	tape  []entry
	exec  cu.GraphExec
	stamp uint64
}

// maxGraphs bounds the tapes kept, captured or not; the least recently
// used one is dropped first (with its graph). PAD needs at most four
// graphs: two parities of the memory swap, each with and without an older
// memory (an epoch's first step). A tape takes its place when it first runs
// (directly) and keeps it when it is captured at its next occurrence.
const maxGraphs = 8

// missLimit is how many steps in a row may go without a replay before
// graphs are switched off: the tape then changes every iteration (a scalar
// that depends on the iteration passed by value, say) and recording and
// capturing cost more than they save. A new tape's direct first run counts
// as a miss like a capture does, so a tape that changes every step is
// switched off after missLimit direct runs without ever being captured;
// a steady loop needs two misses per distinct tape (first run, capture).
const missLimit = 8

// The recorder drives the backend through these methods (record.go): run
// queues one entry on its stream; reserveArena takes the host side of a
// step's arena from the staging ring (its bytes and their offset in the
// ring); uploadArena queues the copy of the first n bytes of the arena
// reserved at off to the device and marks them; eagerArg places an argument in
// device memory when no step is being recorded; beginCapture starts
// capturing the stream, endCapture ends it and instantiates the graph, and
// abortCapture ends a failed capture and discards it (both end the capture
// on every stream that joined it, provided every fork was joined first;
// an error matching errCaptureBroken means a stream is still capturing);
// launch and destroy launch and free a graph.
type recorder struct {
	d       *Backend
	enabled bool
	off     string

	rec  bool
	tape []entry
	hash uint64
	host []byte       // the arena of the step being recorded (page-locked)
	at   int          // host's offset in the staging ring
	used int          // bytes of host used
	dev  cu.DevicePtr // the arena's device side

	// side: operations go to the side stream (between BeginSide and
	// EndSide); sideOpen: side work was queued since the last join.
	side, sideOpen bool

	known  []*knownTape
	clock  uint64
	misses int
	stats  GraphStats
}

// newRecorder makes a recorder whose steps copy their arguments to the
// arena dev.
func newRecorder(d *Backend, enabled bool, dev cu.DevicePtr) *recorder {
	return &recorder{d: d, enabled: enabled, dev: dev, tape: make([]entry, 0, 512)}
}

// recording reports whether operations are being recorded.
func (s *recorder) recording() bool { return s.rec }

// begin starts recording a step (if graphs are on).
func (s *recorder) begin() error {
	if s.rec {
		return errors.New("BeginGraph inside a step")
	}
	if !s.enabled {
		return nil
	}
	host, off, err := s.d.reserveArena()
	if err != nil {
		return err
	}
	s.rec = true
	s.tape = s.tape[:0]
	s.host, s.at, s.used = host, off, 0
	s.hash = 0x9e3779b97f4a7c15
	return nil
}

// add records e, or queues it when no step is being recorded. It goes to
// the side stream inside a side section.
func (s *recorder) add(e *entry) error {
	e.side = s.side && e.kind != opFork && e.kind != opJoin
	if !s.rec {
		return s.runNow(*e)
	}
	s.tape = append(s.tape, *e)
	s.hash = mixEntry(s.hash, e)
	return nil
}

// runNow issues a copy of an entry, so that add's argument does not
// escape (recording a step then allocates nothing per operation).
func (s *recorder) runNow(e entry) error { return s.d.run(&e) }

// errSideArg refuses per-call arguments in a side section: the argument
// ring and arena track their readers on the main stream only.
var errSideArg = errors.New("an operation with per-call arguments (random keys, Adam tables, uploads) cannot run on the side stream")

// beginSide starts a side section: the side stream waits for the main
// stream's work so far, and the operations that follow go to it.
func (s *recorder) beginSide() error {
	if s.side {
		return errors.New("BeginSide inside a side section")
	}
	if err := s.add(&entry{kind: opFork}); err != nil {
		return err
	}
	s.side, s.sideOpen = true, true
	return nil
}

// endSide ends a side section; the main stream does not wait for it yet.
func (s *recorder) endSide() { s.side = false }

// join makes the main stream wait for the side work queued so far, ending
// a side section still open.
func (s *recorder) join() error {
	s.side = false
	if !s.sideOpen {
		return nil
	}
	s.sideOpen = false
	return s.add(&entry{kind: opJoin})
}

// settle is called before an operation that lets the host see the work
// (Sync, Download, a fence, a flush): the main stream waits for the side
// work, and a side section still open goes on after that point.
func (s *recorder) settle() error {
	if !s.sideOpen {
		return nil
	}
	inSide := s.side
	if err := s.join(); err != nil {
		return err
	}
	if inSide {
		return s.beginSide()
	}
	return nil
}

// arg places data in device memory where the next operation finds it: in
// the arena while recording, else wherever the driver puts it.
func (s *recorder) arg(data []byte) (cu.DevicePtr, error) {
	if s.side {
		return 0, errSideArg
	}
	if s.rec {
		if p, ok := s.arenaArg(data); ok {
			return p, nil
		}
		// Too big for the arena: this step goes without a graph.
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	return s.d.eagerArg(data)
}

// arenaArg copies data into the arena of the step being recorded and
// returns its device address; ok is false if it does not fit (or no step
// is being recorded).
func (s *recorder) arenaArg(data []byte) (p cu.DevicePtr, ok bool) {
	if !s.rec {
		return 0, false
	}
	off := (s.used + stageAlign - 1) &^ (stageAlign - 1)
	if off+len(data) > len(s.host) {
		return 0, false
	}
	copy(s.host[off:], data)
	s.used = off + len(data)
	return s.dev.Offset(off), true
}

// flush issues what was recorded directly and ends recording for the rest
// of the step.
func (s *recorder) flush() error {
	if !s.rec {
		return nil
	}
	if err := s.settle(); err != nil {
		return err
	}
	s.rec = false
	s.stats.Direct++
	return s.issue()
}

// issue queues the step directly: the arena copy and the tape.
func (s *recorder) issue() error {
	if err := s.upload(); err != nil {
		return err
	}
	_, err := s.queueTape()
	return err
}

// upload queues the copy of the step's arena to the device, once. It
// comes before the step's work on the main stream, outside any capture,
// and the arena's device side is rewritten only after the step before has
// read it (stream order). The copy is not part of a graph, so a graph does
// not depend on how much of the arena a step used.
func (s *recorder) upload() error {
	host := s.host
	s.host = nil // the staging ring may hand these bytes out again once copied
	if host == nil {
		return nil
	}
	return s.d.uploadArena(s.at, s.used)
}

// queueTape queues every recorded entry (directly or into the graph being
// captured). forked reports whether the side stream may have been forked
// (a fork was issued, or failed, and no join succeeded after it) when
// queueTape returned.
func (s *recorder) queueTape() (forked bool, err error) {
	for i := range s.tape {
		e := &s.tape[i]
		if e.kind == opFork {
			forked = true
		}
		if err := s.d.run(e); err != nil {
			return forked, err
		}
		if e.kind == opJoin {
			forked = false
		}
	}
	return false, nil
}

// end finishes a step: replay a graph captured from the same tape, capture
// one if the tape ran directly before, or run a new tape directly.
func (s *recorder) end() error {
	// A capture must end with every stream it forked joined again.
	if err := s.join(); err != nil {
		return err
	}
	if !s.rec {
		return nil
	}
	s.rec = false
	// Whatever runs next (a replay, a capture, a direct run) reads the
	// arena: its copy goes first.
	if err := s.upload(); err != nil {
		return err
	}
	s.clock++
	k := s.lookup()
	if k != nil {
		k.stamp = s.clock
	}
	if k != nil && k.exec != 0 {
		s.misses = 0
		if err := s.d.launch(k.exec); err != nil {
			return err
		}
		s.stats.Replays++
		return nil
	}
	s.misses++
	if s.misses > missLimit {
		s.switchOff(fmt.Sprintf("the work of a step changed in %d steps in a row, so graphs would never be replayed", s.misses))
		s.stats.Direct++
		return s.issue()
	}
	if k == nil {
		// First run of this tape: directly, outside any capture.
		s.remember()
		s.stats.Direct++
		return s.issue()
	}
	exec, err := s.capture()
	if err != nil {
		s.switchOff(fmt.Sprintf("capturing a step failed: %v", err))
		if errors.Is(err, errCaptureBroken) {
			return err
		}
		s.stats.Direct++
		return s.issue()
	}
	k.exec = exec
	s.stats.Captures++
	return s.d.launch(exec)
}

// capture issues the tape under stream capture and instantiates the graph.
// If issuing fails, the capture is ended and discarded: the side stream is
// joined first if it was forked into the capture, as a capture cannot end
// with a forked stream unjoined (CUDA_ERROR_STREAM_CAPTURE_UNJOINED, and
// the side stream would stay capturing).
func (s *recorder) capture() (cu.GraphExec, error) {
	if err := s.d.beginCapture(); err != nil {
		return 0, err
	}
	forked, err := s.queueTape()
	if err != nil {
		if cu.FaultOf(err) == cu.FaultDeviceLost {
			// Nothing more can be asked of a lost device; what cleaning
			// up would add is the same error again, several times.
			return 0, err
		}
		if forked {
			// A failed capture usually rejects the join as well
			// (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED); what matters is
			// that the side stream leaves the capture with the rest.
			if jerr := s.d.run(&entry{kind: opJoin}); jerr != nil {
				err = fmt.Errorf("%w (joining the side stream: %v)", err, jerr)
			}
		}
		if aerr := s.d.abortCapture(); aerr != nil {
			return 0, fmt.Errorf("%w (ending the capture: %w)", err, aerr)
		}
		return 0, err
	}
	return s.d.endCapture()
}

// lookup returns the known tape identical to the one recorded, or nil.
func (s *recorder) lookup() *knownTape {
	for _, k := range s.known {
		if k.hash != s.hash || len(k.tape) != len(s.tape) {
			continue
		}
		same := true
		for i := range k.tape {
			if k.tape[i] != s.tape[i] {
				same = false
				break
			}
		}
		if same {
			return k
		}
	}
	return nil
}

// remember keeps the recorded tape as run once, dropping the least
// recently used known tape (and its graph) if maxGraphs are kept.
func (s *recorder) remember() {
	if len(s.known) >= maxGraphs {
		old := 0
		for i, k := range s.known {
			if k.stamp < s.known[old].stamp {
				old = i
			}
		}
		if s.known[old].exec != 0 {
			s.d.destroy(s.known[old].exec)
		}
		s.known = append(s.known[:old], s.known[old+1:]...)
	}
	s.known = append(s.known, &knownTape{
		hash: s.hash, tape: append([]entry(nil), s.tape...), stamp: s.clock,
	})
}

// invalidate drops every graph: device memory a graph may point to is
// about to be freed. The tapes stay known as run once, so each is
// captured again at its next occurrence (with whatever memory its entries
// then point to) rather than run directly first: they have run outside a
// capture already.
func (s *recorder) invalidate() {
	for _, k := range s.known {
		if k.exec != 0 {
			s.d.destroy(k.exec)
			k.exec = 0
		}
	}
	s.misses = 0
}

func (s *recorder) switchOff(why string) {
	s.invalidate()
	s.known = nil
	s.enabled = false
	s.off = why
}

func (s *recorder) graphStats() GraphStats {
	st := s.stats
	st.Enabled = s.enabled
	for _, k := range s.known {
		if k.exec != 0 {
			st.Cached++
		}
	}
	st.Off = s.off
	return st
}

// mixEntry folds e into a running hash (a quick filter; lookup compares
// entries exactly).
func mixEntry(h uint64, e *entry) uint64 {
	mix := func(v uint64) {
		h ^= v
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
	}
	side := uint64(0)
	if e.side {
		side = 1 << 16
	}
	mix(uint64(e.kind) | uint64(e.nargs)<<8 | side | uint64(e.v)<<32)
	mix(uint64(e.fn))
	mix(uint64(e.grid[0]) | uint64(e.grid[1])<<32)
	mix(uint64(e.block[0]))
	for _, a := range e.args[:e.nargs] {
		mix(a)
	}
	for _, p := range e.p {
		mix(uint64(p))
	}
	mix(uint64(e.n))
	return h
}
