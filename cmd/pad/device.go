package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/doctor"
	"github.com/pad-dreaming/pad/kernels"
	"github.com/pad-dreaming/pad/phases"
)

// openBackend opens the device the config asks for. With "auto" it tries
// CUDA and falls back to the CPU with a notice when no GPU is usable. A
// GPU is trusted (with "auto" and "cuda") only once the quick part of
// pad doctor has passed on it (trustGPU); otherwise "auto" trains on the
// CPU and "cuda" is an error, both naming the failed check.
func openBackend(d configs.Device, log io.Writer) (backend.Backend, error) {
	switch d.Kind {
	case "cpu":
		return cpu.New(d.Threads), nil
	case "cuda", "auto":
		b, err := gpuGate.open(d)
		if err != nil {
			// auto falls back only when no GPU is usable; a GPU that fails to
			// set up is an error to see, not a reason to train slowly.
			if !errors.Is(err, cuda.ErrUnavailable) {
				return nil, fmt.Errorf("GPU %d could not be set up: %w", d.GPU, err)
			}
			if d.Kind == "cuda" {
				return nil, err
			}
			fmt.Fprintf(log, "notice: %v; using the CPU\n", err)
			return cpu.New(d.Threads), nil
		}
		if err := trustGPU(d, log); err != nil {
			b.Close()
			if d.Kind == "cuda" {
				return nil, err
			}
			fmt.Fprintf(log, "notice: %v; using the CPU\n", err)
			return cpu.New(d.Threads), nil
		}
		return b, nil
	}
	return nil, usagef("device.kind = %q: want auto, cpu or cuda", d.Kind)
}

// gpuGate holds what deciding to trust a GPU needs; tests replace it.
var gpuGate = struct {
	open     func(configs.Device) (backend.Backend, error) // open the GPU as training will
	identify func(configs.Device) (doctor.Identity, error) // the GPU, driver, libraries and pad version
	quick    func(configs.Device) *doctor.Report           // run the quick check
	cacheDir func() string                                 // where verdicts are kept
}{
	open:     openCUDA,
	identify: func(d configs.Device) (doctor.Identity, error) { return doctor.Identify(d.GPU, versionString()) },
	quick:    quickCheck,
	cacheDir: doctor.DefaultCacheDir,
}

// quickCheck runs the quick part of pad doctor on the configured GPU: the
// libraries, the kernel compilation and the parity of every op of the
// paper's model, with 1 and 3 channels, with the CPU.
func quickCheck(d configs.Device) *doctor.Report {
	cond, _ := conditions.Lookup("pad")
	o := doctor.Options{
		Specs:      paperSpecs(),
		Condition:  cond,
		Phases:     phases.Options{Seed: 1, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8},
		Configured: doctor.Variant{Precision: d.Precision, Graphs: d.Graphs, Overlap: d.Overlap},
		Quick:      true,
	}
	return doctor.Run(doctor.CUDA(d.GPU, kernels.DefaultCacheDir(), d.Threads), o)
}

// trustGPU returns nil when the quick check has passed for this GPU,
// driver, set of libraries and pad version: from the verdict kept beside
// the kernel cache, or by running it once now (and keeping its verdict).
// A verdict that cannot be read is checked again; one that cannot be
// written is only lost.
func trustGPU(d configs.Device, log io.Writer) error {
	id, err := gpuGate.identify(d)
	if err != nil {
		return fmt.Errorf("GPU %d cannot be identified for pad's check: %w", d.GPU, err)
	}
	cache := doctor.Cache{Dir: gpuGate.cacheDir()}
	v, err := cache.Load(id)
	if err != nil || v == nil {
		fmt.Fprint(log, "checking the GPU once (pad doctor --quick) ... ")
		start := time.Now()
		v = doctor.NewVerdict(id, gpuGate.quick(d))
		result := "passed"
		if !v.Pass {
			result = "failed"
		}
		fmt.Fprintf(log, "%s in %.1f s", result, time.Since(start).Seconds())
		if err := cache.Store(v); err != nil {
			fmt.Fprintf(log, " (the verdict is not kept: %v)", err)
		}
		fmt.Fprintln(log)
	}
	return v.Err()
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// versionString is pad's version as the binary records it.
func versionString() string { return doctor.Version() }
