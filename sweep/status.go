package sweep

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/train"
)

// State says how far a run has got.
type State int

const (
	// NotStarted: the run directory holds no checkpoint.
	NotStarted State = iota
	// Partial: a checkpoint short of the configured epochs (and of
	// train.max_iters, when set); the run resumes from it.
	Partial
	// Finished: the checkpoint's epoch equals train.epochs, or its
	// iteration count reached train.max_iters.
	Finished
)

func (s State) String() string {
	switch s {
	case NotStarted:
		return "not-started"
	case Partial:
		return "partial"
	case Finished:
		return "finished"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Status is what a run directory says about its run.
type Status struct {
	State State
	// Epoch and Iter are the checkpoint's position: the epochs completed
	// (the epoch in progress, counted from 0) and the iterations done.
	Epoch, Iter int
	// Epochs and MaxIters are the configured targets.
	Epochs, MaxIters int
}

// Progress describes the position, e.g. "epoch 12/50, iteration 9384".
func (st Status) Progress() string {
	switch st.State {
	case NotStarted:
		return "not started"
	}
	s := fmt.Sprintf("epoch %d/%d, iteration %d", st.Epoch, st.Epochs, st.Iter)
	if st.MaxIters > 0 {
		s += fmt.Sprintf("/%d", st.MaxIters)
	}
	return s
}

// ErrOtherConfig is returned by Check for a run directory whose checkpoint
// was written with different training settings than the sweep's.
var ErrOtherConfig = errors.New("the checkpoint was written with a different config")

// maxHeader bounds the safetensors header Check reads; pad's checkpoint
// headers are a few kilobytes.
const maxHeader = 16 << 20

// Check reads the checkpoint in dir (its header only, not the tensors) and
// compares it with cfg: finished runs are those whose epoch reached
// cfg.Train.Epochs or whose iterations reached cfg.Train.MaxIters. A
// checkpoint with another config hash (other model or training settings)
// is an error wrapping ErrOtherConfig; epochs and max_iters are not part
// of the hash, so a run may be extended.
func Check(cfg configs.Config, dir string) (Status, error) {
	st := Status{Epochs: cfg.Train.Epochs, MaxIters: cfg.Train.MaxIters}
	path := filepath.Join(dir, train.CheckpointName)
	md, err := readMetadata(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if md["format"] != train.CheckpointFormat {
		return st, fmt.Errorf("%s: %w (metadata format = %q, want %q)", path, train.ErrNotCheckpoint, md["format"], train.CheckpointFormat)
	}
	for _, kv := range []struct {
		key string
		dst *int
	}{{"epoch", &st.Epoch}, {"iter", &st.Iter}} {
		v, err := strconv.Atoi(md[kv.key])
		if err != nil || v < 0 {
			return st, fmt.Errorf("%s: metadata %s = %q: want a non-negative integer", path, kv.key, md[kv.key])
		}
		*kv.dst = v
	}
	if h := cfg.Hash(); md["config_hash"] != h {
		return st, fmt.Errorf("%s: %w (hash %s, the sweep's is %s): move the directory away or run the sweep with its settings (see %s)",
			path, ErrOtherConfig, md["config_hash"], h, filepath.Join(dir, "config.toml"))
	}
	st.State = Partial
	if st.Epoch >= st.Epochs || st.MaxIters > 0 && st.Iter >= st.MaxIters {
		st.State = Finished
	}
	return st, nil
}

// readMetadata returns the "__metadata__" object of the safetensors file at
// path without reading its tensors.
func readMetadata(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return nil, fmt.Errorf("%s: reading the header length: %w", path, err)
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > maxHeader {
		return nil, fmt.Errorf("%s: header length %d exceeds %d bytes: not a pad checkpoint", path, size, maxHeader)
	}
	hdr := make([]byte, size)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("%s: reading the %d-byte header: %w", path, size, err)
	}
	var h struct {
		Metadata map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	return h.Metadata, nil
}
