//go:build arm64

package gemm

// fma32 returns a·b + c rounded once to float32: the arm64 compiler fuses
// the expression into one FMADDS (see fma_soft.go for other targets).
func fma32(a, b, c float32) float32 { return a*b + c }
