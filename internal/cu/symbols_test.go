package cu

// These tests load the real NVIDIA libraries, which needs no GPU: CI
// installs Debian's libcuda1 (driver 535), libnvrtc11.2 (CUDA 11.8) and
// libcublas11 and sets PAD_REQUIRE_CUDA_LIBS=1, so there a library that
// does not load fails the test; elsewhere an absent library skips it.
//
// cuDNN is not packaged by Debian (NVIDIA ships it only through its own
// repositories, pip and conda), so CI cannot check its symbols; where
// cuDNN is installed it is checked like the others.

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// cudaLibsRequired reports whether a missing NVIDIA library fails the
// tests instead of skipping them: in CI, or when asked to.
func cudaLibsRequired() bool {
	return os.Getenv("PAD_REQUIRE_CUDA_LIBS") == "1" || os.Getenv("CI") == "true"
}

// requireLoaded fails the test with err, the loader's sentence, unless the
// library is simply not installed and no one requires it, which skips.
// A library that is there but does not load (a missing dependency or
// symbol) always fails.
func requireLoaded(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var le *LoadError
	absent := !platformSupported || errors.As(err, &le) && le.Loaded == "" && le.Missing == "" && le.Detail == ""
	if absent && !cudaLibsRequired() {
		t.Skipf("not installed (set PAD_REQUIRE_CUDA_LIBS=1 to fail instead): %v", err)
	}
	t.Fatal(err)
}

// boundSymbol is one need(...) or maybe(...) entry of the bindings: the
// function-pointer field it fills and the C names it tries, in order.
type boundSymbol struct {
	lib      string // the variable holding the pointers: drv, nvrtc, blas, dnn
	field    string
	names    []string
	optional bool
	pos      string // file:line of the entry
}

// boundSymbols reads every need and maybe entry off the package's source,
// so the check below covers exactly what the loaders resolve.
func boundSymbols(t *testing.T) []boundSymbol {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []boundSymbol
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || (fn.Name != "need" && fn.Name != "maybe") {
				return true
			}
			pos := fset.Position(call.Pos()).String()
			bad := func(why string) bool {
				t.Errorf("%s: %s(...) entry %s", pos, fn.Name, why)
				return false
			}
			if len(call.Args) < 2 {
				return bad("names no symbol")
			}
			addr, ok := call.Args[0].(*ast.UnaryExpr)
			if !ok || addr.Op != token.AND {
				return bad("does not start with &lib.field")
			}
			sel, ok := addr.X.(*ast.SelectorExpr)
			if !ok {
				return bad("does not start with &lib.field")
			}
			lib, ok := sel.X.(*ast.Ident)
			if !ok {
				return bad("does not start with &lib.field")
			}
			s := boundSymbol{lib: lib.Name, field: sel.Sel.Name, optional: fn.Name == "maybe", pos: pos}
			for _, a := range call.Args[1:] {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return bad("has a symbol name that is not a string literal")
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					return bad(err.Error())
				}
				s.names = append(s.names, v)
			}
			out = append(out, s)
			return false
		})
	}
	return out
}

// boundLibs are the variables holding each library's function pointers,
// the prefix of their C names, and how the library is loaded.
var boundLibs = []struct {
	lib, v, prefix string
	ptrs           func() reflect.Value
	load           func() error
	path           func() string
}{
	{"cuda", "drv", "cu", func() reflect.Value { return reflect.ValueOf(&drv).Elem() }, loadDriver, func() string { return drv.lib.path }},
	{"nvrtc", "nvrtc", "nvrtc", func() reflect.Value { return reflect.ValueOf(&nvrtc).Elem() }, LoadNVRTC, func() string { return nvrtc.lib.path }},
	{"cublas", "blas", "cublas", func() reflect.Value { return reflect.ValueOf(&blas).Elem() }, LoadBLAS, func() string { return blas.lib.path }},
	{"cudnn", "dnn", "cudnn", func() reflect.Value { return reflect.ValueOf(&dnn).Elem() }, LoadDNN, func() string { return dnn.lib.path }},
}

// Every function pointer of the bindings has exactly one entry, so the
// test below checks them all.
func TestBoundSymbolsCoverEveryPointer(t *testing.T) {
	syms := boundSymbols(t)
	entries := map[string]int{}
	known := map[string]bool{}
	for _, s := range syms {
		entries[s.lib+"."+s.field]++
	}
	for _, l := range boundLibs {
		known[l.v] = true
		st := l.ptrs().Type()
		n := 0
		for i := 0; i < st.NumField(); i++ {
			f := st.Field(i)
			if f.Type.Kind() != reflect.Uintptr || !strings.HasPrefix(f.Name, l.prefix) {
				continue
			}
			n++
			switch c := entries[l.v+"."+f.Name]; c {
			case 1:
			case 0:
				t.Errorf("%s.%s is never resolved (no need or maybe entry)", l.v, f.Name)
			default:
				t.Errorf("%s.%s has %d need or maybe entries", l.v, f.Name, c)
			}
		}
		if n == 0 {
			t.Errorf("%s: no function pointers found", l.v)
		}
	}
	for _, s := range syms {
		if !known[s.lib] {
			t.Errorf("%s: entry for %s.%s, which is not one of the libraries checked here", s.pos, s.lib, s.field)
		}
	}
	t.Logf("%d need and maybe entries", len(syms))
}

// Every symbol the bindings resolve is exported by the real libraries:
// each loader succeeds (so every need entry resolved), each pointer is the
// address of the first of its names the library exports, and the optional
// (maybe) symbols the library lacks are listed.
func TestBoundSymbolsExist(t *testing.T) {
	syms := boundSymbols(t)
	for _, l := range boundLibs {
		t.Run(l.lib, func(t *testing.T) {
			err := l.load()
			if l.lib == "cudnn" && err != nil {
				var le *LoadError
				if errors.As(err, &le) && le.Loaded == "" && le.Missing == "" && le.Detail == "" {
					// Not a skip: CI cannot install cuDNN from Debian, and
					// the other libraries' results stand.
					t.Logf("cuDNN is not installed (Debian does not package it); its symbols are not checked: %v", err)
					return
				}
			}
			requireLoaded(t, err)
			path := l.path()
			h, err := dlopen(path)
			if err != nil {
				t.Fatalf("dlopen(%s) again: %v", path, err)
			}
			ptrs := l.ptrs()
			var absent, alternates []string
			n := 0
			for _, s := range syms {
				if s.lib != l.v {
					continue
				}
				n++
				got := uintptr(ptrs.FieldByName(s.field).Uint())
				resolved := ""
				var want uintptr
				for _, name := range s.names {
					if p, err := dlsym(h, name); err == nil && p != 0 {
						resolved, want = name, p
						break
					}
				}
				switch {
				case resolved == "" && s.optional:
					absent = append(absent, strings.Join(s.names, "/"))
					if got != 0 {
						t.Errorf("%s.%s is set though %s exports none of %q", l.v, s.field, path, s.names)
					}
				case resolved == "":
					t.Errorf("%s: %s exports none of %q, yet the library loaded", s.pos, path, s.names)
				case got != want:
					t.Errorf("%s.%s = %#x, but %s is at %#x", l.v, s.field, got, resolved, want)
				case resolved != s.names[0]:
					alternates = append(alternates, resolved+" for "+s.names[0])
				}
			}
			if n == 0 {
				t.Fatalf("no need or maybe entries for %s", l.v)
			}
			sort.Strings(absent)
			t.Logf("%s: %d symbols checked", path, n)
			if len(alternates) > 0 {
				t.Logf("resolved by a later alternative: %s", strings.Join(alternates, ", "))
			}
			if len(absent) > 0 {
				t.Logf("optional symbols absent: %s", strings.Join(absent, ", "))
			} else {
				t.Logf("optional symbols absent: none")
			}
		})
	}
	// The versions come from the libraries themselves and need no device.
	if v, err := DriverVersion(); err == nil {
		t.Logf("driver supports CUDA %d.%d", v/1000, v%1000/10)
	}
	if ma, mi, err := NVRTCVersion(); err == nil {
		t.Logf("NVRTC %d.%d", ma, mi)
	}
	if ma, mi, pa, err := BLASLibraryVersion(); err == nil {
		t.Logf("cuBLAS %d.%d.%d", ma, mi, pa)
	}
}

// With the driver library present but no GPU (CI), Init fails with an
// *Error from cuInit that matches ErrNoDevice, not ErrNoDriver: the
// driver is there, the device is not.
//
// On the simulation it runs in a child process whose simulated cuInit
// fails (PAD_CUDASIM_FAULT=fail=cuInit): the driver loads, the device
// does not.
func TestInitWithDriverButNoDevice(t *testing.T) {
	if here, out := rerunWithoutSimulation(t, "TestInitWithDriverButNoDevice", "PAD_CUDASIM_FAULT=fail=cuInit"); !here {
		childVerdict(t, out, "TestInitWithDriverButNoDevice")
		return
	}
	requireLoaded(t, loadDriver())
	err := Init()
	if err == nil {
		t.Skip("a CUDA device is present")
	}
	if !errors.Is(err, ErrNoDevice) || errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNoLibrary) {
		t.Fatalf("Init: %v: want an error matching ErrNoDevice and neither ErrNoDriver nor ErrNoLibrary", err)
	}
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Call, "cuInit") || e.Name == "" {
		t.Fatalf("Init: %#v: want an *Error of cuInit with the status's name", err)
	}
	if _, err := DriverVersion(); err != nil {
		t.Errorf("DriverVersion without a device: %v", err)
	}
	if _, err := DeviceCount(); err != Init() {
		t.Errorf("DeviceCount: %v, want the Init error", err)
	}
	t.Logf("Init: %v (driver %s)", err, DriverLibrary())
}
