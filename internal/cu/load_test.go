package cu

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// Without a driver (CI, this project's build machines) every driver call
// must fail with the same clear error, matching ErrNoDriver, and nothing may
// panic.
func TestNoDriver(t *testing.T) {
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

	var buf [16]byte
	calls := map[string]func() error{
		"DeviceCount":  func() error { _, err := DeviceCount(); return err },
		"DeviceGet":    func() error { _, err := DeviceGet(0); return err },
		"Name":         func() error { _, err := Device(0).Name(); return err },
		"Attribute":    func() error { _, err := Device(0).Attribute(AttrWarpSize); return err },
		"Context":      func() error { _, err := Device(0).RetainPrimaryContext(); return err },
		"Synchronize":  Synchronize,
		"MemAlloc":     func() error { _, err := MemAlloc(1 << 20); return err },
		"MemFree":      func() error { return MemFree(0) },
		"MemGetInfo":   func() error { _, _, err := MemGetInfo(); return err },
		"MemcpyHtoD":   func() error { return MemcpyHtoD(0, unsafe.Pointer(&buf[0]), len(buf)) },
		"MemcpyAsync":  func() error { return MemcpyDtoHAsync(unsafe.Pointer(&buf[0]), 0, len(buf), 0) },
		"MemsetAsync":  func() error { return MemsetD32Async(0, 0, 4, 0) },
		"CopyHtoD":     func() error { return CopyHtoD(0, []float32{1, 2}) },
		"MemHostAlloc": func() error { _, err := MemHostAlloc(64, HostAllocPortable); return err },
		"StreamCreate": func() error { _, err := StreamCreate(StreamNonBlocking); return err },
		"StreamSync":   func() error { return Stream(0).Synchronize() },
		"EventCreate":  func() error { _, err := EventCreate(EventDefault); return err },
		"ElapsedTime":  func() error { _, err := ElapsedTime(0, 0); return err },
		"ModuleLoad":   func() error { _, err := ModuleLoadData([]byte("x")); return err },
		"Launch":       func() error { return LaunchKernel(0, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, 0) },
		"LaunchArgs": func() error {
			return LaunchKernelArgs(0, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, 0, new(KernelArgs))
		},
		"Capture":     func() error { return StreamBeginCapture(0, CaptureModeGlobal) },
		"GraphLaunch": func() error { return GraphLaunch(0, 0) },
	}
	for name, f := range calls {
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
// point.
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
