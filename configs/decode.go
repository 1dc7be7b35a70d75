package configs

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxFileSize is the largest config file Load reads.
const MaxFileSize = 1 << 20

// KeyError is one problem found while decoding or overriding a config: a
// syntax error, an unknown key, or a value of the wrong type. Parse and
// Set return them (joined with errors.Join when there are several), so a
// caller can use errors.As to find the key and the line.
type KeyError struct {
	// Source names the input: a file name, or "" for a command-line
	// override.
	Source string
	// Line is the 1-based line of the key in Source, 0 when unknown.
	Line int
	// Key is the dotted TOML key, e.g. "train.epochs"; "" when the problem
	// is not tied to one key.
	Key string
	// Msg says what is wrong; it names the key.
	Msg string
	// Err is the underlying error (the TOML parser's), if any.
	Err error
}

// Error returns "source:line: msg", leaving out the parts that are unknown.
func (e *KeyError) Error() string {
	switch {
	case e.Source != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg)
	case e.Source != "":
		return e.Source + ": " + e.Msg
	}
	return e.Msg
}

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }

// Load reads a config file; see Parse. Files larger than MaxFileSize are
// refused.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return Config{}, fmt.Errorf("config: %s: larger than %d bytes; not a config file?", path, MaxFileSize)
	}
	return Parse(data, path)
}

// Open loads a config by reference: a file path when a file of that name
// exists, otherwise the built-in config of that name (with or without
// ".toml", and with or without a leading "configs/"; see Builtin), so
// "quickstart" and "configs/quickstart.toml" work without the repository
// on disk.
func Open(ref string) (Config, error) {
	if _, err := os.Stat(ref); err == nil {
		return Load(ref)
	}
	name := strings.TrimPrefix(filepath.ToSlash(ref), "configs/") // as in the repository's README
	data, err := Builtin(name)
	if err != nil {
		return Config{}, fmt.Errorf("config %q: no such file, and %w", ref, err)
	}
	return Parse(data, "configs/"+builtinFile(name))
}

// Parse decodes a TOML config on top of Default: keys the input leaves out
// keep their default values. Decoding is strict: a syntax error, a key
// Config does not have, or a value of the wrong type is an error naming
// source (the file name, used in messages only), the line where it can be
// found, the key and, for unknown keys, the closest known key. All
// problems are reported, joined with errors.Join; each is a *KeyError.
// Parse does not validate ranges: see Validate.
func Parse(data []byte, source string) (Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return Config{}, syntaxError(source, err)
	}
	lines := keyLines(data)
	var problems []*KeyError
	checkTable(raw, reflect.TypeFor[Config](), nil, func(key toml.Key, msg string) {
		problems = append(problems, &KeyError{Source: source, Line: lineOf(lines, key), Key: key.String(), Msg: msg})
	})
	if len(problems) > 0 {
		return Config{}, joinProblems(problems)
	}

	cfg := Default()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil { // not expected after checkTable; kept as a safety net
		return Config{}, syntaxError(source, err)
	}
	for _, k := range md.Undecoded() { // likewise
		problems = append(problems, &KeyError{Source: source, Line: lineOf(lines, k), Key: k.String(),
			Msg: fmt.Sprintf("unknown key %q%s", k.String(), suggest(k.String()))})
	}
	if len(problems) > 0 {
		return Config{}, joinProblems(problems)
	}
	return cfg, nil
}

// syntaxError wraps an error of the TOML decoder with the source name.
func syntaxError(source string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.LastKey != "" {
			msg = fmt.Sprintf("%s (after key %q)", msg, pe.LastKey)
		}
		return &KeyError{Source: source, Line: pe.Position.Line, Key: pe.LastKey, Msg: msg, Err: err}
	}
	return &KeyError{Source: source, Msg: err.Error(), Err: err}
}

// joinProblems sorts problems by line (unknown lines last), then key, and
// joins them.
func joinProblems(ps []*KeyError) error {
	slices.SortStableFunc(ps, func(a, b *KeyError) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Key, b.Key))
	})
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// checkTable compares the decoded TOML table m with the struct type t and
// reports every unknown key and every value of the wrong type. Keys below
// an unknown or mistyped key are not reported again.
func checkTable(m map[string]any, t reflect.Type, path toml.Key, report func(toml.Key, string)) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := m[name]
		key := append(path[:len(path):len(path)], name)
		ks := key.String()
		f, ok := child(t, name)
		if !ok {
			what := "key"
			if _, isTable := v.(map[string]any); isTable {
				what = "table"
			}
			report(key, fmt.Sprintf("unknown %s %q%s", what, ks, suggest(ks)))
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			if sub, ok := v.(map[string]any); ok {
				checkTable(sub, f.Type, key, report)
				continue
			}
		}
		if msg := checkValue(v, f.Type); msg != "" {
			report(key, fmt.Sprintf("%s: %s", ks, msg))
		}
	}
}

// checkValue returns "" when the decoded TOML value v fits type t, and
// otherwise what is wrong.
func checkValue(v any, t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func() string { return fmt.Sprintf("expected %s, got %s", expected(t), describe(v)) }
	zero := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			return bad()
		}
		if zero.OverflowInt(n) {
			return fmt.Sprintf("%d is out of range for %s", n, t)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(int64)
		if !ok || n < 0 {
			return bad()
		}
		if zero.OverflowUint(uint64(n)) {
			return fmt.Sprintf("%d is out of range for %s", n, t)
		}
	case reflect.Float32, reflect.Float64:
		switch n := v.(type) {
		case float64:
			if zero.OverflowFloat(n) {
				return fmt.Sprintf("%g is out of range for %s", n, t)
			}
		case int64:
			if n > 1<<53 || n < -(1<<53) {
				return fmt.Sprintf("the integer %d cannot be represented exactly as a number; write it as a float", n)
			}
		default:
			return bad()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return bad()
		}
	default:
		return bad()
	}
	return ""
}

// describe names a decoded TOML value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %g", v)
	case string:
		return "the string " + quoteShort(v)
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v) // dates and times
}

// quoteShort quotes s, cut to at most 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// lineOf returns the line where key, or else its closest ancestor, was
// found in the input; 0 when none was.
func lineOf(lines map[string]int, key toml.Key) int {
	for n := len(key); n > 0; n-- {
		if l, ok := lines[key[:n].String()]; ok {
			return l
		}
	}
	return 0
}

// keyLines finds the line of every table header and key in a TOML
// document, keyed by toml.Key.String(). It is a light scanner, not a
// parser: it only feeds line numbers to error messages (the decoder does
// not export key positions), so a key it misses (for example one inside
// an inline table) is reported without a line, or with its table's.
func keyLines(data []byte) map[string]int {
	lines := make(map[string]int)
	record := func(k toml.Key, line int) {
		for n := 1; n <= len(k); n++ {
			s := k[:n].String()
			if _, ok := lines[s]; !ok {
				lines[s] = line
			}
		}
	}
	var table toml.Key
	inString := "" // the delimiter of a multi-line string being skipped
	for i, text := range strings.Split(string(data), "\n") {
		line := i + 1
		if inString != "" {
			if strings.Count(text, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		s := strings.TrimLeft(text, " \t")
		switch {
		case strings.HasPrefix(s, "[["):
			if k, rest, ok := scanKey(s[2:]); ok && strings.HasPrefix(rest, "]]") {
				table = k
				record(k, line)
			}
			continue
		case strings.HasPrefix(s, "["):
			if k, rest, ok := scanKey(s[1:]); ok && strings.HasPrefix(rest, "]") {
				table = k
				record(k, line)
			}
			continue
		}
		k, rest, ok := scanKey(s)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		record(append(table[:len(table):len(table)], k...), line)
		for _, delim := range []string{`"""`, `'''`} {
			if strings.Count(rest, delim)%2 == 1 {
				inString = delim
				break
			}
		}
	}
	return lines
}

// scanKey reads a dotted TOML key (bare, "basic" or 'literal' parts) at
// the start of s and returns it with the rest of s after trailing blanks.
func scanKey(s string) (toml.Key, string, bool) {
	var key toml.Key
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			part, err := strconv.Unquote(s[:end+1])
			if err != nil {
				part = s[1:end]
			}
			key = append(key, part)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			key = append(key, s[1:1+end])
			s = s[end+2:]
		default:
			end := 0
			for end < len(s) && isBare(s[end]) {
				end++
			}
			if end == 0 {
				return nil, "", false
			}
			key = append(key, s[:end])
			s = s[end:]
		}
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return key, s, true
		}
		s = s[1:]
	}
}

func isBare(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}
