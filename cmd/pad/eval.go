package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/train"
)

// evalUsage is pad eval's help text. Its list names the evaluations of
// package eval and all, in their order (TestEvalUsageUnchanged checks).
const evalUsage = `
Usage: pad eval <what> [flags] RUN

Evaluates the latest checkpoint of the run directory RUN (e.g.
runs/quickstart) with its frozen encoder E, following the paper's protocol.
Results are printed and written to RUN/eval/.

  linear     the linear probe: z = E(x) of the whole training set, a linear
             layer nz→10 trained with plain SGD (lr 0.2, batch 64, 20
             epochs); test and train accuracy
  occlusion  the same probe (trained on clean features) on test images
             occluded with tiles of 4 at p = 0, 0.1, …, 1.0 (Figure 5);
             writes occlusion.csv and occlusion.png
  latent     intra/inter-class distance ratio and clean–occluded/inter-class
             ratio (30 % occlusion, tile 4) of the latents (Figure 6e–f)
  pca        PNG scatter of the first two principal components of the test
             latents, clean (filled) and 30 %-occluded (open) (Figure 6)
  plots      PNG plots of the run's losses per epoch (Appendix 1) and of the
             probe accuracy per epoch (Figure 4)
  export     the latents and labels of both sets as .npy files for numpy
  all        everything above
`

// evalChoices names what pad eval accepts, for its error messages:
// "linear, occlusion, … or all".
func evalChoices() string {
	return strings.Join(eval.Evaluations(), ", ") + " or " + eval.All
}

func cmdEval(args []string, e *env) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		flags := newFlags(e, "eval", evalUsage)
		if err := parse(flags, args, e); err != nil {
			return err
		}
		return usagef("eval: say what to evaluate (%s); see 'pad eval --help'", evalChoices())
	}
	what := args[0]
	steps, ok := eval.Select(what)
	if !ok {
		return usagef("eval: unknown evaluation %q (%s)", what, evalChoices())
	}
	flags := newFlags(e, "eval "+what, evalUsage)
	device := flags.String("device", "", "auto, cpu or cuda (default: the run's device.kind)")
	seed := flags.Uint64("seed", 0, "seed of the probe, occlusion masks and pair sampling (default: the run's)")
	probeEpochs := flags.Int("probe-epochs", 0, "probe training epochs (default: the run's eval.probe_epochs)")
	points := flags.Int("points", 2000, "pca: test images to plot")
	if err := parse(flags, args[1:], e); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return usagef("eval %s: want one run directory, got %d arguments", what, flags.NArg())
	}
	if e.checkOnly {
		return errChecked
	}
	dir := flags.Arg(0)
	run, closeRun, err := openRun(dir, *device, e)
	if err != nil {
		return err
	}
	defer closeRun()
	s := run.Config.Seed
	if *seed != 0 {
		s = *seed
	}
	pc := train.ProbeSettings(run.Config)
	if *probeEpochs > 0 {
		pc.Epochs = *probeEpochs
	}
	ev := &eval.Evaluator{
		Encoder: runEncoder(run), Train: run.Train, Test: run.Test,
		Seed: s, ProbeConfig: pc, Tile: run.Config.Eval.OcclusionTile, Points: *points,
		RunDir: dir, Out: filepath.Join(dir, "eval"),
		Epoch: run.Checkpoint.State.Epoch, Iter: run.Checkpoint.State.Iter,
	}
	if err := ev.Prepare(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "run %s: checkpoint at epoch %d (iteration %d), %s on %s\n", dir, run.Checkpoint.State.Epoch, run.Checkpoint.State.Iter, run.Config.Data.Dataset, run.Model.Backend().Name())
	for _, st := range steps {
		if err := evalReports[st](ev, e); err != nil {
			return fmt.Errorf("eval %s: %w", st, err)
		}
	}
	return nil
}

// openRun opens the run directory dir for evaluation on the run's device
// (or device, if not empty); closeRun releases the run and the device.
// Its checkpoint and data are read before the device opens.
func openRun(dir, device string, e *env) (run *train.SavedRun, closeRun func(), err error) {
	cfg, err := configs.Load(filepath.Join(dir, "config.toml"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s is not a run directory (no config.toml; pad train writes runs/<name>/)", dir)
	}
	if err != nil {
		return nil, nil, err
	}
	if device != "" {
		cfg.Device.Kind = device
	}
	// The checkpoint and the data first: a run that cannot be evaluated
	// fails before the device opens (on a GPU: before its check and the
	// kernels' compilation).
	if run, err = train.ReadSavedRun(dir); err != nil {
		return nil, nil, err
	}
	be, err := openRunBackend(cfg.Device, e.stderr)
	if err != nil {
		return nil, nil, err
	}
	if err = run.Build(be); err != nil {
		be.Close()
		return nil, nil, err
	}
	return run, func() { run.Close(); be.Close() }, nil
}

// openRunBackend opens the device pad eval and pad dream run on; tests
// replace it to see whether (and when) it is called.
var openRunBackend = openBackend

// runEncoder is the encoder pad eval evaluates run with; tests replace it
// to count the encodings.
var runEncoder = func(run *train.SavedRun) eval.Encoder { return run.Encoder }

// evalReports runs each evaluation of package eval and prints what it
// found; an evaluation that fails part-way prints what it finished.
var evalReports = map[string]func(ev *eval.Evaluator, e *env) error{
	"linear": func(ev *eval.Evaluator, e *env) error {
		r, err := ev.Linear()
		if r != nil {
			fmt.Fprintf(e.stdout, "linear probe (%d epochs, lr %g, batch %d, seed %d): test accuracy %.2f%% (all %d test images: %.2f%%), train accuracy %.2f%%\n",
				r.Config.Epochs, r.Config.LR, r.Config.Batch, r.Config.Seed, r.TestAcc, r.TestImages, r.TestAccAll, r.TrainAcc)
		}
		return err
	},
	"occlusion": func(ev *eval.Evaluator, e *env) error {
		// The probe first, so that the table's head follows its training.
		if _, err := ev.Probe(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "occlusion (tile %d): p  test accuracy\n", ev.Tile)
		r, err := ev.Occlusion(func(pt eval.OcclusionPoint) {
			fmt.Fprintf(e.stdout, "  %.1f  %.2f%%\n", pt.P, pt.TestAcc)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s and %s\n", r.CSV, r.PNG)
		return nil
	},
	"latent": func(ev *eval.Evaluator, e *env) error {
		r, err := ev.Latent()
		if r != nil {
			fmt.Fprintf(e.stdout, "latent organisation (training set): intra/inter-class distance %.4f, clean–occluded/inter-class %.4f (mean distances: intra %.4f, inter %.4f, clean–occluded %.4f)\n",
				r.IntraInter, r.OccInter, r.Intra, r.Inter, r.Occ)
		}
		return err
	},
	"pca": func(ev *eval.Evaluator, e *env) error {
		r, err := ev.PCA()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "PCA of %d test latents: explained variance %.3g and %.3g; wrote %s\n", r.Images, r.PCA.Variance[0], r.PCA.Variance[1], r.File)
		return nil
	},
	"plots": func(ev *eval.Evaluator, e *env) error {
		r, err := ev.Plots()
		if r != nil && r.Skipped > 0 {
			fmt.Fprintf(e.stderr, "notice: metrics.jsonl ends with an incomplete line (skipped)\n")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join(r.Files, ", "))
		return nil
	},
	"export": func(ev *eval.Evaluator, e *env) error {
		r, err := ev.Export()
		if r != nil {
			for _, s := range r.Sets {
				fmt.Fprintf(e.stdout, "wrote %s (%d×%d float32) and %s (%d int64)\n", s.Z, s.N, s.D, s.Y, s.N)
			}
		}
		return err
	},
}
