package main

import (
	"os"
	"strings"
	"testing"
)

// TestInfoLicenses checks that `pad info --licenses` prints pad's licence
// and the embedded sample's notice with its source, each the text of the
// file in the repository.
func TestInfoLicenses(t *testing.T) {
	code, out, errOut := runPad(t, "info", "--licenses")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, file := range []string{"../../LICENSE", "../../dataset/embedded/LICENSE"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, strings.TrimRight(string(b), "\n")) {
			t.Errorf("pad info --licenses lacks the text of %s", file)
		}
	}
	for _, want := range []string{"Copyright (c) 2026 the pad authors", "Zalando SE", "Zalando Research's", "Fashion-MNIST", "MIT licence"} {
		if !strings.Contains(out, want) {
			t.Errorf("pad info --licenses lacks %q", want)
		}
	}
	if strings.Contains(out, "datasets:") {
		t.Error("pad info --licenses also printed the device report")
	}
}
