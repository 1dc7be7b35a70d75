package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sharedData = "../../shared/data"

// idxBytes builds an IDX image file (rows, cols > 0) or label file (rows =
// 0) holding count items; data is its payload.
func idxBytes(count, rows, cols int, data []byte) []byte {
	var b bytes.Buffer
	if rows == 0 {
		binary.Write(&b, binary.BigEndian, []uint32{idxLabelsMagic, uint32(count)})
	} else {
		binary.Write(&b, binary.BigEndian, []uint32{idxImagesMagic, uint32(count), uint32(rows), uint32(cols)})
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// synthIDX writes a small MNIST-style split into dir.
func synthIDX(t *testing.T, dir, prefix string, n int, compress bool) (pix []byte, labels []byte) {
	pix = make([]byte, n*28*28)
	for i := range pix {
		pix[i] = byte(i*31 + i/784)
	}
	labels = make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	img, lab := idxBytes(n, 28, 28, pix), idxBytes(n, 0, 0, labels)
	suffix := ""
	if compress {
		img, lab, suffix = gz(img), gz(lab), ".gz"
	}
	writeFile(t, filepath.Join(dir, prefix+"-images-idx3-ubyte"+suffix), img)
	writeFile(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte"+suffix), lab)
	return pix, labels
}

func TestLoadIDXSynthetic(t *testing.T) {
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		pix, labels := synthIDX(t, dir, "train", 7, compress)
		synthIDX(t, dir, "t10k", 3, compress)
		s, err := Load("mnist", dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != 7 || s.C != 1 || s.H != 32 || s.W != 32 || !bytes.Equal(s.Labels, labels) || len(s.Classes) != 10 {
			t.Fatalf("compress %v: got N=%d C=%d %d×%d labels %v", compress, s.N, s.C, s.H, s.W, s.Labels)
		}
		want, _ := ResizeBilinear(pix[784*3:784*4], 1, 28, 28, 32, 32)
		if !bytes.Equal(s.Image(3), want) {
			t.Errorf("compress %v: image 3 differs from its resize", compress)
		}
		s, err = Load("fashion", dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != 3 || s.Name != "fashion" || s.Classes[0] != "T-shirt/top" {
			t.Fatalf("test split: N=%d name %q classes %v", s.N, s.Name, s.Classes)
		}
	}
}

func TestLoadIDXErrors(t *testing.T) {
	good := make([]byte, 2*28*28)
	cases := []struct {
		name      string
		img, lab  []byte
		wantInErr string
	}{
		{"bad image magic", append([]byte{0, 0, 8, 1}, idxBytes(2, 28, 28, good)[4:]...), idxBytes(2, 0, 0, []byte{1, 2}), "offset 0: magic"},
		{"bad label magic", idxBytes(2, 28, 28, good), append([]byte{0, 0, 8, 3}, idxBytes(2, 0, 0, []byte{1, 2})[4:]...), "magic"},
		{"short images", idxBytes(2, 28, 28, good[:100]), idxBytes(2, 0, 0, []byte{1, 2}), "offset 16: header declares 1568 bytes of data, the file has 100"},
		{"long images", idxBytes(2, 28, 28, append(good, 0)), idxBytes(2, 0, 0, []byte{1, 2}), "the file has 1569"},
		{"count mismatch", idxBytes(2, 28, 28, good), idxBytes(1, 0, 0, []byte{1}), "1 labels, but"},
		{"label 10", idxBytes(2, 28, 28, good), idxBytes(2, 0, 0, []byte{1, 10}), "offset 9: label 10"},
		{"zero rows", idxBytes(0, 0, 28, nil)[:0], idxBytes(0, 0, 0, nil), "header"},
		{"huge count", idxBytes(1<<30, 28, 28, good), idxBytes(2, 0, 0, []byte{1, 2}), "images (at most"},
		{"huge side", idxBytes(2, 1<<20, 28, good), idxBytes(2, 0, 0, []byte{1, 2}), "image size"},
		{"truncated header", idxBytes(2, 28, 28, good)[:10], idxBytes(2, 0, 0, []byte{1, 2}), "file ends in the header"},
		{"empty file", nil, idxBytes(2, 0, 0, []byte{1, 2}), "file ends in the header"},
	}
	for _, tc := range cases {
		for _, compress := range []bool{false, true} {
			dir := t.TempDir()
			img, lab := tc.img, tc.lab
			suffix := ""
			if compress {
				img, lab, suffix = gz(img), gz(lab), ".gz"
			}
			writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"+suffix), img)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"+suffix), lab)
			_, err := Load("mnist", dir, true)
			if err == nil {
				t.Errorf("%s (gzip %v): no error", tc.name, compress)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, "idx") || !strings.Contains(msg, dir) {
				t.Errorf("%s (gzip %v): error does not name the file: %v", tc.name, compress, err)
			}
			if !compress && !strings.Contains(msg, tc.wantInErr) {
				t.Errorf("%s: error %q lacks %q", tc.name, msg, tc.wantInErr)
			}
			if compress && !strings.Contains(msg, "offset") {
				t.Errorf("%s (gzip): error names no offset: %v", tc.name, err)
			}
		}
	}
}

func TestLoadIDXGzipTrouble(t *testing.T) {
	noise := make([]byte, 2*784)
	for i := range noise {
		noise[i] = byte(i*i*2654435761>>13) ^ byte(i>>3)
	}
	img := gz(idxBytes(2, 28, 28, noise))
	lab := gz(idxBytes(2, 0, 0, []byte{1, 2}))
	cases := map[string][]byte{
		"truncated data":   img[:len(img)/2],
		"truncated stream": img[:len(img)-30],
		"trailing garbage": append(append([]byte{}, img...), "garbage"...),
		"second member":    append(append([]byte{}, img...), gz([]byte{1, 2, 3})...),
		"bad crc":          append(append([]byte{}, img[:len(img)-8]...), 0, 0, 0, 0, 0, 0, 0, 0),
		// Declares 10M images of 28×28 in a few bytes: must fail before allocating 7.8 GB.
		"bomb header": gz(idxBytes(10_000_000, 28, 28, nil)),
		// 784 MB declared by a file of a few dozen bytes.
		"ratio bomb": gz(idxBytes(1_000_000, 28, 28, nil)),
	}
	for name, b := range cases {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), b)
		writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), lab)
		if _, err := Load("mnist", dir, true); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestLoadMissingFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"mnist", "fashion", "cifar10", "svhn"} {
		_, err := Load(name, dir, true)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: error %v does not wrap fs.ErrNotExist", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "pad data fetch "+name) || !strings.Contains(msg, dir) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := Load("imagenet", dir, true)
	if err == nil || !strings.Contains(err.Error(), "cifar10, embedded, fashion, folder, mnist, svhn") {
		t.Errorf("unknown set: %v", err)
	}
}

// TestLoadRealIDX reads the real MNIST and Fashion-MNIST files when the
// shared data is present.
func TestLoadRealIDX(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the full MNIST and Fashion-MNIST files")
	}
	for _, tc := range []struct {
		name, dir string
		train     bool
		n         int
		first     []uint8
	}{
		{"mnist", "mnist", true, 60000, []uint8{5, 0, 4, 1, 9}},
		{"mnist", "mnist", false, 10000, []uint8{7, 2, 1, 0, 4}},
		{"fashion", "fashion-mnist", true, 60000, []uint8{9, 0, 0, 3, 0}},
		{"fashion", "fashion-mnist", false, 10000, []uint8{9, 2, 1, 1, 6}},
	} {
		dir := filepath.Join(sharedData, tc.dir)
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no shared data: %v", err)
		}
		s, err := Load(tc.name, dir, tc.train)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != tc.n || s.C != 1 || s.H != 32 || s.W != 32 || !bytes.Equal(s.Labels[:5], tc.first) {
			t.Errorf("%s train=%v: N=%d C=%d %d×%d first labels %v", tc.name, tc.train, s.N, s.C, s.H, s.W, s.Labels[:5])
		}
		counts := make([]int, 10)
		for _, l := range s.Labels {
			counts[l]++
		}
		for c, k := range counts {
			if k < s.N/20 {
				t.Errorf("%s: class %d has %d images", tc.name, c, k)
			}
		}
	}
}

// TestRealFashionMatchesFixture checks the whole path, file → resize →
// scale, against the reference pipeline's output for the same images.
func TestRealFashionMatchesFixture(t *testing.T) {
	dir := filepath.Join(sharedData, "fashion-mnist")
	if testing.Short() {
		t.Skip("reads the full Fashion-MNIST files")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared data: %v", err)
	}
	raw, norm := pipelineFixture(t)
	pix, _, _, _, _, err := ReadIDX(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 10)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load("fashion", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	// Find the fixture's images in the file, then compare their load.
	x := make([]float32, 1024)
	for i := 0; i < 16; i++ {
		k := 0
		for k < 60000 && !bytes.Equal(pix[k*784:(k+1)*784], raw[i*784:(i+1)*784]) {
			k++
		}
		if k == 60000 {
			t.Fatalf("fixture image %d is not in the training file", i)
		}
		Scale(x, s.Image(k))
		for p := range x {
			if x[p] != norm[i*1024+p] {
				t.Fatalf("fixture image %d (training image %d), pixel %d: got %v, want %v", i, k, p, x[p], norm[i*1024+p])
			}
		}
	}
}

func FuzzReadIDX(f *testing.F) {
	img := idxBytes(2, 28, 28, make([]byte, 2*784))
	lab := idxBytes(2, 0, 0, []byte{3, 9})
	f.Add(img, lab)
	f.Add(gz(img), gz(lab))
	f.Add(idxBytes(1, 3, 2, []byte{1, 2, 3, 4, 5, 6}), gz(idxBytes(1, 0, 0, []byte{0})))
	f.Fuzz(func(t *testing.T, img, lab []byte) {
		is, err := newIDXStream("images", bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		ls, err := newIDXStream("labels", bytes.NewReader(lab), int64(len(lab)))
		if err != nil {
			return
		}
		pix, labels, n, rows, cols, err := readIDXPair(is, ls, 10)
		if err != nil {
			return
		}
		if len(pix) != n*rows*cols || len(labels) != n {
			t.Fatalf("%d pixels, %d labels for %d images of %d×%d", len(pix), len(labels), n, rows, cols)
		}
		if s, err := idxSet("fuzz", pix, labels, n, rows, cols, digitClasses); err != nil || s.Validate() != nil {
			t.Fatalf("set: %v", err)
		}
	})
}
