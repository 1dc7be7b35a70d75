package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/train"
)

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

func cmdEval(args []string, e *env) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		flags := newFlags(e, "eval", evalUsage)
		if err := parse(flags, args, e); err != nil {
			return err
		}
		return usagef("eval: say what to evaluate (linear, occlusion, latent, pca, plots, export or all); see 'pad eval --help'")
	}
	what := args[0]
	known := map[string]bool{"linear": true, "occlusion": true, "latent": true, "pca": true, "plots": true, "export": true, "all": true}
	if !known[what] {
		return usagef("eval: unknown evaluation %q (linear, occlusion, latent, pca, plots, export or all)", what)
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
	pc.Seed = s
	if *probeEpochs > 0 {
		pc.Epochs = *probeEpochs
	}
	out := filepath.Join(dir, "eval")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ev := &evaluator{e: e, run: run, out: out, seed: s, pc: pc, points: *points}
	fmt.Fprintf(e.stderr, "run %s: checkpoint at epoch %d (iteration %d), %s on %s\n", dir, run.Checkpoint.State.Epoch, run.Checkpoint.State.Iter, run.Config.Data.Dataset, run.Model.Backend().Name())
	steps := []string{what}
	if what == "all" {
		steps = []string{"linear", "occlusion", "latent", "pca", "plots", "export"}
	}
	for _, st := range steps {
		var err error
		switch st {
		case "linear":
			err = ev.linear()
		case "occlusion":
			err = ev.occlusion()
		case "latent":
			err = ev.latent()
		case "pca":
			err = ev.pca()
		case "plots":
			err = ev.plots()
		case "export":
			err = ev.export()
		}
		if err != nil {
			return fmt.Errorf("eval %s: %w", st, err)
		}
	}
	return nil
}

// openRun opens the run directory dir for evaluation on the run's device
// (or device, if not empty); closeRun releases the run and the device.
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
	be, err := openBackend(cfg.Device, e.stderr)
	if err != nil {
		return nil, nil, err
	}
	if run, err = train.OpenSavedRun(dir, be); err != nil {
		be.Close()
		return nil, nil, err
	}
	return run, func() { run.Close(); be.Close() }, nil
}

type evaluator struct {
	e      *env
	run    *train.SavedRun
	out    string
	seed   uint64
	pc     eval.ProbeConfig
	points int

	ftr, fte *eval.Features
	probe    *eval.Probe
}

func (v *evaluator) features() (eval.Features, eval.Features, error) {
	if v.ftr == nil {
		ftr, err := v.run.Encoder.Encode(v.run.Train, nil)
		if err != nil {
			return ftr, ftr, err
		}
		fte, err := v.run.Encoder.Encode(v.run.Test, nil)
		if err != nil {
			return ftr, fte, err
		}
		v.ftr, v.fte = &ftr, &fte
	}
	return *v.ftr, *v.fte, nil
}

func (v *evaluator) writeJSON(name string, x any) error {
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(v.out, name), append(b, '\n'), 0o644)
}

func (v *evaluator) trainProbe() (*eval.Probe, eval.ProbeResult, error) {
	ftr, fte, err := v.features()
	if err != nil {
		return nil, eval.ProbeResult{}, err
	}
	pc := v.pc
	pc.Classes = max(len(v.run.Train.Classes), 2)
	res, err := eval.RunProbe(ftr, fte, pc)
	if err != nil {
		return nil, res, err
	}
	v.probe = res.Probe
	return res.Probe, res, nil
}

func (v *evaluator) linear() error {
	_, res, err := v.trainProbe()
	if err != nil {
		return err
	}
	fmt.Fprintf(v.e.stdout, "linear probe (%d epochs, lr %g, batch %d, seed %d): test accuracy %.2f%% (all %d test images: %.2f%%), train accuracy %.2f%%\n",
		v.pc.Epochs, v.pc.LR, v.pc.Batch, v.pc.Seed, res.TestAcc, v.run.Test.N, res.TestAccAll, res.TrainAcc)
	return v.writeJSON("linear.json", map[string]any{
		"epoch": v.run.Checkpoint.State.Epoch, "iter": v.run.Checkpoint.State.Iter,
		"test_acc": res.TestAcc, "test_acc_all": res.TestAccAll, "train_acc": res.TrainAcc,
		"probe_epochs": v.pc.Epochs, "probe_lr": v.pc.LR, "probe_batch": v.pc.Batch, "seed": v.pc.Seed,
		"epoch_loss": res.EpochLoss,
	})
}

// occlusionPs are the occlusion probabilities of the paper's Figure 5.
var occlusionPs = []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}

func (v *evaluator) occlusion() error {
	probe := v.probe
	if probe == nil {
		var err error
		if probe, _, err = v.trainProbe(); err != nil {
			return err
		}
	}
	tile := v.run.Config.Eval.OcclusionTile
	var csv strings.Builder
	csv.WriteString("p,tile,test_acc,test_acc_all\n")
	curve := eval.Curve{Label: filepath.Base(v.run.Dir)}
	fmt.Fprintf(v.e.stdout, "occlusion (tile %d): p  test accuracy\n", tile)
	for _, p := range occlusionPs {
		f, err := v.run.Encoder.Encode(v.run.Test, &eval.Occlusion{P: p, Tile: tile, Seed: v.seed})
		if err != nil {
			return err
		}
		acc, err := probe.BatchAccuracy(f, v.pc.Batch)
		if err != nil {
			return err
		}
		all, err := probe.Accuracy(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(v.e.stdout, "  %.1f  %.2f%%\n", p, acc)
		fmt.Fprintf(&csv, "%.1f,%d,%.4f,%.4f\n", p, tile, acc, all)
		curve.X = append(curve.X, p)
		curve.Y = append(curve.Y, acc)
	}
	if err := os.WriteFile(filepath.Join(v.out, "occlusion.csv"), []byte(csv.String()), 0o644); err != nil {
		return err
	}
	png := filepath.Join(v.out, "occlusion.png")
	if err := eval.PlotOcclusion(png, []eval.Curve{curve}); err != nil {
		return err
	}
	fmt.Fprintf(v.e.stdout, "wrote %s and %s\n", filepath.Join(v.out, "occlusion.csv"), png)
	return nil
}

func (v *evaluator) latent() error {
	clean, err := v.run.Encoder.Encode(v.run.Train, nil)
	if err != nil {
		return err
	}
	occ, err := v.run.Encoder.Encode(v.run.Train, &eval.Occlusion{P: 0.3, Tile: v.run.Config.Eval.OcclusionTile, Seed: v.seed})
	if err != nil {
		return err
	}
	m, err := eval.DistanceRatios(clean, occ, eval.DefaultPairConfig(), rng.Key{Seed: v.seed, Stream: rng.StreamEval, Seq: 1 << 33})
	if err != nil {
		return err
	}
	fmt.Fprintf(v.e.stdout, "latent organisation (training set): intra/inter-class distance %.4f, clean–occluded/inter-class %.4f (mean distances: intra %.4f, inter %.4f, clean–occluded %.4f)\n",
		m.IntraInter, m.OccInter, m.Intra, m.Inter, m.Occ)
	return v.writeJSON("latent.json", map[string]any{
		"intra_inter": m.IntraInter, "occ_inter": m.OccInter, "intra": m.Intra, "inter": m.Inter, "occ": m.Occ,
		"occlusion_p": 0.3, "tile": v.run.Config.Eval.OcclusionTile, "seed": v.seed,
	})
}

func (v *evaluator) pca() error {
	test := v.run.Test
	if v.points > 0 && v.points < test.N {
		test = test.Subset(v.points)
	}
	clean, err := v.run.Encoder.Encode(test, nil)
	if err != nil {
		return err
	}
	occ, err := v.run.Encoder.Encode(test, &eval.Occlusion{P: 0.3, Tile: v.run.Config.Eval.OcclusionTile, Seed: v.seed})
	if err != nil {
		return err
	}
	res, err := eval.PCA(clean, 2)
	if err != nil {
		return err
	}
	pc, err := res.Project2(clean)
	if err != nil {
		return err
	}
	po, err := res.Project2(occ)
	if err != nil {
		return err
	}
	path := filepath.Join(v.out, "pca.png")
	if err := eval.PlotPCA(path, pc, po, clean.Labels, test.Classes); err != nil {
		return err
	}
	fmt.Fprintf(v.e.stdout, "PCA of %d test latents: explained variance %.3g and %.3g; wrote %s\n", test.N, res.Variance[0], res.Variance[1], path)
	return nil
}

func (v *evaluator) plots() error {
	recs, skipped, err := metrics.ReadFile(filepath.Join(v.run.Dir, metrics.FileName))
	if err != nil {
		return err
	}
	if skipped > 0 {
		fmt.Fprintf(v.e.stderr, "notice: metrics.jsonl ends with an incomplete line (skipped)\n")
	}
	var wrote []string
	hasEpoch := false
	curve := eval.Curve{Label: filepath.Base(v.run.Dir)}
	for _, r := range recs {
		switch {
		case r.Kind == metrics.KindEpoch:
			hasEpoch = true
		case r.Kind == metrics.KindProbe && r.TestAcc != nil && !math.IsNaN(*r.TestAcc):
			curve.X = append(curve.X, float64(r.Epoch))
			curve.Y = append(curve.Y, *r.TestAcc)
		}
	}
	if hasEpoch {
		p := filepath.Join(v.out, "losses.png")
		if err := eval.PlotLosses(p, recs); err != nil {
			return err
		}
		wrote = append(wrote, p)
	}
	if len(curve.X) > 0 {
		p := filepath.Join(v.out, "accuracy.png")
		if err := eval.PlotAccuracy(p, []eval.Curve{curve}, eval.PlotLabels{Title: "linear separability", X: "epoch", Y: "test accuracy (%)"}); err != nil {
			return err
		}
		wrote = append(wrote, p)
	}
	if len(wrote) == 0 {
		return fmt.Errorf("%s has no epoch or probe records to plot yet", filepath.Join(v.run.Dir, metrics.FileName))
	}
	fmt.Fprintf(v.e.stdout, "wrote %s\n", strings.Join(wrote, ", "))
	return nil
}

func (v *evaluator) export() error {
	ftr, fte, err := v.features()
	if err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		f    eval.Features
	}{{"train", ftr}, {"test", fte}} {
		zp := filepath.Join(v.out, "z_"+x.name+".npy")
		yp := filepath.Join(v.out, "y_"+x.name+".npy")
		if err := eval.SaveNpy(zp, x.f.X, x.f.N, x.f.D); err != nil {
			return err
		}
		if err := eval.SaveLabelsNpy(yp, x.f.Labels); err != nil {
			return err
		}
		fmt.Fprintf(v.e.stdout, "wrote %s (%d×%d float32) and %s (%d int64)\n", zp, x.f.N, x.f.D, yp, x.f.N)
	}
	return nil
}
