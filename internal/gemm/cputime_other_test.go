//go:build !unix

package gemm

import "time"

// cpuTime is not available here; benchmarks then skip the per-core metric.
func cpuTime() time.Duration { return 0 }
