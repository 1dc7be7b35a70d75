package phases

import (
	"fmt"

	"github.com/pad-dreaming/pad/backend"
)

// DefaultStatSlots is how many iterations' numbers can be on their way to
// the host at once (QueueStats before the matching WaitStats) unless
// Options.StatSlots says otherwise.
const DefaultStatSlots = 4

// PendingStats is a ticket for the numbers of one iteration, queued by
// QueueStats and read by WaitStats.
type PendingStats struct {
	seq   uint64 // 1, 2, …; 0: no ticket
	slot  int
	fence backend.Fence
	now   [NumStats]float32 // read at once (backends without AsyncReader)
}

// statQueue holds the page-locked slots the numbers are copied into.
type statQueue struct {
	r     backend.AsyncReader
	host  []float32 // slots × NumStats
	owner []uint64  // the ticket each slot holds
	seq   uint64
}

// AsyncStats reports whether QueueStats returns before the device is done
// (the backend is a backend.AsyncReader and a backend.Streamer).
func (p *PAD) AsyncStats() bool { return p.queue.r != nil }

// init sets up QueueStats's page-locked slots on backends that can
// copy behind the host.
func (q *statQueue) init(b backend.Backend, slots int) error {
	r, ok := b.(backend.AsyncReader)
	s, ok2 := b.(backend.Streamer)
	if !ok || !ok2 {
		return nil
	}
	if slots <= 0 {
		slots = DefaultStatSlots
	}
	q.owner = make([]uint64, slots)
	h, err := s.HostBuffer(slots * int(NumStats))
	if err != nil {
		return fmt.Errorf("phases: page-locked buffer for the loss numbers: %w", err)
	}
	q.r, q.host = r, h
	return nil
}

// QueueStats starts copying the numbers of the last iteration queued to
// the host and returns a ticket for WaitStats. Where the backend cannot
// copy behind the host, it waits and reads them at once. The numbers are
// copied in queue order, so the next iteration may be queued before the
// ticket is waited on; at most Options.StatSlots tickets may be
// outstanding.
func (p *PAD) QueueStats() (PendingStats, error) {
	q := &p.queue
	if q.r == nil {
		v, err := p.Stats()
		return PendingStats{now: v}, err
	}
	q.seq++
	slot := int(q.seq % uint64(len(q.owner)))
	q.owner[slot] = q.seq
	f := q.r.DownloadAsync(q.host[slot*int(NumStats):(slot+1)*int(NumStats)], p.stats)
	return PendingStats{seq: q.seq, slot: slot, fence: f}, p.b.Err()
}

// WaitStats waits for the device to finish the iteration of t and returns
// its numbers and the backend's first error.
func (p *PAD) WaitStats(t PendingStats) ([NumStats]float32, error) {
	var out [NumStats]float32
	if t.seq == 0 {
		return t.now, nil
	}
	q := &p.queue
	if q.owner[t.slot] != t.seq {
		return out, fmt.Errorf("phases: the numbers of ticket %d were overwritten: more than %d tickets outstanding", t.seq, len(q.owner))
	}
	if err := q.r.Wait(t.fence); err != nil {
		return out, err
	}
	copy(out[:], q.host[t.slot*int(NumStats):])
	return out, nil
}
