package eval

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/metrics"
)

// ParseRunName splits a run directory name of the form
// <dataset>-<condition>-s<seed> (e.g. "cifar10-no-memory-mix-s3"). The
// dataset is everything before the first '-' (dataset names hold no '-'),
// the condition everything between it and the last "-s" followed only by
// digits (condition names may hold '-'). ok is false for any other form.
func ParseRunName(name string) (dataset, condition string, seed int, ok bool) {
	i := strings.IndexByte(name, '-')
	if i <= 0 {
		return "", "", 0, false
	}
	rest := name[i+1:]
	j := strings.LastIndex(rest, "-s")
	if j <= 0 {
		return "", "", 0, false
	}
	digits := rest[j+2:]
	if digits == "" {
		return "", "", 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", "", 0, false
		}
	}
	s, err := strconv.Atoi(digits)
	if err != nil {
		return "", "", 0, false
	}
	return name[:i], rest[:j], s, true
}

// RunSummary is one run as the report sees it: its identity, parsed from
// its directory name, and its metrics records.
type RunSummary struct {
	// Name is the run directory's name, <dataset>-<condition>-s<seed>.
	Name string
	// Dataset is the data set's name, e.g. "cifar10".
	Dataset string
	// Condition is the training condition, e.g. "pad" or "no-rem".
	Condition string
	// Seed is the run's seed.
	Seed int
	// Records are the run's metrics (metrics.ReadFile of its
	// metrics.jsonl); only the probe records are used.
	Records []metrics.Record
}

// NewRunSummary names the records of the run directory dir (only its last
// path element is parsed, see ParseRunName).
func NewRunSummary(dir string, records []metrics.Record) (RunSummary, error) {
	name := filepath.Base(filepath.Clean(dir))
	ds, cond, seed, ok := ParseRunName(name)
	if !ok {
		return RunSummary{}, fmt.Errorf("report: run name %q is not <dataset>-<condition>-s<seed>", name)
	}
	return RunSummary{Name: name, Dataset: ds, Condition: cond, Seed: seed, Records: records}, nil
}

// LoadRun reads <dir>/metrics.jsonl and names it after dir. skipped is the
// number of incomplete trailing lines ignored (see metrics.ReadFile).
func LoadRun(dir string) (run RunSummary, skipped int, err error) {
	recs, skipped, err := metrics.ReadFile(filepath.Join(dir, metrics.FileName))
	if err != nil {
		return RunSummary{}, 0, fmt.Errorf("report: %w", err)
	}
	run, err = NewRunSummary(dir, recs)
	return run, skipped, err
}

// GroupSummary aggregates the runs of one (dataset, condition) over seeds.
type GroupSummary struct {
	// Dataset and Condition identify the group.
	Dataset   string
	Condition string
	// N is the number of runs with a probe result.
	N int
	// Mean is the mean over runs of the final probe test accuracy (%).
	Mean float64
	// SEM is the standard error of Mean: the sample standard deviation
	// (n−1 denominator) over √n; 0 when N is 1.
	SEM float64
	// Seeds, Epochs and Values give, run by run in seed order, the seed,
	// the epoch of the final probe and its test accuracy.
	Seeds  []int
	Epochs []int
	Values []float64
	// Curve is the mean test accuracy against the epoch, with its SEM over
	// the runs probed at that epoch; CurveN counts those runs.
	Curve  Curve
	CurveN []int
}

// ReportResult is the outcome of Report.
type ReportResult struct {
	// Groups in table order: datasets, then conditions in the paper's
	// order (see ConditionOrder).
	Groups []GroupSummary
	// Skipped names the runs left out and why (no probe records).
	Skipped []string
}

// datasetOrder and conditionOrder give the rows and columns of the table
// and their display names.
var datasetOrder = []struct{ id, name string }{
	{"cifar10", "CIFAR-10"}, {"svhn", "SVHN"}, {"mnist", "MNIST"},
	{"fashion", "Fashion-MNIST"}, {"folder", "folder"}, {"embedded", "embedded"},
}

var conditionOrder = []struct{ id, name string }{
	{"pad", "PAD"}, {"no-memory-mix", "w/o memory mix"}, {"no-rem", "w/o REM"},
	{"no-nrem", "w/o NREM"}, {"wake-only", "Wake only"},
	{"rem-noise-only", "REM from noise only"}, {"rem-memory-only", "REM from memory mix only"},
	{"wake-rem-nrem", "Wake–REM–NREM"}, {"nrem-mix", "NREM memory mix"},
}

// ConditionOrder returns the rank of a condition in the report's columns
// (the paper's order: PAD, w/o memory mix, w/o REM, w/o NREM, Wake only,
// then the appendix variants) and its display name. Unknown conditions
// rank after all known ones and keep their name.
func ConditionOrder(cond string) (rank int, name string) {
	for i, c := range conditionOrder {
		if c.id == cond {
			return i, c.name
		}
	}
	return len(conditionOrder), cond
}

// DatasetOrder returns the rank of a dataset in the report's rows and its
// display name; unknown datasets rank last and keep their name.
func DatasetOrder(ds string) (rank int, name string) {
	for i, d := range datasetOrder {
		if d.id == ds {
			return i, d.name
		}
	}
	return len(datasetOrder), ds
}

// probeSeries returns the probe test accuracy of every probed epoch of a
// run: TestAcc (TestAccAll where a record has only that), the last record
// of an epoch winning when a resumed run probed it twice.
func probeSeries(recs []metrics.Record) (byEpoch map[int]float64) {
	byEpoch = map[int]float64{}
	for _, r := range recs {
		if r.Kind != metrics.KindProbe {
			continue
		}
		v := r.TestAcc
		if v == nil {
			v = r.TestAccAll
		}
		if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
			continue
		}
		byEpoch[r.Epoch] = *v
	}
	return byEpoch
}

// meanSEM returns the mean and the standard error (sample standard
// deviation over √n; 0 for one value).
func meanSEM(v []float64) (mean, sem float64) {
	n := float64(len(v))
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= n
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss/(n-1)) / math.Sqrt(n)
}

// Report groups runs by (dataset, condition) across seeds and summarises
// each group's final-epoch probe test accuracy (the reference's
// batch-averaged TestAcc). Runs without probe records are listed in
// Skipped; two runs with the same dataset, condition and seed are an error.
func Report(runs []RunSummary) (*ReportResult, error) {
	if len(runs) == 0 {
		return nil, errors.New("report: no runs")
	}
	type key struct{ ds, cond string }
	type runData struct {
		seed    int
		byEpoch map[int]float64
	}
	groups := map[key][]runData{}
	seen := map[string]string{}
	res := &ReportResult{}
	for _, r := range runs {
		id := fmt.Sprintf("%s\x00%s\x00%d", r.Dataset, r.Condition, r.Seed)
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("report: runs %q and %q are both %s/%s seed %d", prev, r.Name, r.Dataset, r.Condition, r.Seed)
		}
		seen[id] = r.Name
		if r.Dataset == "" || r.Condition == "" {
			return nil, fmt.Errorf("report: run %q has no dataset or condition", r.Name)
		}
		series := probeSeries(r.Records)
		if len(series) == 0 {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: no probe results", r.Name))
			continue
		}
		k := key{r.Dataset, r.Condition}
		groups[k] = append(groups[k], runData{r.Seed, series})
	}
	for k, rs := range groups {
		sort.Slice(rs, func(a, b int) bool { return rs[a].seed < rs[b].seed })
		g := GroupSummary{Dataset: k.ds, Condition: k.cond, N: len(rs)}
		epochSet := map[int][]float64{}
		for _, r := range rs {
			last := math.MinInt
			for e, v := range r.byEpoch {
				last = max(last, e)
				epochSet[e] = append(epochSet[e], v)
			}
			g.Seeds = append(g.Seeds, r.seed)
			g.Epochs = append(g.Epochs, last)
			g.Values = append(g.Values, r.byEpoch[last])
		}
		g.Mean, g.SEM = meanSEM(g.Values)
		epochs := make([]int, 0, len(epochSet))
		for e := range epochSet {
			epochs = append(epochs, e)
		}
		sort.Ints(epochs)
		g.Curve.Label = conditionName(k.cond)
		for _, e := range epochs {
			m, s := meanSEM(epochSet[e])
			g.Curve.X = append(g.Curve.X, float64(e))
			g.Curve.Y = append(g.Curve.Y, m)
			g.Curve.SEM = append(g.Curve.SEM, s)
			g.CurveN = append(g.CurveN, len(epochSet[e]))
		}
		res.Groups = append(res.Groups, g)
	}
	sort.Slice(res.Groups, func(a, b int) bool {
		ga, gb := res.Groups[a], res.Groups[b]
		da, _ := DatasetOrder(ga.Dataset)
		db, _ := DatasetOrder(gb.Dataset)
		if da != db {
			return da < db
		}
		if ga.Dataset != gb.Dataset {
			return ga.Dataset < gb.Dataset
		}
		ca, _ := ConditionOrder(ga.Condition)
		cb, _ := ConditionOrder(gb.Condition)
		if ca != cb {
			return ca < cb
		}
		return ga.Condition < gb.Condition
	})
	if len(res.Groups) == 0 {
		return res, errors.New("report: no run has probe results")
	}
	return res, nil
}

func conditionName(c string) string { _, n := ConditionOrder(c); return n }
func datasetName(d string) string   { _, n := DatasetOrder(d); return n }

// mixedEpochs reports whether the group's runs ended at different epochs.
func (g GroupSummary) mixedEpochs() bool {
	for _, e := range g.Epochs {
		if e != g.Epochs[0] {
			return true
		}
	}
	return false
}

// Cell formats the group as in the paper's table: "58.25 ± 0.70 (n=4)",
// with "—" for the SEM of a single run.
func (g GroupSummary) Cell() string {
	sem := "—"
	if g.N > 1 {
		sem = fmt.Sprintf("%.2f", g.SEM)
	}
	return fmt.Sprintf("%.2f ± %s (n=%d)", g.Mean, sem, g.N)
}

// Markdown returns the table of the paper's Appendix 1—table 1 form: one
// row per dataset, one column per condition (paper order, then the
// others), cells "mean ± SEM (n=…)", "—" where a dataset lacks a condition.
// A "†" marks a group whose runs ended at different epochs.
func (r *ReportResult) Markdown() string {
	var conds []string
	var datasets []string
	cell := map[[2]string]GroupSummary{}
	for _, g := range r.Groups {
		if !contains(datasets, g.Dataset) {
			datasets = append(datasets, g.Dataset)
		}
		if !contains(conds, g.Condition) {
			conds = append(conds, g.Condition)
		}
		cell[[2]string{g.Dataset, g.Condition}] = g
	}
	sort.SliceStable(conds, func(a, b int) bool {
		ra, _ := ConditionOrder(conds[a])
		rb, _ := ConditionOrder(conds[b])
		if ra != rb {
			return ra < rb
		}
		return conds[a] < conds[b]
	})
	var b strings.Builder
	b.WriteString("Linear-probe test accuracy (%) at each run's last probed epoch, mean ± SEM over seeds.\n\n")
	b.WriteString("| dataset |")
	for _, c := range conds {
		b.WriteString(" " + conditionName(c) + " |")
	}
	b.WriteString("\n|---|")
	for range conds {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	mixed := false
	for _, d := range datasets {
		b.WriteString("| " + datasetName(d) + " |")
		for _, c := range conds {
			g, ok := cell[[2]string{d, c}]
			if !ok {
				b.WriteString(" — |")
				continue
			}
			s := g.Cell()
			if g.mixedEpochs() {
				s += " †"
				mixed = true
			}
			b.WriteString(" " + s + " |")
		}
		b.WriteString("\n")
	}
	if mixed {
		b.WriteString("\n† the runs of this cell ended at different epochs.\n")
	}
	if len(r.Skipped) > 0 {
		b.WriteString("\nSkipped: " + strings.Join(r.Skipped, "; ") + "\n")
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CSV returns one line per group (long format) with the header
// dataset,condition,n,mean,sem,seeds,epochs,values; the last three are
// ';'-separated per-run lists in seed order, and sem is empty for n = 1.
func (r *ReportResult) CSV() string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	_ = w.Write([]string{"dataset", "condition", "n", "mean", "sem", "seeds", "epochs", "values"})
	for _, g := range r.Groups {
		sem := ""
		if g.N > 1 {
			sem = f(g.SEM)
		}
		seeds := make([]string, len(g.Seeds))
		epochs := make([]string, len(g.Epochs))
		values := make([]string, len(g.Values))
		for i := range g.Seeds {
			seeds[i] = strconv.Itoa(g.Seeds[i])
			epochs[i] = strconv.Itoa(g.Epochs[i])
			values[i] = f(g.Values[i])
		}
		_ = w.Write([]string{g.Dataset, g.Condition, strconv.Itoa(g.N), f(g.Mean), sem,
			strings.Join(seeds, ";"), strings.Join(epochs, ";"), strings.Join(values, ";")})
	}
	w.Flush()
	return buf.String()
}

// PlotCurves writes one figure per dataset into dir,
// accuracy-<dataset>.png, with the accuracy-against-epoch curve of every
// condition (mean over seeds, shaded ± SEM), and returns the paths.
func (r *ReportResult) PlotCurves(dir string) ([]string, error) {
	var paths []string
	var datasets []string
	for _, g := range r.Groups {
		if !contains(datasets, g.Dataset) {
			datasets = append(datasets, g.Dataset)
		}
	}
	for _, d := range datasets {
		var curves []Curve
		for _, g := range r.Groups {
			if g.Dataset != d {
				continue
			}
			c := g.Curve
			c.Label = fmt.Sprintf("%s (n=%d)", conditionName(g.Condition), g.N)
			if g.N < 2 {
				c.SEM = nil
			}
			curves = append(curves, c)
		}
		path := filepath.Join(dir, "accuracy-"+safeFileName(d)+".png")
		title := fmt.Sprintf("%s: linear probe test accuracy (mean ± SEM over seeds)", datasetName(d))
		if err := PlotAccuracy(path, curves, PlotLabels{Title: title}); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// safeFileName replaces the characters of s that do not belong in a file
// name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}
