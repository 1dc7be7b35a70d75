package train

// In-process reliability tests: interrupts at awkward moments, checkpoint
// writes that fail midway, stale files of killed processes, and checkpoints
// that do not fit the model. The tests that need real processes (SIGKILL,
// SIGINT, a file-size limit, two processes on one run) are in crash_test.go.
//
// Runs here use one CPU thread, the cheapest on a loaded machine; the CPU
// backend gives the same bits on any number of threads
// (threads_test.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/internal/testkit"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// runOne trains cfg in dir on a one-thread CPU backend.
func runOne(t *testing.T, cfg configs.Config, dir string, resume bool, ctx context.Context, log io.Writer, mode ProgressMode) (Summary, error) {
	t.Helper()
	tr, err := New(Options{Config: cfg, Dir: dir, Resume: resume, Backend: cpu.New(1), Log: log, Progress: mode})
	if err != nil {
		return Summary{}, err
	}
	defer tr.Close()
	return tr.Run(ctx)
}

// reference trains cfg without interruption into a fresh directory.
func reference(t *testing.T, cfg configs.Config) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "reference")
	if _, err := runOne(t, cfg, dir, false, context.Background(), nil, ProgressNone); err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	return dir
}

// cancelAt is a progress log that cancels a context as soon as the line of
// iteration iter is printed: Run sees the cancellation in the interrupt
// check of that very iteration, as if a Ctrl-C had arrived during it.
type cancelAt struct {
	mu     sync.Mutex
	iter   int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelAt) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if bytes.Contains(c.buf.Bytes(), []byte(fmt.Sprintf("] it %d ", c.iter))) {
		c.cancel()
	}
	return len(p), nil
}

// runCancelledAt trains cfg in dir and interrupts it during iteration iter
// (counted from 1, as the logs count).
func runCancelledAt(t *testing.T, cfg configs.Config, dir string, resume bool, iter int) (Summary, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return runOne(t, cfg, dir, resume, ctx, &cancelAt{iter: iter, cancel: cancel}, ProgressLines)
}

// recordsOf returns the records of the given kinds in dir's metrics.jsonl.
func recordsOf(t *testing.T, dir string, kinds ...string) []metrics.Record {
	t.Helper()
	recs, skipped, err := metrics.ReadFile(filepath.Join(dir, metrics.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 0 {
		t.Errorf("%s: metrics.jsonl ends in an incomplete line", dir)
	}
	var out []metrics.Record
	for _, r := range recs {
		if slices.Contains(kinds, r.Kind) {
			out = append(out, r)
		}
	}
	return out
}

// sameBits compares two optional measures bit for bit.
func sameBits(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Float64bits(*a) == math.Float64bits(*b)
}

// sameRecords checks that got holds exactly the records of want, with the
// same values (timings aside).
func sameRecords(t *testing.T, what string, want, got []metrics.Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d records, the uninterrupted run has %d", what, len(got), len(want))
	}
	for i := range want {
		a, b := want[i], got[i]
		same := a.Kind == b.Kind && a.Epoch == b.Epoch && a.Iter == b.Iter
		for _, m := range [][2]*float64{{a.WakeRec, b.WakeRec}, {a.NREMRec, b.NREMRec}, {a.KL, b.KL}, {a.DLoss, b.DLoss},
			{a.GLoss, b.GLoss}, {a.DX, b.DX}, {a.DGZ, b.DGZ}, {a.LatentNorm, b.LatentNorm}} {
			same = same && sameBits(m[0], m[1])
		}
		if !same {
			wa, _ := a.MarshalJSON()
			wb, _ := b.MarshalJSON()
			t.Fatalf("%s: record %d differs:\nuninterrupted %s\ngot           %s", what, i, wa, wb)
		}
	}
}

// sameCheckpoint checks that the checkpoints in dirs want and got hold the
// same position and the same tensors, bit for bit.
func sameCheckpoint(t *testing.T, want, got string) {
	t.Helper()
	a, err := ReadCheckpoint(filepath.Join(want, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadCheckpoint(filepath.Join(got, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if a.State.Position != b.State.Position || a.State.HasOld != b.State.HasOld {
		t.Fatalf("checkpoint at %+v (has_old %v), the uninterrupted run's at %+v (has_old %v)",
			b.State.Position, b.State.HasOld, a.State.Position, a.State.HasOld)
	}
	if len(a.file.Tensors) != len(b.file.Tensors) {
		t.Fatalf("checkpoint holds %d tensors, the uninterrupted run's %d", len(b.file.Tensors), len(a.file.Tensors))
	}
	f32 := 0
	for name, ta := range a.file.Tensors {
		tb, ok := b.file.Tensors[name]
		if !ok {
			t.Fatalf("tensor %s missing", name)
		}
		if ta.DType != tb.DType || !slices.Equal(ta.Shape, tb.Shape) {
			t.Fatalf("%s: %s %v, the uninterrupted run's %s %v", name, tb.DType, tb.Shape, ta.DType, ta.Shape)
		}
		if ta.DType == safetensors.F32 {
			f32++
		}
		// Comparing the raw little-endian bytes compares every value bit
		// for bit (NaNs included).
		if !bytes.Equal(ta.Data, tb.Data) {
			va, _ := ta.F32()
			vb, _ := tb.F32()
			for i := range va {
				if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
					t.Fatalf("%s[%d] = %v, the uninterrupted run's %v", name, i, vb[i], va[i])
				}
			}
			t.Fatalf("%s differs from the uninterrupted run's", name)
		}
	}
	if f32 == 0 {
		t.Fatal("no F32 tensors compared")
	}
}

// modelState is everything LoadState may change, downloaded.
type modelState struct {
	vals   [][]float32
	steps  [][]int
	hasOld bool
}

func snapshot(p *phases.PAD) modelState {
	b := p.Backend()
	var s modelState
	get := func(x backend.Buf) {
		v := make([]float32, x.Len())
		b.Download(v, x)
		s.vals = append(s.vals, v)
	}
	for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
		get(n.Values)
		get(n.M)
		get(n.V)
		s.steps = append(s.steps, slices.Clone(n.AdamSteps))
	}
	get(p.Memory)
	get(p.MemoryOld)
	s.hasOld = p.HasOld()
	return s
}

// diff names the first difference of s and o, or "".
func (s modelState) diff(o modelState) string {
	if s.hasOld != o.hasOld {
		return "has_old"
	}
	for i := range s.steps {
		if !slices.Equal(s.steps[i], o.steps[i]) {
			return fmt.Sprintf("the Adam steps of net %d", i)
		}
	}
	for i := range s.vals {
		for j := range s.vals[i] {
			if math.Float32bits(s.vals[i][j]) != math.Float32bits(o.vals[i][j]) {
				return fmt.Sprintf("value %d of buffer %d", j, i)
			}
		}
	}
	return ""
}

// tinyModel builds a PAD model on the CPU without any data.
func tinyModel(t testing.TB, spec model.Spec, seed uint64) *phases.PAD {
	t.Helper()
	cond, err := conditions.Lookup("pad")
	if err != nil {
		t.Fatal(err)
	}
	p, err := phases.New(cpu.New(1), spec, cond, phases.Options{Seed: seed, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Ctrl-C during the last iteration of an epoch: before the fix the
// checkpoint said "batch 10 of epoch 0" in an epoch of 10 batches, and
// --resume failed with "seek to epoch 0 batch 10". Now the epoch is closed
// (its record written) and the checkpoint is at the start of the next one;
// interrupts at the last iteration of an epoch and in the middle of one,
// each resumed, give the uninterrupted run's records and parameters.
func TestInterruptAtEpochEnd(t *testing.T) {
	cfg := tiny(t, "train.checkpoint_every=0")
	ref := reference(t, cfg)
	dir := filepath.Join(t.TempDir(), "run")
	for _, stop := range []struct{ iter, epoch, index int }{{10, 1, 0}, {14, 1, 4}} {
		_, err := runCancelledAt(t, cfg, dir, stop.iter > 10, stop.iter)
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("interrupt at iteration %d: %v, want ErrInterrupted", stop.iter, err)
		}
		c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Position{Epoch: stop.epoch, Index: stop.index, Iter: stop.iter}); c.State.Position != want {
			t.Fatalf("interrupt at iteration %d: checkpoint at %+v, want %+v", stop.iter, c.State.Position, want)
		}
	}
	if _, err := runOne(t, cfg, dir, true, context.Background(), nil, ProgressNone); err != nil {
		t.Fatalf("resuming: %v", err)
	}
	sameRecords(t, "train and epoch records", recordsOf(t, ref, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, dir, metrics.KindTrain, metrics.KindEpoch))
	sameCheckpoint(t, ref, dir)
}

// tempNames lists the names in dir that look like temporary files.
func tempNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			out = append(out, e.Name())
		}
	}
	return out
}

// A process killed while writing leaves its temporary files behind; the
// next process on the run removes them once it holds the lock, and only
// them. While another process holds the run, its files are left alone.
func TestNewRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".checkpoint.safetensors.tmp-123456", ".config.toml.tmp98765", ".metrics.jsonl.tmp42"}
	keep := []string{".other.tmp-1", "checkpoint.safetensors.tmp-not-hidden", "notes.txt"}
	for _, name := range append(slices.Clone(stale), keep...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A folder that matches a pattern is not a temporary file of pad's.
	if err := os.Mkdir(filepath.Join(dir, ".checkpoint.safetensors.tmp-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := New(Options{Config: tiny(t), Dir: dir, Backend: cpu.New(1), Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s not removed (%v)", name, err)
		}
	}
	for _, name := range append(slices.Clone(keep), ".checkpoint.safetensors.tmp-dir") {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
	// The first trainer is "writing": a second one must not touch its file.
	inFlight := filepath.Join(dir, ".checkpoint.safetensors.tmp-777")
	if err := os.WriteFile(inFlight, []byte("being written"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Config: tiny(t), Dir: dir, Backend: cpu.New(1), Progress: ProgressNone}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second trainer: %v", err)
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Fatalf("a trainer without the lock removed another process's file: %v", err)
	}
	first.Close()
}

// A fresh start in a run directory that holds the records of an attempt
// killed before its first checkpoint does not append to them; it keeps
// them aside.
func TestFreshStartSetsAsideOrphanMetrics(t *testing.T) {
	cfg := tiny(t, "train.checkpoint_every=0")
	ref := reference(t, cfg)
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// What a process killed after three iterations (no checkpoint yet)
	// leaves, with a torn last line.
	var old []byte
	for _, r := range recordsOf(t, ref, metrics.KindTrain)[:3] {
		r.WakeRec = metrics.F(123)
		line, _ := r.MarshalJSON()
		old = append(append(old, line...), '\n')
	}
	old = append(old, `{"kind":"train","epoch":0,"it`...)
	if err := os.WriteFile(filepath.Join(dir, metrics.FileName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runOne(t, cfg, dir, false, context.Background(), nil, ProgressNone); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "train and epoch records", recordsOf(t, ref, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, dir, metrics.KindTrain, metrics.KindEpoch))
	sameCheckpoint(t, ref, dir)
	if kept, err := os.ReadFile(filepath.Join(dir, metrics.FileName+".abandoned-1")); err != nil || string(kept) != string(old) {
		t.Fatalf("the earlier attempt's records were not kept aside unchanged: %v", err)
	}
}

// --resume in a run directory without a checkpoint starts the run afresh,
// with one notice line, keeping the earlier attempt's records aside as the
// plain command does: the result is the uninterrupted run. A config.toml
// there with other settings is an error that names the keys, and changes
// nothing.
func TestResumeWithoutCheckpointStartsAfresh(t *testing.T) {
	cfg := tiny(t, "train.checkpoint_every=0")
	ref := reference(t, cfg)

	// A run directory that does not exist yet.
	var log bytes.Buffer
	dir := filepath.Join(t.TempDir(), "never-started")
	if _, err := runOne(t, cfg, dir, true, context.Background(), &log, ProgressNone); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "notice:"); n != 1 || !strings.Contains(log.String(), "notice: --resume: "+dir+" has no checkpoint to resume from; starting the run afresh\n") {
		t.Errorf("log of a --resume of nothing:\n%s", log.String())
	}
	sameCheckpoint(t, ref, dir)

	// What a process killed before its first checkpoint leaves: config.toml,
	// metrics.jsonl with some records, an event file, a temporary checkpoint.
	dir = filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// (The earlier attempt ran for more epochs: keys outside the config
	// hash may differ.)
	resolved, err := tiny(t, "train.checkpoint_every=0", "train.epochs=5").Resolved().TOML()
	if err != nil {
		t.Fatal(err)
	}
	var old []byte
	for _, r := range recordsOf(t, ref, metrics.KindTrain)[:2] {
		line, _ := r.MarshalJSON()
		old = append(append(old, line...), '\n')
	}
	for name, data := range map[string][]byte{
		"config.toml":                  resolved,
		metrics.FileName:               old,
		"." + CheckpointName + ".tmp1": []byte("torn"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Another model is refused, naming the keys, and leaves all as it was.
	before := filesIn(t, dir)
	_, err = runOne(t, tiny(t, "train.checkpoint_every=0", "model.nz=16", "train.condition=no-rem"), dir, true, context.Background(), nil, ProgressNone)
	if err == nil || !strings.Contains(err.Error(), "different config (model.nz 8 → 16, train.condition pad → no-rem, train.nrem_weight 1 → 0.5, train.rem_weight 1 → 0, train.wake_noise 0 → 0.5)") ||
		!strings.Contains(err.Error(), filepath.Join(dir, "config.toml")) {
		t.Fatalf("--resume with another config and no checkpoint: %v", err)
	}
	if after := filesIn(t, dir); !maps.Equal(after, before) {
		t.Errorf("the refused --resume changed the run directory")
	}

	log.Reset()
	if _, err := runOne(t, cfg, dir, true, context.Background(), &log, ProgressNone); err != nil {
		t.Fatal(err)
	}
	want := "notice: --resume: " + dir + " has no checkpoint to resume from; starting the run afresh; the records of the earlier attempt are kept as " +
		filepath.Join(dir, metrics.FileName+".abandoned-1") + "\n"
	if !strings.Contains(log.String(), want) || strings.Count(log.String(), "notice:") != 1 {
		t.Errorf("log lacks %q (once):\n%s", want, log.String())
	}
	sameCheckpoint(t, ref, dir)
	sameRecords(t, "train and epoch records", recordsOf(t, ref, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, dir, metrics.KindTrain, metrics.KindEpoch))
	if kept, err := os.ReadFile(filepath.Join(dir, metrics.FileName+".abandoned-1")); err != nil || string(kept) != string(old) {
		t.Fatalf("the earlier attempt's records were not kept aside unchanged: %v", err)
	}
	if tmp := tempNames(t, dir); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// A checkpoint write that fails midway stops the run with an error naming
// the checkpoint and the cause; the previous checkpoint is untouched and
// loads, no temporary file is left, and resuming later completes the run
// exactly.
func TestCheckpointWriteFailsMidway(t *testing.T) {
	cfg := tiny(t, "train.checkpoint_every=1")
	ref := reference(t, cfg)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := runOne(t, tiny(t, "train.checkpoint_every=1", "train.max_iters=3"), dir, false, context.Background(), nil, ProgressNone); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CheckpointName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wrapCheckpointFile = nil })
	for _, n := range []int{0, 7, 100, len(good) / 2, len(good) - 1} {
		wrapCheckpointFile = func(w io.Writer) io.Writer { return &testkit.FailAfter{W: w, N: n} }
		_, err := runOne(t, cfg, dir, true, context.Background(), nil, ProgressNone)
		wrapCheckpointFile = nil
		if !errors.Is(err, testkit.ErrDiskFull) {
			t.Fatalf("failing after %d bytes: %v, want the injected error", n, err)
		}
		for _, want := range []string{"checkpoint " + path, "no space left on device", "previous checkpoint is unchanged"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("failing after %d bytes: error does not say %q:\n%v", n, want, err)
			}
		}
		if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, good) {
			t.Fatalf("failing after %d bytes: the previous checkpoint changed (%v)", n, err)
		}
		if tmp := tempNames(t, dir); len(tmp) > 0 {
			t.Fatalf("failing after %d bytes: temporary files left: %v", n, tmp)
		}
	}
	c, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Iter != 3 {
		t.Fatalf("checkpoint at iteration %d, want 3", c.State.Iter)
	}
	p := tinyModel(t, model.Spec{C: 1, NF: 4, NZ: 8, Batch: 16}, 1)
	if err := c.LoadState(p.Backend(), p); err != nil {
		t.Fatalf("the previous checkpoint does not load: %v", err)
	}
	if _, err := runOne(t, cfg, dir, true, context.Background(), nil, ProgressNone); err != nil {
		t.Fatalf("resuming after the failures: %v", err)
	}
	sameRecords(t, "train records", recordsOf(t, ref, metrics.KindTrain), recordsOf(t, dir, metrics.KindTrain))
	sameCheckpoint(t, ref, dir)
}

// checkRefused checks that err lists the tensors and that p did not change.
func checkRefused(t *testing.T, what string, err error, before modelState, p *phases.PAD, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: loaded", what)
	}
	for _, name := range names {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not list %s:\n%v", what, name, err)
		}
	}
	if d := before.diff(snapshot(p)); d != "" {
		t.Fatalf("%s: a refused checkpoint changed the model (%s)", what, d)
	}
}

// A checkpoint of a model with another number of channels (an embedded,
// C = 1 run into a C = 3 model, and the reverse) is refused with the
// channel-dependent tensors listed and the model unchanged.
func TestCheckpointChannelMismatch(t *testing.T) {
	dir := t.TempDir()
	save := func(c int) string {
		p := tinyModel(t, model.Spec{C: c, NF: 4, NZ: 8, Batch: 16}, 7)
		path := filepath.Join(dir, fmt.Sprintf("c%d.safetensors", c))
		if err := SaveCheckpoint(path, p.Backend(), p, State{Config: "x", ConfigHash: "h"}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	paths := map[int]string{1: save(1), 3: save(3)}
	for _, c := range []struct{ from, into int }{{1, 3}, {3, 1}} {
		ck, err := ReadCheckpoint(paths[c.from])
		if err != nil {
			t.Fatal(err)
		}
		p := tinyModel(t, model.Spec{C: c.into, NF: 4, NZ: 8, Batch: 16}, 1)
		before := snapshot(p)
		what := fmt.Sprintf("C=%d into C=%d", c.from, c.into)
		err = ck.LoadWeights(p.Backend(), p)
		checkRefused(t, what+" LoadWeights", err, before, p, paths[c.from], "E.conv1.0.weight", "G.tconv4.0.weight")
		if strings.Contains(err.Error(), "E.conv2.0.weight") {
			t.Errorf("%s: error lists a tensor that fits:\n%v", what, err)
		}
		err = ck.LoadState(p.Backend(), p)
		checkRefused(t, what+" LoadState", err, before, p, "E.conv1.0.weight", "adam.E.conv1.0.weight.exp_avg", "adam.G.tconv4.0.weight.exp_avg_sq")
	}
}

// Safetensors files pad did not write — PyTorch state dicts with or without
// pad's format metadata, weights-only exports — are refused with a clear
// error and never loaded in part.
func TestForeignSafetensors(t *testing.T) {
	dir := t.TempDir()
	p := tinyModel(t, model.Spec{C: 1, NF: 4, NZ: 8, Batch: 16}, 3)
	write := func(name string, meta map[string]string, rename func(string) string, keep func(string) bool) string {
		src := filepath.Join(dir, "src.safetensors")
		if err := SaveCheckpoint(src, p.Backend(), p, State{Config: "x", ConfigHash: "h"}); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Read(src)
		if err != nil {
			t.Fatal(err)
		}
		w := safetensors.NewWriter()
		for k, v := range meta {
			w.SetMetadata(k, v)
		}
		for _, n := range f.Order {
			if !keep(n) {
				continue
			}
			tt := *f.Tensors[n]
			tt.Name = rename(n)
			if err := w.Add(&tt); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, name)
		if err := safetensors.WriteFileAtomic(path, w); err != nil {
			t.Fatal(err)
		}
		return path
	}
	all := func(string) bool { return true }
	same := func(n string) string { return n }
	torchName := func(n string) string { return strings.TrimPrefix(strings.TrimPrefix(n, "E."), "G.") }
	padMeta := map[string]string{"format": CheckpointFormat, "epoch": "1", "index": "0", "iter": "10"}

	// PyTorch's save_file: tensor names only, metadata {"format": "pt"}.
	for _, meta := range []map[string]string{nil, {"format": "pt"}} {
		path := write("torch.safetensors", meta, torchName, func(n string) bool { return !strings.HasPrefix(n, "adam.") && !strings.HasPrefix(n, "memory.") })
		_, err := ReadCheckpoint(path)
		if !errors.Is(err, ErrNotCheckpoint) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), CheckpointFormat) {
			t.Errorf("PyTorch file with metadata %v: %v", meta, err)
		}
	}
	// Someone's converter that copied pad's metadata but wrote PyTorch
	// names: every tensor is missing, nothing is loaded.
	path := write("renamed.safetensors", padMeta, func(n string) string { return "module." + n }, all)
	ck, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	q := tinyModel(t, model.Spec{C: 1, NF: 4, NZ: 8, Batch: 16}, 1)
	before := snapshot(q)
	checkRefused(t, "renamed LoadWeights", ck.LoadWeights(q.Backend(), q), before, q, path, "E.conv1.0.weight: missing", "G.tconv4.0.bias: missing")
	checkRefused(t, "renamed LoadState", ck.LoadState(q.Backend(), q), before, q, "adam.E.step: missing", "memory.z: missing")

	// A weights-only export: LoadWeights takes it, LoadState refuses it
	// (nothing to resume Adam from) and changes nothing.
	path = write("weights.safetensors", padMeta, same, func(n string) bool { return n[:2] == "E." || n[:2] == "G." })
	if ck, err = ReadCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	checkRefused(t, "weights-only LoadState", ck.LoadState(q.Backend(), q), before, q, "adam.E.conv1.0.weight.exp_avg: missing", "adam.G.step: missing")
	if err := ck.LoadWeights(q.Backend(), q); err != nil {
		t.Fatalf("weights-only LoadWeights: %v", err)
	}
	// A pad checkpoint with extra tensors in E/G's namespace is refused.
	path = write("extra.safetensors", padMeta, func(n string) string {
		if n == "E.conv1.0.bias" {
			return "E.conv1.0.extra"
		}
		return n
	}, all)
	if ck, err = ReadCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	before = snapshot(q)
	checkRefused(t, "extra tensor LoadWeights", ck.LoadWeights(q.Backend(), q), before, q, "E.conv1.0.extra: not a tensor of this model", "E.conv1.0.bias: missing")
	// Metadata that is not a position.
	for _, bad := range []string{"", "-1", "x", strconv.Itoa(math.MaxInt) + "0"} {
		path = write("badmeta.safetensors", map[string]string{"format": CheckpointFormat, "epoch": "0", "index": "0", "iter": bad}, same, all)
		if _, err := ReadCheckpoint(path); err == nil || !strings.Contains(err.Error(), "metadata iter") {
			t.Errorf("iter = %q: %v", bad, err)
		}
	}
}

// With train.log_every > 1, a resumed run logs the same means as an
// uninterrupted one: the sums of the iterations not yet logged, and those
// of the epoch so far, travel in the checkpoint. (Before, a run stopped at
// iteration 5 and resumed logged the mean of iterations 6 and 7 alone
// as the record of iteration 7, and the epoch's mean without 1 to 5.)
func TestResumeKeepsLogWindows(t *testing.T) {
	cfg := tiny(t, "train.log_every=3", "train.checkpoint_every=0")
	ref := reference(t, cfg)
	dir := filepath.Join(t.TempDir(), "run")
	for i, stop := range []int{5, 13} {
		part := tiny(t, "train.log_every=3", "train.checkpoint_every=0", fmt.Sprintf("train.max_iters=%d", stop))
		if _, err := runOne(t, part, dir, i > 0, context.Background(), nil, ProgressNone); err != nil {
			t.Fatalf("stopping at iteration %d: %v", stop, err)
		}
	}
	if _, err := runOne(t, cfg, dir, true, context.Background(), nil, ProgressNone); err != nil {
		t.Fatal(err)
	}
	if n := len(recordsOf(t, ref, metrics.KindTrain)); n != 6 {
		t.Fatalf("%d train records in 20 iterations logged every 3", n)
	}
	sameRecords(t, "train and epoch records", recordsOf(t, ref, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, dir, metrics.KindTrain, metrics.KindEpoch))
	sameCheckpoint(t, ref, dir)
}

// The files a run rewrites through a temporary file (config.toml on every
// start, metrics.jsonl on resuming) stay readable by others: 0644, or the
// mode the user gave them, not CreateTemp's 0600.
func TestRewrittenFilesKeepPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := runOne(t, tiny(t, "train.max_iters=2"), dir, false, context.Background(), nil, ProgressNone); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, metrics.FileName), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := runOne(t, tiny(t, "train.max_iters=4"), dir, true, context.Background(), nil, ProgressNone); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"config.toml": 0o644, metrics.FileName: 0o640, CheckpointName: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
}
