package eval

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/configs"
)

// Setting is one key of a config and its value, as `--set` writes them
// (model.nf and 64).
type Setting struct {
	Key, Value string
}

func (s Setting) String() string { return s.Key + "=" + s.Value }

// ConfigSettings returns every key of c in the declaration order of
// configs.Config, with its value formatted the same way every time
// (strings unquoted, floats in their shortest form, an unset weight as
// "unset"). Call Resolved first to compare configs whose weights come
// from their condition.
func ConfigSettings(c configs.Config) []Setting {
	var out []Setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			key := prefix + name
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), key+".")
				continue
			}
			out = append(out, Setting{Key: key, Value: settingValue(v.Field(i))})
		}
	}
	walk(reflect.ValueOf(c), "")
	return out
}

// settingValue formats a config value for ConfigSettings.
func settingValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "unset"
		}
		return settingValue(v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.String:
		return v.String()
	}
	return fmt.Sprint(v.Interface())
}

// SettingChange is a key whose value differs between two configs.
type SettingChange struct {
	Key      string
	Old, New string
}

func (c SettingChange) String() string {
	return fmt.Sprintf("%s %s → %s", c.Key, c.Old, c.New)
}

// ConfigChanges returns the keys whose values differ between the resolved
// configs old and new, in declaration order, leaving out the keys skip
// reports (nil: none).
func ConfigChanges(old, new configs.Config, skip func(key string) bool) []SettingChange {
	a, b := ConfigSettings(old.Resolved()), ConfigSettings(new.Resolved())
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
