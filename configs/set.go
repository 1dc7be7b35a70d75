package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Set applies one command-line override "key=value", where key is a
// dotted TOML key ("seed", "train.epochs", "data.dataset",
// "train.wake_weight", "device.kind"). The value is parsed by the type of
// the field: integers in decimal (or 0x…, 0o…, 0b…, and '_' separators),
// numbers as Go floats ("2e-4"), booleans as true/false (also 1/0, t/f),
// strings taken literally (or unquoted when written in double quotes). An
// optional weight (train.wake_weight, nrem_weight, rem_weight, wake_noise)
// takes a number, or "" / "none" / "default" to go back to the
// condition's value. On error the Config is left unchanged; the error (a
// *KeyError) names the key and what was expected. Set does not validate
// ranges: see Validate.
func (c *Config) Set(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return &KeyError{Msg: fmt.Sprintf("override %s: want key=value, e.g. train.epochs=10", quoteShort(kv))}
	}
	e, ok := lookup(key)
	if !ok {
		return &KeyError{Key: key, Msg: fmt.Sprintf("unknown key %s%s", quoteShort(key), suggest(key))}
	}
	if e.table() {
		return &KeyError{Key: key, Msg: fmt.Sprintf("%s is a table; set one of its keys, e.g. %s", key, firstLeaf(key))}
	}
	nv, err := parseValue(value, e.typ)
	if err != nil {
		return &KeyError{Key: key, Msg: fmt.Sprintf("%s=%s: expected %s%s", key, quoteShort(value), expectedValue(e.typ), detail(err)), Err: err}
	}
	reflect.ValueOf(c).Elem().FieldByIndex(e.index).Set(nv)
	return nil
}

// firstLeaf returns "table.key=..." for the first key of a table, as an
// example in messages.
func firstLeaf(table string) string {
	for _, e := range schema() {
		if !e.table() && strings.HasPrefix(e.key, table+".") {
			return e.key + "=..."
		}
	}
	return table + ".<key>=..."
}

// expectedValue describes the values Set accepts for type t.
func expectedValue(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return expected(t.Elem()) + `, or "none" for the default`
	}
	return expected(t)
}

// detail adds the reason a value was refused, when it says more than
// "expected X".
func detail(err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		return " (out of range)"
	}
	if errors.Is(err, errNotFinite) || errors.Is(err, errTooLarge) {
		return " (" + err.Error() + ")"
	}
	return ""
}

var (
	errNotFinite = errors.New("not a finite number")
	errTooLarge  = errors.New("TOML integers are at most 2^63-1")
)

// parseValue parses a command-line value into a new value of type t.
func parseValue(s string, t reflect.Type) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	if t.Kind() != reflect.String {
		s = strings.TrimSpace(s)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 0, t.Bits())
		if err != nil {
			return v, err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 0, t.Bits())
		if err != nil {
			return v, err
		}
		if n > math.MaxInt64 {
			return v, errTooLarge
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return v, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return v, errNotFinite
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return v, err
		}
		v.SetBool(b)
	case reflect.String:
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			u, err := strconv.Unquote(s)
			if err != nil {
				return v, err
			}
			s = u
		}
		v.SetString(s)
	case reflect.Pointer:
		switch strings.ToLower(s) {
		case "", "none", "default":
			return v, nil // nil pointer
		}
		elem, err := parseValue(s, t.Elem())
		if err != nil {
			return v, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(elem)
		v.Set(p)
	default:
		return v, fmt.Errorf("unsupported type %s", t)
	}
	return v, nil
}
