package conditions

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNamesPaperFirst(t *testing.T) {
	got := Names()
	want := []string{"pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only"}
	if len(got) != len(conditions) {
		t.Fatalf("Names() has %d names, the table %d", len(got), len(conditions))
	}
	for i, n := range want {
		if got[i] != n {
			t.Fatalf("Names()[%d] = %q, want %q (the paper's five first)", i, got[i], n)
		}
	}
	for _, n := range got {
		c, err := Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != n || c.Lambda != 0.5 {
			t.Errorf("Lookup(%q) = name %q, λ %v", n, c.Name, c.Lambda)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestLookupUnknownListsTheKnown(t *testing.T) {
	_, err := Lookup("pda")
	if err == nil || !strings.Contains(err.Error(), "no-memory-mix") {
		t.Fatalf("Lookup(pda) error %v: want the known names listed", err)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, c := range []Condition{{Name: "a", W: -1}, {Name: "b", Epsilon: -0.1}, {Name: "c", Lambda: 1.5}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// The package is a leaf: configs and phases both import it, so it must
// import neither (nor anything else of pad's).
func TestImportsNothingOfPads(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			if strings.Contains(im.Path.Value, "pad-dreaming/pad") {
				t.Errorf("%s imports %s", f, im.Path.Value)
			}
		}
	}
}
