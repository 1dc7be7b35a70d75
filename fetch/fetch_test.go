package fetch

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md(b []byte) string  { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// entryFor is an entry for data served at the given URLs.
func entryFor(data []byte, urls ...string) Entry {
	return Entry{Dataset: "test", File: "blob.bin", URLs: urls,
		Versions: []Version{{Size: int64(len(data)), SHA256: sha(data), MD5: md(data), Source: "test"}}}
}

// server is a test HTTP server that records the Range header of every
// request and answers each with the handler for its number (0-based); the
// last handler serves the rest.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	ranges   []string
	handlers []func(w http.ResponseWriter, r *http.Request)
}

func newServer(t *testing.T, handlers ...func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{handlers: handlers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := len(s.ranges)
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		s.handlers[min(i, len(s.handlers)-1)](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *server) url() string { return s.URL + "/blob.bin" }

// serve answers with data, honouring Range requests (206, 416).
func serve(data []byte) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "blob.bin", time.Time{}, bytes.NewReader(data))
	}
}

// ignoreRange answers with all of data and 200 whatever was asked.
func ignoreRange(data []byte) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	}
}

// cutAfter announces all of data but closes the connection after n bytes.
func cutAfter(data []byte, n int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			panic("cutAfter: unexpected Range request")
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection
	}
}

func status(code int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// fast are options for tests: no real waiting between retries.
func fast() Options { return Options{Backoff: time.Millisecond, Attempts: 3} }

func noFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want no file, stat says %v", path, err)
	}
}

func TestFetchNormal(t *testing.T) {
	data := payload(1 << 20)
	s := newServer(t, serve(data))
	dir := filepath.Join(t.TempDir(), "sub", "dir") // created by Fetch
	var last Progress
	calls := 0
	opts := fast()
	opts.Progress = func(p Progress) { last = p; calls++ }
	res, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs from the served data")
	}
	noFile(t, filepath.Join(dir, "blob.bin.part"))
	if !res.Verified || res.Present || res.URL != s.url() || res.Sums.SHA256 != sha(data) || res.Sums.Size != int64(len(data)) {
		t.Errorf("result = %+v", res)
	}
	if calls == 0 || !last.Finished || last.Done != int64(len(data)) || last.Total != int64(len(data)) {
		t.Errorf("last progress = %+v after %d calls", last, calls)
	}
	if r := s.requests(); len(r) != 1 || r[0] != "" {
		t.Errorf("requests' Range headers = %q, want one request without Range", r)
	}

	// A second call finds the verified file and downloads nothing.
	res, err = Fetch(t.Context(), entryFor(data, s.url()), dir, opts)
	if err != nil || !res.Present || !res.Verified || res.URL != "" {
		t.Errorf("second fetch: %+v, %v", res, err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("second fetch made requests: %d in all", n)
	}
}

func TestFetchResumesAfterCut(t *testing.T) {
	data := payload(300_000)
	const n = 123_457
	s := newServer(t, cutAfter(data, n), serve(data))
	dir := t.TempDir()
	var notes []string
	opts := fast()
	opts.Log = func(m string) { notes = append(notes, m) }
	res, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs from the served data")
	}
	r := s.requests()
	if len(r) != 2 || r[0] != "" || r[1] != fmt.Sprintf("bytes=%d-", n) {
		t.Errorf("Range headers = %q, want [\"\" \"bytes=%d-\"]", r, n)
	}
	if res.Resumed != n {
		t.Errorf("Resumed = %d, want %d", res.Resumed, n)
	}
	if !strings.Contains(strings.Join(notes, "\n"), fmt.Sprintf("resuming blob.bin at byte %d", n)) {
		t.Errorf("notes %q do not mention the resumption", notes)
	}
}

func TestFetchResumesAcrossCalls(t *testing.T) {
	data := payload(200_000)
	const n = 65_536
	s := newServer(t, cutAfter(data, n), serve(data))
	dir := t.TempDir()
	opts := fast()
	opts.Attempts = 1
	_, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts)
	if err == nil || !strings.Contains(err.Error(), s.url()) || !strings.Contains(err.Error(), "gave up after 1 attempts") {
		t.Fatalf("first fetch: err = %v, want a failure naming the URL", err)
	}
	part := filepath.Join(dir, "blob.bin.part")
	if got := testkit.ReadFile(t, part); !bytes.Equal(got, data[:n]) {
		t.Fatalf(".part holds %d bytes, want the first %d", len(got), n)
	}
	noFile(t, filepath.Join(dir, "blob.bin"))

	if _, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts); err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 2 || r[1] != fmt.Sprintf("bytes=%d-", n) {
		t.Errorf("Range headers = %q, want the second to be bytes=%d-", r, n)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs from the served data")
	}
	noFile(t, part)
}

func TestFetchServerIgnoresRange(t *testing.T) {
	data := payload(100_000)
	s := newServer(t, ignoreRange(data))
	dir := t.TempDir()
	// A .part of wrong bytes: if they were kept the checksum would fail.
	if err := os.WriteFile(filepath.Join(dir, "blob.bin.part"), bytes.Repeat([]byte{0xAA}, 40_000), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast())
	if err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 1 || r[0] != "bytes=40000-" {
		t.Errorf("Range headers = %q, want one bytes=40000-", r)
	}
	if res.Resumed != 0 {
		t.Errorf("Resumed = %d after a 200, want 0", res.Resumed)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs from the served data")
	}
}

func TestFetchPartAlreadyComplete(t *testing.T) {
	data := payload(50_000)
	s := newServer(t, serve(data)) // ServeContent answers 416 for bytes=50000-
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blob.bin.part"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast())
	if err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 1 || r[0] != "bytes=50000-" {
		t.Errorf("Range headers = %q", r)
	}
	if !res.Verified || res.Resumed != int64(len(data)) {
		t.Errorf("result = %+v", res)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs")
	}
}

func TestFetchPartTooLong(t *testing.T) {
	data := payload(50_000)
	s := newServer(t, serve(data))
	dir := t.TempDir()
	entry := entryFor(data, s.url())
	entry.Versions[0].Size = 0 // unknown size: the 416 decides
	if err := os.WriteFile(filepath.Join(dir, "blob.bin.part"), payload(60_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(t.Context(), entry, dir, fast()); err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 2 || r[0] != "bytes=60000-" || r[1] != "" {
		t.Errorf("Range headers = %q, want a 416 then a fresh download", r)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs")
	}
}

func TestFetchMismatch(t *testing.T) {
	want := payload(10_000)
	served := append([]byte(nil), want...)
	served[5000] ^= 1
	s := newServer(t, serve(served))
	dir := t.TempDir()
	_, err := Fetch(t.Context(), entryFor(want, s.url()), dir, fast())
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want a *MismatchError", err)
	}
	msg := err.Error()
	for _, s := range []string{sha(want), md(want), sha(served), "expected", "got", s.url(), "blob.bin.part"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
	noFile(t, filepath.Join(dir, "blob.bin"))
	noFile(t, filepath.Join(dir, "blob.bin.part"))
}

func TestFetchMismatchAfterResumeRestarts(t *testing.T) {
	data := payload(80_000)
	s := newServer(t, serve(data))
	dir := t.TempDir()
	// A stale .part whose bytes are wrong: resuming yields a bad file, so
	// Fetch must download the whole file once more.
	if err := os.WriteFile(filepath.Join(dir, "blob.bin.part"), make([]byte, 30_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast()); err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 2 || r[0] != "bytes=30000-" || r[1] != "" {
		t.Errorf("Range headers = %q", r)
	}
	if got := testkit.ReadFile(t, filepath.Join(dir, "blob.bin")); !bytes.Equal(got, data) {
		t.Fatal("final file differs")
	}
}

func TestFetchMirror(t *testing.T) {
	data := payload(20_000)
	primary := newServer(t, status(http.StatusNotFound))
	mirror := newServer(t, serve(data))
	var notes []string
	opts := fast()
	opts.Log = func(m string) { notes = append(notes, m) }
	res, err := Fetch(t.Context(), entryFor(data, primary.url(), mirror.url()), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.URL != mirror.url() {
		t.Errorf("URL = %s, want the mirror", res.URL)
	}
	if n := len(primary.requests()); n != 1 {
		t.Errorf("primary got %d requests, want 1 (a 404 is not retried)", n)
	}
	if j := strings.Join(notes, "\n"); !strings.Contains(j, "404") || !strings.Contains(j, "trying the next source") {
		t.Errorf("notes = %q", notes)
	}
}

func TestFetchMirrorAfterMismatch(t *testing.T) {
	data := payload(20_000)
	primary := newServer(t, serve(payload(20_001)))
	mirror := newServer(t, serve(data))
	res, err := Fetch(t.Context(), entryFor(data, primary.url(), mirror.url()), t.TempDir(), fast())
	if err != nil || res.URL != mirror.url() {
		t.Fatalf("res = %+v, err = %v; want the mirror's file", res, err)
	}
}

func TestFetchServerErrors(t *testing.T) {
	data := payload(1000)
	t.Run("retried then fails", func(t *testing.T) {
		s := newServer(t, status(http.StatusServiceUnavailable))
		dir := t.TempDir()
		_, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast())
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"blob.bin", s.url(), "503 Service Unavailable", "gave up after 3 attempts"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != 503 {
			t.Errorf("err = %#v, want an *HTTPError 503", err)
		}
		if n := len(s.requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
		noFile(t, filepath.Join(dir, "blob.bin"))
	})
	t.Run("retried then succeeds", func(t *testing.T) {
		s := newServer(t, status(http.StatusBadGateway), status(http.StatusTooManyRequests), serve(data))
		if _, err := Fetch(t.Context(), entryFor(data, s.url()), t.TempDir(), fast()); err != nil {
			t.Fatal(err)
		}
		if n := len(s.requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("every source fails", func(t *testing.T) {
		a := newServer(t, status(http.StatusForbidden))
		b := newServer(t, status(http.StatusInternalServerError))
		_, err := Fetch(t.Context(), entryFor(data, a.url(), b.url()), t.TempDir(), fast())
		var se *SourcesError
		if !errors.As(err, &se) || len(se.Errs) != 2 {
			t.Fatalf("err = %v, want a *SourcesError of 2", err)
		}
		for _, want := range []string{a.url(), "403 Forbidden", b.url(), "500 Internal Server Error"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	t.Run("no such host", func(t *testing.T) {
		u := "http://pad-test.invalid/blob.bin" // .invalid never resolves
		var notes []string
		opts := fast()
		opts.Log = func(m string) { notes = append(notes, m) }
		_, err := Fetch(t.Context(), entryFor(data, u), t.TempDir(), opts)
		if err == nil || !strings.Contains(err.Error(), u) {
			t.Fatalf("err = %v", err)
		}
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound && len(notes) != 0 {
			t.Errorf("a host that does not exist was retried: %q", notes)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		s := httptest.NewServer(http.NotFoundHandler())
		u := s.URL + "/blob.bin"
		s.Close()
		_, err := Fetch(t.Context(), entryFor(data, u), t.TempDir(), fast())
		if err == nil || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFetchCancel(t *testing.T) {
	data := payload(100_000)
	const n = 30_000
	// The first request sends n bytes, then hangs until the client leaves.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}, serve(data))
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	opts := fast()
	opts.Interval = time.Nanosecond
	opts.Progress = func(p Progress) {
		if p.Done >= n {
			cancel()
		}
	}
	start := time.Now()
	_, err := Fetch(ctx, entryFor(data, s.url()), dir, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch took %v to stop", d)
	}
	part := filepath.Join(dir, "blob.bin.part")
	if !strings.Contains(err.Error(), part) {
		t.Errorf("error %q does not say where the partial download is", err)
	}
	if got := testkit.ReadFile(t, part); !bytes.Equal(got, data[:n]) {
		t.Fatalf(".part holds %d bytes, want the first %d", len(got), n)
	}
	if _, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast()); err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 2 || r[1] != fmt.Sprintf("bytes=%d-", n) {
		t.Errorf("Range headers = %q", r)
	}
}

func TestFetchCancelDuringBackoff(t *testing.T) {
	s := newServer(t, status(http.StatusServiceUnavailable))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	opts := Options{Backoff: time.Hour}
	start := time.Now()
	_, err := Fetch(ctx, entryFor([]byte("x"), s.url()), t.TempDir(), opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch took %v to stop", d)
	}
}

func TestFetchStall(t *testing.T) {
	data := payload(10_000)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}, serve(data))
	opts := fast()
	opts.Stall = 100 * time.Millisecond
	var notes []string
	opts.Log = func(m string) { notes = append(notes, m) }
	dir := t.TempDir()
	if _, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts); err != nil {
		t.Fatal(err)
	}
	if r := s.requests(); len(r) != 2 || r[1] != "bytes=1000-" {
		t.Errorf("Range headers = %q", r)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "no data received") {
		t.Errorf("notes = %q", notes)
	}
}

func TestFetchExistingFile(t *testing.T) {
	data := payload(5000)
	s := newServer(t, serve(data))
	dir := t.TempDir()
	final := filepath.Join(dir, "blob.bin")
	bad := payload(5001)
	if err := os.WriteFile(final, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast())
	var me *MismatchError
	if !errors.As(err, &me) || me.Path != final || me.URL != "" {
		t.Fatalf("err = %v, want a mismatch of the file already there", err)
	}
	if got := testkit.ReadFile(t, final); !bytes.Equal(got, bad) {
		t.Error("the existing file was changed without Force")
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
	opts := fast()
	opts.Force = true
	if _, err := Fetch(t.Context(), entryFor(data, s.url()), dir, opts); err != nil {
		t.Fatal(err)
	}
	if got := testkit.ReadFile(t, final); !bytes.Equal(got, data) {
		t.Error("Force did not replace the file")
	}
}

func TestFetchUnverified(t *testing.T) {
	data := payload(3000)
	s := newServer(t, serve(data))
	entry := Entry{Dataset: "test", File: "blob.bin", URLs: []string{s.url()}}
	res, err := Fetch(t.Context(), entry, t.TempDir(), fast())
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified || res.Sums.SHA256 != sha(data) {
		t.Errorf("result = %+v, want unverified with the data's sha256", res)
	}
	if entry.SumKind() != "none" || entry.Verifiable() {
		t.Errorf("SumKind = %q", entry.SumKind())
	}
}

func TestFetchOversize(t *testing.T) {
	data := payload(4000)
	// Chunked (no Content-Length), and longer than the known size.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write(data)
		w.(http.Flusher).Flush()
		w.Write(data)
	})
	dir := t.TempDir()
	_, err := Fetch(t.Context(), entryFor(data, s.url()), dir, fast())
	if err == nil || !strings.Contains(err.Error(), "more than the 4000 bytes expected") {
		t.Fatalf("err = %v", err)
	}
	noFile(t, filepath.Join(dir, "blob.bin"))
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (not retried)", n)
	}
}

func TestFetchBadEntry(t *testing.T) {
	for _, f := range []string{"", "..", "a/b", `a\b`, "/abs"} {
		e := Entry{Dataset: "test", File: f, URLs: []string{"http://127.0.0.1:1/x"}}
		if _, err := Fetch(t.Context(), e, t.TempDir(), fast()); err == nil || !strings.Contains(err.Error(), "plain name") {
			t.Errorf("File %q: err = %v", f, err)
		}
	}
	e := Entry{Dataset: "test", File: "x.tgz", URLs: []string{"http://127.0.0.1:1/x"},
		Archive: &Archive{Dir: "../up", Members: []Member{{Name: "a", Size: 1}}}}
	if _, err := Fetch(t.Context(), e, t.TempDir(), fast()); err == nil || !strings.Contains(err.Error(), "not a local path") {
		t.Errorf("archive dir ../up: err = %v", err)
	}
	e = Entry{Dataset: "test", File: "x", URLs: []string{"::not a url"}}
	if _, err := Fetch(t.Context(), e, t.TempDir(), fast()); err == nil || !strings.Contains(err.Error(), "::not a url") {
		t.Errorf("bad URL: err = %v", err)
	}
	e = Entry{Dataset: "test", File: "x"}
	if _, err := Fetch(t.Context(), e, t.TempDir(), fast()); err == nil || !strings.Contains(err.Error(), "no source") {
		t.Errorf("no URL: err = %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in          string
		first, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes 5-4/10", 0, 0, false},
		{"bytes 5-9/9", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes */200", 0, 0, false},
		{"", 0, 0, false},
	} {
		first, size, ok := parseContentRange(c.in)
		if ok != c.ok || (ok && (first != c.first || size != c.size)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", c.in, first, size, ok)
		}
	}
	if n := contentRangeSize("bytes */1234"); n != 1234 {
		t.Errorf("contentRangeSize = %d", n)
	}
	if n := contentRangeSize("bytes 0-1/2"); n != -1 {
		t.Errorf("contentRangeSize = %d", n)
	}
}
