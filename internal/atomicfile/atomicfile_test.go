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

// onlyFiles fails unless dir holds exactly the names given.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("folder holds %q, want %q (a temporary file left behind?)", got, names)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("new file mode %v, want 0600", m)
	}
	if err := WriteFile(path, []byte("new content"), KeepMode); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); string(got) != "new content" {
		t.Fatalf("content %q", got)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("KeepMode gave %v, want the replaced file's 0600", m)
	}
	if err := WriteFile(path, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o640 {
		t.Fatalf("explicit mode gave %v, want 0640", m)
	}
	onlyFiles(t, dir, "f.json")
}

func TestKeepModeNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, nil, KeepMode); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != DefaultPerm {
		t.Fatalf("new file with KeepMode: %v, want %v", m, DefaultPerm)
	}
	if got := readFile(t, path); len(got) != 0 {
		t.Fatalf("content %q, want empty", got)
	}
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteFile("rel", []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "rel")); string(got) != "r" {
		t.Fatalf("content %q", got)
	}
	onlyFiles(t, dir, "rel")
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
			if got := readFile(t, path); !bytes.Equal(got, old) {
				t.Fatalf("old file changed: %d bytes", len(got))
			}
			if m := mode(t, path); m != 0o640 {
				t.Fatalf("old file mode changed to %v", m)
			}
			onlyFiles(t, dir, "checkpoint")
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
	if got := readFile(t, path); string(got) != "b" {
		t.Fatalf("content %q after the rename", got)
	}
	onlyFiles(t, dir, "f")
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
	onlyFiles(t, dir, "d")
}

func TestSyncFolderReal(t *testing.T) {
	if err := syncFolder(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := syncFolder(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("syncing a missing folder succeeded")
	}
}
