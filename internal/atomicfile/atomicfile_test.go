package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// checkFile fails unless path holds content with the permission bits perm.
func checkFile(t *testing.T, path string, content []byte, perm os.FileMode) {
	t.Helper()
	if got := testkit.ReadFile(t, path); !bytes.Equal(got, content) {
		t.Fatalf("%s holds %d bytes %.20q, want %d bytes %.20q", path, len(got), got, len(content), content)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != perm {
		t.Fatalf("%s has mode %v, want %v", path, m, perm)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("old"), 0o600)
	// KeepMode keeps the replaced file's 0600.
	if err := WriteFile(path, []byte("new content"), KeepMode); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("new content"), 0o600)
	// An explicit mode replaces it.
	if err := WriteFile(path, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("x"), 0o640)
	testkit.OnlyFiles(t, dir, "f.json")
}

func TestKeepModeNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, nil, KeepMode); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, nil, DefaultPerm)
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteFile("rel", []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "rel"), []byte("r"), 0o644)
	testkit.OnlyFiles(t, dir, "rel")
}

// TestFailedWrites injects a failure at every step before the rename: the
// old file must stay byte for byte and mode for mode, and no temporary
// file may remain.
func TestFailedWrites(t *testing.T) {
	old := bytes.Repeat([]byte("old content\n"), 1000)
	fresh := bytes.Repeat([]byte("NEW CONTENT\n"), 3000)
	boom := errors.New("injected")
	// setup, if any, swaps in a failing operation and returns its undo.
	type failCase struct {
		name  string
		fill  func(w io.Writer) error
		setup func() func()
	}
	var cases []failCase
	for _, n := range []int{0, 7, 4096, len(fresh) / 2, len(fresh) - 1} {
		cases = append(cases, failCase{
			name: "disk full after " + strconv.Itoa(n) + " bytes",
			fill: func(w io.Writer) error {
				_, err := (&testkit.FailAfter{W: w, N: n}).Write(fresh)
				return err
			},
		})
	}
	whole := func(w io.Writer) error { _, err := w.Write(fresh); return err }
	cases = append(cases,
		failCase{"fill fails", func(w io.Writer) error { w.Write(fresh[:100]); return boom }, nil},
		failCase{"fsync fails", whole, func() func() {
			syncFile = func(*os.File) error { return boom }
			return func() { syncFile = (*os.File).Sync }
		}},
		failCase{"rename fails", whole, func() func() {
			rename = func(string, string) error { return boom }
			return func() { rename = os.Rename }
		}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "checkpoint")
			if err := WriteFile(path, old, 0o640); err != nil {
				t.Fatal(err)
			}
			if c.setup != nil {
				defer c.setup()()
			}
			err := Write(path, KeepMode, c.fill)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if !errors.Is(err, boom) && !errors.Is(err, testkit.ErrDiskFull) {
				t.Errorf("error %q does not wrap the cause", err)
			}
			checkFile(t, path, old, 0o640) // the old file, untouched
			testkit.OnlyFiles(t, dir, "checkpoint")
		})
	}
}

// TestFolderSync checks that the folder is synced after the rename, and
// that a failing folder sync is reported with the new file in place.
func TestFolderSync(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	var synced []string
	syncDir = func(d string) error { synced = append(synced, d); return nil }
	defer func() { syncDir = syncFolder }()
	if err := WriteFile(path, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || filepath.Clean(synced[0]) != dir {
		t.Fatalf("synced folders %q, want [%s]", synced, dir)
	}
	syncDir = func(string) error { return syscall.EIO }
	err := WriteFile(path, []byte("b"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("error %v, want EIO", err)
	}
	checkFile(t, path, []byte("b"), 0o644) // renamed before the failing sync
	testkit.OnlyFiles(t, dir, "f")
}

func TestUnwritableFolder(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "no", "such", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
	if err := WriteFile(dir+string(filepath.Separator), []byte("x"), 0o644); err == nil {
		t.Fatal("a path naming a folder succeeded")
	}
	// A folder in the way of the rename: the temporary file must go.
	target := filepath.Join(dir, "d")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "inside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o644); err == nil {
		t.Fatal("renaming over a non-empty folder succeeded")
	}
	testkit.OnlyFiles(t, dir, "d")
}

func TestSyncFolderReal(t *testing.T) {
	if err := syncFolder(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := syncFolder(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("syncing a missing folder succeeded")
	}
}
