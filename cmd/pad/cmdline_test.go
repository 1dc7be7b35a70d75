package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
)

// countBackendOpens makes openTrainBackend count its calls for the test.
func countBackendOpens(t *testing.T) *int {
	t.Helper()
	n := new(int)
	orig := openTrainBackend
	openTrainBackend = func(d configs.Device, log io.Writer) (backend.Backend, error) {
		*n++
		return orig(d, log)
	}
	t.Cleanup(func() { openTrainBackend = orig })
	return n
}

// A missing data file is found before the backend opens and before the
// run directory exists, and nothing is left behind; the fetch hint names
// the folder the config reads.
func TestMissingDataLeavesNothing(t *testing.T) {
	opens := countBackendOpens(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	root := filepath.Join(dir, "my data")
	code, _, errOut := runPad(t, "train", "--runs", runs, "--progress", "none", "--device", "cpu",
		"--set", "data.dataset=mnist", "--set", "data.root="+root)
	if code != exitError {
		t.Fatalf("code %d (want %d)\n%s", code, exitError, errOut)
	}
	if want := "pad data fetch mnist --dir '" + root + "'"; !strings.Contains(errOut, want) {
		t.Errorf("the error lacks the fetch command %q:\n%s", want, errOut)
	}
	if _, err := os.Stat(runs); !os.IsNotExist(err) {
		t.Errorf("%s exists after the failed start (%v)", runs, err)
	}
	if *opens != 0 {
		t.Errorf("the backend was opened %d times before the data was checked", *opens)
	}

	// With the default root the hint is the plain command.
	code, _, errOut = runPad(t, "train", "--runs", runs, "--progress", "none", "--device", "cpu",
		"--set", "data.dataset=fashion")
	if code != exitError || !strings.Contains(errOut, "run `pad data fetch fashion` to download it") {
		t.Errorf("default root: code %d\n%s", code, errOut)
	}

	// --resume of a run killed before its first checkpoint (config.toml,
	// no checkpoint) under another model: refused before the backend
	// opens, naming the keys; the run directory is left as it was.
	run := filepath.Join(runs, "killed")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Open("quickstart")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Model.NZ = "killed", 16
	text, err := cfg.Resolved().TOML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "config.toml"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runPad(t, "train", "--runs", runs, "--progress", "none", "--device", "cpu", "--resume", "--set", "name=killed", "--set", "model.nz=8")
	if code != exitError || !strings.Contains(errOut, "different config (model.nz 16 → 8)") || !strings.Contains(errOut, filepath.Join(run, "config.toml")) {
		t.Errorf("--resume under another config: code %d\n%s", code, errOut)
	}
	if entries, _ := os.ReadDir(run); len(entries) > 2 { // config.toml and the lock file
		t.Errorf("%s after a refused --resume: %v", run, entries)
	}
	if *opens != 0 {
		t.Errorf("the backend was opened %d times", *opens)
	}
}

// A config error exits with 2 whether it is in a file the user names, in
// a --set override or in a flag.
func TestConfigErrorsAreUsageErrors(t *testing.T) {
	opens := countBackendOpens(t)
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := file("unknown.toml", "[train]\nepoch = 3\n")
	badType := file("type.toml", "[train]\nbatch = \"x\"\n")
	badValue := file("value.toml", "[train]\nbatch = 1\n")
	badFraction := file("fraction.toml", "[data]\ntest_fraction = 1.5\n")
	syntax := file("syntax.toml", "[train\n")
	runs := filepath.Join(dir, "runs")
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"train", "--config", unknown}, "train.epoch"},
		{[]string{"train", "--set", "train.epoch=3"}, "train.epoch"},
		{[]string{"train", "--config", badType}, "train.batch"},
		{[]string{"train", "--set", "train.batch=x"}, "train.batch"},
		{[]string{"train", "--config", badValue}, "train.batch = 1"},
		{[]string{"train", "--set", "train.batch=1"}, "train.batch = 1"},
		{[]string{"train", "--config", badFraction}, "data.test_fraction"},
		{[]string{"train", "--set", "data.test_fraction=1.5"}, "data.test_fraction"},
		{[]string{"train", "--set", "data.dataset=folder", "--set", "data.test_fraction=0"}, "data.test_fraction"},
		{[]string{"train", "--config", syntax}, "syntax.toml"},
		{[]string{"train", "--config", filepath.Join(dir, "missing.toml")}, "missing.toml"},
		{[]string{"train", "--config", "no-such-config"}, "no-such-config"},
		{[]string{"train", "--device", "gpu"}, "device.kind"},
		{[]string{"bench", "--config", badValue}, "train.batch = 1"},
		{[]string{"bench", "--set", "train.batch=1"}, "train.batch = 1"},
		{[]string{"doctor", "--device", "gpu"}, "device.kind"},
		{[]string{"doctor", "--config", unknown}, "train.epoch"},
	}
	for _, c := range cases {
		args := append(c.args, "--runs", runs)
		if c.args[0] != "train" {
			args = c.args
		}
		code, out, errOut := runPad(t, args...)
		if code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("pad %s: code %d (want %d), stderr lacks %q:\n%s%s", strings.Join(c.args, " "), code, exitUsage, c.msg, out, errOut)
		}
	}
	if *opens != 0 {
		t.Errorf("the backend was opened %d times for a bad config", *opens)
	}
	if _, err := os.Stat(runs); !os.IsNotExist(err) {
		t.Errorf("%s exists after config errors (%v)", runs, err)
	}
}

// placeholders maps the upper-case words of help texts to values.
var placeholders = map[string]string{
	"RUN": "runs/quickstart", "RUNS": "runs", "I": "0", "N": "1", "DIR": "data/x", "LIST": "cifar10",
}

// padCommands returns the pad command lines in text: lines that start with
// "pad " (with "\" continuing them on the next line; text after two spaces
// is a description), 'pad …' and `pad …` in quotes, and "pad …" after ": ".
// Synopses with [ ], < >, | or … and prose (a second word that is not a
// command) are left out; the upper-case words of placeholders are
// replaced with values.
func padCommands(text string) []string {
	var out []string
	quoted := regexp.MustCompile("['`](pad [^'`]*)['`]")
	afterColon := regexp.MustCompile(`: (pad [a-z].*)$`)
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		var found []string
		if strings.HasPrefix(line, "pad ") {
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				line = strings.TrimSpace(strings.TrimSuffix(line, `\`)) + " " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i]), "#"))
			}
			if j := strings.Index(line, "  "); j > 0 {
				line = line[:j]
			}
			found = append(found, line)
		} else if m := afterColon.FindStringSubmatch(line); m != nil && !strings.Contains(m[1], "'") {
			found = append(found, m[1])
		}
		for _, m := range quoted.FindAllStringSubmatch(line, -1) {
			found = append(found, m[1])
		}
		for _, c := range found {
			if strings.ContainsAny(c, "[]<>|…") || strings.Contains(c, "...") {
				continue
			}
			f := strings.Fields(c)
			if len(f) < 2 || !isCommand(f[1]) {
				continue // prose: "the pad binary", "pad — Perturbed …"
			}
			for k, w := range f {
				if v, ok := placeholders[w]; ok {
					f[k] = v
				}
			}
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}

func isCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// checkCommand runs the command line through pad's real parsing with
// env.checkOnly: flags, arguments and config are checked, nothing runs.
func checkCommand(line string) (int, string) {
	args := strings.Fields(line)[1:]
	var out, errb bytes.Buffer
	code := runMain(args, &env{stdout: &out, stderr: &errb, checkOnly: true})
	return code, errb.String()
}

// Every pad command shown in a built-in config's comments and in every
// help text is accepted as shown.
func TestShownCommandsAreAccepted(t *testing.T) {
	type shown struct{ where, cmd string }
	var all []shown
	for _, f := range configs.Files() {
		data, err := configs.Builtin(f)
		if err != nil {
			t.Fatal(err)
		}
		var comments []string
		for _, l := range strings.Split(string(data), "\n") {
			if _, c, ok := strings.Cut(l, "#"); ok {
				comments = append(comments, c)
			}
		}
		for _, c := range padCommands(strings.Join(comments, "\n")) {
			all = append(all, shown{"configs/" + f, c})
		}
	}
	helps := [][]string{{"--help"}, {"data", "fetch", "--help"}, {"data", "verify", "--help"}, {"data", "list", "--help"}, {"sweep", "run", "--help"}}
	for _, c := range commands {
		helps = append(helps, []string{c.name, "--help"})
	}
	for _, h := range helps {
		code, out, errOut := runPad(t, h...)
		if code != exitOK {
			t.Fatalf("pad %s: code %d", strings.Join(h, " "), code)
		}
		for _, c := range padCommands(out + errOut) {
			all = append(all, shown{"pad " + strings.Join(h, " "), c})
		}
	}
	if len(all) < 25 {
		t.Fatalf("found only %d commands: %v", len(all), all)
	}
	for _, s := range all {
		if code, errOut := checkCommand(s.cmd); code != exitOK {
			t.Errorf("%s shows %q, which pad refuses (exit %d): %s", s.where, s.cmd, code, strings.TrimSpace(errOut))
		}
	}

	// The check itself refuses what pad refuses.
	for _, bad := range []string{
		"pad train --config folder data.root=/path/to/images",
		"pad train --config no-rem data.dataset=svhn",
		"pad train --set train.epoch=3",
		"pad eval linear",
		"pad sweep --bogus",
		"pad data fetch imagenet",
	} {
		if code, _ := checkCommand(bad); code == exitOK {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// A folder without train/ and test/ trains on what is not held out, and
// the run's first line says so.
func TestFolderRunNamesItsSplit(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "images")
	for c, class := range []string{"a", "b"} {
		for k := 0; k < 10; k++ {
			m := image.NewGray(image.Rect(0, 0, 8, 8))
			for i := range m.Pix {
				m.Pix[i] = byte(i*7 + 31*(10*c+k))
			}
			var b bytes.Buffer
			if err := png.Encode(&b, m); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, class), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, class, fmt.Sprintf("%d.png", k)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, _, errOut := runPad(t, "train", "--runs", filepath.Join(dir, "runs"), "--progress", "none", "--device", "cpu",
		"--set", "data.dataset=folder", "--set", "data.root="+root, "--set", "model.nf=4", "--set", "model.nz=8",
		"--set", "train.batch=4", "--set", "train.max_iters=1", "--set", "eval.every=0", "--set", "train.sample_every=0")
	if code != exitOK {
		t.Fatalf("code %d\n%s", code, errOut)
	}
	first, _, _ := strings.Cut(errOut, "\n")
	if !strings.HasPrefix(first, "run ") || !strings.Contains(first, "16 training images") ||
		!strings.Contains(first, "test set: 20% of each class of "+root+" held out (4 images") {
		t.Errorf("first line: %s", first)
	}
}

// pad eval and pad dream read a run's checkpoint and data before they open
// the device: a run that cannot be evaluated fails without a GPU check or
// a kernel compilation, and says what is missing.
func TestEvalReadsTheRunBeforeTheDevice(t *testing.T) {
	dir := t.TempDir()
	run := trainSmallRun(t, dir)

	opens := new(int)
	orig := openRunBackend
	openRunBackend = func(d configs.Device, log io.Writer) (backend.Backend, error) {
		*opens++
		return orig(d, log)
	}
	t.Cleanup(func() { openRunBackend = orig })

	// The run works as it is, opening the device once per command.
	if code, out, e := runPad(t, "eval", "linear", run, "--probe-epochs", "1"); code != exitOK {
		t.Fatalf("eval linear: code %d\n%s%s", code, out, e)
	}
	if *opens != 1 {
		t.Fatalf("eval linear opened the device %d times", *opens)
	}

	// Its data moved away: the config now names a folder with no MNIST.
	cfgPath := filepath.Join(run, "config.toml")
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-mnist")
	for _, kv := range []string{"data.dataset=mnist", "data.root=" + missing} {
		if err := cfg.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	b, err := cfg.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	*opens = 0
	for _, args := range [][]string{{"eval", "linear", run}, {"eval", "all", run}, {"dream", run}} {
		code, out, e := runPad(t, args...)
		if code != exitError || !strings.Contains(e, missing) {
			t.Errorf("%s with the data missing: code %d (want %d), the error should name %s\n%s%s", strings.Join(args, " "), code, exitError, missing, out, e)
		}
	}
	if *opens != 0 {
		t.Errorf("the device was opened %d times for a run whose data is missing", *opens)
	}

	// No checkpoint: likewise.
	if err := os.Remove(filepath.Join(run, "checkpoint.safetensors")); err != nil {
		t.Fatal(err)
	}
	if code, out, e := runPad(t, "eval", "linear", run); code != exitError || !strings.Contains(e, "checkpoint") {
		t.Errorf("eval without a checkpoint: code %d\n%s%s", code, out, e)
	}
	if *opens != 0 {
		t.Errorf("the device was opened %d times for a run without a checkpoint", *opens)
	}
}

// pad train and pad sweep run train through one entry point
// (train.Execute): each opens the device once, through openTrainBackend,
// and prints the run's first line; for the same config they print the
// same line and write the same checkpoint, byte for byte. A sweep run
// whose data is missing fails before the device opens, and leaves no run
// directory.
func TestTrainAndSweepRunShareTheEntryPoint(t *testing.T) {
	opens := countBackendOpens(t)
	base := t.TempDir()
	sweepRuns, trainRuns := filepath.Join(base, "sweep"), filepath.Join(base, "train")
	const name = "embedded-pad-s1" // run 0 of tinySweep
	sweepArgs := tinySweep(sweepRuns)
	code, _, sweepLog := runPad(t, workerArgs(sweepArgs, "0", "--device", "cpu", "--progress", "none")...)
	if code != exitOK {
		t.Fatalf("sweep run: code %d\n%s", code, sweepLog)
	}
	if *opens != 1 {
		t.Errorf("sweep run opened the device %d times, want 1", *opens)
	}

	trainArgs := []string{"train", "--runs", trainRuns, "--device", "cpu", "--progress", "none",
		"--set", "name=" + name, "--set", "data.dataset=embedded", "--set", "train.condition=pad", "--set", "seed=1"}
	for i, a := range sweepArgs {
		if a == "--set" {
			trainArgs = append(trainArgs, a, sweepArgs[i+1])
		}
	}
	code, _, trainLog := runPad(t, trainArgs...)
	if code != exitOK {
		t.Fatalf("train: code %d\n%s", code, trainLog)
	}
	if *opens != 2 {
		t.Errorf("pad train opened the device %d times, want 1", *opens-1)
	}

	// The run's first line, with the runs directory left out.
	firstLine := func(log, runs string) string {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "run "+filepath.Join(runs, name)+": ") {
				return strings.TrimPrefix(l, "run "+runs)
			}
		}
		return ""
	}
	if s, tr := firstLine(sweepLog, sweepRuns), firstLine(trainLog, trainRuns); s == "" || s != tr {
		t.Errorf("first lines differ:\nsweep run: %s\ntrain:     %s\n--- sweep run's log:\n%s--- train's log:\n%s", s, tr, sweepLog, trainLog)
	}
	a, err := os.ReadFile(filepath.Join(sweepRuns, name, "checkpoint.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(trainRuns, name, "checkpoint.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("pad sweep run and pad train wrote different checkpoints for the same config")
	}

	failRuns := filepath.Join(base, "failing")
	failing := tinySweep(failRuns, "--data", filepath.Join(base, "no-data"))
	failing[2] = "mnist" // --datasets
	code, _, errOut := runPad(t, workerArgs(failing, "0", "--device", "cpu", "--progress", "none")...)
	if code != exitError || !strings.Contains(errOut, filepath.Join(base, "no-data")) {
		t.Errorf("sweep run with its data missing: code %d (want %d)\n%s", code, exitError, errOut)
	}
	if *opens != 2 {
		t.Errorf("the device was opened for a sweep run whose data is missing")
	}
	if _, err := os.Stat(failRuns); !os.IsNotExist(err) {
		t.Errorf("%s exists after the failed sweep run (%v)", failRuns, err)
	}
}

// trainSmallRun trains a run small enough for a test of the evaluation
// commands (64 training and 32 test images of the embedded sample, nf 4,
// nz 8, one epoch, no probe) in dir/runs/small, and returns its directory.
func trainSmallRun(t *testing.T, dir string) string {
	t.Helper()
	runs := filepath.Join(dir, "runs")
	code, _, e := runPad(t, "train", "--runs", runs, "--progress", "none", "--device", "cpu",
		"--set", "name=small", "--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=16",
		"--set", "data.train_limit=64", "--set", "data.test_limit=32", "--set", "train.epochs=1", "--set", "eval.every=0")
	if code != exitOK {
		t.Fatalf("train: code %d\n%s", code, e)
	}
	return filepath.Join(runs, "small")
}
