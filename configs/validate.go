package configs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validate checks every value's range and every name against the accepted
// ones, and returns all problems joined with errors.Join (nil when there
// are none). Each message starts with the key and its value, e.g.
// "train.batch = 1: must be at least 2 ...".
func (c Config) Validate() error {
	var v validator

	if c.Name != "" && !validName(c.Name) {
		v.add("name", c.Name, "must be usable as a directory name: letters, digits, '-', '_' and '.', not starting with '.', at most 128 bytes")
	}
	if c.Seed > math.MaxInt64 {
		v.add("seed", c.Seed, "must be at most 2^63-1 (TOML integers are signed 64-bit)")
	}

	d := c.Data
	v.oneOf("data.dataset", d.Dataset, Datasets())
	if !utf8.ValidString(d.Root) || strings.ContainsRune(d.Root, 0) {
		v.add("data.root", d.Root, "must be valid UTF-8 without NUL bytes")
	}
	v.atLeast("data.train_limit", d.TrainLimit, 0, "0 = all images")
	if d.TrainLimit > 0 && c.Train.Batch >= 2 && d.TrainLimit < c.Train.Batch {
		v.add("data.train_limit", d.TrainLimit, fmt.Sprintf("must be 0 or at least train.batch = %d: an epoch drops the last partial batch, so nothing would be trained", c.Train.Batch))
	}
	v.atLeast("data.test_limit", d.TestLimit, 0, "0 = all images")
	// Only folders use the test fraction; 0 (a Data built without it) is
	// accepted for the other sets, any other value out of range is not.
	if !(d.TestFraction > 0 && d.TestFraction < 1) && (d.Dataset == "folder" || d.TestFraction != 0) {
		v.add("data.test_fraction", d.TestFraction, "must be between 0 and 1, exclusive (the share of each class of a folder held out as the test set)")
	}

	v.atLeast("model.nf", c.Model.NF, 1, "the filter factor")
	v.atLeast("model.nz", c.Model.NZ, 1, "the latent size")

	t := c.Train
	v.atLeast("train.epochs", t.Epochs, 0, "")
	v.atLeast("train.max_iters", t.MaxIters, 0, "0 = no limit")
	v.atLeast("train.batch", t.Batch, 2, "the KL term needs the unbiased batch standard deviation")
	v.positive("train.lr_e", t.LRE)
	v.positive("train.lr_g", t.LRG)
	v.unit("train.beta1", t.Beta1)
	v.unit("train.beta2", t.Beta2)
	v.positive("train.eps", t.Eps)
	v.oneOf("train.condition", t.Condition, Conditions())
	for _, w := range []struct {
		key string
		p   *float64
	}{
		{"train.wake_weight", t.WakeWeight},
		{"train.nrem_weight", t.NREMWeight},
		{"train.rem_weight", t.REMWeight},
		{"train.wake_noise", t.WakeNoise},
	} {
		if w.p != nil && !(*w.p >= 0 && !math.IsInf(*w.p, 0)) {
			v.add(w.key, *w.p, "must be a finite number ≥ 0")
		}
	}
	if !(t.Lambda >= 0 && t.Lambda <= 1) {
		v.add("train.lambda", t.Lambda, "must be in [0, 1]")
	}
	if t.MaxTile < 1 || t.MaxTile > 32 {
		v.add("train.max_tile", t.MaxTile, "must be in 1..32 (the images are 32×32)")
	}
	v.atLeast("train.log_every", t.LogEvery, 1, "iterations between progress lines")
	v.atLeast("train.checkpoint_every", t.CheckpointEvery, 0, "0 = end of each epoch only")
	v.atLeast("train.sample_every", t.SampleEvery, 0, "0 = no sample grids")

	e := c.Eval
	v.atLeast("eval.every", e.Every, 0, "0 = no probe during training")
	v.atLeast("eval.probe_epochs", e.ProbeEpochs, 1, "")
	v.positive("eval.probe_lr", e.ProbeLR)
	v.atLeast("eval.probe_batch", e.ProbeBatch, 1, "")
	if e.OcclusionTile < 1 || e.OcclusionTile > 32 {
		v.add("eval.occlusion_tile", e.OcclusionTile, "must be in 1..32 (the images are 32×32)")
	}

	v.oneOf("device.kind", c.Device.Kind, DeviceKinds())
	v.oneOf("device.precision", c.Device.Precision, Precisions())
	v.atLeast("device.threads", c.Device.Threads, 0, "0 = all cores")
	v.atLeast("device.gpu", c.Device.GPU, 0, "the CUDA device index")

	return errors.Join(v.errs...)
}

// validator collects the problems Validate finds.
type validator struct{ errs []error }

func (v *validator) add(key string, value any, msg string) {
	if s, ok := value.(string); ok {
		value = quoteShort(s)
	}
	v.errs = append(v.errs, &KeyError{Key: key, Msg: fmt.Sprintf("%s = %v: %s", key, value, msg)})
}

func (v *validator) atLeast(key string, n, lo int, why string) {
	if n < lo {
		msg := fmt.Sprintf("must be at least %d", lo)
		if why != "" {
			msg += " (" + why + ")"
		}
		v.add(key, n, msg)
	}
}

func (v *validator) positive(key string, f float64) {
	if !(f > 0 && !math.IsInf(f, 0)) {
		v.add(key, f, "must be a finite number > 0")
	}
}

func (v *validator) unit(key string, f float64) {
	if !(f >= 0 && f < 1) {
		v.add(key, f, "must be in [0, 1)")
	}
}

func (v *validator) oneOf(key, s string, names []string) {
	if !slices.Contains(names, s) {
		v.add(key, s, "must be one of "+strings.Join(names, ", ")+closest(s, names))
	}
}

// validName reports whether a run name is safe as one directory name.
func validName(s string) bool {
	if len(s) > 128 || s[0] == '.' {
		return false
	}
	for i := range len(s) {
		if !isBare(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// closest returns ` (did you mean "x"?)` for the name closest to s, or ""
// when none is close.
func closest(s string, names []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, n := range names {
		d := distance(ls, n)
		if (d <= 2 || strings.HasPrefix(n, ls) && len(ls) >= 3) && (bestD < 0 || d < bestD) {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
