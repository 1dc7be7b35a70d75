package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/dataset"
)

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name     string
	typ      byte
	data     []byte
	size     int64 // header size when data is nil
	linkname string
}

// makeTarGz builds a tar.gz of entries.
func makeTarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.linkname, Size: int64(len(e.data))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if e.data == nil && e.size > 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			d := e.data
			if d == nil {
				d = make([]byte, h.Size)
			}
			if _, err := tw.Write(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cifarRecords returns n CIFAR-10 binary records with labels i%10.
func cifarRecords(n int) []byte {
	b := payload(n * 3073)
	for i := range n {
		b[i*3073] = byte(i % 10)
	}
	return b
}

const classes = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"

// smallCIFAR is an archive layout like the real one with two records per
// batch.
func smallCIFAR() *Archive {
	const size = 2 * 3073
	m := func(f string) Member { return Member{Name: "cifar-10-batches-bin/" + f, Size: size} }
	return &Archive{Dir: "cifar-10-batches-bin", Members: []Member{
		m("data_batch_1.bin"), m("data_batch_2.bin"), m("data_batch_3.bin"),
		m("data_batch_4.bin"), m("data_batch_5.bin"), m("test_batch.bin"),
		{Name: "cifar-10-batches-bin/batches.meta.txt", Max: 4096},
	}}
}

// goodCIFAR is a well-formed small archive for smallCIFAR.
func goodCIFAR(t *testing.T) []byte {
	es := []tarEntry{{name: "cifar-10-batches-bin/", typ: tar.TypeDir}}
	for _, f := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		es = append(es, tarEntry{name: "cifar-10-batches-bin/" + f, data: cifarRecords(2)})
	}
	es = append(es,
		tarEntry{name: "cifar-10-batches-bin/batches.meta.txt", data: []byte(classes)},
		tarEntry{name: "cifar-10-batches-bin/readme.html", data: []byte("<html>skipped</html>")})
	return makeTarGz(t, es...)
}

func TestExtractCIFAR(t *testing.T) {
	dir := t.TempDir()
	data := goodCIFAR(t)
	s := newServer(t, serve(data))
	entry := Entry{Dataset: "cifar10", File: "cifar-10-binary.tar.gz", URLs: []string{s.URL + "/cifar-10-binary.tar.gz"},
		Versions: []Version{{Size: int64(len(data)), SHA256: sha(data)}}, Archive: smallCIFAR()}
	res, err := Fetch(t.Context(), entry, dir, fast())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Extracted) != 7 {
		t.Errorf("extracted %q", res.Extracted)
	}
	noFile(t, filepath.Join(dir, "cifar-10-batches-bin", "readme.html"))
	noFile(t, filepath.Join(dir, "cifar-10-batches-bin", "test_batch.bin.part"))
	// The layout is one the reader accepts.
	set, err := dataset.Load("cifar10", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if set.N != 2 || set.Classes[9] != "truck" {
		t.Errorf("loaded %d images, classes %q", set.N, set.Classes)
	}
	if set, err = dataset.Load("cifar10", dir, true); err != nil || set.N != 10 {
		t.Fatalf("training split: %v", err)
	}

	// Fetching again does nothing: archive verified, members present.
	res, err = Fetch(t.Context(), entry, dir, fast())
	if err != nil || !res.Present || res.Extracted != nil {
		t.Errorf("second fetch: %+v, %v", res, err)
	}
	// A member removed is extracted again from the archive kept.
	os.Remove(filepath.Join(dir, "cifar-10-batches-bin", "test_batch.bin"))
	res, err = Fetch(t.Context(), entry, dir, fast())
	if err != nil || !res.Present || len(res.Extracted) != 7 {
		t.Errorf("third fetch: %+v, %v", res, err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestExtractRejects(t *testing.T) {
	a := smallCIFAR()
	good := func() []tarEntry {
		var es []tarEntry
		for _, m := range a.Members {
			d := cifarRecords(2)
			if m.Size == 0 {
				d = []byte(classes)
			}
			es = append(es, tarEntry{name: m.Name, data: d})
		}
		return es
	}
	with := func(extra ...tarEntry) []tarEntry { return append(good(), extra...) }
	replace := func(i int, e tarEntry) []tarEntry { es := good(); es[i] = e; return es }

	cases := []struct {
		name    string
		entries []tarEntry
		archive *Archive
		want    string
	}{
		{"dot-dot path", with(tarEntry{name: "cifar-10-batches-bin/../../evil", data: []byte("x")}), a, "unsafe path"},
		{"dot-dot member first", append([]tarEntry{{name: "../test_batch.bin", data: cifarRecords(2)}}, good()...), a, "unsafe path"},
		{"absolute path", with(tarEntry{name: "/tmp/evil", data: []byte("x")}), a, "unsafe path"},
		{"symlink as a member", replace(5, tarEntry{name: "cifar-10-batches-bin/test_batch.bin", typ: tar.TypeSymlink, linkname: "/etc/passwd"}), a, "symbolic link"},
		{"symlink elsewhere", with(tarEntry{name: "cifar-10-batches-bin/link", typ: tar.TypeSymlink, linkname: "../../x"}), a, "symbolic link"},
		{"hard link", with(tarEntry{name: "cifar-10-batches-bin/hl", typ: tar.TypeLink, linkname: "cifar-10-batches-bin/data_batch_1.bin"}), a, "hard link"},
		{"fifo", with(tarEntry{name: "cifar-10-batches-bin/fifo", typ: tar.TypeFifo}), a, "named pipe"},
		{"oversized member", replace(6, tarEntry{name: "cifar-10-batches-bin/batches.meta.txt", size: 1 << 20}), a, "more than the 4096 allowed"},
		{"wrong size", replace(0, tarEntry{name: "cifar-10-batches-bin/data_batch_1.bin", data: cifarRecords(3)}), a, "want 6146"},
		{"missing member", good()[:6], a, `"cifar-10-batches-bin/batches.meta.txt" is not in the archive`},
		{"duplicate member", with(tarEntry{name: "cifar-10-batches-bin/test_batch.bin", data: cifarRecords(2)}), a, "appears twice"},
		{"too much data", with(tarEntry{name: "big.bin", size: 8 << 20}),
			&Archive{Dir: a.Dir, Members: a.Members, MaxTotal: 1 << 20}, "more uncompressed data than allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "data")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			arch := filepath.Join(dir, "x.tar.gz")
			if err := os.WriteFile(arch, makeTarGz(t, c.entries...), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := extract(arch, dir, c.archive)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), arch) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, arch, c.want)
			}
			// Nothing extracted, no temporary files left, nothing outside.
			got, _ := os.ReadDir(filepath.Join(dir, "cifar-10-batches-bin"))
			if len(got) != 0 {
				var names []string
				for _, g := range got {
					names = append(names, g.Name())
				}
				t.Errorf("left in the output folder: %q", names)
			}
			top, _ := os.ReadDir(root)
			if len(top) != 1 {
				t.Errorf("%d entries next to the data folder", len(top))
			}
		})
	}
}

func TestExtractNotGzip(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "x.tar.gz")
	os.WriteFile(arch, []byte("this is not gzip"), 0o644)
	if _, err := extract(arch, dir, smallCIFAR()); err == nil || !strings.Contains(err.Error(), "not a gzip file") {
		t.Errorf("err = %v", err)
	}
	// Gzip of garbage: a tar error.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(bytes.Repeat([]byte("garbage!"), 200))
	gz.Close()
	os.WriteFile(arch, buf.Bytes(), 0o644)
	if _, err := extract(arch, dir, smallCIFAR()); err == nil || !strings.Contains(err.Error(), arch) {
		t.Errorf("err = %v", err)
	}
}

func TestSafeName(t *testing.T) {
	for name, want := range map[string]bool{
		"a/b.bin": true, "./a/b": true, "a/": true, "./": true,
		"../a": false, "a/../../b": false, "a/../b": false, "/a": false, "": false, `a\..\b`: false,
	} {
		if _, ok := safeName(name); ok != want {
			t.Errorf("safeName(%q) = %v, want %v", name, ok, want)
		}
	}
}
