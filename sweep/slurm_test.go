package sweep

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeCommand writes an executable script called name into dir that
// prints its arguments, one per line.
func fakeCommand(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runScript runs an sbatch script with bash as Slurm would for array task
// index, with PATH starting at bin, and returns the arguments the fake
// pad or apptainer received.
func runScript(t *testing.T, script, bin string, index string, env ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", path)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SLURM_ARRAY_TASK_ID="+index)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash %s: %v\n%s", path, err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "pad sweep task "+index+" of ") {
		t.Errorf("first line %q", lines[0])
	}
	return lines[1:]
}

func TestWriteSlurm(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	s := paperSpec()
	w := Worker{Spec: s, RunsDir: "runs", Device: "cuda"}
	o := Slurm{Name: "pad-paper", Parallel: 8, GPUs: 1, CPUs: 8, MemoryGiB: 16, Time: "24:00:00", LogDir: "slurm-logs",
		Extra: []string{"--account=lab"}, Command: "pad sweep ..."}
	var b strings.Builder
	if err := WriteSlurm(&b, w, o); err != nil {
		t.Fatal(err)
	}
	script := b.String()
	if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		cmd := exec.Command(sc, "-s", "bash", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
	// sbatch reads #SBATCH lines up to the first command.
	var directives []string
	for _, l := range strings.Split(script, "\n")[1:] {
		if strings.HasPrefix(l, "#SBATCH ") {
			directives = append(directives, strings.TrimPrefix(l, "#SBATCH "))
		} else if l != "" && !strings.HasPrefix(l, "#") {
			break
		}
	}
	for _, want := range []string{"--job-name=pad-paper", "--array=0-39%8", "--gres=gpu:1", "--cpus-per-task=8", "--mem=16G",
		"--time=24:00:00", "--output=slurm-logs/%x-%A_%a.out", "--signal=B:TERM@300", "--account=lab",
		"--requeue", "--open-mode=append"} {
		if !slices.Contains(directives, want) {
			t.Errorf("no #SBATCH %s among %q", want, directives)
		}
	}
	if strings.Count(script, "#SBATCH") != len(directives) {
		t.Errorf("an #SBATCH line after the first command would be ignored")
	}

	// Run it as task 7: the fake pad gets exactly the worker's arguments.
	bin := t.TempDir()
	fakeCommand(t, bin, "pad")
	got := runScript(t, script, bin, "7")
	if want := w.Args("7"); !slices.Equal(got, want) {
		t.Errorf("pad got %q\nwant    %q", got, want)
	}
	// PAD= selects another binary.
	fakeCommand(t, bin, "pad-dev")
	if got := runScript(t, script, bin, "0", "PAD="+filepath.Join(bin, "pad-dev")); got[3] != "0" {
		t.Errorf("PAD=pad-dev: %q", got)
	}

	// Apptainer: pad runs inside the image with the host's GPU driver.
	o.Image = "registry.example.com/pad:1.0"
	o.Parallel = 0
	w.RunsDir, w.Spec.DataDir = "/scratch/runs", "/scratch/data"
	b.Reset()
	if err := WriteSlurm(&b, w, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "#SBATCH --array=0-39\n") {
		t.Errorf("no unthrottled array line")
	}
	fakeCommand(t, bin, "apptainer")
	got = runScript(t, b.String(), bin, "39")
	want := append([]string{"exec", "--nv", "--bind", "/scratch/runs", "--bind", "/scratch/data", "docker://registry.example.com/pad:1.0", "pad"}, w.Args("39")...)
	if !slices.Equal(got, want) {
		t.Errorf("apptainer got %q\nwant          %q", got, want)
	}
}

func TestSlurmCheck(t *testing.T) {
	w := Worker{Spec: paperSpec(), RunsDir: "runs"}
	for _, c := range []struct {
		o    Slurm
		want string
	}{
		{Slurm{Name: "a b"}, "--name"},
		{Slurm{Name: "x", GPUs: 2}, "--gpus 2"},
		{Slurm{Name: "x", Time: "one day"}, "--time"},
		{Slurm{Name: "x", Time: "5"}, "--time 5: at least 10 minutes"},
		{Slurm{Name: "x", Time: "0:09:59"}, "at least 10 minutes"},
		{Slurm{Name: "x", Time: "9:30"}, "at least 10 minutes"},
		{Slurm{Name: "x", Time: "0-0:5"}, "at least 10 minutes"},
		{Slurm{Name: "x", Partition: "$(rm)"}, "--partition"},
		{Slurm{Name: "x", Extra: []string{"account=lab"}}, "--sbatch"},
	} {
		if err := WriteSlurm(&strings.Builder{}, w, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.o, err, c.want)
		}
	}
	for _, tl := range []string{"90", "12:00:00", "2-00:00:00", "30:00", "10", "0", "0-0:10", "1-0", "0:10:00"} {
		if err := (Slurm{Name: "x", Time: tl}).Check(); err != nil {
			t.Errorf("--time %s: %v", tl, err)
		}
	}
}

func TestParseSlurmTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90":         90 * time.Minute,
		"30:15":      30*time.Minute + 15*time.Second,
		"12:00:00":   12 * time.Hour,
		"1:02:03":    time.Hour + 2*time.Minute + 3*time.Second,
		"2-00:00:00": 48 * time.Hour,
		"1-2":        26 * time.Hour,
		"1-2:30":     26*time.Hour + 30*time.Minute,
		"0-0:0:45":   45 * time.Second,
		"0":          0,
	} {
		got, err := parseSlurmTime(in)
		if err != nil || got != want {
			t.Errorf("parseSlurmTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1d", "-1", "1:2:3:4", "x-1", "1-"} {
		if _, err := parseSlurmTime(in); err == nil {
			t.Errorf("parseSlurmTime(%q): no error", in)
		}
	}
}
