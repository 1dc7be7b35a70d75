package doctor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pad-dreaming/pad/internal/atomicfile"
	"github.com/pad-dreaming/pad/kernels"
)

// Identity is what a verdict of the quick check holds for: one GPU, the
// driver, the NVIDIA libraries (which files, which versions) and pad
// itself. A change of any of them needs a new verdict.
type Identity struct {
	GPU        string      `json:"gpu"`        // the device's name
	Capability string      `json:"capability"` // compute capability, "9.0"
	Ordinal    int         `json:"ordinal"`    // CUDA device ordinal (the driver API gives no UUID pad reads)
	Driver     string      `json:"driver"`     // CUDA version the driver supports, and its release
	Libraries  []LibraryID `json:"libraries"`
	Pad        string      `json:"pad"`             // pad's version
	Build      string      `json:"build,omitempty"` // a development build's own hash (its version does not change with the code)
	Kernels    string      `json:"kernels"`         // hash of the kernel sources
}

// LibraryID identifies one loaded library.
type LibraryID struct {
	Lib     string `json:"lib"`
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Key is a short hash of the identity, the verdict's file name.
func (id Identity) Key() string {
	b, _ := json.Marshal(id)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// Identify describes GPU ordinal, the driver and the libraries as loaded
// now, for pad version pad.
func Identify(ordinal int, pad string) (Identity, error) {
	id := Identity{Ordinal: ordinal, Pad: pad, Build: buildHash(pad), Kernels: kernelsHash()}
	for _, l := range Libraries() {
		id.Libraries = append(id.Libraries, LibraryID{Lib: l.Lib, Path: l.Path, Version: l.Version})
		if l.Lib == "cuda" {
			id.Driver = l.Version
		}
	}
	g, err := describeGPU(ordinal)
	if err != nil {
		return id, err
	}
	id.GPU, id.Capability = g.Name, g.Capability()
	return id, nil
}

var build struct {
	once sync.Once
	hash string
}

// buildHash returns a hash of the running executable for a development
// build (version "(devel)" or "+dirty"), whose version stays the same
// while its code changes; "" for a release.
func buildHash(pad string) string {
	if !strings.Contains(pad, "(devel)") && !strings.Contains(pad, "+dirty") {
		return ""
	}
	build.once.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			return
		}
		f, err := os.Open(exe)
		if err != nil {
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			build.hash = hex.EncodeToString(h.Sum(nil)[:12])
		}
	})
	return build.hash
}

// kernelsHash is a hash of every kernel family's source.
func kernelsHash() string {
	h := sha256.New()
	for _, f := range kernels.Families() {
		src, _ := kernels.Source(f)
		fmt.Fprintf(h, "%s\x00%s\x00", f, src)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Verdict is the outcome of the quick check for one identity.
type Verdict struct {
	Identity Identity  `json:"identity"`
	Pass     bool      `json:"pass"`
	Failed   []Check   `json:"failed,omitempty"` // the quick checks that failed
	Checked  time.Time `json:"checked"`
}

// NewVerdict is the verdict of the quick part of report r for id: it
// passes when no quick check failed.
func NewVerdict(id Identity, r *Report) *Verdict {
	v := &Verdict{Identity: id, Pass: true, Checked: time.Now().UTC()}
	for _, c := range r.Checks {
		if c.Quick && c.Status == Fail {
			v.Pass = false
			v.Failed = append(v.Failed, c)
		}
	}
	if len(r.Checks) == 0 {
		v.Pass = false
	}
	return v
}

// Err is nil for a passing verdict; otherwise one sentence naming the
// failed check and what to do.
func (v *Verdict) Err() error {
	if v.Pass {
		return nil
	}
	what := "no check ran"
	if len(v.Failed) > 0 {
		c := v.Failed[0]
		what = c.Name
		if c.Detail != "" {
			what += " (" + firstLine(c.Detail) + ")"
		}
		if len(v.Failed) > 1 {
			what += fmt.Sprintf(" and %d more", len(v.Failed)-1)
		}
	}
	return fmt.Errorf("GPU %d (%s) failed pad's check: %s; run 'pad doctor' for the details", v.Identity.Ordinal, v.Identity.GPU, what)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Cache keeps verdicts as small JSON files, one per identity, in Dir.
// An empty Dir keeps nothing.
type Cache struct{ Dir string }

// DefaultCacheDir is "doctor" beside the kernel cache
// (kernels.DefaultCacheDir: $XDG_CACHE_HOME/pad or ~/.cache/pad), or "".
func DefaultCacheDir() string {
	k := kernels.DefaultCacheDir()
	if k == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(k), "doctor")
}

// Path is the file of id's verdict.
func (c Cache) Path(id Identity) string { return filepath.Join(c.Dir, id.Key()+".json") }

// Load returns id's verdict, or nil when there is none. A file that
// cannot be read or parsed, or that holds another identity, is an error
// (the caller checks again).
func (c Cache) Load(id Identity) (*Verdict, error) {
	if c.Dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("doctor: %s: %w", c.Path(id), err)
	}
	if v.Identity.Key() != id.Key() {
		return nil, fmt.Errorf("doctor: %s holds the verdict of another GPU or version", c.Path(id))
	}
	return &v, nil
}

// Store writes v atomically (internal/atomicfile): a temporary file in the
// same directory, flushed to disk, renamed over the old one, the directory
// synced.
func (c Cache) Store(v *Verdict) error {
	if c.Dir == "" {
		return errors.New("doctor: no cache directory")
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(c.Path(v.Identity), append(b, '\n'), 0o644)
}
