package backend

import (
	"fmt"
	"math"
)

// AdamHyper holds Adam's hyper-parameters.
type AdamHyper struct {
	LR, Beta1, Beta2, Eps float64
}

// AdamSegment is one tensor inside a flat parameter buffer: values
// Off..Off+Len−1, and the tensor's own step count after this step (1 for
// its first update). PyTorch keeps a step counter per tensor and advances it
// only when the tensor has a gradient; pad does the same.
type AdamSegment struct {
	Off, Len int
	Step     int
}

// Scalars returns the per-step constants of PyTorch's Adam for a tensor at
// step t: step size lr/(1 − β1^t) and √(1 − β2^t).
func (h AdamHyper) Scalars(t int) (stepSize, bc2Sqrt float64) {
	bc1 := 1 - math.Pow(h.Beta1, float64(t))
	bc2 := 1 - math.Pow(h.Beta2, float64(t))
	return h.LR / bc1, math.Sqrt(bc2)
}

// AdamElem is one Adam update of one value, exactly in the order of
// PyTorch's single-tensor Adam:
//
//	m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²
//	p ← p − stepSize · m / (√v / √(1−β2^t) + eps)
//
// It is generic so that the float64 twin of the CPU backend uses the same
// formula.
func AdamElem[T float32 | float64](p, g, m, v, beta1, beta2, eps, stepSize, bc2Sqrt T) (T, T, T) {
	// Each explicit conversion rounds its product, so no Go target may fuse
	// a·b + c into one FMA: every product is rounded once, as PyTorch and
	// the CUDA kernel (compiled with --fmad=false) round it.
	m += T((1 - beta1) * (g - m))
	v = T(beta2*v) + T(T((1-beta2)*g)*g)
	denom := T(math.Sqrt(float64(v)))/bc2Sqrt + eps
	p -= T(stepSize*m) / denom
	return p, m, v
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
