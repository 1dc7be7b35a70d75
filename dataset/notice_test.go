package dataset

import (
	"os"
	"strings"
	"testing"
)

func TestEmbeddedLicenseIsTheFile(t *testing.T) {
	b, err := os.ReadFile("embedded/LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if EmbeddedLicense != string(b) {
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
