package phases

import (
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// readerCPU is the CPU backend posing as a Streamer and AsyncReader; its
// downloads are done at once (the CPU's work is), and Wait counts.
type readerCPU struct {
	*cpu.Backend[float32]
	seq   backend.Fence
	waits int
}

func (r *readerCPU) HostBuffer(n int) ([]float32, error) { return make([]float32, n), nil }
func (r *readerCPU) Fence() backend.Fence                { r.seq++; return r.seq }
func (r *readerCPU) UploadAsync(dst backend.Buf, src []float32, _ backend.Fence) {
	r.Upload(dst, src)
}
func (r *readerCPU) DownloadAsync(dst []float32, src backend.Buf) backend.Fence {
	r.Download(dst, src)
	return r.Fence()
}
func (r *readerCPU) Wait(backend.Fence) error { r.waits++; return r.Err() }

// Tickets give each iteration its own numbers, in any order of waiting,
// the same as Stats read at once; one ticket too many is refused, not
// answered with another iteration's numbers.
func TestQueueStats(t *testing.T) {
	cond, _ := conditions.Lookup("pad")
	spec := model.Spec{C: 1, NF: 4, NZ: 8, Batch: 4}
	opt := Options{Seed: 3, AdamE: DefaultAdam, AdamG: DefaultAdam, MaxTile: 8}
	r := &readerCPU{Backend: cpu.New(1)}
	plain := cpu.New(1)
	pa, err := New(r, spec, cond, opt)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := New(plain, spec, cond, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !pa.AsyncStats() || pb.AsyncStats() {
		t.Fatalf("AsyncStats: %v on the reader, %v on the plain CPU", pa.AsyncStats(), pb.AsyncStats())
	}
	xa, _ := r.Alloc(spec.Batch * 32 * 32)
	xb, _ := plain.Alloc(spec.Batch * 32 * 32)
	var tickets []PendingStats
	var want [][NumStats]float32
	for i := 0; i < DefaultStatSlots; i++ {
		r.RandUniform(xa, rng.Key{Seed: 4, Seq: uint64(i)})
		plain.RandUniform(xb, rng.Key{Seed: 4, Seq: uint64(i)})
		pa.Iterate(xa, uint64(i), i == 0)
		pb.Iterate(xb, uint64(i), i == 0)
		tk, err := pa.QueueStats()
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
		s, err := pb.QueueStats() // read at once on the plain CPU
		if err != nil {
			t.Fatal(err)
		}
		v, _ := pb.WaitStats(s)
		want = append(want, v)
	}
	for _, i := range []int{2, 0, 3, 1} {
		got, err := pa.WaitStats(tickets[i])
		if err != nil {
			t.Fatal(err)
		}
		if got != want[i] {
			t.Fatalf("ticket %d: %v, want %v", i, got, want[i])
		}
	}
	if r.waits != DefaultStatSlots {
		t.Fatalf("%d waits for %d tickets", r.waits, DefaultStatSlots)
	}
	if _, err := pa.QueueStats(); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.WaitStats(tickets[0]); err == nil || !strings.Contains(err.Error(), "overwritten") {
		t.Fatalf("a ticket whose slot was reused: %v, want an error", err)
	}
}
