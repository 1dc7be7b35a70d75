package configs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/dataset"
)

func TestDefaultValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if err := c.Resolved().Validate(); err != nil {
		t.Fatalf("Default().Resolved().Validate() = %v", err)
	}
}

// TestSchemaTags checks that every field has a snake_case toml tag, so the
// TOML keys never fall back to Go names.
func TestSchemaTags(t *testing.T) {
	for _, e := range schema() {
		last := lastPart(e.key)
		if last != strings.ToLower(last) || strings.ContainsAny(last, " -") {
			t.Errorf("key %q is not snake_case", e.key)
		}
	}
	want := []string{"name", "seed", "data", "model", "train", "eval", "device"}
	var top []string
	for _, e := range schema() {
		if !strings.Contains(e.key, ".") {
			top = append(top, e.key)
		}
	}
	if !slices.Equal(top, want) {
		t.Errorf("top-level keys %v, want %v", top, want)
	}
}

func TestBuiltinFiles(t *testing.T) {
	datasets := []string{"mnist", "fashion", "cifar10", "svhn", "folder"}
	want := append([]string{"quickstart"}, datasets...)
	want = append(want, Conditions()...)
	files := Files()
	for _, name := range want {
		if !slices.Contains(files, name+".toml") {
			t.Errorf("no built-in %s.toml; have %v", name, files)
		}
	}
	onDisk, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onDisk, files) {
		t.Errorf("Files() = %v, directory has %v", files, onDisk)
	}

	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := Builtin(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), "# ") {
				t.Errorf("%s does not start with a comment saying what it is for", file)
			}
			c, err := Parse(data, file)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			name := strings.TrimSuffix(file, ".toml")
			switch {
			case name == "quickstart":
				if c.Data.Dataset != "embedded" || c.Device.Kind != "cpu" || c.Model.NF > 32 || c.Eval.Every != 1 {
					t.Errorf("quickstart: %+v", c)
				}
			case slices.Contains(datasets, name):
				paper(t, c)
				if c.Data.TestFraction != dataset.DefaultTestFraction {
					t.Errorf("data.test_fraction = %v, not dataset.DefaultTestFraction = %v (what Load holds out)", c.Data.TestFraction, dataset.DefaultTestFraction)
				}
				if c.Data.Dataset != name || c.Train.Condition != "pad" {
					t.Errorf("dataset %q condition %q", c.Data.Dataset, c.Train.Condition)
				}
			case slices.Contains(Conditions(), name):
				paper(t, c)
				if c.Data.Dataset != "cifar10" || c.Train.Condition != name {
					t.Errorf("dataset %q condition %q", c.Data.Dataset, c.Train.Condition)
				}
			default:
				t.Errorf("no expectations for %s; add them to this test", file)
			}
		})
	}
}

// paper checks the paper's settings.
func paper(t *testing.T, c Config) {
	t.Helper()
	if c.Model.NF != 64 || c.Model.NZ != 256 || c.Train.Batch != 64 || c.Train.Epochs != 50 ||
		c.Train.LRE != 2e-4 || c.Train.LRG != 2e-4 || c.Train.Beta1 != 0.5 || c.Train.Beta2 != 0.999 ||
		c.Train.Lambda != 0.5 || c.Train.MaxTile != 8 || c.Train.OcclusionPerImage ||
		c.Eval.Every != 1 || c.Eval.ProbeEpochs != 20 || c.Eval.ProbeLR != 0.2 || c.Eval.ProbeBatch != 64 {
		t.Errorf("not the paper's settings: %+v", c)
	}
	if c.Train.WakeWeight != nil || c.Train.NREMWeight != nil || c.Train.REMWeight != nil || c.Train.WakeNoise != nil {
		t.Errorf("a paper config overrides its condition's weights")
	}
}

func TestBuiltinAndOpen(t *testing.T) {
	a, err := Builtin("quickstart")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Builtin("quickstart.toml")
	if err != nil || string(a) != string(b) {
		t.Fatalf("Builtin(quickstart.toml) differs or fails: %v", err)
	}
	for _, bad := range []string{"nope", "../configs/quickstart", "", ".", "/quickstart"} {
		if _, err := Builtin(bad); err == nil || !strings.Contains(err.Error(), "quickstart") {
			t.Errorf("Builtin(%q) = %v, want an error listing the built-in names", bad, err)
		}
	}
	if _, err := Builtin("quickstrat"); err == nil || !strings.Contains(err.Error(), `did you mean "quickstart"`) {
		t.Errorf("Builtin(quickstrat) = %v, want a suggestion", err)
	}

	for _, ref := range []string{"quickstart", "quickstart.toml", "configs/quickstart.toml"} {
		c, err := Open(ref)
		if err != nil || c.Model.NF != 32 {
			t.Errorf("Open(%q) = nf %d, %v", ref, c.Model.NF, err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "quickstart") // a file wins over the built-in of the same name
	if err := os.WriteFile(path, []byte("[model]\nnf = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil || c.Model.NF != 3 {
		t.Errorf("Open(file) = nf %d, %v", c.Model.NF, err)
	}
	if _, err := Open(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("Open(missing) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#\n", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) = %v", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[train]\nepoch = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+`:2: unknown key "train.epoch"`) {
		t.Errorf("Load(bad) = %v", err)
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("seed = 7\n[train]\nepochs = 3\nlr_e = 1\nwake_weight = 0.25\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Seed = 7
	want.Train.Epochs = 3
	want.Train.LRE = 1
	want.Train.WakeWeight = ptr(0.25)
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse = %+v\nwant %+v", c, want)
	}
	empty, err := Parse(nil, "empty.toml")
	if err != nil || !reflect.DeepEqual(empty, Default()) {
		t.Errorf("Parse(empty) = %+v, %v", empty, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the error, in order
		not      []string // substrings the error must not have
	}{
		{"unknown key", "[train]\nepochs = 2\nepoch = 3\n",
			[]string{`x.toml:3: unknown key "train.epoch" (did you mean "train.epochs"?)`}, nil},
		{"key outside its table", "epochs = 3\n",
			[]string{`x.toml:1: unknown key "epochs" (did you mean "train.epochs"?)`}, nil},
		{"dotted key", "seed = 1\ntrain.lr = 1e-3\n",
			[]string{`x.toml:2: unknown key "train.lr" (did you mean "train.lr_e"?)`}, nil},
		{"unknown table", "[trian]\nepochs = 3\n",
			[]string{`x.toml:1: unknown table "trian" (did you mean "train"?)`}, []string{"trian.epochs"}},
		{"longer table name", "[training]\nepochs = 3\n",
			[]string{`unknown table "training" (did you mean "train"?)`}, nil},
		{"no suggestion", "[data]\nxyzzy = 1\n",
			[]string{`x.toml:2: unknown key "data.xyzzy"`}, []string{"did you mean"}},
		{"every unknown key, by line", "[model]\nnz = 3\nnzz = 4\n[device]\nkind = \"cpu\"\ngpus = 2\n",
			[]string{`x.toml:3: unknown key "model.nzz" (did you mean "model.nz"?)`, `x.toml:6: unknown key "device.gpus" (did you mean "device.gpu"?)`}, nil},
		{"inline table", "model = {nf = 2, nff = 3}\n",
			[]string{`x.toml:1: unknown key "model.nff" (did you mean "model.nf"?)`}, nil},
		{"quoted key", "[train]\n\"epoch s\" = 1\n",
			[]string{`x.toml:2: unknown key "train.\"epoch s\""`}, nil},
		{"key after multi-line string", "name = \"\"\"\nfoo = 1\n\"\"\"\n[train]\nfoo = 2\n",
			[]string{`x.toml:5: unknown key "train.foo"`}, nil},

		{"string for integer", "[train]\nepochs = \"ten\"\n",
			[]string{`x.toml:2: train.epochs: expected an integer, got the string "ten"`}, nil},
		{"float for integer", "[train]\nbatch = 1.5\n",
			[]string{`x.toml:2: train.batch: expected an integer, got the float 1.5`}, nil},
		{"negative seed", "seed = -1\n",
			[]string{`x.toml:1: seed: expected a non-negative integer, got the integer -1`}, nil},
		{"string for float", "[train]\nlr_e = \"fast\"\n",
			[]string{`x.toml:2: train.lr_e: expected a number, got the string "fast"`}, nil},
		{"huge integer for float", "[train]\nlr_e = 9007199254740993\n",
			[]string{`x.toml:2: train.lr_e: the integer 9007199254740993 cannot be represented exactly`}, nil},
		{"string for optional float", "[train]\nwake_weight = \"half\"\n",
			[]string{`x.toml:2: train.wake_weight: expected a number, got the string "half"`}, nil},
		{"integer for bool", "[train]\nocclusion_per_image = 1\n",
			[]string{`x.toml:2: train.occlusion_per_image: expected a boolean (true or false), got the integer 1`}, nil},
		{"integer for string", "[data]\ndataset = 3\n",
			[]string{`x.toml:2: data.dataset: expected a string, got the integer 3`}, nil},
		{"value for table", "data = \"mnist\"\n",
			[]string{`x.toml:1: data: expected a table, got the string "mnist"`}, nil},
		{"table for value", "[model.nf]\nx = 1\n",
			[]string{`x.toml:1: model.nf: expected an integer, got a table`}, []string{"model.nf.x"}},
		{"array of tables", "[[train]]\nepochs = 1\n",
			[]string{`x.toml:1: train: expected a table, got an array of tables`}, nil},
		{"array", "[device]\ngpu = [0, 1]\n",
			[]string{`x.toml:2: device.gpu: expected an integer, got an array`}, nil},
		{"date", "name = 2024-01-01\n",
			[]string{`x.toml:1: name: expected a string, got a `}, nil},
		{"long string is cut", "name = 1\n[data]\nroot = 5\ndataset = \"" + strings.Repeat("é", 100) + "\"\n",
			[]string{`x.toml:1: name: expected a string`, `x.toml:3: data.root: expected a string`}, []string{strings.Repeat("é", 30)}},
		{"type and unknown together", "[train]\nepochs = \"2\"\nepoch = 2\n",
			[]string{`x.toml:2: train.epochs: expected an integer`, `x.toml:3: unknown key "train.epoch"`}, nil},

		{"syntax error", "[train]\nepochs = \n",
			[]string{`x.toml:2: `}, nil},
		{"unclosed table", "[train\n",
			[]string{`x.toml:`, "table name"}, nil},
		{"duplicate key", "seed = 1\nseed = 2\n",
			[]string{`x.toml:2: `}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), "x.toml")
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q\nlacks (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(msg, n) {
					t.Errorf("error %q\nhas %q", msg, n)
				}
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Source != "x.toml" || ke.Line == 0 {
				t.Errorf("error is not a *KeyError with source and line: %#v", err)
			}
		})
	}
}

// TestParseErrorCount checks that all problems come back, one each.
func TestParseErrorCount(t *testing.T) {
	_, err := Parse([]byte("sed = 1\n[model]\nnf = \"a\"\nnz = \"b\"\n[device]\nkinds = 1\n"), "x.toml")
	u, ok := err.(interface{ Unwrap() []error })
	if !ok || len(u.Unwrap()) != 4 {
		t.Fatalf("want 4 joined errors, got %v", err)
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		kv    string
		check func(Config) bool
	}{
		{"train.epochs=10", func(c Config) bool { return c.Train.Epochs == 10 }},
		{" train.epochs = 0x10 ", func(c Config) bool { return c.Train.Epochs == 16 }},
		{"train.max_iters=1_000", func(c Config) bool { return c.Train.MaxIters == 1000 }},
		{"seed=3", func(c Config) bool { return c.Seed == 3 }},
		{"seed=9223372036854775807", func(c Config) bool { return c.Seed == math.MaxInt64 }},
		{"train.lr_e=2e-3", func(c Config) bool { return c.Train.LRE == 2e-3 }},
		{"train.lr_g=1", func(c Config) bool { return c.Train.LRG == 1 }},
		{"train.occlusion_per_image=true", func(c Config) bool { return c.Train.OcclusionPerImage }},
		{"train.occlusion_per_image=0", func(c Config) bool { return !c.Train.OcclusionPerImage }},
		{"data.dataset=mnist", func(c Config) bool { return c.Data.Dataset == "mnist" }},
		{"data.root=/a b/c=d", func(c Config) bool { return c.Data.Root == "/a b/c=d" }},
		{`name="run 1"`, func(c Config) bool { return c.Name == "run 1" }},
		{"name=", func(c Config) bool { return c.Name == "" }},
		{"device.kind=cpu", func(c Config) bool { return c.Device.Kind == "cpu" }},
		{"train.wake_weight=0.5", func(c Config) bool { return c.Train.WakeWeight != nil && *c.Train.WakeWeight == 0.5 }},
		{"train.wake_noise=0", func(c Config) bool { return c.Train.WakeNoise != nil && *c.Train.WakeNoise == 0 }},
		{"train.rem_weight=none", func(c Config) bool { return c.Train.REMWeight == nil }},
		{"train.nrem_weight=", func(c Config) bool { return c.Train.NREMWeight == nil }},
	}
	for _, tt := range tests {
		c := Default()
		c.Train.REMWeight = ptr(2)
		c.Train.NREMWeight = ptr(2)
		c.Name = "x"
		if err := c.Set(tt.kv); err != nil {
			t.Errorf("Set(%q) = %v", tt.kv, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("Set(%q) gave %+v", tt.kv, c)
		}
	}
}

// TestSetEveryKey sets every key once, by its kind, and reads it back by
// reflection: Set reaches every field.
func TestSetEveryKey(t *testing.T) {
	values := map[reflect.Kind]string{
		reflect.Int: "7", reflect.Uint64: "7", reflect.Float64: "0.75",
		reflect.Bool: "true", reflect.String: "seven", reflect.Pointer: "0.75",
	}
	for _, e := range schema() {
		if e.table() {
			continue
		}
		s, ok := values[e.typ.Kind()]
		if !ok {
			t.Errorf("%s: no test value for kind %s", e.key, e.typ.Kind())
			continue
		}
		c := Default()
		if err := c.Set(e.key + "=" + s); err != nil {
			t.Errorf("Set(%s=%s) = %v", e.key, s, err)
			continue
		}
		got := fmt.Sprint(reflect.Indirect(reflect.ValueOf(c).FieldByIndex(e.index)).Interface())
		if got != s {
			t.Errorf("Set(%s=%s): field holds %s", e.key, s, got)
		}
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct{ kv, want string }{
		{"train.epochs", "want key=value"},
		{"=3", "want key=value"},
		{"train.epoch=3", `unknown key "train.epoch" (did you mean "train.epochs"?)`},
		{"epochs=3", `unknown key "epochs" (did you mean "train.epochs"?)`},
		{"Train.Epochs=3", `(did you mean "train.epochs"?)`},
		{"foo.bar=3", `unknown key "foo.bar"`},
		{"train=3", "train is a table; set one of its keys, e.g. train.epochs=..."},
		{"train.epochs=ten", `train.epochs="ten": expected an integer`},
		{"train.epochs=1.5", `train.epochs="1.5": expected an integer`},
		{"train.epochs=99999999999999999999", "(out of range)"},
		{"seed=-1", `seed="-1": expected a non-negative integer`},
		{"seed=9223372036854775808", "TOML integers are at most 2^63-1"},
		{"train.lr_e=fast", `train.lr_e="fast": expected a number`},
		{"train.lr_e=NaN", "not a finite number"},
		{"train.lr_e=1e999", "out of range"},
		{"train.occlusion_per_image=yes", `expected a boolean (true or false)`},
		{"train.wake_weight=half", `train.wake_weight="half": expected a number, or "none" for the default`},
		{"train.wake_weight=inf", "not a finite number"},
		{`name="unterminated`, ""}, // taken literally: fine
		{`name="bad \q"`, `name="\"bad \\q\"": expected a string`},
	}
	for _, tt := range tests {
		c := Default()
		before := Default()
		err := c.Set(tt.kv)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Set(%q) = %v", tt.kv, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%q) = %v\nwant %q", tt.kv, err, tt.want)
			continue
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("Set(%q): error is not a *KeyError", tt.kv)
		}
		if !reflect.DeepEqual(c, before) {
			t.Errorf("Set(%q) failed but changed the config", tt.kv)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		sets []string
		want []string
	}{
		{[]string{"train.batch=1"}, []string{"train.batch = 1: must be at least 2 (the KL term needs the unbiased batch standard deviation)"}},
		{[]string{"model.nf=0", "model.nz=-1"}, []string{"model.nf = 0: must be at least 1", "model.nz = -1: must be at least 1"}},
		{[]string{"train.lr_e=0", "train.lr_g=-1e-3", "train.eps=0"}, []string{"train.lr_e = 0: must be", "train.lr_g = -0.001: must be", "train.eps = 0: must be"}},
		{[]string{"train.beta1=1", "train.beta2=-0.1"}, []string{"train.beta1 = 1: must be in [0, 1)", "train.beta2 = -0.1: must be in [0, 1)"}},
		{[]string{"train.epochs=-1", "train.max_iters=-1"}, []string{"train.epochs = -1", "train.max_iters = -1"}},
		{[]string{"train.lambda=1.5"}, []string{"train.lambda = 1.5: must be in [0, 1]"}},
		{[]string{"train.max_tile=0"}, []string{"train.max_tile = 0: must be in 1..32"}},
		{[]string{"train.max_tile=33"}, []string{"train.max_tile = 33: must be in 1..32"}},
		{[]string{"data.dataset=cifar"}, []string{`data.dataset = "cifar": must be one of embedded, mnist, fashion, cifar10, svhn, folder (did you mean "cifar10"?)`}},
		{[]string{"train.condition=no-remm"}, []string{`train.condition = "no-remm": must be one of pad, `, `(did you mean "no-rem"?)`}},
		{[]string{"device.kind=gpu", "device.precision=fp16"}, []string{`device.kind = "gpu": must be one of auto, cpu, cuda`, `device.precision = "fp16": must be one of tf32, fp32`}},
		{[]string{"device.threads=-1", "device.gpu=-1"}, []string{"device.threads = -1", "device.gpu = -1"}},
		{[]string{"train.wake_weight=-1", "train.nrem_weight=-0.5", "train.rem_weight=-2", "train.wake_noise=-1"},
			[]string{"train.wake_weight = -1", "train.nrem_weight = -0.5", "train.rem_weight = -2", "train.wake_noise = -1"}},
		{[]string{"data.train_limit=10"}, []string{"data.train_limit = 10: must be 0 or at least train.batch = 64"}},
		{[]string{"data.train_limit=-1", "data.test_limit=-1"}, []string{"data.train_limit = -1", "data.test_limit = -1"}},
		{[]string{"train.log_every=0", "train.checkpoint_every=-1", "train.sample_every=-1"}, []string{"train.log_every = 0", "train.checkpoint_every = -1", "train.sample_every = -1"}},
		{[]string{"eval.every=-1", "eval.probe_epochs=0", "eval.probe_lr=0", "eval.probe_batch=0", "eval.occlusion_tile=0"},
			[]string{"eval.every = -1", "eval.probe_epochs = 0", "eval.probe_lr = 0", "eval.probe_batch = 0", "eval.occlusion_tile = 0"}},
		{[]string{"name=../x"}, []string{`name = "../x": must be usable as a directory name`}},
		{[]string{"name=.hidden"}, []string{`name = ".hidden"`}},
		// Several problems at once: all come back.
		{[]string{"train.batch=1", "train.lr_e=0", "data.dataset=svh", "device.kind=gpu", "train.lambda=-1"},
			[]string{"train.batch = 1", "train.lr_e = 0", `data.dataset = "svh"`, `(did you mean "svhn"?)`, "train.lambda = -1", `device.kind = "gpu"`}},
	}
	for _, tt := range tests {
		c := Default()
		for _, kv := range tt.sets {
			if err := c.Set(kv); err != nil {
				t.Fatalf("Set(%q) = %v", kv, err)
			}
		}
		err := c.Validate()
		if err == nil {
			t.Errorf("%v: Validate() = nil", tt.sets)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: Validate() = %v\nlacks %q", tt.sets, err, w)
			}
		}
		u, ok := err.(interface{ Unwrap() []error })
		if !ok || len(u.Unwrap()) < len(tt.sets) {
			t.Errorf("%v: want at least %d joined errors, got %v", tt.sets, len(tt.sets), err)
		}
	}

	// Values Validate accepts at the edges of their ranges.
	for _, kvs := range [][]string{
		{"train.batch=2", "train.beta1=0", "train.lambda=0", "train.max_tile=1", "eval.every=0", "train.epochs=0"},
		{"train.lambda=1", "train.max_tile=32", "data.train_limit=64", "train.wake_weight=0", "seed=9223372036854775807"},
		{"name=pad-cifar10_seed.2", "data.dataset=folder", "data.root=/tmp/x", "device.kind=cuda", "device.precision=fp32"},
	} {
		c := Default()
		for _, kv := range kvs {
			if err := c.Set(kv); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%v: Validate() = %v", kvs, err)
		}
	}
	// data.test_fraction: (0, 1) for a folder; 0 (unset) is accepted for
	// the other sets, which ignore it, but nothing else out of range.
	for _, tc := range []struct {
		dataset string
		f       float64
		ok      bool
	}{
		{"folder", 0.2, true}, {"folder", 0.99, true}, {"folder", 0, false}, {"folder", 1, false}, {"folder", -0.1, false},
		{"embedded", 0, true}, {"cifar10", 0.5, true}, {"cifar10", 1, false}, {"embedded", -0.1, false}, {"svhn", math.NaN(), false},
	} {
		c := Default()
		c.Data.Dataset, c.Data.TestFraction = tc.dataset, tc.f
		err := c.Validate()
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "data.test_fraction = ") {
			t.Errorf("%s, test_fraction %v: Validate() = %v", tc.dataset, tc.f, err)
		}
	}

	c := Default()
	c.Seed = math.MaxUint64
	c.Train.LRE = math.NaN()
	c.Data.Root = "\xff"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "seed = ") ||
		!strings.Contains(err.Error(), "train.lr_e = NaN") || !strings.Contains(err.Error(), "data.root") {
		t.Errorf("Validate() = %v", err)
	}
}

func TestWeights(t *testing.T) {
	tests := []struct {
		condition string
		want      Weights
	}{
		{"pad", Weights{1, 1, 1, 0}},
		{"no-memory-mix", Weights{1, 1, 1, 0}},
		{"no-rem", Weights{1, 0.5, 0, 0.5}},
		{"no-nrem", Weights{1, 0, 1, 0}},
		{"wake-only", Weights{1, 0, 0, 0.5}},
		{"rem-noise-only", Weights{1, 1, 1, 0}},
		{"rem-memory-only", Weights{1, 1, 1, 0}},
		{"wake-rem-nrem", Weights{1, 1, 1, 0}},
		{"nrem-mix", Weights{1, 1, 1, 0}},
	}
	if len(tests) != len(Conditions()) {
		t.Errorf("test covers %d conditions, there are %d", len(tests), len(Conditions()))
	}
	for _, tt := range tests {
		tr := Default().Train
		tr.Condition = tt.condition
		if w, err := tr.Weights(); err != nil || w != tt.want {
			t.Errorf("%s: Weights() = %+v, %v; want %+v", tt.condition, w, err, tt.want)
		}
		tr.NREMWeight = ptr(0.25)
		tr.WakeNoise = ptr(0.1)
		want := tt.want
		want.NREM, want.WakeNoise = 0.25, 0.1
		if w, err := tr.Weights(); err != nil || w != want {
			t.Errorf("%s with overrides: Weights() = %+v, %v; want %+v", tt.condition, w, err, want)
		}
	}
	tr := Default().Train
	tr.Condition = "nope"
	if _, err := tr.Weights(); err == nil || !strings.Contains(err.Error(), `train.condition = "nope"`) {
		t.Errorf("Weights() of unknown condition = %v", err)
	}
}

func TestTOMLRoundTrip(t *testing.T) {
	configs := map[string]Config{"default": Default(), "resolved": Default().Resolved()}
	odd := Default()
	for _, kv := range []string{"name=x", `data.root=C:\data "q"`, "seed=9223372036854775807", "train.lr_e=1e-300",
		"train.lr_g=0.1", "train.wake_weight=0", "train.wake_noise=0.3", "train.occlusion_per_image=true",
		"data.dataset=folder", "device.gpu=3"} {
		if err := odd.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	configs["odd"] = odd
	for _, f := range Files() {
		c, err := Open(f)
		if err != nil {
			t.Fatal(err)
		}
		configs[f] = c
		configs[f+" resolved"] = c.Resolved()
	}
	for name, c := range configs {
		text, err := c.TOML()
		if err != nil {
			t.Fatalf("%s: TOML() = %v", name, err)
		}
		back, err := Parse(text, name)
		if err != nil {
			t.Fatalf("%s: Parse(TOML()) = %v\n%s", name, err, text)
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("%s: round trip changed the config\n got %+v\nwant %+v\n%s", name, back, c, text)
		}
		for _, table := range []string{"[data]", "[model]", "[train]", "[eval]", "[device]"} {
			if !strings.Contains(string(text), table) {
				t.Errorf("%s: TOML() lacks %s", name, table)
			}
		}
	}
	r := Default().Resolved()
	if r.Data.Root != "" || r.Train.WakeWeight == nil || *r.Train.REMWeight != 1 {
		t.Errorf("Default().Resolved() = %+v", r)
	}
	c := Default()
	c.Data.Dataset = "svhn"
	if r := c.Resolved(); r.Data.Root != "data/svhn" {
		t.Errorf("Resolved root = %q", r.Data.Root)
	}
}

func TestHash(t *testing.T) {
	// A fixed value: the hash must be the same in every run and every
	// build. Change it only on purpose (old checkpoints stop resuming).
	const want = "621e7433934c9463"
	if got := Default().Hash(); got != want {
		t.Errorf("Default().Hash() = %s, want %s", got, want)
	}
	base := Default()
	h := base.Hash()
	if len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("Hash() = %q, want 16 hex digits", h)
	}
	if base.Resolved().Hash() != h {
		t.Error("Resolved() changed the hash")
	}
	same := Default()
	same.Train.NREMWeight = ptr(1) // the condition's value
	if same.Hash() != h {
		t.Error("setting a weight to the condition's value changed the hash")
	}
	other := Default()
	if err := other.Set("train.condition=no-rem"); err != nil {
		t.Fatal(err)
	}
	if other.Hash() == h {
		t.Error("the condition does not change the hash")
	}

	excluded := HashExcluded()
	for _, k := range []string{"name", "data.root", "data.test_limit", "train.epochs", "train.max_iters",
		"train.log_every", "train.checkpoint_every", "train.sample_every", "eval.every", "device.kind"} {
		if !slices.Contains(excluded, k) {
			t.Errorf("HashExcluded() lacks %s", k)
		}
	}
	for _, e := range schema() {
		if e.table() {
			continue
		}
		c, base := Default(), h
		if e.key == "data.test_fraction" { // counts for folders only
			c.Data.Dataset = "folder"
			base = c.Hash()
		}
		v := reflect.ValueOf(&c).Elem().FieldByIndex(e.index)
		switch e.typ.Kind() {
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Uint64:
			v.SetUint(v.Uint() + 1)
		case reflect.Float64:
			v.SetFloat(v.Float() + 0.125)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Pointer:
			v.Set(reflect.ValueOf(ptr(0.125)))
		default:
			t.Fatalf("%s: no change for kind %s", e.key, e.typ.Kind())
		}
		changed := c.Hash() != base
		if changed == slices.Contains(excluded, e.key) {
			t.Errorf("changing %s: hash changed = %v, but excluded = %v", e.key, changed, !changed)
		}
	}
}

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and what
// it accepts must survive a TOML round trip.
func FuzzParse(f *testing.F) {
	for _, name := range Files() {
		data, err := Builtin(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[train]\nepoch = 3\nwake_weight = \"x\"\n"))
	f.Add([]byte("model = {nf = 2}\n[[device]]\n"))
	f.Add([]byte("name = \"\"\"\na = 1\n\"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		_ = c.Validate()
		_ = c.Hash()
		text, err := c.TOML()
		if err != nil {
			t.Fatalf("TOML() = %v", err)
		}
		back, err := Parse(text, "again.toml")
		if err != nil {
			t.Fatalf("Parse(TOML()) = %v\n%s", err, text)
		}
		text2, err := back.TOML()
		if err != nil || string(text2) != string(text) {
			t.Fatalf("round trip differs: %v\n%s\n---\n%s", err, text, text2)
		}
	})
}

// FuzzSet feeds arbitrary overrides to Set: it must never panic.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"train.epochs=10", "seed=3", "train.wake_weight=none", "name=\"x\"", "train=1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		c := Default()
		if err := c.Set(kv); err != nil {
			return
		}
		_ = c.Validate()
		_ = c.Hash()
	})
}
