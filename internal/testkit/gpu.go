package testkit

import (
	"os"
	"testing"
)

// nvidiaDevice is the device node the NVIDIA driver creates for the first
// GPU; tests look for it to tell a machine without a GPU from a GPU
// machine whose CUDA set-up is broken.
var nvidiaDevice = "/dev/nvidia0"

// GPUExpected reports whether the GPU tests must run: when the NVIDIA
// driver's device node exists, or when PAD_REQUIRE_GPU=1. The string says
// why (empty when false).
func GPUExpected() (bool, string) {
	if os.Getenv("PAD_REQUIRE_GPU") == "1" {
		return true, "PAD_REQUIRE_GPU=1"
	}
	if _, err := os.Stat(nvidiaDevice); err == nil {
		return true, nvidiaDevice + " exists"
	}
	return false, ""
}

// SkipOrFailNoGPU is for a GPU test that could not open the GPU (err says
// why): it skips the test where no GPU is expected, and fails it where one
// is (see GPUExpected), so that a broken driver or library set-up on a
// GPU machine is not mistaken for a machine without a GPU.
func SkipOrFailNoGPU(t testing.TB, err error) {
	t.Helper()
	if ok, why := GPUExpected(); ok {
		t.Fatalf("%s but the GPU could not be used: %v", why, err)
	}
	t.Skipf("no GPU: %v", err)
}
