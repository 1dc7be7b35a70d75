package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/train"
)

const benchUsage = `
Usage: pad bench [--config FILE|NAME] [--device auto|cpu|cuda] [--batch N] [--iters N] [--stream] [--json]

Times full Wake/NREM/REM iterations of the config's model on synthetic
images of its dataset's shape, after a warm-up, and prints seconds per
epoch of 50,000 images (as the PyTorch peer reports it), images per
second, the time of each phase and the peak memory. On the CPU it also
prints what the limit is: the GFLOP of an iteration's matrix products and
the GFLOP/s reached (per phase too), the machine's FP32 peak on the
threads used (measured clock × 2 × vector lanes × 2 FMA pipes, as make
gemm-rates estimates it) and the share of it, and the busy cores (CPU
time over wall time). Without --config it
uses the paper's model (nf 64, nz 256, batch 64) at the CIFAR-10 shape.
The images stay on the device, as in the PyTorch peer; --stream copies a
host batch before every iteration instead, as training does, to show
whether the copy is hidden behind the computation.
`

// channelsOf returns the image channels of a named dataset.
func channelsOf(dataset string) int {
	switch dataset {
	case "cifar10", "svhn", "folder":
		return 3
	}
	return 1
}

func cmdBench(args []string, e *env) error {
	fs := newFlags(e, "bench", benchUsage)
	cfgRef := fs.String("config", "cifar10", "TOML config file or built-in config name")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key, `key=value` (repeatable)")
	device := fs.String("device", "", "auto, cpu or cuda (default: the config's device.kind)")
	batch := fs.Int("batch", 0, "mini-batch size (default: the config's)")
	channels := fs.Int("channels", 0, "image channels, 1 or 3 (default: the dataset's)")
	iters := fs.Int("iters", 50, "timed iterations")
	warmup := fs.Int("warmup", 5, "untimed iterations before timing")
	epoch := fs.Int("epoch-size", 50000, "images per epoch for the seconds-per-epoch figure")
	phasesFlag := fs.Bool("phases", true, "also time each phase (adds a few synchronised iterations, run without graphs)")
	stream := fs.Bool("stream", false, "copy a host batch to the device every iteration, as training does")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	cfg, _, err := loadConfig(*cfgRef, sets, *device)
	if err != nil {
		return err
	}
	if *batch > 0 {
		cfg.Train.Batch = *batch
	}
	c := channelsOf(cfg.Data.Dataset)
	if *channels != 0 {
		if *channels != 1 && *channels != 3 {
			return usagef("--channels %d: want 1 or 3", *channels)
		}
		c = *channels
	}
	cond, err := train.Condition(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	if e.checkOnly {
		return errChecked
	}
	be, err := openBackend(cfg.Device, e.stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	res, err := train.Bench(be, train.BenchOptions{
		Spec:      model.Spec{C: c, NF: cfg.Model.NF, NZ: cfg.Model.NZ, Batch: cfg.Train.Batch},
		Condition: cond,
		Adam:      backend.AdamHyper{LR: cfg.Train.LRE, Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2, Eps: cfg.Train.Eps},
		Warmup:    *warmup, Iters: *iters, EpochSize: *epoch, Seed: cfg.Seed, Phases: *phasesFlag, Stream: *stream,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(e.stdout, "device        %s\n", res.Backend)
	if res.Simulated {
		fmt.Fprintf(e.stdout, "simulated:    counts are exact, times are not a GPU's\n")
	}
	fmt.Fprintf(e.stdout, "model         C=%d nf=%d nz=%d batch=%d, condition %s\n", c, cfg.Model.NF, cfg.Model.NZ, cfg.Train.Batch, res.Condition)
	fmt.Fprintf(e.stdout, "iterations    %d timed after %d warm-up\n", res.Iters, *warmup)
	if res.Streamed {
		fmt.Fprintf(e.stdout, "data          copied from the host every iteration\n")
	}
	fmt.Fprintf(e.stdout, "per iteration %.3f ms\n", res.SecPerIter*1e3)
	fmt.Fprintf(e.stdout, "per epoch     %.3f s (%d images)\n", res.SecPerEpoch, *epoch)
	fmt.Fprintf(e.stdout, "throughput    %.0f images/s\n", res.ImagesPerSec)
	if len(res.PhaseSec) > 0 {
		names := make([]string, 0, len(res.PhaseSec))
		for k := range res.PhaseSec {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return phaseOrder(names[i]) < phaseOrder(names[j]) })
		for _, k := range names {
			if g, ok := res.PhaseGFLOPS[k]; ok {
				fmt.Fprintf(e.stdout, "  %-11s %.3f ms  %.1f GFLOP/s\n", k, res.PhaseSec[k]*1e3, g)
			} else {
				fmt.Fprintf(e.stdout, "  %-11s %.3f ms\n", k, res.PhaseSec[k]*1e3)
			}
		}
	}
	if res.GFLOPPerIter > 0 {
		fmt.Fprintf(e.stdout, "compute       %.2f GFLOP per iteration (matrix products), %.1f GFLOP/s\n", res.GFLOPPerIter, res.GFLOPS)
	}
	if res.PeakGFLOPS > 0 {
		cores := res.PeakGFLOPS / (res.ClockGHz * 4 * float64(res.VectorLanes))
		fmt.Fprintf(e.stdout, "FP32 peak     %.0f GFLOP/s (%.0f cores × %.2f GHz × %d FLOP per cycle): %.0f %% of it\n",
			res.PeakGFLOPS, cores, res.ClockGHz, 4*res.VectorLanes, 100*res.PeakShare)
	}
	if res.BusyCores > 0 {
		if res.Threads > 0 {
			fmt.Fprintf(e.stdout, "busy cores    %.2f on average, of %d threads\n", res.BusyCores, res.Threads)
		} else {
			fmt.Fprintf(e.stdout, "busy cores    %.2f on average (the host process)\n", res.BusyCores)
		}
	}
	fmt.Fprintf(e.stdout, "peak memory   %.0f MiB (%s)\n", res.PeakMemoryMiB, res.MemoryKind)
	if res.Graphs != "" {
		fmt.Fprintf(e.stdout, "graphs        %s\n", res.Graphs)
	}
	printSimCounts(e, res)
	return nil
}

// printSimCounts prints the simulated driver's counters per timed
// iteration (nothing on real hardware or the CPU).
func printSimCounts(e *env, res train.BenchResult) {
	if len(res.Counters) == 0 {
		return
	}
	fmt.Fprintf(e.stdout, "simulated driver, per timed iteration (%d iterations; the closing synchronise not counted):\n", res.Iters)
	for _, c := range res.Counters {
		v := strconv.FormatFloat(c.PerIter, 'f', -1, 64)
		if c.Total%uint64(res.Iters) != 0 {
			v = strconv.FormatFloat(c.PerIter, 'f', 2, 64)
		}
		fmt.Fprintf(e.stdout, "  %-22s %12s\n", c.Name, v)
	}
}

func phaseOrder(s string) int {
	switch s {
	case "wake":
		return 0
	case "nrem":
		return 1
	}
	return 2
}
