package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/train"
)

// evalUsageText is pad eval's help text, which must not change by
// accident.
const evalUsageText = `
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

func TestEvalUsageUnchanged(t *testing.T) {
	if evalUsage != evalUsageText {
		t.Errorf("pad eval usage is\n%s\nwant\n%s", evalUsage, evalUsageText)
	}
	// It lists every evaluation of package eval, and all, in their order.
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+) +\S`).FindAllStringSubmatch(evalUsage, -1) {
		listed = append(listed, m[1])
	}
	if want := append(eval.Evaluations(), eval.All); !slices.Equal(listed, want) {
		t.Errorf("pad eval usage lists %v, want %v", listed, want)
	}
	for _, args := range [][]string{{"eval", "--help"}, {"eval", "pca", "--help"}} {
		code, out, _ := runPad(t, args...)
		if want := strings.TrimSpace(evalUsageText) + "\nFlags:\n"; code != exitOK || !strings.HasPrefix(out, want) {
			t.Errorf("pad %v: code %d\n%s", args, code, out)
		}
	}
}

func TestEvalChoices(t *testing.T) {
	const choices = "linear, occlusion, latent, pca, plots, export or all"
	if got := evalChoices(); got != choices {
		t.Errorf("evalChoices() = %q, want %q", got, choices)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"eval"}, "pad: eval: say what to evaluate (" + choices + "); see 'pad eval --help'\n"},
		{[]string{"eval", "nonsense", "x"}, "pad: eval: unknown evaluation \"nonsense\" (" + choices + ")\n"},
	} {
		if code, out, e := runPad(t, c.args...); code != exitUsage || out != "" || e != c.msg {
			t.Errorf("pad %v: code %d, stderr %q, want %q", c.args, code, e, c.msg)
		}
	}
}

// Every evaluation of package eval is printed by pad eval, and nothing
// else is.
func TestEvalReportsCoverEvaluations(t *testing.T) {
	names := eval.Evaluations()
	if len(evalReports) != len(names) {
		t.Errorf("%d reports for %d evaluations", len(evalReports), len(names))
	}
	for _, name := range names {
		if evalReports[name] == nil {
			t.Errorf("no report for evaluation %q", name)
		}
	}
	for _, name := range append(names, eval.All) {
		e := &env{checkOnly: true}
		if err := cmdEval([]string{name, "RUN"}, e); err != errChecked {
			t.Errorf("pad eval %s RUN: %v", name, err)
		}
	}
}

// countingEncoder counts the encodings of the encoder it wraps by set
// (train, test, or a subset: other), size and occlusion.
type countingEncoder struct {
	eval.Encoder
	train, test *dataset.Set
	calls       map[string]int
}

func (c *countingEncoder) Encode(set *dataset.Set, occ *eval.Occlusion) (eval.Features, error) {
	name := "other"
	switch set {
	case c.train:
		name = "train"
	case c.test:
		name = "test"
	}
	key := fmt.Sprintf("%s/%d clean", name, set.N)
	if occ != nil {
		key = fmt.Sprintf("%s/%d p=%g", name, set.N, occ.P)
	}
	c.calls[key]++
	return c.Encoder.Encode(set, occ)
}

// pad eval all on a small run encodes each set clean once, prints every
// evaluation in order and writes every file.
func TestEvalAllEncodesEachSetOnce(t *testing.T) {
	run := trainSmallRun(t, t.TempDir())

	var enc *countingEncoder
	orig := runEncoder
	runEncoder = func(r *train.SavedRun) eval.Encoder {
		enc = &countingEncoder{Encoder: orig(r), train: r.Train, test: r.Test, calls: map[string]int{}}
		return enc
	}
	t.Cleanup(func() { runEncoder = orig })

	code, out, e := runPad(t, "eval", "all", run, "--device", "cpu", "--probe-epochs", "1", "--points", "16")
	if code != exitOK || enc == nil {
		t.Fatalf("eval all: code %d\n%s%s", code, out, e)
	}
	want := map[string]int{
		"train/64 clean": 1, "test/32 clean": 1,
		"train/64 p=0.3": 1, // latent
		"other/16 p=0.3": 1, // pca: its clean codes are the test set's first rows
	}
	for _, p := range eval.OcclusionGrid() {
		want[fmt.Sprintf("test/32 p=%g", p)]++
	}
	if !maps.Equal(enc.calls, want) {
		t.Errorf("encodings %v, want %v", enc.calls, want)
	}

	dir := filepath.Join(run, "eval")
	lines := []string{
		`linear probe \(1 epochs, lr [0-9.]+, batch \d+, seed \d+\): test accuracy [0-9.]+% \(all 32 test images: [0-9.]+%\), train accuracy [0-9.]+%`,
		`occlusion \(tile \d+\): p  test accuracy`,
	}
	for _, p := range eval.OcclusionGrid() {
		lines = append(lines, fmt.Sprintf(`  %.1f  [0-9.]+%%`, p))
	}
	q := func(name string) string { return regexp.QuoteMeta(filepath.Join(dir, name)) }
	lines = append(lines,
		`wrote `+q("occlusion.csv")+` and `+q("occlusion.png"),
		`latent organisation \(training set\): intra/inter-class distance \S+, clean–occluded/inter-class \S+ \(mean distances: intra \S+, inter \S+, clean–occluded \S+\)`,
		`PCA of 16 test latents: explained variance \S+ and \S+; wrote `+q("pca.png"),
		`wrote `+q("losses.png"),
		`wrote `+q("z_train.npy")+` \(64×8 float32\) and `+q("y_train.npy")+` \(64 int64\)`,
		`wrote `+q("z_test.npy")+` \(32×8 float32\) and `+q("y_test.npy")+` \(32 int64\)`,
	)
	if !regexp.MustCompile(`\A` + strings.Join(lines, `\n`) + `\n\z`).MatchString(out) {
		t.Errorf("eval all printed\n%s\nwant lines matching\n%s", out, strings.Join(lines, "\n"))
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Name())
	}
	if wantFiles := []string{"latent.json", "linear.json", "losses.png", "occlusion.csv", "occlusion.png", "pca.png",
		"y_test.npy", "y_train.npy", "z_test.npy", "z_train.npy"}; !slices.Equal(got, wantFiles) {
		t.Errorf("eval all wrote %v, want %v", got, wantFiles)
	}
}
