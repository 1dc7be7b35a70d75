package gemm

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// threadCases are products that the thread counts below split over m, n
// and k in different ways (k as a multiple of the k block, as balanced
// blocks that are not, and as a single block).
var threadCases = []gemmCase{
	{m: 64, n: 48, k: 16384, alpha: 1, beta: 0},                           // conv1's weight gradient: over k
	{transB: true, m: 32, n: 27, k: 9000, alpha: 1, beta: 1},              // over k, 36 blocks of 250
	{m: 12, n: 16, k: 8192, alpha: 1.5, beta: -0.5, padC: 3},              // over k, alpha and beta
	{transA: true, m: 8, n: 20, k: 4000, alpha: 1, beta: 0, nanC: true},   // over k, C not read
	{m: 128, n: 1024, k: 4096, alpha: 1, beta: 0},                         // over n (or k)
	{transA: true, m: 1000, n: 200, k: 700, alpha: 2, beta: 1},            // over m
	{transB: true, m: 300, n: 700, k: 300, alpha: 1, beta: 0.25, padA: 1}, // over m or n
	{m: 256, n: 64, k: 4096, alpha: 1, beta: 0},                           // conv4 forward
}

// product runs tc on g with inputs drawn from seed and returns C.
func product(g *Gemm, tc gemmCase, seed uint64) []float32 {
	a, b, c, lda, ldb, ldc := productInputs(tc, seed)
	g.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	return c
}

// productInputs draws the operands of tc from seed.
func productInputs(tc gemmCase, seed uint64) (a, b, c []float32, lda, ldb, ldc int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ra, ca := tc.m, tc.k
	if tc.transA {
		ra, ca = ca, ra
	}
	rb, cb := tc.k, tc.n
	if tc.transB {
		rb, cb = cb, rb
	}
	lda, ldb, ldc = ca+tc.padA, cb+tc.padB, tc.n+tc.padC
	a = randSlice(rng, (ra-1)*lda+ca)
	b = randSlice(rng, (rb-1)*ldb+cb)
	c = randSlice(rng, tc.m*ldc)
	if tc.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	return a, b, c, lda, ldb, ldc
}

// TestThreadCountGivesSameBits checks that a product gives the same bits
// on any number of threads, however it is split between them, and also
// when the calling goroutine leaves the chunks to the workers.
func TestThreadCountGivesSameBits(t *testing.T) {
	gs := map[int]*Gemm{}
	for _, threads := range []int{1, 2, 3, 4, 5, 7} {
		gs[threads] = New(threads)
		defer gs[threads].Close()
	}
	for i, tc := range threadCases {
		ref := product(gs[1], tc, uint64(i))
		splits := map[split]bool{}
		for _, threads := range []int{2, 3, 4, 5, 7} {
			g := gs[threads]
			if dim, _, chunks := g.plan(tc.m, tc.n, tc.k); chunks > 1 {
				splits[dim] = true
			}
			for _, idle := range []bool{false, true} {
				testIdleCaller = idle
				c := product(g, tc, uint64(i))
				testIdleCaller = false
				if j := testkit.FirstBitDiff(ref, c); j >= 0 {
					t.Fatalf("%v on %d threads (idle caller %v): C[%d] = %v, one thread gives %v", tc, threads, idle, j, c[j], ref[j])
				}
			}
		}
		if len(splits) == 0 {
			t.Errorf("%v: no thread count splits the product", tc)
		}
	}
	// Each way of splitting is exercised.
	seen := map[split]bool{}
	for _, tc := range threadCases {
		for _, threads := range []int{2, 3, 4, 5, 7} {
			if dim, _, chunks := gs[threads].plan(tc.m, tc.n, tc.k); chunks > 1 {
				seen[dim] = true
			}
		}
	}
	for _, d := range []split{splitM, splitN, splitK} {
		if !seen[d] {
			t.Errorf("no case is split along dimension %d", d)
		}
	}
}

// Every micro-kernel, assembly or pure Go, rounds every product of A and
// B into its sum by one fused multiply-add, in the same order: they give
// the same bits as each other.
func TestKernelsGiveSameBits(t *testing.T) {
	gs := testKernels(2)
	for _, g := range gs {
		defer g.Close()
	}
	for i, tc := range threadCases {
		ref := product(gs[0], tc, uint64(i))
		for _, g := range gs[1:] {
			if j := testkit.FirstBitDiff(ref, product(g, tc, uint64(i))); j >= 0 {
				t.Errorf("%v: kernel %s differs from %s at C[%d]", tc, g.kern.name, gs[0].kern.name, j)
			}
		}
	}
}

// addTo, which adds the parts of a product cut along k, rounds each sum as
// a scalar float32 addition does, for every length (vector body and tail).
func TestAddTo(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for n := 0; n < 80; n++ {
		dst, src := randSlice(rng, n+1), randSlice(rng, n)
		for i := range src {
			src[i] *= float32(math.Ldexp(1, rng.IntN(40)-20))
		}
		want := append([]float32(nil), dst...)
		for i, v := range src {
			want[i] += v
		}
		addTo(dst[:n], src)
		if i := testkit.FirstBitDiff(want, dst); i >= 0 {
			t.Fatalf("n=%d: dst[%d] = %v, want %v", n, i, dst[i], want[i])
		}
	}
}

// fmaRef returns a·b + c rounded once to float32, in big.Float arithmetic.
func fmaRef(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// The micro-kernels compute every value of a tile as a chain of fused
// multiply-adds, acc = fma(a, b, acc) for each step of k, then C =
// fma(beta, C, alpha·acc) with alpha·acc rounded: checked bit for bit on
// the assembly kernels and on the pure-Go one (fma32).
func TestKernelsAreFMAChains(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	var ks []kernel
	for _, k := range availableKernels() {
		ks = append(ks, k)
		if k.half != nil {
			ks = append(ks, kernel{name: k.name + "/half", mr: k.mr, nr: k.nr / 2, fn: k.half})
		}
	}
	for _, k := range ks {
		bstep := k.nr
		if strings.HasSuffix(k.name, "/half") {
			bstep = 2 * k.nr
		}
		for _, kc := range []int{1, 3, 4, 17, 64} {
			a, b := randSlice(rng, k.mr*kc), randSlice(rng, bstep*kc)
			ldc := k.nr + 1
			c0 := randSlice(rng, k.mr*ldc)
			for _, ab := range [][2]float32{{1, 0}, {1, 1}, {1.5, -0.7}, {-0.3, 1}} {
				alpha, beta := ab[0], ab[1]
				c := append([]float32(nil), c0...)
				k.fn(kc, a, b, c, ldc, alpha, beta)
				for i := 0; i < k.mr; i++ {
					for j := 0; j < k.nr; j++ {
						var acc float32
						for p := 0; p < kc; p++ {
							acc = fmaRef(a[p*k.mr+i], b[p*bstep+j], acc)
						}
						want := alpha * acc
						if beta != 0 {
							want = fmaRef(beta, c0[i*ldc+j], want)
						}
						if got := c[i*ldc+j]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%s kc=%d alpha=%v beta=%v: C[%d,%d] = %v, the FMA chain gives %v", k.name, kc, alpha, beta, i, j, got, want)
						}
					}
				}
			}
		}
	}
}

// TestFor checks that For visits every index of its range exactly once, in
// contiguous chunks, on any number of threads, when the calling goroutine
// leaves the chunks to the workers, and after Close.
func TestFor(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 7} {
		g := New(threads)
		for _, idle := range []bool{false, true} {
			testIdleCaller = idle && threads > 1
			for _, n := range []int{0, 1, 2, 5, 64, 1000} {
				seen := make([]int32, n)
				g.For(n, func(lo, hi int) {
					if lo >= hi || lo < 0 || hi > n {
						t.Errorf("%d threads, n %d: chunk [%d, %d)", threads, n, lo, hi)
						return
					}
					for i := lo; i < hi; i++ {
						seen[i]++
					}
				})
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("%d threads, idle caller %v, n %d: index %d visited %d times", threads, idle, n, i, c)
					}
				}
			}
			testIdleCaller = false
		}
		g.Close()
		ran := 0
		g.For(10, func(lo, hi int) { ran += hi - lo })
		if ran != 10 {
			t.Fatalf("%d threads, after Close: %d of 10 indexes", threads, ran)
		}
	}
}

// fma32 rounds a·b + c once, as the big.Float reference does, on random
// values of every scale and on the hard cases of double rounding: sums
// that land on a float32 halfway point in float64 while the exact sum is
// off it by far less than a float64 step.
func TestFMA32IsFused(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	check := func(a, b, c float32) {
		t.Helper()
		if got, want := fma32(a, b, c), fmaRef(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%v, %v, %v) = %v, want %v", a, b, c, got, want)
		}
	}
	for range 200000 {
		a := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30)))
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30)))
		c := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(80)-40)))
		check(a, b, c)
		check(a, b, -float32(float64(a)*float64(b))) // cancellation
	}
	// a·b = 1 + 2⁻¹¹ + 2⁻²⁴ exactly, halfway between two float32 values;
	// with a tiny c the exact sum lies just off the halfway point, but in
	// float64 it rounds onto it, and a second rounding to float32 would
	// then break the tie to even, on the wrong side.
	a, b := float32(1+0x1p-12), float32(1+0x1p-12)
	for _, c := range []float32{0x1p-80, -0x1p-80, 0x1p-149, -0x1p-149, 0x1p-60} {
		check(a, b, c)
		check(-a, b, -c)
	}
	if naive := float32(float64(a)*float64(b) + 0x1p-80); naive == fmaRef(a, b, 0x1p-80) {
		t.Fatal("the halfway case is not one: rounding twice gives the fused result")
	}
	for _, c := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))} {
		check(a, b, c)
		check(0, b, c)
	}
	if v := fma32(float32(math.Inf(1)), 0, 1); !math.IsNaN(float64(v)) {
		t.Fatalf("fma32(Inf, 0, 1) = %v, want NaN", v)
	}
}
