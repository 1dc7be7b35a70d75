package rng

import (
	"math"
	"testing"
)

// Known answers of Philox4x32-10 published with the Random123 library
// (kat_vectors: counter words, key words, expected output).
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		c    [4]uint32
		k    [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		got := Philox(c.c[0], c.c[1], c.c[2], c.c[3], c.k[0], c.k[1])
		if got != c.want {
			t.Errorf("Philox(%08x, %08x) = %08x, want %08x", c.c, c.k, got, c.want)
		}
	}
}

func TestKeyLayout(t *testing.T) {
	k := Key{Seed: 0x299f31d0a4093822, Stream: 0x03707344, Seq: 0x13198a2e85a308d3}
	got := k.Block(0x243f6a88)
	want := [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}
	if got != want {
		t.Fatalf("Key.Block = %08x, want %08x (counter layout changed?)", got, want)
	}
}

func TestUniformRangeAndMoments(t *testing.T) {
	if u := UniformFromWord(0); u <= 0 {
		t.Fatalf("UniformFromWord(0) = %v, want > 0", u)
	}
	if u := UniformFromWord(math.MaxUint32); u >= 1 {
		t.Fatalf("UniformFromWord(max) = %v, want < 1", u)
	}
	const n = 1 << 16
	u := make([]float32, n)
	FillUniform(u, Key{Seed: 7, Stream: StreamEval})
	var s, s2 float64
	for i, v := range u {
		if v <= 0 || v >= 1 {
			t.Fatalf("u[%d] = %v outside (0,1)", i, v)
		}
		if v != (Key{Seed: 7, Stream: StreamEval}).Uniform(uint64(i)) {
			t.Fatalf("FillUniform and Uniform disagree at %d", i)
		}
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	mean, vr := s/n, s2/n-(s/n)*(s/n)
	if math.Abs(mean-0.5) > 0.005 || math.Abs(vr-1.0/12) > 0.002 {
		t.Fatalf("uniform mean %v var %v, want 0.5 and 0.0833", mean, vr)
	}
}

func TestNormalMoments(t *testing.T) {
	const n = 1<<16 + 3 // not a multiple of four: the tail must be filled too
	x := make([]float32, n)
	FillNormal(x, Key{Seed: 1, Stream: StreamREMNoise, Seq: 5})
	var s, s2, s4 float64
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite normal number")
		}
		s += float64(v)
		s2 += float64(v) * float64(v)
		s4 += math.Pow(float64(v), 4)
	}
	mean, vr, kurt := s/n, s2/n, s4/n
	if math.Abs(mean) > 0.02 || math.Abs(vr-1) > 0.02 || math.Abs(kurt-3) > 0.1 {
		t.Fatalf("normal mean %v var %v fourth moment %v, want 0, 1, 3", mean, vr, kurt)
	}
	// Different sequences give different numbers.
	y := make([]float32, 8)
	FillNormal(y, Key{Seed: 1, Stream: StreamREMNoise, Seq: 6})
	if y[0] == x[0] && y[1] == x[1] {
		t.Fatal("sequence number does not change the stream")
	}
}

func TestPermutation(t *testing.T) {
	p := make([]int, 1000)
	Permutation(p, Key{Seed: 3, Stream: StreamShuffle, Seq: 1})
	seen := make([]bool, len(p))
	fixed := 0
	for i, v := range p {
		if v < 0 || v >= len(p) || seen[v] {
			t.Fatalf("not a permutation at %d: %d", i, v)
		}
		seen[v] = true
		if v == i {
			fixed++
		}
	}
	if fixed > 10 {
		t.Fatalf("%d fixed points: shuffle looks broken", fixed)
	}
	q := make([]int, 1000)
	Permutation(q, Key{Seed: 3, Stream: StreamShuffle, Seq: 1})
	for i := range p {
		if p[i] != q[i] {
			t.Fatal("same key gave a different permutation")
		}
	}
	// Intn stays in range.
	k := Key{Seed: 9}
	for i := uint64(0); i < 10000; i++ {
		if v := k.Intn(i, 7); v < 0 || v >= 7 {
			t.Fatalf("Intn out of range: %d", v)
		}
	}
}
