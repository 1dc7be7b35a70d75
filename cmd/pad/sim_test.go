package main

// pad doctor on pad's simulated GPU (internal/cudasim) with a cuDNN that
// computes one direction of convolution wrongly must fail exactly the
// op-parity checks of that direction.

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	cmd := exec.Command(padBinary(t), args...)
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
// convolution of cuDNN leaves one output element 1 % off): pad exits 1,
// the FP32 op-parity check of that direction fails, and no other check
// does.
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
			// The FP32 check must catch it. The TF32 check of the same op
			// may (a 1 % error in one element is within TF32's limit on
			// most shapes); nothing else may fail.
			want := "op " + c.op + " fp32"
			if len(failed) == 0 || !hasString(failed, want) {
				t.Errorf("failed checks %q; want %q among them", failed, want)
			}
			for _, f := range failed {
				if f != want && f != "op "+c.op+" tf32" {
					t.Errorf("check %q failed: only %s's op-parity checks may", f, c.op)
				}
			}
			if !strings.Contains(errOut, "checks failed") && !strings.Contains(errOut, "check failed") {
				t.Errorf("stderr does not say that checks failed:\n%s", errOut)
			}
		})
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
