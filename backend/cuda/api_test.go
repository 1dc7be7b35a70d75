package cuda

// The backend's accessors, its argument checks (every error names the
// operation and the operand) and its sticky error (after the first one,
// operations do nothing).

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
)

// mustAlloc allocates n values and uploads v (if given).
func mustAlloc(t *testing.T, b *Backend, n int, v ...float32) backend.Buf {
	t.Helper()
	x, err := b.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		b.Upload(x, v)
	}
	return x
}

// download returns the values of x.
func download(t *testing.T, b *Backend, x backend.Buf) []float32 {
	t.Helper()
	v := make([]float32, x.Len())
	b.Download(v, x)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	return v
}

func openWith(t *testing.T, o Options) *Backend {
	t.Helper()
	o.CacheDir = os.Getenv("PAD_KERNEL_CACHE")
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestAccessors(t *testing.T) {
	b := gpu(t)
	if name := b.Name(); !strings.HasPrefix(name, "cuda ") || !strings.Contains(name, "(sm_") || !strings.HasSuffix(name, ", fp32, graphs, 2 streams)") {
		t.Errorf("Name %q", name)
	}
	if b.Stream() == 0 || b.Stream() != b.stream {
		t.Errorf("Stream %#x", b.Stream())
	}
	if names := b.Kernels().Names(); !slices.Contains(names, "pad_adam") || !slices.Contains(names, "pad_rand_uniform") {
		t.Errorf("Kernels: %v", names)
	}
	peak, what := b.PeakMemory()
	if what != "device, pad's allocations" || peak <= 0 {
		t.Errorf("PeakMemory %d, %q", peak, what)
	}
	big := mustAlloc(t, b, 1<<20)
	peak1, _ := b.PeakMemory()
	b.Free(big)
	if peak2, _ := b.PeakMemory(); peak1 < peak+4<<20 || peak2 != peak1 {
		t.Errorf("PeakMemory %d before, %d with 4 MiB more, %d after freeing it", peak, peak1, peak2)
	}
	if x, err := b.Alloc(-1); err == nil || x != nil || !strings.Contains(err.Error(), "Alloc(-1): negative size") {
		t.Errorf("Alloc(-1): %v", err)
	}
	if h, err := b.HostBuffer(0); h != nil || err != nil {
		t.Errorf("HostBuffer(0): %v, %v", h, err)
	}

	// Views share their parent's memory.
	x := mustAlloc(t, b, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	s := x.Slice(3, 4)
	if got := download(t, b, s); !reflect.DeepEqual(got, []float32{3, 4, 5, 6}) || s.Len() != 4 {
		t.Errorf("Slice(3, 4): %v", got)
	}
	b.Fill(s.Slice(1, 2), -1)
	if got := download(t, b, x); !reflect.DeepEqual(got, []float32{0, 1, 2, 3, -1, -1, 6, 7, 8, 9}) {
		t.Errorf("after filling a view of a view: %v", got)
	}
	if Ptr(s) != Ptr(x).Offset(12) || Ptr(x) == 0 {
		t.Errorf("Ptr of the view %#x, of the buffer %#x", Ptr(s), Ptr(x))
	}
	c, _ := cpu.New(0).Alloc(3)
	if Ptr(c) != 0 {
		t.Error("Ptr of a CPU buffer is not 0")
	}
	for _, r := range [][2]int{{8, 3}, {-1, 1}, {0, -1}, {11, 0}} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), fmt.Sprintf("Slice(%d, %d) of a buffer of 10 values", r[0], r[1])) {
					t.Errorf("Slice(%d, %d): panic %v", r[0], r[1], p)
				}
			}()
			x.Slice(r[0], r[1])
		}()
	}

	// The precision sets the convolutions' math type.
	if m := b.plan("test", faultGeom).fwdDesc.MathType(); m != cu.DNNFMAMath {
		t.Errorf("fp32: math %v", m)
	}
	tf := openWith(t, Options{})
	if !strings.Contains(tf.Name(), ", tf32, graphs, 2 streams)") {
		t.Errorf("default Name %q", tf.Name())
	}
	if m := tf.plan("test", faultGeom).fwdDesc.MathType(); m != cu.DNNTensorOpMath {
		t.Errorf("tf32: math %v", m)
	}
	if err := tf.Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := New(Options{Precision: "fp16"}); err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `precision "fp16": want tf32 or fp32`) {
		t.Errorf("precision fp16: %v", err)
	}
	if _, err := New(Options{Device: 7}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "device 7 requested") {
		t.Errorf("device 7: %v", err)
	}
}

// Without graphs and without a second stream the side sections do nothing
// (the work runs on the main stream) and graphs are off.
func TestPlainBackend(t *testing.T) {
	runtime.LockOSThread()
	b := openWith(t, Options{Precision: "fp32", NoGraphs: true, NoOverlap: true})
	if !strings.HasSuffix(b.Name(), ", fp32)") {
		t.Errorf("Name %q", b.Name())
	}
	x := mustAlloc(t, b, 3, 1, 2, 3)
	b.BeginGraph()
	b.BeginSide()
	b.Scale(x, 2)
	b.EndSide()
	b.JoinSide()
	b.EndGraph()
	if got := download(t, b, x); !reflect.DeepEqual(got, []float32{2, 4, 6}) {
		t.Errorf("values %v", got)
	}
	if b.GraphSummary() != "off" || b.graphs.sideOpen {
		t.Errorf("graphs %q, side open %v", b.GraphSummary(), b.graphs.sideOpen)
	}
	b.Close()
	b.Free(x) // after Close: nothing left to free, no graphs to flush
	if err := b.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestBadArgumentsNameTheOperation: a wrong operand is the backend's error,
// naming the operation and the operand. (Each case starts with the error
// cleared, which only a test may do.)
func TestBadArgumentsNameTheOperation(t *testing.T) {
	b := gpu(t)
	x1, x3, x4 := mustAlloc(t, b, 1), mustAlloc(t, b, 3), mustAlloc(t, b, 4)
	c, _ := cpu.New(0).Alloc(4)
	h := backend.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	seg := func(off, n, step int) []backend.AdamSegment {
		return []backend.AdamSegment{{Off: off, Len: n, Step: step}}
	}
	cg := backend.NewConv(1, 1, 4, 4, 1, 3, 1, 1)
	for _, c := range []struct {
		op   func()
		want string
	}{
		{func() { b.Upload(c, []float32{1, 2, 3, 4}) }, "Upload: dst is not a CUDA buffer (*cpu."},
		{func() { b.Upload(x4, []float32{1, 2, 3}) }, "Upload: dst holds 4 values, want 3"},
		{func() { b.Download(make([]float32, 3), x4) }, "Download: src holds 4 values, want 3"},
		{func() { b.Copy(x4, c) }, "Copy: src is not a CUDA buffer"},
		{func() { b.Fill(c, 1) }, "Fill: dst is not a CUDA buffer"},
		{func() { b.LeakyReLU(c, 0.2) }, "LeakyReLU: x is not a CUDA buffer"},
		{func() { b.LeakyReLUBackward(x4, x3, 0.2) }, "LeakyReLUBackward: dy holds 3 values, want 4"},
		{func() { b.Tanh(nil) }, "Tanh: x is not a CUDA buffer (<nil>)"},
		{func() { b.TanhBackward(x4, x3) }, "TanhBackward: dy holds 3 values, want 4"},
		{func() { b.Sigmoid(c) }, "Sigmoid: x is not a CUDA buffer"},
		{func() { b.SigmoidBackward(x4, x3) }, "SigmoidBackward: dy holds 3 values, want 4"},
		{func() { b.Scale(c, 2) }, "Scale: x is not a CUDA buffer"},
		{func() { b.Axpby(x3, x4, 1, 1) }, "Axpby: y holds 3 values, want 4"},
		{func() { b.LatentMix(x4, x4, x3, nil, 1, 1, 0) }, "LatentMix: zOld holds 3 values, want 4"},
		{func() { b.ApplyMask(x4, x3, 1, 1, 4, false) }, "ApplyMask: mask holds 3 values, want 4"},
		{func() { b.ApplyMask(x4, x4, 2, 1, 2, true) }, ""}, // per image: 2·2 values, right
		{func() { b.BiasAdd(x4, x3, 1, 2, 2) }, "BiasAdd: b holds 3 values, want 2"},
		{func() { b.BiasAct(x4, x3, 1, 2, 2, backend.ActTanh, 0) }, "BiasAct: b holds 3 values, want 2"},
		{func() { b.BiasGrad(x4, x3, 1, 2, 2, 0) }, "BiasGrad: db holds 3 values, want 2"},
		{func() { b.MSE(x4, x4, x3, nil, 1) }, "MSE: loss holds 3 values, want 1"},
		{func() { b.BCE(x4, 1, x1, x3, 1) }, "BCE: grad holds 3 values, want 4"},
		{func() { b.KLBatch(x4, 2, 2, x1, x3, 1, 0) }, "KLBatch: grad holds 3 values, want 4"},
		{func() { b.Mean(x4, x3) }, "Mean: out holds 3 values, want 1"},
		{func() { b.RowNormMean(x4, 2, 2, x3) }, "RowNormMean: out holds 3 values, want 1"},
		{func() { b.RandNormal(c, rng.Key{}) }, "RandNormal: dst is not a CUDA buffer"},
		{func() { b.RandUniform(c, rng.Key{}) }, "RandUniform: dst is not a CUDA buffer"},
		{func() { b.OcclusionMask(x4, backend.Occlusion{H: 0, W: 2, Masks: 1, Tile: 1}) }, "OcclusionMask: occlusion: mask size 0x2"},
		{func() { b.OcclusionMask(x3, backend.Occlusion{H: 2, W: 2, Masks: 1, Tile: 1}) }, "OcclusionMask: mask holds 3 values, want 4"},
		{func() { b.Adam(x4, x3, x4, x4, seg(0, 4, 1), h) }, "Adam: g holds 3 values, want 4"},
		{func() { b.Adam(x4, x4, x4, x4, make([]backend.AdamSegment, adamMaxSegs+1), h) }, "Adam: 65 segments, at most 64"},
		{func() { b.Adam(x4, x4, x4, x4, seg(2, 3, 1), h) }, "Adam: segment {Off:2 Len:3 Step:1} outside a buffer of 4 values"},
		{func() { b.Adam(x4, x4, x4, x4, seg(0, 4, 0), h) }, "Adam: segment {Off:0 Len:4 Step:0}"},
		{func() { b.Adam(x4, x4, x4, x4, nil, h) }, ""}, // no segments: nothing to do
		{func() { b.ConvForward(cg, x4, x4, x4) }, "ConvForward: x holds 4 values, want 16"},
		{func() { b.ConvBackwardData(cg, x4, x4, x4, 0) }, "ConvBackwardData: dy holds 4 values, want 16"},
		{func() { b.ConvBackwardFilter(cg, x4, x4, x4, 0) }, "ConvBackwardFilter: x holds 4 values, want 16"},
		{func() { b.ConvForward(backend.ConvGeom{}, mustAlloc(t, b, 0), mustAlloc(t, b, 0), mustAlloc(t, b, 0)) }, "ConvForward: conv geometry"},
		{func() { b.UploadAsync(x4, []float32{1, 2, 3}, 0) }, "UploadAsync: dst holds 4 values, want 3"},
		{func() { b.UploadAsync(x4, []float32{1, 2, 3, 4}, 1<<40) }, "UploadAsync: fence 1099511627776 was never handed out"},
		{func() { b.DownloadAsync(make([]float32, 3), x4) }, "DownloadAsync: src holds 4 values, want 3"},
		{func() { b.Wait(1 << 40) }, "Wait: fence 1099511627776 was never handed out"},
	} {
		b.err = nil
		c.op()
		err := b.Err()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("unexpected error %v", err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), "cuda: "+c.want)):
			t.Errorf("error %v, want %q", err, "cuda: "+c.want)
		}
	}
	b.err = nil
	// Empty operands are no operations.
	x0 := mustAlloc(t, b, 0)
	b.Upload(x0, nil)
	b.Download(nil, x0)
	b.Fill(x0, 1)
	b.Copy(x0, x0)
	b.Mean(x0, x1)
	b.RowNormMean(x0, 0, 3, x1)
	b.UploadAsync(x0, nil, 0)
	if f := b.DownloadAsync(nil, x0); f != 0 {
		t.Errorf("DownloadAsync of nothing: fence %d", f)
	}
	if err := b.Wait(0); err != nil {
		t.Errorf("Wait(0): %v", err)
	}
	// The backend works: the checks queued nothing.
	b.Upload(x3, []float32{1, 2, 3})
	b.Scale(x3, 2)
	if got := download(t, b, x3); !reflect.DeepEqual(got, []float32{2, 4, 6}) {
		t.Errorf("after the checks: %v", got)
	}
}

// TestStickyErrorStopsEveryOperation: after the first error, every
// operation does nothing (the simulated driver's counters stay as they
// were: no launch, copy, memset, event or synchronisation), and Sync, Err
// and Wait return that first error.
func TestStickyErrorStopsEveryOperation(t *testing.T) {
	b := gpu(t)
	if !cu.Simulated() {
		t.Skip("the simulated driver counts what the host asked for")
	}
	cg := backend.NewConv(1, 1, 4, 4, 1, 3, 1, 1)
	x, y, w, one := mustAlloc(t, b, 16), mustAlloc(t, b, 16), mustAlloc(t, b, 9), mustAlloc(t, b, 1)
	host, err := b.HostBuffer(16)
	if err != nil {
		t.Fatal(err)
	}
	b.Copy(x, w) // 9 values into 16
	first := b.Err()
	if first == nil || !strings.Contains(first.Error(), "cuda: Copy: dst holds 16 values, want 9") {
		t.Fatalf("the first error: %v", first)
	}
	before := b.SimCounters()
	dst := []float32{-7}
	h := backend.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	key := rng.Key{Seed: 1}
	b.Upload(x, make([]float32, 16))
	b.Download(dst, one)
	b.Copy(x, y)
	b.Fill(x, 1)
	b.ConvForward(cg, x, w, y)
	b.ConvBackwardData(cg, y, w, x, 0)
	b.ConvBackwardFilter(cg, x, y, w, 0)
	b.BiasAdd(x, one, 16, 1, 1)
	b.BiasAct(x, one, 16, 1, 1, backend.ActSigmoid, 0)
	b.BiasGrad(x, one, 16, 1, 1, 0)
	b.LeakyReLU(x, 0.2)
	b.LeakyReLUBackward(x, y, 0.2)
	b.Tanh(x)
	b.TanhBackward(x, y)
	b.Sigmoid(x)
	b.SigmoidBackward(x, y)
	b.Scale(x, 2)
	b.Axpby(x, y, 1, 1)
	b.LatentMix(x, y, nil, nil, 1, 0, 0)
	b.ApplyMask(x, y, 1, 1, 16, false)
	b.MSE(x, y, one, nil, 1)
	b.BCE(x, 1, one, nil, 1)
	b.KLBatch(x, 2, 8, one, nil, 1, 0)
	b.Mean(x, one)
	b.RowNormMean(x, 4, 4, one)
	b.RandNormal(x, key)
	b.RandUniform(x, key)
	b.OcclusionMask(x, backend.Occlusion{H: 4, W: 4, Masks: 1, P: 0.5, Tile: 2, Key: key})
	b.Adam(x, y, x, y, []backend.AdamSegment{{Off: 0, Len: 16, Step: 1}}, h)
	b.BeginGraph()
	b.Scale(x, 2)
	b.EndGraph()
	b.BeginSide()
	b.Scale(x, 2)
	b.EndSide()
	b.JoinSide()
	if f := b.Fence(); f != 0 {
		t.Errorf("Fence after the error: %d", f)
	}
	b.UploadAsync(x, host, 0)
	if f := b.DownloadAsync(host, x); f != 0 {
		t.Errorf("DownloadAsync after the error: %d", f)
	}
	if err := b.Wait(0); err != first {
		t.Errorf("Wait: %v", err)
	}
	if err := b.Sync(); err != first || b.Err() != first {
		t.Errorf("Sync: %v, Err: %v; want the first error", err, b.Err())
	}
	if after := b.SimCounters(); !reflect.DeepEqual(after, before) {
		t.Errorf("operations after the error reached the driver:\nbefore %v\nafter  %v", before, after)
	}
	if dst[0] != -7 {
		t.Errorf("Download after the error wrote %v", dst[0])
	}
}

// TestStagingRingWaitsForTheOldestCopy: outside recorded steps the random keys go
// through the staging ring; once stageMarks copies are in flight, each new
// one waits for the oldest, and its bytes are rewritten only after the copy
// that read them ran (the simulation runs copies as late as it may, so
// bytes rewritten too early would give the wrong numbers); a failed wait
// is the operation's error.
func TestStagingRingWaitsForTheOldestCopy(t *testing.T) {
	b := gpu(t)
	const n = stageMarks + 6
	x := mustAlloc(t, b, 4*n)
	for i := range n {
		b.RandUniform(x.Slice(4*i, 4), readKey(i))
	}
	got := download(t, b, x)
	for i := range n {
		if want := uniform(4, readKey(i)); !sameBits(got[4*i:4*i+4], want) {
			t.Fatalf("key %d: %v, want %v", i, got[4*i:4*i+4], want)
		}
	}
	if !cu.SetSimFaults("fail=cuEventSynchronize@1") {
		return
	}
	defer cu.SetSimFaults("")
	b.RandUniform(x, readKey(0)) // stageMarks copies in flight: the wait for the oldest fails
	if err := b.Sync(); err == nil || !strings.Contains(err.Error(), "cuda: RandUniform: random key: cuEventSynchronize") {
		t.Fatalf("a failed slot wait: %v", err)
	}
}
