package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/kernels"
)

func init() {
	// All device work runs on the main goroutine, which stays on the main
	// OS thread: a CUDA context is current on one thread.
	runtime.LockOSThread()
}

// openCUDA opens the CUDA backend on the configured GPU.
func openCUDA(d configs.Device) (backend.Backend, error) {
	b, err := cuda.New(cuda.Options{Device: d.GPU, Precision: d.Precision, NoGraphs: !d.Graphs, NoOverlap: !d.Overlap, CacheDir: kernels.DefaultCacheDir()})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// describeCUDA says, a line each, where every NVIDIA library came from
// (or why it did not load and where pad looked) and which GPUs the driver
// sees. It needs no GPU.
func describeCUDA() string {
	var b strings.Builder
	libs := cu.Libraries()
	for _, l := range libs {
		label := l.Lib + ":"
		if l.Lib == "cuda" {
			label = "driver:"
		}
		switch {
		case l.Err != nil:
			fmt.Fprintf(&b, "%-11s unavailable: %v\n", label, l.Err)
			if len(l.Searched) > 0 {
				fmt.Fprintf(&b, "%-11s looked in: %s\n", "", strings.Join(l.Searched, "; "))
			}
		case l.Lib == "cuda":
			fmt.Fprintf(&b, "%-11s CUDA %s, %s (%s)\n", label, l.Version, l.Path, l.From)
		default:
			fmt.Fprintf(&b, "%-11s %s, %s (%s)\n", label, l.Version, l.Path, l.From)
		}
	}
	if libs[0].Err != nil {
		return b.String()
	}
	if err := cu.Init(); err != nil {
		fmt.Fprintf(&b, "%-11s unavailable: %v\n", "gpu:", err)
		return b.String()
	}
	n, err := cu.DeviceCount()
	if err != nil {
		fmt.Fprintf(&b, "%-11s unavailable: %v\n", "gpu:", err)
		return b.String()
	}
	for i := 0; i < n; i++ {
		d, err := cu.DeviceGet(i)
		if err != nil {
			fmt.Fprintf(&b, "gpu %d:      unavailable: %v\n", i, err)
			continue
		}
		name, _ := d.Name()
		ma, mi, _ := d.ComputeCapability()
		mem, _ := d.TotalMem()
		fmt.Fprintf(&b, "gpu %d:      %s, sm_%d%d, %.1f GiB\n", i, name, ma, mi, float64(mem)/(1<<30))
	}
	return b.String()
}
