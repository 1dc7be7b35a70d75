package gemm

import "golang.org/x/sys/cpu"

// vectorLanes is the number of float32 lanes of the widest vectors this
// CPU (and OS) offers: AVX-512 16, AVX2 8, else SSE 4.
func vectorLanes() int {
	switch {
	case cpu.X86.HasAVX512F:
		return 16
	case cpu.X86.HasAVX2:
		return 8
	}
	return 4
}
