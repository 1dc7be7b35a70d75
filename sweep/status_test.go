package sweep

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/train"
)

func TestCheck(t *testing.T) {
	s := Spec{Datasets: []string{"embedded"}, Conditions: []string{"pad"}, Seeds: 1, SeedStart: 1, Sets: []string{"train.epochs=3"}}
	r, _ := s.Run(0)
	cfg, err := s.Config(r)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), r.Name())

	st, err := Check(cfg, dir)
	if err != nil || st.State != NotStarted || st.Progress() != "not started" {
		t.Fatalf("no directory: %+v, %v", st, err)
	}
	for _, c := range []struct {
		epoch, iter, maxIters int
		want                  State
	}{
		{0, 0, 0, Partial},
		{2, 17, 0, Partial},
		{3, 30, 0, Finished},
		{1, 12, 12, Finished}, // train.max_iters reached
		{1, 11, 12, Partial},
	} {
		if err := writeCheckpoint(dir, cfg.Hash(), c.epoch, c.iter); err != nil {
			t.Fatal(err)
		}
		cc := cfg
		cc.Train.MaxIters = c.maxIters // not part of the hash
		st, err := Check(cc, dir)
		if err != nil || st.State != c.want || st.Epoch != c.epoch || st.Iter != c.iter || st.Epochs != 3 {
			t.Errorf("epoch %d iter %d max_iters %d: %+v, %v; want %v", c.epoch, c.iter, c.maxIters, st, err, c.want)
		}
	}
	if st, _ := Check(cfg, dir); !strings.HasPrefix(st.Progress(), "epoch 1/3, iteration 11") {
		t.Errorf("Progress = %q", st.Progress())
	}

	// Another model in the directory: an error that says so.
	other := cfg
	other.Model.NF = cfg.Model.NF + 8
	if _, err := Check(other, dir); !errors.Is(err, ErrOtherConfig) || !strings.Contains(err.Error(), "config.toml") {
		t.Errorf("other config: %v", err)
	}
	// Not a checkpoint, truncated, garbage.
	path := filepath.Join(dir, train.CheckpointName)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"truncated", []byte{1, 2, 3}},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"json", append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, "{!}\n"...)},
		{"format", append([]byte{2, 0, 0, 0, 0, 0, 0, 0}, "{}"...)},
	} {
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Check(cfg, dir); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s checkpoint: error %v does not name %s", c.name, err, path)
		}
	}
	if _, err := Check(cfg, dir); !errors.Is(err, train.ErrNotCheckpoint) {
		t.Errorf("empty header: %v, want ErrNotCheckpoint", err)
	}
}

func TestWriteList(t *testing.T) {
	s := Spec{Datasets: []string{"embedded"}, Conditions: []string{"pad", "no-rem"}, Seeds: 1, SeedStart: 5, Sets: []string{"train.epochs=2"}}
	runs := t.TempDir()
	r, _ := s.Run(1)
	cfg, _ := s.Config(r)
	if err := writeCheckpoint(filepath.Join(runs, r.Name()), cfg.Hash(), 1, 4); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteList(&b, s, runs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"index", "run", "dataset", "condition", "seed", "state"},
		{"0", "embedded-pad-s5", "embedded", "pad", "5", "not-started"},
		{"1", "embedded-no-rem-s5", "embedded", "no-rem", "5", "partial(1/2)"},
	}
	if len(lines) != len(want) {
		t.Fatalf("list:\n%s", b.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d = %q, want %q", i, got, want[i])
		}
	}
}
