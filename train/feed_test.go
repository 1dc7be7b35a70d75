package train

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/dataset"
)

// streamCPU is the CPU backend posing as a backend.Streamer: it logs each
// UploadAsync and copies at once (legal: on the CPU the work before any
// fence is already done).
type streamCPU struct {
	*cpu.Backend[float32]
	fences  int
	uploads []upload
	hostN   int
	onFence func(n int) // called with each fence's number
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
	if s.onFence != nil {
		s.onFence(s.fences)
	}
	return backend.Fence(s.fences)
}

func (s *streamCPU) UploadAsync(dst backend.Buf, src []float32, after backend.Fence) {
	s.uploads = append(s.uploads, upload{dst: dst, after: after})
	s.Upload(dst, src)
}

func TestStreamedTrainingMatchesPlainUploads(t *testing.T) {
	base := t.TempDir()
	plain, streamed := filepath.Join(base, "plain"), filepath.Join(base, "streamed")
	if _, err := run(t, tiny(t), plain, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &streamCPU{Backend: cpu.New(2)}
	// In parts, all but the last on the same trainer: stopping at max_iters
	// fetches nothing ahead; an interrupt that arrives while the next batch
	// is being copied (here: during iteration 8, of 10 per epoch) must give
	// that batch back for the next Run; a resumed trainer starts afresh.
	tr, err := New(Options{Config: tiny(t, "train.max_iters=7"), Dir: streamed, Backend: s, Progress: ProgressNone})
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
	tr, err = New(Options{Config: tiny(t), Dir: streamed, Resume: true, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	a, b := trainRecords(t, plain), trainRecords(t, streamed)
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("records: plain %d, streamed %d", len(a), len(b))
	}
	for i := range a {
		if *a[i].WakeRec != *b[i].WakeRec || *a[i].NREMRec != *b[i].NREMRec || *a[i].GLoss != *b[i].GLoss {
			t.Fatalf("iteration %d differs:\nplain    %+v\nstreamed %+v", a[i].Iter, a[i], b[i])
		}
	}
	if s.hostN == 0 {
		t.Error("the loader did not take its buffers from HostBuffer")
	}
	// 20 iterations, one upload each, and the batch given back at the
	// interrupt uploaded again.
	if len(s.uploads) != 21 {
		t.Errorf("%d uploads for 20 iterations and one interrupt, want 21", len(s.uploads))
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
	f, err := newFeeder(s, set, 8, 1, 8*32*32)
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
	}
	if f.ahead != nil {
		t.Fatal("a batch fetched ahead after the last iteration")
	}
}
