package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A runs folder as a study leaves it: the README's quickstart (here the
// same settings and seed as the study's first run), two seeds of one
// condition, one run of another model size, one run that never probed, a
// run whose metrics do not read and a folder that is no run. pad report on
// the folder reports the two groups, lists the other runs with their
// reasons, exits 0, and writes into report/ inside the folder, whatever
// the working directory.
func TestReportOfAMixedRunsFolder(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "study")
	tiny := []string{"--runs", runs, "--progress", "none", "--device", "cpu",
		"--set", "data.dataset=embedded", "--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=16",
		"--set", "data.train_limit=64", "--set", "data.test_limit=32", "--set", "train.epochs=1",
		"--set", "eval.every=1", "--set", "eval.probe_epochs=1", "--set", "train.sample_every=0"}
	train := func(args ...string) {
		t.Helper()
		all := append(append([]string{"train"}, tiny...), args...)
		if code, _, e := runPad(t, all...); code != exitOK {
			t.Fatalf("pad %v: code %d\n%s", all, code, e)
		}
	}
	train()                                                            // quickstart
	train("--config", "pad")                                           // embedded-pad-s1
	train("--config", "pad", "--set", "seed=2")                        // embedded-pad-s2
	train("--config", "pad", "--set", "seed=3", "--set", "model.nf=8") // embedded-pad-s3, another model size
	train("--config", "no-rem", "--set", "eval.every=0")               // embedded-no-rem-s1, no probe
	broken := filepath.Join(runs, "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "metrics.jsonl"), []byte("{\"kind\": 3}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(runs, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"quickstart", "embedded-pad-s1", "embedded-pad-s2", "embedded-pad-s3", "embedded-no-rem-s1"} {
		if _, err := os.Stat(filepath.Join(runs, n, "config.toml")); err != nil {
			t.Fatalf("run %s: %v", n, err)
		}
	}

	t.Chdir(t.TempDir())
	code, out, errOut := runPad(t, "report", runs)
	if code != exitOK {
		t.Fatalf("pad report: code %d\n%s%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^\| dataset \| PAD \|$`,
		`(?m)^\| embedded \(model\.nf=4\) \| \d+\.\d\d ± \d+\.\d\d \(n=2\) \|$`,
		`(?m)^\| embedded \(model\.nf=8\) \| \d+\.\d\d ± — \(n=1\) \|$`,
		`(?m)^- quickstart: the same settings and seed as embedded-pad-s1, which is reported$`,
		`(?m)^- embedded-no-rem-s1: no probe results in metrics\.jsonl \(eval\.every = 0; `,
		`(?m)^- broken: metrics: .*broken/metrics\.jsonl:1: `,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the report lacks %s:\n%s", re, out)
		}
	}
	if n := strings.Count(out, "(n="); n != 2 {
		t.Errorf("%d groups reported, want 2:\n%s", n, out)
	}
	if strings.Contains(out, "notes") || strings.Contains(out, "Warnings") {
		t.Errorf("the report names a folder that is no run, or warns:\n%s", out)
	}
	for _, f := range []string{"report.md", "report.csv", "accuracy-embedded.png"} {
		if _, err := os.Stat(filepath.Join(runs, "report", f)); err != nil {
			t.Errorf("report/%s not in the runs folder: %v", f, err)
		}
	}
	if _, err := os.Stat("runs"); !os.IsNotExist(err) {
		t.Errorf("pad report wrote into the working directory: %v", err)
	}
	csv, _ := os.ReadFile(filepath.Join(runs, "report", "report.csv"))
	if !strings.Contains(string(csv), ",model.nf=4,embedded-pad-s1;embedded-pad-s2\n") {
		t.Errorf("report.csv:\n%s", csv)
	}

	// Again, with its report/ now in the folder; and on single runs, whose
	// report goes beside them.
	if code, out, errOut := runPad(t, "report", runs); code != exitOK || strings.Contains(out, "- report:") {
		t.Errorf("second pad report: code %d\n%s%s", code, out, errOut)
	}
	os.RemoveAll(filepath.Join(runs, "report"))
	code, out, errOut = runPad(t, "report", filepath.Join(runs, "embedded-pad-s1"), filepath.Join(runs, "embedded-pad-s2"))
	if code != exitOK || !strings.Contains(out, "(n=2)") || !strings.Contains(out, filepath.Join(runs, "report", "report.md")) {
		t.Errorf("pad report on two runs: code %d\n%s%s", code, out, errOut)
	}

	// Nothing to report is an error that says why.
	code, _, errOut = runPad(t, "report", filepath.Join(runs, "embedded-no-rem-s1"))
	if code != exitError || !strings.Contains(errOut, "embedded-no-rem-s1: no probe results") {
		t.Errorf("pad report on a run without a probe: code %d\n%s", code, errOut)
	}
}
