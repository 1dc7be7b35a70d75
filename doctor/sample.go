package doctor

import (
	"context"
	"fmt"
	"github.com/pad-dreaming/pad/internal/cu"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
	"github.com/pad-dreaming/pad/train"
)

// recordNames name the numbers a training record logs, in the order
// trainSample returns them.
var recordNames = [8]string{"wake_rec", "nrem_rec", "kl", "d_loss", "g_loss", "d_x", "d_gz", "latent_norm"}

// sampleConfig is the run the sample check trains: o.Config (or, when
// that is empty, configs.Default() with the first spec's sizes) on the
// embedded sample, for iters iterations of its first epoch, logging every
// second one, with no probe, no sample grids and one checkpoint at the
// end.
func sampleConfig(o *Options, iters int) configs.Config {
	c := o.Config
	if c.Train.Batch == 0 {
		c = configs.Default()
		s := o.Specs[0]
		c.Seed, c.Model.NF, c.Model.NZ, c.Train.Batch = o.Phases.Seed, s.NF, s.NZ, s.Batch
	}
	c.Name = "doctor"
	c.Data = configs.Data{Dataset: "embedded"}
	c.Train.Epochs, c.Train.MaxIters = 1, iters
	c.Train.LogEvery, c.Train.CheckpointEvery, c.Train.SampleEvery = 2, 0, 0
	c.Eval.Every = 0
	return c
}

// trainSample runs cfg with train.Trainer — the loader, the copy of each
// mini-batch while the previous iteration computes, the late reads of the
// losses, the checkpoint — on a backend of f in a temporary directory, and
// returns the numbers of every logged record.
func trainSample(f Factory, cfg configs.Config) ([][8]float64, error) {
	b, err := f()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "pad-doctor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tr, err := train.New(train.Options{Config: cfg, Dir: dir, Backend: b, Progress: train.ProgressNone})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	if _, err := tr.Run(context.Background()); err != nil {
		return nil, err
	}
	recs, _, err := metrics.ReadFile(filepath.Join(dir, metrics.FileName))
	if err != nil {
		return nil, err
	}
	var out [][8]float64
	for _, r := range recs {
		if r.Kind != metrics.KindTrain {
			continue
		}
		var row [8]float64
		for k, p := range []*float64{r.WakeRec, r.NREMRec, r.KL, r.DLoss, r.GLoss, r.DX, r.DGZ, r.LatentNorm} {
			row[k] = math.NaN()
			if p != nil {
				row[k] = *p
			}
		}
		out = append(out, row)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the run logged no training records")
	}
	return out, nil
}

// drift compares the records of a run with the reference's, each number
// relative to the largest value it takes in the reference run, and
// returns the worst difference, whether all are within LimitSampleRun,
// and where the worst is.
func drift(got, ref [][8]float64, every int) (worst float64, ok bool, where string) {
	if len(got) != len(ref) {
		return math.Inf(1), false, fmt.Sprintf("%d records, the reference has %d", len(got), len(ref))
	}
	var scale [8]float64
	for _, r := range ref {
		for k, v := range r {
			scale[k] = math.Max(scale[k], math.Abs(v))
		}
	}
	ok = true
	at, stat := 0, 0
	worst = -1
	for i := range got {
		for k := range got[i] {
			d := math.Abs(got[i][k] - ref[i][k])
			if scale[k] > 0 {
				d /= scale[k]
			}
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			if !(d <= LimitSampleRun) {
				ok = false
			}
			if d > worst {
				worst, at, stat = d, i, k
			}
		}
	}
	last := len(got) - 1
	where = fmt.Sprintf("worst %s at iteration %d (%.6g, reference %.6g); last wake_rec %.6g, reference %.6g",
		recordNames[stat], (at+1)*every, got[at][stat], ref[at][stat], got[last][0], ref[last][0])
	return worst, ok, where
}

// sampleRun trains on the embedded sample on the device and on the sample
// reference, as `pad train` does, and compares the logged numbers.
func (rn *runner) sampleRun() {
	t, o := rn.t, rn.o
	iters := o.SampleIters
	if iters == 0 {
		iters = SampleIterations
		if rn.simulated() {
			iters = SimSampleIterations
		}
	}
	if iters < 0 || t.SampleRef == nil {
		return
	}
	cfg := sampleConfig(o, iters)
	variants := []Variant{o.Configured}
	variants[0].Precision = ""
	if len(t.Precisions) > 0 {
		variants[0].Precision = t.Precisions[0]
		if o.Configured.Precision != "" && o.Configured.Precision != t.Precisions[0] {
			variants = append(variants, o.Configured)
		}
	}
	var ref [][8]float64
	var refErr error
	for i, v := range variants {
		name := fmt.Sprintf("%d iterations vs %s", iters, t.SampleRefName)
		if len(variants) > 1 {
			name += " (" + v.Precision + ")"
		}
		open := func() (backend.Backend, error) { return t.Open(v) }
		rn.emit(rn.timed(name, false, func(c *Check) {
			if ref == nil && refErr == nil {
				ref, refErr = trainSample(t.SampleRef, cfg)
			}
			if refErr != nil {
				c.Status, c.Detail = Fail, "the reference: "+refErr.Error()
				return
			}
			got, err := trainSample(open, cfg)
			if err != nil {
				c.Status, c.Detail = Fail, err.Error()
				return
			}
			worst, ok, where := drift(got, ref, cfg.Train.LogEvery)
			c.Value = fmtErr(worst)
			switch {
			case i > 0:
				// TF32 rounds every convolution's inputs: its trajectory
				// is expected to leave the FP32 one; this is for the record.
				c.Status, c.Detail = Info, "TF32 as configured: "+where
			case ok:
				c.Status, c.Limit = Pass, fmtLimit(LimitSampleRun)
				c.Detail = fmt.Sprintf("%d records of %d numbers (means over %d iterations), each relative to its range; %s",
					len(got), len(recordNames), cfg.Train.LogEvery, where)
			default:
				c.Status, c.Limit = Fail, fmtLimit(LimitSampleRun)
				c.Detail = "the numbers leave the reference's: " + where
			}
		}))
	}
}

// memoryReporter is implemented by backends that track their allocations.
type memoryReporter interface {
	PeakMemory() (bytes int64, kind string)
}

// memory trains MemoryIterations iterations after a warm-up and checks
// that neither pad's allocations nor the device memory in use grew.
func (rn *runner) memory() {
	t, o := rn.t, rn.o
	iters, warmup := o.MemoryIters, MemoryWarmup
	sim := rn.simulated()
	if iters == 0 {
		iters = MemoryIterations
		if sim {
			iters, warmup = SimMemoryIterations, SimMemoryWarmup
		}
	}
	if iters < 0 {
		return
	}
	spec := o.Specs[0]
	rn.emit(rn.timed(fmt.Sprintf("memory over %d iterations", iters), false, func(c *Check) {
		b, err := t.Open(o.Configured)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		defer b.Close()
		p, err := phases.New(b, spec, o.Condition, o.Phases)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		x, err := sampleImages(spec, 0)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		xb, err := b.Alloc(len(x))
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		b.Upload(xb, x)
		it := uint64(0)
		steps := func(n int) error {
			for i := 0; i < n; i++ {
				p.Iterate(xb, it, it == 0)
				it++
				if _, err := p.Stats(); err != nil {
					return err
				}
			}
			return nil
		}
		measure := func() (used, pad int64, heap uint64, err error) {
			if err = b.Sync(); err != nil {
				return
			}
			if used, err = t.Memory(); err != nil {
				return
			}
			if m, ok := b.(memoryReporter); ok {
				pad, _ = m.PeakMemory()
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return used, pad, ms.HeapAlloc, nil
		}
		if err := steps(warmup); err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		used0, pad0, heap0, err := measure()
		allocs0 := cu.SimCount("allocs", "frees")
		if err == nil {
			err = steps(iters)
		}
		allocs := cu.SimCount("allocs", "frees") - allocs0
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		used1, pad1, heap1, err := measure()
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		c.Value = fmt.Sprintf("%+d MiB", (used1-used0)>>20)
		c.Limit = fmt.Sprintf("< %d MiB", MemoryGrowth>>20)
		c.Detail = fmt.Sprintf("device memory in use %d → %d MiB, pad's peak allocation %d → %d MiB, Go heap %d → %d MiB, after %d warm-up iterations",
			used0>>20, used1>>20, pad0>>20, pad1>>20, heap0>>20, heap1>>20, warmup)
		if sim {
			c.Detail += fmt.Sprintf("; the simulated driver counted %d allocations and frees in the %d iterations", allocs, iters)
		}
		if used1-used0 >= MemoryGrowth || pad1 != pad0 || (sim && allocs != 0) {
			c.Status = Fail
			c.Detail = "memory grows with iterations: " + c.Detail
			return
		}
		c.Status = Pass
	}))
}

// bench times iterations at the CIFAR-10 shape (train.Bench), for the
// record.
func (rn *runner) bench() {
	t, o := rn.t, rn.o
	iters, warmup := o.BenchIters, 5
	sim := rn.simulated()
	if iters == 0 {
		iters = BenchIterations
		if sim {
			iters, warmup = SimBenchIterations, 1
		}
	}
	if iters < 0 {
		return
	}
	spec := o.BenchSpec
	if spec.Batch == 0 {
		spec = model.Spec{C: 3, NF: o.Specs[0].NF, NZ: o.Specs[0].NZ, Batch: 64}
	}
	rn.emit(rn.timed(fmt.Sprintf("bench C=%d nf=%d nz=%d batch %d", spec.C, spec.NF, spec.NZ, spec.Batch), false, func(c *Check) {
		b, err := t.Open(o.Configured)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		defer b.Close()
		const epoch = 50000
		res, err := train.Bench(b, train.BenchOptions{Spec: spec, Condition: o.Condition, Adam: o.Phases.AdamE,
			Warmup: warmup, Iters: iters, EpochSize: epoch, Seed: o.Phases.Seed})
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		c.Status = Info
		c.Value = fmt.Sprintf("%.3g s/iter", res.SecPerIter)
		c.Detail = fmt.Sprintf("%.1f s/epoch (%d iterations of %d images), %.0f images/s, peak memory %.0f MiB (%s), %s",
			res.SecPerEpoch, epoch/spec.Batch, spec.Batch, res.ImagesPerSec, res.PeakMemoryMiB, res.MemoryKind, res.Backend)
		if res.Graphs != "" {
			c.Detail += "; " + res.Graphs
		}
		if sim {
			c.Detail = fmt.Sprintf("simulated GPU, %d iterations: the time is the simulation's, not a GPU's; ", iters) + c.Detail
		}
	}))
}

// simulated says whether the target is pad's simulated GPU (internal/cudasim).
func (rn *runner) simulated() bool { return rn.t.Kind == "cuda" && cu.Simulated() }
