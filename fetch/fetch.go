package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options tune Fetch. The zero value is usable.
type Options struct {
	// Client makes the requests; nil means one with net/http's default
	// transport, which honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
	Client *http.Client
	// Force downloads the file again even when it is already there, and
	// discards a partial download instead of resuming it.
	Force bool
	// Attempts is how many times a source is tried on transient errors
	// (network errors, 5xx, 408, 429) before moving on; 0 means 4. An
	// attempt that received data does not count against the limit.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to 30 s; 0 means 1 s.
	Backoff time.Duration
	// Stall is how long a request may go without receiving data before it
	// is abandoned and retried; 0 means 60 s.
	Stall time.Duration
	// MaxSize bounds a download whose size the catalogue does not know;
	// 0 means 16 GiB.
	MaxSize int64
	// Progress, when set, is called during a transfer at most every
	// Interval (0 means 200 ms), and once when it completes.
	Progress func(Progress)
	Interval time.Duration
	// Log, when set, receives notes on what Fetch does: resuming, retrying,
	// switching sources.
	Log func(msg string)
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 60 * time.Second
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 16 << 30
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
}

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, a...))
	}
}

// Progress describes a transfer under way.
type Progress struct {
	File     string        // the entry's file name
	URL      string        // the source
	Done     int64         // bytes in the .part file so far
	Total    int64         // the file's size; -1 when unknown
	Resumed  int64         // bytes that were already in the .part file when this transfer began
	Rate     float64       // bytes per second received by this transfer
	Elapsed  time.Duration // since this transfer began
	Finished bool          // the transfer is complete (the last call)
}

// Result says what Fetch did.
type Result struct {
	Path      string  // the final file
	URL       string  // the source it was downloaded from; "" when it was already there
	Present   bool    // it was already there and was not downloaded again
	Resumed   int64   // bytes of an earlier partial download that were kept
	Sums      Sums    // of the final file
	Verified  bool    // it matches a known version (false: the entry has no checksum)
	Version   Version // the version it matches, when Verified
	Extracted []string
}

// HTTPError is a response that is not the file.
type HTTPError struct {
	URL    string
	Status string
	Code   int
}

func (e *HTTPError) Error() string { return e.Status }

// transient reports whether a request that got this status may succeed
// when retried.
func (e *HTTPError) transient() bool {
	return e.Code >= 500 || e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests
}

// retryable marks an error a later attempt may not meet.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

var errStalled = errors.New("stalled")

const userAgent = "pad-data-fetch (+https://github.com/pad-dreaming/pad)"

// checkEntry rejects an entry whose names could leave the folder.
func checkEntry(e Entry) error {
	if !plainName(e.File) {
		return fmt.Errorf("fetch: entry %q of %s: the file name must be a plain name", e.File, e.Dataset)
	}
	if a := e.Archive; a != nil {
		if a.Dir != "" && !filepath.IsLocal(filepath.FromSlash(a.Dir)) {
			return fmt.Errorf("fetch: entry %s: archive folder %q is not a local path", e.File, a.Dir)
		}
		for _, m := range a.Members {
			if !plainName(m.Out()) || m.limit() <= 0 {
				return fmt.Errorf("fetch: entry %s: bad archive member %q (needs a file name and a size or limit)", e.File, m.Name)
			}
		}
	}
	return nil
}

func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && filepath.IsLocal(s)
}

// Fetch makes sure the file of e is in dir, verified, and extracted when
// it is an archive.
//
// When dir/<file> is already there (and opts.Force is not set) it is
// checked, not downloaded again; a file there that does not match is an
// error. Otherwise the file is downloaded to dir/<file>.part, resuming what
// an earlier attempt left there, from e.URLs in order, and renamed to
// dir/<file> once its checksum matches. A mismatch removes the .part file
// and tries the next source. Cancelling ctx stops the transfer and keeps
// the .part file for the next call to resume.
func Fetch(ctx context.Context, e Entry, dir string, opts Options) (Result, error) {
	opts.defaults()
	if err := checkEntry(e); err != nil {
		return Result{}, err
	}
	final := filepath.Join(dir, e.File)
	part := final + ".part"
	res := Result{Path: final}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("fetch %s: %w", e.File, err)
	}

	present := false
	if opts.Force {
		if err := os.Remove(part); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("fetch %s: %w", e.File, err)
		}
	} else if st, err := os.Stat(final); err == nil {
		if !st.Mode().IsRegular() {
			return res, fmt.Errorf("fetch %s: %s is not a regular file", e.File, final)
		}
		sums, err := hashFile(final)
		if err != nil {
			return res, fmt.Errorf("fetch %s: %w", e.File, err)
		}
		res.Sums, res.Present = sums, true
		if e.Verifiable() {
			v, ok := e.match(sums)
			if !ok {
				return res, fmt.Errorf("fetch %s: the file already there matches none of its known checksums: %w",
					e.File, &MismatchError{Path: final, Expected: e.expected(), Got: sums})
			}
			res.Verified, res.Version = true, v
		}
		present = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("fetch %s: %w", e.File, err)
	}

	if !present {
		d, err := download(ctx, e, part, &opts)
		if err != nil {
			return res, err
		}
		if err := os.Rename(part, final); err != nil {
			return res, fmt.Errorf("fetch %s: %w", e.File, err)
		}
		res.URL, res.Resumed, res.Sums = d.url, d.resumed, d.sums
		res.Version, res.Verified = e.match(d.sums)
	}

	if e.Archive != nil && (opts.Force || !present || !membersPresent(dir, e.Archive)) {
		paths, err := extract(final, dir, e.Archive)
		if err != nil {
			return res, err
		}
		res.Extracted = paths
	}
	return res, nil
}

// downloaded is a completed transfer.
type downloaded struct {
	url     string
	sums    Sums
	resumed int64
}

// download fetches e into part from the first source that delivers a file
// that checks out.
func download(ctx context.Context, e Entry, part string, opts *Options) (downloaded, error) {
	if len(e.URLs) == 0 {
		return downloaded{}, fmt.Errorf("fetch %s: no source to download it from", e.File)
	}
	var errs []error
	for i, u := range e.URLs {
		d, err := fromURL(ctx, e, u, part, opts)
		if err == nil {
			return d, nil
		}
		if ctx.Err() != nil {
			dropEmpty(part)
			return downloaded{}, err
		}
		errs = append(errs, err)
		if i+1 < len(e.URLs) {
			opts.logf("%v; trying the next source", err)
		}
	}
	dropEmpty(part)
	if len(errs) == 1 {
		return downloaded{}, errs[0]
	}
	return downloaded{}, &SourcesError{File: e.File, Errs: errs}
}

// dropEmpty removes the file at path when it is empty: nothing to resume.
func dropEmpty(path string) {
	if st, err := os.Stat(path); err == nil && st.Size() == 0 {
		os.Remove(path)
	}
}

// SourcesError reports that every source of a file failed.
type SourcesError struct {
	File string
	Errs []error // one per source, in order
}

func (e *SourcesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fetch %s: every source failed:", e.File)
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *SourcesError) Unwrap() []error { return e.Errs }

// fromURL downloads e from u into part, retrying transient failures.
func fromURL(ctx context.Context, e Entry, u, part string, opts *Options) (downloaded, error) {
	failures := 0
	restarted := false
	for {
		a, err := attempt(ctx, e, u, part, opts)
		if err == nil {
			if !e.Verifiable() {
				return downloaded{url: u, sums: a.sums, resumed: a.resumed}, nil
			}
			if _, ok := e.match(a.sums); ok {
				return downloaded{url: u, sums: a.sums, resumed: a.resumed}, nil
			}
			mismatch := &MismatchError{Path: part, URL: u, Expected: e.expected(), Got: a.sums}
			if rerr := os.Remove(part); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return downloaded{}, fmt.Errorf("%w (and removing it failed: %v)", mismatch, rerr)
			}
			if a.resumed > 0 && !restarted {
				// The bytes kept from an earlier attempt may be what is
				// wrong: start once more from zero before giving up.
				restarted = true
				opts.logf("%v; the first %d bytes came from an earlier partial download, downloading the whole file again", mismatch, a.resumed)
				continue
			}
			return downloaded{}, mismatch
		}
		if ctx.Err() != nil {
			kept := ""
			if st, serr := os.Stat(part); serr == nil && st.Size() > 0 {
				kept = fmt.Sprintf("; %d bytes kept in %s to resume from", st.Size(), part)
			}
			return downloaded{}, fmt.Errorf("fetch %s from %s: %w%s", e.File, u, context.Cause(ctx), kept)
		}
		if !isRetryable(err) {
			return downloaded{}, fmt.Errorf("fetch %s from %s: %w", e.File, u, err)
		}
		if a.received > 0 {
			failures = 0
		}
		failures++
		if failures >= opts.Attempts {
			return downloaded{}, fmt.Errorf("fetch %s from %s: %w (gave up after %d attempts)", e.File, u, err, failures)
		}
		wait := opts.Backoff << (failures - 1)
		if wait > 30*time.Second || wait <= 0 {
			wait = 30 * time.Second
		}
		opts.logf("fetch %s from %s: %v; retrying in %v", e.File, u, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return downloaded{}, fmt.Errorf("fetch %s from %s: %w", e.File, u, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// attempted is the outcome of one request.
type attempted struct {
	sums     Sums  // of the complete file (on success)
	resumed  int64 // bytes kept from the .part file
	received int64 // bytes this request wrote
}

// attempt makes one request for e from u and appends what it receives to
// part. A nil error means part holds the whole file (not yet verified).
func attempt(ctx context.Context, e Entry, u, part string, opts *Options) (a attempted, err error) {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return a, err
	}
	limit := e.maxSize(opts.MaxSize)
	if have > limit {
		have = 0 // longer than the file can be: start again
	}

	wd, stop := startWatchdog(ctx, opts.Stall)
	defer stop()
	req, err := newRequest(wd.ctx, u, have)
	if err != nil {
		return a, err
	}
	resp, err := opts.Client.Do(req)
	if err != nil {
		return a, wd.netErr(err)
	}
	defer resp.Body.Close()

	ans, err := interpret(resp, e, u, part, have, opts)
	if err != nil {
		return a, err
	}
	if ans.complete {
		a.sums, err = hashFile(part)
		a.resumed = have
		return a, err
	}
	if ans.total > limit {
		return a, fmt.Errorf("the source announces %d bytes, more than the %d expected", ans.total, limit)
	}

	f, h, err := openPart(part, ans.start)
	if err != nil {
		return a, err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	a.resumed = ans.start

	m := meter{opts: opts, p: Progress{File: e.File, URL: u, Done: ans.start, Total: ans.total, Resumed: ans.start}, t0: time.Now()}
	a.received, err = appendBody(f, io.LimitReader(resp.Body, limit-ans.start+1), h, &m, wd)
	if err != nil {
		return a, err
	}
	if m.p.Done > limit {
		// Do not keep an oversized file to resume from.
		f.Truncate(0)
		return a, fmt.Errorf("the source sent more than the %d bytes expected", limit)
	}
	if ans.total >= 0 && m.p.Done != ans.total {
		return a, retryable{fmt.Errorf("connection closed after %d of %d bytes", m.p.Done, ans.total)}
	}
	if err := f.Sync(); err != nil {
		return a, fmt.Errorf("%s: %w", part, err)
	}
	m.finish()
	a.sums = h.sums()
	return a, nil
}

// watchdog abandons a request that receives no data for Options.Stall: a
// connection that hangs would otherwise hold the download up for good,
// where a new request usually gets it going again.
type watchdog struct {
	caller context.Context // the caller's context
	ctx    context.Context // the request's: caller, also cancelled with errStalled on a stall
	stall  time.Duration
	timer  *time.Timer
}

// startWatchdog starts the countdown for a request made with the
// returned watchdog's ctx. Calling stop ends the countdown and releases
// that context, once the request and its body are done with.
func startWatchdog(ctx context.Context, stall time.Duration) (w *watchdog, stop func()) {
	actx, cancel := context.WithCancelCause(ctx)
	w = &watchdog{caller: ctx, ctx: actx, stall: stall}
	w.timer = time.AfterFunc(stall, func() { cancel(errStalled) })
	return w, func() {
		w.timer.Stop()
		cancel(nil)
	}
}

// feed restarts the countdown: data arrived.
func (w *watchdog) feed() { w.timer.Reset(w.stall) }

// netErr describes a failed request or read, retryable unless it was the
// caller who cancelled or the host does not exist. A request the
// watchdog abandoned is described as such, since the error the transport
// reports for it (a cancelled context) would read as if the caller had
// cancelled.
func (w *watchdog) netErr(err error) error {
	if context.Cause(w.ctx) == errStalled && w.caller.Err() == nil {
		return retryable{fmt.Errorf("no data received for %v", w.stall)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var de *net.DNSError
	if w.caller.Err() != nil || (errors.As(err, &de) && de.IsNotFound) {
		return err // cancelled, or a host that does not exist
	}
	return retryable{err}
}

// newRequest builds the GET for u that asks for the bytes from have on,
// or for all of them when have is 0.
func newRequest(ctx context.Context, u string, have int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Encoding", "identity") // the bytes as stored: ranges and checksums refer to them
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	return req, nil
}

// answer is what a response means for the .part file.
type answer struct {
	start    int64 // bytes of the .part file to keep: the body continues from there
	total    int64 // the whole file's size; -1 when unknown
	complete bool  // the .part file holds the whole file already: there is no body to receive
}

// interpret reads the status and Content-Range of resp, the response to
// a request for the bytes of e from have on. A 206 that starts where
// asked resumes; a 200 starts again from zero; a 416 says the .part file
// is complete when its size is the file's. Servers do not all honour
// ranges faithfully, so a .part file that the response shows not to fit
// is removed, with a retryable error: the next attempt starts from zero.
// Any other status is an HTTPError, retryable when transient.
func interpret(resp *http.Response, e Entry, u, part string, have int64, opts *Options) (answer, error) {
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		first, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != have {
			if err := os.Remove(part); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return answer{}, err
			}
			return answer{}, retryable{fmt.Errorf("asked for bytes=%d- but got Content-Range %q; starting again from zero",
				have, resp.Header.Get("Content-Range"))}
		}
		if have > 0 {
			opts.logf("resuming %s at byte %d from %s", e.File, have, u)
		}
		return answer{start: have, total: size}, nil
	case resp.StatusCode == http.StatusOK:
		if have > 0 {
			opts.logf("%s ignored the range request; downloading %s again from the start", u, e.File)
		}
		total := int64(-1)
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
		return answer{total: total}, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		size := contentRangeSize(resp.Header.Get("Content-Range"))
		if size == have || (size < 0 && e.knownSize(have)) {
			return answer{start: have, total: have, complete: true}, nil
		}
		if err := os.Remove(part); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return answer{}, err
		}
		return answer{}, retryable{fmt.Errorf("%s: the %d bytes of %s do not fit the file (%s, size %d); starting again from zero",
			resp.Status, have, filepath.Base(part), resp.Header.Get("Content-Range"), size)}
	default:
		herr := &HTTPError{URL: u, Status: resp.Status, Code: resp.StatusCode}
		if herr.transient() {
			return answer{}, retryable{herr}
		}
		return answer{}, herr
	}
}

// openPart opens the .part file for appending from byte start, dropping
// whatever follows it, and returns it with a hasher that has already
// read the start bytes kept: the checksums are of the whole file, not of
// what this request adds.
func openPart(part string, start int64) (*os.File, *hasher, error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *hasher, error) {
		f.Close()
		return nil, nil, err
	}
	h := newHasher()
	if start > 0 {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fail(err)
		}
		if n, err := io.CopyN(h, f, start); err != nil {
			return fail(fmt.Errorf("%s: reading the first %d bytes: %d read: %w", part, start, n, err))
		}
	}
	if err := f.Truncate(start); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, h, nil
}

// appendBody copies body to f until its end, hashing it into h, counting
// it on m and feeding wd as data arrives. It returns the bytes written
// even when it fails, since fromURL does not count an attempt that
// received data against the retries.
func appendBody(f *os.File, body io.Reader, h *hasher, m *meter, wd *watchdog) (received int64, err error) {
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			wd.feed()
			if _, err := f.Write(buf[:n]); err != nil {
				return received, fmt.Errorf("%s: %w", f.Name(), err)
			}
			h.Write(buf[:n])
			received += int64(n)
			m.add(int64(n))
		}
		if rerr == io.EOF {
			return received, nil
		}
		if rerr != nil {
			return received, wd.netErr(rerr)
		}
	}
}

// knownSize reports whether n is the size of a version of e.
func (e Entry) knownSize(n int64) bool {
	for _, v := range e.Versions {
		if v.Size > 0 && v.Size == n {
			return true
		}
	}
	return false
}

// parseContentRange parses "bytes first-last/size" (size may be "*", -1).
func parseContentRange(s string) (first, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	size = -1
	if sz = strings.TrimSpace(sz); sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n <= last {
			return 0, 0, false
		}
		size = n
	}
	return first, size, true
}

// contentRangeSize parses the size of "bytes */size" (a 416's header); -1
// when absent or malformed.
func contentRangeSize(s string) int64 {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes */")
	if !found {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// meter calls Options.Progress as bytes arrive.
type meter struct {
	opts *Options
	p    Progress
	t0   time.Time
	last time.Time
}

func (m *meter) add(n int64) {
	m.p.Done += n
	if m.opts.Progress == nil {
		return
	}
	if now := time.Now(); now.Sub(m.last) >= m.opts.Interval {
		m.last = now
		m.emit(now)
	}
}

func (m *meter) finish() {
	if m.opts.Progress == nil {
		return
	}
	m.p.Finished = true
	if m.p.Total < 0 {
		m.p.Total = m.p.Done
	}
	m.emit(time.Now())
}

func (m *meter) emit(now time.Time) {
	m.p.Elapsed = now.Sub(m.t0)
	if s := m.p.Elapsed.Seconds(); s > 0 {
		m.p.Rate = float64(m.p.Done-m.p.Resumed) / s
	}
	m.opts.Progress(m.p)
}
