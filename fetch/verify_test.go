package fetch

import (
	"bufio"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
)

func TestVerifyStates(t *testing.T) {
	okData, badData, rawData := payload(100), payload(101), payload(102)
	cat := Catalogue{
		{Dataset: "t", File: "ok.bin", Versions: []Version{{SHA256: sha(okData), Source: "src"}}},
		{Dataset: "t", File: "missing.bin", Versions: []Version{{SHA256: sha(okData)}}},
		{Dataset: "t", File: "bad.bin", Versions: []Version{{SHA256: sha(okData), MD5: md(okData)}}},
		{Dataset: "t", File: "nosum.bin"},
		{Dataset: "t", File: "raw.gz", Versions: []Version{{MD5: md(okData)}}, Alternates: []string{"raw"}},
		{Dataset: "t", File: "size.bin", Versions: []Version{{Size: 99, SHA256: sha(okData)}}}, // right sum, wrong size
		{Dataset: "other", File: "x"},
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ok.bin": okData, "bad.bin": badData, "nosum.bin": okData, "raw": rawData, "size.bin": okData} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := cat.Verify(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		file   string
		status Status
		detail string
	}{
		{"ok.bin", OK, "matches the known sha256 (src)"},
		{"missing.bin", Missing, "not found"},
		{"bad.bin", Mismatch, "expected sha256 " + sha(okData) + " (md5 " + md(okData) + ")"},
		{"nosum.bin", Unverified, "no known checksum"},
		{"raw", Unverified, "raw.gz is missing"},
		{"size.bin", Mismatch, "expected sha256"},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d reports, want %d: %+v", len(rs), len(want), rs)
	}
	for i, w := range want {
		r := rs[i]
		if r.File != w.file || r.Status != w.status || !strings.Contains(r.Detail, w.detail) || r.Dataset != "t" {
			t.Errorf("report %d = %+v, want %s %v %q", i, r, w.file, w.status, w.detail)
		}
		if r.Status != Missing && len(r.Sums.SHA256) != 64 {
			t.Errorf("%s: no sha256 computed", r.File)
		}
	}
	if rs[0].Sums.SHA256 != sha(okData) || rs[2].Sums.SHA256 != sha(badData) {
		t.Error("wrong sha256 reported")
	}
	if !Missing.Failed() || !Mismatch.Failed() || OK.Failed() || Unverified.Failed() {
		t.Error("Failed() is wrong")
	}
	if _, err := cat.Verify(dir, "nope"); err == nil || !strings.Contains(err.Error(), "known: other, t") {
		t.Errorf("unknown name: err = %v", err)
	}
}

func TestVerifyArchive(t *testing.T) {
	data := goodCIFAR(t)
	a := smallCIFAR()
	entry := Entry{Dataset: "c", File: "c.tar.gz", Versions: []Version{{SHA256: sha(data)}}, Archive: a}
	cat := Catalogue{entry}
	dir := t.TempDir()

	statuses := func() []Status {
		rs, err := cat.Verify(dir, "c")
		if err != nil {
			t.Fatal(err)
		}
		var ss []Status
		for _, r := range rs {
			ss = append(ss, r.Status)
		}
		return ss
	}
	all := func(first, rest Status) []Status {
		ss := []Status{first}
		for range a.Members {
			ss = append(ss, rest)
		}
		return ss
	}
	if got := statuses(); !slices.Equal(got, all(Missing, Missing)) {
		t.Errorf("empty folder: %v", got)
	}
	arch := filepath.Join(dir, "c.tar.gz")
	os.WriteFile(arch, data, 0o644)
	if _, err := extract(arch, dir, a); err != nil {
		t.Fatal(err)
	}
	if got := statuses(); !slices.Equal(got, all(OK, OK)) {
		t.Errorf("fetched: %v", got)
	}
	rs, _ := cat.Verify(dir, "c")
	if rs[1].File != "cifar-10-batches-bin/data_batch_1.bin" || !strings.Contains(rs[1].Detail, "size checked") {
		t.Errorf("member report = %+v", rs[1])
	}
	// Archive removed, members kept: usable but not checkable.
	os.Remove(arch)
	if got := statuses(); !slices.Equal(got, all(Unverified, OK)) {
		t.Errorf("archive removed: %v", got)
	}
	// A truncated member.
	os.Truncate(filepath.Join(dir, "cifar-10-batches-bin", "data_batch_3.bin"), 100)
	got := statuses()
	if got[0] != Missing || got[3] != Mismatch {
		t.Errorf("truncated member: %v", got)
	}
	// Members directly in the folder are found too (the reader accepts that).
	os.Rename(filepath.Join(dir, "cifar-10-batches-bin", "data_batch_3.bin"), filepath.Join(dir, "data_batch_3.bin"))
	rs, _ = cat.Verify(dir, "c")
	if rs[3].File != "data_batch_3.bin" || rs[3].Status != Mismatch {
		t.Errorf("member in the folder itself: %+v", rs[3])
	}
}

// shared is the project's shared folder, when this checkout has one.
func shared(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", "SHA256SUMS")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no shared data here: %v", err)
	}
	return filepath.Join("..", "..", "shared", "data")
}

func TestDefaultCatalogue(t *testing.T) {
	cat := Default()
	if got, want := cat.Datasets(), []string{"cifar10", "fashion", "mnist", "svhn"}; !slices.Equal(got, want) {
		t.Errorf("Datasets() = %q, want %q", got, want)
	}
	known := dataset.Names()
	for _, e := range cat {
		if !slices.Contains(known, e.Dataset) {
			t.Errorf("%s: dataset %q is not one dataset.Load knows", e.File, e.Dataset)
		}
		if NotFetchable(e.Dataset) != "" {
			t.Errorf("%s is both in the catalogue and not fetchable", e.Dataset)
		}
		if err := checkEntry(e); err != nil {
			t.Error(err)
		}
		if len(e.URLs) == 0 {
			t.Errorf("%s %s: no URL", e.Dataset, e.File)
		}
		for _, u := range e.URLs {
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || !strings.HasSuffix(pu.Path, "/"+e.File) {
				t.Errorf("%s %s: bad URL %q", e.Dataset, e.File, u)
			}
		}
		if !e.Verifiable() || e.Size() == 0 && e.Dataset != "fashion" {
			t.Errorf("%s %s: no checksum or size", e.Dataset, e.File)
		}
		for _, v := range e.Versions {
			if b, err := hex.DecodeString(v.SHA256); err != nil || len(b) != 32 || strings.ToLower(v.SHA256) != v.SHA256 {
				t.Errorf("%s %s: bad sha256 %q", e.Dataset, e.File, v.SHA256)
			}
			if b, err := hex.DecodeString(v.MD5); v.MD5 != "" && (err != nil || len(b) != 16) {
				t.Errorf("%s %s: bad md5 %q", e.Dataset, e.File, v.MD5)
			}
			if v.Size <= 0 || v.Source == "" {
				t.Errorf("%s %s: version without size or source", e.Dataset, e.File)
			}
		}
	}
	// The files the readers look for.
	for name, files := range map[string][]string{
		"mnist":   {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
		"fashion": {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
		"cifar10": {"cifar-10-binary.tar.gz"},
		"svhn":    {"train_32x32.mat", "test_32x32.mat"},
	} {
		es, err := cat.Entries(name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.File)
		}
		if !slices.Equal(got, files) {
			t.Errorf("%s: files %q, want %q", name, got, files)
		}
		if DefaultDir(name) != (configs.Data{Dataset: name}).Dir() {
			t.Errorf("DefaultDir(%q) = %q, configs say %q", name, DefaultDir(name), (configs.Data{Dataset: name}).Dir())
		}
	}
	es, _ := cat.Entries("cifar10")
	if a := es[0].Archive; a == nil || a.Dir != "cifar-10-batches-bin" || len(a.Members) != 7 {
		t.Errorf("cifar10 archive = %+v", a)
	}
	for _, n := range []string{"embedded", "folder"} {
		if NotFetchable(n) == "" {
			t.Errorf("NotFetchable(%q) is empty", n)
		}
	}
}

// TestCatalogueMatchesShared checks the MNIST and Fashion-MNIST sums
// against shared/data/SHA256SUMS, and verifies the shared copies.
func TestCatalogueMatchesShared(t *testing.T) {
	root := shared(t)
	f, err := os.Open(filepath.Join(root, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			sums[name] = sum
		}
	}
	if len(sums) != 8 {
		t.Fatalf("%d sums in SHA256SUMS, want 8", len(sums))
	}
	cat := Default()
	for _, e := range cat {
		folder := map[string]string{"mnist": "mnist", "fashion": "fashion-mnist"}[e.Dataset]
		if folder == "" {
			continue
		}
		want := sums[folder+"/"+e.File]
		if !slices.ContainsFunc(e.Versions, func(v Version) bool { return v.SHA256 == want }) {
			t.Errorf("%s %s: no version with the shared sha256 %s", e.Dataset, e.File, want)
		}
	}
	for name, folder := range map[string]string{"mnist": "mnist", "fashion": "fashion-mnist"} {
		rs, err := cat.Verify(filepath.Join(root, folder), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status != OK {
				t.Errorf("%s: %v: %s", r.Path, r.Status, r.Detail)
			}
		}
	}
	// Package-level Verify uses the same catalogue.
	if rs, err := Verify(filepath.Join(root, "mnist"), "mnist"); err != nil || len(rs) != 4 || rs[0].Status != OK {
		t.Errorf("Verify: %v, %v", rs, err)
	}
}

func TestSumKind(t *testing.T) {
	for _, c := range []struct {
		vs   []Version
		want string
	}{
		{nil, "none"},
		{[]Version{{Size: 3}}, "none"},
		{[]Version{{MD5: "x"}}, "md5"},
		{[]Version{{SHA256: "x"}}, "sha256"},
		{[]Version{{SHA256: "x", MD5: "y"}}, "sha256+md5"},
		{[]Version{{SHA256: "x", MD5: "y"}, {SHA256: "z"}}, "sha256+md5 (2 versions)"},
	} {
		if got := (Entry{Versions: c.vs}).SumKind(); got != c.want {
			t.Errorf("SumKind(%+v) = %q, want %q", c.vs, got, c.want)
		}
	}
}
