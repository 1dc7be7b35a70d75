package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// FileName is the name of the JSON-lines file in a run directory.
const FileName = "metrics.jsonl"

// maxRepair bounds how far back Open looks for the end of the last
// complete line of an existing metrics file.
const maxRepair = 1 << 20

// Writer appends Records to <dir>/metrics.jsonl and mirrors their measures
// into a TensorBoard event file in dir. A Writer is safe for concurrent use.
type Writer struct {
	mu      sync.Mutex
	dir     string
	jsonl   *os.File
	events  *EventFile
	dropped int
}

// Open opens the run directory dir (creating it if needed) for writing
// metrics: records are appended to an existing metrics.jsonl, and a new
// event file is started. If a crash left an incomplete last line in
// metrics.jsonl, Open removes it (Dropped says how many bytes), so that the
// file holds only whole records; a last line that is a whole record but
// lacks its newline gets one.
func Open(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	dropped, err := repairTail(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	ev, err := CreateEventFile(dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{dir: dir, jsonl: f, events: ev, dropped: dropped}, nil
}

// repairTail makes the file end at a line boundary: an incomplete last line
// is cut off (returning its length), a complete record without its newline
// is given one.
func repairTail(f *os.File, path string) (int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return 0, nil
	}
	n := min(size, maxRepair)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("metrics: reading %s: %w", path, err)
	}
	if tail[n-1] == '\n' {
		return 0, nil
	}
	cut := bytes.LastIndexByte(tail, '\n') + 1 // 0 when no newline
	if cut == 0 && size > maxRepair {
		return 0, fmt.Errorf("metrics: %s: no line break in its last %d bytes", path, maxRepair)
	}
	last := tail[cut:]
	var r Record
	if json.Unmarshal(last, &r) == nil {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return 0, fmt.Errorf("metrics: repairing %s: %w", path, err)
		}
		return 0, nil
	}
	if err := f.Truncate(size - n + int64(cut)); err != nil {
		return 0, fmt.Errorf("metrics: cutting the incomplete last line of %s: %w", path, err)
	}
	return len(last), nil
}

// Dropped returns the number of bytes of an incomplete last line that Open
// removed from metrics.jsonl (0 when the file was whole).
func (w *Writer) Dropped() int { return w.dropped }

// Dir returns the run directory.
func (w *Writer) Dir() string { return w.dir }

// EventPath returns the path of the TensorBoard event file.
func (w *Writer) EventPath() string { return w.events.Path() }

// Write appends r as one line to metrics.jsonl (in a single write, so that
// a crash never interleaves records) and writes its measures to the event
// file (see Scalars for the tags and steps).
func (w *Writer) Write(r Record) error {
	line, err := r.MarshalJSON()
	if err != nil {
		return fmt.Errorf("metrics: encoding a %q record: %w", r.Kind, err)
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jsonl == nil {
		return fmt.Errorf("metrics: writer for %s is closed", w.dir)
	}
	if _, err := w.jsonl.Write(line); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", filepath.Join(w.dir, FileName), err)
	}
	step, scalars := r.Scalars()
	return w.events.WriteScalars(step, scalars)
}

// MarkStart marks in the event file that training (re)starts at step: an
// event with SessionLog START, after which TensorBoard drops the points of
// earlier event files whose step is step or more (see
// EventFile.WriteSessionStart). A trainer calls it once per process, with
// the first step it will log: 0 for a new run, the checkpoint's iteration
// + 1 for a resumed one.
func (w *Writer) MarkStart(step int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jsonl == nil {
		return fmt.Errorf("metrics: writer for %s is closed", w.dir)
	}
	return w.events.WriteSessionStart(step)
}

// Sync commits both files to stable storage.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jsonl == nil {
		return nil
	}
	if err := w.jsonl.Sync(); err != nil {
		return fmt.Errorf("metrics: syncing %s: %w", filepath.Join(w.dir, FileName), err)
	}
	return w.events.Sync()
}

// Close syncs and closes both files.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jsonl == nil {
		return nil
	}
	path := filepath.Join(w.dir, FileName)
	err := w.jsonl.Sync()
	if cerr := w.jsonl.Close(); err == nil {
		err = cerr
	}
	w.jsonl = nil
	if err != nil {
		err = fmt.Errorf("metrics: closing %s: %w", path, err)
	}
	if serr := w.events.Sync(); err == nil {
		err = serr
	}
	if cerr := w.events.Close(); err == nil {
		err = cerr
	}
	return err
}

// Scalars returns the TensorBoard step and scalars of r.
//
// The step is Iter for KindTrain records and Epoch for every other kind.
// Each measure is tagged "<kind>/<json key>" (e.g. "train/wake_rec",
// "epoch/kl", "probe/test_acc", "latent/intra_inter"), except in occlusion
// records, where the accuracies are tagged by the occlusion probability:
// TestAcc as "occlusion/p0.30", TestAccAll as "occlusion_all/p0.30"; a tile
// size other than the protocol's 4 becomes part of the prefix
// ("occlusion_t8/p0.30"). P itself is not a scalar.
func (r Record) Scalars() (int64, []Scalar) {
	step := int64(r.Epoch)
	if r.Kind == KindTrain {
		step = int64(r.Iter)
	}
	kind := r.Kind
	if kind == "" {
		kind = "unknown"
	}
	var out []Scalar
	occlusion := r.Kind == KindOcclusion && r.P != nil
	for _, m := range r.measures() {
		if *m.ptr == nil {
			continue
		}
		v := float32(**m.ptr)
		if occlusion {
			prefix := "occlusion"
			switch m.key {
			case "p":
				continue
			case "test_acc":
			case "test_acc_all":
				prefix = "occlusion_all"
			default:
				out = append(out, Scalar{Tag: kind + "/" + m.key, Value: v})
				continue
			}
			if r.Tile != 0 && r.Tile != 4 {
				prefix += "_t" + strconv.Itoa(r.Tile)
			}
			out = append(out, Scalar{Tag: prefix + "/" + pTag(*r.P), Value: v})
			continue
		}
		out = append(out, Scalar{Tag: kind + "/" + m.key, Value: v})
	}
	return step, out
}

// pTag formats an occlusion probability for a tag: "p0.30".
func pTag(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return "p" + strconv.FormatFloat(p, 'g', -1, 64)
	}
	return "p" + strconv.FormatFloat(p, 'f', 2, 64)
}
