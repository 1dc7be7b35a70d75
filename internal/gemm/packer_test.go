package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// matPacker packs a stored op(B) one element at a time: the plainest
// Packer, to hold SgemmPacked against Sgemm.
type matPacker struct {
	b     []float32
	ldb   int
	trans bool
	calls *int // PackB calls, counted only on one thread
}

func (m matPacker) PackB(dst []float32, ps, nr, p0, kc, j0, nc int) {
	if m.calls != nil {
		*m.calls++
	}
	for c := 0; c < ceilDiv(nc, nr)*nr; c++ {
		for p := 0; p < kc; p++ {
			var v float32
			if c < nc {
				if m.trans {
					v = m.b[(j0+c)*m.ldb+p0+p]
				} else {
					v = m.b[(p0+p)*m.ldb+j0+c]
				}
			}
			dst[c/nr*ps+p*nr+c%nr] = v
		}
	}
}

// TestSgemmPackedGivesSgemmBits checks that a product whose B comes from a
// Packer has the bits of the same product on the stored matrix, for every
// kernel, on one and on several threads, with every cut (m, n and k).
func TestSgemmPackedGivesSgemmBits(t *testing.T) {
	cases := append([]gemmCase{
		{m: 1, n: 1, k: 1, alpha: 1},
		{m: 7, n: 33, k: 300, alpha: -0.5, beta: 0.5, padB: 2, padC: 1},
		{transB: true, m: 17, n: 70, k: 513, alpha: 1, beta: 1, padB: 3},
		{transA: true, m: 40, n: 9, k: 31, alpha: 2, beta: 0, nanC: true},
	}, threadCases...)
	for _, threads := range []int{1, 3} {
		for _, g := range testKernels(threads) {
			for _, tc := range cases {
				want := product(g, tc, 7)
				got := productPacked(g, tc, 7)
				if i := testkit.FirstBitDiff(got, want); i >= 0 {
					t.Fatalf("%s, %d threads, %v: C[%d] = %g packed, %g stored", g.kern.name, threads, tc, i, got[i], want[i])
				}
			}
			g.Close()
		}
	}
}

// productPacked is product with B handed over through matPacker.
func productPacked(g *Gemm, tc gemmCase, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	ra, ca := tc.m, tc.k
	if tc.transA {
		ra, ca = ca, ra
	}
	rb, cb := tc.k, tc.n
	if tc.transB {
		rb, cb = cb, rb
	}
	lda, ldb, ldc := ca+tc.padA, cb+tc.padB, tc.n+tc.padC
	a := randSlice(rng, (ra-1)*lda+ca)
	b := randSlice(rng, (rb-1)*ldb+cb)
	c := randSlice(rng, tc.m*ldc)
	if tc.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	g.SgemmPacked(tc.transA, tc.m, tc.n, tc.k, tc.alpha, a, lda, matPacker{b: b, ldb: ldb, trans: tc.transB}, tc.beta, c, ldc)
	return c
}

// TestSgemmPackedTrivial checks that an empty product or alpha == 0 only
// scales C, without packing anything.
func TestSgemmPackedTrivial(t *testing.T) {
	g := New(1)
	defer g.Close()
	calls := 0
	p := matPacker{calls: &calls}
	c := []float32{1, 2, 3, 4}
	g.SgemmPacked(false, 2, 2, 0, 1, nil, 1, p, 3, c, 2)
	g.SgemmPacked(false, 2, 2, 5, 0, nil, 5, p, 0.5, c, 2)
	g.SgemmPacked(false, 0, 2, 5, 1, nil, 5, p, 0, c, 2)
	if want := []float32{1.5, 3, 4.5, 6}; testkit.FirstBitDiff(c, want) >= 0 || calls != 0 {
		t.Fatalf("C = %v, %d packs; want %v and none", c, calls, want)
	}
}
