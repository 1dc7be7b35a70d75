package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/doctor"
	"github.com/pad-dreaming/pad/kernels"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
	"github.com/pad-dreaming/pad/train"
)

var doctorUsage = `
Usage: pad doctor [--device auto|cpu|cuda] [--config FILE|NAME] [--set key=value]... [--quick] [--json]

Checks that this machine computes what pad's CPU reference computes and
prints a table: each check, its result (PASS, FAIL, SKIP when something it
needs failed, INFO for measurements without a limit), the measured value,
its limit and the time it took. It exits with 1 if a check fails.

On an NVIDIA GPU (--device cuda, or auto when one is usable) it checks:
  1. the NVIDIA libraries (driver, NVRTC, cuBLAS, cuDNN): the file loaded,
     where it was found and its version, or where pad looked and what to
     install (cuBLAS is optional: training does not use it); the GPU, its
     compute capability and memory, and the driver's CUDA version;
  2. that NVRTC compiles each of pad's kernel families for the GPU;
  3. every op the model uses — every custom kernel, and cuDNN's forward,
     backward-data and backward-filter convolutions at every layer
     geometry of E and G (for the configured model and batch, and for the
     paper's model with 1 and 3 channels) — against the CPU float32
     backend on fresh random inputs, convolutions at FP32 and at TF32;
  4. two full Wake/NREM/REM iterations from the same seed against the
     CPU's float64 twin, every parameter of E and G and every loss, with
     CUDA graphs on and off and with and without the second stream; then
     graph replays bit for bit the same as direct launches, and two
     streams the same as one;
  5. 50 iterations on the embedded Fashion-MNIST sample against the CPU
     float32 backend's losses (FP32; at TF32 too, for the record, when
     configured);
  6. that device memory does not grow over 300 iterations;
  7. one bench line: seconds per iteration and per epoch at the CIFAR-10
     shape (3 channels, the paper's model, batch 64, 781 iterations).
--quick runs 1 to 3 (seconds). --device auto runs them once for each GPU,
driver, set of libraries and pad version before it trusts a GPU, and keeps
the verdict in the doctor folder beside the kernel cache
(~/.cache/pad/doctor); so does every pad doctor on a GPU.

Without a usable GPU (--device auto) or with --device cpu it says so in
one line and runs the CPU self-check: the same ops, iterations and sample
run with the CPU float32 backend under test and its float64 twin as the
reference (10 sample iterations).

`

func init() {
	doctorUsage += doctor.LimitsText() + "\n"
}

// paperSpecs are the paper's model at batch 64 with 1 and 3 channels:
// the op-parity check on a GPU always covers their geometries.
func paperSpecs() []model.Spec {
	return []model.Spec{{C: 1, NF: 64, NZ: 256, Batch: 64}, {C: 3, NF: 64, NZ: 256, Batch: 64}}
}

// doctorOptions are the checks' options for a config.
func doctorOptions(cfg configs.Config) (doctor.Options, error) {
	cond, err := train.Condition(cfg)
	if err != nil {
		return doctor.Options{}, err
	}
	adam := func(lr float64) backend.AdamHyper {
		return backend.AdamHyper{LR: lr, Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2, Eps: cfg.Train.Eps}
	}
	return doctor.Options{
		Specs:     []model.Spec{{C: channelsOf(cfg.Data.Dataset), NF: cfg.Model.NF, NZ: cfg.Model.NZ, Batch: cfg.Train.Batch}},
		Condition: cond,
		Phases: phases.Options{Seed: cfg.Seed, AdamE: adam(cfg.Train.LRE), AdamG: adam(cfg.Train.LRG),
			MaxTile: cfg.Train.MaxTile, OcclusionPerImage: cfg.Train.OcclusionPerImage},
		Config:     cfg,
		Configured: doctor.Variant{Precision: cfg.Device.Precision, Graphs: cfg.Device.Graphs, Overlap: cfg.Device.Overlap},
		BenchSpec:  model.Spec{C: 3, NF: 64, NZ: 256, Batch: 64},
	}, nil
}

// withSpecs adds the specs of more that o lacks.
func withSpecs(o doctor.Options, more []model.Spec) doctor.Options {
	o.Specs = append([]model.Spec(nil), o.Specs...)
	for _, s := range more {
		have := false
		for _, t := range o.Specs {
			have = have || t == s
		}
		if !have {
			o.Specs = append(o.Specs, s)
		}
	}
	return o
}

// cpuSampleIters is the length of the CPU self-check's sample run (the
// float64 twin is slow).
const cpuSampleIters = 10

func cmdDoctor(args []string, e *env) error {
	fs := newFlags(e, "doctor", doctorUsage)
	cfgRef := fs.String("config", "", "TOML config file or built-in config name whose model, batch and device settings to check (default: quickstart)")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key, `key=value` (repeatable)")
	device := fs.String("device", "auto", "auto, cpu or cuda")
	quick := fs.Bool("quick", false, "only the libraries, the kernel compilation and the op parity")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	verbose := fs.Bool("v", false, "print every check's detail, not only those of failures and libraries")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("doctor: unexpected argument %q", fs.Arg(0))
	}
	cfg, _, err := loadConfig(*cfgRef, sets, *device)
	if err != nil {
		return err
	}
	o, err := doctorOptions(cfg)
	if err != nil {
		return err
	}
	o.Quick = *quick
	d := cfg.Device

	var t *doctor.Target
	var notice string
	switch d.Kind {
	case "cpu":
		t = doctor.CPU(d.Threads)
	case "auto":
		if err := doctor.Probe(d.GPU, kernels.DefaultCacheDir()); err != nil && doctor.Unavailable(err) {
			notice = fmt.Sprintf("no usable NVIDIA GPU: %v; running the CPU self-check", err)
			t = doctor.CPU(d.Threads)
		} else {
			// A GPU that fails to set up is checked: the table says why.
			t = doctor.CUDA(d.GPU, kernels.DefaultCacheDir(), d.Threads)
		}
	case "cuda":
		t = doctor.CUDA(d.GPU, kernels.DefaultCacheDir(), d.Threads)
	}
	if t.Kind == "cpu" {
		o.SampleIters = cpuSampleIters
	} else {
		o = withSpecs(o, paperSpecs())
	}

	tw := &tableWriter{w: e.stdout, verbose: *verbose}
	if !*asJSON {
		if notice != "" {
			fmt.Fprintln(e.stdout, notice)
		}
		tw.header()
		o.Progress = tw.row
	}
	r := doctor.Run(t, o)
	if notice != "" {
		r.Notice = notice
		r.Libraries = doctor.Libraries() // where pad looked, for the record
	}
	if t.Kind == "cuda" {
		// The quick part's verdict serves --device auto from now on.
		if id, err := doctor.Identify(d.GPU, versionString()); err == nil && len(r.Checks) > 0 {
			doctor.Cache{Dir: doctor.DefaultCacheDir()}.Store(doctor.NewVerdict(id, r))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if !r.Pass && d.Kind == "cuda" {
		// No usable GPU: the libraries are above; say in one line what is
		// missing, as training would.
		if err := doctor.Probe(d.GPU, kernels.DefaultCacheDir()); err != nil && doctor.Unavailable(err) {
			return err
		}
	}
	if !*asJSON {
		fmt.Fprintln(e.stdout, r.Summary())
		if r.Quick && r.Pass {
			fmt.Fprintln(e.stdout, "quick check only; 'pad doctor' without --quick runs the iterations, the sample run, the memory check and the bench line")
		}
	}
	if !r.Pass {
		return fmt.Errorf("doctor: %d of %d checks failed", len(r.Failed()), len(r.Checks))
	}
	return nil
}

// tableWriter prints the checks as table rows as they finish.
type tableWriter struct {
	w       io.Writer
	verbose bool
}

const rowFormat = "%-44s %-6s %-12s %-12s %8s\n"

func (t *tableWriter) header() {
	fmt.Fprintf(t.w, rowFormat, "CHECK", "RESULT", "VALUE", "LIMIT", "TIME")
}

func (t *tableWriter) row(c doctor.Check) {
	fmt.Fprintf(t.w, rowFormat, c.Name, c.Status, c.Value, c.Limit, fmt.Sprintf("%.2fs", c.Seconds))
	setup := strings.HasPrefix(c.Name, "library ") || strings.HasPrefix(c.Name, "driver") || strings.HasPrefix(c.Name, "gpu ")
	if c.Detail != "" && (t.verbose || c.Status != doctor.Pass || setup) {
		fmt.Fprintf(t.w, "    %s\n", c.Detail)
	}
}
