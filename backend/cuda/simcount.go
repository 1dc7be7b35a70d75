package cuda

import "github.com/pad-dreaming/pad/internal/cu"

// SimCounters returns the counters of pad's simulated NVIDIA stack
// (internal/cudasim: kernel launches, cuDNN calls, host synchronisations,
// allocations, copies, …), process-wide since the driver loaded or since
// ResetSimCounters, or nil on NVIDIA's driver.
func (b *Backend) SimCounters() []cu.SimCounter { return cu.SimCounters() }

// ResetSimCounters sets the simulated driver's counters to zero (a no-op
// on NVIDIA's driver).
func (b *Backend) ResetSimCounters() { cu.ResetSimCounters() }
