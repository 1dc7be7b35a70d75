package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/pad-dreaming/pad"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
)

const infoUsage = `
Usage: pad info [--licenses]

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

--licenses prints instead the licences of what the binary holds: pad's own
(MIT) and that of the built-in Fashion-MNIST sample (MIT, Zalando SE).
`

func cmdInfo(args []string, e *env) error {
	fs := newFlags(e, "info", infoUsage)
	licenses := fs.Bool("licenses", false, "print the licences of pad and of the data built into it, and exit")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if *licenses {
		printLicenses(e.stdout)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(e.stdout, "cpu:        %d threads\n", runtime.GOMAXPROCS(0))
	fmt.Fprint(e.stdout, describeCUDA())
	fmt.Fprintf(e.stdout, "datasets:   %v\n", dataset.Names())
	fmt.Fprintf(e.stdout, "conditions: %v\n", conditions.Names())
	fmt.Fprintf(e.stdout, "configs:    %v\n", configs.Files())
	return nil
}

// printLicenses prints pad's licence and the notice of the Fashion-MNIST
// sample built into the binary, which the MIT licence asks to ship with it.
func printLicenses(w io.Writer) {
	fmt.Fprintf(w, "pad (https://github.com/pad-dreaming/pad) is distributed under the MIT licence:\n\n%s\n", strings.TrimRight(pad.License, "\n"))
	fmt.Fprintf(w, "\n----\n\n%s:\n\n%s\n", dataset.EmbeddedSource, strings.TrimRight(dataset.EmbeddedLicense, "\n"))
}
