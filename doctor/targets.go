package doctor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/kernels"
)

// CPU returns the CPU self-check: the float32 backend pad trains with,
// against its float64 twin, on threads threads (0: all cores).
func CPU(threads int) *Target {
	f32 := func() (backend.Backend, error) { return cpu.New(threads), nil }
	f64 := func() (backend.Backend, error) { return cpu.New64(threads), nil }
	return &Target{
		Kind:          "cpu",
		Open:          func(Variant) (backend.Backend, error) { return f32() },
		Reference:     f64,
		Ref64:         true,
		RefName:       "cpu float64 twin",
		Twin:          f64,
		SampleRef:     f64,
		SampleRefName: "float64",
		Repeatable:    true,
	}
}

// CUDA returns the check of GPU ordinal: its libraries and kernels, then
// its ops against the CPU float32 backend, at FP32 and TF32, and its
// iterations against the float64 twin with and without graphs and the
// second stream. cacheDir is the kernel cache cuda.New uses.
func CUDA(ordinal int, cacheDir string, threads int) *Target {
	open := func(v Variant) (backend.Backend, error) {
		b, err := cuda.New(cuda.Options{Device: ordinal, Precision: v.Precision, NoGraphs: !v.Graphs, NoOverlap: !v.Overlap, CacheDir: cacheDir})
		if err != nil {
			return nil, err // not a nil *cuda.Backend in an interface
		}
		return b, nil
	}
	var variants []Variant
	for _, overlap := range []bool{true, false} {
		for _, graphs := range []bool{true, false} {
			variants = append(variants, Variant{Precision: "fp32", Graphs: graphs, Overlap: overlap})
		}
	}
	return &Target{
		Kind:          "cuda",
		Open:          open,
		Precisions:    []string{"fp32", "tf32"},
		Variants:      variants,
		Reference:     func() (backend.Backend, error) { return cpu.New(threads), nil },
		RefName:       "cpu float32 (ops, losses), cpu float64 twin (iterations)",
		Twin:          func() (backend.Backend, error) { return cpu.New64(threads), nil },
		SampleRef:     func() (backend.Backend, error) { return cpu.New(threads), nil },
		SampleRefName: "cpu float32",
		Memory: func() (int64, error) {
			free, total, err := cu.MemGetInfo()
			return int64(total - free), err
		},
		Bench: true,
		Setup: func(r *Report, emit func(Check)) bool { return setupCUDA(ordinal, r, emit) },
	}
}

// Probe says whether GPU ordinal can be used, opening it as training
// would; the error is cuda.New's (it matches cuda.ErrUnavailable when no
// GPU is usable).
func Probe(ordinal int, cacheDir string) error {
	b, err := cuda.New(cuda.Options{Device: ordinal, CacheDir: cacheDir})
	if err != nil {
		return err
	}
	return b.Close()
}

// Libraries reports the NVIDIA libraries as cu.Libraries finds them.
func Libraries() []Library {
	var out []Library
	for _, l := range cu.Libraries() {
		lib := Library{Lib: l.Lib, Path: l.Path, From: l.From, Version: l.Version, Tried: l.Tried, Searched: l.Searched}
		if l.Err != nil {
			lib.Error = l.Err.Error()
		}
		out = append(out, lib)
	}
	return out
}

// libraryCheck is the check of one library. cuBLAS is optional: training
// does not use it.
func libraryCheck(l Library) Check {
	c := Check{Name: "library " + l.Lib, Quick: true, Limit: "loads"}
	if l.Lib == "cuda" {
		c.Name = "driver (libcuda)"
	}
	if l.Error == "" {
		c.Status, c.Value, c.Detail = Pass, l.Version, l.Path
		if c.Value == "" {
			c.Value = "loaded"
		}
		if l.From != "" {
			c.Detail += " (found via " + l.From + ")"
		}
		return c
	}
	c.Status, c.Value = Fail, "missing"
	c.Detail = l.Error
	if len(l.Searched) > 0 {
		c.Detail += "; looked in: " + strings.Join(l.Searched, "; ")
	}
	if l.Lib == "cublas" {
		c.Status, c.Limit = Info, "optional"
		c.Detail = "not used by training; " + c.Detail
	}
	return c
}

// setupCUDA emits the library, GPU and kernel-compilation checks.
func setupCUDA(ordinal int, r *Report, emit func(Check)) bool {
	start := time.Now()
	r.Libraries = Libraries()
	libSecs := time.Since(start).Seconds() / float64(max(len(r.Libraries), 1))
	ok := true
	for _, l := range r.Libraries {
		c := libraryCheck(l)
		c.Seconds = libSecs
		if c.Status == Fail {
			ok = false
		}
		emit(c)
		if l.Lib == "cuda" {
			r.GPU = &GPU{Ordinal: ordinal, Driver: l.Version}
		}
	}
	var gpu GPU
	c := timedCheck(fmt.Sprintf("gpu %d", ordinal), func(c *Check) {
		g, err := describeGPU(ordinal)
		if err != nil {
			c.Status, c.Value, c.Detail = Fail, "unusable", err.Error()
			return
		}
		gpu = g
		c.Status, c.Limit = Pass, "usable"
		c.Value = fmt.Sprintf("sm_%d%d", g.Major, g.Minor)
		c.Detail = fmt.Sprintf("%s, %.1f GiB", g.Name, float64(g.MemoryBytes)/(1<<30))
		if r.GPU != nil {
			g.Driver = r.GPU.Driver
			c.Detail += ", driver CUDA " + g.Driver
		}
		r.GPU = &g
	})
	emit(c)
	if c.Status != Pass {
		return false
	}
	nvrtcOK := true
	for _, l := range r.Libraries {
		if l.Lib == "nvrtc" && l.Error != "" {
			nvrtcOK = false
		}
	}
	if !nvrtcOK {
		emit(Check{Name: "compile kernels", Status: Skip, Detail: "NVRTC did not load", Quick: true})
		return false
	}
	for _, fam := range kernels.Families() {
		c := timedCheck("compile "+fam+".cu", func(c *Check) {
			src, err := kernels.Source(fam)
			if err != nil {
				c.Status, c.Detail = Fail, err.Error()
				return
			}
			opts := append([]string{cu.ArchFlag(gpu.Major, gpu.Minor)}, kernels.Options...)
			cubin, log, err := cu.Compile(src, fam+".cu", opts)
			c.Limit = "compiles"
			if err != nil {
				c.Status, c.Value, c.Detail = Fail, "error", err.Error()
				return
			}
			c.Status, c.Value = Pass, fmt.Sprintf("%d KiB", (len(cubin)+1023)/1024)
			c.Detail = fmt.Sprintf("NVRTC, %s", strings.Join(opts, " "))
			if log = strings.TrimSpace(log); log != "" {
				c.Detail += "; compiler log: " + strings.Join(strings.Fields(log), " ")
			}
		})
		if c.Status != Pass {
			ok = false
		}
		emit(c)
	}
	return ok
}

// describeGPU reads the properties of GPU ordinal.
func describeGPU(ordinal int) (GPU, error) {
	g := GPU{Ordinal: ordinal}
	if err := cu.Init(); err != nil {
		return g, err
	}
	n, err := cu.DeviceCount()
	if err != nil {
		return g, err
	}
	if ordinal < 0 || ordinal >= n {
		return g, fmt.Errorf("device %d requested, %d present", ordinal, n)
	}
	d, err := cu.DeviceGet(ordinal)
	if err != nil {
		return g, err
	}
	if g.Name, err = d.Name(); err != nil {
		return g, err
	}
	if g.Major, g.Minor, err = d.ComputeCapability(); err != nil {
		return g, err
	}
	mem, err := d.TotalMem()
	if err != nil {
		return g, err
	}
	g.MemoryBytes = int64(mem)
	return g, nil
}

// timedCheck runs f, which fills in a quick check, and times it.
func timedCheck(name string, f func(c *Check)) Check {
	c := Check{Name: name, Quick: true}
	start := time.Now()
	f(&c)
	c.Seconds = time.Since(start).Seconds()
	return c
}

// Unavailable reports whether err says that no GPU is usable (as opposed
// to a GPU that failed to set up).
func Unavailable(err error) bool { return errors.Is(err, cuda.ErrUnavailable) }
