//go:build !arm64

package gemm

import "math"

// fma32 returns a·b + c rounded once to float32, as the assembly kernels'
// fused multiply-add does, in float64 arithmetic (Go fuses x·y + z into
// one instruction on arm64 only among the common targets; see
// fma_fused.go). The product of two float32 values is exact in float64.
// The sum s = p + c is rounded to float64, and its error e is found
// exactly (TwoSum); when e is not zero, s is moved to the neighbour that
// has an odd last bit (rounding to odd), and one rounding of that to
// float32 is the correctly rounded a·b + c (Boldo and Melquiond, "When
// double rounding is odd", 2005: rounding to odd in at least p + 2 bits,
// then to nearest in p bits, is rounding to nearest). Infinities and NaNs
// go through unchanged.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	if e != 0 && e == e { // inexact, and not Inf or NaN
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++ // the neighbour away from zero
			} else {
				bits-- // toward zero
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}
