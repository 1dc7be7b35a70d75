//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// useAVX2 says whether this CPU (and OS) runs the AVX2 loops.
var useAVX2 = cpu.X86.HasAVX2

// The assembly loops (vec_amd64.s) take whole blocks of eight values.

//go:noescape
func adamAVX2(p, g, m, v []float32, c1, beta2, c2, eps, stepSize, bc2Sqrt float32)

//go:noescape
func leakyAVX2(p []float32, bias, slope float32)

//go:noescape
func leakyBackwardAVX2(y, g []float32, slope float32)
