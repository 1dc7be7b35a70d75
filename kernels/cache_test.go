package kernels

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// TestWriteCache checks that a CUBIN is stored (and replaced) whole, with
// no temporary file left, and that an unwritable cache is quietly skipped.
func TestWriteCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pad", "kernels")
	for _, data := range [][]byte{bytes.Repeat([]byte{1, 2, 3}, 5000), []byte("second")} {
		writeCache(dir, "k.cubin", data)
		got, err := os.ReadFile(filepath.Join(dir, "k.cubin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("cache holds %d bytes, want %d", len(got), len(data))
		}
		testkit.OnlyFiles(t, dir, "k.cubin") // no temporary file left
	}
	// A file where the folder should be: nothing is written, no panic.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeCache(filepath.Join(blocked, "sub"), "k.cubin", []byte("x"))
}
