package train

import (
	"context"
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
}

type upload struct {
	dst   backend.Buf
	first float32 // src[0], to identify the batch
	after backend.Fence
	seq   int // fences handed out before this upload
}

func (s *streamCPU) HostBuffer(n int) ([]float32, error) {
	s.hostN++
	return make([]float32, n), nil
}

func (s *streamCPU) Fence() backend.Fence {
	s.fences++
	return backend.Fence(s.fences)
}

func (s *streamCPU) UploadAsync(dst backend.Buf, src []float32, after backend.Fence) {
	s.uploads = append(s.uploads, upload{dst: dst, first: src[0], after: after, seq: s.fences})
	s.Upload(dst, src)
}

func TestStreamedTrainingMatchesPlainUploads(t *testing.T) {
	base := t.TempDir()
	plain, streamed := filepath.Join(base, "plain"), filepath.Join(base, "streamed")
	if _, err := run(t, tiny(t), plain, false, context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &streamCPU{Backend: cpu.New(2)}
	// In parts: a batch fetched ahead at max_iters must be given back, both
	// to a second Run of the same trainer and to a resumed one.
	tr, err := New(Options{Config: tiny(t, "train.max_iters=7"), Dir: streamed, Backend: s, Progress: ProgressNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
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
	// 20 iterations, one upload each (the batches fetched ahead at the two
	// stops are given back and fetched again).
	if len(s.uploads) < 20 {
		t.Errorf("%d uploads for 20 iterations", len(s.uploads))
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
