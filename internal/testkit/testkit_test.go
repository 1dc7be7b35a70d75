package testkit

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFileAndOnlyFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("bee"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".b.tmp-1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadFile(t, filepath.Join(dir, "b")); string(got) != "bee" {
		t.Fatalf("ReadFile = %q", got)
	}
	if r := record(t, func(tb testing.TB) { ReadFile(tb, filepath.Join(dir, "missing")) }); !r.failed {
		t.Error("ReadFile of a missing file did not fail")
	}

	OnlyFiles(t, dir, ".b.tmp-1", "b")
	for _, want := range [][]string{{"b"}, {".b.tmp-1", "b", "c"}, nil} {
		r := record(t, func(tb testing.TB) { OnlyFiles(tb, dir, want...) })
		if !r.failed || !strings.Contains(r.msg, ".b.tmp-1") {
			t.Errorf("OnlyFiles(%q) on a folder holding .b.tmp-1 and b: failed %v, message %q", want, r.failed, r.msg)
		}
	}
	OnlyFiles(t, t.TempDir())
	if r := record(t, func(tb testing.TB) { OnlyFiles(tb, filepath.Join(dir, "missing")) }); !r.failed {
		t.Error("OnlyFiles of a missing folder did not fail")
	}
}

func TestFirstBitDiff(t *testing.T) {
	negZero, nan := float32(math.Copysign(0, -1)), float32(math.NaN())
	for _, c := range []struct {
		a, b []float32
		want int
	}{
		{[]float32{1, 2, nan}, []float32{1, 2, nan}, -1},
		{[]float32{1, 0}, []float32{1, negZero}, 1},
		{[]float32{nan}, []float32{-nan}, 0},
		{[]float32{1, 2}, []float32{1, 2, 3}, 2},
		{nil, nil, -1},
	} {
		if got := FirstBitDiff(c.a, c.b); got != c.want {
			t.Errorf("FirstBitDiff(%v, %v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
