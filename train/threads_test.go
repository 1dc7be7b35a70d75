package train

// The CPU backend's thread count (device.threads) must not change a run:
// the same seed trains to the same bits on 1, 2 or 3 threads, and a run
// interrupted on one thread count and resumed on another ends where the
// uninterrupted run does.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/vec"
	"github.com/pad-dreaming/pad/metrics"
)

// threadsConfig is tiny's run with device.threads set and a model just big
// enough that the CPU backend's GEMM splits products between threads (over
// n, and over k for the weight gradients of conv1 and conv2), stopped after
// a dozen iterations.
func threadsConfig(t *testing.T, threads int) configs.Config {
	t.Helper()
	return tiny(t, "model.nf=8", "model.nz=16", "train.max_iters=12", "train.checkpoint_every=0",
		"device.threads="+strconv.Itoa(threads))
}

// runThreads trains cfg in dir on a CPU backend with cfg's device.threads.
func runThreads(t *testing.T, cfg configs.Config, dir string, resume bool, ctx context.Context, log io.Writer) error {
	t.Helper()
	return runOn(t, cpu.New(cfg.Device.Threads), cfg, dir, resume, ctx, log)
}

// runOn trains cfg in dir on b.
func runOn(t *testing.T, b *cpu.Backend[float32], cfg configs.Config, dir string, resume bool, ctx context.Context, log io.Writer) error {
	t.Helper()
	if b.Threads() != cfg.Device.Threads {
		t.Fatalf("backend on %d threads, want %d", b.Threads(), cfg.Device.Threads)
	}
	tr, err := New(Options{Config: cfg, Dir: dir, Resume: resume, Backend: b, Log: log, Progress: ProgressLines})
	if err != nil {
		return err
	}
	defer tr.Close()
	_, err = tr.Run(ctx)
	return err
}

func TestThreadCountDoesNotChangeTraining(t *testing.T) {
	root := t.TempDir()
	dirOf := func(threads int) string { return filepath.Join(root, fmt.Sprintf("threads%d", threads)) }
	for _, threads := range []int{1, 2, 3} {
		if err := runThreads(t, threadsConfig(t, threads), dirOf(threads), false, context.Background(), nil); err != nil {
			t.Fatalf("%d threads: %v", threads, err)
		}
	}
	ref := dirOf(1)
	if c, err := ReadCheckpoint(filepath.Join(ref, CheckpointName)); err != nil {
		t.Fatal(err)
	} else if c.State.Position.Iter != 12 {
		t.Fatalf("the one-thread run's checkpoint is at iteration %d, want 12", c.State.Position.Iter)
	}
	for _, threads := range []int{2, 3} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			sameCheckpoint(t, ref, dirOf(threads))
			sameRecords(t, "train records", recordsOf(t, ref, metrics.KindTrain), recordsOf(t, dirOf(threads), metrics.KindTrain))
		})
	}

	// Interrupted during iteration 5 on two threads, resumed on one: the
	// same checkpoint and records as the uninterrupted runs.
	dir := filepath.Join(root, "resumed")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := runThreads(t, threadsConfig(t, 2), dir, false, ctx, &cancelAt{iter: 5, cancel: cancel})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupt at iteration 5: %v, want ErrInterrupted", err)
	}
	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Position.Iter != 5 {
		t.Fatalf("interrupted run's checkpoint at iteration %d, want 5", c.State.Position.Iter)
	}
	if err := runThreads(t, threadsConfig(t, 1), dir, true, context.Background(), nil); err != nil {
		t.Fatalf("resuming on one thread: %v", err)
	}
	sameCheckpoint(t, ref, dir)
	sameRecords(t, "train records", recordsOf(t, ref, metrics.KindTrain), recordsOf(t, dir, metrics.KindTrain))
}

// The Go-only CPU backend (the pure-Go GEMM kernel and elementwise loops)
// trains to the bits of the assembly one: the same checkpoint and records,
// on two threads, here on whatever assembly this CPU runs (AVX-512 or
// AVX2), and a run interrupted on one and resumed on the other ends the
// same.
func TestPortableCodeDoesNotChangeTraining(t *testing.T) {
	if vec.Best == vec.Portable {
		t.Skip("this CPU runs no assembly loops: both backends would run the same Go code")
	}
	root := t.TempDir()
	asm, portable, mixed := filepath.Join(root, "asm"), filepath.Join(root, "portable"), filepath.Join(root, "mixed")
	cfg := threadsConfig(t, 2)
	if err := runOn(t, cpu.New(2), cfg, asm, false, context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := runOn(t, cpu.NewPortable(2), cfg, portable, false, context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, asm, portable)
	sameRecords(t, "train records", recordsOf(t, asm, metrics.KindTrain), recordsOf(t, portable, metrics.KindTrain))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runOn(t, cpu.NewPortable(2), cfg, mixed, false, ctx, &cancelAt{iter: 5, cancel: cancel}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupt at iteration 5: %v, want ErrInterrupted", err)
	}
	if err := runOn(t, cpu.New(2), cfg, mixed, true, context.Background(), nil); err != nil {
		t.Fatalf("resuming on the assembly backend: %v", err)
	}
	sameCheckpoint(t, asm, mixed)
}
