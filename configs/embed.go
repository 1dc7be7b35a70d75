package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

// builtin holds the config files shipped with pad.
//
//go:embed *.toml
var builtin embed.FS

// Files returns the names of the built-in config files ("quickstart.toml",
// "mnist.toml", ...), sorted.
func Files() []string {
	entries, err := fs.ReadDir(builtin, ".")
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".toml") {
			names = append(names, e.Name())
		}
	}
	return names
}

// Builtin returns the text of a built-in config file, by its name with or
// without ".toml" ("quickstart" or "quickstart.toml").
func Builtin(name string) ([]byte, error) {
	file := builtinFile(name)
	if !fs.ValidPath(file) || strings.Contains(file, "/") {
		return nil, notBuiltin(name)
	}
	data, err := builtin.ReadFile(file)
	if err != nil {
		return nil, notBuiltin(name)
	}
	return data, nil
}

// builtinFile returns the file name of a built-in config name.
func builtinFile(name string) string {
	if strings.HasSuffix(name, ".toml") {
		return name
	}
	return name + ".toml"
}

func notBuiltin(name string) error {
	var names []string
	for _, f := range Files() {
		names = append(names, strings.TrimSuffix(f, ".toml"))
	}
	msg := fmt.Sprintf("%q is not a built-in config%s", name, oneOf(names))
	if s := closest(strings.TrimSuffix(name, ".toml"), names); s != "" {
		msg += s
	}
	return fmt.Errorf("%s", msg)
}
