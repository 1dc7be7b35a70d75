package fetch

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Sums are what was measured of a file: its size and digests (lower-case
// hex).
type Sums struct {
	Size   int64
	SHA256 string
	MD5    string
}

func (s Sums) String() string {
	return fmt.Sprintf("sha256 %s (md5 %s, %d bytes)", s.SHA256, s.MD5, s.Size)
}

// hasher computes the size, SHA-256 and MD5 of what is written to it.
type hasher struct {
	sha, md hash.Hash
	n       int64
}

func newHasher() *hasher { return &hasher{sha: sha256.New(), md: md5.New()} }

func (h *hasher) Write(p []byte) (int, error) {
	h.sha.Write(p)
	h.md.Write(p)
	h.n += int64(len(p))
	return len(p), nil
}

func (h *hasher) sums() Sums {
	return Sums{Size: h.n, SHA256: hex.EncodeToString(h.sha.Sum(nil)), MD5: hex.EncodeToString(h.md.Sum(nil))}
}

// hashFile returns the sums of the file at path.
func hashFile(path string) (Sums, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sums{}, err
	}
	defer f.Close()
	h := newHasher()
	if _, err := io.Copy(h, f); err != nil {
		return Sums{}, fmt.Errorf("%s: %w", path, err)
	}
	return h.sums(), nil
}

// matches reports whether s is version v: v names a checksum and every
// field v sets equals the measured one.
func (v Version) matches(s Sums) bool {
	return v.hasSum() &&
		(v.Size <= 0 || v.Size == s.Size) &&
		(v.SHA256 == "" || strings.EqualFold(v.SHA256, s.SHA256)) &&
		(v.MD5 == "" || strings.EqualFold(v.MD5, s.MD5))
}

// match returns the version of e that s is, if any.
func (e Entry) match(s Sums) (Version, bool) {
	for _, v := range e.Versions {
		if v.matches(s) {
			return v, true
		}
	}
	return Version{}, false
}

// kind names the fields v checks, e.g. "sha256+md5+size".
func (v Version) kind() string {
	var ks []string
	if v.SHA256 != "" {
		ks = append(ks, "sha256")
	}
	if v.MD5 != "" {
		ks = append(ks, "md5")
	}
	if v.Size > 0 {
		ks = append(ks, "size")
	}
	return strings.Join(ks, "+")
}

// describe writes what v expects, e.g. "sha256 … (md5 …, 123 bytes)".
func (v Version) describe() string {
	var parts []string
	if v.MD5 != "" {
		parts = append(parts, "md5 "+v.MD5)
	}
	if v.Size > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", v.Size))
	}
	s := ""
	if v.SHA256 != "" {
		s = "sha256 " + v.SHA256
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, ", ") + ")"
		}
		return s
	}
	return strings.Join(parts, ", ")
}

// expected describes the versions of e with a checksum.
func (e Entry) expected() string {
	var ds []string
	for _, v := range e.Versions {
		if v.hasSum() {
			ds = append(ds, v.describe())
		}
	}
	return strings.Join(ds, " or ")
}

// MismatchError reports a file whose checksum matches none of the known
// versions of its entry.
type MismatchError struct {
	Path     string // the file that was checked (a .part file after a download)
	URL      string // where it came from; "" for a file already on disk
	Expected string // the known versions
	Got      Sums
}

func (e *MismatchError) Error() string {
	from := ""
	if e.URL != "" {
		from = " (downloaded from " + e.URL + ")"
	}
	return fmt.Sprintf("%s: checksum mismatch%s: expected %s; got %s", e.Path, from, e.Expected, e.Got)
}

// Status is the outcome of verifying one file.
type Status int

// The states Verify reports.
const (
	OK         Status = iota // present and matches a known checksum (or, for an extracted member, its size)
	Missing                  // not there
	Mismatch                 // there, but matches no known checksum or size
	Unverified               // there, but there is no known checksum to check it against
	Unreadable               // there, but could not be read
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Missing:
		return "missing"
	case Mismatch:
		return "mismatch"
	case Unverified:
		return "unverified"
	case Unreadable:
		return "unreadable"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Failed reports whether s means the dataset cannot be used as it is.
func (s Status) Failed() bool { return s == Missing || s == Mismatch || s == Unreadable }

// Report is the verdict on one file of a dataset.
type Report struct {
	Dataset string
	File    string // path relative to the dataset folder, with slashes
	Path    string // path on disk
	Status  Status
	Sums    Sums   // measured; zero when the file is missing or unreadable
	Detail  string // what matched, or what is wrong
}

// Verify checks the files of the dataset name of the built-in catalogue in
// dir; see Catalogue.Verify.
func Verify(dir, name string) ([]Report, error) { return Default().Verify(dir, name) }

// Verify recomputes the checksums of the files of dataset name present in
// dir and reports, file by file, whether each is ok, missing, mismatched or
// unverified (no known checksum). The error is only for an unknown name;
// problems with files are in the reports.
func (c Catalogue) Verify(dir, name string) ([]Report, error) {
	es, err := c.Entries(name)
	if err != nil {
		return nil, err
	}
	var rs []Report
	for _, e := range es {
		rs = append(rs, VerifyEntry(dir, e)...)
	}
	return rs, nil
}

// VerifyEntry checks the file of e in dir, and the members extracted from
// it when it is an archive.
func VerifyEntry(dir string, e Entry) []Report {
	r := Report{Dataset: e.Dataset, File: e.File, Path: filepath.Join(dir, e.File)}
	st, err := os.Stat(r.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Detail = Missing, "not found"
		if alt := verifyAlternate(dir, e); alt != nil {
			r = *alt
		} else if e.Archive != nil && membersPresent(dir, e.Archive) {
			r.Status, r.Detail = Unverified, "archive not kept; its extracted files are there but cannot be checked against its checksum"
		}
	case err != nil:
		r.Status, r.Detail = Unreadable, err.Error()
	case !st.Mode().IsRegular():
		r.Status, r.Detail = Unreadable, "not a regular file"
	default:
		r.Sums, err = hashFile(r.Path)
		switch {
		case err != nil:
			r.Status, r.Detail = Unreadable, err.Error()
		case !e.Verifiable():
			r.Status, r.Detail = Unverified, "no known checksum"
		default:
			if v, ok := e.match(r.Sums); ok {
				r.Status, r.Detail = OK, "matches the known "+v.kind()
				if v.Source != "" {
					r.Detail += " (" + v.Source + ")"
				}
			} else {
				r.Status, r.Detail = Mismatch, "expected "+e.expected()
			}
		}
	}
	rs := []Report{r}
	if e.Archive != nil {
		for _, m := range e.Archive.Members {
			rs = append(rs, verifyMember(dir, e, m))
		}
	}
	return rs
}

// verifyAlternate reports on an alternate name of e present in dir, or
// returns nil when there is none.
func verifyAlternate(dir string, e Entry) *Report {
	for _, alt := range e.Alternates {
		p := filepath.Join(dir, alt)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		r := &Report{Dataset: e.Dataset, File: alt, Path: p, Status: Unverified,
			Detail: fmt.Sprintf("%s is missing; this copy under another name the reader accepts has no known checksum", e.File)}
		if r.Sums, err = hashFile(p); err != nil {
			r.Status, r.Detail = Unreadable, err.Error()
		}
		return r
	}
	return nil
}

// memberPath returns where the member m of a was extracted in dir: in
// a.Dir, or in dir itself (the reader accepts both); the first when neither
// exists.
func memberPath(dir string, a *Archive, m Member) (string, fs.FileInfo, error) {
	first := filepath.Join(dir, filepath.FromSlash(a.Dir), m.Out())
	var firstErr error
	for i, p := range []string{first, filepath.Join(dir, m.Out())} {
		st, err := os.Stat(p)
		if err == nil {
			return p, st, nil
		}
		if i == 0 {
			firstErr = err
		}
	}
	return first, nil, firstErr
}

// memberOK reports whether st is the right size for m.
func memberOK(m Member, st fs.FileInfo) bool {
	if st == nil || !st.Mode().IsRegular() {
		return false
	}
	if m.Size > 0 {
		return st.Size() == m.Size
	}
	return m.Max <= 0 || st.Size() <= m.Max
}

// membersPresent reports whether every member of a is in dir with the right
// size.
func membersPresent(dir string, a *Archive) bool {
	for _, m := range a.Members {
		if _, st, err := memberPath(dir, a, m); err != nil || !memberOK(m, st) {
			return false
		}
	}
	return true
}

func verifyMember(dir string, e Entry, m Member) Report {
	p, st, err := memberPath(dir, e.Archive, m)
	rel, rerr := filepath.Rel(dir, p)
	if rerr != nil {
		rel = p
	}
	r := Report{Dataset: e.Dataset, File: filepath.ToSlash(rel), Path: p}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Detail = Missing, fmt.Sprintf("not found; extracted from %s by fetch", e.File)
		return r
	case err != nil:
		r.Status, r.Detail = Unreadable, err.Error()
		return r
	case !st.Mode().IsRegular():
		r.Status, r.Detail = Unreadable, "not a regular file"
		return r
	}
	if r.Sums, err = hashFile(p); err != nil {
		r.Status, r.Detail = Unreadable, err.Error()
		return r
	}
	switch {
	case !memberOK(m, st) && m.Size > 0:
		r.Status, r.Detail = Mismatch, fmt.Sprintf("%d bytes, want %d", st.Size(), m.Size)
	case !memberOK(m, st):
		r.Status, r.Detail = Mismatch, fmt.Sprintf("%d bytes, want at most %d", st.Size(), m.Max)
	default:
		r.Status, r.Detail = OK, fmt.Sprintf("extracted from %s; size checked (members have no published checksum)", e.File)
	}
	return r
}
