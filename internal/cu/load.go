package cu

import (
	"os"
	"path/filepath"
	"strings"
)

// libSpec describes one library: where to look and what to tell the user
// when it is not there.
type libSpec struct {
	lib      string          // "cuda", "nvrtc", "cublas", "cudnn": the prefix of messages
	names    func() []string // sonames and paths, in the order tried
	missing  string          // what is missing, e.g. "libcudnn.so.9 (or .8) not found"
	install  string          // what to do, e.g. "install cuDNN 9 (...)"
	sentinel error           // ErrNoDriver or ErrNoLibrary
}

// symbol is one C function to resolve: the first of names that the library
// exports is stored in *dst.
type symbol struct {
	dst      *uintptr
	names    []string
	optional bool
}

func need(dst *uintptr, names ...string) symbol { return symbol{dst: dst, names: names} }

func maybe(dst *uintptr, names ...string) symbol {
	return symbol{dst: dst, names: names, optional: true}
}

// toolkitDirs lists the directories of a CUDA toolkit install that may hold
// libnvrtc and libcublas when they are not on the loader's path.
func toolkitDirs() []string {
	var dirs []string
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if d := os.Getenv(env); d != "" {
			dirs = append(dirs, filepath.Join(d, "lib64"), filepath.Join(d, "lib"))
		}
	}
	return append(dirs, "/usr/local/cuda/lib64")
}

// versioned returns, for each soname, the bare soname (resolved by the
// dynamic loader's search path) and then the soname in each toolkit
// directory.
func versioned(sonames ...string) func() []string {
	return func() []string {
		var out []string
		for _, so := range sonames {
			out = append(out, so)
			for _, d := range toolkitDirs() {
				out = append(out, filepath.Join(d, so))
			}
		}
		return out
	}
}

// absent recognises the loader's message for a candidate that is simply
// not there, which is not worth repeating to the user. A message about
// another file (a missing dependency of a library that exists) is kept.
func absent(name, msg string) bool {
	return strings.HasPrefix(msg, name+": cannot open shared object file")
}

// load opens the first loadable candidate and resolves syms. The sentence of
// its error says what is missing and what to install.
func (s *libSpec) load(syms []symbol) (string, error) {
	tried := s.names()
	sentence := func(what string) string {
		return s.lib + ": " + what + ": " + s.install + ", or run with --device cpu"
	}
	if !platformSupported {
		_, err := dlopen(tried[0])
		return "", &LoadError{Lib: s.lib, Tried: tried, Detail: err.Error(), sentence: sentence(s.missing), kind: s.sentinel}
	}
	var handle uintptr
	var loaded, detail string
	for _, name := range tried {
		h, err := dlopen(name)
		if err == nil && h != 0 {
			handle, loaded = h, name
			break
		}
		if err != nil && detail == "" && !absent(name, err.Error()) {
			detail = strings.TrimSpace(err.Error())
		}
	}
	if handle == 0 {
		return "", &LoadError{Lib: s.lib, Tried: tried, Detail: detail, sentence: sentence(s.missing), kind: s.sentinel}
	}
	for _, sy := range syms {
		for _, name := range sy.names {
			if p, err := dlsym(handle, name); err == nil && p != 0 {
				*sy.dst = p
				break
			}
		}
		if *sy.dst == 0 && !sy.optional {
			return "", &LoadError{Lib: s.lib, Tried: tried, Loaded: loaded, Missing: sy.names[0],
				sentence: sentence(loaded + " does not export " + sy.names[0] + " (too old?)"), kind: s.sentinel}
		}
	}
	return loaded, nil
}
