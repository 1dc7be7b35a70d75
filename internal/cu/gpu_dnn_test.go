package cu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// convCase is one NCHW cross-correlation with a k×c×r×s filter.
type convCase struct {
	n, c, h, w, k, r, s                int
	padH, padW, strH, strW, dilH, dilW int
}

func (cc convCase) String() string {
	return fmt.Sprintf("x %dx%dx%dx%d, w %dx%dx%dx%d, pad %dx%d stride %dx%d dilation %dx%d",
		cc.n, cc.c, cc.h, cc.w, cc.k, cc.c, cc.r, cc.s, cc.padH, cc.padW, cc.strH, cc.strW, cc.dilH, cc.dilW)
}

func (cc convCase) out() (oh, ow int) {
	oh = (cc.h+2*cc.padH-cc.dilH*(cc.r-1)-1)/cc.strH + 1
	ow = (cc.w+2*cc.padW-cc.dilW*(cc.s-1)-1)/cc.strW + 1
	return oh, ow
}

var convCases = []convCase{
	{n: 3, c: 5, h: 9, w: 9, k: 4, r: 4, s: 4, padH: 1, padW: 1, strH: 2, strW: 2, dilH: 1, dilW: 1},
	{n: 3, c: 5, h: 9, w: 9, k: 4, r: 4, s: 4, padH: 0, padW: 0, strH: 1, strW: 1, dilH: 1, dilW: 1},
	{n: 2, c: 3, h: 8, w: 8, k: 6, r: 3, s: 3, padH: 1, padW: 1, strH: 1, strW: 1, dilH: 1, dilW: 1},
	{n: 2, c: 4, h: 10, w: 7, k: 3, r: 3, s: 2, padH: 2, padW: 1, strH: 1, strW: 2, dilH: 2, dilW: 1},
}

// visit calls f for every (output position, input position, tap) triple of
// the convolution: y[n,k,i,j] += x[n,c,ih,iw] * w[k,c,r,s].
func (cc convCase) visit(f func(yi, xi, wi int)) {
	oh, ow := cc.out()
	for n := 0; n < cc.n; n++ {
		for k := 0; k < cc.k; k++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					yi := ((n*cc.k+k)*oh+i)*ow + j
					for c := 0; c < cc.c; c++ {
						for r := 0; r < cc.r; r++ {
							ih := i*cc.strH - cc.padH + r*cc.dilH
							if ih < 0 || ih >= cc.h {
								continue
							}
							for s := 0; s < cc.s; s++ {
								iw := j*cc.strW - cc.padW + s*cc.dilW
								if iw < 0 || iw >= cc.w {
									continue
								}
								f(yi, ((n*cc.c+c)*cc.h+ih)*cc.w+iw, ((k*cc.c+c)*cc.r+r)*cc.s+s)
							}
						}
					}
				}
			}
		}
	}
}

// The naive CPU references, in float64, with the magnitude of the terms
// behind each result.
func (cc convCase) forward(x, w []float32, ny int) (y, scale []float64) {
	y, scale = make([]float64, ny), make([]float64, ny)
	cc.visit(func(yi, xi, wi int) {
		p := float64(x[xi]) * float64(w[wi])
		y[yi] += p
		scale[yi] += math.Abs(p)
	})
	return y, scale
}

func (cc convCase) backwardData(dy, w []float32, nx int) (dx, scale []float64) {
	dx, scale = make([]float64, nx), make([]float64, nx)
	cc.visit(func(yi, xi, wi int) {
		p := float64(dy[yi]) * float64(w[wi])
		dx[xi] += p
		scale[xi] += math.Abs(p)
	})
	return dx, scale
}

func (cc convCase) backwardFilter(x, dy []float32, nw int) (dw, scale []float64) {
	dw, scale = make([]float64, nw), make([]float64, nw)
	cc.visit(func(yi, xi, wi int) {
		p := float64(dy[yi]) * float64(x[xi])
		dw[wi] += p
		scale[wi] += math.Abs(p)
	})
	return dw, scale
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()*2 - 1
	}
	return v
}

// blend returns alpha*ref + beta*old and its scale.
func blend(alpha, beta float32, ref, refScale []float64, old []float32) (want, scale []float64) {
	want, scale = make([]float64, len(ref)), make([]float64, len(ref))
	for i := range ref {
		want[i] = float64(alpha)*ref[i] + float64(beta)*float64(old[i])
		scale[i] = math.Abs(float64(alpha))*refScale[i] + math.Abs(float64(beta)*float64(old[i]))
	}
	return want, scale
}

// convFixture holds one case's descriptors, data and device buffers.
type convFixture struct {
	cc                    convCase
	d                     *DNN
	xd, yd                *TensorDesc
	wd                    *FilterDesc
	conv                  *ConvDesc
	x, w, dy, yOld, dxOld []float32
	dwOld                 []float32
	xP, wP, yP, dyP, dxP  DevicePtr
	dwP, ws               DevicePtr
	wsBytes               int
}

func newConvFixture(t *testing.T, d *DNN, cc convCase, mt DNNMath, rng *rand.Rand) *convFixture {
	t.Helper()
	f := &convFixture{cc: cc, d: d, wsBytes: 128 << 20}
	oh, ow := cc.out()
	var err error
	f.xd, err = NewTensor4d(NCHW, DataFloat, cc.n, cc.c, cc.h, cc.w)
	must(t, err)
	f.yd, err = NewTensor4d(NCHW, DataFloat, cc.n, cc.k, oh, ow)
	must(t, err)
	f.wd, err = NewFilter4d(NCHW, DataFloat, cc.k, cc.c, cc.r, cc.s)
	must(t, err)
	f.conv, err = NewConv2d(cc.padH, cc.padW, cc.strH, cc.strW, cc.dilH, cc.dilW, CrossCorrelation, DataFloat, mt)
	must(t, err)
	t.Cleanup(func() {
		for _, err := range []error{f.xd.Destroy(), f.yd.Destroy(), f.wd.Destroy(), f.conv.Destroy()} {
			if err != nil {
				t.Errorf("Destroy: %v", err)
			}
		}
	})
	n, c, h, w, err := f.conv.OutputDim(f.xd, f.wd)
	must(t, err)
	if n != cc.n || c != cc.k || h != oh || w != ow {
		t.Fatalf("%v: cuDNN output %dx%dx%dx%d, want %dx%dx%dx%d", cc, n, c, h, w, cc.n, cc.k, oh, ow)
	}
	f.x, f.w, f.dy = randVec(rng, f.xd.Len()), randVec(rng, f.wd.Len()), randVec(rng, f.yd.Len())
	f.yOld, f.dxOld, f.dwOld = randVec(rng, f.yd.Len()), randVec(rng, f.xd.Len()), randVec(rng, f.wd.Len())
	f.xP, f.wP, f.dyP = upload(t, f.x), upload(t, f.w), upload(t, f.dy)
	f.yP, f.dxP, f.dwP = devAlloc(t, 4*f.yd.Len()), devAlloc(t, 4*f.xd.Len()), devAlloc(t, 4*f.wd.Len())
	f.ws = devAlloc(t, f.wsBytes)
	return f
}

const alphaConv, betaConv = 1.5, 0.25

// forwardAlgos returns the searched and heuristic forward algorithms.
func (f *convFixture) forwardAlgos(t *testing.T) (found, heur []AlgoPerf) {
	t.Helper()
	found, err := f.d.FindForwardAlgos(f.xd, f.xP, f.wd, f.wP, f.conv, f.yd, f.yP, f.ws, f.wsBytes)
	must(t, err)
	heur, err = f.d.ForwardAlgosHeuristic(f.xd, f.wd, f.conv, f.yd)
	must(t, err)
	return found, heur
}

// runForward runs one algorithm with alpha/beta and returns its error.
func (f *convFixture) runForward(t *testing.T, algo ConvFwdAlgo) (float64, bool) {
	t.Helper()
	need, err := f.d.ForwardWorkspaceSize(f.xd, f.wd, f.conv, f.yd, algo)
	if err != nil {
		t.Logf("forward %v: %v; skipped", algo, err)
		return 0, false
	}
	if need > f.wsBytes {
		t.Logf("forward %v needs %d bytes of workspace; skipped", algo, need)
		return 0, false
	}
	must(t, CopyHtoD(f.yP, f.yOld))
	must(t, f.d.ConvForward(alphaConv, f.xd, f.xP, f.wd, f.wP, f.conv, algo, f.ws, need, betaConv, f.yd, f.yP))
	ref, refScale := f.cc.forward(f.x, f.w, f.yd.Len())
	want, scale := blend(alphaConv, betaConv, ref, refScale, f.yOld)
	e, _ := maxRelErr(download(t, f.yP, f.yd.Len()), want, scale)
	return e, true
}

func (f *convFixture) runBackwardData(t *testing.T, algo ConvBwdDataAlgo) (float64, bool) {
	t.Helper()
	need, err := f.d.BackwardDataWorkspaceSize(f.wd, f.yd, f.conv, f.xd, algo)
	if err != nil {
		t.Logf("backward data %v: %v; skipped", algo, err)
		return 0, false
	}
	if need > f.wsBytes {
		t.Logf("backward data %v needs %d bytes of workspace; skipped", algo, need)
		return 0, false
	}
	must(t, CopyHtoD(f.dxP, f.dxOld))
	must(t, f.d.ConvBackwardData(alphaConv, f.wd, f.wP, f.yd, f.dyP, f.conv, algo, f.ws, need, betaConv, f.xd, f.dxP))
	ref, refScale := f.cc.backwardData(f.dy, f.w, f.xd.Len())
	want, scale := blend(alphaConv, betaConv, ref, refScale, f.dxOld)
	e, _ := maxRelErr(download(t, f.dxP, f.xd.Len()), want, scale)
	return e, true
}

func (f *convFixture) runBackwardFilter(t *testing.T, algo ConvBwdFilterAlgo) (float64, bool) {
	t.Helper()
	need, err := f.d.BackwardFilterWorkspaceSize(f.xd, f.yd, f.conv, f.wd, algo)
	if err != nil {
		t.Logf("backward filter %v: %v; skipped", algo, err)
		return 0, false
	}
	if need > f.wsBytes {
		t.Logf("backward filter %v needs %d bytes of workspace; skipped", algo, need)
		return 0, false
	}
	must(t, CopyHtoD(f.dwP, f.dwOld))
	must(t, f.d.ConvBackwardFilter(alphaConv, f.xd, f.xP, f.yd, f.dyP, f.conv, algo, f.ws, need, betaConv, f.wd, f.dwP))
	ref, refScale := f.cc.backwardFilter(f.x, f.dy, f.wd.Len())
	want, scale := blend(alphaConv, betaConv, ref, refScale, f.dwOld)
	e, _ := maxRelErr(download(t, f.dwP, f.wd.Len()), want, scale)
	return e, true
}

func describe(perfs []AlgoPerf, name func(int) string) string {
	s := ""
	for _, p := range perfs {
		if p.OK() {
			s += fmt.Sprintf(" %s(%.3fms,%dB,%v)", name(p.Algo), p.TimeMs, p.Memory, p.MathType)
		} else {
			s += fmt.Sprintf(" %s[%s]", name(p.Algo), p.StatusName())
		}
	}
	return s
}

// dnnHandle makes a cuDNN handle on the default stream.
func dnnHandle(t *testing.T) *DNN {
	t.Helper()
	needLib(t, LoadDNN)
	d, err := NewDNN()
	must(t, err)
	t.Cleanup(func() {
		if err := d.Destroy(); err != nil {
			t.Errorf("DNN.Destroy: %v", err)
		}
	})
	must(t, d.SetStream(0))
	return d
}

// TestGPUConv checks every algorithm cuDNN's searches report usable, in all
// three directions, against the naive CPU convolution, in FMA (full FP32)
// math: errors within 1e-4 of the magnitude of the terms.
func TestGPUConv(t *testing.T) {
	gpu(t)
	d := dnnHandle(t)
	t.Logf("cuDNN %d", d.Version())
	rng := rand.New(rand.NewPCG(7, 8))
	const tol = 1e-4
	fwdName := func(a int) string { return ConvFwdAlgo(a).String() }
	bwdDataName := func(a int) string { return ConvBwdDataAlgo(a).String() }
	bwdFilterName := func(a int) string { return ConvBwdFilterAlgo(a).String() }
	for _, cc := range convCases {
		t.Run(cc.String(), func(t *testing.T) {
			gpu(t) // a subtest runs on its own goroutine
			f := newConvFixture(t, d, cc, DNNFMAMath, rng)

			found, heur := f.forwardAlgos(t)
			t.Logf("forward find:%s", describe(found, fwdName))
			t.Logf("forward heuristic:%s", describe(heur, fwdName))
			tried, ran := map[int]bool{}, 0
			for _, p := range append(found, heur...) {
				if !p.OK() || tried[p.Algo] {
					continue
				}
				tried[p.Algo] = true
				if e, ok := f.runForward(t, ConvFwdAlgo(p.Algo)); ok {
					ran++
					t.Logf("forward %v: error %.2g", ConvFwdAlgo(p.Algo), e)
					if e > tol {
						t.Errorf("forward %v: error %.3g > %.0e", ConvFwdAlgo(p.Algo), e, tol)
					}
				}
			}
			if ran == 0 {
				t.Errorf("no forward algorithm ran")
			}

			foundD, err := d.FindBackwardDataAlgos(f.wd, f.wP, f.yd, f.dyP, f.conv, f.xd, f.dxP, f.ws, f.wsBytes)
			must(t, err)
			heurD, err := d.BackwardDataAlgosHeuristic(f.wd, f.yd, f.conv, f.xd)
			must(t, err)
			t.Logf("backward data find:%s", describe(foundD, bwdDataName))
			t.Logf("backward data heuristic:%s", describe(heurD, bwdDataName))
			clear(tried)
			ran = 0
			for _, p := range append(foundD, heurD...) {
				if !p.OK() || tried[p.Algo] {
					continue
				}
				tried[p.Algo] = true
				if e, ok := f.runBackwardData(t, ConvBwdDataAlgo(p.Algo)); ok {
					ran++
					t.Logf("backward data %v: error %.2g", ConvBwdDataAlgo(p.Algo), e)
					if e > tol {
						t.Errorf("backward data %v: error %.3g > %.0e", ConvBwdDataAlgo(p.Algo), e, tol)
					}
				}
			}
			if ran == 0 {
				t.Errorf("no backward-data algorithm ran")
			}

			foundF, err := d.FindBackwardFilterAlgos(f.xd, f.xP, f.yd, f.dyP, f.conv, f.wd, f.dwP, f.ws, f.wsBytes)
			must(t, err)
			heurF, err := d.BackwardFilterAlgosHeuristic(f.xd, f.yd, f.conv, f.wd)
			must(t, err)
			t.Logf("backward filter find:%s", describe(foundF, bwdFilterName))
			t.Logf("backward filter heuristic:%s", describe(heurF, bwdFilterName))
			clear(tried)
			ran = 0
			for _, p := range append(foundF, heurF...) {
				if !p.OK() || tried[p.Algo] {
					continue
				}
				tried[p.Algo] = true
				if e, ok := f.runBackwardFilter(t, ConvBwdFilterAlgo(p.Algo)); ok {
					ran++
					t.Logf("backward filter %v: error %.2g", ConvBwdFilterAlgo(p.Algo), e)
					if e > tol {
						t.Errorf("backward filter %v: error %.3g > %.0e", ConvBwdFilterAlgo(p.Algo), e, tol)
					}
				}
			}
			if ran == 0 {
				t.Errorf("no backward-filter algorithm ran")
			}
		})
	}
}

// TestGPUConvTensorOps runs the searched algorithms with tensor cores
// allowed (TF32 on Ampere and later), each with the math type it was
// measured with, and reports their error (bounded by 1e-2).
func TestGPUConvTensorOps(t *testing.T) {
	gpu(t)
	d := dnnHandle(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, mt := range []DNNMath{DNNDefaultMath, DNNTensorOpMath} {
		worst := 0.0
		for _, cc := range convCases[:2] {
			f := newConvFixture(t, d, cc, mt, rng)
			found, _ := f.forwardAlgos(t)
			for _, p := range found {
				if !p.OK() {
					continue
				}
				must(t, f.conv.SetMathType(p.MathType))
				if e, ran := f.runForward(t, ConvFwdAlgo(p.Algo)); ran {
					worst = max(worst, e)
					if e > 1e-2 {
						t.Errorf("%v math, %v, forward %v (%v): error %.3g", mt, cc, ConvFwdAlgo(p.Algo), p.MathType, e)
					}
				}
			}
		}
		t.Logf("%v math: largest forward error %.3g", mt, worst)
	}
}

// TestGPUBias checks cudnnAddTensor (bias broadcast) and
// cudnnConvolutionBackwardBias (bias gradient).
func TestGPUBias(t *testing.T) {
	gpu(t)
	d := dnnHandle(t)
	rng := rand.New(rand.NewPCG(11, 12))
	const n, c, h, w = 2, 4, 5, 3
	yd, err := NewTensor4d(NCHW, DataFloat, n, c, h, w)
	must(t, err)
	defer yd.Destroy()
	bd, err := NewTensor4d(NCHW, DataFloat, 1, c, 1, 1)
	must(t, err)
	defer bd.Destroy()
	y, bias := randVec(rng, n*c*h*w), randVec(rng, c)
	yP, bP := upload(t, y), upload(t, bias)

	must(t, d.AddTensor(1, bd, bP, 1, yd, yP))
	got := download(t, yP, len(y))
	for i := range y {
		ch := i / (h * w) % c
		if want := y[i] + bias[ch]; math.Abs(float64(got[i]-want)) > 1e-6 {
			t.Fatalf("AddTensor: element %d = %v, want %v", i, got[i], want)
		}
	}

	dbP := devAlloc(t, 4*c)
	must(t, d.ConvBackwardBias(1, yd, yP, 0, bd, dbP))
	db := download(t, dbP, c)
	for ch := range c {
		var sum, abs float64
		for i := range got {
			if i/(h*w)%c == ch {
				sum += float64(got[i])
				abs += math.Abs(float64(got[i]))
			}
		}
		if math.Abs(float64(db[ch])-sum) > 1e-5*abs {
			t.Errorf("ConvBackwardBias: channel %d = %v, want %v", ch, db[ch], sum)
		}
	}
}

func TestGPUDNNErrors(t *testing.T) {
	gpu(t)
	d := dnnHandle(t)
	_, err := NewTensor4d(NCHW, DataFloat, -1, 2, 3, 4)
	asError(t, err, "cudnnSetTensor4dDescriptor")
	_, err = NewFilter4d(NCHW, DataFloat, 4, -3, 3, 3)
	asError(t, err, "cudnnSetFilter4dDescriptor")

	// A forward convolution whose output descriptor has the wrong shape.
	cc := convCases[0]
	rng := rand.New(rand.NewPCG(13, 14))
	f := newConvFixture(t, d, cc, DNNFMAMath, rng)
	bad, err := NewTensor4d(NCHW, DataFloat, cc.n, cc.k+1, 3, 3)
	must(t, err)
	defer bad.Destroy()
	err = d.ConvForward(1, f.xd, f.xP, f.wd, f.wP, f.conv, ConvFwdImplicitGemm, f.ws, f.wsBytes, 0, bad, f.yP)
	asError(t, err, "cudnnConvolutionForward(x float NCHW [3 5 9 9]")
	// The handle still works.
	if e, ran := f.runForward(t, ConvFwdImplicitGemm); ran && e > 1e-4 {
		t.Errorf("after an error: forward error %.3g", e)
	}
}
