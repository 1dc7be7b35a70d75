package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// TOML encodes every field of c (not only the ones that differ from
// Default) as a TOML document with the tables [data], [model], [train],
// [eval] and [device]. Unset optional weights are left out, which Parse
// reads back as unset: Parse(c.TOML()) gives c again. Call Resolved first
// to write the derived values (data root, condition weights) too.
func (c Config) TOML() ([]byte, error) {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("config: encoding TOML: %w", err)
	}
	return []byte(b.String()), nil
}

// hashExcluded reports whether a key is left out of Hash. Excluded are the
// keys that do not change the trained weights, or that one changes to go
// on with a run:
//
//   - name: the run's directory;
//   - data.root: where the files are, not what they are;
//   - data.test_limit and all of [eval]: evaluation only;
//   - train.epochs and train.max_iters: so a run can be extended;
//   - train.log_every, train.checkpoint_every, train.sample_every: output
//     only;
//   - all of [device]: a run may be resumed on another device or with
//     other threads (note that tf32 and fp32 give slightly different
//     numbers).
func hashExcluded(key string) bool {
	switch key {
	case "name", "data.root", "data.test_limit",
		"train.epochs", "train.max_iters",
		"train.log_every", "train.checkpoint_every", "train.sample_every":
		return true
	}
	return strings.HasPrefix(key, "eval.") || strings.HasPrefix(key, "device.")
}

// HashExcluded returns the keys Hash leaves out.
func HashExcluded() []string {
	var keys []string
	for _, e := range schema() {
		if !e.table() && hashExcluded(e.key) {
			keys = append(keys, e.key)
		}
	}
	return keys
}

// Hash returns 16 hex digits (the start of a SHA-256) identifying the
// settings that define the model and its training trajectory: two configs
// with the same Hash train the same weights from the same seed, so a
// checkpoint may be resumed only under a config with its Hash. The hash is
// taken over a canonical TOML text with one `key = value` line per key, in
// the declaration order of Config, with the condition's weights written
// out (so leaving a weight unset and setting it to the condition's value
// hash alike). The keys listed by HashExcluded are left out; see
// hashExcluded for why. A new key added to Config is included unless it
// is added to that list.
func (c Config) Hash() string {
	r := c
	if w, err := c.Train.Weights(); err == nil {
		r.Train.WakeWeight = ptr(w.Wake)
		r.Train.NREMWeight = ptr(w.NREM)
		r.Train.REMWeight = ptr(w.REM)
		r.Train.WakeNoise = ptr(w.WakeNoise)
	}
	h := sha256.New()
	fmt.Fprintln(h, "# pad config hash v1")
	rv := reflect.ValueOf(r)
	for _, e := range schema() {
		if e.table() || !c.hashed(e.key) {
			continue
		}
		fmt.Fprintf(h, "%s = %s\n", e.key, canonical(rv.FieldByIndex(e.index)))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// hashed reports whether Hash includes the value key: not one of
// HashExcluded, and the test fraction only for image folders (it decides
// which images a folder trains on; for the other data sets it changes
// nothing, and leaving it out keeps their hashes, and checkpoints, from
// before the key existed).
func (c Config) hashed(key string) bool {
	if hashExcluded(key) {
		return false
	}
	return key != "data.test_fraction" || c.Data.Dataset == "folder"
}

// canonical formats a value as a TOML value, the same way every time.
func canonical(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return `"unset"`
		}
		return canonical(v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 1):
			return "inf"
		case math.IsInf(f, -1):
			return "-inf"
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIn") {
			s += ".0"
		}
		return s
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.String:
		return strconv.Quote(v.String())
	}
	return fmt.Sprintf("%v", v.Interface())
}
