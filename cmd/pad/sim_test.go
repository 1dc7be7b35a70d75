package main

// pad doctor on pad's simulated GPU (internal/cudasim) with a cuDNN that
// computes one direction of convolution wrongly must fail exactly the
// op-parity checks of that direction.

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/cu"
)

// runPadEnv runs this test binary as pad (see TestMain) in dir with extra
// environment variables, and returns its exit code, stdout and stderr.
func runPadEnv(t *testing.T, dir string, extraEnv []string, args ...string) (int, string, string) {
	t.Helper()
	return runBinaryEnv(t, padBinary(t), dir, extraEnv, args...)
}

// needSimulatedGPU skips a test unless the CUDA libraries pad loads are
// the simulation's (TestMain points PAD_CUDA_LIB_DIR at them where there
// is no GPU).
func needSimulatedGPU(t *testing.T) {
	t.Helper()
	if os.Getenv("PAD_CUDA_LIB_DIR") == "" {
		t.Skip("no simulated GPU (PAD_CUDA_LIB_DIR is not set)")
	}
	if err := cu.Init(); err != nil {
		t.Skipf("the CUDA driver does not initialise: %v", err)
	}
	if !cu.Simulated() {
		t.Skip("not the simulated GPU")
	}
}

// TestSimDoctorCatchesWrongConvolution runs `pad doctor --device cuda
// --quick --json` with PAD_CUDASIM_FAULT=dnn_wrong=OP (every OP
// convolution of cuDNN comes out 1 % too large): pad exits 1, and the
// failed checks are exactly that direction's op-parity checks, FP32 and
// TF32.
func TestSimDoctorCatchesWrongConvolution(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute per direction on the simulation")
	}
	needSimulatedGPU(t)
	for _, c := range []struct{ fault, op string }{
		{"fwd", "ConvForward"},
		{"bwd_filter", "ConvBackwardFilter"},
	} {
		t.Run(c.fault, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			code, out, errOut := runPadEnv(t, dir, []string{"PAD_CUDASIM_FAULT=dnn_wrong=" + c.fault},
				"doctor", "--device", "cuda", "--quick", "--json")
			t.Logf("pad doctor --device cuda --quick with dnn_wrong=%s: exit %d in %.1fs", c.fault, code, time.Since(start).Seconds())
			var rep struct {
				Pass   bool `json:"pass"`
				Checks []struct {
					Name   string `json:"name"`
					Status string `json:"status"`
					Value  string `json:"value"`
					Limit  string `json:"limit"`
					Detail string `json:"detail"`
				} `json:"checks"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("exit %d; the report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
			}
			if code != exitError || rep.Pass {
				t.Errorf("exit %d, pass %v; want exit %d and pass false", code, rep.Pass, exitError)
			}
			var failed []string
			ops := 0
			for _, ch := range rep.Checks {
				if strings.HasPrefix(ch.Name, "op ") {
					ops++
				}
				if strings.HasPrefix(ch.Name, "op "+c.op+" ") {
					t.Logf("%s: %s (%s, limit %s) %s", ch.Name, ch.Status, ch.Value, ch.Limit, ch.Detail)
				}
				if ch.Status == "FAIL" {
					failed = append(failed, ch.Name)
				}
			}
			sort.Strings(failed)
			if ops < 20 {
				t.Errorf("only %d op-parity checks ran: %+v", ops, rep.Checks)
			}
			if want := []string{"op " + c.op + " fp32", "op " + c.op + " tf32"}; !slices.Equal(failed, want) {
				t.Errorf("failed checks %q; want exactly %q", failed, want)
			}
			if !strings.Contains(errOut, "checks failed") && !strings.Contains(errOut, "check failed") {
				t.Errorf("stderr does not say that checks failed:\n%s", errOut)
			}
		})
	}
}

// TestSimDoctorFull runs the whole of `pad doctor --device cuda` (the
// default config, not --quick) on the simulated GPU: every check passes
// (INFO for the lines that only inform: TF32 against FP32 references and
// the bench), none is skipped, and the memory check is the simulation's
// count of allocations. `pad info` names the device as simulated.
func TestSimDoctorFull(t *testing.T) {
	if testing.Short() {
		t.Skip("a few minutes on the simulation")
	}
	needSimulatedGPU(t)
	dir := t.TempDir()
	code, out, errOut := runPadEnv(t, dir, nil, "info")
	if code != 0 || !strings.Contains(out, "simulated GPU") || !strings.Contains(out, "not hardware") {
		t.Errorf("pad info: exit %d, the GPU is not named as simulated:\n%s%s", code, out, errOut)
	}
	start := time.Now()
	code, out, errOut = runPadEnv(t, dir, nil, "doctor", "--device", "cuda", "--json")
	t.Logf("pad doctor --device cuda: exit %d in %.1fs", code, time.Since(start).Seconds())
	var rep struct {
		Pass   bool `json:"pass"`
		Quick  bool `json:"quick"`
		Checks []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d; the report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if code != 0 || !rep.Pass || rep.Quick {
		t.Errorf("exit %d, pass %v, quick %v; want 0, true, false\n%s", code, rep.Pass, rep.Quick, errOut)
	}
	seen := map[string]bool{}
	for _, ch := range rep.Checks {
		kind := strings.Fields(ch.Name)[0]
		seen[kind] = true
		info := strings.HasSuffix(ch.Name, "(tf32)") || kind == "bench"
		switch {
		case ch.Status == "PASS" && !info, ch.Status == "INFO" && info:
		case ch.Status == "INFO" && kind == "library":
		default:
			t.Errorf("%s: %s (%s)", ch.Name, ch.Status, ch.Detail)
		}
		if kind == "memory" && !strings.Contains(ch.Detail, "the simulated driver counted 0 allocations") {
			t.Errorf("memory check without the simulation's allocation count: %s", ch.Detail)
		}
	}
	for _, k := range []string{"library", "compile", "op", "repeatable", "graphs", "memory", "bench"} {
		if !seen[k] {
			t.Errorf("no %q check in the report: %+v", k, rep.Checks)
		}
	}
}
