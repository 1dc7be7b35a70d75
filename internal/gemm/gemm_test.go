package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// refGemm returns alpha·op(A)·op(B) + beta·C computed in float64, and the
// max-norm of |alpha|·|op(A)|·|op(B)| + |beta|·|C|, the scale of the
// rounding errors a float32 product may make.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want []float64, norm float64) {
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	want = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				x := at(i, p) * bt(p, j)
				s += x
				abs += math.Abs(x)
			}
			s *= float64(alpha)
			abs *= math.Abs(float64(alpha))
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
				abs += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j] = s
			norm = max(norm, abs)
		}
	}
	return want, norm
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra leading dimension beyond the row width
	padC           int
	nanC           bool // fill C with NaN (only with beta == 0)
}

func (tc gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m=%d,n=%d,k=%d/alpha=%g,beta=%g/pad=%d,%d,%d/nan=%v",
		t(tc.transA), t(tc.transB), tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC, tc.nanC)
}

// check runs tc on g and compares with refGemm.
func check(t *testing.T, g *Gemm, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	ra, ca := tc.m, tc.k
	if tc.transA {
		ra, ca = ca, ra
	}
	rb, cb := tc.k, tc.n
	if tc.transB {
		rb, cb = cb, rb
	}
	lda, ldb, ldc := ca+tc.padA, cb+tc.padB, tc.n+tc.padC
	lda, ldb = max(lda, 1), max(ldb, 1)
	a := randSlice(rng, max(0, (ra-1)*lda+ca))
	b := randSlice(rng, max(0, (rb-1)*ldb+cb))
	c := randSlice(rng, tc.m*ldc)
	if tc.nanC {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	want, norm := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	orig := append([]float32(nil), c...)
	g.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	tol := 1e-5 * max(norm, 1e-30)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= tc.n {
				// Padding between rows must be left alone.
				if math.Float32bits(got) != math.Float32bits(orig[i*ldc+j]) {
					t.Fatalf("%v: padding C[%d,%d] changed from %v to %v", tc, i, j, orig[i*ldc+j], got)
				}
				continue
			}
			w := want[i*tc.n+j]
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				t.Fatalf("%v: C[%d,%d] = %v, want %v (|diff| %g > tol %g)", tc, i, j, got, w, d, tol)
			}
		}
	}
}

// testKernels returns a Gemm for every micro-kernel this CPU can run,
// including the pure-Go one.
func testKernels(threads int) []*Gemm {
	var gs []*Gemm
	for _, k := range availableKernels() {
		g := New(threads)
		g.setKernel(k)
		gs = append(gs, g)
	}
	return gs
}

var bools = []bool{false, true}

func TestSgemmSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 2, 3, 5, 7, 11, 13, 17, 31, 33, 37, 47, 65}
	for _, g := range testKernels(1) {
		t.Run(g.kern.name, func(t *testing.T) {
			for _, ta := range bools {
				for _, tb := range bools {
					for _, m := range sizes {
						for _, n := range sizes {
							k := sizes[rng.IntN(len(sizes))]
							check(t, g, rng, gemmCase{transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 0})
						}
					}
				}
			}
		})
	}
}

func TestSgemmRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphas := []float32{1, -1, 0.5, 2.25}
	betas := []float32{0, 1, -1, 0.5}
	iters := 300
	if testing.Short() {
		iters = 60
	}
	for _, threads := range []int{1, 2, 3} {
		for _, g := range testKernels(threads) {
			t.Run(fmt.Sprintf("%s/threads=%d", g.kern.name, threads), func(t *testing.T) {
				for it := 0; it < iters; it++ {
					tc := gemmCase{
						transA: rng.IntN(2) == 1,
						transB: rng.IntN(2) == 1,
						m:      1 + rng.IntN(150),
						n:      1 + rng.IntN(150),
						k:      1 + rng.IntN(150),
						alpha:  alphas[rng.IntN(len(alphas))],
						beta:   betas[rng.IntN(len(betas))],
					}
					if rng.IntN(3) == 0 {
						tc.padA, tc.padB, tc.padC = rng.IntN(9), rng.IntN(9), rng.IntN(9)
					}
					tc.nanC = tc.beta == 0 && rng.IntN(2) == 0
					check(t, g, rng, tc)
				}
			})
		}
	}
}

// TestSgemmBlocking uses small cache blocks so that products of modest size
// cross several kc, mc and nc blocks, and large k to reach the k split.
func TestSgemmBlocking(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, threads := range []int{1, 2} {
		for _, g := range testKernels(threads) {
			name := fmt.Sprintf("%s/threads=%d", g.kern.name, threads)
			k := g.kern
			g.kc, g.mc, g.nc = 37, 2*k.mr, 3*k.nr
			t.Run(name, func(t *testing.T) {
				for _, ta := range bools {
					for _, tb := range bools {
						for _, beta := range []float32{0, 1, 0.75} {
							check(t, g, rng, gemmCase{transA: ta, transB: tb, m: 5*k.mr + 3, n: 4*k.nr + 5, k: 200, alpha: 1.5, beta: beta, padA: 3, padB: 1, padC: 2, nanC: beta == 0})
							check(t, g, rng, gemmCase{transA: ta, transB: tb, m: 4 * k.mr, n: 3 * k.nr, k: 111, alpha: -1, beta: beta})
							// Tiny m·n, long k: split over k when threads > 1.
							check(t, g, rng, gemmCase{transA: ta, transB: tb, m: k.mr, n: k.nr - 1, k: 3000, alpha: 1, beta: beta, padC: 1, nanC: beta == 0})
						}
					}
				}
			})
		}
	}
}

// TestSgemmLarge checks products big enough to use the default blocks and
// both threads.
func TestSgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	g := New(2)
	defer g.Close()
	cases := []gemmCase{
		{m: 64, n: 2000, k: 48, alpha: 1, beta: 0, nanC: true},
		{transA: true, m: 300, n: 257, k: 300, alpha: 1, beta: 1},
		{transB: true, m: 64, n: 48, k: 5000, alpha: 1, beta: 0, nanC: true},
		{transB: true, m: 97, n: 513, k: 600, alpha: 0.5, beta: -2, padA: 5, padB: 7, padC: 3},
		{transA: true, transB: true, m: 500, n: 31, k: 260, alpha: 1, beta: 0},
		{m: 1000, n: 64, k: 513, alpha: 1, beta: 0.5},
	}
	for _, tc := range cases {
		check(t, g, rng, tc)
	}
}

func TestSgemmDegenerate(t *testing.T) {
	g := New(2)
	defer g.Close()
	nan := float32(math.NaN())
	// k == 0 and alpha == 0 scale C by beta without reading A or B.
	for _, alpha := range []float32{0, 1} {
		for _, k := range []int{0, 3} {
			if alpha != 0 && k != 0 {
				continue
			}
			var a, b []float32
			if k != 0 {
				a = []float32{nan, nan, nan, nan, nan, nan}
				b = []float32{nan, nan, nan, nan, nan, nan}
			}
			c := []float32{1, 2, 3, 4}
			g.Sgemm(false, false, 2, 2, k, alpha, a, max(k, 1), b, 2, 0.5, c, 2)
			if c[0] != 0.5 || c[1] != 1 || c[2] != 1.5 || c[3] != 2 {
				t.Errorf("alpha=%v k=%d beta=0.5: got %v", alpha, k, c)
			}
			c = []float32{nan, nan, nan, 7}
			g.Sgemm(false, false, 2, 1, k, alpha, a, max(k, 1), b, 1, 0, c, 2)
			if c[0] != 0 || c[2] != 0 || !math.IsNaN(float64(c[1])) || c[3] != 7 {
				t.Errorf("alpha=%v k=%d beta=0: got %v", alpha, k, c)
			}
		}
	}
	// m == 0 or n == 0 touches nothing.
	g.Sgemm(false, false, 0, 5, 5, 1, nil, 5, make([]float32, 25), 5, 0, nil, 5)
	g.Sgemm(false, false, 5, 0, 5, 1, make([]float32, 25), 5, nil, 1, 0, nil, 1)
}

func TestSgemmPanics(t *testing.T) {
	g := New(1)
	a := make([]float32, 6)
	b := make([]float32, 6)
	c := make([]float32, 4)
	for _, f := range []func(){
		func() { g.Sgemm(false, false, 2, 2, 3, 1, a[:5], 3, b, 2, 0, c, 2) },
		func() { g.Sgemm(false, false, 2, 2, 3, 1, a, 3, b[:5], 2, 0, c, 2) },
		func() { g.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c[:3], 2) },
		func() { g.Sgemm(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) },
		func() { g.Sgemm(true, false, 2, 2, 3, 1, a, 1, b, 2, 0, c, 2) },
		func() { g.Sgemm(false, true, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2) },
		func() { g.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 1) },
		func() { g.Sgemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestSgemmStress makes many calls of varying shapes in sequence on one
// two-thread Gemm, checking every result; run it under -race.
func TestSgemmStress(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	g := New(2)
	defer g.Close()
	iters := 200
	if testing.Short() {
		iters = 40
	}
	for it := 0; it < iters; it++ {
		tc := gemmCase{
			transA: rng.IntN(2) == 1,
			transB: rng.IntN(2) == 1,
			m:      1 + rng.IntN(200),
			n:      1 + rng.IntN(200),
			k:      1 + rng.IntN(300),
			alpha:  1,
			beta:   float32(rng.IntN(3)) / 2,
		}
		if it%10 == 0 {
			tc.m, tc.n, tc.k = 1+rng.IntN(20), 1+rng.IntN(40), 2000+rng.IntN(2000)
		}
		check(t, g, rng, tc)
	}
}

func TestSgemmClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	g := New(2)
	check(t, g, rng, gemmCase{m: 100, n: 100, k: 100, alpha: 1})
	g.Close()
	g.Close()
	check(t, g, rng, gemmCase{m: 100, n: 100, k: 100, alpha: 1})
}

func TestSgemmAllocs(t *testing.T) {
	g := New(2)
	defer g.Close()
	rng := rand.New(rand.NewPCG(13, 14))
	shapes := []struct {
		ta, tb  bool
		m, n, k int
	}{
		{false, false, 128, 512, 256}, // split over n
		{true, false, 1024, 64, 128},  // split over m
		{false, true, 12, 16, 8192},   // split over k
		{false, false, 7, 9, 5},       // serial
	}
	for _, s := range shapes {
		a := randSlice(rng, s.m*s.k)
		b := randSlice(rng, s.k*s.n)
		c := randSlice(rng, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.ta {
			lda = s.m
		}
		if s.tb {
			ldb = s.k
		}
		run := func() { g.Sgemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n) }
		run() // grow the buffers
		if n := testing.AllocsPerRun(20, run); n != 0 {
			t.Errorf("%+v: %v allocations per call, want 0", s, n)
		}
	}
}

// TestKernelsAgree checks every micro-kernel on a full tile against the
// pure-Go one, alpha and beta included.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var ks []kernel
	for _, k := range availableKernels() {
		ks = append(ks, k)
		if k.half != nil {
			// The half-width kernel reads B packed nr wide.
			ks = append(ks, kernel{name: k.name + "/half", mr: k.mr, nr: k.nr / 2, fn: k.half})
		}
	}
	for _, k := range ks {
		bstep := k.nr
		if strings.HasSuffix(k.name, "/half") {
			bstep = 2 * k.nr
		}
		for _, kc := range []int{1, 2, 3, 4, 5, 8, 17, 64} {
			a := randSlice(rng, k.mr*kc)
			b := randSlice(rng, bstep*kc)
			ldc := k.nr + 3
			c0 := randSlice(rng, k.mr*ldc)
			for _, beta := range []float32{0, 1, -0.5} {
				c := append([]float32(nil), c0...)
				k.fn(kc, a, b, c, ldc, 1.5, beta)
				for i := 0; i < k.mr; i++ {
					for j := 0; j < ldc; j++ {
						want := float64(c0[i*ldc+j])
						if j < k.nr {
							var s float64
							for p := 0; p < kc; p++ {
								s += float64(a[p*k.mr+i]) * float64(b[p*bstep+j])
							}
							want = 1.5 * s
							if beta != 0 {
								want += float64(beta) * float64(c0[i*ldc+j])
							}
						}
						if d := math.Abs(float64(c[i*ldc+j]) - want); d > 1e-4*(1+math.Abs(want)) {
							t.Fatalf("%s kc=%d beta=%v: C[%d,%d] = %v, want %v", k.name, kc, beta, i, j, c[i*ldc+j], want)
						}
					}
				}
			}
		}
	}
}

// TestPack checks the packing routines, with and without the kernels'
// fast transposition, against their definitions.
func TestPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	ks := map[string]kernel{"go": {}}
	for _, k := range availableKernels() {
		if k.transpose != nil || k.copy != nil {
			ks[k.name] = k
		}
	}
	for name, kern := range ks {
		for _, trans := range bools {
			for _, mr := range []int{4, 6, 8, 12, 14, 16} {
				for _, kc := range []int{1, 15, 16, 17, 40, 64} {
					for _, mc := range []int{1, mr - 1, mr, 2*mr + 3} {
						if mc < 1 {
							continue
						}
						i0, p0 := 3, 5
						ld := i0 + mc + 4
						if !trans {
							ld = p0 + kc + 2
						}
						x := randSlice(rng, 100*ld)
						at := func(i, p int) float32 {
							if trans {
								return x[p*ld+i]
							}
							return x[i*ld+p]
						}
						dst := randSlice(rng, ceilDiv(mc, mr)*panelStride(mr, kc))
						kern.mr = mr
						packA(dst, x, ld, trans, i0, mc, p0, kc, &kern)
						for q := 0; q*mr < mc; q++ {
							for p := 0; p < kc; p++ {
								for r := 0; r < mr; r++ {
									var want float32
									if q*mr+r < mc {
										want = at(i0+q*mr+r, p0+p)
									}
									if got := dst[q*panelStride(mr, kc)+p*mr+r]; got != want {
										t.Fatalf("%s packA trans=%v mr=%d kc=%d mc=%d: panel %d [%d,%d] = %v, want %v", name, trans, mr, kc, mc, q, p, r, got, want)
									}
								}
							}
						}
						// The same matrix as op(B) with nr = 2·mr.
						nr := 2 * mr
						if kern.transpose != nil && nr%kern.tw != 0 {
							nr = 32
						}
						dst = randSlice(rng, ceilDiv(mc, nr)*panelStride(nr, kc))
						kern.nr = nr
						packB(dst, x, ld, !trans, p0, kc, i0, mc, &kern)
						for q := 0; q*nr < mc; q++ {
							for p := 0; p < kc; p++ {
								for c := 0; c < nr; c++ {
									var want float32
									if q*nr+c < mc {
										want = at(i0+q*nr+c, p0+p)
									}
									if got := dst[q*panelStride(nr, kc)+p*nr+c]; got != want {
										t.Fatalf("%s packB trans=%v nr=%d kc=%d nc=%d: panel %d [%d,%d] = %v, want %v", name, !trans, nr, kc, mc, q, p, c, got, want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestSgemmIdleCaller leaves all chunks of parallel products to the worker
// goroutines, as happens when the calling goroutine is slow to get to them.
func TestSgemmIdleCaller(t *testing.T) {
	testIdleCaller = true
	defer func() { testIdleCaller = false }()
	rng := rand.New(rand.NewPCG(19, 20))
	g := New(2)
	defer g.Close()
	for _, tc := range []gemmCase{
		{m: 8, n: 16, k: 4096, alpha: 1, beta: 0, nanC: true}, // split over k
		{m: 8, n: 16, k: 4096, alpha: 2, beta: 0.5, padC: 3},
		{transA: true, m: 300, n: 20, k: 100, alpha: 1, beta: 1},    // over m
		{transB: true, m: 20, n: 300, k: 100, alpha: 1, beta: -1.5}, // over n
	} {
		check(t, g, rng, tc)
	}
}

// TestSgemmDeterministic checks that a product split over k gives the
// same bits however the threads are scheduled: a goroutine hogging a core
// makes the workers start late and run slowly.
func TestSgemmDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	g := New(2)
	defer g.Close()
	m, n, k := 64, 48, 16384 // conv1's weight gradient: split over k
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	if dim, _, chunks := g.plan(m, n, k); dim != splitK || chunks < 2 {
		t.Fatalf("the test product is not split over k (dim %d, %d chunks)", dim, chunks)
	}
	ref := make([]float32, m*n)
	g.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, ref, n)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		x := 0
		for {
			select {
			case <-stop:
				return
			default:
				x++
			}
		}
	}()
	c := make([]float32, m*n)
	for r := 0; r < 50; r++ {
		g.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
		for i := range c {
			if math.Float32bits(c[i]) != math.Float32bits(ref[i]) {
				t.Fatalf("repetition %d: C[%d] = %v, first run %v: the k split depends on scheduling", r, i, c[i], ref[i])
			}
		}
	}
}

// TestCleanup checks that the worker goroutines of a Gemm that was dropped
// without Close stop once it is collected.
func TestCleanup(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		g := New(3)
		g.Sgemm(false, false, 100, 100, 100, 1, make([]float32, 10000), 100, make([]float32, 10000), 100, 0, make([]float32, 10000), 100)
		// Products cut between the threads (along n, A packed ahead), a
		// chunked one and a loop: what the pool last ran must not keep g.
		g.Sgemm(false, false, 64, 2048, 256, 1, make([]float32, 64*256), 256, make([]float32, 256*2048), 2048, 0, make([]float32, 64*2048), 2048)
		g.SgemmEach(false, 64, 2048, 256, 1, make([]float32, 64*256), 256, matPacker{b: make([]float32, 256*2048), ldb: 2048}, 512, func(int, int, []float32) {})
		g.For(100, func(int, int) {})
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
