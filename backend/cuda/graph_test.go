package cuda

// The graph recorder (graph.go) on the real backend, on pad's simulated GPU
// (internal/cudasim) or a GPU: what a step computes when it runs directly,
// is captured and is replayed, which tapes are told apart, when graphs are
// dropped or switched off, and how side-stream work is forked and joined.
// The simulation runs queued work as late as CUDA allows (its default lazy
// schedule), so a missing wait or a replay that reads stale arguments
// shows in the values; its counters show what was captured and launched,
// and it tells a destroyed graph from a live one. The tests that inject
// faults run on the simulation only.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// graphRig is a backend with a few small buffers for the recorder's tests.
type graphRig struct {
	t          *testing.T
	b          *Backend
	ones       backend.Buf // 1 everywhere: Axpby(x, ones, a, 1) adds a to x
	x, y, z, r backend.Buf
}

const rigLen = 4

// newGraphRig opens the backend (with or without graphs, with a side
// stream) on the simulation or a GPU. The simulation also counts what the
// host asked for (counters) and tells a live graph from a destroyed one.
func newGraphRig(t *testing.T, graphs bool) *graphRig {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	b, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE"), NoGraphs: !graphs})
	if errors.Is(err, ErrUnavailable) {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.side.stream == 0 {
		t.Fatalf("want a side stream: %s", b.Name())
	}
	g := &graphRig{t: t, b: b}
	for _, p := range []*backend.Buf{&g.ones, &g.x, &g.y, &g.z, &g.r} {
		q, err := b.Alloc(rigLen)
		if err != nil {
			t.Fatal(err)
		}
		*p = q
	}
	b.Fill(g.ones, 1)
	g.check()
	b.ResetSimCounters()
	return g
}

// check fails the test on a backend error.
func (g *graphRig) check() {
	g.t.Helper()
	if err := g.b.Sync(); err != nil {
		g.t.Fatal(err)
	}
}

// get downloads q (which waits for the work that writes it).
func (g *graphRig) get(q backend.Buf) []float32 {
	g.t.Helper()
	v := make([]float32, q.Len())
	g.b.Download(v, q)
	g.check()
	return v
}

// value returns q's first value; all of q must hold it.
func (g *graphRig) value(q backend.Buf) float32 {
	g.t.Helper()
	v := g.get(q)
	for i := range v {
		if v[i] != v[0] {
			g.t.Fatalf("values %v differ", v)
		}
	}
	return v[0]
}

// add queues x += a (a passed by value, so it is part of the tape).
func (g *graphRig) add(x backend.Buf, a float32) { g.b.Axpby(x, g.ones, a, 1) }

// counters returns the simulated driver's counters since the rig's reset,
// or nil on a GPU (which counts nothing).
func (g *graphRig) counters() map[string]uint64 {
	cs := g.b.SimCounters()
	if cs == nil {
		return nil
	}
	m := map[string]uint64{}
	for _, c := range cs {
		m[c.Name] = c.Value
	}
	return m
}

// stats fails the test unless the graph statistics are as given.
func (g *graphRig) stats(direct, captures, replays int) GraphStats {
	g.t.Helper()
	st := g.b.GraphStats()
	if st.Direct != direct || st.Captures != captures || st.Replays != replays {
		g.t.Fatalf("graphs: %s; want %d direct, %d captured, %d replayed", g.b.GraphSummary(), direct, captures, replays)
	}
	return st
}

func uniform(n int, k rng.Key) []float32 {
	v := make([]float32, n)
	rng.FillUniform(v, k)
	return v
}

func sameBits(a, b []float32) bool { return testkit.FirstBitDiff(a, b) < 0 }

func readKey(i int) rng.Key { return rng.Key{Seed: 11, Stream: 3, Seq: uint64(i)} }

// readStep is one iteration: random numbers of the key of iteration i (an
// argument in the arena) into r.
func (g *graphRig) readStep(i int) {
	g.t.Helper()
	g.b.BeginGraph()
	g.b.RandUniform(g.r, readKey(i))
	g.b.EndGraph()
	if got, want := g.get(g.r), uniform(rigLen, readKey(i)); !sameBits(got, want) {
		g.t.Fatalf("iteration %d: read %v, want %v", i, got, want)
	}
}

func TestRecorderReplaysWithNewArguments(t *testing.T) {
	g := newGraphRig(t, true)
	for i := range 10 {
		g.readStep(i)
	}
	// One tape: it runs directly the first time, is captured the second,
	// and every later step is a replay with its own key.
	st := g.stats(1, 1, 8)
	if !st.Enabled || st.Cached != 1 || st.Off != "" {
		t.Fatalf("graphs: %s", g.b.GraphSummary())
	}
	// The kernel was launched twice: once directly, once into the capture;
	// the 9 graph launches (1 after its capture, 8 replays) ran the rest.
	if c := g.counters(); c != nil && (c["kernel_launches"] != 2 || c["graph_launches"] != 9 || c["captures"] != 1) {
		t.Fatalf("%d kernel launches, %d graph launches, %d captures; want 2, 9, 1", c["kernel_launches"], c["graph_launches"], c["captures"])
	}
}

func TestRecorderCapturesADifferentStep(t *testing.T) {
	g := newGraphRig(t, true)
	for i := range 6 {
		// Steps alternate between adding 1 and adding 2 (a scalar passed by
		// value is part of the tape: a different value is a different graph).
		g.b.BeginGraph()
		g.add(g.x, float32(1+i%2))
		g.b.EndGraph()
	}
	if got := g.value(g.x); got != 9 {
		t.Fatalf("sum %v, want 9", got)
	}
	// 2 tapes, each run directly once (steps 1 and 2), then captured (3
	// and 4), then replayed (5 and 6).
	g.stats(2, 2, 2)
	for range 3 {
		g.b.BeginGraph()
		g.add(g.x, 100)
		g.b.EndGraph()
	}
	if got := g.value(g.x); got != 309 {
		t.Fatalf("sum %v, want 309", got)
	}
	// The new increment is a new tape: step 7 runs it directly, step 8
	// captures it, step 9 replays it.
	g.stats(3, 3, 3)
}

func TestRecorderUploadInsideAStep(t *testing.T) {
	g := newGraphRig(t, true)
	for i := range 5 {
		v := float32(i)
		g.b.BeginGraph()
		g.b.Upload(g.x, []float32{v, v * v, -v, 7})
		g.b.Copy(g.y, g.x)
		g.b.EndGraph()
		if got, want := g.get(g.y), []float32{v, v * v, -v, 7}; !sameBits(got, want) {
			t.Fatalf("step %d: read %v, want %v", i, got, want)
		}
	}
	// The uploads travelled in the arena: step 2 was captured and steps 3
	// to 5 replayed, each with its own values.
	g.stats(1, 1, 3)
	if _, ok := g.b.graphs.arenaArg([]byte{1, 2, 3, 4}); ok {
		t.Fatal("arenaArg outside a step")
	}
}

func TestRecorderFlushRunsTheStepDirectly(t *testing.T) {
	g := newGraphRig(t, true)
	g.readStep(1)
	g.readStep(2)
	g.b.BeginGraph()
	g.b.RandUniform(g.r, readKey(3))
	if err := g.b.Sync(); err != nil { // a Sync inside the step
		t.Fatal(err)
	}
	if g.b.graphs.recording() {
		t.Fatal("still recording after a Sync inside the step")
	}
	first := g.get(g.r)
	g.b.RandUniform(g.y, readKey(4))
	g.b.EndGraph()
	if want := uniform(rigLen, readKey(3)); !sameBits(first, want) {
		t.Fatalf("after the flush: %v, want %v", first, want)
	}
	if got, want := g.get(g.y), uniform(rigLen, readKey(4)); !sameBits(got, want) {
		t.Fatalf("after the flushed step: %v, want %v", got, want)
	}
	g.readStep(5)
	// Direct: the tape's first run (step 1) and the flushed step 3. Step 2
	// captured the tape and step 5 replays it (the flushed step, with its
	// random numbers for y, is not the same work).
	g.stats(2, 1, 1)
}

func TestRecorderArgumentTooBigForTheArena(t *testing.T) {
	g := newGraphRig(t, true)
	// An upload bigger than the arena is copied directly, after the step
	// so far.
	big := make([]float32, arenaBytes/4+1)
	for i := range big {
		big[i] = float32(i % 1000)
	}
	bigBuf, err := g.b.Alloc(len(big))
	if err != nil {
		t.Fatal(err)
	}
	g.b.BeginGraph()
	g.b.RandUniform(g.r, readKey(7))
	g.b.Upload(bigBuf, big)
	g.b.RandUniform(g.y, readKey(8))
	g.b.EndGraph()
	if got := g.get(bigBuf); !sameBits(got, big) {
		t.Fatal("the big upload is wrong")
	}
	if !sameBits(g.get(g.r), uniform(rigLen, readKey(7))) || !sameBits(g.get(g.y), uniform(rigLen, readKey(8))) {
		t.Fatal("the random numbers around the big upload are wrong")
	}
	g.stats(1, 0, 0)
	// A key that no longer fits the arena (uploads filled it) makes the
	// step go directly too.
	fill := make([]float32, arenaBytes/4-2)
	fillBuf, err := g.b.Alloc(len(fill))
	if err != nil {
		t.Fatal(err)
	}
	g.b.BeginGraph()
	g.b.Upload(fillBuf, fill)
	if !g.b.graphs.recording() {
		t.Fatal("an upload that fits the arena flushed the step")
	}
	g.b.RandUniform(g.r, readKey(9))
	if g.b.graphs.recording() {
		t.Fatal("a key that does not fit the arena did not flush the step")
	}
	g.b.EndGraph()
	if got := g.get(g.r); !sameBits(got, uniform(rigLen, readKey(9))) {
		t.Fatalf("the key after the full arena: %v", got)
	}
	g.stats(2, 0, 0)
}

func TestRecorderCaptureFailureSwitchesGraphsOff(t *testing.T) {
	simOnly(t)
	g := newGraphRig(t, true)
	setFaults(t, "capture@1") // the first cuStreamEndCapture fails
	for i := range 4 {
		g.readStep(i)
	}
	st := g.b.GraphStats()
	// Step 1 is the first run (direct, no capture attempted); step 2 is
	// the first capture, which fails and runs directly; steps 3 and 4 run
	// with graphs off, which GraphStats does not count.
	if st.Enabled || !strings.Contains(st.Off, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED") || st.Direct != 2 || st.Captures != 0 {
		t.Fatalf("graphs: %s", g.b.GraphSummary())
	}
	if !strings.HasPrefix(g.b.GraphSummary(), "off (capturing a step failed") {
		t.Fatalf("summary %q", g.b.GraphSummary())
	}
	if g.b.graphs.recording() {
		t.Fatal("still recording with graphs off")
	}
	if c := g.counters(); c["graph_launches"] != 0 {
		t.Fatalf("%d graph launches", c["graph_launches"])
	}
}

func TestRecorderGivesUpOnATapeThatAlwaysChanges(t *testing.T) {
	g := newGraphRig(t, true)
	for i := range 20 {
		g.b.BeginGraph()
		g.add(g.x, float32(i))
		g.b.EndGraph()
	}
	if got := g.value(g.x); got != 190 {
		t.Fatalf("sum %v, want 190", got)
	}
	st := g.b.GraphStats()
	// Every tape is new, so none is ever captured: the first missLimit
	// steps are direct first runs, the next one switches graphs off (and
	// runs directly too), and the rest run with graphs off.
	if st.Enabled || !strings.Contains(st.Off, "changed") || st.Captures != 0 || st.Direct != missLimit+1 || st.Cached != 0 {
		t.Fatalf("graphs: %s", g.b.GraphSummary())
	}
	if c := g.counters(); c["captures"] != 0 || c["graph_launches"] != 0 || len(g.b.graphs.known) != 0 {
		t.Fatalf("%d captures, %d graph launches, %d tapes kept", c["captures"], c["graph_launches"], len(g.b.graphs.known))
	}
}

// liveExec reports whether the simulated driver still has the graph exec
// (launching a destroyed one is an error there; on a GPU it is undefined).
func liveExec(t *testing.T, b *Backend, e cu.GraphExec) bool {
	t.Helper()
	err := cu.GraphLaunch(e, b.stream)
	if err != nil && !strings.Contains(err.Error(), "not a live graph exec") {
		t.Fatalf("launching graph exec %#x: %v", e, err)
	}
	return err == nil
}

func TestRecorderEvictsAndInvalidates(t *testing.T) {
	g := newGraphRig(t, true)
	step := func(k int) {
		g.b.BeginGraph()
		g.add(g.x, float32(k))
		g.b.EndGraph()
	}
	// maxGraphs+2 distinct tapes, each used three times in a row: run
	// directly, captured, replayed. (Twice would not do: a tape's first
	// run and its capture are both misses, so two in a row per tape, never
	// reset by a replay, would soon switch graphs off.)
	owner := map[cu.GraphExec]int{} // the tape each graph was captured from (the driver may reuse a handle)
	for k := range maxGraphs + 2 {
		for range 3 {
			step(k)
		}
		kt := g.b.graphs.known[len(g.b.graphs.known)-1]
		if kt.exec == 0 {
			t.Fatalf("tape %d was not captured", k)
		}
		owner[kt.exec] = k
	}
	want := float32(0)
	for k := range maxGraphs + 2 {
		want += float32(3 * k)
	}
	if got := g.value(g.x); got != want {
		t.Fatalf("sum %v, want %v", got, want)
	}
	st := g.b.GraphStats()
	if len(g.b.graphs.known) != maxGraphs || st.Cached != maxGraphs {
		t.Fatalf("%d tapes known, %d graphs kept, want %d", len(g.b.graphs.known), st.Cached, maxGraphs)
	}
	g.stats(maxGraphs+2, maxGraphs+2, maxGraphs+2)
	// The least recently used tapes went with their graphs: of all graphs
	// ever captured, exactly those of the tapes kept (the last maxGraphs)
	// are alive.
	kept := map[cu.GraphExec]bool{}
	for _, kt := range g.b.graphs.known {
		kept[kt.exec] = true
	}
	for e, k := range owner {
		if !cu.Simulated() {
			break // launching a destroyed graph is the simulation's error, a GPU's undefined behaviour
		}
		live := liveExec(t, g.b, e) // a live graph runs once more: x += k
		if live != kept[e] {
			t.Fatalf("tape %d: graph live %v, kept %v", k, live, kept[e])
		}
		if live {
			want += float32(k)
		}
	}
	if len(kept) != maxGraphs {
		t.Fatalf("%d distinct graphs kept, want %d", len(kept), maxGraphs)
	}
	// Freeing memory drops every graph (one may point into it).
	tmp, err := g.b.Alloc(1)
	if err != nil {
		t.Fatal(err)
	}
	g.b.Free(tmp)
	if st := g.b.GraphStats(); st.Cached != 0 {
		t.Fatalf("after a Free: %d graphs kept", st.Cached)
	}
	for e, k := range owner {
		if cu.Simulated() && liveExec(t, g.b, e) {
			t.Fatalf("tape %d: graph live after a Free", k)
		}
	}
	// The tapes stay known: they ran outside a capture before, so the
	// last one is captured again at once, not run directly.
	step(maxGraphs + 1)
	g.stats(maxGraphs+2, maxGraphs+3, maxGraphs+2)
	if st := g.b.GraphStats(); st.Cached != 1 {
		t.Fatalf("after the capture: %d graphs kept", st.Cached)
	}
	want += float32(maxGraphs + 1)
	if got := g.value(g.x); got != want {
		t.Fatalf("sum %v after invalidate, want %v", got, want)
	}
	// The oldest tape kept, used again, is the most recently used: a new
	// tape takes the place of the next oldest.
	oldest := maxGraphs + 2 - maxGraphs
	step(oldest)
	again := []cu.GraphExec{g.b.graphs.known[0].exec}
	step(maxGraphs + 2)
	want += float32(oldest) + float32(maxGraphs+2)
	if got := g.value(g.x); got != want {
		t.Fatalf("sum %v, want %v", got, want)
	}
	for _, e := range again {
		if e == 0 || !slices.ContainsFunc(g.b.graphs.known, func(kt *knownTape) bool { return kt.exec == e }) {
			t.Fatalf("tape %d, used last but one, was dropped (graph %#x)", oldest, e)
		}
	}
	if len(g.b.graphs.known) != maxGraphs {
		t.Fatalf("%d tapes known", len(g.b.graphs.known))
	}
}

// The hash of a tape only narrows the search: a known tape with the same
// hash and different work is not replayed for it.
func TestRecorderComparesTapesExactly(t *testing.T) {
	g := newGraphRig(t, true)
	step := func(a float32) {
		g.b.BeginGraph()
		g.add(g.x, a)
		g.add(g.y, 1)
		g.b.EndGraph()
	}
	for range 2 {
		step(1) // run, then captured
	}
	g.b.BeginGraph()
	g.add(g.x, 2)
	g.add(g.y, 1)
	// Make the known tape look like this one to the hash.
	rec := g.b.graphs
	if len(rec.known) != 1 || rec.known[0].exec == 0 {
		t.Fatalf("%d tapes known, want 1 captured", len(rec.known))
	}
	rec.known[0].hash = rec.hash
	g.b.EndGraph()
	if x := g.value(g.x); x != 4 {
		t.Fatalf("X = %v: the step ran another tape's graph", x)
	}
	g.stats(2, 1, 0)
}

func TestRecorderWithoutGraphs(t *testing.T) {
	g := newGraphRig(t, false)
	for i := range 3 {
		g.readStep(i)
	}
	if c := g.counters(); c != nil && (c["captures"] != 0 || c["graph_launches"] != 0 || c["kernel_launches"] != 3) {
		t.Fatalf("%d captures, %d graph launches, %d kernel launches without graphs; want 0, 0, 3", c["captures"], c["graph_launches"], c["kernel_launches"])
	}
	if st := g.b.GraphStats(); st.Enabled || st.Direct != 0 || g.b.GraphSummary() != "off" {
		t.Fatalf("graphs: %+v, %q", st, g.b.GraphSummary())
	}
}

func TestRecorderNestedBegin(t *testing.T) {
	g := newGraphRig(t, true)
	g.b.BeginGraph()
	g.add(g.x, 1)
	g.b.BeginGraph()
	if err := g.b.Err(); err == nil || !strings.Contains(err.Error(), "BeginGraph: BeginGraph inside a step") {
		t.Fatalf("BeginGraph inside a step: %v", err)
	}
	// The step ends without running: its tape is dropped.
	g.b.EndGraph()
	if g.b.graphs.recording() {
		t.Fatal("still recording after EndGraph")
	}
	if c := g.counters(); c["kernel_launches"] != 0 {
		t.Fatalf("%d kernels launched after the error", c["kernel_launches"])
	}
}

// BenchmarkStepperReplay measures what one PAD-sized step (300 kernel
// launches, 10 arena arguments) costs when its graph is replayed: the
// host's recording and matching, and the simulated (or real) device's run
// of the graph.
func BenchmarkStepperReplay(bm *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if err != nil {
		bm.Skip(err)
	}
	defer b.Close()
	x, _ := b.Alloc(1)
	step := func() {
		b.BeginGraph()
		for i := range 300 {
			if i%30 == 0 {
				b.RandUniform(x, rng.Key{Seq: uint64(i)})
				continue
			}
			b.Scale(x, 1)
		}
		b.EndGraph()
	}
	for range 2 { // a direct first run, then the capture
		step()
	}
	bm.ResetTimer()
	for range bm.N {
		step()
	}
	if err := b.Sync(); err != nil {
		bm.Fatal(err)
	}
	bm.StopTimer()
	if st := b.GraphStats(); st.Captures != 1 {
		bm.Fatalf("graphs: %s", b.GraphSummary())
	}
}

// sideStep adds 1 to X on the main stream, then copies X to Y as side
// work, then adds 10 to Z on the main stream, and copies Y to R on the
// main stream after the join (explicit, or the one EndGraph adds).
func (g *graphRig) sideStep(join bool) {
	g.b.BeginGraph()
	g.add(g.x, 1)
	g.b.BeginSide()
	g.b.Copy(g.y, g.x)
	g.b.EndSide()
	g.add(g.z, 10)
	if join {
		g.b.JoinSide()
		g.b.Copy(g.r, g.y)
	}
	g.b.EndGraph()
}

func TestRecorderSideWorkIsForkedAndJoined(t *testing.T) {
	g := newGraphRig(t, true)
	for i := 1; i <= 6; i++ {
		g.sideStep(true)
		// R was copied on the main stream after the join: under the lazy
		// schedule a missing wait would leave it a step behind.
		if r := g.value(g.r); r != float32(i) {
			t.Fatalf("step %d: R = %v after the join, want %d", i, r, i)
		}
	}
	// A direct first run, a capture, then replays.
	g.stats(1, 1, 4)
	// Without an explicit join, the end of the step joins: the capture
	// would fail otherwise, and the copy is done when the step is.
	g2 := newGraphRig(t, true)
	for range 5 {
		g2.sideStep(false)
	}
	// Step 1 runs directly, 2 is captured, 3 to 5 are replayed.
	if st := g2.stats(1, 1, 3); !st.Enabled {
		t.Fatalf("graphs: %s", g2.b.GraphSummary())
	}
	if y := g2.value(g2.y); y != 5 {
		t.Fatalf("Y = %v after 5 steps, want 5", y)
	}
	if g2.b.graphs.sideOpen || g2.b.graphs.side {
		t.Fatal("side section open after the step")
	}
}

func TestRecorderSideFlagIsPartOfTheTape(t *testing.T) {
	g := newGraphRig(t, true)
	step := func(side bool) {
		g.b.BeginGraph()
		if side {
			g.b.BeginSide()
		}
		g.add(g.x, 1)
		g.b.EndGraph()
	}
	for range 6 {
		step(false) // a direct first run, a capture, 4 replays
	}
	step(true)
	step(true)
	// The side-stream steps are a new tape: a direct first run and a
	// capture. Had they matched the main-stream tape, they would have
	// been replays.
	g.stats(2, 2, 4)
	if x := g.value(g.x); x != 8 {
		t.Fatalf("X = %v, want 8", x)
	}
}

func TestRecorderSideSettleAndArguments(t *testing.T) {
	g := newGraphRig(t, true)
	g.b.BeginGraph()
	g.b.BeginSide()
	g.add(g.x, 5)
	// A Sync inside the side section: the host must see the side work, and
	// what follows is still side work, after a new fork.
	g.check()
	if x := g.value(g.x); x != 5 {
		t.Fatalf("X = %v after the flush, want 5", x)
	}
	g.b.Copy(g.y, g.x)
	if !g.b.graphs.side || !g.b.graphs.sideOpen {
		t.Fatal("the operation after the flush is not side work after a fork")
	}
	g.b.EndSide()
	g.b.EndGraph()
	if y := g.value(g.y); y != 5 {
		t.Fatalf("Y = %v at the end of the step, want 5", y)
	}
	// Outside a step the side work runs directly; a settle joins it.
	g.b.BeginSide()
	g.add(g.x, 1)
	g.b.EndSide()
	if x := g.value(g.x); x != 6 {
		t.Fatalf("X = %v after a settle, want 6", x)
	}
	g.b.JoinSide()
	if g.b.graphs.sideOpen {
		t.Fatal("side work open after the download joined it")
	}
	g.check()
	// A side section inside a side section is an error.
	g.b.BeginSide()
	g.b.BeginSide()
	if err := g.b.Err(); err == nil || !strings.Contains(err.Error(), "BeginSide inside a side section") {
		t.Fatalf("a side section inside a side section: %v", err)
	}
	// Random keys cannot go to the side stream.
	g2 := newGraphRig(t, true)
	g2.b.BeginSide()
	g2.b.RandUniform(g2.r, readKey(1))
	if err := g2.b.Err(); !errors.Is(err, errSideArg) || !strings.Contains(err.Error(), "cuda: RandUniform: ") {
		t.Fatalf("an argument for side work: %v, want errSideArg", err)
	}
}

// A new tape runs directly first, so that what its work uses for the first
// time is set up outside a capture (where a library may allocate or
// synchronise); the next occurrence is captured and later ones replayed.
func TestRecorderFirstRunOfANewTapeIsDirect(t *testing.T) {
	g := newGraphRig(t, true)
	step := func(inc float32) {
		g.b.BeginGraph()
		g.add(g.x, inc)
		g.b.BeginSide()
		g.add(g.y, inc)
		g.b.EndSide()
		g.add(g.z, inc)
		g.b.EndGraph()
	}
	step(1)
	if c := g.counters(); c != nil && (c["captures"] != 0 || c["kernel_launches"] != 3) {
		t.Fatalf("the first run of the tape: %d captures, %d kernel launches; want 0, 3", c["captures"], c["kernel_launches"])
	}
	for range 3 {
		step(1)
	}
	if st := g.stats(1, 1, 2); !st.Enabled {
		t.Fatalf("graphs: %s", g.b.GraphSummary())
	}
	// A different increment is a new tape: run directly, even amid
	// replays, then captured; the old graph stays.
	step(5)
	if st := g.stats(2, 1, 2); st.Cached != 1 {
		t.Fatalf("a new tape amid replays: %s", g.b.GraphSummary())
	}
	step(5)
	step(1)
	if st := g.stats(2, 2, 3); !st.Enabled || st.Cached != 2 {
		t.Fatalf("graphs: %s", g.b.GraphSummary())
	}
	for _, q := range []backend.Buf{g.x, g.y, g.z} {
		if v := g.value(q); v != 15 {
			t.Fatalf("X, Y, Z = %v, %v, %v, want 15 each", g.value(g.x), g.value(g.y), g.value(g.z))
		}
	}
}

// A capture that fails between a fork and its join is ended with the side
// stream joined first (CUDA refuses to end it otherwise, and the capture
// stays broken); the step then runs directly and later steps run too.
// The failure is a kernel launch inside the capture that the simulation
// fails once (fail=cuLaunchKernel@2), on the side stream or on the main
// stream after the fork.
func TestRecorderAbortedCaptureJoinsTheSideStream(t *testing.T) {
	simOnly(t)
	for _, onSide := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused on side %v", onSide), func(t *testing.T) {
			g := newGraphRig(t, true)
			// X += 1; side: Y = X, then (onSide) Y += 10; main: Z += 10;
			// the end of the step joins. The second launch of the step is
			// Y += 10 (onSide) or Z += 10.
			step := func() {
				g.b.BeginGraph()
				g.add(g.x, 1)
				g.b.BeginSide()
				g.b.Copy(g.y, g.x)
				if onSide {
					g.add(g.y, 10)
				}
				g.b.EndSide()
				g.add(g.z, 10)
				g.b.EndGraph()
			}
			wantY := func(n float32) float32 {
				if onSide {
					return n + 10
				}
				return n
			}
			check := func(n float32) {
				t.Helper()
				if x, y, z := g.value(g.x), g.value(g.y), g.value(g.z); x != n || y != wantY(n) || z != 10*n {
					t.Fatalf("after %v steps: X, Y, Z = %v, %v, %v, want %v, %v, %v", n, x, y, z, n, wantY(n), 10*n)
				}
			}
			step() // the first run: direct
			setFaults(t, "fail=cuLaunchKernel@2")
			step() // captured: the failed launch aborts the capture
			setFaults(t, "")
			check(2)
			for _, s := range []cu.Stream{g.b.stream, g.b.side.stream} {
				if st, err := cu.StreamIsCapturing(s); err != nil || st != cu.CaptureStatusNone {
					t.Fatalf("a stream is left capturing: status %d, %v", st, err)
				}
			}
			st := g.b.GraphStats()
			if st.Enabled || !strings.Contains(st.Off, "cuLaunchKernel") || !strings.Contains(st.Off, injected) || st.Captures != 0 || st.Direct != 2 || st.Cached != 0 {
				t.Fatalf("graphs: %s", g.b.GraphSummary())
			}
			for range 3 {
				step()
			}
			check(5)
			if g.b.graphs.sideOpen || g.b.graphs.side {
				t.Fatal("side section open after the steps")
			}
		})
	}
}
