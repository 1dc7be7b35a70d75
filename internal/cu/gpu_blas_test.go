package cu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmCase is one column-major GEMM with padded leading dimensions.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	alpha, beta    float32
	a, b, c        []float32
}

func newGemmCase(rng *rand.Rand, transA, transB bool, m, n, k int, alpha, beta float32) *gemmCase {
	g := &gemmCase{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	g.lda, g.ldb, g.ldc = rowsA+rng.IntN(3), rowsB+rng.IntN(3), m+rng.IntN(3)
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	g.a, g.b, g.c = fill(g.lda*colsA), fill(g.ldb*colsB), fill(g.ldc*n)
	if beta == 0 { // C must not be read when beta is 0
		for i := range g.c {
			g.c[i] = float32(math.NaN())
		}
	}
	return g
}

func (g *gemmCase) String() string {
	return fmt.Sprintf("%s%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%v beta=%v",
		opName(g.transA), opName(g.transB), g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.alpha, g.beta)
}

// reference computes C in float64 with the magnitude scale of each entry;
// entries of C's padding rows keep their old value.
func (g *gemmCase) reference() (want, scale []float64) {
	want, scale = make([]float64, len(g.c)), make([]float64, len(g.c))
	for i := range g.c {
		want[i] = float64(g.c[i])
	}
	for j := 0; j < g.n; j++ {
		for i := 0; i < g.m; i++ {
			var sum, abs float64
			for l := 0; l < g.k; l++ {
				var av, bv float32
				if g.transA { // A is stored k×m
					av = g.a[l+i*g.lda]
				} else { // A is stored m×k
					av = g.a[i+l*g.lda]
				}
				if g.transB { // B is stored n×k
					bv = g.b[j+l*g.ldb]
				} else { // B is stored k×n
					bv = g.b[l+j*g.ldb]
				}
				p := float64(av) * float64(bv)
				sum += p
				abs += math.Abs(p)
			}
			idx := i + j*g.ldc
			want[idx] = float64(g.alpha) * sum
			scale[idx] = math.Abs(float64(g.alpha)) * abs
			if g.beta != 0 {
				want[idx] += float64(g.beta) * float64(g.c[idx])
				scale[idx] += math.Abs(float64(g.beta) * float64(g.c[idx]))
			}
		}
	}
	return want, scale
}

// run executes the case on the default stream and returns the normalized
// error of C (padding rows included: they must stay untouched).
func (g *gemmCase) run(t *testing.T, b *BLAS) float64 {
	t.Helper()
	a, bb, c := upload(t, g.a), upload(t, g.b), upload(t, g.c)
	must(t, b.Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, bb, g.ldb, g.beta, c, g.ldc))
	got := download(t, c, len(g.c))
	want, scale := g.reference()
	for i := range got { // padding rows: bitwise unchanged (NaN included)
		if i%g.ldc >= g.m && math.Float32bits(got[i]) != math.Float32bits(g.c[i]) {
			t.Fatalf("%v: padding element %d changed from %v to %v", g, i, g.c[i], got[i])
		}
	}
	for i := range scale {
		if i%g.ldc >= g.m {
			want[i], scale[i] = 0, 1
			got[i] = 0
		}
	}
	e, _ := maxRelErr(got, want, scale)
	return e
}

func gemmShapes(rng *rand.Rand) [][3]int {
	shapes := [][3]int{{1, 1, 1}, {7, 5, 3}, {64, 32, 128}, {33, 65, 17}, {128, 96, 300}, {1, 100, 50}}
	for range 4 {
		shapes = append(shapes, [3]int{1 + rng.IntN(100), 1 + rng.IntN(100), 1 + rng.IntN(100)})
	}
	return shapes
}

// TestGPUSgemm compares cublasSgemm_v2 in all four transpose combinations
// with a float64 CPU reference: within 1e-5 of the magnitude of the terms
// in default and pedantic FP32 math; TF32 is reported (and bounded by
// 1e-2).
func TestGPUSgemm(t *testing.T) {
	gpu(t)
	needLib(t, LoadBLAS)
	b, err := NewBLAS()
	must(t, err)
	defer b.Destroy()
	for _, mode := range []struct {
		name string
		math BLASMath
		tol  float64
	}{{"default", BLASDefaultMath, 1e-5}, {"pedantic", BLASPedanticMath, 1e-5}, {"tf32", BLASTF32TensorOpMath, 1e-2}} {
		must(t, b.SetMathMode(mode.math))
		rng := rand.New(rand.NewPCG(1, 2))
		worst := 0.0
		cases := 0
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, sh := range gemmShapes(rng) {
				for _, ab := range [][2]float32{{1.5, -0.5}, {1, 0}} {
					g := newGemmCase(rng, tr[0], tr[1], sh[0], sh[1], sh[2], ab[0], ab[1])
					e := g.run(t, b)
					cases++
					worst = max(worst, e)
					if e > mode.tol {
						t.Errorf("%s math, %v: error %.3g > %.0e", mode.name, g, e, mode.tol)
					}
				}
			}
		}
		t.Logf("%s math: %d GEMMs, largest error %.3g (relative to the magnitude of the terms)", mode.name, cases, worst)
	}
	must(t, b.SetMathMode(BLASDefaultMath))
}

func TestGPUSgemmStridedBatched(t *testing.T) {
	gpu(t)
	needLib(t, LoadBLAS)
	b, err := NewBLAS()
	must(t, err)
	defer b.Destroy()
	rng := rand.New(rand.NewPCG(3, 4))
	const batch = 4
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		// The same shape and leading dimensions (same seed), different values.
		cases := make([]*gemmCase, batch)
		for i := range cases {
			g := newGemmCase(rand.New(rand.NewPCG(0, 9)), tr[0], tr[1], 17, 13, 9, 0.75, 0.5)
			for _, v := range [][]float32{g.a, g.b, g.c} {
				for j := range v {
					v[j] = rng.Float32()*2 - 1
				}
			}
			cases[i] = g
		}
		g0 := cases[0]
		strideA, strideB, strideC := len(g0.a)+5, len(g0.b)+3, len(g0.c)+1
		pack := func(stride int, get func(*gemmCase) []float32) []float32 {
			v := make([]float32, stride*batch)
			for i, g := range cases {
				copy(v[i*stride:], get(g))
			}
			return v
		}
		a := upload(t, pack(strideA, func(g *gemmCase) []float32 { return g.a }))
		bb := upload(t, pack(strideB, func(g *gemmCase) []float32 { return g.b }))
		c := upload(t, pack(strideC, func(g *gemmCase) []float32 { return g.c }))
		must(t, b.SgemmStridedBatched(tr[0], tr[1], g0.m, g0.n, g0.k, g0.alpha, a, g0.lda, int64(strideA),
			bb, g0.ldb, int64(strideB), g0.beta, c, g0.ldc, int64(strideC), batch))
		got := download(t, c, strideC*batch)
		for i, g := range cases {
			want, scale := g.reference()
			out := got[i*strideC : i*strideC+len(g.c)]
			if e, at := maxRelErr(out, want, scale); e > 1e-5 {
				t.Errorf("batch %d of %v: error %.3g at %d", i, g, e, at)
			}
		}
	}
}

// TestGPUSgemmGraph captures a GEMM (with a workspace, which capture
// requires) on a stream and replays it with new inputs.
func TestGPUSgemmGraph(t *testing.T) {
	gpu(t)
	needLib(t, LoadBLAS)
	b, err := NewBLAS()
	must(t, err)
	defer b.Destroy()
	s := newStream(t, StreamNonBlocking)
	const wsBytes = 32 << 20
	ws := devAlloc(t, wsBytes)
	must(t, b.SetStream(s)) // before SetWorkspace: cublasSetStream resets the workspace
	must(t, b.SetWorkspace(ws, wsBytes))

	rng := rand.New(rand.NewPCG(5, 6))
	g := newGemmCase(rng, false, true, 96, 80, 64, 1, 0)
	aP, aHost := pinned(t, len(g.a))
	cP, cHost := pinned(t, len(g.c))
	a, bb, c := devAlloc(t, 4*len(g.a)), upload(t, g.b), devAlloc(t, 4*len(g.c))
	must(t, MemsetD32(c, 0, len(g.c)))
	must(t, Synchronize())

	must(t, StreamBeginCapture(s, CaptureModeGlobal))
	must(t, MemcpyHtoDAsync(a, aP, 4*len(g.a), s))
	must(t, b.Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, bb, g.ldb, g.beta, c, g.ldc))
	must(t, MemcpyDtoHAsync(cP, c, 4*len(g.c), s))
	graph, err := StreamEndCapture(s)
	must(t, err)
	exec, err := GraphInstantiate(graph)
	must(t, err)
	defer GraphExecDestroy(exec)
	defer GraphDestroy(graph)

	for r := range 3 {
		for i := range g.a {
			g.a[i] = rng.Float32()*2 - 1
		}
		copy(aHost, g.a)
		must(t, GraphLaunch(exec, s))
		must(t, s.Synchronize())
		want, scale := g.reference()
		for i := range want {
			if i%g.ldc >= g.m { // padding rows: C started as zeros
				want[i], scale[i] = 0, 1
			}
		}
		if e, at := maxRelErr(cHost, want, scale); e > 1e-5 {
			t.Errorf("replay %d: error %.3g at %d", r, e, at)
		}
	}
}

func TestGPUBLASErrors(t *testing.T) {
	gpu(t)
	needLib(t, LoadBLAS)
	b, err := NewBLAS()
	must(t, err)
	p := devAlloc(t, 4*64)
	// lda smaller than m.
	err = b.Sgemm(false, false, 8, 8, 8, 1, p, 4, p, 8, 0, p, 8)
	if e := asError(t, err, "cublasSgemm_v2(NN m=8 n=8 k=8 lda=4"); e.Name != "CUBLAS_STATUS_INVALID_VALUE" {
		t.Errorf("got %v, want CUBLAS_STATUS_INVALID_VALUE", err)
	}
	// A negative size.
	err = b.Sgemm(false, false, -1, 8, 8, 1, p, 8, p, 8, 0, p, 8)
	asError(t, err, "cublasSgemm_v2")
	must(t, b.Destroy())
	if err := b.Sgemm(false, false, 1, 1, 1, 1, p, 1, p, 1, 0, p, 1); err == nil {
		t.Errorf("Sgemm on a destroyed handle succeeded")
	}
}
