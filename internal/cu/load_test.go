package cu

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// noSimChildEnv names the test a child process runs without the simulated
// NVIDIA stack (see rerunWithoutSimulation).
const noSimChildEnv = "PAD_CU_NO_SIM_CHILD"

// rerunWithoutSimulation is for the tests of machines without a GPU or
// without NVIDIA's libraries: they need a process that has not loaded the
// libraries they are about, and on the simulation (which TestMain sets up
// for the GPU tests) this one has. There it runs test name (a top-level
// test) again in a child process with env added to this one's environment
// and returns here=false and the child's output, for childVerdict. In that
// child, and in a process without the simulation, it returns here=true:
// the caller runs the test's body.
func rerunWithoutSimulation(t *testing.T, name string, env ...string) (here bool, out string) {
	t.Helper()
	if os.Getenv(noSimChildEnv) == name || !Simulated() {
		return true, ""
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), noSimChildEnv+"="+name), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child process failed: %v\n%s", err, b)
	}
	t.Logf("run in a child process (%s):\n%s", strings.Join(env, " "), b)
	return false, string(b)
}

// childVerdict passes, skips or fails t as test name (or a subtest, as
// "Test/sub") ended in the child process's output.
func childVerdict(t *testing.T, out, name string) {
	t.Helper()
	switch {
	case strings.Contains(out, "--- PASS: "+name+" "):
	case strings.Contains(out, "--- SKIP: "+name+" "):
		t.Skipf("%s skipped in the child process", name)
	default:
		t.Fatalf("the child process did not pass %s:\n%s", name, out)
	}
}

// noLibraryEnv is the environment of a child process in which pad finds
// no NVIDIA library outside the system's loader path: the simulation off,
// PAD_CUDA_LIB_DIR an empty folder, no CUDA_HOME, CUDA_PATH, virtualenv,
// conda or LD_LIBRARY_PATH, and no python3 on PATH (whose pip wheels pad
// would search). Libraries the system's loader finds (ldconfig) still load;
// the tests skip then, as they do in this process.
func noLibraryEnv(t *testing.T) []string {
	empty := t.TempDir()
	return []string{testkit.SimulatedGPUEnv + "=off", LibDirEnv + "=" + empty, "CUDA_HOME=", "CUDA_PATH=",
		"VIRTUAL_ENV=", "CONDA_PREFIX=", "LD_LIBRARY_PATH=", "PATH=" + empty}
}

// driverEntryPoints calls every function that needs Init to succeed, with
// arguments that do not matter: where Init failed each must return its
// error, before calling the driver.
func driverEntryPoints() map[string]func() error {
	var buf [16]byte
	host := unsafe.Pointer(&buf[0])
	one := [3]uint32{1, 1, 1}
	return map[string]func() error{
		"DeviceCount":          func() error { _, err := DeviceCount(); return err },
		"DeviceGet":            func() error { _, err := DeviceGet(0); return err },
		"Name":                 func() error { _, err := Device(0).Name(); return err },
		"Attribute":            func() error { _, err := Device(0).Attribute(AttrWarpSize); return err },
		"ComputeCapability":    func() error { _, _, err := Device(0).ComputeCapability(); return err },
		"TotalMem":             func() error { _, err := Device(0).TotalMem(); return err },
		"RetainPrimaryContext": func() error { _, err := Device(0).RetainPrimaryContext(); return err },
		"Context.SetCurrent":   func() error { return (&Context{h: 1}).SetCurrent() },
		"Context.Release":      func() error { return (&Context{h: 1}).Release() },
		"Synchronize":          Synchronize,
		"MemAlloc":             func() error { _, err := MemAlloc(1 << 20); return err },
		"MemFree":              func() error { return MemFree(0) },
		"MemGetInfo":           func() error { _, _, err := MemGetInfo(); return err },
		"MemcpyHtoD":           func() error { return MemcpyHtoD(0, host, len(buf)) },
		"MemcpyDtoH":           func() error { return MemcpyDtoH(host, 0, len(buf)) },
		"MemcpyDtoD":           func() error { return MemcpyDtoD(0, 0, len(buf)) },
		"MemcpyHtoDAsync":      func() error { return MemcpyHtoDAsync(0, host, len(buf), 0) },
		"MemcpyDtoHAsync":      func() error { return MemcpyDtoHAsync(host, 0, len(buf), 0) },
		"MemcpyDtoDAsync":      func() error { return MemcpyDtoDAsync(0, 0, len(buf), 0) },
		"MemsetD32":            func() error { return MemsetD32(0, 0, 4) },
		"MemsetD32Async":       func() error { return MemsetD32Async(0, 0, 4, 0) },
		"CopyHtoD":             func() error { return CopyHtoD(0, []float32{1, 2}) },
		"CopyDtoH":             func() error { return CopyDtoH(make([]float32, 2), 0) },
		"MemHostAlloc":         func() error { _, err := MemHostAlloc(64, HostAllocPortable); return err },
		"MemFreeHost":          func() error { return MemFreeHost(nil) },
		"StreamCreate":         func() error { _, err := StreamCreate(StreamNonBlocking); return err },
		"Stream.Destroy":       func() error { return Stream(1).Destroy() },
		"Stream.Synchronize":   func() error { return Stream(0).Synchronize() },
		"Stream.Query":         func() error { _, err := Stream(0).Query(); return err },
		"Stream.WaitEvent":     func() error { return Stream(0).WaitEvent(1) },
		"EventCreate":          func() error { _, err := EventCreate(EventDefault); return err },
		"Event.Record":         func() error { return Event(1).Record(0) },
		"Event.Synchronize":    func() error { return Event(1).Synchronize() },
		"Event.Destroy":        func() error { return Event(1).Destroy() },
		"ElapsedTime":          func() error { _, err := ElapsedTime(0, 0); return err },
		"ModuleLoadData":       func() error { _, err := ModuleLoadData([]byte("x")); return err },
		"Module.Function":      func() error { _, err := (&Module{h: 1}).Function("k"); return err },
		"Module.Unload":        func() error { return (&Module{h: 1}).Unload() },
		"Function.Attribute":   func() error { _, err := Function(1).Attribute(FuncNumRegs); return err },
		"FuncSetAttribute":     func() error { return FuncSetAttribute(1, FuncMaxDynamicSharedSizeBytes, 1024) },
		"LaunchKernel":         func() error { return LaunchKernel(0, one, one, 0, 0) },
		"LaunchKernelArgs":     func() error { return LaunchKernelArgs(0, one, one, 0, 0, new(KernelArgs)) },
		"StreamBeginCapture":   func() error { return StreamBeginCapture(0, CaptureModeGlobal) },
		"StreamEndCapture":     func() error { _, err := StreamEndCapture(0); return err },
		"StreamIsCapturing":    func() error { _, err := StreamIsCapturing(0); return err },
		"GraphInstantiate":     func() error { _, err := GraphInstantiate(1); return err },
		"GraphLaunch":          func() error { return GraphLaunch(1, 0) },
		"GraphExecDestroy":     func() error { return GraphExecDestroy(1) },
		"GraphDestroy":         func() error { return GraphDestroy(1) },
	}
}

// Without a driver (CI, this project's build machines) every driver call
// must fail with the same clear error, matching ErrNoDriver, and nothing may
// panic. On the simulation it runs in a child process that cannot find it.
func TestNoDriver(t *testing.T) {
	if here, out := rerunWithoutSimulation(t, "TestNoDriver", noLibraryEnv(t)...); !here {
		childVerdict(t, out, "TestNoDriver")
		return
	}
	err := Init()
	if err == nil {
		t.Skip("a CUDA driver and device are present")
	}
	if errors.Is(err, ErrNoDevice) {
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(e.Call, "cuInit") {
			t.Errorf("cuInit failure is not an *Error naming cuInit: %v", err)
		}
		t.Skipf("driver present but no usable device: %v", err)
	}
	t.Logf("Init: %v", err)
	if !errors.Is(err, ErrNoDriver) || !errors.Is(err, ErrNoLibrary) {
		t.Fatalf("Init error %v does not match ErrNoDriver and ErrNoLibrary", err)
	}
	var le *LoadError
	if !errors.As(err, &le) || le.Lib != "cuda" {
		t.Fatalf("Init error is not a *LoadError for cuda: %#v", err)
	}
	msg := err.Error()
	for _, want := range []string{"libcuda.so.1", "install the NVIDIA driver", "--device cpu"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not mention %q", msg, want)
		}
	}
	if platformSupported && !strings.HasPrefix(msg, "cuda: no NVIDIA driver found (could not load libcuda.so.1): install the NVIDIA driver, or run with --device cpu") {
		t.Errorf("unexpected sentence: %q", msg)
	}
	if again := Init(); again != err {
		t.Errorf("second Init returned a different error: %v", again)
	}

	for name, f := range driverEntryPoints() {
		if got := f(); got != err {
			t.Errorf("%s: got %v, want the Init error", name, got)
		}
	}
	if _, err := DriverVersion(); !errors.Is(err, ErrNoDriver) {
		t.Errorf("DriverVersion: %v", err)
	}
	if DriverLibrary() != "" {
		t.Errorf("DriverLibrary not empty")
	}
}

// The other libraries fail the same way when absent: one sentence naming
// the soname and what to install, matching ErrNoLibrary, from every entry
// point. On the simulation it runs in a child process that cannot find it.
func TestMissingLibraries(t *testing.T) {
	libs := []struct {
		name  string
		load  func() error
		calls []func() error
		want  []string
	}{
		{"nvrtc", LoadNVRTC, []func() error{
			func() error { _, _, err := NVRTCVersion(); return err },
			func() error { _, _, err := Compile("", "k.cu", nil); return err },
			func() error { _, _, err := CompilePTX("", "k.cu", nil); return err },
		}, []string{"nvrtc: ", "libnvrtc.so.13", "install", "--device cpu"}},
		{"cublas", LoadBLAS, []func() error{
			func() error { _, err := NewBLAS(); return err },
			func() error { return (*BLAS)(nil).Sgemm(false, false, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1) },
			func() error { return (*BLAS)(nil).SetStream(0) },
		}, []string{"cublas: ", "libcublas.so.13", "install cuBLAS", "--device cpu"}},
		{"cudnn", LoadDNN, []func() error{
			func() error { _, err := NewDNN(); return err },
			func() error { _, err := NewTensor4d(NCHW, DataFloat, 1, 1, 1, 1); return err },
			func() error { _, err := NewFilter4d(NCHW, DataFloat, 1, 1, 1, 1); return err },
			func() error {
				_, err := NewConv2d(0, 0, 1, 1, 1, 1, CrossCorrelation, DataFloat, DNNFMAMath)
				return err
			},
			func() error { _, err := DNNVersion(); return err },
			func() error { return (*DNN)(nil).ConvForward(1, nil, 0, nil, 0, nil, 0, 0, 0, 0, nil, 0) },
		}, []string{"cudnn: libcudnn.so.9 (or .8) not found: install cuDNN 9", "--device cpu"}},
	}
	if here, out := rerunWithoutSimulation(t, "TestMissingLibraries", noLibraryEnv(t)...); !here {
		for _, lib := range libs {
			t.Run(lib.name, func(t *testing.T) { childVerdict(t, out, "TestMissingLibraries/"+lib.name) })
		}
		return
	}
	for _, lib := range libs {
		t.Run(lib.name, func(t *testing.T) {
			err := lib.load()
			if err == nil {
				t.Skipf("%s is installed", lib.name)
			}
			t.Logf("%v", err)
			if !errors.Is(err, ErrNoLibrary) || errors.Is(err, ErrNoDriver) {
				t.Errorf("error does not match ErrNoLibrary only: %v", err)
			}
			for _, w := range lib.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
			if lib.load() != err {
				t.Errorf("second load returned a different error")
			}
			for i, c := range lib.calls {
				if got := c(); got != err {
					t.Errorf("entry point %d: got %v, want the load error", i, got)
				}
			}
		})
	}
}

// Nil and destroyed handles and descriptors are reported, not dereferenced.
func TestNilHandles(t *testing.T) {
	var b *BLAS
	if b.Destroy() != nil {
		t.Errorf("nil BLAS Destroy")
	}
	var d *DNN
	if d.Destroy() != nil {
		t.Errorf("nil DNN Destroy")
	}
	var td *TensorDesc
	var fd *FilterDesc
	var cd *ConvDesc
	if td.Destroy() != nil || fd.Destroy() != nil || cd.Destroy() != nil {
		t.Errorf("nil descriptor Destroy")
	}
	if td.String() == "" || fd.String() == "" || cd.String() == "" {
		t.Errorf("nil descriptor String")
	}
	var m *Module
	if _, err := m.Function("k"); err == nil {
		t.Errorf("Function on nil module succeeded")
	}
	if m.Unload() != nil {
		t.Errorf("Unload of nil module")
	}
	if _, err := MemAlloc(-1); err == nil {
		t.Errorf("MemAlloc(-1) succeeded")
	}
}

func TestLoaderDetail(t *testing.T) {
	if !absent("libcudnn.so.9", "libcudnn.so.9: cannot open shared object file: No such file or directory") {
		t.Errorf("a missing candidate is not recognised")
	}
	if absent("libcudnn.so.9", "libz.so.1: cannot open shared object file: No such file or directory") {
		t.Errorf("a missing dependency is hidden")
	}
	if !platformSupported {
		t.Skip("no dynamic loader on this platform")
	}
	// A file that exists but is no library: the loader's message is kept.
	spec := libSpec{lib: "test", paths: func() []string { return []string{"/proc/self/status"} }, sonames: []string{"libtest.so.1"},
		missing: "test library not found", install: "install nothing", sentinel: ErrNoLibrary}
	_, err := spec.load(nil)
	var le *LoadError
	if !errors.As(err, &le) || le.Detail == "" || !strings.HasPrefix(err.Error(), "test: test library not found: install nothing, or run with --device cpu [") {
		t.Errorf("got %v", err)
	}
	t.Logf("%v", err)
}
