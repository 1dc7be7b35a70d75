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

func describeCUDA() (string, error) {
	if err := cu.Init(); err != nil {
		return "", err
	}
	var b strings.Builder
	drv, _ := cu.DriverVersion()
	fmt.Fprintf(&b, "driver:     %s, CUDA %d.%d\n", cu.DriverLibrary(), drv/1000, drv%1000/10)
	n, err := cu.DeviceCount()
	if err != nil {
		return "", err
	}
	for i := 0; i < n; i++ {
		d, err := cu.DeviceGet(i)
		if err != nil {
			return "", err
		}
		name, _ := d.Name()
		ma, mi, _ := d.ComputeCapability()
		mem, _ := d.TotalMem()
		fmt.Fprintf(&b, "gpu %d:      %s, sm_%d%d, %.1f GiB\n", i, name, ma, mi, float64(mem)/(1<<30))
	}
	if ma, mi, err := cu.NVRTCVersion(); err == nil {
		fmt.Fprintf(&b, "nvrtc:      %d.%d (%s)\n", ma, mi, cu.NVRTCLibrary())
	} else {
		fmt.Fprintf(&b, "nvrtc:      unavailable: %v\n", err)
	}
	if v, err := cu.DNNVersion(); err == nil {
		fmt.Fprintf(&b, "cudnn:      %d.%d.%d (%s)\n", v/10000, v%10000/100, v%100, cu.DNNLibrary())
	} else {
		fmt.Fprintf(&b, "cudnn:      unavailable: %v\n", err)
	}
	if bl, err := cu.NewBLAS(); err == nil {
		if v, err := bl.Version(); err == nil {
			fmt.Fprintf(&b, "cublas:     %d.%d.%d (%s)\n", v/10000, v%10000/100, v%100, cu.BLASLibrary())
		}
		bl.Destroy()
	} else {
		fmt.Fprintf(&b, "cublas:     unavailable: %v\n", err)
	}
	return b.String(), nil
}
