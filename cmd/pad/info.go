package main

import (
	"fmt"
	"runtime"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/phases"
)

const infoUsage = `
Usage: pad info

Prints pad's version, the CPU it sees, the GPU, driver, CUDA, cuDNN and
cuBLAS versions when an NVIDIA GPU is usable (or why not), the datasets,
conditions and built-in configs.
`

func cmdInfo(args []string, e *env) error {
	fs := newFlags(e, "info", infoUsage)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(e.stdout, "cpu:        %d threads\n", runtime.GOMAXPROCS(0))
	if s, err := describeCUDA(); err != nil {
		fmt.Fprintf(e.stdout, "cuda:       unavailable: %v\n", err)
	} else {
		fmt.Fprint(e.stdout, s)
	}
	fmt.Fprintf(e.stdout, "datasets:   %v\n", dataset.Names())
	fmt.Fprintf(e.stdout, "conditions: %v\n", phases.ConditionNames())
	fmt.Fprintf(e.stdout, "configs:    %v\n", configs.Files())
	return nil
}
