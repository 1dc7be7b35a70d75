package cu

// Tests that pad's simulated GPU (internal/cudasim) catches what it claims
// to: each makes one mistake a CUDA program can make and asserts the
// simulation's specific answer (an error code and its text, or stale
// data). They run only on the simulation (Simulated): on hardware these
// mistakes show only sometimes, or corrupt the process's context.

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// simGPU is gpu, on the simulation only.
func simGPU(t *testing.T) Device {
	t.Helper()
	dev := gpu(t)
	if !Simulated() {
		t.Skip("not the simulated GPU")
	}
	return dev
}

// needLazy skips a test that needs queued work to run as late as CUDA
// allows (PAD_CUDASIM_SCHEDULE unset or lazy).
func needLazy(t *testing.T) {
	t.Helper()
	if s := os.Getenv("PAD_CUDASIM_SCHEDULE"); s != "" && s != "lazy" {
		t.Skipf("PAD_CUDASIM_SCHEDULE=%s: stale reads show reliably only under the lazy schedule", s)
	}
}

// wantCode asserts that err is an *Error of call with the given code, and
// returns it (an empty one when err is nil, so that the test goes on and
// cleans up: a capture left open would break the tests after it).
func wantCode(t *testing.T, err error, call string, code Result) *Error {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", call, resultNames[code][0])
		return &Error{}
	}
	e := asError(t, err, call)
	if e.Code != int(code) || e.Name != resultNames[code][0] {
		t.Errorf("%s: %v (code %d), want %s", call, err, e.Code, resultNames[code][0])
	}
	return e
}

// TestSimPinnedReadBeforeSync: the host reads a pinned buffer that an
// async copy fills before the copy's stream was synchronised, and sees the
// old contents; a pinned buffer an async copy reads, overwritten by the
// host before the synchronisation, is copied with the new contents.
func TestSimPinnedReadBeforeSync(t *testing.T) {
	simGPU(t)
	needLazy(t)
	const n = 4096
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i) + 0.5
	}
	src := upload(t, vals)
	s := newStream(t, StreamNonBlocking)

	// Device to host: read before the synchronisation.
	dstP, dst := pinned(t, n)
	for i := range dst {
		dst[i] = -7
	}
	must(t, MemcpyDtoHAsync(dstP, src, 4*n, s))
	stale := 0
	for _, v := range dst {
		if v == -7 {
			stale++
		}
	}
	if stale != n {
		t.Errorf("read before the stream was synchronised: %d of %d values stale, want all: the simulation ran the copy early", stale, n)
	}
	must(t, s.Synchronize())
	for i, v := range dst {
		if v != vals[i] {
			t.Fatalf("after Synchronize: value %d = %v, want %v", i, v, vals[i])
		}
	}

	// Host to device: the host overwrites the source before the
	// synchronisation; the copy reads it when it runs.
	hostP, host := pinned(t, n)
	copy(host, vals)
	dev := devAlloc(t, 4*n)
	must(t, MemcpyHtoDAsync(dev, hostP, 4*n, s))
	for i := range host {
		host[i] = 99
	}
	must(t, s.Synchronize())
	got := download(t, dev, n)
	late := 0
	for _, v := range got {
		if v == 99 {
			late++
		}
	}
	if late != n {
		t.Errorf("source overwritten before the stream was synchronised: the device holds %d of %d overwritten values, want all", late, n)
	}
}

// TestSimDNNWorkspaceTooSmall: a convolution given less workspace than its
// algorithm needs fails, whether the size passed says so or the buffer is
// smaller than the size passed; the handle works afterwards.
func TestSimDNNWorkspaceTooSmall(t *testing.T) {
	simGPU(t)
	d := dnnHandle(t)
	f := newConvFixture(t, d, convCases[0], DNNFMAMath, rand.New(rand.NewPCG(21, 22)))
	need, err := d.ForwardWorkspaceSize(f.xd, f.wd, f.conv, f.yd, ConvFwdGemm)
	must(t, err)
	if need < 8 {
		t.Fatalf("GEMM needs %d bytes of workspace: want an algorithm that needs some", need)
	}
	dnnCode := func(e *Error, want DNNStatus) {
		t.Helper()
		if e.Code != int(want) || e.Name != dnnStatusNames[want] {
			t.Errorf("%v (code %d), want %s", e, e.Code, dnnStatusNames[want])
		}
	}

	// The size passed is one byte short.
	err = d.ConvForward(1, f.xd, f.xP, f.wd, f.wP, f.conv, ConvFwdGemm, f.ws, need-1, 0, f.yd, f.yP)
	e := asError(t, err, "cudnnConvolutionForward(")
	dnnCode(e, DNNStatusBadParam)
	if want := "needs " + strconv.Itoa(need) + " bytes of workspace"; !strings.Contains(e.Message, want) {
		t.Errorf("message %q lacks %q", e.Message, want)
	}

	// The size passed is right, the buffer half as big.
	small := devAlloc(t, need/2)
	err = d.ConvForward(1, f.xd, f.xP, f.wd, f.wP, f.conv, ConvFwdGemm, small, need, 0, f.yd, f.yP)
	e = asError(t, err, "cudnnConvolutionForward(")
	dnnCode(e, DNNStatusBadParam)
	if !strings.Contains(e.Message, "workSpace") || !strings.Contains(e.Message, "not inside one live device allocation") {
		t.Errorf("message %q does not name the workspace as outside its allocation", e.Message)
	}

	// Backward filter, size one byte short.
	needBF, err := d.BackwardFilterWorkspaceSize(f.xd, f.yd, f.conv, f.wd, ConvBwdFilterAlgo1)
	must(t, err)
	if needBF > 0 {
		err = d.ConvBackwardFilter(1, f.xd, f.xP, f.yd, f.dyP, f.conv, ConvBwdFilterAlgo1, f.ws, needBF-1, 0, f.wd, f.dwP)
		dnnCode(asError(t, err, "cudnnConvolutionBackwardFilter("), DNNStatusBadParam)
	} else {
		t.Logf("backward filter ALGO_1 needs no workspace here")
	}

	// Nothing ran; the handle and the context still work.
	if e, ran := f.runForward(t, ConvFwdGemm); !ran || e > 1e-4 {
		t.Errorf("after the errors: GEMM forward ran %v, error %.3g", ran, e)
	}
	must(t, Synchronize())
}

// TestSimSyncInsideCapture: synchronising a capturing stream is not
// allowed (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) and invalidates the
// capture, whose end then fails (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
// the stream works afterwards.
func TestSimSyncInsideCapture(t *testing.T) {
	simGPU(t)
	for _, how := range []string{"cuStreamSynchronize", "cuStreamQuery"} {
		t.Run(how, func(t *testing.T) {
			simGPU(t) // each subtest runs on its own goroutine
			s := newStream(t, StreamNonBlocking)
			buf := devAlloc(t, 4*256)
			must(t, StreamBeginCapture(s, CaptureModeGlobal))
			must(t, MemsetD32Async(buf, math.Float32bits(3), 256, s))
			var err error
			if how == "cuStreamSynchronize" {
				err = s.Synchronize()
			} else {
				_, err = s.Query()
			}
			wantCode(t, err, how, ResultStreamCaptureUnsupported)
			g, err := StreamEndCapture(s)
			wantCode(t, err, "cuStreamEndCapture", ResultStreamCaptureInvalidated)
			if g != 0 {
				t.Errorf("an invalidated capture produced a graph")
				GraphDestroy(g)
			}
			st, err := StreamIsCapturing(s)
			must(t, err)
			if st != CaptureStatusNone {
				t.Errorf("after the failed capture: capture status %d", st)
			}
			// The error is not sticky: the stream runs work again.
			must(t, MemsetD32Async(buf, math.Float32bits(5), 256, s))
			must(t, s.Synchronize())
			if got := download(t, buf, 256); got[0] != 5 || got[255] != 5 {
				t.Errorf("after the failed capture: %v %v, want 5", got[0], got[255])
			}
		})
	}
}

// TestSimUseAfterFree: copies to and from freed device memory, and freeing
// it again, are errors naming the mistake; the context keeps working.
func TestSimUseAfterFree(t *testing.T) {
	simGPU(t)
	p, err := MemAlloc(4 * 1000)
	must(t, err)
	must(t, CopyHtoD(p, make([]float32, 1000)))
	must(t, MemFree(p))

	e := wantCode(t, CopyHtoD(p, make([]float32, 10)), "cuMemcpyHtoD", ResultInvalidValue)
	if !strings.Contains(e.Message, "use after free") {
		t.Errorf("copy to freed memory: message %q lacks \"use after free\"", e.Message)
	}
	e = wantCode(t, CopyDtoH(make([]float32, 10), p), "cuMemcpyDtoH", ResultInvalidValue)
	if !strings.Contains(e.Message, "use after free") {
		t.Errorf("copy from freed memory: message %q lacks \"use after free\"", e.Message)
	}
	s := newStream(t, StreamNonBlocking)
	e = wantCode(t, MemsetD32Async(p, 0, 10, s), "cuMemsetD32Async", ResultInvalidValue)
	if !strings.Contains(e.Message, "use after free") {
		t.Errorf("memset of freed memory: message %q lacks \"use after free\"", e.Message)
	}
	e = wantCode(t, MemFree(p), "cuMemFree_v2", ResultInvalidValue)
	if !strings.Contains(e.Message, "double free") {
		t.Errorf("double free: message %q lacks \"double free\"", e.Message)
	}
	// An interior pointer is not an allocation either.
	q := devAlloc(t, 4*100)
	e = wantCode(t, MemFree(q.Offset(16)), "cuMemFree_v2", ResultInvalidValue)
	if !strings.Contains(e.Message, "interior pointer") {
		t.Errorf("free of an interior pointer: message %q", e.Message)
	}
	// None of these is sticky.
	must(t, s.Synchronize())
	must(t, Synchronize())
	if got := download(t, upload(t, []float32{1, 2, 3}), 3); got[2] != 3 {
		t.Errorf("context broken after the errors: %v", got)
	}
}

// simChildEnv runs a sticky-error test's body in a child process (the
// error would leave this process's context unusable for the other tests).
const simChildEnv = "PAD_CU_SIM_CHILD"

// inChild runs test name in a child process with simChildEnv=name and
// returns its output; it reports whether this process is the child (the
// caller then runs the body).
func inChild(t *testing.T, name string) (child bool, out string) {
	t.Helper()
	if os.Getenv(simChildEnv) == name {
		return true, ""
	}
	simGPU(t)
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), simChildEnv+"="+name)
	b, err := cmd.CombinedOutput()
	out = string(b)
	if err != nil {
		t.Fatalf("the child process failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "--- PASS: "+name) {
		t.Fatalf("the child process did not pass %s:\n%s", name, out)
	}
	return false, out
}

// childKernel compiles and loads pokeSrc in a child process, with no
// clean-up: after the sticky error every call fails, and the process ends.
func childKernel(t *testing.T) Function {
	t.Helper()
	dev := simGPU(t)
	needLib(t, LoadNVRTC)
	major, minor, err := dev.ComputeCapability()
	must(t, err)
	cubin, _, err := Compile(pokeSrc, "poke.cu", []string{ArchFlag(major, minor)})
	must(t, err)
	m, err := ModuleLoadData(cubin)
	must(t, err)
	f, err := m.Function("poke_past_end")
	must(t, err)
	return f
}

const pokeSrc = `
extern "C" __global__ void poke_past_end(float* p, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = 1.0f;
}
`

// TestSimKernelWritesPastBuffer: a kernel told the buffer has n+1 floats
// writes one past the end of the n it has: the synchronisation fails with
// CUDA_ERROR_ILLEGAL_ADDRESS naming the kernel, and the error is sticky.
// In a child process.
func TestSimKernelWritesPastBuffer(t *testing.T) {
	if child, out := inChild(t, "TestSimKernelWritesPastBuffer"); !child {
		for _, want := range []string{"CUDA_ERROR_ILLEGAL_ADDRESS", "poke_past_end"} {
			if !strings.Contains(out, want) {
				t.Errorf("child output lacks %q:\n%s", want, out)
			}
		}
		return
	}
	f := childKernel(t)
	for _, n := range []int{1000, 1024} {
		buf, err := MemAlloc(4 * n)
		must(t, err)
		// n floats: in bounds, fine.
		ptr, nn := uint64(buf), int32(n)
		must(t, LaunchKernel(f, [3]uint32{GridFor(n+1, 256), 1, 1}, [3]uint32{256, 1, 1}, 0, 0, unsafe.Pointer(&ptr), unsafe.Pointer(&nn)))
		must(t, Synchronize())
		must(t, MemFree(buf))
	}
	n := 1000
	buf, err := MemAlloc(4 * n)
	must(t, err)
	ptr, n1 := uint64(buf), int32(n+1)
	// The launch itself is accepted: the write happens when the kernel runs.
	must(t, LaunchKernel(f, [3]uint32{GridFor(n+1, 256), 1, 1}, [3]uint32{256, 1, 1}, 0, 0, unsafe.Pointer(&ptr), unsafe.Pointer(&n1)))
	err = Synchronize()
	e := wantCode(t, err, "cuCtxSynchronize", ResultIllegalAddress)
	for _, want := range []string{"kernel poke_past_end", "wrote 4 bytes past the end", "4000 bytes"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("error %q lacks %q", e.Error(), want)
		}
	}
	// Sticky: the next call fails the same way.
	err = Synchronize()
	wantCode(t, err, "cuCtxSynchronize", ResultIllegalAddress)
}

// TestSimKernelUsesFreedBuffer: a kernel launched on freed memory fails
// with CUDA_ERROR_ILLEGAL_ADDRESS naming the kernel and the use after free
// (sticky: in a child process).
func TestSimKernelUsesFreedBuffer(t *testing.T) {
	if child, out := inChild(t, "TestSimKernelUsesFreedBuffer"); !child {
		if !strings.Contains(out, "use after free") {
			t.Errorf("child output lacks \"use after free\":\n%s", out)
		}
		return
	}
	f := childKernel(t)
	buf, err := MemAlloc(4 * 64)
	must(t, err)
	must(t, MemFree(buf))
	ptr, n := uint64(buf), int32(64)
	err = LaunchKernel(f, [3]uint32{1, 1, 1}, [3]uint32{64, 1, 1}, 0, 0, unsafe.Pointer(&ptr), unsafe.Pointer(&n))
	if err == nil {
		err = Synchronize()
	}
	e := asError(t, err, "cu")
	if e.Code != int(ResultIllegalAddress) {
		t.Errorf("kernel on freed memory: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
	}
	for _, want := range []string{"poke_past_end", "use after free"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("error %q lacks %q", e.Error(), want)
		}
	}
}
