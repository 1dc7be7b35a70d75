package gemm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// On arm64 the pure-Go kernel relies on the compiler to fuse a·b + c into
// one FMADDS (fma_fused.go). This test builds the package for arm64 and
// reads the machine code: the k loop must have its 16 multiply-adds fused,
// and store4 its 4, with no separate addition left.
func TestArm64KernelFuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package for arm64")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "gemm.a")
	build := exec.Command(goBin, "build", "-o", out, ".")
	build.Env = append(os.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, b)
	}
	count := func(fn string) map[string]int {
		b, err := exec.Command(goBin, "tool", "objdump", "-s", "gemm\\."+fn+"$", out).CombinedOutput()
		if err != nil {
			t.Fatalf("objdump %s: %v\n%s", fn, err, b)
		}
		n := map[string]int{}
		for _, m := range regexp.MustCompile(`\b(FMADDS|FADDS|FMULS)\b`).FindAllString(string(b), -1) {
			n[m]++
		}
		return n
	}
	if n := count("kernGo4x4"); n["FMADDS"] != 16 || n["FADDS"] != 0 {
		t.Errorf("kernGo4x4 on arm64: %v, want 16 FMADDS and no FADDS", n)
	}
	if n := count("store4"); n["FMADDS"] != 4 || n["FADDS"] != 0 {
		t.Errorf("store4 on arm64: %v, want 4 FMADDS and no FADDS", n)
	}
}
