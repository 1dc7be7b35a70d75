package eval

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/configs"
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

// conventionalName parses a name of the form <dataset>-<condition>-s<seed>
// (see ParseRunName) whose dataset is one pad knows: the names pad train
// and pad sweep give. "backup-of-s2" is not one.
func conventionalName(name string) (dataset, condition string, seed int, ok bool) {
	dataset, condition, seed, ok = ParseRunName(name)
	if !ok || !slices.Contains(configs.Datasets(), dataset) {
		return "", "", 0, false
	}
	return dataset, condition, seed, true
}

// RunSummary is one run as the report sees it: what it is, read from its
// config.toml, and its metrics records.
type RunSummary struct {
	// Name is the run directory's name (the last element of Dir).
	Name string
	// Dir is the run directory.
	Dir string
	// Config is the run's config.toml; nil when the run has none, or none
	// that reads (see Problem).
	Config *configs.Config
	// Problem says why the run cannot be reported (no config.toml, one
	// that does not read); "" when it can.
	Problem string
	// Dataset, Condition and Seed identify the run: from Config, or, for a
	// run without one, from a Name of the form <dataset>-<condition>-s<seed>
	// (empty otherwise).
	Dataset   string
	Condition string
	Seed      uint64
	// Records are the run's metrics (metrics.ReadFile of its
	// metrics.jsonl); only the probe records are used.
	Records []metrics.Record
}

// NewRunSummary describes the run in dir with its config (nil: the run has
// no config.toml) and its metrics records.
func NewRunSummary(dir string, cfg *configs.Config, records []metrics.Record) RunSummary {
	r := RunSummary{Name: filepath.Base(filepath.Clean(dir)), Dir: dir, Config: cfg, Records: records}
	if cfg == nil {
		r.Problem = "no config.toml"
		if ds, cond, seed, ok := ParseRunName(r.Name); ok {
			r.Dataset, r.Condition, r.Seed = ds, cond, uint64(seed)
		}
		return r
	}
	r.Dataset, r.Condition, r.Seed = cfg.Data.Dataset, cfg.Train.Condition, cfg.Seed
	return r
}

// LoadRun reads <dir>/metrics.jsonl and <dir>/config.toml. skipped is the
// number of incomplete trailing lines ignored (see metrics.ReadFile). A
// metrics.jsonl that does not read is an error; a run without one has no
// records. A config.toml that is missing or does not read is the run's
// Problem: the report lists such a run as skipped.
func LoadRun(dir string) (run RunSummary, skipped int, err error) {
	var recs []metrics.Record
	path := filepath.Join(dir, metrics.FileName)
	if _, statErr := os.Stat(path); statErr == nil {
		if recs, skipped, err = metrics.ReadFile(path); err != nil {
			return RunSummary{}, 0, fmt.Errorf("report: %w", err)
		}
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if _, statErr := os.Stat(cfgPath); statErr != nil {
		return NewRunSummary(dir, nil, recs), skipped, nil
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		run = NewRunSummary(dir, nil, recs)
		run.Problem = err.Error()
		return run, skipped, nil
	}
	return NewRunSummary(dir, &cfg, recs), skipped, nil
}

// GroupSummary aggregates the runs of one dataset, condition and settings
// over seeds.
type GroupSummary struct {
	// Dataset and Condition identify the group, with Settings.
	Dataset   string
	Condition string
	// Settings are the group's values of the keys that make runs
	// comparable (see ComparableSettings), in declaration order.
	Settings []configs.Setting
	// Differs lists the settings in which this group's runs differ from
	// other groups of its dataset: what the table's row says. Empty when
	// all the dataset's groups share their settings.
	Differs []configs.Setting
	// Runs are the names of the group's runs, in seed order.
	Runs []string
	// N is the number of runs with a probe result.
	N int
	// Mean is the mean over runs of the final probe test accuracy (%).
	Mean float64
	// SEM is the standard error of Mean: the sample standard deviation
	// (n−1 denominator) over √n; 0 when N is 1.
	SEM float64
	// Seeds, Epochs and Values give, run by run in seed order, the seed,
	// the epoch of the final probe and its test accuracy.
	Seeds  []uint64
	Epochs []int
	Values []float64
	// Curve is the mean test accuracy against the epoch, with its SEM over
	// the runs probed at that epoch; CurveN counts those runs.
	Curve  Curve
	CurveN []int
}

// Skip is a run the report leaves out, and why.
type Skip struct {
	Name, Reason string
}

func (s Skip) String() string { return s.Name + ": " + s.Reason }

// ReportResult is the outcome of Report.
type ReportResult struct {
	// Groups in table order: datasets, then settings, then conditions in
	// the paper's order (see ConditionOrder).
	Groups []GroupSummary
	// Skipped lists the runs left out and why, in name order: no config,
	// no probe records, the same settings and seed as another run.
	Skipped []Skip
	// Warnings are about runs that are reported: a name of the form
	// <dataset>-<condition>-s<seed> that disagrees with the run's config.
	Warnings []string
}

// comparableExcluded reports whether a key is left out of the settings
// that make runs comparable: the run's identity (name; dataset, condition
// and seed, which the report groups and averages by), where the data
// lives (but for an image folder, where it is what the data is), output
// and probing schedules, the occlusion sweep (not in the table) and the
// device.
func comparableExcluded(key string, cfg configs.Config) bool {
	switch key {
	case "name", "seed", "data.dataset", "train.condition",
		"train.log_every", "train.checkpoint_every", "train.sample_every",
		"eval.every", "eval.occlusion_tile":
		return true
	case "data.root", "data.test_fraction":
		return cfg.Data.Dataset != "folder"
	}
	return strings.HasPrefix(key, "device.")
}

// ComparableSettings returns the settings of cfg that decide what its
// probe accuracy measures besides its dataset, condition and seed: the
// data limits, the model, the optimisation, the epochs, the probe. Two
// runs are averaged together only when these are equal. A loss weight or
// the wake noise is listed only where it overrides the condition's value.
func ComparableSettings(cfg configs.Config) []configs.Setting {
	plain := cfg
	plain.Train.WakeWeight, plain.Train.NREMWeight, plain.Train.REMWeight, plain.Train.WakeNoise = nil, nil, nil, nil
	all, base := cfg.Resolved().Settings(), plain.Resolved().Settings()
	var out []configs.Setting
	for i, s := range all {
		if comparableExcluded(s.Key, cfg) {
			continue
		}
		switch s.Key {
		case "train.wake_weight", "train.nrem_weight", "train.rem_weight", "train.wake_noise":
			if s.Value == base[i].Value {
				continue
			}
		}
		out = append(out, s)
	}
	return out
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

// Report groups runs by what they are, read from their configs — dataset,
// condition and the settings that make runs comparable (see
// ComparableSettings) — and summarises each group's final-epoch probe test
// accuracy over seeds (the reference's batch-averaged TestAcc). No run
// makes it fail: runs with a Problem (no config), without probe records,
// or with the settings and seed of another run (kept: the one whose name
// follows <dataset>-<condition>-s<seed>, else the first by name) are
// listed in Skipped. Its error says there is nothing to report: no runs,
// or none that could be grouped (the result then lists why).
func Report(runs []RunSummary) (*ReportResult, error) {
	if len(runs) == 0 {
		return nil, errors.New("report: no runs")
	}
	runs = slices.Clone(runs)
	// The preferred of two runs with the same settings and seed comes
	// first: a name that says what the run is, then the name.
	named := func(r RunSummary) bool {
		ds, cond, seed, ok := conventionalName(r.Name)
		return ok && ds == r.Dataset && cond == r.Condition && uint64(seed) == r.Seed
	}
	sort.SliceStable(runs, func(a, b int) bool {
		if na, nb := named(runs[a]), named(runs[b]); na != nb {
			return na
		}
		if runs[a].Name != runs[b].Name {
			return runs[a].Name < runs[b].Name
		}
		return runs[a].Dir < runs[b].Dir
	})
	type runData struct {
		name    string
		seed    uint64
		byEpoch map[int]float64
	}
	type group struct {
		ds, cond string
		settings []configs.Setting
		runs     []runData
	}
	groups := map[string]*group{}
	var order []string
	seen := map[string]string{}
	res := &ReportResult{}
	for _, r := range runs {
		if r.Problem != "" || r.Config == nil {
			reason := r.Problem
			if reason == "" {
				reason = "no config.toml"
			}
			res.Skipped = append(res.Skipped, Skip{r.Name, reason})
			continue
		}
		if ds, cond, seed, ok := conventionalName(r.Name); ok && !named(r) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: the name says dataset %s, condition %s, seed %d, but its config.toml says dataset %s, condition %s, seed %d; reported as its config says",
				r.Name, ds, cond, seed, r.Dataset, r.Condition, r.Seed))
		}
		settings := ComparableSettings(*r.Config)
		key := r.Dataset + "\x00" + r.Condition + "\x00" + settingsKey(settings)
		id := fmt.Sprintf("%s\x00%d", key, r.Seed)
		if prev, dup := seen[id]; dup {
			res.Skipped = append(res.Skipped, Skip{r.Name, fmt.Sprintf("the same settings and seed as %s, which is reported", prev)})
			continue
		}
		series := probeSeries(r.Records)
		if len(series) == 0 {
			reason := "no probe results in " + metrics.FileName
			if r.Config.Eval.Every == 0 {
				reason += " (eval.every = 0; pad eval linear does not add them)"
			}
			res.Skipped = append(res.Skipped, Skip{r.Name, reason})
			continue
		}
		seen[id] = r.Name
		g := groups[key]
		if g == nil {
			g = &group{ds: r.Dataset, cond: r.Condition, settings: settings}
			groups[key] = g
			order = append(order, key)
		}
		g.runs = append(g.runs, runData{r.Name, r.Seed, series})
	}
	sort.SliceStable(res.Skipped, func(a, b int) bool { return res.Skipped[a].Name < res.Skipped[b].Name })
	for _, k := range order {
		gr := groups[k]
		rs := gr.runs
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].seed < rs[b].seed })
		g := GroupSummary{Dataset: gr.ds, Condition: gr.cond, Settings: gr.settings, N: len(rs)}
		epochSet := map[int][]float64{}
		for _, r := range rs {
			last := math.MinInt
			for e, v := range r.byEpoch {
				last = max(last, e)
				epochSet[e] = append(epochSet[e], v)
			}
			g.Runs = append(g.Runs, r.name)
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
		for _, e := range epochs {
			m, s := meanSEM(epochSet[e])
			g.Curve.X = append(g.Curve.X, float64(e))
			g.Curve.Y = append(g.Curve.Y, m)
			g.Curve.SEM = append(g.Curve.SEM, s)
			g.CurveN = append(g.CurveN, len(epochSet[e]))
		}
		res.Groups = append(res.Groups, g)
	}
	markDifferences(res.Groups)
	sort.SliceStable(res.Groups, func(a, b int) bool {
		ga, gb := res.Groups[a], res.Groups[b]
		da, _ := DatasetOrder(ga.Dataset)
		db, _ := DatasetOrder(gb.Dataset)
		if da != db {
			return da < db
		}
		if ga.Dataset != gb.Dataset {
			return ga.Dataset < gb.Dataset
		}
		if la, lb := ga.RowLabel(), gb.RowLabel(); la != lb {
			return la < lb
		}
		ca, _ := ConditionOrder(ga.Condition)
		cb, _ := ConditionOrder(gb.Condition)
		if ca != cb {
			return ca < cb
		}
		return ga.Condition < gb.Condition
	})
	for i := range res.Groups {
		res.Groups[i].Curve.Label = res.Groups[i].curveLabel()
	}
	if len(res.Groups) == 0 {
		why := make([]string, len(res.Skipped))
		for i, sk := range res.Skipped {
			why[i] = sk.String()
		}
		return res, fmt.Errorf("report: no run has a config and probe results (%s)", strings.Join(why, "; "))
	}
	return res, nil
}

// settingsKey joins settings into one comparable string.
func settingsKey(settings []configs.Setting) string {
	parts := make([]string, len(settings))
	for i, s := range settings {
		parts[i] = s.String()
	}
	return strings.Join(parts, "\x00")
}

// markDifferences sets each group's Differs: the settings whose values are
// not the same in all the groups of its dataset. A weight a group does not
// override is not listed for it (it is its condition's).
func markDifferences(groups []GroupSummary) {
	byDataset := map[string][]int{}
	for i, g := range groups {
		byDataset[g.Dataset] = append(byDataset[g.Dataset], i)
	}
	for _, idx := range byDataset {
		// A key differs when it takes two values, or when some groups lack
		// it (a weight that only some groups override).
		values := map[string]map[string]bool{} // key → the values it takes
		have := map[string]int{}               // key → the groups that have it
		for _, i := range idx {
			for _, s := range groups[i].Settings {
				if values[s.Key] == nil {
					values[s.Key] = map[string]bool{}
				}
				values[s.Key][s.Value] = true
				have[s.Key]++
			}
		}
		for _, i := range idx {
			groups[i].Differs = nil
			for _, s := range groups[i].Settings {
				if len(values[s.Key]) > 1 || have[s.Key] < len(idx) {
					groups[i].Differs = append(groups[i].Differs, s)
				}
			}
		}
	}
}

// RowLabel returns the group's settings that differ from other groups of
// its dataset, "model.nf=32, train.epochs=3", or "".
func (g GroupSummary) RowLabel() string {
	parts := make([]string, len(g.Differs))
	for i, s := range g.Differs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// rowName is the table's row of the group: the dataset's display name,
// with what differs in parentheses.
func (g GroupSummary) rowName() string {
	if l := g.RowLabel(); l != "" {
		return datasetName(g.Dataset) + " (" + l + ")"
	}
	return datasetName(g.Dataset)
}

// curveLabel is the group's label in the accuracy plots.
func (g GroupSummary) curveLabel() string {
	if l := g.RowLabel(); l != "" {
		return conditionName(g.Condition) + ", " + l
	}
	return conditionName(g.Condition)
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
// row per dataset and settings (the settings that differ between the
// dataset's rows in parentheses), one column per condition (paper order,
// then the others), cells "mean ± SEM (n=…)", "—" where a row lacks a
// condition. A "†" marks a group whose runs ended at different epochs.
// The warnings and the skipped runs with their reasons follow the table.
func (r *ReportResult) Markdown() string {
	var conds []string
	var rows []string
	cell := map[[2]string]GroupSummary{}
	for _, g := range r.Groups {
		row := g.rowName()
		if !slices.Contains(rows, row) {
			rows = append(rows, row)
		}
		if !slices.Contains(conds, g.Condition) {
			conds = append(conds, g.Condition)
		}
		cell[[2]string{row, g.Condition}] = g
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
		b.WriteString(" " + mdEscape(conditionName(c)) + " |")
	}
	b.WriteString("\n|---|")
	for range conds {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	mixed := false
	for _, row := range rows {
		b.WriteString("| " + mdEscape(row) + " |")
		for _, c := range conds {
			g, ok := cell[[2]string{row, c}]
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
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings:\n\n")
		for _, w := range r.Warnings {
			b.WriteString("- " + w + "\n")
		}
	}
	if len(r.Skipped) > 0 {
		b.WriteString("\nSkipped:\n\n")
		for _, s := range r.Skipped {
			b.WriteString("- " + s.String() + "\n")
		}
	}
	return b.String()
}

// mdEscape keeps a table cell's text from closing the cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// CSV returns one line per group (long format) with the header
// dataset,condition,n,mean,sem,seeds,epochs,values,settings,runs; seeds,
// epochs, values and runs are ';'-separated per-run lists in seed order,
// settings is the group's RowLabel, and sem is empty for n = 1.
func (r *ReportResult) CSV() string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	_ = w.Write([]string{"dataset", "condition", "n", "mean", "sem", "seeds", "epochs", "values", "settings", "runs"})
	for _, g := range r.Groups {
		sem := ""
		if g.N > 1 {
			sem = f(g.SEM)
		}
		seeds := make([]string, len(g.Seeds))
		epochs := make([]string, len(g.Epochs))
		values := make([]string, len(g.Values))
		for i := range g.Seeds {
			seeds[i] = strconv.FormatUint(g.Seeds[i], 10)
			epochs[i] = strconv.Itoa(g.Epochs[i])
			values[i] = f(g.Values[i])
		}
		_ = w.Write([]string{g.Dataset, g.Condition, strconv.Itoa(g.N), f(g.Mean), sem,
			strings.Join(seeds, ";"), strings.Join(epochs, ";"), strings.Join(values, ";"),
			g.RowLabel(), strings.Join(g.Runs, ";")})
	}
	w.Flush()
	return buf.String()
}

// PlotCurves writes one figure per dataset into dir,
// accuracy-<dataset>.png, with the accuracy-against-epoch curve of every
// group (mean over seeds, shaded ± SEM), and returns the paths.
func (r *ReportResult) PlotCurves(dir string) ([]string, error) {
	var paths []string
	var datasets []string
	for _, g := range r.Groups {
		if !slices.Contains(datasets, g.Dataset) {
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
			c.Label = fmt.Sprintf("%s (n=%d)", g.curveLabel(), g.N)
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
