package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/phases"
)

// streamCPU is the CPU backend posing as a backend.Streamer: it logs each
// UploadAsync and copies at once (legal: on the CPU the work before any
// fence is already done).
type streamCPU struct {
	*cpu.Backend[float32]
	fences  int // Fence calls
	seq     int // fences handed out (Fence and DownloadAsync)
	uploads []upload
	hostN   int
	onFence func(n int) // called with each Fence call's number
}

type upload struct {
	dst   backend.Buf
	after backend.Fence
}

func (s *streamCPU) HostBuffer(n int) ([]float32, error) {
	s.hostN++
	return make([]float32, n), nil
}

func (s *streamCPU) Fence() backend.Fence {
	s.fences++
	s.seq++
	if s.onFence != nil {
		s.onFence(s.fences)
	}
	return backend.Fence(s.seq)
}

func (s *streamCPU) UploadAsync(dst backend.Buf, src []float32, after backend.Fence) {
	s.uploads = append(s.uploads, upload{dst: dst, after: after})
	s.Upload(dst, src)
}

// asyncCPU is a streamCPU that also downloads behind the host
// (backend.AsyncReader). It takes the values at DownloadAsync, as the
// device's stream order would, but fills NaN into dst until the Wait on
// its fence, so that a read before the wait shows.
type asyncCPU struct {
	*streamCPU
	reads  []read
	lagged int           // Waits on a fence older than the newest download
	last   backend.Fence // the newest download's fence
	poison int           // the download (from 1) whose KL is made infinite; 0: none
	n      int           // downloads so far
}

type read struct {
	dst   []float32
	vals  []float32
	fence backend.Fence
}

func (s *asyncCPU) DownloadAsync(dst []float32, src backend.Buf) backend.Fence {
	vals := make([]float32, len(dst))
	s.Download(vals, src)
	if s.n++; s.n == s.poison {
		vals[phases.StatKL] = float32(math.Inf(1))
	}
	for i := range dst {
		dst[i] = float32(math.NaN())
	}
	s.seq++
	f := backend.Fence(s.seq)
	s.last = f
	s.reads = append(s.reads, read{dst: dst, vals: vals, fence: f})
	return f
}

func (s *asyncCPU) Wait(f backend.Fence) error {
	if f < s.last {
		s.lagged++
	}
	keep := s.reads[:0]
	for _, r := range s.reads {
		if r.fence <= f {
			copy(r.dst, r.vals)
		} else {
			keep = append(keep, r)
		}
	}
	s.reads = keep
	return s.Err()
}

func TestStreamedTrainingMatchesPlainUploads(t *testing.T) {
	base := t.TempDir()
	plain, streamed := filepath.Join(base, "plain"), filepath.Join(base, "streamed")
	// Log lines every 5 iterations, so that most iterations' numbers are
	// read late on the streaming backend.
	sets := []string{"train.log_every=5", "train.checkpoint_every=0"}
	if _, err := run(t, tiny(t, sets...), plain, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &asyncCPU{streamCPU: &streamCPU{Backend: cpu.New(2)}}
	// In parts, all but the last on the same trainer: stopping at max_iters
	// fetches nothing ahead; an interrupt that arrives while the next batch
	// is being copied (here: during iteration 8, of 10 per epoch) must give
	// that batch back for the next Run; a resumed trainer starts afresh.
	tr, err := New(Options{Config: tiny(t, append(sets, "train.max_iters=7")...), Dir: streamed, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.onFence = func(n int) {
		if n == 9 {
			cancel()
		}
	}
	tr.cfg.Train.MaxIters = 0
	if _, err := tr.Run(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted Run: %v", err)
	}
	s.onFence = nil
	if tr.pos.Iter != 9 {
		t.Fatalf("interrupted after iteration %d, want 9", tr.pos.Iter)
	}
	tr.cfg.Train.MaxIters = 13
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	tr, err = New(Options{Config: tiny(t, sets...), Dir: streamed, Resume: true, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	a, b := recordsOf(t, plain, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, streamed, metrics.KindTrain, metrics.KindEpoch)
	if len(a) != 6 {
		t.Fatalf("the plain run wrote %d train and epoch records, want 6", len(a))
	}
	sameRecords(t, "streamed run", a, b)
	sameCheckpoint(t, plain, streamed)
	if s.hostN == 0 {
		t.Error("the loader did not take its buffers from HostBuffer")
	}
	// 20 iterations, one upload each, and the batch given back at the
	// interrupt uploaded again.
	if len(s.uploads) != 21 {
		t.Errorf("%d uploads for 20 iterations and one interrupt, want 21", len(s.uploads))
	}
	// The numbers are read in one go where something needs them: a log
	// line (after iterations 5, 10, 15, 20), the end of a run (7, 13, 20),
	// the interrupt (9) and the end of an epoch (10, 20). Of each group
	// read, all but the newest are read after a later iteration was
	// queued: {1–5} 4, {6, 7} 1, {8, 9} 1, {10} 0, {11–13} 2, {14, 15} 1,
	// {16–20} 4; 13 in all.
	if s.lagged != 13 {
		t.Errorf("%d iterations' numbers read after the next iteration was queued, want 13", s.lagged)
	}
	if len(s.reads) != 0 {
		t.Errorf("%d downloads never waited for", len(s.reads))
	}
}

// TestFeederOverlapsCopies checks the order the copy stream sees: batch
// i+1 goes to the buffer iteration i does not use, after the fence of the
// iteration that last read that buffer, and before iteration i is waited
// for.
func TestFeederOverlapsCopies(t *testing.T) {
	set, err := dataset.Load("embedded", "", true)
	if err != nil {
		t.Fatal(err)
	}
	s := &streamCPU{Backend: cpu.New(1)}
	f, err := newFeeder(s, set, 8, 1, 8*32*32, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	var fenceOf [2]backend.Fence // fence after the iteration that used each buffer
	used := map[backend.Buf]int{f.x[0]: 0, f.x[1]: 1}
	var last backend.Buf
	for i := 0; i < 6; i++ {
		x, err := f.next(0, i)
		if err != nil {
			t.Fatal(err)
		}
		if x == last {
			t.Fatalf("iteration %d uses the buffer of iteration %d", i, i-1)
		}
		last = x
		n := len(s.uploads)
		if err := f.queued(0, i+1, i < 5); err != nil {
			t.Fatal(err)
		}
		fenceOf[used[x]] = backend.Fence(s.fences)
		if i < 5 {
			if len(s.uploads) != n+1 {
				t.Fatalf("iteration %d: the next batch was not copied ahead", i)
			}
			u := s.uploads[len(s.uploads)-1]
			if u.dst == x {
				t.Fatalf("iteration %d: batch %d copied into the buffer in use", i, i+1)
			}
			// The other buffer was last read by iteration i−1.
			if i > 0 && u.after != fenceOf[used[u.dst]] {
				t.Fatalf("iteration %d: copy waits for fence %d, the buffer was last read before fence %d", i, u.after, fenceOf[used[u.dst]])
			}
		}
		f.settled()
		if len(f.held) != 0 {
			t.Fatalf("iteration %d: %d batches still held after it settled", i, len(f.held))
		}
	}
	if f.ahead != nil {
		t.Fatal("a batch fetched ahead after the last iteration")
	}
}

// A loss that turns non-finite is found late on a backend that reads the
// numbers behind the host (at the next log line or checkpoint), but
// reported as at once: the iteration it happened in, and the last good
// checkpoint left in place.
func TestLateReadNonFiniteLoss(t *testing.T) {
	cfg := tiny(t, "train.log_every=50", "train.checkpoint_every=3")
	dir := filepath.Join(t.TempDir(), "run")
	s := &asyncCPU{streamCPU: &streamCPU{Backend: cpu.New(2)}, poison: 5}
	tr, err := New(Options{Config: cfg, Dir: dir, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Run(context.Background())
	tr.Close()
	var nf *NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("Run: %v, want a NonFiniteError", err)
	}
	// The 5th download holds iteration 4's numbers (from 0), read with
	// those of iterations 3 and 5 before the checkpoint after iteration 5.
	if nf.Iter != 4 || nf.Phase != "Wake" || nf.Loss != "KL" {
		t.Fatalf("%v: want Wake KL at iteration 4", err)
	}
	if s.lagged == 0 {
		t.Fatal("no iteration's numbers were read late")
	}
	c, err := ReadCheckpoint(filepath.Join(dir, CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Iter != 3 {
		t.Fatalf("last checkpoint after iteration %d, want 3", c.State.Iter)
	}
}

// lagDepth: a whole log window, bounded by maxLag iterations and by
// maxLagBytes of page-locked batches, and at least one iteration.
func TestLagDepth(t *testing.T) {
	for _, c := range []struct{ logEvery, batchBytes, want int }{
		{50, 64 * 3 * 32 * 32 * 4, 50},  // CIFAR-10, batch 64: the window
		{1, 4096, 1},                    // a log line every iteration
		{1000, 4096, maxLag},            // a long window: maxLag
		{50, 256 * 3 * 64 * 64 * 4, 21}, // big batches: 256 MiB of them
		{50, maxLagBytes + 1, 1},        // one batch over the bound: still 1
		{50, 0, 50},                     // no batch size known
	} {
		if got := lagDepth(c.logEvery, c.batchBytes); got != c.want {
			t.Errorf("lagDepth(%d, %d) = %d, want %d", c.logEvery, c.batchBytes, got, c.want)
		}
	}
}

// A log window longer than the lag allows (lagDepth bounds it by the
// bytes of batches held): the oldest numbers are read while newer
// iterations are queued, never more than lag of them unread, and the
// records and the checkpoint are those of a wait after each iteration.
func TestLagShorterThanTheWindow(t *testing.T) {
	base := t.TempDir()
	plain, lagged := filepath.Join(base, "plain"), filepath.Join(base, "lagged")
	sets := []string{"train.log_every=10", "train.checkpoint_every=0"}
	if _, err := run(t, tiny(t, sets...), plain, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &asyncCPU{streamCPU: &streamCPU{Backend: cpu.New(2)}}
	tr, err := New(Options{Config: tiny(t, sets...), Dir: lagged, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if tr.depth != 10 {
		t.Fatalf("lag %d for a window of 10 small batches, want 10", tr.depth)
	}
	tr.depth = 3
	most := 0
	s.onFence = func(int) { most = max(most, len(s.reads)) } // downloads not waited for
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if most != 3 {
		t.Errorf("at most %d iterations' numbers unread when the next was queued, want 3", most)
	}
	sameRecords(t, "lagged run", recordsOf(t, plain, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, lagged, metrics.KindTrain, metrics.KindEpoch))
	sameCheckpoint(t, plain, lagged)
}
