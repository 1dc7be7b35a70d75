package main

// The documented behaviour on a machine with the NVIDIA driver library but
// no GPU (CI installs Debian's libcuda1, libnvrtc11.2 and libcublas11 and
// sets PAD_REQUIRE_CUDA_LIBS=1): pad info says why the GPU is unavailable
// and where the libraries are, --device auto trains on the CPU after one
// notice, --device cuda fails with one line. The checks run pad as a
// process of its own (see TestMain in sweep_test.go), so everything it
// writes to its streams counts, the libraries' own output included.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// requireDriverWithoutGPU skips (or, with PAD_REQUIRE_CUDA_LIBS=1 or in
// CI, fails) unless the driver, NVRTC and cuBLAS load, and skips where a
// GPU is usable. It returns the error of cu.Init.
func requireDriverWithoutGPU(t *testing.T) error {
	t.Helper()
	required := os.Getenv("PAD_REQUIRE_CUDA_LIBS") == "1" || os.Getenv("CI") == "true"
	loads := []struct {
		what string
		load func() error
	}{
		{"the driver", cu.Init},
		{"NVRTC", cu.LoadNVRTC},
		{"cuBLAS", cu.LoadBLAS},
	}
	for _, l := range loads {
		err := l.load()
		if err == nil || errors.Is(err, cu.ErrNoDevice) {
			continue
		}
		var le *cu.LoadError
		// The bindings load nothing off linux/amd64 and linux/arm64.
		absent := runtime.GOOS != "linux" || runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" ||
			errors.As(err, &le) && le.Loaded == "" && le.Missing == "" && le.Detail == ""
		if absent && !required {
			t.Skipf("%s is not installed (set PAD_REQUIRE_CUDA_LIBS=1 to fail instead): %v", l.what, err)
		}
		t.Fatal(err)
	}
	err := cu.Init()
	if err == nil {
		t.Skip("a GPU is usable here; these checks are for machines without one")
	}
	return err
}

// padBinary returns the program that runs as pad when sweepChildEnv is
// set (see TestMain): this test binary.
func padBinary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runBinary runs pad in dir and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, bin, dir string, args ...string) (int, string, string) {
	t.Helper()
	return runBinaryEnv(t, bin, dir, nil, args...)
}

// runBinaryEnv is runBinary with extra environment variables.
func runBinaryEnv(t *testing.T, bin, dir string, extraEnv []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), sweepChildEnv+"=1", "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("running pad %v: %v", args, err)
	return 0, "", ""
}

// lineWith returns the first line of text that starts with prefix, or "".
func lineWith(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestDriverWithoutGPU(t *testing.T) {
	initErr := requireDriverWithoutGPU(t)
	why := initErr.Error() // e.g. cuInit(0): CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)
	dir := t.TempDir()
	bin := padBinary(t)
	tiny := []string{"--progress", "lines", "--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=16",
		"--set", "data.train_limit=64", "--set", "data.test_limit=64", "--set", "train.epochs=1", "--set", "eval.every=0"}

	t.Run("info", func(t *testing.T) {
		code, out, errOut := runBinary(t, bin, dir, "info")
		if code != exitOK || errOut != "" {
			t.Fatalf("pad info: exit %d, stderr %q\n%s", code, errOut, out)
		}
		if l := lineWith(out, "gpu:"); !strings.Contains(l, "unavailable") || !strings.Contains(l, why) {
			t.Errorf("pad info's gpu line %q does not say the GPU is unavailable because %q:\n%s", l, why, out)
		}
		for _, lib := range []struct{ prefix, path string }{
			{"driver:", cu.DriverLibrary()},
			{"nvrtc:", cu.NVRTCLibrary()},
			{"cublas:", cu.BLASLibrary()},
		} {
			l := lineWith(out, lib.prefix)
			if lib.path == "" || !strings.Contains(l, lib.path) || strings.Contains(l, "unavailable") {
				t.Errorf("pad info's %s line %q does not show %q:\n%s", lib.prefix, l, lib.path, out)
			}
		}
		t.Logf("pad info:\n%s", out)
	})

	t.Run("train --device auto", func(t *testing.T) {
		runs := filepath.Join(t.TempDir(), "runs")
		code, out, errOut := runBinary(t, bin, dir, append([]string{"train", "--device", "auto", "--runs", runs}, tiny...)...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		var notices []string
		for _, l := range strings.Split(out+errOut, "\n") {
			if strings.Contains(strings.ToLower(l), "notice") || strings.Contains(l, why) {
				notices = append(notices, l)
			}
		}
		if len(notices) != 1 || !strings.Contains(notices[0], why) || !strings.Contains(notices[0], "CPU") {
			t.Errorf("want one notice line naming %q and the CPU, got %q:\n%s", why, notices, errOut)
		}
		if !strings.Contains(errOut, " on cpu") {
			t.Errorf("the run does not say it trains on the CPU:\n%s", errOut)
		}
		if st, err := os.Stat(filepath.Join(runs, "quickstart", "checkpoint.safetensors")); err != nil || st.Size() == 0 {
			t.Errorf("no checkpoint after the CPU run: %v", err)
		}
		t.Logf("notice: %s", notices)
	})

	t.Run("train --device cuda", func(t *testing.T) {
		runs := filepath.Join(t.TempDir(), "runs")
		code, out, errOut := runBinary(t, bin, dir, append([]string{"train", "--device", "cuda", "--runs", runs}, tiny...)...)
		if code != exitError {
			t.Errorf("exit %d, want %d", code, exitError)
		}
		msg := strings.TrimSuffix(errOut, "\n")
		if msg == "" || strings.Contains(msg, "\n") || !strings.Contains(msg, why) || out != "" {
			t.Errorf("want exactly one line on stderr naming %q and nothing on stdout; stderr:\n%s\nstdout:\n%s", why, errOut, out)
		}
		if _, err := os.Stat(filepath.Join(runs, "quickstart", "checkpoint.safetensors")); err == nil {
			t.Errorf("--device cuda trained anyway")
		}
		t.Logf("stderr: %s", msg)
	})
}
