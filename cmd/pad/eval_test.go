package main

import (
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/eval"
)

// evalUsageText is pad eval's help text as it was written by hand before
// its list of evaluations came from package eval; the generated text must
// not drift from it.
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
	evs := eval.Evaluations()
	if len(evalReports) != len(evs) {
		t.Errorf("%d reports for %d evaluations", len(evalReports), len(evs))
	}
	for _, ev := range evs {
		if evalReports[ev.Name] == nil {
			t.Errorf("no report for evaluation %q", ev.Name)
		}
		e := &env{checkOnly: true}
		if err := cmdEval([]string{ev.Name, "RUN"}, e); err != errChecked {
			t.Errorf("pad eval %s RUN: %v", ev.Name, err)
		}
	}
}
