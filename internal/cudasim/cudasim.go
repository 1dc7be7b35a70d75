// Package cudasim builds pad's simulated NVIDIA stack: a libcuda.so.1,
// libnvrtc.so.13, libcudnn.so.9 (and .8) and libcublas.so.13 written by
// the project in C++ (csrc/), compiled here with the system's C++
// compiler. The unchanged pad binary loads them like NVIDIA's libraries
// when PAD_CUDA_LIB_DIR names the folder they were built into, so the
// whole CUDA path (library discovery, every purego call, the kernels pad
// really compiles, cuDNN descriptors and workspaces, two streams, graph
// capture) runs on a machine without a GPU.
//
// The simulation is adversarial where real bugs hide: queued work runs as
// late as the rules allow, memory is checked on every use, capture follows
// CUDA's rules. csrc/padsim.h documents the contract between the pieces
// and the environment variables that steer the simulation
// (PAD_CUDASIM_SCHEDULE, PAD_CUDASIM_FAULT, ...).
//
// The simulated device names itself as simulated. Nothing here is part of
// a pad release or its container image: the libraries are built by the
// tests (ForTests) and by `make cudasim`, never by pad itself.
package cudasim

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// sources are what Build compiles and installs: the libraries' sources and
// headers (the selftests in csrc are run by hand and left out).
//
//go:embed csrc/*.h csrc/driver.cpp csrc/nvrtc.cpp csrc/cudnn.cpp csrc/cublas.cpp
var sources embed.FS

// DirEnv names the environment variable that chooses the folder the
// simulation is built into (default: the user's cache folder, under
// pad/cudasim/<hash of the sources>).
const DirEnv = "PAD_CUDASIM_DIR"

// library is one simulated library: the file it is built into, its
// sources and extra compiler arguments.
type library struct {
	file   string
	source string
	flags  []string
	driver bool // links against the simulated libcuda.so.1
}

// libraries lists what Build makes, the driver first: the others link
// against it.
var libraries = []library{
	{file: "libcuda.so.1", source: "driver.cpp"},
	{file: "libnvrtc.so.13", source: "nvrtc.cpp"},
	{file: "libcudnn.so.9", source: "cudnn.cpp", flags: []string{"-O3", "-march=native"}, driver: true},
	{file: "libcudnn.so.8", source: "cudnn.cpp", flags: []string{"-O3", "-march=native", "-DPADSIM_CUDNN_MAJOR=8"}, driver: true},
	{file: "libcublas.so.13", source: "cublas.cpp", flags: []string{"-O3", "-march=native"}, driver: true},
}

// stamp is the file written last into a finished build folder.
const stamp = "cudasim.stamp"

// Compiler returns the C++ compiler the simulation is built with:
// $PAD_CUDASIM_CXX, else g++, else c++.
func Compiler() (string, error) {
	if c := os.Getenv("PAD_CUDASIM_CXX"); c != "" {
		return exec.LookPath(c)
	}
	for _, c := range []string{"g++", "c++"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("cudasim: no C++ compiler (g++ or c++) found; install g++ or set PAD_CUDASIM_CXX")
}

// Key returns a hash of everything a build depends on: the sources, the
// compiler's version and the platform. A build folder is reused only for
// the same key.
func Key() (string, error) {
	cxx, err := Compiler()
	if err != nil {
		return "", err
	}
	ver, err := exec.Command(cxx, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("cudasim: %s --version: %v", cxx, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s/%s\x00", ver, runtime.GOOS, runtime.GOARCH)
	for _, name := range sourceNames() {
		b, err := sources.ReadFile("csrc/" + name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	for _, l := range libraries {
		fmt.Fprintf(h, "%s %s %v\x00", l.file, l.source, l.flags)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// sourceNames lists the files in csrc, sorted.
func sourceNames() []string {
	ents, _ := fs.ReadDir(sources, "csrc")
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// DefaultDir returns the folder Ensure builds into: $PAD_CUDASIM_DIR, or
// <user cache>/pad/cudasim/<key>.
func DefaultDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return filepath.Abs(d)
	}
	key, err := Key()
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, "pad", "cudasim", key), nil
}

// Built reports whether dir holds a finished build.
func Built(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stamp))
	return err == nil
}

// Ensure builds the simulation into DefaultDir unless a finished build is
// there, and returns the folder. Concurrent callers (parallel test
// processes) wait for one build: the build is made in a temporary sibling
// folder, under a lock, and renamed into place.
func Ensure() (string, error) {
	dir, err := DefaultDir()
	if err != nil {
		return "", err
	}
	if Built(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("cudasim: %v", err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if Built(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".building-")
	if err != nil {
		return "", fmt.Errorf("cudasim: %v", err)
	}
	defer os.RemoveAll(tmp)
	if err := Build(tmp); err != nil {
		return "", err
	}
	os.RemoveAll(dir) // an unfinished folder of an earlier, killed build
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("cudasim: %v", err)
	}
	return dir, nil
}

// Build compiles every simulated library into dir (which must exist) and
// copies the headers NVRTC's simulation compiles kernels with into
// dir/include. It writes the stamp file last.
func Build(dir string) error {
	cxx, err := Compiler()
	if err != nil {
		return err
	}
	src, err := os.MkdirTemp("", "pad-cudasim-src-")
	if err != nil {
		return fmt.Errorf("cudasim: %v", err)
	}
	defer os.RemoveAll(src)
	inc := filepath.Join(dir, "include")
	if err := os.MkdirAll(inc, 0o755); err != nil {
		return fmt.Errorf("cudasim: %v", err)
	}
	for _, name := range sourceNames() {
		b, _ := sources.ReadFile("csrc/" + name)
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return fmt.Errorf("cudasim: %v", err)
		}
		if strings.HasSuffix(name, ".h") {
			if err := os.WriteFile(filepath.Join(inc, name), b, 0o644); err != nil {
				return fmt.Errorf("cudasim: %v", err)
			}
		}
	}
	compile := func(l library) error {
		args := []string{"-std=c++20", "-O2", "-g", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden",
			"-Wall", "-Wno-unknown-pragmas", "-Wl,-soname," + l.file, "-Wl,--no-undefined", "-I", src}
		args = append(args, l.flags...)
		args = append(args, filepath.Join(src, l.source), "-o", filepath.Join(dir, l.file))
		if l.driver {
			args = append(args, "-L"+dir, "-l:libcuda.so.1", "-Wl,-rpath,$ORIGIN")
		}
		args = append(args, "-ldl")
		out, err := exec.Command(cxx, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("cudasim: compiling %s into %s failed (%v):\n%s", l.source, l.file, err, out)
		}
		return nil
	}
	if err := compile(libraries[0]); err != nil {
		return err
	}
	// The rest in parallel, as many at a time as there are cores.
	var wg sync.WaitGroup
	errs := make([]error, len(libraries))
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	for i, l := range libraries[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i+1] = compile(l)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, stamp), []byte("pad cudasim\n"), 0o644)
}
