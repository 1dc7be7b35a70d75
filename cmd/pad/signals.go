package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// withInterrupts is pad's handling of SIGINT (Ctrl-C) and SIGTERM: it
// returns a copy of parent that the first of these signals cancels, and
// stop, which ends the handling and cancels the context (call it when the
// work is done; a second call does nothing).
//
// At the first signal, onFirst runs (when not nil), then the context is
// cancelled. What a second signal does depends on onSecond:
//
//   - nil: the handling ends with the first signal, so the second one
//     meets the default action and ends the process at once (pad train,
//     pad data fetch: a second Ctrl-C kills);
//   - otherwise the handling stays, and the second signal runs onSecond
//     (pad sweep: kill the runs).
//
// When the context ends without a signal (stop, or parent's end), the
// handling ends too.
func withInterrupts(parent context.Context, onFirst, onSecond func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopped := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(stopped)
			cancel()
		})
	}
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			signal.Stop(sigs)
			return
		}
		if onFirst != nil {
			onFirst()
		}
		if onSecond == nil {
			// The default action again, before the cancellation: once the
			// context is done, a second signal surely ends the process.
			signal.Stop(sigs)
			cancel()
			return
		}
		cancel()
		select {
		case <-sigs:
			onSecond()
		case <-stopped:
		}
	}()
	return ctx, stop
}
