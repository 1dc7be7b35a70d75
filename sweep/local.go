package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pad-dreaming/pad/internal/shell"
)

// LogName is the file in each run directory that a local sweep appends
// the output of the run's worker process to.
const LogName = "sweep.log"

// ErrInterrupted is returned by Local.Run when its context was cancelled:
// the running workers were interrupted (they checkpoint) and the runs not
// yet started were left alone.
var ErrInterrupted = errors.New("sweep interrupted")

// Local runs a sweep on this machine, one worker process (`pad sweep run
// --index I`) per run: one run at a time on each GPU, or on the CPU.
type Local struct {
	// Exe is the pad executable to start the workers with.
	Exe string
	// Worker is the sweep and the flags every worker gets.
	Worker Worker
	// GPUs is the number of GPUs to use (device.gpu 0..GPUs-1); 0 runs on
	// the CPU.
	GPUs int
	// Parallel is the number of runs at once; 0 means one per GPU, or one
	// on the CPU. Above GPUs, GPUs are shared round-robin; on the CPU,
	// each run gets NumCPU/Parallel threads unless device.threads is set.
	Parallel int
	// Env is added to the workers' environment.
	Env []string
	// Log receives a line as each run starts and ends (nil: discarded).
	Log io.Writer
	// Tee copies the workers' output to Log besides their sweep.log.
	Tee bool
	// Kill, when closed, kills the running workers at once (a second
	// Ctrl-C); cancelling Run's context interrupts them gracefully.
	Kill <-chan struct{}
}

// Outcome is what happened to one run of a local sweep.
type Outcome int

const (
	// NotRun: the sweep was interrupted before the run started.
	NotRun Outcome = iota
	// Skipped: the run was finished before the sweep started.
	Skipped
	// Trained: the run was trained from the start and finished.
	Trained
	// Resumed: the run continued from its checkpoint and finished.
	Resumed
	// Interrupted: the sweep was interrupted while the run trained; its
	// checkpoint holds the state.
	Interrupted
	// Failed: the worker failed, or the run directory cannot be used.
	Failed
)

func (o Outcome) String() string {
	return [...]string{"not run", "skipped", "trained", "resumed", "interrupted", "FAILED"}[o]
}

// Result is one run's line of a local sweep's summary.
type Result struct {
	Run     Run
	Outcome Outcome
	// Before and After are the run's status before and after the sweep
	// ran it.
	Before, After Status
	// Slot is where it ran: "gpu K" or "cpu".
	Slot string
	// ExitCode is the worker's exit code (-1 when killed, or not run).
	ExitCode int
	// Err says why the run failed.
	Err     error
	Elapsed time.Duration
	// Log is the worker's log file.
	Log string
}

// Run runs every run of the sweep that is not finished yet, Parallel at
// a time, and returns one Result per run in index order. A failed run is
// reported and the others go on; the error then names the failed runs.
// Cancelling ctx interrupts the running workers, starts no more, and
// returns ErrInterrupted.
func (l Local) Run(ctx context.Context) ([]Result, error) {
	if l.Exe == "" {
		return nil, errors.New("sweep: no pad executable to start the runs with")
	}
	if l.GPUs < 0 || l.Parallel < 0 {
		return nil, fmt.Errorf("sweep: --gpus %d, --parallel %d: want 0 or more", l.GPUs, l.Parallel)
	}
	log := l.Log
	if log == nil {
		log = io.Discard
	}
	slots := l.Parallel
	if slots == 0 {
		slots = max(l.GPUs, 1)
	}

	var mu sync.Mutex // serialises Log lines and the counter
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(log, format, a...)
	}
	results, queued := l.checkRuns(say)
	todo := make(chan int, len(queued))
	for _, i := range queued {
		todo <- i
	}
	close(todo)
	total := len(queued)
	started := 0

	var wg sync.WaitGroup
	for slot := 0; slot < slots; slot++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			where, extra := l.slotDevice(slot, slots)
			for i := range todo {
				if ctx.Err() != nil || closed(l.Kill) {
					continue // drain: the rest are not run
				}
				res := &results[i]
				res.Slot = where
				mu.Lock()
				started++
				n := started
				mu.Unlock()
				verb := "start"
				if res.Before.State == Partial {
					verb = "resume (" + res.Before.Progress() + ")"
				}
				say("[%d/%d] %s %s on %s; log: %s\n", n, total, verb, res.Run.Name(), where, res.Log)
				l.runOne(ctx, res, extra, log, &mu)
				msg := res.Outcome.String()
				if res.Err != nil {
					msg += ": " + res.Err.Error()
				}
				say("[%d/%d] %s %s after %s\n", n, total, res.Run.Name(), msg, res.Elapsed.Round(100*time.Millisecond))
			}
		}()
	}
	wg.Wait()

	if ctx.Err() != nil {
		return results, ErrInterrupted
	}
	return results, failures(results)
}

// checkRuns looks at every run directory before any worker starts: it
// skips the finished runs, fails the ones whose directory cannot be used,
// and queues the rest, then says how many of each there are. Doing this
// first gives the [n/total] lines their total, and reports an unusable
// directory at once instead of after hours of training the others. It
// returns one Result per run, in index order, and the indexes queued.
func (l Local) checkRuns(say func(format string, a ...any)) (results []Result, queued []int) {
	s := l.Worker.Spec
	runs := s.Runs()
	results = make([]Result, len(runs))
	finished, unusable := 0, 0
	for i, r := range runs {
		res := &results[i]
		*res = Result{Run: r, ExitCode: -1, Log: filepath.Join(l.Worker.RunsDir, r.Name(), LogName)}
		cfg, err := s.Config(r)
		if err == nil {
			res.Before, err = Check(cfg, filepath.Join(l.Worker.RunsDir, r.Name()))
		}
		switch {
		case err != nil:
			res.Outcome, res.Err = Failed, err
			unusable++
			say("%s: %v\n", r.Name(), err)
		case res.Before.State == Finished:
			res.Outcome, res.After = Skipped, res.Before
			finished++
		default:
			queued = append(queued, i)
		}
	}
	msg := fmt.Sprintf("%d to train", len(queued))
	if finished > 0 {
		msg += fmt.Sprintf(", %d finished already (skipped)", finished)
	}
	if unusable > 0 {
		msg += fmt.Sprintf(", %d with an unusable run directory", unusable)
	}
	say("%s\n", msg)
	return results, queued
}

// slotDevice returns where slot (one of slots) runs its workers, as the
// log lines name it, and the flags that put them there. With GPUs, the
// slot gets GPU slot mod GPUs, so that slots beyond the GPUs share them
// round-robin. On the CPU, several slots split its cores evenly with
// device.threads, unless the sweep sets that itself: each worker would
// otherwise use all the cores (device.threads 0) and they would contend.
func (l Local) slotDevice(slot, slots int) (where string, extra []string) {
	if l.GPUs > 0 {
		g := slot % l.GPUs
		return fmt.Sprintf("gpu %d", g), []string{"--set", fmt.Sprintf("device.gpu=%d", g)}
	}
	if slots > 1 && !hasKey(l.Worker.Spec.Sets, "device.threads") {
		return "cpu", []string{"--set", fmt.Sprintf("device.threads=%d", max(1, runtime.NumCPU()/slots))}
	}
	return "cpu", nil
}

// failures returns the error of a sweep in which runs failed, naming them
// so that the user knows which logs to read; nil when none failed.
func failures(results []Result) error {
	var failed []string
	for _, r := range results {
		if r.Outcome == Failed {
			failed = append(failed, r.Run.Name())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d runs failed: %s (see their %s)", len(failed), len(results), strings.Join(failed, ", "), LogName)
	}
	return nil
}

// runOne starts the worker of res.Run and waits for it.
func (l Local) runOne(ctx context.Context, res *Result, extra []string, log io.Writer, mu *sync.Mutex) {
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	dir := filepath.Dir(res.Log)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	lf, err := os.OpenFile(res.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return
	}
	defer lf.Close()

	args := append(l.Worker.Args(strconv.Itoa(res.Run.Index)), "--progress", "lines")
	args = append(args, extra...)
	fmt.Fprintf(lf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339), filepath.Base(l.Exe), shell.Join(args))

	var out io.Writer = lf
	if l.Tee {
		out = io.MultiWriter(lf, lockedWriter{log, mu})
	}
	cmd := exec.CommandContext(ctx, l.Exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), l.Env...)
	setGroup(cmd)
	cmd.Cancel = func() error { return interrupt(cmd.Process) }
	if err := cmd.Start(); err != nil {
		res.Outcome, res.Err = Failed, fmt.Errorf("starting %s: %w", l.Exe, err)
		return
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-l.Kill:
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	res.ExitCode = cmd.ProcessState.ExitCode()
	fmt.Fprintf(lf, "=== %s: exit code %d\n", time.Now().Format(time.RFC3339), res.ExitCode)

	c, cerr := l.Worker.Spec.Config(res.Run)
	if cerr == nil {
		res.After, cerr = Check(c, dir)
	}
	switch {
	case ctx.Err() != nil && res.ExitCode != 0:
		res.Outcome = Interrupted
	case err != nil:
		res.Outcome, res.Err = Failed, fmt.Errorf("exit code %d", res.ExitCode)
	case cerr != nil:
		res.Outcome, res.Err = Failed, cerr
	case res.After.State != Finished:
		res.Outcome, res.Err = Failed, fmt.Errorf("the worker exited 0 but the run is at %s", res.After.Progress())
	case res.Before.State == Partial:
		res.Outcome = Resumed
	default:
		res.Outcome = Trained
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// closed reports whether c is closed (never, for nil).
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func hasKey(sets []string, key string) bool {
	for _, kv := range sets {
		if k, _, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// WriteSummary writes the table of a local sweep's results and a count of
// the outcomes.
func WriteSummary(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "index\trun\tresult\tprogress\twhere\ttime\tlog")
	count := map[Outcome]int{}
	for _, r := range results {
		count[r.Outcome]++
		st := r.After
		if r.Outcome == NotRun || r.Outcome == Failed && st.State == NotStarted {
			st = r.Before
		}
		progress := "-"
		switch st.State {
		case Finished:
			progress = fmt.Sprintf("epoch %d/%d", st.Epoch, st.Epochs)
		case Partial:
			progress = fmt.Sprintf("epoch %d/%d, it %d", st.Epoch, st.Epochs, st.Iter)
		}
		elapsed, where, logf := "-", "-", "-"
		if r.Elapsed > 0 {
			elapsed = r.Elapsed.Round(100 * time.Millisecond).String()
			where, logf = r.Slot, r.Log
		}
		result := r.Outcome.String()
		if r.Outcome == Failed && r.ExitCode > 0 {
			result += fmt.Sprintf(" (exit %d)", r.ExitCode)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Run.Index, r.Run.Name(), result, progress, where, elapsed, logf)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, o := range []Outcome{Trained, Resumed, Skipped, Interrupted, NotRun, Failed} {
		if count[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[o], o))
		}
	}
	_, err := fmt.Fprintf(w, "%d runs: %s\n", len(results), strings.Join(parts, ", "))
	return err
}
