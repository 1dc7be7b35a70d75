package pad

import (
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

func TestLicenseIsTheFile(t *testing.T) {
	if License != string(testkit.ReadFile(t, "LICENSE")) {
		t.Fatal("the embedded licence differs from LICENSE")
	}
	for _, want := range []string{"MIT License", "Copyright (c) 2026 the pad authors"} {
		if !strings.Contains(License, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
}
