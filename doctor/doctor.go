// Package doctor checks, on the machine it runs on, that a device computes
// what pad's CPU reference computes: that the NVIDIA libraries load, that
// pad's kernels compile for the GPU, that every op the model uses agrees
// with the CPU backend on fresh random inputs, that whole training
// iterations agree with the float64 twin of the CPU backend (with and
// without CUDA graphs and the second stream, graphs bit for bit the same as
// direct launches), that a short run on the embedded sample follows the
// CPU's losses, that device memory stays flat, and how fast an iteration
// is. `pad doctor` runs it; `--device auto` runs its quick part once for
// each GPU, driver, set of libraries and pad version before it trusts a GPU
// (Verdict, Cache).
//
// Without a GPU the same machinery checks the CPU float32 backend against
// its float64 twin, so the checks themselves are exercised everywhere.
//
// Devices come in through small factories (Target); results go out as a
// Report of Checks, each also handed to a progress callback as it
// finishes. All device work runs on the calling goroutine (a CUDA context
// is current on one OS thread).
package doctor

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// Status is the outcome of a check.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP" // not run: something it needs failed
	Info Status = "INFO" // a measurement without a limit, or something optional
)

// Check is the result of one check.
type Check struct {
	Name    string  `json:"name"`
	Status  Status  `json:"status"`
	Value   string  `json:"value"`            // what was measured
	Limit   string  `json:"limit"`            // what it had to satisfy ("" for none)
	Detail  string  `json:"detail,omitempty"` // where, why, what to do
	Seconds float64 `json:"seconds"`
	Quick   bool    `json:"quick"` // part of the quick check
}

// Library is one NVIDIA library as found on this machine.
type Library struct {
	Lib      string   `json:"lib"` // "cuda" (the driver), "nvrtc", "cublas", "cudnn"
	Path     string   `json:"path,omitempty"`
	From     string   `json:"from,omitempty"` // where it was found, e.g. "CUDA_HOME", "loader path"
	Version  string   `json:"version,omitempty"`
	Error    string   `json:"error,omitempty"` // why it did not load: what to install
	Tried    []string `json:"tried,omitempty"`
	Searched []string `json:"searched,omitempty"`
}

// GPU describes the device under test.
type GPU struct {
	Ordinal     int    `json:"ordinal"`
	Name        string `json:"name"`
	Major       int    `json:"major"`
	Minor       int    `json:"minor"`
	MemoryBytes int64  `json:"memory_bytes"`
	Driver      string `json:"driver"` // the CUDA version the driver supports, and its release
}

// Capability returns the compute capability as "9.0".
func (g GPU) Capability() string { return fmt.Sprintf("%d.%d", g.Major, g.Minor) }

// Report is the result of a run of the doctor.
type Report struct {
	Version   string     `json:"version"`          // pad's version
	Device    string     `json:"device"`           // "cuda" or "cpu"
	Backend   string     `json:"backend"`          // the backend under test, as it names itself
	Reference string     `json:"reference"`        // what it was compared with
	Notice    string     `json:"notice,omitempty"` // e.g. why the CPU was checked instead of a GPU
	GPU       *GPU       `json:"gpu,omitempty"`
	Libraries []Library  `json:"libraries,omitempty"`
	Model     model.Spec `json:"model"` // the model of the iteration checks
	Quick     bool       `json:"quick"` // only the quick part ran
	Checks    []Check    `json:"checks"`
	Pass      bool       `json:"pass"` // no check failed
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Summary is one line: how many checks passed, or which failed.
func (r *Report) Summary() string {
	failed := r.Failed()
	n := 0
	for _, c := range r.Checks {
		if c.Status == Pass {
			n++
		}
	}
	what := "the full check"
	if r.Quick {
		what = "the quick check"
	}
	if len(failed) == 0 {
		return fmt.Sprintf("PASS: %s of %s: %d checks passed", what, r.Backend, n)
	}
	names := make([]string, len(failed))
	for i, c := range failed {
		names[i] = c.Name
	}
	return fmt.Sprintf("FAIL: %s of %s: %d of %d checks failed: %s", what, r.Backend, len(failed), len(r.Checks), strings.Join(names, ", "))
}

// Factory opens a backend.
type Factory func() (backend.Backend, error)

// Variant is one way of running the device under test.
type Variant struct {
	Precision string `json:"precision,omitempty"` // convolution math: "fp32" or "tf32" (CUDA)
	Graphs    bool   `json:"graphs"`              // replay iterations as CUDA graphs
	Overlap   bool   `json:"overlap"`             // weight gradients on a second stream
}

// String names the variant, e.g. "fp32, graphs, 2 streams".
func (v Variant) String() string {
	var parts []string
	if v.Precision != "" {
		parts = append(parts, v.Precision)
	}
	if v.Graphs {
		parts = append(parts, "graphs")
	} else {
		parts = append(parts, "direct")
	}
	if v.Overlap {
		parts = append(parts, "2 streams")
	} else {
		parts = append(parts, "1 stream")
	}
	return strings.Join(parts, ", ")
}

// Target is a device under test and what it is compared with.
type Target struct {
	// Kind is "cuda" or "cpu".
	Kind string
	// Open opens the device under test as v says.
	Open func(v Variant) (backend.Backend, error)
	// Precisions lists the convolution precisions the op-parity check
	// covers; the first must be exact FP32 math (or "" where there is only
	// one). Ops other than convolutions run at the first only.
	Precisions []string
	// Variants are the ways the iteration checks run the device (CUDA:
	// graphs × second stream, in FP32). The float32 floor is measured on
	// the first; the repeatability control runs the first variant without
	// graphs once more. Graphs are compared with the direct variant of the same
	// options, two streams with one.
	Variants []Variant
	// Reference opens the backend ops are compared with; Ref64 says
	// whether it computes in float64 (the limits of LimitVsFloat64 apply).
	Reference Factory
	Ref64     bool
	// RefName describes the reference for the report.
	RefName string
	// Twin opens the float64 twin the iteration check compares with.
	Twin Factory
	// SampleRef opens the backend whose losses the sample run compares
	// with, and SampleRefName describes it.
	SampleRef     Factory
	SampleRefName string
	// Repeatable says the device promises bit-for-bit repeatable results
	// (the CPU). Where it does not (cuDNN may pick different or
	// non-deterministic algorithms), a difference between two identical
	// runs is reported, and the bit-for-bit checks allow FloorFactor times
	// it.
	Repeatable bool
	// Memory returns the device memory in use, or is nil (no memory check).
	Memory func() (int64, error)
	// Bench says whether the full check ends with a bench line.
	Bench bool
	// Setup runs before everything else (libraries, GPU, kernel
	// compilation: part of the quick check), may describe the machine in
	// the report, and emits its checks; the rest is skipped when it
	// returns false.
	Setup func(r *Report, emit func(Check)) bool
}

// Options say what the checks run.
type Options struct {
	// Specs are the models whose ops the op-parity check covers (every
	// layer geometry of each); the iteration and memory checks use the
	// first.
	Specs     []model.Spec
	Condition conditions.Condition
	// Phases holds the seed (of the model and of the random inputs), Adam's
	// hyper-parameters and the occlusion settings.
	Phases phases.Options
	// Config is the training config the sample run follows (its model,
	// batch, condition and optimiser; the data become the embedded sample).
	// When empty, the sample run uses configs.Default() with the first
	// spec's sizes.
	Config configs.Config
	// Configured is how training runs the device (precision, graphs,
	// streams): the memory check, the bench line and an informative sample
	// run at TF32 use it.
	Configured Variant
	// Quick runs only the quick part: libraries, kernel compilation and op
	// parity.
	Quick bool
	// SampleIters, MemoryIters, BenchIters override the defaults
	// (SampleIterations, MemoryIterations, BenchIterations); negative
	// skips the check.
	SampleIters, MemoryIters, BenchIters int
	// BenchSpec is the model the bench line times (default: C=3, the first
	// spec's nf and nz, batch 64).
	BenchSpec model.Spec
	// Progress, if set, receives every check as it finishes.
	Progress func(Check)
}

// Version returns pad's version as the binary records it.
func Version() string {
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

// runner accumulates a report.
type runner struct {
	t *Target
	o *Options
	r *Report
}

func (rn *runner) emit(c Check) {
	rn.r.Checks = append(rn.r.Checks, c)
	if c.Status == Fail {
		rn.r.Pass = false
	}
	if rn.o.Progress != nil {
		rn.o.Progress(c)
	}
}

// timed runs f, which fills in a check, and times it. A panic inside f
// (a backend that indexes out of range, say) fails the check instead of
// the program.
func (rn *runner) timed(name string, quick bool, f func(c *Check)) Check {
	c := Check{Name: name, Quick: quick}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.Status = Fail
				c.Detail = fmt.Sprintf("panic: %v", p)
			}
		}()
		f(&c)
	}()
	c.Seconds = time.Since(start).Seconds()
	return c
}

// Run runs the checks of o on t and returns the report. The report's Pass
// says whether no check failed.
func Run(t *Target, o Options) *Report {
	if len(o.Specs) == 0 {
		panic("doctor: Options.Specs is empty")
	}
	rn := &runner{t: t, o: &o, r: &Report{Version: Version(), Device: t.Kind, Reference: t.RefName, Model: o.Specs[0], Quick: o.Quick, Pass: true}}
	if t.Setup != nil && !t.Setup(rn.r, rn.emit) {
		rn.r.Backend = t.Kind
		return rn.r
	}
	rn.r.Backend = t.Kind // until the op-parity check opens the device
	if !rn.opParity() || o.Quick {
		return rn.r
	}
	rn.iterations()
	rn.sampleRun()
	if t.Memory != nil {
		rn.memory()
	}
	if t.Bench {
		rn.bench()
	}
	return rn.r
}
