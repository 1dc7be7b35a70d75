package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// The recorder's logic runs here without a GPU: fakeDevice executes entries
// on a model of device memory, captures tapes into fake graphs and replays
// them, so the tests check what a step computes, not which calls were made.

const (
	fakeArena = cu.DevicePtr(0x10000000) // device twin of the arena halves
	fakeSlots = cu.DevicePtr(0x20000000) // where eager arguments go
	fakeOut   = cu.DevicePtr(0x30000000) // a "kernel" writes its reading here
	fakeHalf  = 256
)

type fakeGraph struct {
	nodes []func() // what a launch does
	dead  bool
}

type warmKey struct {
	fn   cu.Function
	side bool
}

type fakeDevice struct {
	t         *testing.T
	host      [2][]byte
	mem       map[cu.DevicePtr]uint32 // 32-bit words of device memory
	out       []uint32                // what the "read" kernel saw, in order
	capturing *fakeGraph
	graphs    []*fakeGraph
	marked    [2]int // step number that last read each half
	steps     int
	failCap   error
	// refuse is a kernel that runs directly but fails while captured, as
	// a library call that synchronizes does; refused counts its refusals.
	refuse  cu.Function
	refused int
	// With cold set, a kernel fails when captured before it ran directly
	// on the same stream, as a cuDNN handle's first use may (it may
	// allocate or synchronize, which a capture forbids).
	cold     bool
	warm     map[warmKey]bool
	launches int // graph launches
	direct   int // entries run directly
	slot     int
	// The side stream runs as late as CUDA may run it: its work is held
	// until the join that the main stream waits on.
	forked bool     // a fork since the last join
	held   []func() // side work not yet joined
}

func newFake(t *testing.T) (*fakeDevice, *recorder) {
	d := &fakeDevice{t: t, mem: map[cu.DevicePtr]uint32{}}
	d.host = [2][]byte{make([]byte, fakeHalf), make([]byte, fakeHalf)}
	s := newRecorder(d, true, d.host, [2]cu.DevicePtr{fakeArena, fakeArena + fakeHalf})
	return d, s
}

// do runs f now, or adds it to the graph being captured.
func (d *fakeDevice) do(f func()) {
	if d.capturing != nil {
		d.capturing.nodes = append(d.capturing.nodes, f)
		return
	}
	f()
}

// The fake kernel fnRead copies the word at args[0] to out; fnAdd and
// fnAdd2 add args[1] to the word at args[0].
const (
	fnRead = cu.Function(1)
	fnAdd  = cu.Function(2)
	fnAdd2 = cu.Function(3)
)

func (d *fakeDevice) run(e *entry) error {
	e2 := *e
	if d.capturing == nil {
		d.direct++
	} else if e2.kind == opLaunch && e2.fn == d.refuse && d.refuse != 0 {
		d.refused++
		return errors.New("operation not permitted when stream is capturing")
	}
	if d.cold && e2.kind == opLaunch {
		k := warmKey{e2.fn, e2.side}
		if d.warm == nil {
			d.warm = map[warmKey]bool{}
		}
		if d.capturing != nil && !d.warm[k] {
			return fmt.Errorf("first use of kernel %d (side %v) inside a capture", e2.fn, e2.side)
		}
		d.warm[k] = true
	}
	do := d.do
	if e2.side {
		if !d.forked {
			d.t.Errorf("side work (entry kind %d) without a fork before it", e2.kind)
		}
		do = func(f func()) { d.held = append(d.held, f) }
	}
	switch e2.kind {
	case opFork:
		d.forked = true
	case opJoin:
		if !d.forked {
			d.t.Error("a join without a fork")
		}
		for _, f := range d.held {
			d.do(f)
		}
		d.held, d.forked = nil, false
	case opLaunch:
		do(func() {
			p := cu.DevicePtr(e2.args[0])
			switch e2.fn {
			case fnRead:
				d.out = append(d.out, d.mem[p])
			case fnAdd, fnAdd2:
				d.mem[p] += uint32(e2.args[1])
			}
		})
	case opCopy:
		do(func() {
			for i := 0; i < e2.n; i += 4 {
				d.mem[e2.p[0]+cu.DevicePtr(i)] = d.mem[e2.p[1]+cu.DevicePtr(i)]
			}
		})
	default:
		return fmt.Errorf("fake: entry kind %d", e2.kind)
	}
	return nil
}

func (d *fakeDevice) uploadArena(h, n int) error {
	d.do(func() {
		// Reads the pinned host half when it runs, as a graph's copy node
		// does.
		for i := 0; i+4 <= n; i += 4 {
			d.mem[fakeArena+cu.DevicePtr(h*fakeHalf+i)] = binary.LittleEndian.Uint32(d.host[h][i:])
		}
	})
	return nil
}

func (d *fakeDevice) eagerArg(data []byte) (cu.DevicePtr, error) {
	p := fakeSlots + cu.DevicePtr(d.slot*64)
	d.slot++
	for i := 0; i+4 <= len(data); i += 4 {
		d.mem[p+cu.DevicePtr(i)] = binary.LittleEndian.Uint32(data[i:])
	}
	return p, nil
}

func (d *fakeDevice) beginCapture() error {
	if d.capturing != nil {
		d.t.Fatal("nested capture")
	}
	d.capturing = &fakeGraph{}
	return nil
}

// unjoined models ending a capture into which the side stream was forked
// and not joined: CUDA fails with CUDA_ERROR_STREAM_CAPTURE_UNJOINED and
// the capture stays broken, so the fake keeps capturing (whatever is
// issued later goes into a graph nobody launches) and keeps the side work.
func (d *fakeDevice) unjoined() error {
	if d.capturing == nil {
		d.t.Fatal("capture ended without one begun")
	}
	if d.forked || len(d.held) > 0 {
		return fmt.Errorf("%w (capture ended with a forked stream not joined)", errCaptureBroken)
	}
	return nil
}

func (d *fakeDevice) endCapture() (cu.GraphExec, error) {
	if err := d.unjoined(); err != nil {
		return 0, err
	}
	g := d.capturing
	d.capturing = nil
	if d.failCap != nil {
		return 0, d.failCap
	}
	d.graphs = append(d.graphs, g)
	return cu.GraphExec(len(d.graphs)), nil
}

func (d *fakeDevice) abortCapture() error {
	if err := d.unjoined(); err != nil {
		return err
	}
	d.capturing = nil
	return nil
}

func (d *fakeDevice) launch(g cu.GraphExec) error {
	fg := d.graphs[int(g)-1]
	if fg.dead {
		d.t.Fatalf("launch of destroyed graph %d", g)
	}
	d.launches++
	for _, f := range fg.nodes {
		f()
	}
	return nil
}

func (d *fakeDevice) destroy(g cu.GraphExec) { d.graphs[int(g)-1].dead = true }

func (d *fakeDevice) markHalf(h int) error { d.marked[h] = d.steps; return nil }

func (d *fakeDevice) waitHalf(h int) error { return nil }

func (d *fakeDevice) live() int {
	n := 0
	for _, g := range d.graphs {
		if !g.dead {
			n++
		}
	}
	return n
}

func word(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// readStep is one iteration: an argument v, a kernel reading it.
func readStep(t *testing.T, s *recorder, v uint32) {
	t.Helper()
	must(t, s.begin())
	p, err := s.arg(word(v))
	must(t, err)
	must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(p)}}))
	must(t, s.end())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecorderReplaysWithNewArguments(t *testing.T) {
	d, s := newFake(t)
	var want []uint32
	for i := uint32(0); i < 10; i++ {
		readStep(t, s, 100+i)
		want = append(want, 100+i)
	}
	if !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	st := s.graphStats()
	// One tape per arena half: each runs directly the first time (steps 1
	// and 2), is captured the second (steps 3 and 4), and every later step
	// is a replay.
	if st.Captures != 2 || st.Replays != 6 || st.Direct != 2 || !st.Enabled || st.Cached != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The two first runs issued their one entry each outside a graph.
	if d.direct != 2 {
		t.Fatalf("%d entries ran outside a graph, want 2", d.direct)
	}
}

func TestRecorderCapturesADifferentStep(t *testing.T) {
	d, s := newFake(t)
	buf := fakeOut
	for i := 0; i < 6; i++ {
		must(t, s.begin())
		// Steps alternate between adding 1 and adding 2 (a scalar passed by
		// value is part of the tape: a different value is a different graph).
		inc := uint64(1 + i%2)
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(buf), inc}}))
		must(t, s.end())
	}
	if got := d.mem[buf]; got != 9 {
		t.Fatalf("sum %d, want 9", got)
	}
	// Each half always sees the same increment here: 2 tapes, each run
	// directly once, then captured, then replayed (steps 5 and 6).
	if st := s.graphStats(); st.Captures != 2 || st.Replays != 2 || st.Direct != 2 {
		t.Fatalf("stats %+v", st)
	}
	for i := 0; i < 3; i++ {
		must(t, s.begin())
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(buf), 100}}))
		must(t, s.end())
	}
	if got := d.mem[buf]; got != 309 {
		t.Fatalf("sum %d, want 309", got)
	}
	// The new increment is a new tape on each half: its first run on
	// either half is direct (steps 7 and 8) and only step 9 captures it.
	if st := s.graphStats(); st.Captures != 3 || st.Replays != 2 || st.Direct != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRecorderUploadInsideAStep(t *testing.T) {
	d, s := newFake(t)
	for i := uint32(0); i < 5; i++ {
		must(t, s.begin())
		a, ok := s.arenaArg(append(word(i), word(i*i)...))
		if !ok {
			t.Fatal("8 bytes do not fit the arena")
		}
		must(t, s.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{fakeOut, a}, n: 8}))
		must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(fakeOut + 4)}}))
		must(t, s.end())
	}
	if want := []uint32{0, 1, 4, 9, 16}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	if _, ok := s.arenaArg(word(1)); ok {
		t.Fatal("arenaArg outside a step")
	}
}

func TestRecorderFlushRunsTheStepDirectly(t *testing.T) {
	d, s := newFake(t)
	readStep(t, s, 1)
	readStep(t, s, 2)
	must(t, s.begin())
	p, _ := s.arg(word(3))
	must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(p)}}))
	must(t, s.flush()) // a Sync inside the step
	p, _ = s.arg(word(4))
	must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(p)}}))
	must(t, s.end())
	readStep(t, s, 5)
	if want := []uint32{1, 2, 3, 4, 5}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	// Direct: the first runs of the two tapes (steps 1 and 2) and the
	// flushed step 3. Step 4 repeats step 2's tape (same half, same
	// work), so it is captured; nothing has been replayed yet.
	if st := s.graphStats(); st.Direct != 3 || st.Captures != 1 || st.Replays != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRecorderArgumentTooBigForTheArena(t *testing.T) {
	d, s := newFake(t)
	must(t, s.begin())
	p, _ := s.arg(word(7))
	must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(p)}}))
	big := make([]byte, fakeHalf+4)
	binary.LittleEndian.PutUint32(big, 8)
	q, err := s.arg(big)
	must(t, err)
	must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(q)}}))
	must(t, s.end())
	if want := []uint32{7, 8}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	if st := s.graphStats(); st.Direct != 1 || st.Captures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRecorderCaptureFailureSwitchesGraphsOff(t *testing.T) {
	d, s := newFake(t)
	d.failCap = errors.New("operation not permitted when stream is capturing")
	for i := uint32(0); i < 4; i++ {
		readStep(t, s, i)
	}
	if want := []uint32{0, 1, 2, 3}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	st := s.graphStats()
	// Steps 1 and 2 are first runs (direct, no capture attempted); step 3
	// is the first capture, which fails and runs directly; step 4 runs
	// with graphs off, which GraphStats does not count.
	if st.Enabled || !strings.Contains(st.Off, "not permitted") || st.Direct != 3 || st.Captures != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s.recording() {
		t.Fatal("still recording with graphs off")
	}
}

func TestRecorderGivesUpOnATapeThatAlwaysChanges(t *testing.T) {
	d, s := newFake(t)
	for i := 0; i < 20; i++ {
		must(t, s.begin())
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(fakeOut), uint64(i)}}))
		must(t, s.end())
	}
	if got, want := d.mem[fakeOut], uint32(190); got != want {
		t.Fatalf("sum %d, want %d", got, want)
	}
	st := s.graphStats()
	// Every tape is new, so none is ever captured: the first missLimit
	// steps are direct first runs, the next one switches graphs off (and
	// runs directly too), and the rest run with graphs off.
	if st.Enabled || !strings.Contains(st.Off, "changed") || st.Captures != 0 || st.Direct != missLimit+1 || len(d.graphs) != 0 {
		t.Fatalf("stats %+v, %d graphs made", st, len(d.graphs))
	}
	if d.live() != 0 {
		t.Fatalf("%d graphs left alive", d.live())
	}
}

func TestRecorderEvictsAndInvalidates(t *testing.T) {
	d, s := newFake(t)
	step := func(k int) {
		must(t, s.begin())
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(fakeOut), uint64(k)}}))
		must(t, s.end())
	}
	// maxGraphs+2 distinct tapes, each used three times in a row on both
	// halves: run directly, captured, replayed. (Twice would not do: a
	// tape's first run and its capture are both misses, so four in a row
	// per tape, never reset by a replay, would switch graphs off.)
	for k := 0; k < maxGraphs+2; k++ {
		for r := 0; r < 6; r++ {
			step(k)
		}
	}
	if d.live() != maxGraphs || len(s.known) != maxGraphs || s.graphStats().Cached != maxGraphs {
		t.Fatalf("%d graphs alive, %d tapes known, %d graphs kept, want %d", d.live(), len(s.known), s.graphStats().Cached, maxGraphs)
	}
	if st := s.graphStats(); st.Captures != 2*(maxGraphs+2) || st.Replays != 2*(maxGraphs+2) || !st.Enabled {
		t.Fatalf("stats %+v", st)
	}
	s.invalidate()
	if d.live() != 0 || s.graphStats().Cached != 0 {
		t.Fatalf("after invalidate: %d alive, %d kept", d.live(), s.graphStats().Cached)
	}
	// The tapes stay known: they ran outside a capture before, so the
	// last one is captured again at once on both halves, not run directly.
	direct := s.graphStats().Direct
	step(maxGraphs + 1)
	step(maxGraphs + 1)
	if st := s.graphStats(); st.Direct != direct || st.Captures != 2*(maxGraphs+2)+2 || d.live() != 2 {
		t.Fatalf("after invalidate: stats %+v, %d graphs alive", st, d.live())
	}
	readStep(t, s, 42)
	if d.out[len(d.out)-1] != 42 {
		t.Fatal("a step after invalidate did not run")
	}
}

func TestRecorderWithoutGraphs(t *testing.T) {
	d := &fakeDevice{t: t, mem: map[cu.DevicePtr]uint32{}}
	d.host = [2][]byte{make([]byte, fakeHalf), make([]byte, fakeHalf)}
	s := newRecorder(d, false, d.host, [2]cu.DevicePtr{fakeArena, fakeArena + fakeHalf})
	for i := uint32(0); i < 3; i++ {
		readStep(t, s, i)
	}
	if want := []uint32{0, 1, 2}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v, want %v", d.out, want)
	}
	if d.launches != 0 || d.direct != 3 {
		t.Fatalf("%d graph launches, %d direct entries", d.launches, d.direct)
	}
}

func TestRecorderNestedBegin(t *testing.T) {
	_, s := newFake(t)
	must(t, s.begin())
	if err := s.begin(); err == nil {
		t.Fatal("BeginGraph inside a step accepted")
	}
}

// nopDevice does nothing: it isolates the host cost of the recorder.
type nopDevice struct{}

func (nopDevice) run(*entry) error                      { return nil }
func (nopDevice) uploadArena(h, n int) error            { return nil }
func (nopDevice) eagerArg([]byte) (cu.DevicePtr, error) { return fakeSlots, nil }
func (nopDevice) beginCapture() error                   { return nil }
func (nopDevice) endCapture() (cu.GraphExec, error)     { return 1, nil }
func (nopDevice) abortCapture() error                   { return nil }
func (nopDevice) launch(cu.GraphExec) error             { return nil }
func (nopDevice) destroy(cu.GraphExec)                  {}
func (nopDevice) markHalf(int) error                    { return nil }
func (nopDevice) waitHalf(int) error                    { return nil }

// BenchmarkStepperReplay measures what recording and matching one PAD-sized
// step (300 operations with 8 arguments each, 10 arena arguments) costs the
// host when its graph is replayed: the time the host needs per iteration
// to keep the GPU fed.
func BenchmarkStepperReplay(b *testing.B) {
	host := [2][]byte{make([]byte, 1<<16), make([]byte, 1<<16)}
	s := newRecorder(nopDevice{}, true, host, [2]cu.DevicePtr{fakeArena, fakeArena + 1<<16})
	key := make([]byte, 32)
	step := func() {
		if err := s.begin(); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			e := entry{kind: opLaunch, fn: cu.Function(i%40 + 1), grid: [3]uint32{64, 1, 1}, block: [3]uint32{256, 1, 1}, nargs: 8}
			for j := range 8 {
				e.args[j] = uint64(0x7f0000000000 + i*4096 + j)
			}
			if i%30 == 0 {
				p, err := s.arg(key)
				if err != nil {
					b.Fatal(err)
				}
				e.args[0] = uint64(p)
			}
			if err := s.add(&e); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.end(); err != nil {
			b.Fatal(err)
		}
	}
	for range 4 { // each half: a direct first run, then the capture
		step()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	if st := s.graphStats(); st.Captures != 2 {
		b.Fatalf("stats %+v", st)
	}
}

// sideStep adds 1 to X on the main stream, then copies X to Y as side
// work, then adds 10 to Z on the main stream, and reads Y after the join
// (explicit, or the one end adds).
func sideStep(t *testing.T, s *recorder, join bool) {
	t.Helper()
	x, y, z := fakeOut, fakeOut+4, fakeOut+8
	must(t, s.begin())
	must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(x), 1}}))
	must(t, s.beginSide())
	must(t, s.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{y, x}, n: 4}))
	s.endSide()
	must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(z), 10}}))
	if join {
		must(t, s.join())
		must(t, s.add(&entry{kind: opLaunch, fn: fnRead, nargs: 1, args: [cu.MaxKernelArgs]uint64{uint64(y)}}))
	}
	must(t, s.end())
}

func TestRecorderSideWorkIsForkedAndJoined(t *testing.T) {
	d, s := newFake(t)
	for i := 0; i < 6; i++ {
		sideStep(t, s, true)
	}
	if want := []uint32{1, 2, 3, 4, 5, 6}; !reflect.DeepEqual(d.out, want) {
		t.Fatalf("read %v after the joins, want %v", d.out, want)
	}
	// Per half: a direct first run, a capture, a replay.
	if st := s.graphStats(); st.Captures != 2 || st.Replays != 2 || st.Direct != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Without an explicit join, the end of the step joins: the capture
	// would fail otherwise, and the copy is done when the step is.
	d2, s2 := newFake(t)
	for i := 0; i < 5; i++ {
		sideStep(t, s2, false)
	}
	// Steps 1 and 2 run directly, 3 and 4 are captured, 5 is replayed.
	if st := s2.graphStats(); st.Captures != 2 || st.Replays != 1 || !st.Enabled {
		t.Fatalf("stats %+v", st)
	}
	if got := d2.mem[fakeOut+4]; got != 5 {
		t.Fatalf("Y = %d after 5 steps, want 5", got)
	}
	if s2.sideOpen || s2.side {
		t.Fatal("side section open after the step")
	}
}

func TestRecorderSideFlagIsPartOfTheTape(t *testing.T) {
	_, s := newFake(t)
	step := func(side bool) {
		must(t, s.begin())
		if side {
			must(t, s.beginSide())
		}
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(fakeOut), 1}}))
		must(t, s.end())
	}
	for range 6 {
		step(false) // 2 direct first runs, 2 graphs, 2 replays
	}
	step(true)
	step(true)
	// The side-stream steps are new tapes: direct first runs. Had they
	// matched the main-stream tapes, they would have been replays.
	if st := s.graphStats(); st.Captures != 2 || st.Replays != 2 || st.Direct != 4 {
		t.Fatalf("the same work on the side stream replayed a main-stream graph: %+v", st)
	}
}

func TestRecorderSideSettleAndArguments(t *testing.T) {
	d, s := newFake(t)
	x, y := fakeOut, fakeOut+4
	must(t, s.begin())
	must(t, s.beginSide())
	must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(x), 5}}))
	// A Sync inside the side section: the host must see the side work, and
	// what follows is still side work, after a new fork.
	must(t, s.flush())
	if got := d.mem[x]; got != 5 {
		t.Fatalf("X = %d after the flush, want 5", got)
	}
	must(t, s.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{y, x}, n: 4}))
	if len(d.held) != 1 || !d.forked {
		t.Fatal("the operation after the flush is not side work after a fork")
	}
	if _, err := s.arg(word(1)); !errors.Is(err, errSideArg) {
		t.Fatalf("an argument for side work: %v, want errSideArg", err)
	}
	s.endSide()
	must(t, s.end())
	if got := d.mem[y]; got != 5 {
		t.Fatalf("Y = %d at the end of the step, want 5", got)
	}
	if err := s.beginSide(); err != nil {
		t.Fatal(err)
	}
	if err := s.beginSide(); err == nil {
		t.Fatal("a side section inside a side section: no error")
	}
	must(t, s.join())
	// Outside a step the side work runs directly; a settle joins it.
	must(t, s.beginSide())
	must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(x), 1}}))
	s.endSide()
	must(t, s.settle())
	if got := d.mem[x]; got != 6 {
		t.Fatalf("X = %d after a settle, want 6", got)
	}
}

// A new tape runs directly first, so that what its work uses for the first
// time (here a kernel that fails if its first run is captured, on each
// stream: the cuDNN handles' case) is set up outside a capture; the next
// occurrence is captured and later ones replayed.
func TestRecorderFirstRunOfANewTapeIsDirect(t *testing.T) {
	d, s := newFake(t)
	d.cold = true
	x, y, z := fakeOut, fakeOut+4, fakeOut+8
	step := func(inc uint64) {
		must(t, s.begin())
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(x), inc}}))
		must(t, s.beginSide())
		// The side stream's first use of fnAdd2.
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd2, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(y), inc}}))
		s.endSide()
		must(t, s.add(&entry{kind: opLaunch, fn: fnAdd2, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(z), inc}}))
		must(t, s.end())
	}
	step(1)
	step(1)
	if len(d.graphs) != 0 || d.capturing != nil {
		t.Fatalf("%d graphs captured in the first run of each half's tape", len(d.graphs))
	}
	if d.direct == 0 {
		t.Fatal("the first runs issued nothing directly")
	}
	for range 4 {
		step(1)
	}
	st := s.graphStats()
	if !st.Enabled || st.Direct != 2 || st.Captures != 2 || st.Replays != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A different increment is a new tape: run directly on each half,
	// even amid replays, then captured; the old graphs stay.
	step(5)
	step(5)
	if st := s.graphStats(); st.Direct != 4 || st.Captures != 2 || st.Cached != 2 {
		t.Fatalf("a new tape amid replays: stats %+v", st)
	}
	step(5)
	step(1)
	if st := s.graphStats(); !st.Enabled || st.Direct != 4 || st.Captures != 3 || st.Replays != 3 || st.Cached != 3 {
		t.Fatalf("stats %+v", st)
	}
	if d.mem[x] != 22 || d.mem[y] != 22 || d.mem[z] != 22 {
		t.Fatalf("X, Y, Z = %d, %d, %d, want 22 each", d.mem[x], d.mem[y], d.mem[z])
	}
}

// A capture that fails between a fork and its join is ended with the side
// stream joined first (CUDA refuses to end it otherwise, and the capture
// stays broken); the step then runs directly and later steps run too.
func TestRecorderAbortedCaptureJoinsTheSideStream(t *testing.T) {
	for _, onSide := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused on side %v", onSide), func(t *testing.T) {
			d, s := newFake(t)
			d.refuse = fnAdd2
			x, y, z := fakeOut, fakeOut+4, fakeOut+8
			// X += 1; side: Y = X, then (onSide) Y += 10 by the refused
			// kernel; main: Z += 10 (by the refused kernel unless onSide);
			// the end of the step joins.
			step := func() {
				must(t, s.begin())
				must(t, s.add(&entry{kind: opLaunch, fn: fnAdd, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(x), 1}}))
				must(t, s.beginSide())
				must(t, s.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{y, x}, n: 4}))
				if onSide {
					must(t, s.add(&entry{kind: opLaunch, fn: fnAdd2, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(y), 10}}))
				}
				s.endSide()
				fn := fnAdd2
				if onSide {
					fn = fnAdd
				}
				must(t, s.add(&entry{kind: opLaunch, fn: fn, nargs: 2, args: [cu.MaxKernelArgs]uint64{uint64(z), 10}}))
				must(t, s.end())
			}
			wantY := func(n uint32) uint32 {
				if onSide {
					return n + 10
				}
				return n
			}
			check := func(n uint32) {
				t.Helper()
				if d.mem[x] != n || d.mem[y] != wantY(n) || d.mem[z] != 10*n {
					t.Fatalf("after %d steps: X, Y, Z = %d, %d, %d, want %d, %d, %d", n, d.mem[x], d.mem[y], d.mem[z], n, wantY(n), 10*n)
				}
			}
			step()
			step() // the first runs: direct
			step() // captured: the refused kernel aborts the capture
			if d.refused != 1 {
				t.Fatalf("the refused kernel was refused %d times, want 1", d.refused)
			}
			if d.capturing != nil {
				t.Fatal("the aborted capture was not ended")
			}
			check(3)
			st := s.graphStats()
			if st.Enabled || !strings.Contains(st.Off, "not permitted") || st.Captures != 0 || st.Direct != 3 || d.live() != 0 {
				t.Fatalf("stats %+v, %d graphs alive", st, d.live())
			}
			for range 3 {
				step()
			}
			check(6)
			if d.refused != 1 || len(d.held) != 0 || d.forked {
				t.Fatalf("after the abort: %d refusals, %d side operations held, forked %v", d.refused, len(d.held), d.forked)
			}
		})
	}
}
