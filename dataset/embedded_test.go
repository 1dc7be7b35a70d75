package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadEmbedded(t *testing.T) {
	for _, tc := range []struct {
		train bool
		n     int
	}{{true, 8000}, {false, 2000}} {
		s, err := Load("embedded", "", tc.train)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != tc.n || s.C != 1 || s.H != 32 || s.W != 32 || s.Classes[9] != "Ankle boot" {
			t.Fatalf("train=%v: N=%d C=%d %d×%d", tc.train, s.N, s.C, s.H, s.W)
		}
		counts := make([]int, 10)
		for _, l := range s.Labels {
			counts[l]++
		}
		for c, k := range counts {
			if k < tc.n/20 {
				t.Errorf("train=%v: class %d has %d images", tc.train, c, k)
			}
		}
	}
}

// TestEmbeddedMatchesOriginal: the embedded images are the first ones of
// the original Fashion-MNIST files.
func TestEmbeddedMatchesOriginal(t *testing.T) {
	dir := filepath.Join(sharedData, "fashion-mnist")
	if testing.Short() {
		t.Skip("reads the full Fashion-MNIST files")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared data: %v", err)
	}
	for _, c := range []struct {
		prefix string
		train  bool
		n      int
	}{{"train", true, 8000}, {"t10k", false, 2000}} {
		pix, labels, _, rows, cols, err := ReadIDX(filepath.Join(dir, c.prefix+"-images-idx3-ubyte.gz"), filepath.Join(dir, c.prefix+"-labels-idx1-ubyte.gz"), 10)
		if err != nil {
			t.Fatal(err)
		}
		want, err := resizeSet(pix[:c.n*rows*cols], c.n, 1, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Load("embedded", "", c.train)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Images, want) || !bytes.Equal(s.Labels, labels[:c.n]) {
			t.Errorf("%s: embedded sample differs from the first %d originals", c.prefix, c.n)
		}
	}
}
