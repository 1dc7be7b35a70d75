package configs

import (
	"fmt"
	"reflect"
	"strings"
)

// entry is one key of the TOML layout, found by reflection over the toml
// tags of Config: a table ([train]) or a value (train.epochs).
type entry struct {
	key   string // dotted TOML key, e.g. "train.epochs"
	index []int  // reflect field index path from Config
	typ   reflect.Type
}

// table reports whether the entry is a TOML table.
func (e entry) table() bool { return e.typ.Kind() == reflect.Struct }

// schema lists every table and value of Config, in declaration order.
func schema() []entry {
	var out []entry
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := tomlName(f)
			if name == "" {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			e := entry{key: prefix + name, index: idx, typ: f.Type}
			out = append(out, e)
			if e.table() {
				walk(f.Type, e.key+".", idx)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// tomlName is the TOML key of a struct field, "" for fields TOML skips.
func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// lookup returns the schema entry of a dotted key.
func lookup(key string) (entry, bool) {
	for _, e := range schema() {
		if e.key == key {
			return e, true
		}
	}
	return entry{}, false
}

// child returns the field of struct type t whose TOML key is name.
func child(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tomlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// expected describes, for error messages, what a value of type t must be.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "a table"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return expected(t.Elem())
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// suggest returns ` (did you mean "x"?)` for the known key closest to an
// unknown one, or "" when none is close.
func suggest(unknown string) string {
	if len(unknown) > 64 {
		return ""
	}
	best, bestD := "", -1
	u := strings.ToLower(unknown)
	uLast := lastPart(u)
	for _, e := range schema() {
		k := strings.ToLower(e.key)
		d := distance(u, k)
		if !strings.Contains(u, ".") {
			// A bare key may have lost its table: "epochs" → "train.epochs".
			d = min(d, distance(u, lastPart(k)))
		}
		ok := d <= 2 || 3*d <= len(u)
		// "training" → "train", "lr" → "lr_e": one last part extends the other.
		if kLast := lastPart(k); !ok && parent(u) == parent(k) && min(len(uLast), len(kLast)) >= 2 &&
			(strings.HasPrefix(uLast, kLast) || strings.HasPrefix(kLast, uLast)) {
			ok = true
		}
		if ok && (bestD < 0 || d < bestD) {
			best, bestD = e.key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func lastPart(k string) string {
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[i+1:]
	}
	return k
}

func parent(k string) string {
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

// distance is the Levenshtein edit distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// oneOf formats a list of accepted names: " (one of a, b, c)".
func oneOf(names []string) string {
	return " (one of " + strings.Join(names, ", ") + ")"
}
