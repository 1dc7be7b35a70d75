package train

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/metrics"
)

func TestETAHonoursMaxIters(t *testing.T) {
	cases := []struct {
		pos                   Position
		epochs, bpe, maxIters int
		wantLeft, wantTotal   int
	}{
		{Position{Epoch: 0, Index: 10, Iter: 10}, 3, 100, 0, 290, 300},
		{Position{Epoch: 0, Index: 10, Iter: 10}, 3, 100, 50, 40, 50},
		{Position{Epoch: 1, Index: 20, Iter: 120}, 3, 100, 150, 30, 150},
		{Position{Epoch: 1, Index: 20, Iter: 120}, 3, 100, 1000, 180, 300}, // the epochs end first
		{Position{Epoch: 0, Index: 60, Iter: 60}, 3, 100, 50, 0, 50},       // past the limit
	}
	for _, c := range cases {
		if got := itersLeft(c.pos, c.epochs, c.bpe, c.maxIters); got != c.wantLeft {
			t.Errorf("itersLeft(%+v, %d epochs × %d, max %d) = %d, want %d", c.pos, c.epochs, c.bpe, c.maxIters, got, c.wantLeft)
		}
		if got := totalIters(c.epochs, c.bpe, c.maxIters); got != c.wantTotal {
			t.Errorf("totalIters(%d × %d, max %d) = %d, want %d", c.epochs, c.bpe, c.maxIters, got, c.wantTotal)
		}
		want := time.Duration(c.wantLeft) * time.Second / 4
		if got := timeLeft(c.pos, c.epochs, c.bpe, c.maxIters, 4); got != want {
			t.Errorf("timeLeft at 4 it/s = %v, want %v", got, want)
		}
	}
	if got := timeLeft(Position{}, 1, 10, 0, 0); got != 0 {
		t.Errorf("timeLeft without a rate = %v", got)
	}
}

// cancelOn is a log that cancels a context when a line containing trigger
// is written.
type cancelOn struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	cancel  func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trigger != "" && bytes.Contains(p, []byte(c.trigger)) {
		c.cancel()
	}
	return c.buf.Write(p)
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func probeRecords(t *testing.T, dir string) []metrics.Record {
	t.Helper()
	return recordsOf(t, dir, metrics.KindProbe)
}

// In lines mode a probe prints a line when it starts and one with its
// result and time; an interrupt during a probe stops it, keeps the
// checkpoint of the epoch's end, and the resumed run probes that epoch
// first and ends as an uninterrupted run does.
func TestProbeProgressAndInterrupt(t *testing.T) {
	cfg := tiny(t, "eval.every=1", "eval.probe_epochs=2", "train.log_every=5")

	ref := t.TempDir()
	var refLog bytes.Buffer
	tr, err := New(Options{Config: cfg, Dir: ref, Backend: cpu.New(2), Progress: ProgressLines, Log: &refLog})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	out := refLog.String()
	for _, want := range []string{
		"epoch 0: linear probe: encoding 160 training and 64 test images, then 2 epochs of SGD…\n",
		"epoch 1: linear probe: encoding",
		"epoch 2: linear probe test accuracy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lines output lacks %q:\n%s", want, out)
		}
	}
	if !regexpMatch(`epoch 1: linear probe test accuracy [0-9.]+% \(train [0-9.]+%\) in [0-9.]+ s\n`, out) {
		t.Errorf("no result line with the probe's time:\n%s", out)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &cancelOn{trigger: "epoch 1: linear probe: encoding", cancel: cancel}
	tr, err = New(Options{Config: cfg, Dir: dir, Backend: cpu.New(2), Progress: ProgressLines, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Run(ctx)
	pos := tr.Position()
	tr.Close()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run during a probe: %v, want ErrInterrupted\n%s", err, log)
	}
	if !strings.Contains(log.String(), "epoch 1: linear probe interrupted after") {
		t.Errorf("no line about the interrupted probe:\n%s", log)
	}
	st, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Epoch != 1 || st.State.Index != 0 || pos.Epoch != 1 {
		t.Fatalf("checkpoint at epoch %d batch %d, want the end of epoch 1", st.State.Epoch, st.State.Index)
	}
	if n := len(probeRecords(t, dir)); n != 1 {
		t.Errorf("%d probe records after the interrupt, want 1 (epoch 0)", n)
	}

	var resumed bytes.Buffer
	tr, err = New(Options{Config: cfg, Dir: dir, Resume: true, Backend: cpu.New(2), Progress: ProgressLines, Log: &resumed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if i := strings.Index(resumed.String(), "epoch 1: linear probe test accuracy"); i < 0 || strings.Contains(resumed.String()[:i], "[2/2]") {
		t.Errorf("the resumed run does not probe epoch 1 before training on:\n%s", resumed.String())
	}
	got, want := probeRecords(t, dir), probeRecords(t, ref)
	if len(got) != len(want) {
		t.Fatalf("%d probe records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Epoch != want[i].Epoch || *got[i].TestAcc != *want[i].TestAcc || *got[i].TrainAcc != *want[i].TrainAcc {
			t.Errorf("probe %d: epoch %d test %v, want epoch %d test %v", i, got[i].Epoch, *got[i].TestAcc, want[i].Epoch, *want[i].TestAcc)
		}
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
