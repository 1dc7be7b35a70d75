// Package vec holds float32 loops of the CPU backend over whole tensors:
// Adam's update, LeakyReLU and its backward. On amd64 with AVX2 they run
// eight values at a time in assembly; elsewhere, and for the last values,
// in Go.
//
// Both paths give the same bits: each value goes through the same IEEE
// operations in the same order, with every product and sum rounded on its
// own (no fused multiply-add), so a result does not depend on the CPU, on
// the length of a slice or on where a chunk of it starts. Only the payload
// of a NaN that meets another NaN may differ.
package vec

import "math"

// Loops runs the loops with the assembly where the CPU has it (Best) or
// in Go only (Portable, for tests and comparisons): the bits are the same.
type Loops struct{ asm bool }

var (
	// Best uses the AVX2 assembly when the CPU (and OS) support it.
	Best = Loops{asm: useAVX2}
	// Portable runs everything in Go.
	Portable = Loops{}
)

// Adam applies one Adam step to every value (see backend.AdamElem, whose
// arithmetic this is): with c1 = 1 − β1 and c2 = 1 − β2 given rounded to
// float32,
//
//	m ← m + c1·(g − m);  v ← β2·v + (c2·g)·g
//	p ← p − (stepSize·m) / (√v / bc2Sqrt + eps)
//
// p, m and v are updated in place; g, m and v must be as long as p.
func (l Loops) Adam(p, g, m, v []float32, c1, beta2, c2, eps, stepSize, bc2Sqrt float32) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	i := 0
	if l.asm {
		i = n &^ 7
		if i > 0 {
			adamAVX2(p[:i], g[:i], m[:i], v[:i], c1, beta2, c2, eps, stepSize, bc2Sqrt)
		}
	}
	for ; i < n; i++ {
		// Each conversion rounds its product, so that no target fuses a
		// product and a sum into one FMA.
		mi := m[i] + float32(c1*(g[i]-m[i]))
		vi := float32(beta2*v[i]) + float32(float32(c2*g[i])*g[i])
		denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
		p[i] -= float32(stepSize*mi) / denom
		m[i], v[i] = mi, vi
	}
}

// Leaky sets p[i] = x·slope where x = p[i] + bias is negative, else x (NaN
// and −0 keep their value).
func (l Loops) Leaky(p []float32, bias, slope float32) {
	i := 0
	if l.asm {
		i = len(p) &^ 7
		if i > 0 {
			leakyAVX2(p[:i], bias, slope)
		}
	}
	// The sign of an activation is a coin toss, so a branch on it would be
	// mispredicted half the time: a mask picks x or x·slope instead.
	for ; i < len(p); i++ {
		x := p[i] + bias
		m := mask(x < 0)
		p[i] = math.Float32frombits(math.Float32bits(x)&^m | math.Float32bits(x*slope)&m)
	}
}

// mask returns all ones if c, else 0 (compiled to a conditional move).
func mask(c bool) uint32 {
	if c {
		return ^uint32(0)
	}
	return 0
}

// LeakyBackward scales g[i] by slope where y[i] ≤ 0; g must be as long as
// y.
func (l Loops) LeakyBackward(y, g []float32, slope float32) {
	g = g[:len(y)]
	i := 0
	if l.asm {
		i = len(y) &^ 7
		if i > 0 {
			leakyBackwardAVX2(y[:i], g[:i], slope)
		}
	}
	for ; i < len(y); i++ {
		m := mask(y[i] <= 0)
		d := g[i]
		g[i] = math.Float32frombits(math.Float32bits(d)&^m | math.Float32bits(d*slope)&m)
	}
}
