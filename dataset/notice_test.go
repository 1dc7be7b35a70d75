package dataset

import (
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

func TestEmbeddedLicenseIsTheFile(t *testing.T) {
	if EmbeddedLicense != string(testkit.ReadFile(t, "embedded/LICENSE")) {
		t.Fatal("the embedded licence differs from dataset/embedded/LICENSE")
	}
	for _, want := range []string{"The MIT License", "Zalando SE", "Permission is hereby granted"} {
		if !strings.Contains(EmbeddedLicense, want) {
			t.Errorf("dataset/embedded/LICENSE lacks %q", want)
		}
	}
	for _, want := range []string{"Zalando Research", "Fashion-MNIST", "MIT"} {
		if !strings.Contains(EmbeddedSource, want) {
			t.Errorf("EmbeddedSource lacks %q", want)
		}
	}
}
