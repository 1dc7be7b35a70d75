// Package sweep turns a study — datasets × training conditions × seeds, the
// shape of every table in the PAD paper — into runs that job engines can
// execute one by one: a Kubernetes Indexed Job, a Slurm job array, or a
// local queue that gives each GPU one run at a time.
//
// # Runs and their indices
//
// A Spec lists D datasets, C conditions and S seeds starting at SeedStart.
// Its N = D·C·S runs are numbered 0..N-1 in a fixed order: the dataset
// varies slowest, then the condition, then the seed:
//
//	i = (d·C + c)·S + k      dataset Datasets[d], condition Conditions[c],
//	                         seed SeedStart + k
//
// so --datasets cifar10,svhn --conditions pad,no-rem --seeds 2 numbers its
// runs 0 cifar10-pad-s1, 1 cifar10-pad-s2, 2 cifar10-no-rem-s1,
// 3 cifar10-no-rem-s2, 4 svhn-pad-s1, … 7 svhn-no-rem-s2. The order depends
// only on the lists as given, so the same command line always maps an index
// to the same run; that is what lets a job engine hand a worker nothing but
// its index.
//
// Each run is `pad train` with the dataset's built-in config (mnist,
// fashion, cifar10, svhn, folder; quickstart for the embedded sample), the
// run's condition and seed, and the sweep's overrides, in a run directory
// named <dataset>-<condition>-s<seed> — the name pad train derives and
// eval.ParseRunName parses, so `pad report` aggregates a finished sweep
// directly.
package sweep

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/configs"
)

// Spec is a sweep: the cross product Datasets × Conditions × seeds.
type Spec struct {
	// Datasets are data.dataset values (see configs.Datasets).
	Datasets []string
	// Conditions are train.condition values (see configs.Conditions).
	Conditions []string
	// Seeds is the number of seeds per dataset and condition.
	Seeds int
	// SeedStart is the first seed; the seeds are SeedStart..SeedStart+Seeds-1.
	SeedStart uint64
	// Sets are configuration overrides, key=value, applied to every run
	// (e.g. "train.epochs=50", "eval.every=1").
	Sets []string
	// DataDir, when set, is a directory holding one folder per dataset:
	// each run reads DataDir/<dataset> (data.root). Empty keeps the
	// config's default, data/<dataset> relative to the working directory.
	DataDir string
}

// Run is one run of a sweep.
type Run struct {
	Index     int
	Dataset   string
	Condition string
	Seed      uint64
}

// Name is the run's directory name, <dataset>-<condition>-s<seed>.
func (r Run) Name() string {
	return fmt.Sprintf("%s-%s-s%d", r.Dataset, r.Condition, r.Seed)
}

// PaperConditions returns the five conditions of the paper's main table, in
// its order: full PAD, PAD without memory mix, without REM, without NREM,
// and wake only.
func PaperConditions() []string {
	return []string{"pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only"}
}

// ExpandConditions replaces the shorthands "paper" (PaperConditions) and
// "all" (every known condition) in a condition list.
func ExpandConditions(list []string) []string {
	var out []string
	for _, c := range list {
		switch c {
		case "paper":
			out = append(out, PaperConditions()...)
		case "all":
			out = append(out, configs.Conditions()...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// SplitList splits a comma-separated flag value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// reservedKeys are the keys a sweep sets for each run itself.
var reservedKeys = map[string]string{
	"name":            "the sweep names each run <dataset>-<condition>-s<seed>",
	"seed":            "use --seeds and --seed-start",
	"data.dataset":    "use --datasets",
	"train.condition": "use --conditions",
}

// Validate checks the datasets, conditions, seeds and overrides, and that
// every run's config is valid. Its messages name the flag at fault and
// list the accepted values.
func (s Spec) Validate() error {
	if len(s.Datasets) == 0 {
		return fmt.Errorf("--datasets: name at least one dataset (known: %s)", strings.Join(configs.Datasets(), ", "))
	}
	for i, d := range s.Datasets {
		if !slices.Contains(configs.Datasets(), d) {
			return fmt.Errorf("--datasets: unknown dataset %q (known: %s)", d, strings.Join(configs.Datasets(), ", "))
		}
		if slices.Contains(s.Datasets[:i], d) {
			return fmt.Errorf("--datasets: %q is listed twice", d)
		}
	}
	if len(s.Conditions) == 0 {
		return fmt.Errorf("--conditions: name at least one condition (known: %s; \"paper\" stands for the paper's five)", strings.Join(configs.Conditions(), ", "))
	}
	for i, c := range s.Conditions {
		if _, ok := configs.ConditionWeights(c); !ok {
			return fmt.Errorf("--conditions: unknown condition %q (known: %s; \"paper\" stands for the paper's five)", c, strings.Join(configs.Conditions(), ", "))
		}
		if slices.Contains(s.Conditions[:i], c) {
			return fmt.Errorf("--conditions: %q is listed twice", c)
		}
	}
	if s.Seeds < 1 {
		return fmt.Errorf("--seeds %d: want at least 1 seed", s.Seeds)
	}
	if last := s.SeedStart + uint64(s.Seeds) - 1; last < s.SeedStart || last > 1<<63-1 {
		return fmt.Errorf("--seed-start %d with --seeds %d: the seeds must stay at most 2^63-1", s.SeedStart, s.Seeds)
	}
	if n := s.Len(); n <= 0 || n > 100000 {
		return fmt.Errorf("the sweep has %d×%d×%d runs: at most 100000 (the limit of a Kubernetes Indexed Job)", len(s.Datasets), len(s.Conditions), s.Seeds)
	}
	for _, kv := range s.Sets {
		key, _, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return fmt.Errorf("--set %q: want key=value, e.g. train.epochs=50", kv)
		}
		if why, reserved := reservedKeys[key]; reserved {
			return fmt.Errorf("--set %s: the sweep sets %s for each run (%s)", kv, key, why)
		}
		if key == "data.root" && (len(s.Datasets) > 1 || s.DataDir != "") {
			return fmt.Errorf("--set %s: one data.root cannot serve %d datasets; use --data DIR (each run reads DIR/<dataset>)", kv, len(s.Datasets))
		}
	}
	// Every dataset × condition pair: the seed changes nothing else.
	for d := range s.Datasets {
		for c := range s.Conditions {
			r := s.runAt(d, c, 0)
			if _, err := s.Config(r); err != nil {
				return fmt.Errorf("run %s: %w", r.Name(), err)
			}
		}
	}
	return nil
}

// Len is the number of runs.
func (s Spec) Len() int { return len(s.Datasets) * len(s.Conditions) * s.Seeds }

func (s Spec) runAt(d, c, k int) Run {
	return Run{
		Index:     (d*len(s.Conditions)+c)*s.Seeds + k,
		Dataset:   s.Datasets[d],
		Condition: s.Conditions[c],
		Seed:      s.SeedStart + uint64(k),
	}
}

// Run returns the run with index i (see the package documentation for the
// order).
func (s Spec) Run(i int) (Run, error) {
	n := s.Len()
	if i < 0 || i >= n {
		if n == 0 {
			return Run{}, fmt.Errorf("index %d: the sweep has no runs", i)
		}
		return Run{}, fmt.Errorf("index %d is out of range: the sweep has %d runs, 0..%d", i, n, n-1)
	}
	k := i % s.Seeds
	c := i / s.Seeds % len(s.Conditions)
	d := i / s.Seeds / len(s.Conditions)
	return s.runAt(d, c, k), nil
}

// Runs returns every run, in index order.
func (s Spec) Runs() []Run {
	runs := make([]Run, 0, s.Len())
	for d := range s.Datasets {
		for c := range s.Conditions {
			for k := 0; k < s.Seeds; k++ {
				runs = append(runs, s.runAt(d, c, k))
			}
		}
	}
	return runs
}

// ConfigRef returns the built-in config a dataset's runs start from: the
// dataset's own (mnist, fashion, cifar10, svhn, folder), or quickstart for
// the embedded sample.
func ConfigRef(dataset string) string {
	if slices.Contains(configs.Files(), dataset+".toml") {
		return dataset
	}
	return "quickstart"
}

// TrainSets returns the overrides that turn ConfigRef(r.Dataset) into the
// run's config, in the order they are applied: the run's name, dataset,
// condition and seed, data.root (with DataDir), then the sweep's Sets.
func (s Spec) TrainSets(r Run) []string {
	sets := []string{
		"name=" + r.Name(),
		"data.dataset=" + r.Dataset,
		"train.condition=" + r.Condition,
		"seed=" + strconv.FormatUint(r.Seed, 10),
	}
	if s.DataDir != "" && r.Dataset != "embedded" {
		sets = append(sets, "data.root="+path.Join(s.DataDir, r.Dataset))
	}
	return append(sets, s.Sets...)
}

// Config returns run r's validated config: ConfigRef(r.Dataset) with
// TrainSets(r) applied, which is also what `pad train --config
// ConfigRef(r.Dataset)` with one --set per override builds.
func (s Spec) Config(r Run) (configs.Config, error) {
	cfg, err := configs.Open(ConfigRef(r.Dataset))
	if err != nil {
		return cfg, err
	}
	for _, kv := range s.TrainSets(r) {
		if err := cfg.Set(kv); err != nil {
			return cfg, fmt.Errorf("--set %s: %w", kv, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Name != r.Name() {
		return cfg, errors.New("internal error: run name mismatch")
	}
	return cfg, nil
}

// Args returns the sweep flags that reproduce s, for a worker's command
// line: --datasets, --conditions, --seeds, --seed-start, --data and one
// --set per override.
func (s Spec) Args() []string {
	args := []string{
		"--datasets", strings.Join(s.Datasets, ","),
		"--conditions", strings.Join(s.Conditions, ","),
		"--seeds", strconv.Itoa(s.Seeds),
		"--seed-start", strconv.FormatUint(s.SeedStart, 10),
	}
	if s.DataDir != "" {
		args = append(args, "--data", s.DataDir)
	}
	for _, kv := range s.Sets {
		args = append(args, "--set", kv)
	}
	return args
}

// Describe summarises the sweep in one line, e.g. "40 runs: cifar10, svhn ×
// pad, no-rem × seeds 1-4".
func (s Spec) Describe() string {
	seeds := fmt.Sprintf("seed %d", s.SeedStart)
	if s.Seeds > 1 {
		seeds = fmt.Sprintf("seeds %d-%d", s.SeedStart, s.SeedStart+uint64(s.Seeds)-1)
	}
	plural := "s"
	if s.Len() == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d run%s: %s × %s × %s", s.Len(), plural,
		strings.Join(s.Datasets, ", "), strings.Join(s.Conditions, ", "), seeds)
}
