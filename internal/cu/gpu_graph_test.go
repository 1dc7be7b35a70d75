package cu

import (
	"math"
	"testing"
)

// TestGPUGraph captures an upload, kernel launches, a memset, a
// device-to-device copy and a download into a graph, then replays it with
// new input in the pinned upload buffer each time.
func TestGPUGraph(t *testing.T) {
	dev := gpu(t)
	m := build(t, dev, testKernels, "kernels.cu")
	add, scale := function(t, m, "add"), function(t, m, "scale")
	s := newStream(t, StreamNonBlocking)
	const n = 1 << 16
	inP, in := pinned(t, n)
	outP, out := pinned(t, n)
	a, b := devAlloc(t, 4*n), devAlloc(t, 4*n)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	grid, block := [3]uint32{GridFor(n, 256), 1, 1}, [3]uint32{256, 1, 1}
	args := new(KernelArgs)

	st, err := StreamIsCapturing(s)
	must(t, err)
	if st != CaptureStatusNone {
		t.Fatalf("capture status %d before capture", st)
	}
	must(t, StreamBeginCapture(s, CaptureModeGlobal))
	st, err = StreamIsCapturing(s)
	must(t, err)
	if st != CaptureStatusActive {
		t.Errorf("capture status %d while capturing", st)
	}
	must(t, MemcpyHtoDAsync(a, inP, 4*n, s))
	for range 3 { // the arguments are copied at each launch: one block serves all
		must(t, LaunchKernelArgs(add, grid, block, 0, s, args.Reset().Ptr(a).Float32(1).Int32(n)))
	}
	must(t, LaunchKernelArgs(scale, grid, block, 0, s, args.Reset().Ptr(a).Float32(2).Int32(n)))
	must(t, MemsetD32Async(b, math.Float32bits(-1), n, s))
	must(t, MemcpyDtoDAsync(b, a, 4*(n/2), s))
	must(t, MemcpyDtoHAsync(outP, b, 4*n, s))
	g, err := StreamEndCapture(s)
	must(t, err)
	st, err = StreamIsCapturing(s)
	must(t, err)
	if st != CaptureStatusNone {
		t.Errorf("capture status %d after capture", st)
	}
	must(t, s.Synchronize())
	if !math.IsNaN(float64(out[0])) {
		t.Fatalf("captured work ran during capture: out[0] = %v", out[0])
	}
	exec, err := GraphInstantiate(g)
	must(t, err)
	defer func() {
		must(t, GraphExecDestroy(exec))
		must(t, GraphDestroy(g))
	}()

	for r := range 5 {
		for i := range in {
			in[i] = float32(i%1000) + float32(r)
		}
		must(t, GraphLaunch(exec, s))
		must(t, s.Synchronize())
		for i := range out {
			want := float32(-1)
			if i < n/2 {
				want = (in[i] + 3) * 2
			}
			if out[i] != want {
				t.Fatalf("replay %d: out[%d] = %v, want %v", r, i, out[i], want)
			}
		}
	}
	// Launch several replays back to back, then check once.
	for i := range in {
		in[i] = 0.5
	}
	for range 10 {
		must(t, GraphLaunch(exec, s))
	}
	must(t, s.Synchronize())
	if out[0] != 7 || out[n/2-1] != 7 || out[n/2] != -1 {
		t.Errorf("after 10 replays: %v %v %v", out[0], out[n/2-1], out[n/2])
	}
}

// TestGPUCaptureErrors checks that misuse of capture is reported, not
// hidden: ending a capture that never began.
func TestGPUCaptureErrors(t *testing.T) {
	gpu(t)
	s := newStream(t, StreamNonBlocking)
	_, err := StreamEndCapture(s)
	asError(t, err, "cuStreamEndCapture")
	st, err := StreamIsCapturing(s)
	must(t, err)
	if st != CaptureStatusNone {
		t.Errorf("capture status %d", st)
	}
	must(t, s.Synchronize())
}
