package sweep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLocal returns a Local whose workers are this test binary playing
// fakeWorker.
func fakeLocal(t *testing.T, s Spec, env ...string) Local {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Local{Exe: exe, Worker: Worker{Spec: s, RunsDir: filepath.Join(t.TempDir(), "runs")},
		Env: append([]string{fakeWorkerEnv + "=1"}, env...)}
}

func outcomes(results []Result) string {
	var o []string
	for _, r := range results {
		o = append(o, r.Outcome.String())
	}
	return strings.Join(o, ",")
}

// Each GPU runs one run at a time, every GPU is used, a failed run is
// reported while the others go on, and a rerun skips what finished.
func TestLocalGPUs(t *testing.T) {
	s := Spec{Datasets: []string{"embedded"}, Conditions: []string{"pad", "no-rem", "wake-only"}, Seeds: 2, SeedStart: 1}
	fake := t.TempDir()
	l := fakeLocal(t, s, "PAD_FAKE_DIR="+fake, "PAD_FAKE_SLEEP=150ms", "PAD_FAKE_FAIL=4")
	l.GPUs, l.Worker.Device = 2, "cuda"
	var log strings.Builder
	l.Log = lockedWriter{&log, new(sync.Mutex)}
	results, err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 of 6 runs failed: embedded-wake-only-s1") {
		t.Fatalf("error %v, want one naming the failed run", err)
	}
	if got := outcomes(results); got != "trained,trained,trained,trained,FAILED,trained" {
		t.Errorf("outcomes %s\n%s", got, log.String())
	}
	used, _ := os.ReadFile(filepath.Join(fake, "used"))
	if !strings.Contains(string(used), " 0\n") || !strings.Contains(string(used), " 1\n") {
		t.Errorf("GPUs used (index gpu):\n%s", used)
	}
	if r := results[4]; r.ExitCode != 1 || r.Slot == "" {
		t.Errorf("failed run: exit %d slot %q", r.ExitCode, r.Slot)
	}
	logText, _ := os.ReadFile(results[4].Log)
	if !strings.Contains(string(logText), "fake failure") || !strings.Contains(string(logText), "exit code 1") {
		t.Errorf("%s:\n%s", results[4].Log, logText)
	}
	if !strings.Contains(string(logText), "--set device.gpu=") || !strings.Contains(string(logText), "--index 4 ") {
		t.Errorf("the log does not record the worker's command:\n%s", logText)
	}

	// The rerun skips the finished runs and retries the failed one.
	l.Env = []string{fakeWorkerEnv + "=1", "PAD_FAKE_DIR=" + fake}
	results, err = l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(results); got != "skipped,skipped,skipped,skipped,trained,skipped" {
		t.Errorf("rerun outcomes %s", got)
	}
	var sum strings.Builder
	if err := WriteSummary(&sum, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "6 runs: 1 trained, 5 skipped\n") || !strings.Contains(sum.String(), "embedded-wake-only-s1  trained") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// On the CPU, parallel runs share the cores; a run directory holding
// another config's checkpoint fails without starting a worker.
func TestLocalCPU(t *testing.T) {
	s := Spec{Datasets: []string{"embedded"}, Conditions: []string{"pad"}, Seeds: 3, SeedStart: 1}
	l := fakeLocal(t, s)
	l.Parallel = 2
	r, _ := s.Run(2)
	if err := writeCheckpoint(filepath.Join(l.Worker.RunsDir, r.Name()), "0123456789abcdef", 1, 1); err != nil {
		t.Fatal(err)
	}
	results, err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), r.Name()) {
		t.Fatalf("error %v", err)
	}
	if got := outcomes(results); got != "trained,trained,FAILED" || !errors.Is(results[2].Err, ErrOtherConfig) || results[2].Elapsed != 0 {
		t.Errorf("outcomes %s, run 2: %v", got, results[2].Err)
	}
	out, _ := os.ReadFile(results[0].Log)
	if !strings.Contains(string(out), "device.threads=") || results[0].Slot != "cpu" {
		t.Errorf("parallel CPU runs do not get their share of threads:\n%s", out)
	}
}

// Cancelling interrupts the running worker (it checkpoints, exit 130),
// starts no more, and a rerun resumes the interrupted run.
func TestLocalInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a worker")
	}
	s := Spec{Datasets: []string{"embedded"}, Conditions: []string{"pad"}, Seeds: 3, SeedStart: 1}
	l := fakeLocal(t, s, "PAD_FAKE_SLEEP=1m")
	ctx, cancel := context.WithCancel(context.Background())
	first := filepath.Join(l.Worker.RunsDir, "embedded-pad-s1", LogName)
	go func() {
		for {
			if b, _ := os.ReadFile(first); strings.Contains(string(b), "fake worker 0") {
				time.Sleep(100 * time.Millisecond) // let it reach its signal handler
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	results, err := l.Run(ctx)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	if got := outcomes(results); got != "interrupted,not run,not run" || results[0].ExitCode != 130 {
		t.Errorf("outcomes %s, exit %d", got, results[0].ExitCode)
	}
	if results[0].After.State != Partial {
		t.Errorf("after the interruption: %+v", results[0].After)
	}
	l.Env = []string{fakeWorkerEnv + "=1"}
	results, err = l.Run(context.Background())
	if err != nil || outcomes(results) != "resumed,trained,trained" {
		t.Errorf("rerun: %s, %v", outcomes(results), err)
	}

	// Kill: a worker that ignores the interrupt is killed.
	l = fakeLocal(t, s, "PAD_FAKE_SLEEP=1m")
	kill := make(chan struct{})
	l.Kill = kill
	time.AfterFunc(300*time.Millisecond, func() { close(kill) })
	done := make(chan struct{})
	go func() {
		results, err = l.Run(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Kill did not stop the worker")
	}
	if err == nil || outcomes(results) != "FAILED,not run,not run" || results[0].ExitCode != -1 {
		t.Errorf("killed: %s, exit %d, %v", outcomes(results), results[0].ExitCode, err)
	}
}
