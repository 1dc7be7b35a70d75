package sweep

import (
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/eval"
)

func paperSpec() Spec {
	return Spec{Datasets: []string{"cifar10", "svhn"}, Conditions: PaperConditions(), Seeds: 4, SeedStart: 1,
		Sets: []string{"train.epochs=50", "eval.every=1"}}
}

// The index order is the documented formula, every index maps to one run
// and back, and every name is what pad report parses.
func TestIndexOrder(t *testing.T) {
	s := Spec{Datasets: []string{"cifar10", "svhn"}, Conditions: []string{"pad", "no-rem"}, Seeds: 2, SeedStart: 1}
	want := []string{"cifar10-pad-s1", "cifar10-pad-s2", "cifar10-no-rem-s1", "cifar10-no-rem-s2",
		"svhn-pad-s1", "svhn-pad-s2", "svhn-no-rem-s1", "svhn-no-rem-s2"}
	runs := s.Runs()
	if len(runs) != len(want) || s.Len() != len(want) {
		t.Fatalf("%d runs (Len %d), want %d", len(runs), s.Len(), len(want))
	}
	for i, r := range runs {
		if r.Index != i || r.Name() != want[i] {
			t.Errorf("run %d = %d %s, want %s", i, r.Index, r.Name(), want[i])
		}
	}

	p := paperSpec()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < p.Len(); i++ {
		r, err := p.Run(i)
		if err != nil {
			t.Fatal(err)
		}
		d, c := slices.Index(p.Datasets, r.Dataset), slices.Index(p.Conditions, r.Condition)
		if got := (d*len(p.Conditions)+c)*p.Seeds + int(r.Seed-p.SeedStart); got != i || r.Index != i {
			t.Errorf("run %d (%s): formula gives %d", i, r.Name(), got)
		}
		if r != p.Runs()[i] {
			t.Errorf("Run(%d) = %+v, Runs()[%d] = %+v", i, r, i, p.Runs()[i])
		}
		ds, cond, seed, ok := eval.ParseRunName(r.Name())
		if !ok || ds != r.Dataset || cond != r.Condition || uint64(seed) != r.Seed {
			t.Errorf("ParseRunName(%s) = %s %s %d %v", r.Name(), ds, cond, seed, ok)
		}
		if seen[r.Name()] {
			t.Errorf("%s appears twice", r.Name())
		}
		seen[r.Name()] = true
	}
	if len(seen) != 40 {
		t.Errorf("the paper's sweep has %d runs, want 40", len(seen))
	}
	for _, i := range []int{-1, 40} {
		if _, err := p.Run(i); err == nil || !strings.Contains(err.Error(), "0..39") {
			t.Errorf("Run(%d): error %v, want one naming the range 0..39", i, err)
		}
	}
}

func TestPaperConditions(t *testing.T) {
	if got := configs.Conditions()[:5]; !slices.Equal(got, PaperConditions()) {
		t.Errorf("configs.Conditions() starts with %v, PaperConditions() = %v", got, PaperConditions())
	}
	got := ExpandConditions([]string{"paper", "nrem-mix"})
	if !slices.Equal(got, append(PaperConditions(), "nrem-mix")) {
		t.Errorf("ExpandConditions = %v", got)
	}
	if got := ExpandConditions([]string{"all"}); !slices.Equal(got, configs.Conditions()) {
		t.Errorf("all = %v", got)
	}
	if got := SplitList(" a, ,b ,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SplitList = %q", got)
	}
}

// Each run's config is the dataset's built-in config with the run's
// condition and seed and the sweep's overrides.
func TestConfig(t *testing.T) {
	s := paperSpec()
	s.DataDir = "/data"
	r, _ := s.Run(27) // svhn, no-memory-mix, seed 4
	cfg, err := s.Config(r)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "svhn-no-memory-mix-s4" || cfg.Data.Dataset != "svhn" || cfg.Train.Condition != "no-memory-mix" ||
		cfg.Seed != 4 || cfg.Train.Epochs != 50 || cfg.Eval.Every != 1 || cfg.Data.Root != "/data/svhn" || cfg.Model.NF != 64 {
		t.Errorf("config of %s: %+v", r.Name(), cfg)
	}
	if ConfigRef("embedded") != "quickstart" || ConfigRef("cifar10") != "cifar10" || ConfigRef("folder") != "folder" {
		t.Errorf("ConfigRef: %s %s %s", ConfigRef("embedded"), ConfigRef("cifar10"), ConfigRef("folder"))
	}
	sets := s.TrainSets(r)
	if ConfigRef(r.Dataset) != "svhn" || !slices.Contains(sets, "seed=4") || !slices.Contains(sets, "data.root=/data/svhn") {
		t.Errorf("ConfigRef = %q, TrainSets = %q", ConfigRef(r.Dataset), sets)
	}
	// Args round-trips through the flags a worker parses.
	want := []string{"--datasets", "cifar10,svhn", "--conditions", "pad,no-memory-mix,no-rem,no-nrem,wake-only",
		"--seeds", "4", "--seed-start", "1", "--data", "/data", "--set", "train.epochs=50", "--set", "eval.every=1"}
	if got := s.Args(); !slices.Equal(got, want) {
		t.Errorf("Args = %q\nwant   %q", got, want)
	}
	if got := s.Describe(); got != "40 runs: cifar10, svhn × pad, no-memory-mix, no-rem, no-nrem, wake-only × seeds 1-4" {
		t.Errorf("Describe = %q", got)
	}
}

func TestValidate(t *testing.T) {
	base := Spec{Datasets: []string{"cifar10"}, Conditions: []string{"pad"}, Seeds: 1, SeedStart: 1}
	for _, c := range []struct {
		name string
		edit func(*Spec)
		want []string
	}{
		{"no datasets", func(s *Spec) { s.Datasets = nil }, []string{"--datasets", "cifar10", "svhn"}},
		{"unknown dataset", func(s *Spec) { s.Datasets = []string{"cifar100"} }, []string{`"cifar100"`, "known: embedded, mnist, fashion, cifar10, svhn, folder"}},
		{"dataset twice", func(s *Spec) { s.Datasets = []string{"svhn", "svhn"} }, []string{"twice"}},
		{"unknown condition", func(s *Spec) { s.Conditions = []string{"rem-only"} }, []string{`"rem-only"`, "pad, no-memory-mix", "paper"}},
		{"no seeds", func(s *Spec) { s.Seeds = 0 }, []string{"--seeds 0"}},
		{"seed overflow", func(s *Spec) { s.SeedStart = 1<<63 - 1; s.Seeds = 2 }, []string{"2^63-1"}},
		{"reserved seed", func(s *Spec) { s.Sets = []string{"seed=3"} }, []string{"--set seed=3", "--seeds"}},
		{"reserved condition", func(s *Spec) { s.Sets = []string{"train.condition=pad"} }, []string{"--conditions"}},
		{"reserved name", func(s *Spec) { s.Sets = []string{"name=x"} }, []string{"name"}},
		{"root for two", func(s *Spec) { s.Datasets = []string{"cifar10", "svhn"}; s.Sets = []string{"data.root=/x"} }, []string{"--data DIR"}},
		{"not key=value", func(s *Spec) { s.Sets = []string{"train.epochs"} }, []string{"key=value"}},
		{"bad value", func(s *Spec) { s.Sets = []string{"train.batch=1"} }, []string{"train.batch", "at least 2"}},
		{"unknown key", func(s *Spec) { s.Sets = []string{"train.epoch=3"} }, []string{"train.epoch"}},
	} {
		s := base
		c.edit(&s)
		err := s.Validate()
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	ok := base
	ok.Sets = []string{"data.root=/mnt/c10", "device.gpu=1"}
	if err := ok.Validate(); err != nil {
		t.Errorf("data.root for one dataset: %v", err)
	}
}
