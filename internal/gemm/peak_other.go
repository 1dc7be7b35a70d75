//go:build !amd64

package gemm

// vectorLanes is the number of float32 lanes of the widest vectors: 4
// (128-bit NEON on arm64, and what other targets are assumed to have).
func vectorLanes() int { return 4 }
