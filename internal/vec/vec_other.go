//go:build !amd64 || purego

package vec

// useAVX2 is false: everything runs in Go.
const useAVX2 = false

func adamAVX2(p, g, m, v []float32, c1, beta2, c2, eps, stepSize, bc2Sqrt float32) {
	panic("vec: no assembly")
}
func leakyAVX2(p []float32, bias, slope float32)      { panic("vec: no assembly") }
func leakyBackwardAVX2(y, g []float32, slope float32) { panic("vec: no assembly") }
