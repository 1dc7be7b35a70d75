// Package rng is pad's counter-based random number generator: Philox4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
//
// Every random value pad uses is a pure function of (seed, stream, sequence,
// index). The CPU backend calls the functions here; the CUDA kernels compute
// the same functions on the device, so one seed gives the same shuffles,
// occlusion masks and noise on every backend. This file is the
// specification: a kernel that disagrees with it is wrong.
//
// Layout of the 128-bit counter of one Philox block:
//
//	c0 = block index (which group of four 32-bit words)
//	c1 = low 32 bits of the sequence number (e.g. the iteration)
//	c2 = high 32 bits of the sequence number
//	c3 = stream (what the numbers are for, see the Stream constants)
//
// and the 64-bit key is the seed (k0 = low word, k1 = high word).
package rng

import (
	"math"
	"math/bits"
)

// Philox4x32 round constants.
const (
	m0 = 0xD2511F53
	m1 = 0xCD9E8D57
	w0 = 0x9E3779B9
	w1 = 0xBB67AE85
)

// Streams separate the purposes random numbers serve, so that adding draws
// for one purpose never shifts another.
const (
	StreamInit      uint32 = 1 // parameter initialisation; Seq = tensor index
	StreamShuffle   uint32 = 2 // per-epoch shuffle of the training set; Seq = epoch
	StreamWakeNoise uint32 = 3 // ε·n added to z in Wake; Seq = global iteration
	StreamNREMMask  uint32 = 4 // NREM occlusion; Seq = global iteration
	StreamREMNoise  uint32 = 5 // n of the REM latent mix; Seq = global iteration
	StreamEval      uint32 = 6 // evaluation (probe init and shuffles, occlusion sweeps)
	StreamNREMMix   uint32 = 7 // appendix variant: which memories NREM mixes
)

// Key names one stream of random numbers.
type Key struct {
	Seed   uint64
	Stream uint32
	Seq    uint64
}

// Block returns the four 32-bit words of block b of the stream k.
func (k Key) Block(b uint32) [4]uint32 {
	return Philox(b, uint32(k.Seq), uint32(k.Seq>>32), k.Stream, uint32(k.Seed), uint32(k.Seed>>32))
}

// Philox computes Philox4x32-10 of the counter (c0, c1, c2, c3) under the key
// (k0, k1).
func Philox(c0, c1, c2, c3, k0, k1 uint32) [4]uint32 {
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 += w0
			k1 += w1
		}
		p0 := uint64(m0) * uint64(c0)
		p1 := uint64(m1) * uint64(c2)
		hi0, lo0 := uint32(p0>>32), uint32(p0)
		hi1, lo1 := uint32(p1>>32), uint32(p1)
		c0, c1, c2, c3 = hi1^c1^k0, lo1, hi0^c3^k1, lo0
	}
	return [4]uint32{c0, c1, c2, c3}
}

// Word returns the i-th 32-bit word of the stream.
func (k Key) Word(i uint64) uint32 {
	return k.Block(uint32(i / 4))[i%4]
}

// UniformFromWord maps a 32-bit word to a float32 in the open interval
// (0, 1): the top 23 bits plus one half, times 2^-23. Every value is exact
// in float32, so devices that follow this definition agree bit for bit.
func UniformFromWord(x uint32) float32 {
	return (float32(x>>9) + 0.5) * (1.0 / (1 << 23))
}

// Uniform returns the i-th uniform number of the stream, in (0, 1).
func (k Key) Uniform(i uint64) float32 { return UniformFromWord(k.Word(i)) }

// BoxMuller turns two uniforms into two standard normal numbers. It works in
// float64 and rounds once, so implementations with correctly rounded
// float64 log, sqrt, sin and cos agree to the last bit of the float32 result
// in all but rare ties.
func BoxMuller(u1, u2 float32) (float32, float32) {
	r := math.Sqrt(-2 * math.Log(float64(u1)))
	s, c := math.Sincos(2 * math.Pi * float64(u2))
	return float32(r * c), float32(r * s)
}

// FillUniform writes uniform numbers 0..len(dst)-1 of the stream to dst.
func FillUniform(dst []float32, k Key) {
	for b := 0; b*4 < len(dst); b++ {
		w := k.Block(uint32(b))
		for j := 0; j < 4 && b*4+j < len(dst); j++ {
			dst[b*4+j] = UniformFromWord(w[j])
		}
	}
}

// FillNormal writes standard normal numbers 0..len(dst)-1 of the stream to
// dst. Normal number i comes from block i/4: words 0 and 1 give numbers
// 4(i/4) and 4(i/4)+1 (cosine, then sine branch), words 2 and 3 the next two.
func FillNormal(dst []float32, k Key) {
	for b := 0; b*4 < len(dst); b++ {
		w := k.Block(uint32(b))
		n0, n1 := BoxMuller(UniformFromWord(w[0]), UniformFromWord(w[1]))
		n2, n3 := BoxMuller(UniformFromWord(w[2]), UniformFromWord(w[3]))
		v := [4]float32{n0, n1, n2, n3}
		for j := 0; j < 4 && b*4+j < len(dst); j++ {
			dst[b*4+j] = v[j]
		}
	}
}

// Intn returns the i-th integer of the stream, uniform in [0, n), using the
// 64 bits of words 2i and 2i+1 and Lemire's multiply-shift (bias below
// n/2^64, negligible for the sizes pad shuffles).
func (k Key) Intn(i uint64, n int) int {
	w := k.Block(uint32(i / 2))
	j := (i % 2) * 2
	x := uint64(w[j])<<32 | uint64(w[j+1])
	hi, _ := bits.Mul64(x, uint64(n))
	return int(hi)
}

// Permutation fills perm with a uniformly random permutation of 0..len-1
// (Fisher–Yates, draws from stream k).
func Permutation(perm []int, k Key) {
	for i := range perm {
		perm[i] = i
	}
	for i := len(perm) - 1; i > 0; i-- {
		j := k.Intn(uint64(len(perm)-1-i), i+1)
		perm[i], perm[j] = perm[j], perm[i]
	}
}
