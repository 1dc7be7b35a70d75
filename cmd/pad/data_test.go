package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/fetch"
)

// runData runs pad with args and returns the exit code, stdout and stderr.
func runData(t *testing.T, terminal bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, &env{stdout: &out, stderr: &errb, isTerminal: terminal})
	return code, out.String(), errb.String()
}

// useDataCatalogue makes the data commands use cat for the test.
func useDataCatalogue(t *testing.T, cat fetch.Catalogue) {
	t.Helper()
	old := dataCatalogue
	dataCatalogue = func() fetch.Catalogue { return cat }
	t.Cleanup(func() { dataCatalogue = old })
}

// dataToy serves two files and returns a catalogue of them as dataset "toy".
func dataToy(t *testing.T) (fetch.Catalogue, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{"a.bin": bytes.Repeat([]byte("pad"), 70000), "b.bin": []byte("dreams")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(d))
	}))
	t.Cleanup(srv.Close)
	var cat fetch.Catalogue
	for _, f := range []string{"a.bin", "b.bin"} {
		s := sha256.Sum256(files[f])
		cat = append(cat, fetch.Entry{Dataset: "toy", File: f,
			URLs:     []string{srv.URL + "/missing/" + f, srv.URL + "/" + f},
			Versions: []fetch.Version{{Size: int64(len(files[f])), SHA256: hex.EncodeToString(s[:]), Source: "test"}}})
	}
	return cat, files
}

func TestDataFetchVerifyCLI(t *testing.T) {
	cat, files := dataToy(t)
	useDataCatalogue(t, cat)
	dir := filepath.Join(t.TempDir(), "toy")

	code, out, errs := runData(t, false, "data", "fetch", "toy", "--dir", dir)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for f, d := range files {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(got, d) {
			t.Errorf("%s: %v", f, err)
		}
		s := sha256.Sum256(d)
		if !strings.Contains(out, "sha256 "+hex.EncodeToString(s[:])) {
			t.Errorf("stdout does not print the sha256 of %s:\n%s", f, out)
		}
	}
	for _, want := range []string{"downloaded from", "verified (sha256)", "toy is ready in " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"404 Not Found; trying the next source", "downloaded a.bin: 210.0 kB of 210.0 kB (100%)"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "\r") {
		t.Errorf("carriage returns in non-terminal output:\n%q", errs)
	}

	if code, out, _ = runData(t, false, "data", "fetch", "--dir", dir, "toy"); code != exitOK || !strings.Contains(out, "already there") {
		t.Errorf("second fetch: exit %d\n%s", code, out)
	}
	if code, out, _ = runData(t, false, "data", "verify", "toy", "--dir", dir); code != exitOK || strings.Count(out, "  ok ") != 2 {
		t.Errorf("verify: exit %d\n%s", code, out)
	}

	// A corrupted file: verify fails, fetch refuses and suggests --force.
	if err := os.WriteFile(filepath.Join(dir, "b.bin"), []byte("nightmares"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runData(t, false, "data", "verify", "toy", "--dir", dir)
	if code != exitError || !strings.Contains(out, "mismatch") || !strings.Contains(out, "expected sha256") {
		t.Errorf("verify of a corrupted file: exit %d\n%s", code, out)
	}
	code, _, errs = runData(t, false, "data", "fetch", "toy", "--dir", dir)
	if code != exitError || !strings.Contains(errs, "checksum mismatch") || !strings.Contains(errs, "--force") {
		t.Errorf("fetch over a corrupted file: exit %d\n%s", code, errs)
	}
	if code, _, errs = runData(t, false, "data", "fetch", "toy", "--dir", dir, "--force"); code != exitOK {
		t.Errorf("fetch --force: exit %d\n%s", code, errs)
	}
	os.Remove(filepath.Join(dir, "a.bin"))
	if code, out, _ = runData(t, false, "data", "verify", "toy", "--dir", dir); code != exitError || !strings.Contains(out, "missing") {
		t.Errorf("verify with a file missing: exit %d\n%s", code, out)
	}
}

func TestDataFetchTerminalBar(t *testing.T) {
	cat, _ := dataToy(t)
	useDataCatalogue(t, cat)
	code, _, errs := runData(t, true, "data", "fetch", "toy", "--dir", t.TempDir())
	if code != exitOK || !strings.Contains(errs, "\ra.bin [") || !strings.Contains(errs, "\x1b[K") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestDataUsage(t *testing.T) {
	cat, _ := dataToy(t)
	useDataCatalogue(t, cat)
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"data"}, exitUsage, "missing command"},
		{[]string{"data", "--help"}, exitOK, "pad data fetch <dataset>"},
		{[]string{"data", "nap"}, exitUsage, `unknown command "nap"`},
		{[]string{"data", "fetch", "--help"}, exitOK, "resumed by the next run"},
		{[]string{"data", "verify", "--help"}, exitOK, "ok, missing, mismatch or"},
		{[]string{"data", "list", "--help"}, exitOK, "Usage: pad data list"},
		{[]string{"data", "fetch"}, exitUsage, "name a dataset (toy)"},
		{[]string{"data", "fetch", "imagenet"}, exitUsage, `unknown dataset "imagenet" (known: toy)`},
		{[]string{"data", "verify", "imagenet"}, exitUsage, `unknown dataset "imagenet" (known: toy)`},
		{[]string{"data", "fetch", "embedded"}, exitUsage, "built into pad"},
		{[]string{"data", "fetch", "folder"}, exitUsage, "your own images"},
		{[]string{"data", "fetch", "toy", "toy2", "--dir", "x"}, exitUsage, "unknown dataset"},
		{[]string{"data", "verify", "--dir", "x"}, exitUsage, "--dir needs exactly one dataset"},
		{[]string{"data", "fetch", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"data", "list", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"data", "list"}, exitOK, "/missing/a.bin"},
	} {
		code, out, errs := runData(t, false, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("pad %s: exit %d, want %d and %q in\n%s%s", strings.Join(c.args, " "), code, c.code, c.want, out, errs)
		}
	}
	// Two datasets and one --dir.
	two := append(cat, fetch.Entry{Dataset: "toy2", File: "c.bin", URLs: []string{"http://127.0.0.1:1/c.bin"}})
	useDataCatalogue(t, two)
	if code, _, errs := runData(t, false, "data", "fetch", "toy", "toy2", "--dir", "x"); code != exitUsage || !strings.Contains(errs, "--dir takes one dataset") {
		t.Errorf("two datasets, one --dir: exit %d: %s", code, errs)
	}
}

// TestDataFetchMNIST fetches the real MNIST entries, served from the
// shared copy, and loads the result.
func TestDataFetchMNIST(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "data", "mnist")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("no shared MNIST here: %v", err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(src)))
	t.Cleanup(srv.Close)
	var cat fetch.Catalogue
	for _, e := range fetch.Default() {
		if e.Dataset == "mnist" {
			e.URLs = []string{srv.URL + "/" + e.File}
			cat = append(cat, e)
		}
	}
	useDataCatalogue(t, cat)
	dir := filepath.Join(t.TempDir(), "mnist")
	code, out, errs := runData(t, false, "data", "fetch", "mnist", "--dir", dir)
	if code != exitOK || strings.Count(out, "verified (sha256+md5)") != 4 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "train with: pad train --config mnist --set data.root="+dir) {
		t.Errorf("no hint to train:\n%s", out)
	}
	set, err := dataset.Load("mnist", dir, false)
	if err != nil || set.N != 10000 {
		t.Fatalf("load: %v", err)
	}
}
