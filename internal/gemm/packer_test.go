package gemm

import (
	"sync"
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
	a, b, c, lda, ldb, ldc := productInputs(tc, seed)
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

// TestSgemmEachGivesSgemmBits checks that the chunks SgemmEach hands over
// hold the bits of Sgemm's C (beta 0), each chunk exactly once, for every
// kernel, on one and on three threads, with chunks of every size.
func TestSgemmEachGivesSgemmBits(t *testing.T) {
	cases := []gemmCase{
		{m: 1, n: 1, k: 1, alpha: 1},
		{m: 7, n: 33, k: 300, alpha: -0.5},
		{transA: true, m: 40, n: 90, k: 31, alpha: 2},
		{m: 300, n: 200, k: 600, alpha: 1},                // several blocks of m and of k
		{transA: true, m: 1024, n: 256, k: 128, alpha: 1}, // backward-data, conv2
		{m: 5, n: 10, k: 0, alpha: 1},                     // empty sum: zeros
	}
	for _, threads := range []int{1, 3} {
		for _, g := range testKernels(threads) {
			for _, tc := range cases {
				want := product(g, gemmCase{transA: tc.transA, m: tc.m, n: tc.n, k: tc.k, alpha: tc.alpha, nanC: true}, 9)
				a, b, _, lda, _, _ := productInputs(gemmCase{transA: tc.transA, m: tc.m, n: tc.n, k: tc.k}, 9)
				for _, chunk := range []int{1, 7, 32, 100, tc.n + 5} {
					got := make([]float32, tc.m*tc.n)
					seen := make([]int, tc.n)
					var mu sync.Mutex
					g.SgemmEach(tc.transA, tc.m, tc.n, tc.k, tc.alpha, a, max(1, lda), matPacker{b: b, ldb: tc.n}, chunk, func(j0, j1 int, c []float32) {
						mu.Lock()
						defer mu.Unlock()
						if j0%chunk != 0 || j1 != min(j0+chunk, tc.n) || len(c) != tc.m*(j1-j0) {
							t.Errorf("%v, chunk %d: done(%d, %d) with %d values", tc, chunk, j0, j1, len(c))
							return
						}
						for j := j0; j < j1; j++ {
							seen[j]++
						}
						for i := 0; i < tc.m; i++ {
							copy(got[i*tc.n+j0:i*tc.n+j1], c[i*(j1-j0):(i+1)*(j1-j0)])
						}
					})
					for j, s := range seen {
						if s != 1 {
							t.Fatalf("%s, %d threads, %v, chunk %d: column %d handed over %d times", g.kern.name, threads, tc, chunk, j, s)
						}
					}
					if i := testkit.FirstBitDiff(got, want); i >= 0 {
						t.Fatalf("%s, %d threads, %v, chunk %d: C[%d] = %g, Sgemm %g", g.kern.name, threads, tc, chunk, i, got[i], want[i])
					}
				}
			}
			g.Close()
		}
	}
}
