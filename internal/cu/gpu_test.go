package cu

// The GPU tests run on the GPU where one is expected (testkit.GPUExpected:
// /dev/nvidia0 exists, or PAD_REQUIRE_GPU=1) and fail there if it cannot
// be used; elsewhere they run on pad's simulated NVIDIA stack
// (internal/cudasim, built by TestMain with the system's C++ compiler),
// and skip only where PAD_CUDASIM=off or no C++ compiler exists. Build them here
// and run them on the GPU machine:
//
//	CGO_ENABLED=0 go test -c -o bin/cu.test ./internal/cu
//	./bin/cu.test -test.v                  # everything
//	./bin/cu.test -test.v -test.run GPU    # the GPU tests only
//
// Each test runs on its own goroutine, so each locks that goroutine to its
// OS thread and makes the primary context current there (gpu below).

import (
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/pad-dreaming/pad/internal/testkit"
)

var testGPU struct {
	once sync.Once
	dev  Device
	ctx  *Context
	err  error
}

func TestMain(m *testing.M) {
	code := testkit.MainWithSimulatedGPU(m)
	if testGPU.ctx != nil {
		testGPU.ctx.Release()
	}
	os.Exit(code)
}

// gpu locks the test to its OS thread, skips the test without a GPU (fails
// it where one is expected), and makes device 0's primary context current.
func gpu(t *testing.T) Device {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	if err := Init(); err != nil {
		testkit.SkipOrFailNoGPU(t, err)
	}
	testGPU.once.Do(func() {
		testGPU.dev, testGPU.err = DeviceGet(0)
		if testGPU.err == nil {
			testGPU.ctx, testGPU.err = testGPU.dev.RetainPrimaryContext()
		}
	})
	if testGPU.err != nil {
		t.Fatalf("device 0: %v", testGPU.err)
	}
	if err := testGPU.ctx.SetCurrent(); err != nil {
		t.Fatalf("SetCurrent: %v", err)
	}
	return testGPU.dev
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// devAlloc allocates device memory freed when the test ends (on the test's
// locked thread, before it is unlocked).
func devAlloc(t *testing.T, bytes int) DevicePtr {
	t.Helper()
	p, err := MemAlloc(bytes)
	must(t, err)
	t.Cleanup(func() {
		if err := MemFree(p); err != nil {
			t.Errorf("MemFree: %v", err)
		}
	})
	return p
}

// upload copies a float32 slice to new device memory.
func upload(t *testing.T, v []float32) DevicePtr {
	t.Helper()
	p := devAlloc(t, 4*len(v))
	must(t, CopyHtoD(p, v))
	return p
}

func download(t *testing.T, p DevicePtr, n int) []float32 {
	t.Helper()
	v := make([]float32, n)
	must(t, CopyDtoH(v, p))
	return v
}

func pinned(t *testing.T, n int) (unsafe.Pointer, []float32) {
	t.Helper()
	p, err := MemHostAlloc(4*n, HostAllocPortable)
	must(t, err)
	t.Cleanup(func() {
		if err := MemFreeHost(p); err != nil {
			t.Errorf("MemFreeHost: %v", err)
		}
	})
	return p, HostFloat32s(p, n)
}

func newStream(t *testing.T, flags StreamFlags) Stream {
	t.Helper()
	s, err := StreamCreate(flags)
	must(t, err)
	t.Cleanup(func() {
		if err := s.Destroy(); err != nil {
			t.Errorf("Stream.Destroy: %v", err)
		}
	})
	return s
}

// needLib skips a test when a library is missing, or fails it where a GPU
// is expected: pad needs them all there.
func needLib(t *testing.T, load func() error) {
	t.Helper()
	if err := load(); err != nil {
		testkit.SkipOrFailNoGPU(t, err)
	}
}

// build compiles CUDA source to CUBIN for the device and loads it.
func build(t *testing.T, dev Device, src, name string) *Module {
	t.Helper()
	needLib(t, LoadNVRTC)
	major, minor, err := dev.ComputeCapability()
	must(t, err)
	cubin, log, err := Compile(src, name, []string{ArchFlag(major, minor)})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	if log != "" {
		t.Logf("%s: compiler log: %s", name, log)
	}
	m, err := ModuleLoadData(cubin)
	must(t, err)
	t.Cleanup(func() {
		if err := m.Unload(); err != nil {
			t.Errorf("Unload: %v", err)
		}
	})
	return m
}

func function(t *testing.T, m *Module, name string) Function {
	t.Helper()
	f, err := m.Function(name)
	must(t, err)
	return f
}

// asError asserts that err is an *Error whose Call starts with call.
func asError(t *testing.T, err error, call string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *Error from %s, got %T %v", call, err, err)
	}
	if !strings.HasPrefix(e.Call, call) {
		t.Errorf("error names %q, want %s", e.Call, call)
	}
	if e.Name == "" || e.Code == 0 {
		t.Errorf("error lacks a status: %+v", e)
	}
	t.Logf("expected error: %v", err)
	return e
}

// maxRelErr returns the largest |got-want|/scale and its index; scale is
// the sum of the magnitudes of the terms behind each value, so rounding
// errors of a correct result stay near the precision of the arithmetic.
func maxRelErr(got []float32, want, scale []float64) (float64, int) {
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		s := scale[i]
		if s < 1e-30 {
			s = 1e-30
		}
		e := d / s
		if math.IsNaN(float64(got[i])) {
			e = math.Inf(1)
		}
		if e > worst || at < 0 {
			worst, at = e, i
		}
	}
	return worst, at
}
