package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recordTB is a testing.TB that records whether Skipf or Fatalf was
// called, and with what message, instead of ending the test.
type recordTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatal(args ...any) {
	r.failed = true
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// record runs f with a recordTB on a goroutine of its own, as Skipf and
// Fatalf end the goroutine that calls them.
func record(t *testing.T, f func(tb testing.TB)) *recordTB {
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// call runs SkipOrFailNoGPU with a recordTB.
func call(t *testing.T, err error) *recordTB {
	return record(t, func(tb testing.TB) { SkipOrFailNoGPU(tb, err) })
}

func TestSkipOrFailNoGPU(t *testing.T) {
	cause := errors.New("libcuda.so.1: cannot open shared object file")
	old := nvidiaDevice
	t.Cleanup(func() { nvidiaDevice = old })

	// No device node, no requirement: skip.
	nvidiaDevice = filepath.Join(t.TempDir(), "nvidia0")
	t.Setenv("PAD_REQUIRE_GPU", "")
	if ok, why := GPUExpected(); ok || why != "" {
		t.Fatalf("GPUExpected() = %v, %q without a device node or PAD_REQUIRE_GPU", ok, why)
	}
	if r := call(t, cause); !r.skipped || r.failed || !strings.Contains(r.msg, cause.Error()) {
		t.Fatalf("no GPU expected: skipped %v, failed %v, message %q; want a skip naming the cause", r.skipped, r.failed, r.msg)
	}

	// PAD_REQUIRE_GPU=1: fail, naming the reason and the cause.
	t.Setenv("PAD_REQUIRE_GPU", "1")
	if ok, why := GPUExpected(); !ok || why != "PAD_REQUIRE_GPU=1" {
		t.Fatalf("GPUExpected() = %v, %q with PAD_REQUIRE_GPU=1", ok, why)
	}
	if r := call(t, cause); r.skipped || !r.failed || !strings.Contains(r.msg, "PAD_REQUIRE_GPU=1") || !strings.Contains(r.msg, cause.Error()) {
		t.Fatalf("GPU required: skipped %v, failed %v, message %q; want a failure naming PAD_REQUIRE_GPU=1 and the cause", r.skipped, r.failed, r.msg)
	}

	// Any other value does not require a GPU.
	t.Setenv("PAD_REQUIRE_GPU", "0")
	if ok, _ := GPUExpected(); ok {
		t.Fatal("PAD_REQUIRE_GPU=0 requires a GPU")
	}

	// A device node: fail, naming it.
	nvidiaDevice = filepath.Join(t.TempDir(), "nvidia0")
	if err := os.WriteFile(nvidiaDevice, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := call(t, cause); r.skipped || !r.failed || !strings.Contains(r.msg, nvidiaDevice+" exists") {
		t.Fatalf("device node present: skipped %v, failed %v, message %q; want a failure naming %s", r.skipped, r.failed, r.msg, nvidiaDevice)
	}
}
