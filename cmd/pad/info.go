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

Prints pad's version, the CPU it sees, each NVIDIA library (the driver,
NVRTC, cuBLAS, cuDNN) with its version and where it was found — or why it
did not load and where pad looked — the GPUs, the datasets, conditions and
built-in configs.

The libraries are searched for in this order: the folders in
$PAD_CUDA_LIB_DIR (colon-separated), $CUDA_HOME or $CUDA_PATH, the active
virtualenv's and python3's pip wheels (site-packages/nvidia/*/lib),
$CONDA_PREFIX/lib, /usr/local/cuda*/lib64, then the dynamic loader's path.
The driver (libcuda.so.1) comes from $PAD_CUDA_LIB_DIR or the loader's path.
Accepted versions: NVRTC 13, 12 or 11.2 (CUDA 11.8), cuDNN 9 or 8, cuBLAS
13, 12 or 11 (cuBLAS is not needed to train).
`

func cmdInfo(args []string, e *env) error {
	fs := newFlags(e, "info", infoUsage)
	if err := parse(fs, args, e); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(e.stdout, "cpu:        %d threads\n", runtime.GOMAXPROCS(0))
	fmt.Fprint(e.stdout, describeCUDA())
	fmt.Fprintf(e.stdout, "datasets:   %v\n", dataset.Names())
	fmt.Fprintf(e.stdout, "conditions: %v\n", phases.ConditionNames())
	fmt.Fprintf(e.stdout, "configs:    %v\n", configs.Files())
	return nil
}
