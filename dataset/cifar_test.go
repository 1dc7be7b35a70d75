package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarBytes makes n records; record r of file f has label (r+f)%10 and
// pixels derived from (f, r, position).
func cifarBytes(f, n int) []byte {
	b := make([]byte, 0, n*cifarRecord)
	for r := 0; r < n; r++ {
		b = append(b, byte((r+f)%10))
		for p := 0; p < 3072; p++ {
			b = append(b, byte(p*3+r*17+f*101))
		}
	}
	return b
}

func writeCIFAR(t *testing.T, dir string, n int) {
	for f, name := range cifarFiles(true) {
		writeFile(t, filepath.Join(dir, name), cifarBytes(f, n))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarBytes(9, n+1))
}

func TestLoadCIFAR10(t *testing.T) {
	for _, sub := range []bool{false, true} {
		root := t.TempDir()
		dir := root
		if sub {
			dir = filepath.Join(root, cifarSubfolder)
		}
		writeCIFAR(t, dir, 3)
		s, err := Load("cifar10", root, true)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != 15 || s.C != 3 || s.H != 32 || s.W != 32 || s.Classes[0] != "airplane" {
			t.Fatalf("train: N=%d C=%d classes %v", s.N, s.C, s.Classes)
		}
		// Image 7 is record 1 of file 2.
		if want := cifarBytes(2, 3)[cifarRecord+1 : 2*cifarRecord]; !bytes.Equal(s.Image(7), want) || s.Labels[7] != 3 {
			t.Errorf("image 7 or its label (%d) differs", s.Labels[7])
		}
		s, err = Load("cifar10", root, false)
		if err != nil || s.N != 4 || s.Labels[0] != 9 {
			t.Fatalf("test: %v", err)
		}
	}
}

func TestLoadCIFAR10Meta(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir, 1)
	names := "plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
	writeFile(t, filepath.Join(dir, cifarMeta), []byte(names))
	s, err := Load("cifar10", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Classes[0] != "plane" || s.Classes[9] != "truck" || len(s.Classes) != 10 {
		t.Errorf("classes %v", s.Classes)
	}
	writeFile(t, filepath.Join(dir, cifarMeta), []byte("a\nb\n"))
	if _, err := Load("cifar10", dir, false); err == nil || !strings.Contains(err.Error(), cifarMeta) {
		t.Errorf("short meta: %v", err)
	}
}

func TestLoadCIFAR10Errors(t *testing.T) {
	cases := map[string]func(dir string){
		"bad size": func(dir string) {
			writeFile(t, filepath.Join(dir, "data_batch_3.bin"), cifarBytes(0, 2)[:cifarRecord+5])
		},
		"empty file": func(dir string) {
			writeFile(t, filepath.Join(dir, "data_batch_2.bin"), nil)
		},
		"label 10": func(dir string) {
			b := cifarBytes(0, 2)
			b[cifarRecord] = 10
			writeFile(t, filepath.Join(dir, "data_batch_5.bin"), b)
		},
		"missing batch": func(dir string) {
			os.Remove(filepath.Join(dir, "data_batch_4.bin"))
		},
		"folder batch": func(dir string) {
			os.Remove(filepath.Join(dir, "data_batch_4.bin"))
			os.Mkdir(filepath.Join(dir, "data_batch_4.bin"), 0o755)
		},
	}
	want := map[string]string{
		"bad size":      "data_batch_3.bin: offset 3073: file size 3078",
		"empty file":    "data_batch_2.bin: offset 0",
		"label 10":      "data_batch_5.bin: offset 3073: label 10",
		"missing batch": "pad data fetch cifar10",
		"folder batch":  "not a regular file",
	}
	for name, breakIt := range cases {
		dir := t.TempDir()
		writeCIFAR(t, dir, 2)
		breakIt(dir)
		_, err := Load("cifar10", dir, true)
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want one containing %q", name, err, want[name])
		}
	}
}
