// Command cudasim builds pad's simulated NVIDIA libraries (package
// internal/cudasim) and prints, as its last line, the folder they are in:
//
//	make cudasim                      # or: go run ./internal/cudasim/cmd/cudasim
//	PAD_CUDA_LIB_DIR=<folder> pad doctor --device cuda
//	PAD_CUDA_LIB_DIR=<folder> pad train --device cuda
//
// With -o DIR it builds into DIR (made if needed) instead of the cache
// folder the tests share.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pad-dreaming/pad/internal/cudasim"
)

func main() {
	out := flag.String("o", "", "build into this folder instead of the shared cache folder")
	flag.Parse()
	dir, err := build(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "simulated libcuda, NVRTC, cuDNN and cuBLAS (not a GPU): use PAD_CUDA_LIB_DIR=<folder below>")
	fmt.Println(dir)
}

func build(out string) (string, error) {
	if out == "" {
		return cudasim.Ensure()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	return out, cudasim.Build(out)
}
