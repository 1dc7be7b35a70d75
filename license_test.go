package pad

import (
	"os"
	"strings"
	"testing"
)

func TestLicenseIsTheFile(t *testing.T) {
	b, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if License != string(b) {
		t.Fatal("the embedded licence differs from LICENSE")
	}
	for _, want := range []string{"MIT License", "Copyright (c) 2026 the pad authors"} {
		if !strings.Contains(License, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
}
