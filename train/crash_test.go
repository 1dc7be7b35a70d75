//go:build unix

package train

// Tests that run the pad binary as a child process and kill it: SIGKILL at
// random moments (many during checkpoint writes), with --resume after each,
// must end in exactly the uninterrupted run. failures_test.go holds the other
// child-process tests (a file-size limit, two processes, SIGINT, wrong
// checkpoints at the command line).

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/metrics"
)

// moduleRoot returns the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// buildPad builds cmd/pad into a temporary directory of t.
func buildPad(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the pad binary with")
	}
	bin := filepath.Join(t.TempDir(), "pad")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/pad")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pad: %v\n%s", err, out)
	}
	return bin
}

// childSets is the tiny run of the crash tests: 10 batches of 16 per epoch,
// 3 epochs, a checkpoint after every iteration (so that kills often land in
// a checkpoint write), one train record per iteration, one CPU thread (the
// cheapest on a loaded machine; any number gives the same bits).
var childSets = []string{
	"data.dataset=embedded", "data.train_limit=160", "data.test_limit=32",
	"model.nf=4", "model.nz=8", "train.batch=16", "train.epochs=3",
	"train.checkpoint_every=1", "train.log_every=1", "eval.every=0", "train.sample_every=0",
	"device.kind=cpu", "device.threads=1",
}

// padCmd describes `pad train` runs in one runs directory.
type padCmd struct {
	bin  string
	runs string
	sets []string
}

func newPadCmd(bin, runs string, extra ...string) padCmd {
	return padCmd{bin: bin, runs: runs, sets: append(append([]string{}, childSets...), extra...)}
}

// dir is the run directory (the quickstart's name: no --config is given).
func (p padCmd) dir() string {
	for _, s := range p.sets {
		if name, ok := strings.CutPrefix(s, "name="); ok {
			return filepath.Join(p.runs, name)
		}
	}
	return filepath.Join(p.runs, "quickstart")
}

func (p padCmd) args(resume bool, extra ...string) []string {
	args := []string{"train", "--runs", p.runs, "--progress", "lines"}
	for _, s := range p.sets {
		args = append(args, "--set", s)
	}
	if resume {
		args = append(args, "--resume")
	}
	return append(args, extra...)
}

// command returns the exec.Cmd of `pad train`, its stderr watched by w.
func (p padCmd) command(w *watcher, resume bool, extra ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, p.args(resume, extra...)...)
	cmd.Stdout = w
	cmd.Stderr = w
	return cmd
}

// run runs `pad train` to its end and returns its exit code and output.
func (p padCmd) run(t *testing.T, resume bool, extra ...string) (int, string) {
	t.Helper()
	w := &watcher{}
	err := p.command(w, resume, extra...).Run()
	return exitCodeOf(t, err), w.text()
}

// exitCodeOf returns the exit code of a finished command (-1 when a signal
// ended it).
func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("running pad: %v", err)
	return 0
}

// watcher collects a child's output and the last iteration it logged.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	iter int
}

var iterLine = regexp.MustCompile(`\] it (\d+) `)

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := bytes.LastIndexByte(w.buf.Bytes(), '\n') + 1
	w.buf.Write(p)
	for _, m := range iterLine.FindAllSubmatch(w.buf.Bytes()[start:], -1) {
		if n, _ := strconv.Atoi(string(m[1])); n > w.iter {
			w.iter = n
		}
	}
	return len(p), nil
}

func (w *watcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watcher) lastIter() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.iter
}

// signalAfter starts cmd (its output watched by w), waits until it logs
// iteration after (failing the test if it does not within timeout), sends
// it sigs in turn and returns what Wait returned.
func signalAfter(t *testing.T, cmd *exec.Cmd, w *watcher, after int, timeout time.Duration, sigs ...os.Signal) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var err error
	go func() { err = cmd.Wait(); close(exited) }()
	if !waitFor(func() bool { return w.lastIter() >= after }, exited, timeout) {
		<-exited
		t.Fatalf("no iteration %d logged:\n%s", after, w.text())
	}
	for _, sig := range sigs {
		cmd.Process.Signal(sig)
	}
	<-exited
	return err
}

// waitFor polls cond every 100 µs until it holds, the process exits (done
// is closed) or the timeout passes, and reports whether it held.
func waitFor(cond func() bool, done <-chan struct{}, timeout time.Duration) bool {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		select {
		case <-done:
			return cond()
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// hasTemp reports whether dir holds a temporary checkpoint file.
func hasTemp(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "."+CheckpointName+".tmp*"))
	return len(m) > 0
}

// checkValidRun checks what a killed process left: the checkpoint, if any,
// reads; metrics.jsonl, if any, reads (a torn last line is allowed).
// It returns the checkpoint's iteration, or -1.
func checkValidRun(t *testing.T, dir string) int {
	t.Helper()
	iter := -1
	if path := filepath.Join(dir, CheckpointName); fileExists(path) {
		c, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatalf("a kill left an unreadable checkpoint: %v", err)
		}
		iter = c.State.Iter
	}
	if path := filepath.Join(dir, metrics.FileName); fileExists(path) {
		if _, _, err := metrics.ReadFile(path); err != nil {
			t.Fatalf("a kill left an unreadable metrics.jsonl: %v", err)
		}
	}
	return iter
}

// TestCrashAndResume kills `pad train` with SIGKILL again and again — soon
// after start, after random delays, after some iterations, and when a
// checkpoint's temporary file appears — and restarts it with --resume (or
// afresh while there is no checkpoint) until it completes. Every kill must
// leave a readable checkpoint, and the completed run must equal an
// uninterrupted one: every F32 tensor bit for bit, and exactly its train
// and epoch records. PAD_CRASH_SEED picks another sequence of kills.
func TestCrashAndResume(t *testing.T) {
	bin := buildPad(t)
	base := t.TempDir()
	ref := newPadCmd(bin, filepath.Join(base, "ref"))
	if code, out := ref.run(t, false); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
	}

	seed := uint64(1)
	if s := os.Getenv("PAD_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PAD_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	rnd := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	const minKills, maxKills, maxStarts = 20, 45, 120

	p := newPadCmd(bin, filepath.Join(base, "crash"))
	dir := p.dir()
	var kills, duringWrite, fresh, starts int
	byKind := map[string]int{}
	start := time.Now()
	for {
		starts++
		if starts > maxStarts {
			t.Fatalf("no completed run after %d starts (%d kills)", maxStarts, kills)
		}
		resume := fileExists(filepath.Join(dir, CheckpointName))
		if !resume {
			fresh++
		}
		w := &watcher{}
		cmd := p.command(w, resume)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		from := checkValidRun(t, dir)

		kind := "none"
		if kills < maxKills {
			switch r := rnd.IntN(100); {
			case r < 20: // during start-up: flag parsing, data loading, New
				kind = "start-up"
				time.Sleep(time.Duration(rnd.IntN(40_000)) * time.Microsecond)
			case r < 35: // anywhere
				kind = "random"
				time.Sleep(time.Duration(rnd.IntN(250_000)) * time.Microsecond)
			case r < 70: // in a checkpoint write
				kind = "checkpoint write"
				waitFor(func() bool { return hasTemp(dir) }, exited, 10*time.Second)
			default: // a little after an iteration's log line
				kind = "after iteration"
				target := max(from, 0) + 1 + rnd.IntN(2)
				waitFor(func() bool { return w.lastIter() >= target }, exited, 10*time.Second)
				time.Sleep(time.Duration(rnd.IntN(3000)) * time.Microsecond)
			}
			cmd.Process.Signal(syscall.SIGKILL)
		}
		<-exited
		st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case waitErr == nil:
			// Completed (the kill, if any, came too late).
		case st.Signaled() && st.Signal() == syscall.SIGKILL:
			kills++
			byKind[kind]++
			if hasTemp(dir) {
				duringWrite++
			}
			checkValidRun(t, dir)
			continue
		default:
			t.Fatalf("start %d (resume %v): %v\n%s", starts, resume, waitErr, w.text())
		}
		break
	}
	elapsed := time.Since(start)
	t.Logf("seed %d: %d starts (%d fresh), %d SIGKILLs %v, %d of them left a checkpoint write unfinished; %.1f s",
		seed, starts, fresh, kills, byKind, duringWrite, elapsed.Seconds())
	if kills < minKills {
		t.Fatalf("only %d kills landed before the run completed, want at least %d", kills, minKills)
	}
	if duringWrite == 0 {
		t.Errorf("no kill landed during a checkpoint write")
	}

	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Epoch != 3 || c.State.Index != 0 || c.State.Iter != 30 {
		t.Fatalf("final checkpoint at %+v, want epoch 3, iteration 30", c.State.Position)
	}
	sameCheckpoint(t, ref.dir(), dir)
	sameRecords(t, "train records", recordsOf(t, ref.dir(), metrics.KindTrain), recordsOf(t, dir, metrics.KindTrain))
	sameRecords(t, "epoch records", recordsOf(t, ref.dir(), metrics.KindEpoch), recordsOf(t, dir, metrics.KindEpoch))
	if tmp := tempNames(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left after the final run: %v", tmp)
	}
	if n := len(recordsOf(t, dir, metrics.KindTrain)); n != 30 {
		t.Errorf("%d train records, want 30", n)
	}
}

// TestResumeAfterKillBeforeFirstCheckpoint is the job that always passes
// --resume (a crash-recovery loop, a cluster job script): `pad train
// --resume` killed before its first checkpoint — at start-up, once
// config.toml exists; in the middle of the first epoch; during the first
// checkpoint write — is started again with the same command each time,
// and the run completes equal to an uninterrupted one.
func TestResumeAfterKillBeforeFirstCheckpoint(t *testing.T) {
	bin := buildPad(t)
	base := t.TempDir()
	// One checkpoint per epoch: the first one comes after iteration 10.
	const perEpoch = "train.checkpoint_every=0"
	ref := newPadCmd(bin, filepath.Join(base, "ref"), perEpoch)
	if code, out := ref.run(t, false); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
	}
	p := newPadCmd(bin, filepath.Join(base, "crash"), perEpoch)
	dir := p.dir()
	ckpt := filepath.Join(dir, CheckpointName)

	// kill starts `pad train --resume`, kills it with SIGKILL once when
	// holds, and returns its output. A run that ends by itself fails the
	// test.
	kill := func(what string, when func(*watcher) bool) string {
		t.Helper()
		w := &watcher{}
		cmd := p.command(w, true)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		if !waitFor(func() bool { return when(w) }, exited, 30*time.Second) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("%s: the moment to kill never came (%v)\n%s", what, waitErr, w.text())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !st.Signaled() || st.Signal() != syscall.SIGKILL {
			t.Fatalf("%s: pad was not killed (%v)\n%s", what, waitErr, w.text())
		}
		checkValidRun(t, dir)
		return w.text()
	}

	// At start-up: config.toml, an empty metrics.jsonl and an event file.
	kill("start-up", func(*watcher) bool { return fileExists(filepath.Join(dir, "config.toml")) })
	if fileExists(ckpt) {
		t.Fatal("a checkpoint after a kill at start-up")
	}
	// In the first epoch, after some iterations were logged.
	kill("first epoch", func(w *watcher) bool { return w.lastIter() >= 3 })
	if fileExists(ckpt) {
		t.Fatal("a checkpoint after a kill in the first epoch")
	}
	if recs, _, err := metrics.ReadFile(filepath.Join(dir, metrics.FileName)); err != nil || len(recs) == 0 {
		t.Fatalf("the killed attempt logged nothing (%v)", err)
	}
	// During the first checkpoint write: the temporary file exists, the
	// checkpoint does not. A kill that comes after the rename is retried
	// from an empty runs folder (which --resume starts, too).
	landed, tries := false, 0
	for ; tries < 20 && !landed; tries++ {
		kill("first checkpoint write", func(*watcher) bool { return hasTemp(dir) })
		if landed = hasTemp(dir) && !fileExists(ckpt); !landed {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !landed {
		t.Fatal("no kill landed during the first checkpoint write in 20 tries")
	}
	t.Logf("the kill in the first checkpoint write landed at try %d", tries)

	// The same command again completes the run.
	code, out := p.run(t, true)
	if code != 0 {
		t.Fatalf("--resume after the kills: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "notice: --resume: "+dir+" has no checkpoint to resume from; starting the run afresh; the records of the earlier attempt are kept as") {
		t.Errorf("no notice of the fresh start:\n%s", out)
	}
	sameCheckpoint(t, ref.dir(), dir)
	sameRecords(t, "train records", recordsOf(t, ref.dir(), metrics.KindTrain), recordsOf(t, dir, metrics.KindTrain))
	sameRecords(t, "epoch records", recordsOf(t, ref.dir(), metrics.KindEpoch), recordsOf(t, dir, metrics.KindEpoch))
	if tmp := tempNames(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left after the final run: %v", tmp)
	}
	if kept, _ := filepath.Glob(filepath.Join(dir, metrics.FileName+".abandoned-*")); len(kept) == 0 {
		t.Error("the killed attempts' records were not kept aside")
	}
}
