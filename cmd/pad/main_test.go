package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// runPad runs pad in-process and returns its exit code and output.
func runPad(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, &env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	code, out, _ := runPad(t, "--help")
	if code != exitOK || !strings.Contains(out, "Commands:") {
		t.Fatalf("pad --help: code %d\n%s", code, out)
	}
	for _, c := range commands {
		if !strings.Contains(out, c.name) {
			t.Errorf("pad --help does not list %s", c.name)
		}
		code, o, e := runPad(t, c.name, "--help")
		if code != exitOK || !strings.Contains(o+e, "Usage:") || !strings.Contains(o+e, "pad "+c.name) {
			t.Errorf("pad %s --help: code %d\n%s%s", c.name, code, o, e)
		}
	}
	cases := []struct {
		args []string
		want int
		msg  string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"train", "--bogus"}, exitUsage, "bogus"},
		{[]string{"train", "--set", "train.epoch=3"}, exitUsage, `did you mean "train.epochs"`},
		{[]string{"train", "--set", "train.batch=x"}, exitUsage, "train.batch"},
		{[]string{"train", "--progress", "fancy"}, exitUsage, "--progress"},
		{[]string{"train", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"train", "--config", "no-such-config"}, exitUsage, "no-such-config"},
		{[]string{"eval"}, exitUsage, "say what to evaluate"},
		{[]string{"eval", "nonsense", "x"}, exitUsage, "unknown evaluation"},
		{[]string{"eval", "linear"}, exitUsage, "one run directory"},
		{[]string{"eval", "linear", filepath.Join(t.TempDir(), "missing")}, exitError, "not a run directory"},
		{[]string{"dream", filepath.Join(t.TempDir(), "missing")}, exitError, "not a run directory"},
		{[]string{"report"}, exitUsage, "at least one run"},
		{[]string{"bench", "--channels", "2"}, exitUsage, "--channels"},
		{[]string{"doctor", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"doctor", "--device", "gpu"}, exitUsage, "device.kind"},
		{[]string{"doctor", "--set", "model.nf=x"}, exitUsage, "model.nf"},
	}
	for _, c := range cases {
		code, o, e := runPad(t, c.args...)
		if code != c.want || !strings.Contains(o+e, c.msg) {
			t.Errorf("pad %v: code %d (want %d), output lacks %q:\n%s%s", c.args, code, c.want, c.msg, o, e)
		}
	}
}

// A whole session on the embedded sample with a tiny model: train, then
// every evaluation, dreams and a report on the run.
func TestTrainEvalDreamReport(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	code, _, e := runPad(t, "train", "--runs", runs, "--progress", "lines",
		"--set", "name=embedded-pad-s1", "--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=16",
		"--set", "data.train_limit=160", "--set", "data.test_limit=64", "--set", "train.epochs=2",
		"--set", "eval.probe_epochs=2", "--set", "train.log_every=5")
	if code != exitOK {
		t.Fatalf("train: code %d\n%s", code, e)
	}
	run := filepath.Join(runs, "embedded-pad-s1")
	for _, want := range []string{"samples (reconstructions", "epoch002-recon.png", "checkpoint:", "linear probe test accuracy"} {
		if !strings.Contains(e, want) {
			t.Errorf("train output lacks %q:\n%s", want, e)
		}
	}
	for _, f := range []string{"config.toml", "metrics.jsonl", "checkpoint.safetensors", "samples/epoch002-rem.png", "samples/epoch002-filters.png"} {
		if st, err := os.Stat(filepath.Join(run, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing after training: %v", f, err)
		}
	}
	code, out, e := runPad(t, "eval", "all", run, "--probe-epochs", "2")
	if code != exitOK {
		t.Fatalf("eval all: code %d\n%s%s", code, out, e)
	}
	for _, want := range []string{"linear probe", "occlusion (tile 4)", "intra/inter-class", "PCA of", "losses.png", "z_train.npy"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval all output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"linear.json", "occlusion.csv", "occlusion.png", "latent.json", "pca.png", "losses.png", "accuracy.png", "z_test.npy", "y_test.npy"} {
		if _, err := os.Stat(filepath.Join(run, "eval", f)); err != nil {
			t.Errorf("eval/%s missing: %v", f, err)
		}
	}
	code, out, e = runPad(t, "dream", run)
	if code != exitOK || !strings.Contains(out, "rem.png") {
		t.Fatalf("dream: code %d\n%s%s", code, out, e)
	}
	code, out, e = runPad(t, "report", "--out", filepath.Join(dir, "report"), runs)
	if code != exitOK || !strings.Contains(out, "embedded") {
		t.Fatalf("report: code %d\n%s%s", code, out, e)
	}
	// The finished run resumes to nothing new; a fresh start is refused.
	code, _, e = runPad(t, "train", "--runs", runs, "--set", "name=embedded-pad-s1", "--set", "model.nf=4", "--set", "model.nz=8",
		"--set", "train.batch=16", "--set", "data.train_limit=160", "--set", "data.test_limit=64", "--set", "train.epochs=2")
	if code != exitError || !strings.Contains(e, "--resume") {
		t.Fatalf("training over a finished run: code %d\n%s", code, e)
	}
}

func TestBenchJSON(t *testing.T) {
	for _, stream := range []bool{false, true} {
		args := []string{"bench", "--device", "cpu", "--set", "model.nf=4", "--set", "model.nz=8", "--batch", "8",
			"--iters", "2", "--warmup", "1", "--phases=false", "--json"}
		if stream {
			args = append(args, "--stream")
		}
		code, out, errOut := runPad(t, args...)
		if code != exitOK {
			t.Fatalf("pad %v: code %d\n%s", args, code, errOut)
		}
		var res struct {
			SecPerIter, SecPerEpoch float64
			Streamed                bool
			Spec                    struct{ Batch int }
			GFLOPPerIter, GFLOPS    float64
			PeakGFLOPS, PeakShare   float64
			ClockGHz, BusyCores     float64
			VectorLanes, Threads    int
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("bench --json output: %v\n%s", err, out)
		}
		if !(res.SecPerIter > 0) || res.Spec.Batch != 8 || res.Streamed != stream ||
			math.Abs(res.SecPerEpoch-res.SecPerIter*float64(50000/8)) > 1e-9*res.SecPerEpoch {
			t.Errorf("bench result %+v", res)
		}
		// What the limit is: the work per iteration, the rate it ran at,
		// the machine's peak on the threads used, and the busy cores.
		lanesOK := res.VectorLanes == 4 || res.VectorLanes == 8 || res.VectorLanes == 16
		if !(res.GFLOPPerIter > 0) || math.Abs(res.GFLOPS-res.GFLOPPerIter/res.SecPerIter) > 1e-6*res.GFLOPS ||
			!(res.ClockGHz > 0.1) || !lanesOK || res.Threads < 1 ||
			math.Abs(res.PeakGFLOPS-res.ClockGHz*4*float64(res.VectorLanes)*float64(min(res.Threads, runtime.NumCPU()))) > 1e-6*res.PeakGFLOPS ||
			math.Abs(res.PeakShare-res.GFLOPS/res.PeakGFLOPS) > 1e-9 || !(res.BusyCores > 0) {
			t.Errorf("bench limits %+v", res)
		}
	}
	// The text report gives them too, with each phase's rate.
	code, out, errOut := runPad(t, "bench", "--device", "cpu", "--set", "model.nf=4", "--set", "model.nz=8", "--batch", "8", "--iters", "4", "--warmup", "1")
	if code != exitOK {
		t.Fatalf("pad bench: code %d\n%s", code, errOut)
	}
	for _, want := range []string{"GFLOP per iteration", "GFLOP/s", "FP32 peak", "% of it", "busy cores", "wake"} {
		if !strings.Contains(out, want) {
			t.Errorf("pad bench does not say %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^  wake +[0-9.]+ ms +[0-9.]+ GFLOP/s$`).MatchString(out) {
		t.Errorf("no rate beside the wake phase:\n%s", out)
	}
}
