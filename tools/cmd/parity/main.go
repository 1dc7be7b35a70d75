// Command parity trains pad on the CPU backend's float64 twin alongside
// trajectories recorded by scripts/pad_torch.py (PyTorch, float64, pad's
// random numbers) and reports how far the two drift apart: the relative
// error of every loss at every iteration and of every parameter tensor at
// every recorded snapshot, as a table, a JSON file and two PNG curves.
//
// Usage, from the repository root (make parity runs the whole comparison):
//
//	go run ./tools/cmd/parity [-out DIR] [-threads N] [-tol X] [-floor CONDITIONS] [-margin N] TRAJECTORY.safetensors...
//
// Each file names its settings (condition, channels, sizes, iterations,
// seed) in its metadata; pad is run with the same ones through its real
// trainer (train.Trainer: loader, epoch boundaries, dropped partial batch,
// checkpoints) and phases.PAD.
//
// The verdict: every loss and parameter must agree to -tol (default 1e-6:
// far above float64 round-off, far below a semantic difference, which
// moves the parameters by ~1e-3 within a few dozen iterations). With
// -floor, pad is also run from initial parameters moved by one float64
// ulp: its distance to the unmoved run is how far round-off alone carries
// the trajectory. Training dynamics can amplify round-off exponentially
// (the paper's model does, from about iteration 60); no two float64
// implementations can agree after the floor itself passes -tol, so then
// the check stops -margin iterations before the floor's crossing.
//
// Each case's comparison is kept in OUT/cases/ and reused while its
// trajectory file (by sha256) and the floor setting stay the same, so the
// command can be run on files as they are made and once more on all of
// them for the combined report.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/tools/parity"
)

// floor holds the conditions whose float64 floor is measured ("all":
// every condition).
var floor = map[string]bool{}

func wantFloor(condition string) bool { return floor["all"] || floor[condition] }

func main() {
	out := flag.String("out", "runs/parity", "directory for the report (parity.json, parity-*.png)")
	threads := flag.Int("threads", 0, "threads of the float64 CPU backend (0: all cores)")
	tol := flag.Float64("tol", 1e-6, "largest relative error accepted")
	margin := flag.Int("margin", 25, "iterations before the floor's crossing of -tol where the check stops")
	floorList := flag.String("floor", "", "conditions (space- or comma-separated, or \"all\") whose float64 floor to measure")
	flag.Parse()
	for _, c := range strings.FieldsFunc(*floorList, func(r rune) bool { return r == ' ' || r == ',' }) {
		floor[c] = true
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: parity [-out DIR] [-threads N] [-tol X] [-floor CONDITIONS] [-margin N] TRAJECTORY.safetensors...")
		os.Exit(2)
	}
	if err := run(flag.Args(), *out, *threads, *tol, *margin); err != nil {
		fmt.Fprintln(os.Stderr, "parity:", err)
		os.Exit(1)
	}
}

// caseReport is one trajectory's comparison, as written to parity.json.
type caseReport struct {
	File           string          `json:"file"`
	Settings       parity.Settings `json:"settings"`
	TorchVersion   string          `json:"torch"`
	TorchSeconds   string          `json:"torch_seconds"`
	PadSeconds     float64         `json:"pad_seconds"`
	WorstLoss      float64         `json:"worst_loss_error"`
	WorstLossAt    string          `json:"worst_loss_at"`
	WorstLossIter  int             `json:"worst_loss_iteration"`
	WorstParam     float64         `json:"worst_param_error"`
	WorstParamAt   string          `json:"worst_param_at"`
	WorstParamIter int             `json:"worst_param_after_iteration"`
	// FirstOver is the first iteration whose loss error exceeds the
	// tolerance (−1: none).
	FirstOver   int                `json:"first_iteration_over_tol"`
	CheckedTo   int                `json:"checked_iterations"`
	Pass        bool               `json:"pass"`
	MaxLossErr  []float64          `json:"max_loss_error_per_iteration"`
	MaxParamErr map[int]float64    `json:"max_param_error_after_iteration"`
	WorstByLoss map[string]float64 `json:"worst_error_by_loss"`
	EpochStarts []int              `json:"epoch_starts"`
	// The float64 floor (-floor): pad against pad started one ulp away.
	Floor *floorReport `json:"floor,omitempty"`
}

type floorReport struct {
	WorstLoss   float64         `json:"worst_loss_error"`
	WorstParam  float64         `json:"worst_param_error"`
	FirstOver   int             `json:"first_iteration_over_tol"`
	MaxLossErr  []float64       `json:"max_loss_error_per_iteration"`
	MaxParamErr map[int]float64 `json:"max_param_error_after_iteration"`
}

func firstOver(errs []float64, tol float64) int {
	for i, e := range errs {
		if !(e <= tol) {
			return i
		}
	}
	return -1
}

// cached is what a case's comparison leaves in OUT/cases/: the report of
// one trajectory file, valid while the file's sha256 and the floor setting
// are the same.
type cached struct {
	TorchSHA256 string     `json:"torch_sha256"`
	Report      caseReport `json:"report"`
}

func run(files []string, out string, threads int, tol float64, margin int) error {
	if err := os.MkdirAll(filepath.Join(out, "cases"), 0o755); err != nil {
		return err
	}
	var reports []caseReport
	var lossCurves, paramCurves []eval.Curve
	failed := false
	fmt.Printf("%-22s %5s %10s %10s %10s %-24s %10s %-26s %6s %s\n", "case", "iters", "over tol", "floor over", "loss err", "(where)", "param err", "(where)", "pad s", "verdict")
	for _, path := range files {
		rep, err := compareFile(path, out, threads)
		if err != nil {
			return err
		}
		judge(rep, tol, margin)
		failed = failed || !rep.Pass
		s := rep.Settings
		name := fmt.Sprintf("%s c%d", s.Condition, s.Channels)
		over, floorOver := "none", "-"
		if rep.FirstOver >= 0 {
			over = fmt.Sprint(rep.FirstOver)
		}
		if rep.Floor != nil {
			floorOver = "none"
			if rep.Floor.FirstOver >= 0 {
				floorOver = fmt.Sprint(rep.Floor.FirstOver)
			}
		}
		verdict := "pass"
		if !rep.Pass {
			verdict = "FAIL"
		}
		if rep.CheckedTo < s.Iters {
			verdict += fmt.Sprintf(" (checked to %d)", rep.CheckedTo)
		}
		fmt.Printf("%-22s %5d %10s %10s %10.3g %-24s %10.3g %-26s %6.0f %s\n", name, s.Iters, over, floorOver,
			rep.WorstLoss, fmt.Sprintf("%s @%d", rep.WorstLossAt, rep.WorstLossIter),
			rep.WorstParam, fmt.Sprintf("%s @%d", rep.WorstParamAt, rep.WorstParamIter), rep.PadSeconds, verdict)
		if f := rep.Floor; f != nil {
			fmt.Printf("%-22s %5s %10s %10s %10.3g %-24s %10.3g\n", "  floor (pad+1ulp)", "", "", "",
				f.WorstLoss, "", f.WorstParam)
		}
		reports = append(reports, *rep)
		lossCurves = append(lossCurves, curve(name, rep.MaxLossErr))
		paramCurves = append(paramCurves, snapCurve(name, rep.MaxParamErr))
		if f := rep.Floor; f != nil {
			lossCurves = append(lossCurves, curve(name+", floor", f.MaxLossErr))
			paramCurves = append(paramCurves, snapCurve(name+", floor", f.MaxParamErr))
		}
	}
	b, err := json.MarshalIndent(reports, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "parity.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	lossPNG, paramPNG := filepath.Join(out, "parity-losses.png"), filepath.Join(out, "parity-params.png")
	if err := eval.PlotAccuracy(lossPNG, lossCurves, eval.PlotLabels{
		Title: "pad vs PyTorch, float64: largest relative loss error per iteration",
		X:     "iteration", Y: "log10 relative error"}); err != nil {
		return err
	}
	if err := eval.PlotAccuracy(paramPNG, paramCurves, eval.PlotLabels{
		Title: "pad vs PyTorch, float64: largest relative parameter error",
		X:     "after iteration", Y: "log10 relative error"}); err != nil {
		return err
	}
	fmt.Printf("report: %s; curves: %s, %s\n", filepath.Join(out, "parity.json"), lossPNG, paramPNG)
	if failed {
		return fmt.Errorf("an error exceeds the tolerance %g", tol)
	}
	return nil
}

// compareFile runs pad against one trajectory file (and, if asked, the
// floor), or takes the result from OUT/cases/ when the file is unchanged.
func compareFile(path, out string, threads int) (*caseReport, error) {
	sha, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	cachePath := filepath.Join(out, "cases", strings.TrimSuffix(filepath.Base(path), ".safetensors")+".json")
	if b, err := os.ReadFile(cachePath); err == nil {
		var c cached
		if json.Unmarshal(b, &c) == nil && c.TorchSHA256 == sha && (c.Report.Floor != nil) == wantFloor(c.Report.Settings.Condition) {
			return &c.Report, nil
		}
	}
	torch, s, err := parity.ReadTrajectory(path)
	if err != nil {
		return nil, err
	}

	t0 := time.Now()
	pad, set, err := runPad(s, threads, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	secs := time.Since(t0).Seconds()
	if h := parity.SHA256(set); h != torch.Meta["data_sha256"] {
		return nil, fmt.Errorf("%s: the torch side trained on other images (sha256 %s, pad's %s)", path, torch.Meta["data_sha256"], h)
	}
	if it, err := parity.CheckBatches(s, set, torch); err != nil {
		return nil, err
	} else if it >= 0 {
		return nil, fmt.Errorf("%s: pad's loader and the torch side differ in the images of iteration %d", path, it)
	}
	if it, err := parity.CheckOcclusion(pad, torch); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	} else if it >= 0 {
		return nil, fmt.Errorf("%s: pad's occlusion draw differs at iteration %d", path, it)
	}
	r, err := parity.Compare(s, pad, torch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rep := &caseReport{File: path, Settings: s, TorchVersion: torch.Meta["generated_with"], TorchSeconds: torch.Meta["seconds"],
		PadSeconds: secs, WorstLoss: r.WorstLoss, WorstLossAt: r.WorstLossAt, WorstLossIter: r.WorstLossIter,
		WorstParam: r.WorstParam, WorstParamAt: r.WorstParamAt, WorstParamIter: r.WorstParamIter,
		MaxLossErr: r.MaxLossErr, MaxParamErr: map[int]float64{}, WorstByLoss: map[string]float64{}}
	for it := 0; it < s.Iters; it += s.BatchesPerEpoch() {
		rep.EpochStarts = append(rep.EpochStarts, it)
	}
	for loss, errs := range r.LossErr {
		for _, e := range errs {
			rep.WorstByLoss[loss] = math.Max(rep.WorstByLoss[loss], e)
		}
	}
	for _, k := range torch.Snapshots() {
		rep.MaxParamErr[k] = r.MaxParamErr(k)
	}
	torch = nil // the parameters of a large model take hundreds of MB
	if wantFloor(s.Condition) {
		// The float64 floor: pad against pad started one ulp away.
		moved, _, err := runPad(s, threads, true)
		if err != nil {
			return nil, fmt.Errorf("%s (floor): %w", path, err)
		}
		fl, err := parity.Compare(s, moved, pad)
		if err != nil {
			return nil, err
		}
		rep.Floor = &floorReport{WorstLoss: fl.WorstLoss, WorstParam: fl.WorstParam,
			MaxLossErr: fl.MaxLossErr, MaxParamErr: map[int]float64{}}
		for k := range rep.MaxParamErr {
			rep.Floor.MaxParamErr[k] = fl.MaxParamErr(k)
		}
	}
	b, err := json.Marshal(cached{TorchSHA256: sha, Report: *rep})
	if err != nil {
		return nil, err
	}
	return rep, os.WriteFile(cachePath, b, 0o644)
}

// judge sets the verdict of a case: every loss and parameter error within
// tol, up to margin iterations before the floor passes tol (if it does).
func judge(rep *caseReport, tol float64, margin int) {
	rep.FirstOver = firstOver(rep.MaxLossErr, tol)
	rep.CheckedTo = rep.Settings.Iters
	if f := rep.Floor; f != nil {
		f.FirstOver = firstOver(f.MaxLossErr, tol)
		if f.FirstOver >= 0 {
			// Round-off alone carries two pad runs apart here: check
			// only what comes well before.
			rep.CheckedTo = max(0, f.FirstOver-margin)
		}
	}
	rep.Pass = true
	for i := 0; i < rep.CheckedTo; i++ {
		if !(rep.MaxLossErr[i] <= tol) {
			rep.Pass = false
		}
	}
	for k, e := range rep.MaxParamErr {
		if k <= rep.CheckedTo && !(e <= tol) {
			rep.Pass = false
		}
	}
}

// snapCurve draws the parameter errors after each snapshot but the first.
func snapCurve(label string, errs map[int]float64) eval.Curve {
	c := eval.Curve{Label: label}
	var ks []int
	for k := range errs {
		if k > 0 {
			ks = append(ks, k)
		}
	}
	sort.Ints(ks)
	for _, k := range ks {
		c.X = append(c.X, float64(k))
		c.Y = append(c.Y, log10(errs[k]))
	}
	return c
}

// fileSHA256 returns the hex sha256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runPad runs pad in a scratch directory.
func runPad(s parity.Settings, threads int, nudge bool) (*parity.Trajectory, *dataset.Set, error) {
	work, err := os.MkdirTemp("", "pad-parity-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(work)
	return parity.RunPad(s, work, parity.RunOptions{Threads: threads, NudgeInit: nudge})
}

// curve draws an error per iteration (iteration i+1 for index i).
func curve(label string, errs []float64) eval.Curve {
	c := eval.Curve{Label: label}
	for i, e := range errs {
		c.X = append(c.X, float64(i+1))
		c.Y = append(c.Y, log10(e))
	}
	return c
}

// log10 of an error, with exact agreement drawn at −17 (below float64's
// resolution) so that it stays on a log axis.
func log10(e float64) float64 {
	if e <= 0 {
		return -17
	}
	return math.Log10(e)
}
