package cu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The CPU references of the GPU tests are checked here, on any machine, so
// that a GPU test failure points at the GPU path.

func TestConvReferenceByHand(t *testing.T) {
	cc := convCase{n: 1, c: 1, h: 3, w: 3, k: 1, r: 2, s: 2, strH: 1, strW: 1, dilH: 1, dilW: 1}
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float32{1, 10, 100, 1000}
	y, _ := cc.forward(x, w, 4)
	want := []float64{1 + 20 + 400 + 5000, 2 + 30 + 500 + 6000, 4 + 50 + 700 + 8000, 5 + 60 + 800 + 9000}
	for i := range want {
		if y[i] != want[i] {
			t.Errorf("y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
	// Padding 1, stride 2: the corner output sees only x[0][0] through w[1][1].
	cc.padH, cc.padW, cc.strH, cc.strW = 1, 1, 2, 2
	if oh, ow := cc.out(); oh != 2 || ow != 2 {
		t.Fatalf("out %dx%d", oh, ow)
	}
	y, _ = cc.forward(x, w, 4)
	if y[0] != 1*1000 || y[3] != 5*1+6*10+8*100+9*1000 {
		t.Errorf("padded, strided: %v", y)
	}
}

func TestConvReferenceShapes(t *testing.T) {
	// torch.nn.Conv2d output sizes for the GPU cases.
	want := [][2]int{{4, 4}, {6, 6}, {8, 8}, {10, 4}}
	for i, cc := range convCases {
		if oh, ow := cc.out(); oh != want[i][0] || ow != want[i][1] {
			t.Errorf("%v: out %dx%d, want %v", cc, oh, ow, want[i])
		}
	}
}

// The backward references are the adjoints of the forward one:
// <conv(x, w), dy> = <x, dx(dy, w)> = <w, dw(x, dy)>.
func TestConvReferenceAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, cc := range convCases {
		oh, ow := cc.out()
		nx, nw, ny := cc.n*cc.c*cc.h*cc.w, cc.k*cc.c*cc.r*cc.s, cc.n*cc.k*oh*ow
		x, w, dy := randVec(rng, nx), randVec(rng, nw), randVec(rng, ny)
		y, _ := cc.forward(x, w, ny)
		dx, _ := cc.backwardData(dy, w, nx)
		dw, _ := cc.backwardFilter(x, dy, nw)
		dot := func(a []float64, b []float32) (s float64) {
			for i := range a {
				s += a[i] * float64(b[i])
			}
			return s
		}
		a, b, c := dot(y, dy), dot(dx, x), dot(dw, w)
		if math.Abs(a-b) > 1e-9*math.Abs(a) || math.Abs(a-c) > 1e-9*math.Abs(a) {
			t.Errorf("%v: <y,dy>=%v <x,dx>=%v <w,dw>=%v", cc, a, b, c)
		}
		nonzero := 0
		for _, v := range dx {
			if v != 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			t.Errorf("%v: dx is zero", cc)
		}
	}
}

// The GEMM reference gives the same C whether A and B are stored plainly
// or transposed, and matches a 2×2 example.
func TestGemmReference(t *testing.T) {
	g := &gemmCase{m: 2, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2, alpha: 1, beta: 0,
		a: []float32{1, 3, 2, 4}, // column-major [[1 2] [3 4]]
		b: []float32{5, 7, 6, 8}, // [[5 6] [7 8]]
		c: []float32{0, 0, 0, 0}}
	want, _ := g.reference()
	if want[0] != 19 || want[1] != 43 || want[2] != 22 || want[3] != 50 {
		t.Errorf("2x2: %v", want)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	plain := newGemmCase(rng, false, false, 5, 4, 3, 1.5, -0.5)
	ref, _ := plain.reference()
	tr := newGemmCase(rng, true, true, 5, 4, 3, 1.5, -0.5)
	for l := 0; l < 3; l++ {
		for i := 0; i < 5; i++ {
			tr.a[l+i*tr.lda] = plain.a[i+l*plain.lda]
		}
		for j := 0; j < 4; j++ {
			tr.b[j+l*tr.ldb] = plain.b[l+j*plain.ldb]
		}
	}
	for j := 0; j < 4; j++ {
		for i := 0; i < 5; i++ {
			tr.c[i+j*tr.ldc] = plain.c[i+j*plain.ldc]
		}
	}
	got, _ := tr.reference()
	for j := 0; j < 4; j++ {
		for i := 0; i < 5; i++ {
			if a, b := ref[i+j*plain.ldc], got[i+j*tr.ldc]; math.Abs(a-b) > 1e-12 {
				t.Errorf("C[%d,%d]: plain %v, transposed %v", i, j, a, b)
			}
		}
	}
}

func TestMaxRelErr(t *testing.T) {
	e, at := maxRelErr([]float32{1, 2.001, 3}, []float64{1, 2, 3}, []float64{1, 1, 1})
	if at != 1 || math.Abs(e-0.001) > 1e-6 {
		t.Errorf("got %v at %d", e, at)
	}
	if e, _ := maxRelErr([]float32{float32(math.NaN())}, []float64{0}, []float64{1}); !math.IsInf(e, 1) {
		t.Errorf("NaN not caught: %v", e)
	}
}
