package gemm

import "time"

// Peak is the FP32 peak of one core, estimated as `make gemm-rates`
// (scripts/gemm-rates.sh) does: the core clock, measured, times 2 FLOP per
// fused multiply-add, times the float32 lanes of the widest vectors the
// CPU has, times 2 FMA pipes. A core that splits its widest operations in
// two (Zen 4 with AVX-512) has half of it.
type Peak struct {
	GHz     float64 // the clock measured on a chain of dependent integer operations
	Lanes   int     // float32 lanes of the widest vector unit
	PerCore float64 // GFLOP/s: GHz × 2 × Lanes × 2
}

// clockChain runs n iterations of a chain of two dependent one-cycle
// integer operations (xor, add): 2n cycles on any x86 or ARM core that
// issues them back to back.
//
//go:noinline
func clockChain(n int, x uint64) uint64 {
	for i := 0; i < n; i++ {
		x = (x ^ uint64(i)) + x
	}
	return x
}

var clockSink uint64

// MeasurePeak times clockChain for about d (the best of three runs, so that
// a moment of other work does not lower the clock) and returns the peak.
func MeasurePeak(d time.Duration) Peak {
	const n = 1 << 20
	best := 0.0
	for range 3 {
		start := time.Now()
		reps := 0
		for time.Since(start) < d/3 || reps == 0 {
			clockSink += clockChain(n, clockSink|1)
			reps++
		}
		if ghz := 2 * float64(n) * float64(reps) / time.Since(start).Seconds() / 1e9; ghz > best {
			best = ghz
		}
	}
	lanes := vectorLanes()
	return Peak{GHz: best, Lanes: lanes, PerCore: best * 2 * float64(lanes) * 2}
}
