package train

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/configs"
)

// jobProbe records what Execute does with a Job's hooks.
type jobProbe struct {
	log    bytes.Buffer
	opens  int // OpenBackend calls
	closes int // Close calls of the backends it opened
	// interrupts: Interrupts calls; headerFirst: whether the run's first
	// line was on the log by then; stops: calls of its stop function.
	interrupts, stops int
	headerFirst       bool
	// cancelled makes Interrupts return a cancelled context.
	cancelled bool
	// openErr makes OpenBackend fail.
	openErr error
}

// closeCounting is a backend whose Close is counted.
type closeCounting struct {
	backend.Backend
	n *int
}

func (b closeCounting) Close() error {
	*b.n++
	return b.Backend.Close()
}

func (p *jobProbe) job(cfg configs.Config, dir string, resume bool) Job {
	return Job{
		Config: cfg, Dir: dir, Resume: resume, Progress: ProgressNone, Log: &p.log,
		OpenBackend: func(d configs.Device) (backend.Backend, error) {
			p.opens++
			if p.openErr != nil {
				return nil, p.openErr
			}
			return closeCounting{cpu.New(2), &p.closes}, nil
		},
		Interrupts: func(ctx context.Context) (context.Context, func()) {
			p.interrupts++
			p.headerFirst = strings.Contains(p.log.String(), "run "+dir+": ")
			ctx, cancel := context.WithCancel(ctx)
			if p.cancelled {
				cancel()
			}
			return ctx, func() { p.stops++; cancel() }
		},
	}
}

// Execute trains a Job from a resolved config: the run's first line, the
// training under the context of Interrupts, the Outcome; an interrupted
// run reports where its checkpoint is, and a resumed one finishes.
func TestExecute(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "tiny")
	cfg := tiny(t, "train.epochs=1", "train.sample_every=1")

	var p jobProbe
	p.cancelled = true
	out, err := Execute(context.Background(), p.job(cfg, dir, false))
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Execute under a cancelled context: %v, want ErrInterrupted", err)
	}
	if out.Position != (Position{Epoch: 0, Index: 1, Iter: 1}) || out.Summary.Iters != 1 {
		t.Errorf("interrupted: position %+v, %d iterations; want after the first iteration", out.Position, out.Summary.Iters)
	}
	if c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName)); err != nil || c.State.Position != out.Position {
		t.Fatalf("checkpoint of the interruption: %v (%+v), want at %+v", err, c, out.Position)
	}
	if p.opens != 1 || p.closes != 1 || p.interrupts != 1 || p.stops != 1 || !p.headerFirst {
		t.Errorf("opens %d, closes %d, Interrupts %d (after the first line: %v), stops %d; want 1 each, after it",
			p.opens, p.closes, p.interrupts, p.headerFirst, p.stops)
	}
	data, err := LoadData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	be := cpu.New(2)
	defer be.Close()
	first, _, _ := strings.Cut(p.log.String(), "\n")
	if want := "run " + dir + ": embedded on " + be.Name() + ", 160 training images (" + data.Split + "), model nf=4 nz=8, batch 16, 1 epochs, condition pad"; first != want {
		t.Errorf("first line:\n%s\nwant\n%s", first, want)
	}

	p = jobProbe{}
	out, err = Execute(context.Background(), p.job(cfg, dir, true))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.log.String(), "resuming "+dir+" at epoch 1, batch 1 (iteration 1)\nrun "+dir+": ") {
		t.Errorf("resumed run's log:\n%s", p.log.String())
	}
	if out.Summary.Iters != 9 || out.Position != (Position{Epoch: 1, Index: 0, Iter: 10}) {
		t.Errorf("resumed: %d iterations, position %+v; want 9 and the end of epoch 1", out.Summary.Iters, out.Position)
	}
	if len(out.Samples) == 0 {
		t.Error("no samples listed with train.sample_every=1")
	}
	for _, s := range out.Samples {
		if _, err := os.Stat(s); err != nil {
			t.Errorf("sample: %v", err)
		}
	}
	if p.opens != 1 || p.closes != 1 || p.interrupts != 1 || p.stops != 1 {
		t.Errorf("resumed: opens %d, closes %d, Interrupts %d, stops %d; want 1 each", p.opens, p.closes, p.interrupts, p.stops)
	}
	if n := len(trainRecords(t, dir)); n != 10 {
		t.Errorf("%d train records, want 10", n)
	}

	// Without Interrupts the run trains under Execute's context.
	p = jobProbe{}
	j := p.job(cfg, filepath.Join(t.TempDir(), "plain"), false)
	j.Interrupts = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out, err := Execute(ctx, j); !errors.Is(err, ErrInterrupted) || out.Position.Iter != 1 {
		t.Errorf("without Interrupts, under a cancelled context: %v at %+v, want ErrInterrupted after iteration 1", err, out.Position)
	}
}

// A run that fails its preflight (missing data, a checkpoint without
// --resume) or whose device does not open leaves
// nothing behind: no run directory; and no backend is opened before the
// preflight passed.
func TestExecuteFailsBeforeTheRun(t *testing.T) {
	base := t.TempDir()
	runs := filepath.Join(base, "runs")
	dir := filepath.Join(runs, "x")
	for _, c := range []struct {
		name    string
		cfg     configs.Config
		resume  bool
		openErr error
		want    string
		opens   int
	}{
		{"missing data", tiny(t, "data.dataset=mnist", "data.root="+filepath.Join(base, "no-data")), false, nil, "no-data", 0},
		{"device", tiny(t), false, errors.New("no such device"), "no such device", 1},
	} {
		var p jobProbe
		p.openErr = c.openErr
		out, err := Execute(context.Background(), p.job(c.cfg, dir, c.resume))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
		if out.Position != (Position{}) || out.Summary.Iters != 0 || out.Samples != nil {
			t.Errorf("%s: outcome %+v, want none", c.name, out)
		}
		if p.opens != c.opens || p.interrupts != 0 || p.log.Len() != 0 {
			t.Errorf("%s: %d backends opened (want %d), Interrupts called %d times, log %q", c.name, p.opens, c.opens, p.interrupts, p.log.String())
		}
		if _, err := os.Stat(runs); !os.IsNotExist(err) {
			t.Errorf("%s: %s exists after the failure (%v)", c.name, runs, err)
		}
	}

	// A run with a checkpoint is refused without --resume, and so is its
	// resumption with another config; its directory stays as it was (but
	// for the lock file, which the preflight takes and releases).
	if _, err := run(t, tiny(t, "train.max_iters=1"), dir, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	before := filesIn(t, dir)
	if _, ok := before[CheckpointName]; !ok {
		t.Fatalf("no checkpoint in %s: %v", dir, before)
	}
	for _, c := range []struct {
		name   string
		cfg    configs.Config
		resume bool
		want   string
	}{
		{"a second run without --resume", tiny(t), false, "already has a checkpoint"},
		{"--resume with another config", tiny(t, "model.nz=16"), true, "different config"},
	} {
		var p jobProbe
		if _, err := Execute(context.Background(), p.job(c.cfg, dir, c.resume)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
		if p.opens != 0 || p.log.Len() != 0 {
			t.Errorf("%s: %d backends opened, log %q", c.name, p.opens, p.log.String())
		}
		if after := filesIn(t, dir); !maps.Equal(after, before) {
			t.Errorf("%s changed the run directory", c.name)
		}
	}

	if _, err := Execute(context.Background(), Job{Config: tiny(t), Dir: filepath.Join(base, "y")}); err == nil {
		t.Error("a Job without OpenBackend was accepted")
	}
}

// filesIn maps the path (under dir) of each file in dir but the lock file
// to its content.
func filesIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".lock" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
