package cu

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LibDirEnv names the environment variable that overrides where the NVIDIA
// libraries are looked for: one folder, or several separated by colons,
// searched before every other place.
const LibDirEnv = "PAD_CUDA_LIB_DIR"

// Where a library was found (LibInfo.From), in the order the places are
// searched.
const (
	FromOverride = LibDirEnv               // the folders named by PAD_CUDA_LIB_DIR
	FromCUDAHome = "CUDA_HOME"             // $CUDA_HOME or $CUDA_PATH: a toolkit the user named
	FromVenv     = "virtualenv"            // $VIRTUAL_ENV's site-packages/nvidia/*/lib (pip wheels)
	FromPython   = "python3 site-packages" // python3's own site-packages/nvidia/*/lib (pip wheels)
	FromConda    = "conda"                 // $CONDA_PREFIX/lib
	FromToolkit  = "CUDA toolkit"          // /usr/local/cuda*/lib64
	FromLoader   = "loader path"           // the dynamic loader's search path (ldconfig, LD_LIBRARY_PATH)
	fromTest     = "test"                  // a path given by a test
)

// libSpec describes one library: its sonames, where to look and what to
// tell the user when it is not there.
type libSpec struct {
	lib     string   // "cuda", "nvrtc", "cublas", "cudnn": the prefix of messages
	sonames []string // newest major version first
	// system marks the driver: it is looked for only in the override
	// folders and on the loader's path (never in a toolkit, whose lib64/stubs
	// holds a stub that cannot run anything, nor in a Python environment).
	system bool
	// deps are file-name patterns of libraries that the library opens by
	// bare name at run time; when the library comes from a folder that is
	// not on the loader's path they are opened first (RTLD_GLOBAL), from the
	// same folder or, for a pip wheel, a sibling nvidia/*/lib folder, so the
	// loader finds them already loaded. NVRTC needs its builtins this way,
	// or every compile fails with NVRTC_ERROR_BUILTIN_OPERATION_FAILURE.
	deps     []string
	missing  string // what is missing, e.g. "libcudnn.so.9 (or .8) not found"
	install  string // what to do, e.g. "install cuDNN 9 (...)"
	sentinel error  // ErrNoDriver or ErrNoLibrary

	// paths, when set (tests), replaces the search: each entry is tried as
	// it is.
	paths func() []string
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

// place is one group of folders searched together: its name (a From
// constant) and the folders, in order, listed only when the search gets
// there (python3's needs a subprocess). The loader's path has no folders.
type place struct {
	from string
	dirs func() []string
}

func folders(d ...string) func() []string { return func() []string { return d } }

// places returns where a library is searched for, in order:
// PAD_CUDA_LIB_DIR, CUDA_HOME/CUDA_PATH, the active virtualenv's and
// python3's pip wheels (site-packages/nvidia/*/lib), CONDA_PREFIX/lib, the
// CUDA toolkits under /usr/local, then the loader's own path. The driver
// (system) is looked for in the override folders and on the loader's path
// only.
func (s *libSpec) places() []place {
	var out []place
	if v := os.Getenv(LibDirEnv); v != "" {
		out = append(out, place{FromOverride, folders(filepath.SplitList(v)...)})
	}
	if !s.system {
		for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
			if d := os.Getenv(env); d != "" {
				out = append(out, place{FromCUDAHome, folders(toolkitLibDirs(d)...)})
			}
		}
		if v := os.Getenv("VIRTUAL_ENV"); v != "" {
			out = append(out, place{FromVenv, func() []string {
				sp, _ := filepath.Glob(filepath.Join(v, "lib", "python3*", "site-packages"))
				return wheelDirs(sp)
			}})
		}
		out = append(out, place{FromPython, func() []string { return wheelDirs(pythonSitePackages()) }})
		if v := os.Getenv("CONDA_PREFIX"); v != "" {
			out = append(out, place{FromConda, folders(filepath.Join(v, "lib"))})
		}
		out = append(out, place{FromToolkit, func() []string {
			var tk []string
			for _, d := range cudaToolkits() {
				tk = append(tk, toolkitLibDirs(d)...)
			}
			return tk
		}})
	}
	return append(out, place{FromLoader, folders()})
}

// toolkitLibDirs lists the library folders of a CUDA toolkit install.
func toolkitLibDirs(root string) []string {
	arch := "x86_64-linux"
	if runtime.GOARCH == "arm64" {
		arch = "sbsa-linux"
	}
	return []string{filepath.Join(root, "lib64"), filepath.Join(root, "lib"), filepath.Join(root, "targets", arch, "lib")}
}

// cudaToolkits lists /usr/local/cuda, then /usr/local/cuda-X.Y, newest
// first.
func cudaToolkits() []string {
	out := []string{"/usr/local/cuda"}
	vers, _ := filepath.Glob("/usr/local/cuda-*")
	sort.Slice(vers, func(i, j int) bool { return versionLess(vers[j], vers[i]) })
	return append(out, vers...)
}

// versionLess orders names that end in dotted numbers (cuda-12.8 before
// cuda-13.0, cuda-12.10 after cuda-12.9).
func versionLess(a, b string) bool {
	pa, pb := splitNumbers(a), splitNumbers(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

func splitNumbers(s string) []int {
	var out []int
	n, in := 0, false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n, in = n*10+int(r-'0'), true
			continue
		}
		if in {
			out = append(out, n)
		}
		n, in = 0, false
	}
	if in {
		out = append(out, n)
	}
	return out
}

// wheelDirs lists the library folders of NVIDIA's pip wheels in the given
// site-packages folders: nvidia/<package>/lib (nvidia-cudnn-cu13 installs
// nvidia/cudnn/lib, nvidia-cublas nvidia/cublas/lib or nvidia/cu13/lib).
func wheelDirs(sitePackages []string) []string {
	var out []string
	for _, sp := range sitePackages {
		dirs, _ := filepath.Glob(filepath.Join(sp, "nvidia", "*", "lib"))
		sort.Strings(dirs)
		out = append(out, dirs...)
	}
	return out
}

var pySite struct {
	once sync.Once
	dirs []string
}

// pythonSitePackages asks python3 (if there is one on PATH) for its
// site-packages folders, once, with a short time limit.
func pythonSitePackages() []string {
	pySite.once.Do(func() {
		py, err := exec.LookPath("python3")
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		const prog = "import site\nfor d in site.getsitepackages() + [site.getusersitepackages()]: print(d)"
		out, err := exec.CommandContext(ctx, py, "-s", "-c", prog).Output()
		if err != nil {
			return
		}
		// -s drops the user folder from sys.path, not from what site
		// reports; the loop prints both.
		for _, line := range strings.Split(string(out), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				pySite.dirs = append(pySite.dirs, line)
			}
		}
	})
	return pySite.dirs
}

// absent recognises the loader's message for a candidate that is simply
// not there, which is not worth repeating to the user. A message about
// another file (a missing dependency of a library that exists) is kept.
func absent(name, msg string) bool {
	return strings.HasPrefix(msg, name+": cannot open shared object file")
}

// loaded is what load found.
type loaded struct {
	path     string   // the file loaded (resolved for a bare soname where possible)
	from     string   // a From constant
	tried    []string // every name handed to the loader
	searched []string // every place looked in, "from: folder"
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// load opens the first loadable candidate and resolves syms. The sentence of
// its error says what is missing and what to install.
func (s *libSpec) load(syms []symbol) (loaded, error) {
	var res loaded
	sentence := func(what string) string {
		return s.lib + ": " + what + ": " + s.install + ", or run with --device cpu"
	}
	fail := func(detail string) error {
		return &LoadError{Lib: s.lib, Tried: res.tried, Searched: res.searched, Detail: detail, sentence: sentence(s.missing), kind: s.sentinel}
	}
	if !platformSupported {
		_, err := dlopen(s.sonames[0])
		res.tried = []string{s.sonames[0]}
		return res, fail(err.Error())
	}
	var handle uintptr
	var detail string
	try := func(name, from string, dir string, group []string) bool {
		if dir != "" {
			s.preload(dir, group)
		}
		res.tried = append(res.tried, name)
		h, err := dlopen(name)
		if err == nil && h != 0 {
			handle, res.path, res.from = h, name, from
			return true
		}
		if err != nil && detail == "" && !absent(name, err.Error()) {
			detail = strings.TrimSpace(err.Error())
		}
		return false
	}
	found := false
	if s.paths != nil {
		for _, p := range s.paths() {
			if found = try(p, fromTest, "", nil); found {
				break
			}
		}
	} else {
	search:
		for _, pl := range s.places() {
			if pl.from == FromLoader {
				res.searched = append(res.searched, FromLoader)
				for _, so := range s.sonames {
					if try(so, FromLoader, "", nil) {
						found = true
						break search
					}
				}
				continue
			}
			seen := false
			dirs := pl.dirs()
			for _, d := range dirs {
				if st, err := os.Stat(d); err != nil || !st.IsDir() {
					continue
				}
				seen = true
				res.searched = append(res.searched, pl.from+": "+d)
				for _, so := range s.sonames {
					p := filepath.Join(d, so)
					if !isFile(p) {
						continue
					}
					if try(p, pl.from, d, dirs) {
						found = true
						break search
					}
				}
			}
			if !seen {
				res.searched = append(res.searched, pl.from+": none")
			}
		}
	}
	if !found {
		return res, fail(detail)
	}
	for _, sy := range syms {
		for _, name := range sy.names {
			if p, err := dlsym(handle, name); err == nil && p != 0 {
				*sy.dst = p
				break
			}
		}
		if res.from == FromLoader && *sy.dst != 0 {
			// Name the file the loader chose: the one whose mapping holds
			// this function.
			if p := mappedFile(*sy.dst); p != "" {
				res.path = p
			}
		}
		if *sy.dst == 0 && !sy.optional {
			return res, &LoadError{Lib: s.lib, Tried: res.tried, Searched: res.searched, Loaded: res.path, Missing: sy.names[0],
				sentence: sentence(res.path + " does not export " + sy.names[0] + " (too old?)"), kind: s.sentinel}
		}
	}
	return res, nil
}

// preload opens the libraries s.deps names from dir, else from the other
// folders of its group (the sibling nvidia/*/lib folders of a pip
// install). Failures are ignored: the library itself reports what is
// missing when it needs it.
func (s *libSpec) preload(dir string, group []string) {
	for _, pat := range s.deps {
		dirs := append([]string{dir}, group...)
		for _, d := range dirs {
			if p := pickLib(d, pat); p != "" {
				dlopen(p)
				break
			}
		}
	}
}

// pickLib returns the file in dir matching pat with the shortest name (the
// soname link rather than the fully versioned file), or "".
func pickLib(dir, pat string) string {
	m, _ := filepath.Glob(filepath.Join(dir, pat))
	best := ""
	for _, p := range m {
		if isFile(p) && (best == "" || len(p) < len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// mappedFile returns the file mapped at addr in this process, read off
// /proc/self/maps, or "".
func mappedFile(addr uintptr) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// "7f0c1a200000-7f0c1a400000 r-xp 00000000 fd:01 1234  /usr/lib/libx.so"
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		span, _, _ := strings.Cut(line, " ")
		lo, hi, ok := strings.Cut(span, "-")
		if i < 0 || !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uint64(addr) >= l && uint64(addr) < h {
			return line[i:]
		}
	}
	return ""
}
