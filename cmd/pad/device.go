package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"golang.org/x/term"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/configs"
)

// openBackend opens the device the config asks for. With "auto" it tries
// CUDA and falls back to the CPU with a notice.
func openBackend(d configs.Device, log io.Writer) (backend.Backend, error) {
	switch d.Kind {
	case "cpu":
		return cpu.New(d.Threads), nil
	case "cuda", "auto":
		b, err := openCUDA(d)
		if err == nil {
			return b, nil
		}
		// auto falls back only when no GPU is usable; a GPU that fails to
		// set up is an error to see, not a reason to train slowly.
		if d.Kind == "cuda" || !errors.Is(err, cuda.ErrUnavailable) {
			return nil, err
		}
		fmt.Fprintf(log, "notice: %v; using the CPU\n", err)
		return cpu.New(d.Threads), nil
	}
	return nil, usagef("device.kind = %q: want auto, cpu or cuda", d.Kind)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return "pad " + v
}
