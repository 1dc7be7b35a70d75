// Package kernels holds pad's custom CUDA kernels — one family per .cu
// file, sharing common.cuh — and their typed Go launchers. The sources are
// embedded in the binary, compiled with NVRTC for the device's
// architecture at start-up and cached on disk, so a second start loads
// CUBIN directly.
//
// Every launcher checks its arguments (sizes, pointers) before launching
// and returns an error naming the kernel and the bad argument; none of
// them allocates.
package kernels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pad-dreaming/pad/internal/atomicfile"
	"github.com/pad-dreaming/pad/internal/cu"
)

//go:embed common.cuh *.cu
var sources embed.FS

// Families lists the kernel families (the .cu files), sorted.
func Families() []string {
	entries, _ := sources.ReadDir(".")
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cu") {
			out = append(out, strings.TrimSuffix(e.Name(), ".cu"))
		}
	}
	sort.Strings(out)
	return out
}

// Source returns the full source NVRTC compiles for a family: common.cuh,
// then the family's file, with #line markers so messages point at the
// right file.
func Source(family string) (string, error) {
	common, err := sources.ReadFile("common.cuh")
	if err != nil {
		return "", err
	}
	body, err := sources.ReadFile(family + ".cu")
	if err != nil {
		return "", fmt.Errorf("kernels: no family %q", family)
	}
	return "#line 1 \"common.cuh\"\n" + string(common) + "\n#line 1 \"" + family + ".cu\"\n" + string(body), nil
}

// Options are the NVRTC options besides the architecture. --fmad=false
// keeps a·b + c as two roundings, as the CPU backend computes it; the
// kernels are memory-bound, so it costs nothing measurable.
var Options = []string{"--std=c++17", "--fmad=false"}

// Kernels is the loaded set of kernels of one device.
type Kernels struct {
	mods []*cu.Module
	fns  map[string]cu.Function
	args cu.KernelArgs
	// launchFn launches a kernel; tests replace it to record launches
	// without a GPU.
	launchFn func(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error
	// Compiled says, per family, whether it was compiled now (true) or
	// loaded from the cache (false).
	Compiled map[string]bool
}

// Launcher launches one kernel: the function, its grid and block, the
// stream and the argument slots. It may keep a copy of *a, not a itself.
type Launcher func(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error

// SetLauncher routes every launch through l (nil restores the driver's
// launch): the CUDA backend records launches this way to replay them as a
// graph.
func (k *Kernels) SetLauncher(l Launcher) {
	if l == nil {
		l = launchArgs
	}
	k.launchFn = l
}

// Load compiles (or loads from cacheDir, if not empty) every family for a
// device of compute capability major.minor and loads the modules into the
// current context.
func Load(major, minor int, cacheDir string) (_ *Kernels, err error) {
	vmaj, vmin, err := cu.NVRTCVersion()
	if err != nil {
		return nil, err
	}
	opts := append([]string{cu.ArchFlag(major, minor)}, Options...)
	k := &Kernels{fns: map[string]cu.Function{}, Compiled: map[string]bool{}, launchFn: launchArgs}
	defer func() {
		if err != nil {
			k.Close() // the modules loaded before the failure
		}
	}()
	for _, fam := range Families() {
		src, err := Source(fam)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00nvrtc %d.%d", src, strings.Join(opts, " "), vmaj, vmin)))
		key := fmt.Sprintf("%s-sm%d%d-%s.cubin", fam, major, minor, hex.EncodeToString(h[:8]))
		var cubin []byte
		if cacheDir != "" {
			cubin, _ = os.ReadFile(filepath.Join(cacheDir, key))
		}
		if cubin == nil {
			// Warnings are not errors: the compile log matters only when
			// compilation fails, and then it is in err.
			cubin, _, err = cu.Compile(src, fam+".cu", opts)
			if err != nil {
				return nil, fmt.Errorf("kernels: compiling %s.cu: %w", fam, err)
			}
			k.Compiled[fam] = true
			if cacheDir != "" {
				writeCache(cacheDir, key, cubin)
			}
		}
		mod, err := cu.ModuleLoadData(cubin)
		if err != nil {
			return nil, fmt.Errorf("kernels: loading %s: %w", fam, err)
		}
		k.mods = append(k.mods, mod)
		for _, name := range kernelNames(src) {
			f, err := mod.Function(name)
			if err != nil {
				return nil, fmt.Errorf("kernels: %s.cu: %w", fam, err)
			}
			k.fns[name] = f
		}
	}
	return k, nil
}

func launchArgs(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
	return cu.LaunchKernelArgs(f, grid, block, 0, s, a)
}

// writeCache stores a CUBIN atomically (internal/atomicfile: synced,
// renamed, folder synced); a cache that cannot be written is not an error
// (the kernels are compiled again next time).
func writeCache(dir, name string, data []byte) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	_ = atomicfile.WriteFile(filepath.Join(dir, name), data, 0o644)
}

// kernelNames lists the extern "C" __global__ functions of a source.
func kernelNames(src string) []string {
	var out []string
	const marker = `extern "C" __global__ void `
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, marker) {
			continue
		}
		rest := line[len(marker):]
		if i := strings.IndexByte(rest, '('); i > 0 {
			out = append(out, rest[:i])
		}
	}
	return out
}

// Names lists the loaded kernels.
func (k *Kernels) Names() []string {
	out := make([]string, 0, len(k.fns))
	for n := range k.fns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Close unloads the modules.
func (k *Kernels) Close() error {
	var first error
	for _, m := range k.mods {
		if err := m.Unload(); err != nil && first == nil {
			first = err
		}
	}
	k.mods = nil
	return first
}

// DefaultCacheDir is where compiled kernels are kept: $XDG_CACHE_HOME/pad
// (or ~/.cache/pad); "" if there is no such directory.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "pad", "kernels")
}
