package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/metrics"
)

// All is the name that selects every evaluation, in the order of
// Evaluations.
const All = "all"

// evaluations names the evaluations of pad eval, each an Evaluator method
// (Linear, Occlusion, Latent, PCA, Plots, Export), in the order All runs
// them.
var evaluations = []string{"linear", "occlusion", "latent", "pca", "plots", "export"}

// Evaluations returns the names of the evaluations of pad eval in the
// order All runs them (a fresh copy).
func Evaluations() []string { return slices.Clone(evaluations) }

// Select returns the names of the evaluations what stands for: every one
// for All, what alone for the name of one; ok is false for anything else.
func Select(what string) (names []string, ok bool) {
	for _, name := range evaluations {
		if what == All || what == name {
			names = append(names, name)
		}
	}
	return names, len(names) > 0
}

// OcclusionGrid returns the occlusion probabilities of the paper's
// Figure 5, at which Occlusion measures the probe: 0, 0.1, …, 1.
func OcclusionGrid() []float64 {
	return []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}
}

// LatentOcclusionP is the probability with which Latent and PCA drop the
// occlusion tiles of an image (30 %).
const LatentOcclusionP = 0.3

// latentSeq is the Seq of the evaluation stream from which Latent draws its
// pairs, clear of the probe's (ProbeInitSeq and the epoch numbers).
const latentSeq uint64 = 1 << 33

// Encoder computes the features of a data set, of its images as they are
// (occ nil) or occluded by occ. *FrozenEncoder is one. An Evaluator caches
// the clean features, so encoding must be deterministic.
type Encoder interface {
	Encode(set *dataset.Set, occ *Occlusion) (Features, error)
}

// Evaluator runs the evaluation protocol of pad eval on one checkpoint:
// each method computes one evaluation, writes its files into Out and
// returns what it found. The clean features of the training and test sets
// and the trained probe are computed once, by the first method that needs
// them, and shared by the later ones. Fill the exported fields, call
// Prepare, then any methods in any order; an Evaluator is not safe for
// concurrent use.
type Evaluator struct {
	// Encoder is the checkpoint's frozen encoder.
	Encoder Encoder
	// Train and Test are the run's data sets; their Classes name the
	// classes.
	Train, Test *dataset.Set
	// Seed seeds the probe (in place of ProbeConfig.Seed), the occlusion
	// masks and the pairs of Latent.
	Seed uint64
	// ProbeConfig sets the probe; its Classes is taken from Train.
	ProbeConfig ProbeConfig
	// Tile is the side of the occlusion tiles.
	Tile int
	// Points is the number of test images PCA plots: the first Points, or
	// all of them when Points is 0 or not below Test.N.
	Points int
	// RunDir is the run directory: Plots reads its metrics, and its base
	// name labels the curves.
	RunDir string
	// Out is the folder the files are written to (RUN/eval).
	Out string
	// Epoch and Iter are the checkpoint's position, recorded in
	// linear.json.
	Epoch, Iter int

	train, test *Features
	probe       *ProbeResult
}

// Prepare creates the output folder.
func (e *Evaluator) Prepare() error { return os.MkdirAll(e.Out, 0o755) }

// TrainFeatures returns the clean features of the training set, encoding
// it on the first call.
func (e *Evaluator) TrainFeatures() (Features, error) { return e.clean(e.Train, &e.train) }

// TestFeatures returns the clean features of the test set, encoding it on
// the first call.
func (e *Evaluator) TestFeatures() (Features, error) { return e.clean(e.Test, &e.test) }

func (e *Evaluator) clean(set *dataset.Set, cache **Features) (Features, error) {
	if *cache == nil {
		f, err := e.Encoder.Encode(set, nil)
		if err != nil {
			return f, err
		}
		*cache = &f
	}
	return **cache, nil
}

// probeConfig is the probe's configuration: ProbeConfig with Seed and the
// number of classes of the training set (2 at least).
func (e *Evaluator) probeConfig() ProbeConfig {
	pc := e.ProbeConfig
	pc.Seed = e.Seed
	pc.Classes = max(len(e.Train.Classes), 2)
	return pc
}

// Probe returns the linear probe trained on the clean training features
// and measured on the clean test features, training it on the first call.
func (e *Evaluator) Probe() (ProbeResult, error) {
	if e.probe == nil {
		ftr, err := e.TrainFeatures()
		if err != nil {
			return ProbeResult{}, err
		}
		fte, err := e.TestFeatures()
		if err != nil {
			return ProbeResult{}, err
		}
		res, err := RunProbe(ftr, fte, e.probeConfig())
		if err != nil {
			return res, err
		}
		e.probe = &res
	}
	return *e.probe, nil
}

// LinearResult is the outcome of Linear.
type LinearResult struct {
	ProbeResult
	// Config is the probe's configuration.
	Config ProbeConfig
	// TestImages is the number of test images.
	TestImages int
	// File is linear.json.
	File string
}

// Linear trains (or reuses) the probe and writes its accuracies, its
// settings, its per-epoch losses and the checkpoint's position to
// linear.json. When only the writing fails, it returns the result with the
// error.
func (e *Evaluator) Linear() (*LinearResult, error) {
	res, err := e.Probe()
	if err != nil {
		return nil, err
	}
	pc := e.probeConfig()
	r := &LinearResult{ProbeResult: res, Config: pc, TestImages: e.Test.N, File: filepath.Join(e.Out, "linear.json")}
	return r, writeJSON(r.File, map[string]any{
		"epoch": e.Epoch, "iter": e.Iter,
		"test_acc": res.TestAcc, "test_acc_all": res.TestAccAll, "train_acc": res.TrainAcc,
		"probe_epochs": pc.Epochs, "probe_lr": pc.LR, "probe_batch": pc.Batch, "seed": pc.Seed,
		"epoch_loss": res.EpochLoss,
	})
}

// OcclusionPoint is the probe's accuracy (in percent) on test images
// occluded with probability P.
type OcclusionPoint struct {
	P float64
	// TestAcc is the reference code's batch-averaged accuracy, TestAccAll
	// the plain accuracy over every test image (see ProbeResult).
	TestAcc, TestAccAll float64
}

// OcclusionResult is the outcome of Occlusion.
type OcclusionResult struct {
	// Tile is the side of the occlusion tiles.
	Tile int
	// Points holds one measurement per probability of OcclusionGrid.
	Points []OcclusionPoint
	// CSV and PNG are occlusion.csv and occlusion.png.
	CSV, PNG string
}

// Occlusion measures the probe, trained on clean features, on the test set
// occluded at every probability of OcclusionGrid, passing each point to
// each (when not nil) as soon as it is measured, and writes the curve to
// occlusion.csv and occlusion.png.
func (e *Evaluator) Occlusion(each func(OcclusionPoint)) (*OcclusionResult, error) {
	res, err := e.Probe()
	if err != nil {
		return nil, err
	}
	pc := e.probeConfig()
	r := &OcclusionResult{Tile: e.Tile, CSV: filepath.Join(e.Out, "occlusion.csv"), PNG: filepath.Join(e.Out, "occlusion.png")}
	var csv strings.Builder
	csv.WriteString("p,tile,test_acc,test_acc_all\n")
	curve := Curve{Label: filepath.Base(e.RunDir)}
	for _, p := range OcclusionGrid() {
		f, err := e.Encoder.Encode(e.Test, &Occlusion{P: p, Tile: e.Tile, Seed: e.Seed})
		if err != nil {
			return nil, err
		}
		pt := OcclusionPoint{P: p}
		if pt.TestAcc, err = res.Probe.BatchAccuracy(f, pc.Batch); err != nil {
			return nil, err
		}
		if pt.TestAccAll, err = res.Probe.Accuracy(f); err != nil {
			return nil, err
		}
		if each != nil {
			each(pt)
		}
		r.Points = append(r.Points, pt)
		fmt.Fprintf(&csv, "%.1f,%d,%.4f,%.4f\n", p, e.Tile, pt.TestAcc, pt.TestAccAll)
		curve.X = append(curve.X, p)
		curve.Y = append(curve.Y, pt.TestAcc)
	}
	if err := os.WriteFile(r.CSV, []byte(csv.String()), 0o644); err != nil {
		return nil, err
	}
	if err := PlotOcclusion(r.PNG, []Curve{curve}); err != nil {
		return nil, err
	}
	return r, nil
}

// LatentResult is the outcome of Latent.
type LatentResult struct {
	LatentMetrics
	// P and Tile are the occlusion of the occluded features.
	P    float64
	Tile int
	// File is latent.json.
	File string
}

// Latent measures the latent organisation of the training set
// (DistanceRatios with the paper's pair counts), its occluded features
// being those of LatentOcclusionP, and writes the ratios to latent.json.
// When only the writing fails, it returns the result with the error.
func (e *Evaluator) Latent() (*LatentResult, error) {
	clean, err := e.TrainFeatures()
	if err != nil {
		return nil, err
	}
	occ, err := e.Encoder.Encode(e.Train, &Occlusion{P: LatentOcclusionP, Tile: e.Tile, Seed: e.Seed})
	if err != nil {
		return nil, err
	}
	m, err := DistanceRatios(clean, occ, DefaultPairConfig(), rng.Key{Seed: e.Seed, Stream: rng.StreamEval, Seq: latentSeq})
	if err != nil {
		return nil, err
	}
	r := &LatentResult{LatentMetrics: m, P: LatentOcclusionP, Tile: e.Tile, File: filepath.Join(e.Out, "latent.json")}
	return r, writeJSON(r.File, map[string]any{
		"intra_inter": m.IntraInter, "occ_inter": m.OccInter, "intra": m.Intra, "inter": m.Inter, "occ": m.Occ,
		"occlusion_p": r.P, "tile": r.Tile, "seed": e.Seed,
	})
}

// PCAPlotResult is the outcome of PCA.
type PCAPlotResult struct {
	// Images is the number of test images plotted.
	Images int
	// PCA holds the two components of their clean features.
	PCA *PCAResult
	// File is pca.png.
	File string
}

// PCA plots the first two principal components of the clean features of
// the first Points test images, and their projections of the same images
// occluded with LatentOcclusionP, to pca.png.
func (e *Evaluator) PCA() (*PCAPlotResult, error) {
	test := e.Test
	if e.Points > 0 && e.Points < test.N {
		test = test.Subset(e.Points)
	}
	clean, err := e.cleanPrefix(test)
	if err != nil {
		return nil, err
	}
	occ, err := e.Encoder.Encode(test, &Occlusion{P: LatentOcclusionP, Tile: e.Tile, Seed: e.Seed})
	if err != nil {
		return nil, err
	}
	res, err := PCA(clean, 2)
	if err != nil {
		return nil, err
	}
	pc, err := res.Project2(clean)
	if err != nil {
		return nil, err
	}
	po, err := res.Project2(occ)
	if err != nil {
		return nil, err
	}
	r := &PCAPlotResult{Images: test.N, PCA: res, File: filepath.Join(e.Out, "pca.png")}
	if err := PlotPCA(r.File, pc, po, clean.Labels, test.Classes); err != nil {
		return nil, err
	}
	return r, nil
}

// cleanPrefix returns the clean features of test, the first test.N images
// of e.Test: the first rows of the test features when they are already
// computed (an image's code does not depend on the rest of its batch),
// else its own encoding, which spares encoding the whole test set for a
// few images.
func (e *Evaluator) cleanPrefix(test *dataset.Set) (Features, error) {
	if e.test == nil {
		if test.N == e.Test.N {
			return e.TestFeatures()
		}
		return e.Encoder.Encode(test, nil)
	}
	f := *e.test
	n := test.N * f.D
	return Features{X: f.X[:n:n], N: test.N, D: f.D, Labels: f.Labels[:test.N:test.N]}, nil
}

// PlotsResult is the outcome of Plots.
type PlotsResult struct {
	// Files are the figures written: losses.png when the run has epoch
	// records, accuracy.png when it has probe records.
	Files []string
	// Skipped is the number of incomplete lines at the end of the run's
	// metrics that were skipped.
	Skipped int
}

// Plots draws the run's losses per epoch (losses.png) and the probe's test
// accuracy per epoch (accuracy.png) from its metrics. It fails when the
// run has neither kind of record; once the metrics are read it returns
// the result even with an error.
func (e *Evaluator) Plots() (*PlotsResult, error) {
	path := filepath.Join(e.RunDir, metrics.FileName)
	recs, skipped, err := metrics.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &PlotsResult{Skipped: skipped}
	hasEpoch := false
	curve := Curve{Label: filepath.Base(e.RunDir)}
	for _, rec := range recs {
		switch {
		case rec.Kind == metrics.KindEpoch:
			hasEpoch = true
		case rec.Kind == metrics.KindProbe && rec.TestAcc != nil && !math.IsNaN(*rec.TestAcc):
			curve.X = append(curve.X, float64(rec.Epoch))
			curve.Y = append(curve.Y, *rec.TestAcc)
		}
	}
	if hasEpoch {
		p := filepath.Join(e.Out, "losses.png")
		if err := PlotLosses(p, recs); err != nil {
			return r, err
		}
		r.Files = append(r.Files, p)
	}
	if len(curve.X) > 0 {
		p := filepath.Join(e.Out, "accuracy.png")
		if err := PlotAccuracy(p, []Curve{curve}, PlotLabels{Title: "linear separability", X: "epoch", Y: "test accuracy (%)"}); err != nil {
			return r, err
		}
		r.Files = append(r.Files, p)
	}
	if len(r.Files) == 0 {
		return r, fmt.Errorf("%s has no epoch or probe records to plot yet", path)
	}
	return r, nil
}

// ExportedSet names the .npy files of one data set written by Export.
type ExportedSet struct {
	// Name is "train" or "test".
	Name string
	// Z holds the N×D float32 latents, Y the N int64 labels.
	Z, Y string
	N, D int
}

// ExportResult is the outcome of Export.
type ExportResult struct {
	// Sets are the sets written, the training set first.
	Sets []ExportedSet
}

// Export writes the clean latents and the labels of the training and the
// test set as z_train.npy, y_train.npy, z_test.npy and y_test.npy. On an
// error it returns the sets written before it with the error.
func (e *Evaluator) Export() (*ExportResult, error) {
	ftr, err := e.TrainFeatures()
	if err != nil {
		return nil, err
	}
	fte, err := e.TestFeatures()
	if err != nil {
		return nil, err
	}
	r := &ExportResult{}
	for _, x := range []struct {
		name string
		f    Features
	}{{"train", ftr}, {"test", fte}} {
		s := ExportedSet{Name: x.name, Z: filepath.Join(e.Out, "z_"+x.name+".npy"), Y: filepath.Join(e.Out, "y_"+x.name+".npy"), N: x.f.N, D: x.f.D}
		if err := SaveNpy(s.Z, x.f.X, x.f.N, x.f.D); err != nil {
			return r, err
		}
		if err := SaveLabelsNpy(s.Y, x.f.Labels); err != nil {
			return r, err
		}
		r.Sets = append(r.Sets, s)
	}
	return r, nil
}

// writeJSON writes x to path as indented JSON with a final newline.
func writeJSON(path string, x any) error {
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
