package testkit

import (
	"fmt"
	"os"
	"testing"

	"github.com/pad-dreaming/pad/internal/cudasim"
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

// SimulatedGPUEnv, set to "off", keeps the tests from using the simulated
// NVIDIA stack: the GPU tests then skip where there is no GPU.
const SimulatedGPUEnv = "PAD_CUDASIM"

// UseSimulatedGPU points PAD_CUDA_LIB_DIR at pad's simulated NVIDIA stack
// (internal/cudasim), building it if needed, so that a test binary's GPU
// tests run on a machine without a GPU. It does nothing where the tests
// are to use hardware (GPUExpected), where PAD_CUDA_LIB_DIR is set
// already (the user chose the libraries), or where PAD_CUDASIM=off. Call
// it from TestMain, before anything loads an NVIDIA library. It returns
// the folder it chose ("" when it did nothing) and an error when the
// simulation should be used but could not be built; without a C++
// compiler it does nothing, and the GPU tests skip as before.
func UseSimulatedGPU() (string, error) {
	if os.Getenv(SimulatedGPUEnv) == "off" || os.Getenv("PAD_CUDA_LIB_DIR") != "" {
		return "", nil
	}
	if ok, _ := GPUExpected(); ok {
		return "", nil
	}
	if _, err := cudasim.Compiler(); err != nil {
		return "", nil
	}
	dir, err := cudasim.Ensure()
	if err != nil {
		return "", err
	}
	if err := os.Setenv("PAD_CUDA_LIB_DIR", dir); err != nil {
		return "", err
	}
	return dir, nil
}

// MainWithSimulatedGPU is a TestMain body: UseSimulatedGPU, then the
// tests. A simulation that fails to build fails the test binary.
func MainWithSimulatedGPU(m *testing.M) int {
	if _, err := UseSimulatedGPU(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
