package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestClangCUDASyntax runs clang's CUDA front end over every family with a
// declarations-only shim of the CUDA built-ins the kernels use
// (testdata/clang_shim.h), so that errors only a CUDA compiler reports (a
// device function calling a host one, a missing __device__, CUDA-only
// syntax) show up without NVRTC: the simulated NVRTC compiles the kernels
// as host C++, which accepts them.
func TestClangCUDASyntax(t *testing.T) {
	clang, err := exec.LookPath("clang++-14")
	if err != nil {
		t.Skip("clang++-14 not found")
	}
	shim, err := filepath.Abs(filepath.Join("testdata", "clang_shim.h"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, fam := range Families() {
		src, err := Source(fam)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fam+".cu")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(clang, "-x", "cuda", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
			"--cuda-device-only", "-fsyntax-only", "-std=c++17", "-Wall", "-Wno-unknown-cuda-version",
			"-include", shim, path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s.cu: clang: %v\n%s", fam, err, out)
		} else if len(out) > 0 {
			t.Logf("%s.cu: clang says:\n%s", fam, out)
		}
	}
}
