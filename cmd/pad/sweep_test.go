package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/internal/testkit"
	"github.com/pad-dreaming/pad/sweep"
	"github.com/pad-dreaming/pad/train"
)

var updateDeploy = flag.Bool("update-deploy", false, "rewrite deploy/*-paper-sweep.* from the commands in their headers")

// sweepChildEnv makes the test binary act as pad: `pad sweep --emit local`
// starts its workers with os.Executable(), which is the test binary here.
const sweepChildEnv = "PAD_SWEEP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(sweepChildEnv) == "1" {
		os.Exit(runMain(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr}))
	}
	os.Exit(testkit.MainWithSimulatedGPU(m))
}

// tinySweep is a sweep of the embedded sample with a tiny model: 2
// conditions × 2 seeds, one epoch of 4 iterations, probed after it.
func tinySweep(runs string, extra ...string) []string {
	args := []string{"sweep", "--datasets", "embedded", "--conditions", "pad,no-rem", "--seeds", "2",
		"--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=16", "--set", "data.train_limit=64",
		"--set", "data.test_limit=32", "--set", "train.epochs=1", "--set", "eval.every=1", "--set", "eval.probe_epochs=1",
		"--set", "train.sample_every=0", "--runs", runs}
	return append(args, extra...)
}

// workerArgs turns sweep flags into `pad sweep run --index i` flags.
func workerArgs(sweepArgs []string, index string, extra ...string) []string {
	args := append([]string{"sweep", "run", "--index", index}, sweepArgs[1:]...)
	return append(args, extra...)
}

func checkpointState(t *testing.T, dir string) train.State {
	t.Helper()
	c, err := train.ReadCheckpoint(filepath.Join(dir, train.CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// A tiny sweep on the CPU: all runs finish; a rerun skips them; a run left
// partial resumes; a failing run is reported while the others finish; pad
// report aggregates the result.
func TestSweepLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 6 tiny runs")
	}
	t.Setenv(sweepChildEnv, "1") // for the workers, which are this test binary
	runs := filepath.Join(t.TempDir(), "runs")
	names := []string{"embedded-pad-s1", "embedded-pad-s2", "embedded-no-rem-s1", "embedded-no-rem-s2"}

	code, out, errs := runPad(t, tinySweep(runs, "--emit", "local", "--gpus", "0")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "4 runs: 4 trained\n") || !strings.Contains(out, "aggregate with: pad report "+runs) {
		t.Errorf("summary:\n%s", out)
	}
	for _, n := range names {
		dir := filepath.Join(runs, n)
		if st := checkpointState(t, dir); st.Epoch != 1 || st.Iter != 4 {
			t.Errorf("%s: checkpoint at epoch %d iteration %d, want 1 and 4", n, st.Epoch, st.Iter)
		}
		cfg, err := configs.Load(filepath.Join(dir, "config.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if ds, cond, seed, _ := eval.ParseRunName(n); cfg.Name != n || cfg.Data.Dataset != ds || cfg.Train.Condition != cond || cfg.Seed != uint64(seed) {
			t.Errorf("%s/config.toml: name %q dataset %s condition %s seed %d", n, cfg.Name, cfg.Data.Dataset, cfg.Train.Condition, cfg.Seed)
		}
		r, _, err := eval.LoadRun(dir)
		if err != nil {
			t.Fatal(err)
		}
		probes := 0
		for _, rec := range r.Records {
			if rec.Kind == "probe" {
				probes++
			}
		}
		if probes != 2 {
			t.Errorf("%s: %d probe records, want 2 (epochs 0 and 1)", n, probes)
		}
		if log, _ := os.ReadFile(filepath.Join(dir, sweep.LogName)); !strings.Contains(string(log), "starting") {
			t.Errorf("%s/%s:\n%s", n, sweep.LogName, log)
		}
	}

	// Rerun: nothing to do.
	code, out, errs = runPad(t, tinySweep(runs, "--emit", "local", "--gpus", "0")...)
	if code != 0 || !strings.Contains(out, "4 runs: 4 skipped\n") {
		t.Errorf("rerun: exit %d\n%s\n%s", code, out, errs)
	}
	// A worker for a finished run exits 0 at once, its index from the
	// environment as in a Kubernetes pod.
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	args := append([]string{"sweep", "run"}, tinySweep(runs)[1:]...)
	code, _, errs = runPad(t, args...)
	if code != 0 || !strings.Contains(errs, "sweep run 2 of 4") || !strings.Contains(errs, "embedded-no-rem-s1 is finished (epoch 1/1, iteration 4); nothing to do") {
		t.Errorf("finished worker: exit %d\n%s", code, errs)
	}
	os.Unsetenv("JOB_COMPLETION_INDEX")

	// A run stopped after 2 of its 4 iterations (train.max_iters, which
	// is not part of the config hash) resumes.
	partial := filepath.Join(runs, names[3])
	if err := os.RemoveAll(partial); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runPad(t, workerArgs(tinySweep(runs), "3", "--set", "train.max_iters=2")...)
	if code != 0 {
		t.Fatalf("partial run: exit %d\n%s", code, errs)
	}
	if st := checkpointState(t, partial); st.Epoch != 0 || st.Iter != 2 {
		t.Fatalf("partial run at epoch %d iteration %d", st.Epoch, st.Iter)
	}
	_, out, _ = runPad(t, tinySweep(runs, "--emit", "list")...)
	if !regexp.MustCompile(`(?m)^3 +embedded-no-rem-s2 +embedded +no-rem +2 +partial\(0/1\)$`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	code, out, errs = runPad(t, tinySweep(runs, "--emit", "local", "--gpus", "0")...)
	if code != 0 || !strings.Contains(out, "4 runs: 1 resumed, 3 skipped\n") {
		t.Errorf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if st := checkpointState(t, partial); st.Epoch != 1 || st.Iter != 4 {
		t.Errorf("resumed run at epoch %d iteration %d, want 1 and 4", st.Epoch, st.Iter)
	}
	if log, _ := os.ReadFile(filepath.Join(partial, sweep.LogName)); !strings.Contains(string(log), "resuming at epoch 0/1, iteration 2") {
		t.Errorf("%s:\n%s", sweep.LogName, log)
	}

	// pad report reads the sweep as the paper's table.
	code, out, errs = runPad(t, "report", "--out", filepath.Join(t.TempDir(), "report"), runs)
	if code != 0 || !strings.Contains(out, "| embedded |") || strings.Count(out, "(n=2)") != 2 {
		t.Errorf("report: exit %d\n%s\n%s", code, out, errs)
	}

	// A failing run (MNIST without its files) is reported; the other runs
	// of the sweep still train, and the exit code says something failed.
	runs2 := filepath.Join(t.TempDir(), "runs")
	failing := tinySweep(runs2, "--emit", "local", "--gpus", "0", "--data", t.TempDir())
	failing[2], failing[6] = "mnist,embedded", "1" // --datasets, --seeds
	code, out, errs = runPad(t, failing...)
	if code != exitError || !strings.Contains(errs, "2 of 4 runs failed: mnist-pad-s1, mnist-no-rem-s1") {
		t.Errorf("failing sweep: exit %d\n%s\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^0 +mnist-pad-s1 +FAILED \(exit 1\)`).MatchString(out) || !strings.Contains(out, "2 trained, 2 FAILED") {
		t.Errorf("summary:\n%s", out)
	}
	if log, _ := os.ReadFile(filepath.Join(runs2, "mnist-pad-s1", sweep.LogName)); !strings.Contains(string(log), "mnist") || !strings.Contains(string(log), "exit code 1") {
		t.Errorf("the failed run's log:\n%s", log)
	}
}

// Mistakes in the command line are usage errors (exit 2) that say what is
// wrong.
func TestSweepUsage(t *testing.T) {
	runs := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep"}, "--datasets is required (known: embedded, mnist"},
		{[]string{"sweep", "--datasets", "cifar100"}, `unknown dataset "cifar100" (known: embedded, mnist, fashion, cifar10, svhn, folder)`},
		{[]string{"sweep", "--datasets", "svhn", "--conditions", "pad,rem"}, `unknown condition "rem" (known: pad, no-memory-mix, no-rem, no-nrem, wake-only`},
		{[]string{"sweep", "--datasets", "svhn", "--set", "seed=2"}, "--seeds"},
		{[]string{"sweep", "--datasets", "svhn", "--set", "train.batch=1"}, "train.batch = 1"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "docker"}, `--emit "docker": want list, local, k8s or slurm`},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "k8s"}, "--emit k8s needs --image"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "k8s", "--image", "x:1", "--runs", "runs"}, "absolute path"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "slurm", "--gpus", "2"}, "a run uses one GPU"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "slurm", "--time", "5"}, "--time 5: at least 10 minutes"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "local", "--out", "x"}, "--out applies to"},
		{[]string{"sweep", "--datasets", "svhn", "--emit", "local", "--device", "cuda", "--gpus", "0"}, "no GPU"},
		{[]string{"sweep", "--datasets", "svhn", "stray"}, `unexpected argument "stray"`},
		{[]string{"sweep", "run", "--datasets", "svhn", "--runs", runs}, "no --index, and neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set"},
		{[]string{"sweep", "run", "--datasets", "svhn", "--index", "20"}, "index 20 is out of range: the sweep has 20 runs, 0..19"},
		{[]string{"sweep", "run", "--datasets", "svhn", "--index", "$(JOB_COMPLETION_INDEX)"}, `invalid value "$(JOB_COMPLETION_INDEX)" for flag -index`},
		{[]string{"sweep", "run", "--datasets", "svhn", "--emit", "k8s"}, "flag provided but not defined: -emit"},
	} {
		t.Setenv("JOB_COMPLETION_INDEX", "")
		os.Unsetenv("JOB_COMPLETION_INDEX")
		code, out, errs := runPad(t, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("pad %s: exit %d, stderr %q, want 2 and %q (stdout %q)", strings.Join(c.args, " "), code, errs, c.want, out)
		}
	}
	t.Setenv("SLURM_ARRAY_TASK_ID", "x7")
	if code, _, errs := runPad(t, "sweep", "run", "--datasets", "svhn"); code != exitUsage || !strings.Contains(errs, `SLURM_ARRAY_TASK_ID="x7" is not a run index`) {
		t.Errorf("bad SLURM_ARRAY_TASK_ID: exit %d %s", code, errs)
	}
	if code, out, _ := runPad(t, "sweep", "--help"); code != 0 || !strings.Contains(out, "i = (d·C + c)·S + (seed − seed-start)") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}

// The sweep names its runs exactly as pad train names a run configured with
// --config <dataset> --set train.condition=... --set seed=...
func TestSweepNamesMatchTrain(t *testing.T) {
	s := sweep.Spec{Datasets: []string{"mnist", "fashion", "cifar10", "svhn"}, Conditions: configs.Conditions(), Seeds: 2, SeedStart: 7}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Runs() {
		cfg, base, err := loadConfig(sweep.ConfigRef(r.Dataset), []string{"train.condition=" + r.Condition, "seed=" + strconv.FormatUint(r.Seed, 10)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := runName(cfg, base); got != r.Name() {
			t.Errorf("pad train names run %d %q, the sweep %q", r.Index, got, r.Name())
		}
		sc, err := s.Config(r)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Hash() != cfg.Hash() {
			t.Errorf("%s: the sweep's config differs from pad train's", r.Name())
		}
	}
}

// The example files in deploy/ are what the commands in their headers
// generate (go test ./cmd/pad -run Deploy -update-deploy rewrites them).
func TestDeployRegenerate(t *testing.T) {
	for _, f := range []string{"k8s-paper-sweep.yaml", "slurm-paper-sweep.sh"} {
		path := filepath.Join("..", "..", "deploy", f)
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^# Generated by: pad (sweep .*)$`).FindSubmatch(old)
		if m == nil {
			t.Fatalf("%s has no '# Generated by: pad sweep ...' line", f)
		}
		if bytes.ContainsAny(m[1], `'"\`) {
			t.Fatalf("%s: the command %s has quotes; split it properly", f, m[1])
		}
		out := filepath.Join(t.TempDir(), f)
		if *updateDeploy {
			out = path
		}
		args := append(strings.Fields(string(m[1])), "--out", out)
		if code, _, errs := runPad(t, args...); code != 0 {
			t.Fatalf("pad %s: exit %d\n%s", m[1], code, errs)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, old) && !*updateDeploy {
			t.Errorf("deploy/%s differs from what 'pad %s' writes; run go test ./cmd/pad -run Deploy -update-deploy", f, m[1])
		}
	}
}
