package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/internal/testkit"
	"github.com/pad-dreaming/pad/model"
)

// fuzzSpec is the model the fuzzed checkpoints are loaded into.
var fuzzSpec = model.Spec{C: 1, NF: 2, NZ: 4, Batch: 2}

// tinyRunCheckpoint trains fuzzSpec's model for 3 iterations on the
// embedded sample and returns its checkpoint file.
func tinyRunCheckpoint(f *testing.F) []byte {
	f.Helper()
	c := configs.Default()
	for _, kv := range []string{
		"data.dataset=embedded", "data.train_limit=16", "data.test_limit=4", "model.nf=2", "model.nz=4",
		"train.batch=2", "train.epochs=1", "train.max_iters=3", "train.sample_every=0", "eval.every=0", "device.kind=cpu",
	} {
		if err := c.Set(kv); err != nil {
			f.Fatal(err)
		}
	}
	dir := filepath.Join(f.TempDir(), "run")
	tr, err := New(Options{Config: c, Dir: dir, Backend: cpu.New(1), Progress: ProgressNone})
	if err != nil {
		f.Fatal(err)
	}
	_, err = tr.Run(context.Background())
	tr.Close()
	if err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, CheckpointName))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// variant rewrites the checkpoint b: renamed or dropped tensors, changed
// metadata.
func variant(f *testing.F, b []byte, rename func(string) string, meta map[string]string) []byte {
	f.Helper()
	src, err := safetensors.Decode(strings.NewReader(string(b)), int64(len(b)), "seed")
	if err != nil {
		f.Fatal(err)
	}
	w := safetensors.NewWriter()
	for k, v := range src.Metadata {
		w.SetMetadata(k, v)
	}
	for k, v := range meta {
		w.SetMetadata(k, v)
	}
	for _, name := range src.Order {
		n := rename(name)
		if n == "" {
			continue
		}
		t := *src.Tensors[name]
		t.Name = n
		if err := w.Add(&t); err != nil {
			f.Fatal(err)
		}
	}
	out, err := w.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	return out
}

// FuzzReadCheckpoint writes fuzzed bytes to a file and reads it as a
// checkpoint; what reads is loaded with LoadState and LoadWeights into a
// tiny model. Nothing may panic, errors must name the file, allocations
// must stay in proportion to the file, and a refused load must leave the
// model exactly as it was.
func FuzzReadCheckpoint(f *testing.F) {
	real := tinyRunCheckpoint(f)
	f.Add(real)
	f.Add(real[:len(real)/2])
	f.Add(variant(f, real, func(n string) string {
		if strings.HasPrefix(n, "adam.") || strings.HasPrefix(n, "memory.") {
			return ""
		}
		return n
	}, nil))
	f.Add(variant(f, real, func(n string) string { return strings.TrimPrefix(strings.TrimPrefix(n, "E."), "G.") }, map[string]string{"format": "pt"}))
	f.Add(variant(f, real, func(n string) string { return n }, map[string]string{"index": "99", "log_window": "1 2 3", "has_old": "maybe"}))
	p := tinyModel(f, fuzzSpec, 1)
	// Another shape: the same names, other sizes.
	q := tinyModel(f, model.Spec{C: 3, NF: 2, NZ: 5, Batch: 2}, 1)
	other := filepath.Join(f.TempDir(), "other.safetensors")
	if err := SaveCheckpoint(other, q.Backend(), q, State{Config: "x", ConfigHash: "h"}); err != nil {
		f.Fatal(err)
	}
	if b, err := os.ReadFile(other); err != nil {
		f.Fatal(err)
	} else {
		f.Add(b)
	}
	path := filepath.Join(testkit.ScratchDir(f), CheckpointName)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var c *Checkpoint
		var err error
		alloc := testkit.HeapAllocated(func() { c, err = ReadCheckpoint(path) })
		if limit := 64*uint64(len(b)) + 4<<20; alloc > limit {
			t.Fatalf("a %d-byte file made ReadCheckpoint allocate %d bytes", len(b), alloc)
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		before := snapshot(p)
		err = c.LoadState(p.Backend(), p)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadState: error does not name the file: %v", err)
			}
			if d := before.diff(snapshot(p)); d != "" {
				t.Fatalf("LoadState failed (%v) but changed %s", err, d)
			}
		}
		before = snapshot(p)
		if err := c.LoadWeights(p.Backend(), p); err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadWeights: error does not name the file: %v", err)
			}
			if d := before.diff(snapshot(p)); d != "" {
				t.Fatalf("LoadWeights failed (%v) but changed %s", err, d)
			}
		}
	})
}
