// Package testkit holds helpers that tests of several packages share: heap
// accounting for allocation checks, scratch directories for fuzz targets,
// a writer that fails like a full disk, reading a file or a folder's names
// or failing, the relative error that parity tests compare with, and the
// first value where two results differ in bits.
package testkit

import (
	"errors"
	"io"
	"math"
	"os"
	"runtime/metrics"
	"slices"
	"testing"
)

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// HeapAllocated returns the bytes allocated on the heap while f ran (large
// allocations are counted exactly).
func HeapAllocated(f func()) uint64 {
	metrics.Read(allocSample)
	before := allocSample[0].Value.Uint64()
	f()
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64() - before
}

// ScratchDir returns a directory for the files of one fuzzing process,
// removed when the target ends: on tmpfs (/dev/shm) where there is one, as
// creating files on a disk can take milliseconds, which would cap a target
// at a few hundred inputs a second.
func ScratchDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "pad-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// ErrDiskFull is the error FailAfter injects.
var ErrDiskFull = errors.New("injected: no space left on device")

// FailAfter passes N bytes through to W, then fails every write with
// ErrDiskFull, as a disk that fills up does.
type FailAfter struct {
	W io.Writer
	N int
}

func (f *FailAfter) Write(p []byte) (int, error) {
	if len(p) <= f.N {
		f.N -= len(p)
		return f.W.Write(p)
	}
	k, _ := f.W.Write(p[:f.N])
	f.N = 0
	return k, ErrDiskFull
}

// ReadFile returns the content of the file at path, failing t when it
// cannot be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// OnlyFiles fails t unless the folder dir holds exactly the entries names
// (in sorted order): what an atomic write must leave behind, with no
// temporary file.
func OnlyFiles(t testing.TB, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(ents))
	for i, e := range ents {
		got[i] = e.Name()
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s holds %q, want %q (a temporary file left behind?)", dir, got, names)
	}
}

// RelErr is ‖a − b‖ / ‖b‖ (or ‖a‖ when b is zero).
func RelErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// FirstBitDiff returns the first index where a and b differ bit for bit
// (NaN payloads and the sign of zero included), or -1; values past the
// shorter slice count as different.
func FirstBitDiff(a, b []float32) int {
	for i := range min(len(a), len(b)) {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
