//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/train"
)

// waitClosed reports whether c is closed within a few seconds.
func waitClosed[T any](c <-chan T) bool {
	select {
	case <-c:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// A real signal to this process: the first (SIGTERM) runs onFirst and then
// cancels the context; the second (SIGINT) runs onSecond.
func TestWithInterruptsSecondSignalRunsCallback(t *testing.T) {
	first, second := make(chan struct{}), make(chan struct{})
	firstBeforeCancel := make(chan bool, 1)
	ctxOf := make(chan context.Context, 1) // ctx, for onFirst
	ctx, stop := withInterrupts(context.Background(), func() {
		firstBeforeCancel <- (<-ctxOf).Err() == nil
		close(first)
	}, func() { close(second) })
	defer stop()
	ctxOf <- ctx
	if ctx.Err() != nil {
		t.Fatal("the context is done before any signal")
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(ctx.Done()) {
		t.Fatal("the first signal did not cancel the context")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("ctx.Err() = %v, want context.Canceled", ctx.Err())
	}
	select {
	case <-first:
		if !<-firstBeforeCancel {
			t.Error("onFirst ran after the context was cancelled")
		}
	default:
		t.Error("the first signal cancelled the context without running onFirst")
	}
	select {
	case <-second:
		t.Fatal("onSecond ran after one signal")
	default:
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(second) {
		t.Fatal("the second signal did not run onSecond")
	}
	stop()
	stop() // a second stop does nothing
}

// stop without a signal cancels the context and runs no callback.
func TestWithInterruptsStop(t *testing.T) {
	called := make(chan string, 2)
	ctx, stop := withInterrupts(context.Background(), func() { called <- "first" }, func() { called <- "second" })
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop did not cancel the context")
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case c := <-called:
		t.Errorf("on%s ran without a signal", strings.ToUpper(c[:1])+c[1:])
	default:
	}
}

// signalsChildEnv makes the test binary run the child of
// TestWithInterruptsSecondSignalKills.
const signalsChildEnv = "PAD_SIGNALS_TEST_CHILD"

// Without onSecond, the first SIGINT cancels the context and the second
// meets the default action: the process dies of it at once. Checked in a
// child process, which the second signal kills.
func TestWithInterruptsSecondSignalKills(t *testing.T) {
	if os.Getenv(signalsChildEnv) == "1" {
		ctx, stop := withInterrupts(context.Background(), nil, nil)
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		if !waitClosed(ctx.Done()) {
			fmt.Println("not cancelled")
			os.Exit(3)
		}
		fmt.Println("cancelled")
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		time.Sleep(10 * time.Second)
		fmt.Println("survived the second signal")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWithInterruptsSecondSignalKills$")
	cmd.Env = append(os.Environ(), signalsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	st, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !st.Signaled() || st.Signal() != syscall.SIGINT {
		t.Fatalf("the child ended with %v, want killed by SIGINT\n%s", err, out)
	}
	if !strings.Contains(string(out), "cancelled\n") || strings.Contains(string(out), "survived") {
		t.Errorf("child output:\n%s", out)
	}
}

// The training of pad train and pad sweep run (trainJob) is interrupted
// through withInterrupts: a SIGTERM cancels the context of the Job's
// Interrupts, and its stop ends the handling.
func TestTrainJobInterrupts(t *testing.T) {
	job := trainJob(&env{stderr: io.Discard}, configs.Default(), t.TempDir(), false, train.ProgressNone)
	if job.Interrupts == nil {
		t.Fatal("trainJob has no Interrupts")
	}
	ctx, stop := job.Interrupts(context.Background())
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("the context is done before any signal")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(ctx.Done()) {
		t.Fatal("SIGTERM did not cancel the training's context")
	}
}
