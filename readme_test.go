package pad

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// TestReadmePackageTable checks that the README's package table names
// every package of the repository, and nothing that is not one: the table
// is where a newcomer learns the layout, so it must follow the code.
func TestReadmePackageTable(t *testing.T) {
	readme := testkit.ReadFile(t, "README.md")
	named := map[string]bool{}
	in := false
	name := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "| package | holds |"):
			in = true
			continue
		case in && !strings.HasPrefix(line, "|"):
			in = false
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		first := strings.SplitN(strings.TrimPrefix(line, "|"), "|", 2)[0]
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			named[m[1]] = true
		}
	}
	if len(named) == 0 {
		t.Fatal("README.md has no \"| package | holds |\" table")
	}

	packages := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if path != "." && (strings.HasPrefix(base, ".") || base == "testdata" || base == "runs" || base == "bin" || base == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			if dir := filepath.ToSlash(filepath.Dir(path)); dir != "." {
				packages[dir] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, stale []string
	for p := range packages {
		if !named[p] {
			missing = append(missing, p)
		}
	}
	for p := range named {
		if !packages[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("packages missing from README.md's package table: %s", strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		t.Errorf("README.md's package table names what is not a package: %s", strings.Join(stale, ", "))
	}
}

// TestInternalIsTheGroundFloor checks the layering the README's package
// table describes: no package under internal/ imports (in its code or in
// its tests) a package of this module outside internal/. The parity
// harness and the development programs, which import what they check,
// live in tools/.
func TestInternalIsTheGroundFloor(t *testing.T) {
	const module = "github.com/pad-dreaming/pad"
	ctx := build.Default
	ctx.CgoEnabled = true // see every file, whatever this machine builds
	var checked int
	err := filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if base := d.Name(); path != "internal" && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := ctx.ImportDir(path, build.IgnoreVendor)
		var none *build.NoGoError
		if errors.As(err, &none) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		checked++
		self := module + "/" + filepath.ToSlash(path)
		for _, imports := range [][]string{pkg.Imports, pkg.TestImports, pkg.XTestImports} {
			for _, imp := range imports {
				if imp != module && !strings.HasPrefix(imp, module+"/") {
					continue // the standard library or another module
				}
				if imp == self || strings.HasPrefix(imp, module+"/internal/") {
					continue
				}
				t.Errorf("%s imports %s, a package above internal/ (move it to tools/, or the code it needs down into internal/)", self, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("found only %d packages under internal/", checked)
	}
}
