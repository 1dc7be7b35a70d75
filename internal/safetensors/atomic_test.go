package safetensors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

func bigWriter(t *testing.T, fill float32) *Writer {
	t.Helper()
	w := NewWriter()
	data := make([]float32, 1<<19) // 2 MiB: more than the 1 MiB write buffer
	for i := range data {
		data[i] = fill
	}
	if err := w.AddF32("big", []int{len(data)}, data); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")

	old := bigWriter(t, 1)
	if err := WriteFileAtomic(path, old); err != nil {
		t.Fatal(err)
	}
	oldBytes := testkit.ReadFile(t, path)
	if want := mustBytes(t, old); !bytes.Equal(oldBytes, want) {
		t.Fatal("written file differs from Writer.Bytes")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode = %v, want 0644", st.Mode().Perm())
	}
	testkit.OnlyFiles(t, dir, "ckpt.safetensors")

	// A write that fails midway leaves the old file intact and no temp file.
	for _, n := range []int{0, 5, 100, 1 << 20, 1<<21 - 10} {
		err := WriteFileAtomicThrough(path, bigWriter(t, 2), func(w io.Writer) io.Writer { return &testkit.FailAfter{W: w, N: n} })
		if !errors.Is(err, testkit.ErrDiskFull) || !strings.Contains(err.Error(), "writing "+path) {
			t.Errorf("failing after %d bytes: err = %v", n, err)
		}
		if got := testkit.ReadFile(t, path); !bytes.Equal(got, oldBytes) {
			t.Errorf("failing after %d bytes: old file changed", n)
		}
		testkit.OnlyFiles(t, dir, "ckpt.safetensors")
	}

	// A writer whose header cannot be built fails before touching the disk.
	bad := NewWriter()
	bad.SetMetadata("k", "\xff")
	if err := WriteFileAtomic(path, bad); err == nil {
		t.Error("invalid metadata: no error")
	}
	testkit.OnlyFiles(t, dir, "ckpt.safetensors")

	// Replacing keeps the old file's permissions.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, bigWriter(t, 3)); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Tensors["big"].F32(); v[len(v)-1] != 3 {
		t.Error("replacement not written")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode = %v, want 0600", st.Mode().Perm())
	}
	testkit.OnlyFiles(t, dir, "ckpt.safetensors")
}

func TestWriteFileAtomicRenameFails(t *testing.T) {
	// The target is a non-empty directory: the rename fails, the directory
	// survives and the temp file is removed.
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, bigWriter(t, 1)); err == nil {
		t.Fatal("rename over a directory: no error")
	}
	testkit.OnlyFiles(t, dir, "out")
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Error("target directory damaged")
	}

	// A missing directory fails at once.
	if err := WriteFileAtomic(filepath.Join(dir, "no", "such", "f"), NewWriter()); err == nil {
		t.Error("missing directory: no error")
	}
}
