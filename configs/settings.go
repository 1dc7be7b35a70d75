package configs

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// Setting is one key of a config and its value, as `--set` writes them
// (model.nf and 64).
type Setting struct {
	Key, Value string
}

func (s Setting) String() string { return s.Key + "=" + s.Value }

// Settings returns every key of c in the declaration order of Config,
// with its value formatted the same way every time (strings unquoted,
// floats in their shortest form, an unset weight as "unset"). Call
// Resolved first to compare configs whose weights come from their
// condition.
func (c Config) Settings() []Setting {
	rv := reflect.ValueOf(c)
	var out []Setting
	for _, e := range schema() {
		if !e.table() {
			out = append(out, Setting{Key: e.key, Value: display(rv.FieldByIndex(e.index))})
		}
	}
	return out
}

// display formats a value for Settings: canonical's form, less TOML's
// quoting and its ".0" on whole floats.
func display(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "unset"
		}
		return display(v.Elem())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case reflect.String:
		return v.String()
	}
	return canonical(v)
}

// SettingChange is a key whose value differs between two configs.
type SettingChange struct {
	Key      string
	Old, New string
}

func (c SettingChange) String() string {
	return fmt.Sprintf("%s %s → %s", c.Key, c.Old, c.New)
}

// Changes returns the keys whose values differ between the resolved
// configs old and new, in declaration order, leaving out the keys skip
// reports (nil: none).
func Changes(old, new Config, skip func(key string) bool) []SettingChange {
	a, b := old.Resolved().Settings(), new.Resolved().Settings()
	var out []SettingChange
	for i := range a {
		if skip != nil && skip(a[i].Key) {
			continue
		}
		if a[i].Value != b[i].Value {
			out = append(out, SettingChange{Key: a[i].Key, Old: a[i].Value, New: b[i].Value})
		}
	}
	return out
}

// HashChanges returns the keys of the config hash (Hash) whose values
// differ between old and new: why two configs' hashes differ.
func HashChanges(old, new Config) []SettingChange {
	return Changes(old, new, func(key string) bool { return !old.hashed(key) && !new.hashed(key) })
}
