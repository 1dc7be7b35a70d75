//go:build unix

package gemm

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user + system) this process has used, so
// that a rate can be given per busy core, and busy cores as CPU time over
// wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
