package cu

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The search order, as the CUDA Python ecosystem finds NVIDIA's libraries:
// the override, CUDA_HOME/CUDA_PATH, the virtualenv's and python3's pip
// wheels, conda, the toolkits under /usr/local, the loader's path. The
// driver is looked for in the override and on the loader's path only.
func TestSearchOrder(t *testing.T) {
	root := t.TempDir()
	mk := func(parts ...string) string {
		d := filepath.Join(append([]string{root}, parts...)...)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	over1, over2 := mk("over1"), mk("over2")
	home := mk("cuda-home")
	venv := mk("venv")
	cudnnWheel := mk("venv", "lib", "python3.12", "site-packages", "nvidia", "cudnn", "lib")
	cu13Wheel := mk("venv", "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib")
	conda := mk("conda")
	t.Setenv(LibDirEnv, over1+string(os.PathListSeparator)+over2)
	t.Setenv("CUDA_HOME", home)
	t.Setenv("CUDA_PATH", "")
	t.Setenv("VIRTUAL_ENV", venv)
	t.Setenv("CONDA_PREFIX", conda)

	pl := dnnSpec.places()
	var froms []string
	for _, p := range pl {
		froms = append(froms, p.from)
	}
	want := []string{FromOverride, FromCUDAHome, FromVenv, FromPython, FromConda, FromToolkit, FromLoader}
	if strings.Join(froms, ",") != strings.Join(want, ",") {
		t.Fatalf("places %v, want %v", froms, want)
	}
	if d := pl[0].dirs(); len(d) != 2 || d[0] != over1 || d[1] != over2 {
		t.Errorf("override folders %v", d)
	}
	if d := pl[1].dirs(); len(d) < 2 || d[0] != filepath.Join(home, "lib64") {
		t.Errorf("CUDA_HOME folders %v", d)
	}
	if d := pl[2].dirs(); len(d) != 2 || d[0] != cu13Wheel || d[1] != cudnnWheel {
		t.Errorf("virtualenv wheel folders %v, want [%s %s]", d, cu13Wheel, cudnnWheel)
	}
	if d := pl[4].dirs(); len(d) != 1 || d[0] != filepath.Join(conda, "lib") {
		t.Errorf("conda folders %v", d)
	}
	if d := pl[5].dirs(); len(d) == 0 || d[0] != "/usr/local/cuda/lib64" {
		t.Errorf("toolkit folders %v", d)
	}
	if d := pl[6].dirs(); len(d) != 0 {
		t.Errorf("the loader's place has folders %v", d)
	}

	drvPlaces := driverSpec.places()
	if len(drvPlaces) != 2 || drvPlaces[0].from != FromOverride || drvPlaces[1].from != FromLoader {
		t.Errorf("the driver is searched in %+v, want the override and the loader's path only", drvPlaces)
	}
	t.Setenv(LibDirEnv, "")
	if p := driverSpec.places(); len(p) != 1 || p[0].from != FromLoader {
		t.Errorf("without the override the driver is searched in %+v", p)
	}
}

func TestToolkitVersionsNewestFirst(t *testing.T) {
	in := []string{"/usr/local/cuda-11.8", "/usr/local/cuda-12.9", "/usr/local/cuda-12.10", "/usr/local/cuda-13.0"}
	for i := range in {
		for j := range in {
			if (i < j) != versionLess(in[i], in[j]) {
				t.Errorf("versionLess(%s, %s) = %v", in[i], in[j], versionLess(in[i], in[j]))
			}
		}
	}
}

// A library found nowhere names every place looked in.
func TestMissingLibraryListsWhereItLooked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LibDirEnv, dir)
	t.Setenv("CUDA_HOME", filepath.Join(dir, "no-such-folder"))
	spec := libSpec{lib: "test", sonames: []string{"libpad-no-such.so.3"}, missing: "libpad-no-such.so.3 not found",
		install: "install nothing", sentinel: ErrNoLibrary}
	_, err := spec.load(nil)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("got %v", err)
	}
	if len(le.Searched) < 3 || le.Searched[0] != FromOverride+": "+dir || le.Searched[len(le.Searched)-1] != FromLoader {
		t.Errorf("searched %q", le.Searched)
	}
	for _, s := range le.Searched {
		if strings.HasSuffix(s, "/no-such-folder") {
			t.Errorf("a folder that does not exist is listed: %q", s)
		}
	}
	if len(le.Tried) != 1 || le.Tried[0] != "libpad-no-such.so.3" {
		t.Errorf("tried %q: only files that exist, and the bare soname, go to the loader", le.Tried)
	}
}

func TestDecodeDNNVersion(t *testing.T) {
	for _, c := range []struct{ v, ma, mi, pa int }{
		{91400, 9, 14, 0}, {90100, 9, 1, 0}, {8907, 8, 9, 7}, {8600, 8, 6, 0}, {7605, 7, 6, 5},
	} {
		if ma, mi, pa := DecodeDNNVersion(c.v); ma != c.ma || mi != c.mi || pa != c.pa {
			t.Errorf("DecodeDNNVersion(%d) = %d.%d.%d, want %d.%d.%d", c.v, ma, mi, pa, c.ma, c.mi, c.pa)
		}
	}
}

func TestDriverRelease(t *testing.T) {
	txt := "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct  2 10:11:12 UTC 2025\nGCC version:  gcc version 13.3.0\n"
	if got := parseDriverRelease(txt); got != "580.159.04" {
		t.Errorf("got %q", got)
	}
	txt = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.309.01  Release Build\n"
	if got := parseDriverRelease(txt); got != "535.309.01" {
		t.Errorf("open module: got %q", got)
	}
	if got := parseDriverRelease(""); got != "" {
		t.Errorf("empty: got %q", got)
	}
}

// systemNVRTC returns the folder of a real libnvrtc.so.11.2 and its
// builtins (Debian's libnvrtc11.2), or skips.
func systemNVRTC(t *testing.T) string {
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"} {
		if isFile(filepath.Join(d, "libnvrtc.so.11.2")) && pickLib(d, "libnvrtc-builtins.so.*") != "" {
			return d
		}
	}
	if os.Getenv("PAD_REQUIRE_CUDA_LIBS") == "1" {
		t.Fatal("libnvrtc.so.11.2 and its builtins are not installed (Debian: libnvrtc11.2)")
	}
	t.Skip("no libnvrtc.so.11.2 here (Debian: libnvrtc11.2)")
	return ""
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// NVRTC in a pip wheel's folder (off the loader's path): it is found
// there, ahead of the system's, and its builtins are opened from the same
// folder first (NVRTC opens them by bare name when it compiles, and finds
// them already loaded).
func TestNVRTCFromAWheelFolder(t *testing.T) {
	if !platformSupported {
		t.Skip("no dynamic loader on this platform")
	}
	sys := systemNVRTC(t)
	// The package's own NVRTC is loaded first, from the system, so the copy
	// below (same soname) does not become the one later tests use.
	LoadNVRTC()
	venv := t.TempDir()
	lib := filepath.Join(venv, "lib", "python3.11", "site-packages", "nvidia", "cuda_nvrtc", "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	builtins := pickLib(sys, "libnvrtc-builtins.so.*")
	copyFile(t, filepath.Join(sys, "libnvrtc.so.11.2"), filepath.Join(lib, "libnvrtc.so.11.2"))
	copyFile(t, builtins, filepath.Join(lib, filepath.Base(builtins)))
	t.Setenv(LibDirEnv, "")
	t.Setenv("CUDA_HOME", "")
	t.Setenv("CUDA_PATH", "")
	t.Setenv("VIRTUAL_ENV", venv)

	spec := nvrtcSpec
	var version uintptr
	got, err := spec.load([]symbol{need(&version, "nvrtcVersion")})
	if err != nil {
		t.Fatal(err)
	}
	if got.from != FromVenv || got.path != filepath.Join(lib, "libnvrtc.so.11.2") {
		t.Fatalf("loaded %s from %q, want the wheel's copy from %q", got.path, got.from, FromVenv)
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	if !strings.Contains(string(maps), filepath.Join(lib, filepath.Base(builtins))) {
		t.Errorf("the builtins were not opened from the wheel's folder")
	}
	if p := mappedFile(version); p != got.path {
		t.Errorf("nvrtcVersion is mapped from %q, want %q", p, got.path)
	}
	t.Logf("loaded %s (%s); tried %q", got.path, got.from, got.tried)
}

// Libraries reports each library with its place or its error.
func TestLibrariesReport(t *testing.T) {
	libs := Libraries()
	names := []string{"cuda", "nvrtc", "cublas", "cudnn"}
	if len(libs) != len(names) {
		t.Fatalf("%d libraries", len(libs))
	}
	for i, l := range libs {
		if l.Lib != names[i] {
			t.Errorf("library %d is %q, want %q", i, l.Lib, names[i])
		}
		if (l.Err == nil) == (l.Path == "") {
			t.Errorf("%s: path %q with error %v", l.Lib, l.Path, l.Err)
		}
		if l.Err == nil && (l.From == "" || l.Version == "" || !filepath.IsAbs(l.Path)) {
			t.Errorf("%s loaded from %s without its place (%q) or version (%q)", l.Lib, l.Path, l.From, l.Version)
		}
		if l.Err != nil && !strings.HasPrefix(l.Err.Error(), l.Lib+": ") {
			t.Errorf("%s: error %q does not name the library", l.Lib, l.Err)
		}
		t.Logf("%-6s %-10s %s (%s) %v", l.Lib, l.Version, l.Path, l.From, l.Err)
	}
}
