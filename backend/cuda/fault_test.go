package cuda

// Fault injection on pad's simulated GPU (internal/cudasim): every call the
// backend makes to the driver and cuDNN is failed once, in turn, and the
// backend must report it (the first error of an op is sticky) or, where a
// failure is harmless by design (a graph that cannot be captured runs
// directly), compute exactly what it computes without the fault.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// injected is the text the simulation puts into the error of a call it
// failed on purpose.
const injected = "fault injected by PAD_CUDASIM_FAULT"

// simOnly skips a test that needs the simulation's faults; it locks the
// goroutine to its thread for the CUDA context and clears the faults when
// the test ends.
func simOnly(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	if err := cu.Init(); err != nil {
		testkit.SkipOrFailNoGPU(t, err)
	}
	if !cu.SetSimFaults("") {
		t.Skip("faults are injected by the simulated GPU only")
	}
	t.Cleanup(func() { cu.SetSimFaults("") })
}

// setFaults sets the simulation's faults (see padsim.h).
func setFaults(t *testing.T, spec string) {
	t.Helper()
	if !cu.SetSimFaults(spec) {
		t.Fatalf("SetSimFaults(%q) refused", spec)
	}
}

// keepContext retains the primary context for the test, so that device
// memory the backends leave allocated stays visible (the simulation frees
// everything with the last reference), and returns a function that reports
// the device memory in use.
func keepContext(t *testing.T) func() int {
	t.Helper()
	dev, err := cu.DeviceGet(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := dev.RetainPrimaryContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Release() })
	return func() int {
		t.Helper()
		if err := ctx.SetCurrent(); err != nil {
			t.Fatal(err)
		}
		free, total, err := cu.MemGetInfo()
		if err != nil {
			t.Fatal(err)
		}
		return total - free
	}
}

// openSim opens a backend with graphs and a side stream for a fault test.
func openSim(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// faultGeom sizes the workload's tensors; it is also the convolution of
// the convolution faults: small, 3×3, stride 1.
var faultGeom = backend.NewConv(2, 3, 6, 5, 4, 3, 1, 1)

// faultBufs are the workload's tensors, views of one allocation.
type faultBufs struct {
	all                                          backend.Buf
	x, w, gw, y, dy, m, v, bias, dbias, mask, xc backend.Buf
}

func newFaultBufs(b *Backend) (*faultBufs, error) {
	cg := faultGeom
	f := &faultBufs{}
	views := []struct {
		p *backend.Buf
		n int
	}{
		{&f.x, cg.XLen()}, {&f.w, cg.WLen()}, {&f.gw, cg.WLen()}, {&f.y, cg.YLen()}, {&f.dy, cg.YLen()},
		{&f.m, cg.WLen()}, {&f.v, cg.WLen()}, {&f.bias, cg.K}, {&f.dbias, cg.K},
		{&f.mask, 7 * 5}, {&f.xc, cg.XLen()},
	}
	total := 0
	for _, v := range views {
		total += v.n
	}
	all, err := b.Alloc(total)
	if err != nil {
		return nil, err
	}
	f.all = all
	off := 0
	for _, v := range views {
		*v.p = all.Slice(off, v.n)
		off += v.n
	}
	return f, nil
}

// faultWorkload runs a small piece of training on b: an Adam step issued
// directly (its table through the staging ring), five recorded steps (a
// mini-batch upload, random numbers, a fused bias and activation, work on
// the side stream beside work on the main stream and read after the join,
// Adam; run directly, captured, replayed), a Free (which drops the
// graphs), an upload on the copy stream behind a fence, an occlusion mask,
// a copy and a fill, a download on the compute stream behind a fence and
// a download of everything. It returns the values of every buffer and the
// first error.
//
// Two kinds of work are left to other tests, for the simulation's sake.
// Convolutions (TestConvFaults): each algorithm search allocates 64 MiB of
// scratch, which the simulation fills, too slow to repeat for every call
// of a sweep. Reductions (losses, bias gradients): the simulation runs
// kernels with barriers on fibers whose stacks stay mapped as long as the
// process (modules are never unloaded), some 500 mappings per backend that
// ran one; a sweep's hundred backends would bring the process near the
// kernel's limit of mappings (vm.max_map_count, 65530).
func faultWorkload(b *Backend) ([][]float32, error) {
	cg := faultGeom
	f, err := newFaultBufs(b)
	if err != nil {
		return nil, err
	}
	tmp, err := b.Alloc(3)
	if err != nil {
		return nil, err
	}
	host, err := b.HostBuffer(cg.XLen() + cg.WLen())
	if err != nil {
		return nil, err
	}
	b.Upload(f.w, randn(cg.WLen(), 1))
	b.Upload(f.gw, randn(cg.WLen(), 2))
	b.Upload(f.bias, randn(cg.K, 3))
	h := backend.AdamHyper{LR: 1e-2, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	b.Adam(f.w, f.gw, f.m, f.v, []backend.AdamSegment{{Off: 0, Len: cg.WLen(), Step: 1}}, h)
	for it := range 5 {
		b.BeginGraph()
		b.Upload(f.x, randn(cg.XLen(), uint64(10+it)))
		b.RandNormal(f.y, rng.Key{Seed: 3, Stream: 5, Seq: uint64(it)})
		b.BiasAct(f.y, f.bias, cg.N, cg.K, cg.P*cg.Q, backend.ActLeakyReLU, 0.2)
		b.BeginSide()
		b.Axpby(f.dy, f.y, 0.5, 0.5)
		b.EndSide()
		b.Scale(f.bias, 1.01)
		b.JoinSide()
		b.Copy(f.dbias, f.dy.Slice(0, cg.K))
		b.Adam(f.w, f.gw, f.m, f.v, []backend.AdamSegment{{Off: 1, Len: cg.WLen() - 2, Step: it + 2}}, h)
		b.EndGraph()
	}
	b.Free(tmp)
	fence := b.Fence()
	copy(host, randn(cg.XLen(), 30))
	b.UploadAsync(f.xc, host[:cg.XLen()], fence)
	b.OcclusionMask(f.mask, backend.Occlusion{H: 7, W: 5, Masks: 1, P: -1, MaxTile: 3, Key: rng.Key{Seed: 4, Stream: 6}})
	b.Copy(f.dy, f.y)
	b.Fill(f.m.Slice(0, 2), 0.5)
	done := b.DownloadAsync(host[cg.XLen():], f.w)
	if err := b.Wait(done); err != nil {
		return nil, err
	}
	out := [][]float32{append([]float32(nil), host[cg.XLen():]...), make([]float32, f.all.Len())}
	b.Download(out[1], f.all)
	return out, b.Sync()
}

// sameValues reports where two results of faultWorkload differ (bit for
// bit), or "".
func sameValues(a, b [][]float32) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d buffers, want %d", len(a), len(b))
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Sprintf("buffer %d: %d values, want %d", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return fmt.Sprintf("buffer %d, value %d: %v, want %v", i, j, a[i][j], b[i][j])
			}
		}
	}
	return ""
}

// closeAndCheck closes b and checks that it released its device memory
// (back to base).
func closeAndCheck(t *testing.T, what string, b *Backend, inUse func() int, base int) {
	t.Helper()
	b.Close()
	if got := inUse(); got != base {
		t.Errorf("%s: %d bytes of device memory in use after Close, %d before New", what, got, base)
	}
}

// runCaught runs f and turns a panic into a test failure.
func runCaught(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", what, r)
		}
	}()
	f()
}

// TestFaultSweep fails each call of a representative workload in turn
// (fail@N: the N-th call of any function of the simulated driver, NVRTC,
// cuDNN or cuBLAS fails before doing anything), on a fresh backend each
// time, until the call after the workload is the one failed. Every failure
// must surface as the backend's error, naming the operation and the failed
// function, and stay (later operations do nothing, Sync returns it); or,
// where the backend shrugs it off by design (a capture that fails makes
// the step run directly, with graphs off), the results must be exactly
// those of a clean run. Where only Alloc or HostBuffer failed the backend
// must still work. Close must release the device memory, and the next
// backend must open (a failure must not poison the thread).
func TestFaultSweep(t *testing.T) {
	simOnly(t)
	inUse := keepContext(t)
	base := inUse()
	b := openSim(t)
	ref, err := faultWorkload(b)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.GraphStats(); st.Direct != 1 || st.Captures != 1 || st.Replays != 3 {
		t.Fatalf("the clean workload's graphs: %s", b.GraphSummary())
	}
	closeAndCheck(t, "clean run", b, inUse, base)
	var calls, silent, graphsOff, usable int
	for n := 1; ; n++ {
		what := fmt.Sprintf("fail@%d", n)
		base := inUse()
		b := openSim(t)
		x, aerr := b.Alloc(4) // for the checks after the failure
		if aerr != nil {
			t.Fatal(aerr)
		}
		setFaults(t, what)
		var got [][]float32
		var err error
		runCaught(t, what, func() { got, err = faultWorkload(b) })
		_, probe := cu.DeviceCount() // the call after the workload
		setFaults(t, "")
		if probe != nil {
			// The workload made n-1 calls, and ran clean.
			calls = n - 1
			if err != nil || sameValues(got, ref) != "" {
				t.Fatalf("%s came after the workload, yet: %v %s", what, err, sameValues(got, ref))
			}
			closeAndCheck(t, what, b, inUse, base)
			break
		}
		if err == nil {
			// Shrugged off: the results must not show it.
			silent++
			if d := sameValues(got, ref); d != "" {
				t.Errorf("%s: no error, yet the results differ from a clean run: %s", what, d)
			}
			if strings.Contains(b.GraphStats().Off, injected) {
				graphsOff++
			}
			closeAndCheck(t, what, b, inUse, base)
			continue
		}
		msg := err.Error()
		what += " (" + msg + ")"
		if !strings.HasPrefix(msg, "cuda: ") || !strings.Contains(msg, injected) {
			t.Errorf("%s: the error does not name the operation and the failed call: %v", what, err)
		}
		if b.Err() == nil {
			// Only an allocation failed: the backend goes on working.
			usable++
			again, err := faultWorkload(b)
			if err != nil || sameValues(again, ref) != "" {
				t.Errorf("%s: after %q the backend no longer works: %v %s", what, msg, err, sameValues(again, ref))
			}
		} else {
			// The error is sticky: later operations do nothing.
			first := b.Err()
			b.Fill(x, 1)
			b.BeginGraph()
			b.Scale(x, 2)
			b.EndGraph()
			if err := b.Sync(); err != first {
				t.Errorf("%s: Sync after the error returned %v, want the first error %v", what, err, first)
			}
		}
		closeAndCheck(t, what, b, inUse, base)
	}
	t.Logf("%d calls failed in turn: %d errors (%d left the backend usable), %d shrugged off (%d by switching graphs off)",
		calls, calls-silent, usable, silent, graphsOff)
	// The failures shrugged off with graphs left on are those of
	// cuGraphDestroy (after the capture instantiated its graph) and
	// cuGraphExecDestroy (the graph that Free drops): pad ignores them, as
	// there is nothing better to do than to go on.
	if silent-graphsOff != 2 {
		t.Errorf("%d failures shrugged off with graphs on, want 2", silent-graphsOff)
	}
	if calls < 50 || graphsOff == 0 || usable == 0 {
		t.Errorf("the sweep covered less than it should")
	}
}

// TestNewFaultSweep fails each call New makes in turn. New must return the
// error (naming the failed call) and release whatever it had set up, so
// that --device auto falls back to the CPU with nothing held on the
// device; or, where it ignores a failure by design (the device's name, the
// compiler's log), return a backend that works.
func TestNewFaultSweep(t *testing.T) {
	simOnly(t)
	inUse := keepContext(t)
	opts := Options{Precision: "fp32"} // no kernel cache: the compiler's calls are failed too
	var calls, ignored int
	for n := 1; ; n++ {
		what := fmt.Sprintf("fail@%d", n)
		base := inUse()
		setFaults(t, what)
		var b *Backend
		var err error
		runCaught(t, what, func() { b, err = New(opts) })
		_, probe := cu.DeviceCount() // the call after New
		setFaults(t, "")
		if err != nil {
			if b != nil {
				t.Errorf("%s: New returned a backend with its error %v", what, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, injected) && !strings.Contains(msg, "NVRTC_ERROR_INTERNAL_ERROR") {
				t.Errorf("%s: the error does not name the failed call: %v", what, err)
			}
			if got := inUse(); got != base {
				t.Errorf("%s (%v): New failed and left %d bytes of device memory allocated", what, err, got-base)
			}
			continue
		}
		if probe != nil { // n is the call after New: New made n-1
			calls = n - 1
			closeAndCheck(t, what, b, inUse, base)
			break
		}
		// Ignored: the backend must work.
		ignored++
		x, aerr := b.Alloc(3)
		if aerr != nil {
			t.Fatal(aerr)
		}
		b.Fill(x, 2)
		b.Scale(x, 3)
		got := make([]float32, 3)
		b.Download(got, x)
		if err := b.Sync(); err != nil || got[0] != 6 || got[2] != 6 {
			t.Errorf("%s: New ignored the failure, yet the backend does not work: %v %v", what, got, err)
		}
		closeAndCheck(t, what, b, inUse, base)
	}
	t.Logf("New makes %d calls; %d failures ignored", calls, ignored)
	if calls < 50 || ignored > 8 {
		t.Errorf("New made %d calls and ignored %d failures", calls, ignored)
	}
}

// convWorkload runs the convolutions of faultGeom in the order given ('f'
// forward, 'd' backward data, 'w' backward filter on the side stream) and
// returns the first error. Each operation plans its direction (an
// algorithm search) on first use.
func convWorkload(b *Backend, order string) error {
	cg := faultGeom
	all, err := b.Alloc(2*cg.XLen() + 2*cg.WLen() + 2*cg.YLen())
	if err != nil {
		return err
	}
	x, dx := all.Slice(0, cg.XLen()), all.Slice(cg.XLen(), cg.XLen())
	w, dw := all.Slice(2*cg.XLen(), cg.WLen()), all.Slice(2*cg.XLen()+cg.WLen(), cg.WLen())
	y, dy := all.Slice(2*cg.XLen()+2*cg.WLen(), cg.YLen()), all.Slice(2*cg.XLen()+2*cg.WLen()+cg.YLen(), cg.YLen())
	b.Upload(x, randn(cg.XLen(), 1))
	b.Upload(w, randn(cg.WLen(), 2))
	b.Upload(dy, randn(cg.YLen(), 3))
	for _, op := range order {
		switch op {
		case 'f':
			b.ConvForward(cg, x, w, y)
		case 'd':
			b.ConvBackwardData(cg, dy, w, dx, 0)
		case 'w':
			b.BeginSide()
			b.ConvBackwardFilter(cg, x, dy, dw, 1)
			b.EndSide()
			b.JoinSide()
		}
	}
	return b.Sync()
}

// checkConvFault checks the error of a convolution fault: it names the
// operation and want, it is sticky, and Close releases the memory.
func checkConvFault(t *testing.T, what string, b *Backend, err error, op, want string, inUse func() int, base int) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), "cuda: "+op+": ") || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v; want one of %s naming %q", what, err, op, want)
	} else if b.Err() != err || b.Sync() != err {
		t.Errorf("%s: the error is not sticky: Err %v", what, b.Err())
	}
	closeAndCheck(t, what, b, inUse, base)
}

// TestConvFaults fails the calls of the convolutions: each call up to the
// first algorithm search's scratch allocation in turn, then the search and
// what follows it one failure at a time (each search fills 64 MiB of
// simulated memory, too slow to sweep every call after it).
func TestConvFaults(t *testing.T) {
	simOnly(t)
	inUse := keepContext(t)
	for n := 1; ; n++ {
		what := fmt.Sprintf("fail@%d", n)
		base := inUse()
		b := openSim(t)
		setFaults(t, what)
		var err error
		runCaught(t, what, func() { err = convWorkload(b, "fdw") })
		setFaults(t, "")
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if n <= 5 { // the allocation and the uploads before the convolutions
			if !strings.Contains(err.Error(), injected) {
				t.Errorf("%s: %v", what, err)
			}
			closeAndCheck(t, what, b, inUse, base)
			continue
		}
		checkConvFault(t, what, b, err, "ConvForward", injected, inUse, base)
		if strings.Contains(err.Error(), fmt.Sprintf("(%d bytes)", searchWorkspace)) {
			break // the search's workspace
		}
		if n > 40 {
			t.Fatal("no algorithm search in 40 calls")
		}
	}
	for _, c := range []struct {
		spec, order, op, want string
	}{
		// Each direction's descriptors, when it is the first to use them.
		{"fail=cudnnCreateTensorDescriptor@1", "dfw", "ConvBackwardData", "descriptors of " + faultGeom.String()},
		{"fail=cudnnSetFilter4dDescriptor@1", "wfd", "ConvBackwardFilter", "cudnnSetFilter4dDescriptor"},
		// The searches of each direction.
		{"fail=cudnnFindConvolutionForwardAlgorithmEx@1", "fdw", "ConvForward", "cudnnFindConvolutionForwardAlgorithmEx"},
		{"fail=cudnnFindConvolutionBackwardDataAlgorithmEx@1", "dfw", "ConvBackwardData", "cudnnFindConvolutionBackwardDataAlgorithmEx"},
		{"fail=cudnnFindConvolutionBackwardFilterAlgorithmEx@1", "wfd", "ConvBackwardFilter", "cudnnFindConvolutionBackwardFilterAlgorithmEx"},
		// After the search: the chosen algorithm's math type (the three
		// descriptors got theirs first), the workspaces of both streams,
		// the synchronisation before the scratch is freed, the free.
		// (Backward data first: its chosen algorithm needs a workspace,
		// whereas the forward one may need none, depending on which
		// algorithms TestDNNUnsupportedFallsToTheNextAlgorithm left
		// unsupported.)
		{"fail=cudnnSetConvolutionMathType@4", "fdw", "ConvForward", "cudnnSetConvolutionMathType"},
		{"fail=cuMemAlloc_v2@4", "dfw", "ConvBackwardData", "cuDNN workspace of"},
		{"fail=cuMemAlloc_v2@5", "dfw", "ConvBackwardData", "the side stream's cuDNN workspace of"},
		{"fail=cuStreamSynchronize@2", "fdw", "ConvForward", "cuStreamSynchronize"},
		{"fail=cuMemFree_v2@1", "fdw", "Free", "cuMemFree_v2"},
		// Out of memory names what was being allocated.
		{"oom@3", "fdw", "ConvForward", "scratch buffers for the algorithm search: cuMemAlloc_v2(67108864 bytes): CUDA_ERROR_OUT_OF_MEMORY"},
		{"oom@5", "dfw", "ConvBackwardData", "the side stream's cuDNN workspace of"},
		// The convolution itself, queued after its search.
		{"fail=cudnnConvolutionForward@1", "fdw", "ConvForward", "cudnnConvolutionForward(x float NCHW"},
	} {
		base := inUse()
		b := openSim(t)
		setFaults(t, c.spec)
		var err error
		runCaught(t, c.spec, func() { err = convWorkload(b, c.order) })
		setFaults(t, "")
		checkConvFault(t, c.spec, b, err, c.op, c.want, inUse, base)
	}
}

// TestOutOfMemoryNamesTheAllocation: a failed cuMemAlloc (oom@N) is the
// error of what needed the memory.
func TestOutOfMemoryNamesTheAllocation(t *testing.T) {
	simOnly(t)
	inUse := keepContext(t)
	base := inUse()
	b := openSim(t)
	setFaults(t, "oom@1")
	if _, err := b.Alloc(1000); err == nil || !strings.Contains(err.Error(), "cuda: Alloc(1000 floats): cuMemAlloc_v2(4000 bytes): CUDA_ERROR_OUT_OF_MEMORY") {
		t.Fatalf("Alloc: %v", err)
	}
	if b.Err() != nil {
		t.Fatalf("a failed Alloc made the backend fail: %v", b.Err())
	}
	// An allocation that cannot be zeroed is not kept.
	inAlloc := inUse()
	setFaults(t, "fail=cuMemsetD32Async@1")
	if _, err := b.Alloc(1000); err == nil || !strings.Contains(err.Error(), "cuda: Alloc(1000 floats): zeroing: cuMemsetD32Async") {
		t.Fatalf("Alloc: %v", err)
	}
	if got := inUse(); got != inAlloc {
		t.Fatalf("a failed Alloc holds %d bytes", got-inAlloc)
	}
	z, err := b.Alloc(2 * 50)
	if err != nil {
		t.Fatal(err)
	}
	loss, _ := b.Alloc(1)
	setFaults(t, "oom@1")
	b.KLBatch(z, 2, 50, loss, nil, 1, 0)
	if err := b.Sync(); err == nil || !strings.Contains(err.Error(), "cuda: KLBatch: buffer of 50 KL terms: cuMemAlloc_v2(400 bytes): CUDA_ERROR_OUT_OF_MEMORY") {
		t.Fatalf("KLBatch: %v", err)
	}
	closeAndCheck(t, "KLBatch", b, inUse, base)
	// New names the part of the backend it was setting up.
	for _, c := range []struct{ spec, want string }{
		{"oom@1", "cuda: reduction buffer: cuMemAlloc_v2"},
		{"oom@2", "cuda: staging ring: cuMemAlloc_v2"},
		{"oom@3", "cuda: argument arena: cuMemAlloc_v2"},
	} {
		setFaults(t, c.spec)
		b, err := New(Options{Precision: "fp32", CacheDir: os.Getenv("PAD_KERNEL_CACHE")})
		setFaults(t, "")
		if err == nil {
			b.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "CUDA_ERROR_OUT_OF_MEMORY") {
			t.Errorf("New with %s: %v, want %q", c.spec, err, c.want)
		}
		if got := inUse(); got != base {
			t.Errorf("New with %s left %d bytes allocated", c.spec, got-base)
		}
	}
}

// TestDNNUnsupportedFallsToTheNextAlgorithm: when cuDNN reports the
// algorithm pad would choose as not supported, pad chooses another, and
// the convolution is still right.
func TestDNNUnsupportedFallsToTheNextAlgorithm(t *testing.T) {
	simOnly(t)
	b := openSim(t)
	defer b.Close()
	w := &twins{t: t, c: cpu.New(0), g: b}
	conv := func(cg backend.ConvGeom) cu.ConvFwdAlgo {
		x, wt, y := w.buf(randn(cg.XLen(), 1)), w.buf(randn(cg.WLen(), 2)), w.zeros(cg.YLen())
		w.c.ConvForward(cg, x.c, wt.c, y.c)
		w.g.ConvForward(cg, x.g, wt.g, y.g)
		w.same(fmt.Sprintf("ConvForward %v", cg), y, 1e-5)
		return b.convs[cg].fwd
	}
	first := conv(faultGeom)
	// The simulation keeps an algorithm it made unsupported so for the
	// rest of the process, whatever the faults later: a later run of this
	// test in the process starts with another choice.
	setFaults(t, fmt.Sprintf("dnn_unsupported=fwd:%d", first))
	other := backend.NewConv(3, 3, 6, 5, 4, 3, 1, 1) // a new plan, searched with the fault
	if second := conv(other); second == first {
		t.Fatalf("algorithm %v chosen although cuDNN does not support it", first)
	} else {
		t.Logf("%v unsupported: %v chosen", first, second)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestChoosePassesOverForcedAlgorithms: in FP32 mode without results
// measured with FMA math, each algorithm is tried with FMA math set; one
// that fails or needs too much workspace is passed over, and without any
// the error lists why each was.
func TestChoosePassesOverForcedAlgorithms(t *testing.T) {
	b := gpu(t) // FP32
	p := b.plan("test", faultGeom)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	perfs := []cu.AlgoPerf{
		{Algo: 1, MathType: cu.DNNTensorOpMath, Determinism: cu.Deterministic},
		{Algo: 0, MathType: cu.DNNDefaultMath, Determinism: cu.Deterministic},
		{Algo: 2, MathType: cu.DNNDefaultMath, Determinism: cu.Deterministic},
	}
	var tried []int
	try := func(algo int) (int, error) {
		tried = append(tried, algo)
		switch algo {
		case 0:
			return 0, errors.New("not supported with FMA math")
		case 2:
			return searchWorkspace + 1, nil
		}
		return 1000, nil
	}
	pf, err := b.choose(faultGeom, "forward", perfs, p.fwdDesc, try)
	if err != nil || pf.Algo != 1 || b.wsSize < 1000 || p.fwdDesc.MathType() != cu.DNNFMAMath {
		t.Fatalf("chose %+v (%v), workspace %d, math %v", pf, err, b.wsSize, p.fwdDesc.MathType())
	}
	if fmt.Sprint(tried) != "[0 2 1]" {
		t.Fatalf("tried %v, want the default-math results first, then the others", tried)
	}
	_, err = b.choose(faultGeom, "forward", perfs[1:], p.fwdDesc, try)
	if err == nil || !strings.Contains(err.Error(), "no forward algorithm for "+faultGeom.String()+" at fp32 precision among 2 candidates; passed over: algorithm 0") ||
		!strings.Contains(err.Error(), "not supported with FMA math") || !strings.Contains(err.Error(), fmt.Sprintf("needs %d bytes of workspace", searchWorkspace+1)) {
		t.Fatalf("nothing usable: %v", err)
	}
	if _, err = b.choose(faultGeom, "backward-data", nil, p.bdDesc, try); err == nil || strings.Contains(err.Error(), "passed over") {
		t.Fatalf("no results: %v", err)
	}
	// A bigger workspace replaces both streams' after the work queued on
	// them; a failed wait is the error, and the old workspaces stay.
	bigger := func(int) (int, error) { return 5000, nil }
	for _, spec := range []string{"fail=cuStreamSynchronize@1", "fail=cuStreamSynchronize@2"} {
		if !cu.SetSimFaults(spec) {
			break
		}
		_, err := b.choose(faultGeom, "forward", perfs[:1], p.fwdDesc, bigger)
		cu.SetSimFaults("")
		if err == nil || !strings.Contains(err.Error(), "cuStreamSynchronize") || !strings.Contains(err.Error(), injected) {
			t.Fatalf("%s: %v", spec, err)
		}
		if b.wsSize != 1000 || b.ws == 0 || b.side.ws == 0 {
			t.Fatalf("%s: workspace %d bytes at %#x, side %#x", spec, b.wsSize, b.ws, b.side.ws)
		}
	}
	before := b.bytes
	if _, err := b.choose(faultGeom, "forward", perfs[:1], p.fwdDesc, bigger); err != nil || b.wsSize != 5000 || b.side.ws == 0 {
		t.Fatalf("growing the workspace: %v, %d bytes", err, b.wsSize)
	}
	if b.bytes != before+2*(5000-1000) {
		t.Fatalf("%d bytes allocated, want %d", b.bytes, before+2*(5000-1000))
	}
}

// TestBrokenCaptureIsEndedByClose: when a capture cannot be ended (or the
// backend cannot tell that it was), EndGraph fails with an error matching
// errCaptureBroken, as nothing more can be issued on a capturing stream.
// Close must end the capture, or it could free nothing and every later
// backend on the thread would fail.
func TestBrokenCaptureIsEndedByClose(t *testing.T) {
	simOnly(t)
	inUse := keepContext(t)
	for _, c := range []struct{ spec, want string }{
		// cuStreamEndCapture fails: the stream is still capturing.
		{"fail=cuStreamEndCapture@1", "main stream, capture status 1; ending the capture: cuStreamEndCapture"},
		// … and the check of whether it still is fails too.
		{"fail=cuStreamEndCapture@1,fail=cuStreamIsCapturing@1", "main stream: cuStreamIsCapturing"},
		// A launch fails inside the capture, and ending it fails.
		{"fail=cuLaunchKernel@1,fail=cuStreamEndCapture@1", "cuLaunchKernel: failed (" + injected},
	} {
		base := inUse()
		g := newGraphRig(t, true)
		step := func() {
			g.b.BeginGraph()
			g.add(g.x, 1)
			g.b.BeginSide()
			g.add(g.y, 1)
			g.b.EndSide()
			g.b.EndGraph()
		}
		step() // the first run: direct
		setFaults(t, c.spec)
		step() // the capture
		setFaults(t, "")
		err := g.b.Err()
		if !errors.Is(err, errCaptureBroken) || !strings.HasPrefix(err.Error(), "cuda: EndGraph: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want errCaptureBroken naming %q", c.spec, err, c.want)
		}
		if st := g.b.GraphStats(); st.Enabled || !strings.Contains(st.Off, injected) {
			t.Errorf("%s: graphs %s", c.spec, g.b.GraphSummary())
		}
		closeAndCheck(t, c.spec, g.b, inUse, base)
		for _, s := range []cu.Stream{g.b.stream, g.b.side.stream} {
			if s != 0 {
				t.Errorf("%s: a stream was not destroyed", c.spec)
			}
		}
		// The thread is usable again.
		b := openSim(t)
		x := mustAlloc(t, b, 2, 1, 2)
		b.Scale(x, 3)
		if got := download(t, b, x); got[0] != 3 || got[1] != 6 {
			t.Errorf("%s: a new backend after the broken capture computes %v", c.spec, got)
		}
		closeAndCheck(t, c.spec, b, inUse, base)
	}
}

// TestRecorderFaultsOutsideCaptures: failures of the recorder's own calls
// when it issues directly are the operation's error: a side section's fork
// and join, the flush of a step whose arena is full, and a capture aborted
// on a backend without a side stream (which then runs the step directly).
func TestRecorderFaultsOutsideCaptures(t *testing.T) {
	simOnly(t)
	for _, c := range []struct {
		name, spec, want string
		run              func(g *graphRig)
	}{
		{"fork", "fail=cuEventRecord@1", "cuda: BeginSide: cuEventRecord", func(g *graphRig) {
			g.b.BeginSide()
		}},
		{"join before a Sync", "fail=cuStreamWaitEvent@2", "cuda: Sync: cuStreamWaitEvent", func(g *graphRig) {
			g.b.BeginSide()
			g.add(g.x, 1)
			g.b.EndSide()
			g.b.Sync()
		}},
		{"join at the end of an unrecorded step", "fail=cuEventRecord@2", "cuda: EndGraph: cuEventRecord", func(g *graphRig) {
			g.b.graphs.enabled = false // as after graphs were switched off
			g.b.BeginGraph()
			g.b.BeginSide()
			g.add(g.x, 1)
			g.b.EndGraph()
		}},
		{"flush for a key that does not fit the arena", "fail=cuMemcpyHtoDAsync_v2@1", "cuda: RandUniform: random key: cuMemcpyHtoDAsync_v2", func(g *graphRig) {
			fill := mustAlloc(g.t, g.b, arenaBytes/4)
			g.b.BeginGraph()
			g.b.Upload(fill, make([]float32, arenaBytes/4))
			g.b.RandUniform(g.r, readKey(1))
			g.b.EndGraph()
		}},
	} {
		g := newGraphRig(t, true)
		setFaults(t, c.spec)
		c.run(g)
		setFaults(t, "")
		if err := g.b.Err(); err == nil || !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), injected) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Without a side stream the capture's abort checks the main stream only.
	b := openWith(t, Options{Precision: "fp32", NoOverlap: true})
	x := mustAlloc(t, b, 1)
	one := mustAlloc(t, b, 1, 1)
	for i := range 4 {
		if i == 1 {
			setFaults(t, "fail=cuLaunchKernel@1")
		}
		b.BeginGraph()
		b.Axpby(x, one, 1, 1)
		b.EndGraph()
		setFaults(t, "")
	}
	if got := download(t, b, x); got[0] != 4 {
		t.Errorf("after 4 steps, the second's capture aborted: %v", got)
	}
	if st := b.GraphStats(); st.Enabled || !strings.Contains(st.Off, "cuLaunchKernel") || st.Direct != 2 {
		t.Errorf("graphs %s", b.GraphSummary())
	}
}
