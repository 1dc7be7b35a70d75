// Package cpu is pad's reference backend: every op of backend.Backend as
// plain Go loops over slices, with the convolutions done as im2col + GEMM
// and the large loops spread over a fixed number of threads. It is the
// implementation the CUDA backend is checked against, so clarity comes
// before cleverness; reductions accumulate in float64.
//
// The number of threads never changes a result: the loops split between
// threads write disjoint outputs, every sum is accumulated by one thread in
// a fixed order, and the GEMM (internal/gemm) gives the same bits on any
// number of threads. A run can be resumed with another device.threads, or
// on a machine with another core count, and continue bit for bit.
//
// The code is generic over the element type. New gives the float32 backend
// pad trains with; New64 gives a float64 twin of the same code, used to
// show that the algorithm reproduces PyTorch's float64 fixtures exactly
// (float32 cannot: see phases' fixture test).
package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/gemm"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/vec"
	gonumblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Float is the element type of a CPU backend.
type Float interface{ float32 | float64 }

// buf is the CPU backend's Buf: a slice of host memory.
type buf[T Float] struct{ d []T }

func (b *buf[T]) Len() int { return len(b.d) }

// Values returns the memory behind a Buf of a CPU backend with element
// type T (a view, not a copy), and false for any other Buf. Download
// rounds to float32; tools that compare the float64 twin with another
// float64 implementation read its exact values here.
func Values[T Float](x backend.Buf) ([]T, bool) {
	b, ok := x.(*buf[T])
	if !ok {
		return nil, false
	}
	return b.d, true
}

func (b *buf[T]) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > len(b.d) {
		panic(fmt.Sprintf("cpu: Slice(%d, %d) of a buffer of %d values", off, n, len(b.d)))
	}
	return &buf[T]{d: b.d[off : off+n : off+n]}
}

// Wrap returns a Buf of the float32 backend that uses the host slice d as
// its memory (no copy).
func Wrap(d []float32) backend.Buf { return &buf[float32]{d: d} }

// Data returns the memory behind a Buf of the float32 backend.
func Data(b backend.Buf) []float32 {
	if c, ok := b.(*buf[float32]); ok {
		return c.d
	}
	return nil
}

// Backend is the CPU implementation of backend.Backend with element type T.
type Backend[T Float] struct {
	threads int
	gemm    *gemm.Gemm
	vec     vec.Loops     // the float32 elementwise loops
	flops   atomic.Uint64 // of the matrix products (FLOPs)
	err     error
	col     []T       // im2col / col2im workspace, grown on first need
	tmp     []T       // [K, N·P·Q] staging of convolution outputs and gradients
	gather  gatherB   // B of the implicit forward GEMM (float32 backend)
	patches patchCols // B of the implicit backward-filter GEMM (float32 backend)
	scratch []float32 // random numbers before conversion (float64 backend)
}

// New returns the float32 CPU backend using threads threads (0: all cores).
func New(threads int) *Backend[float32] { return newBackend[float32](threads, gemm.New, vec.Best) }

// NewPortable is New running Go code only (the pure-Go GEMM kernel and
// elementwise loops), whatever the CPU; it gives the same bits as New.
func NewPortable(threads int) *Backend[float32] {
	return newBackend[float32](threads, gemm.NewPortable, vec.Portable)
}

// New64 returns the float64 twin of the CPU backend. Upload and Download
// still take float32 slices; everything in between is float64.
func New64(threads int) *Backend[float64] { return newBackend[float64](threads, gemm.New, vec.Best) }

func newBackend[T Float](threads int, newGemm func(int) *gemm.Gemm, loops vec.Loops) *Backend[T] {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Backend[T]{threads: threads, gemm: newGemm(threads), vec: loops}
}

var (
	_ backend.Backend = (*Backend[float32])(nil)
	_ backend.Backend = (*Backend[float64])(nil)
)

// Name describes the backend.
func (b *Backend[T]) Name() string {
	var z T
	if _, ok := any(z).(float64); ok {
		return fmt.Sprintf("cpu float64 (%d threads)", b.threads)
	}
	return fmt.Sprintf("cpu (%d threads)", b.threads)
}

// sgemm is C = alpha·op(A)·op(B) + beta·C on row-major matrices: the
// blocked float32 kernel for the float32 backend, gonum's Dgemm for float64.
func (b *Backend[T]) sgemm(tA, tB bool, m, n, k int, alpha T, a []T, lda int, bm []T, ldb int, beta T, c []T, ldc int) {
	b.flops.Add(2 * uint64(m) * uint64(n) * uint64(k))
	switch av := any(a).(type) {
	case []float32:
		b.gemm.Sgemm(tA, tB, m, n, k, float32(alpha), av, lda, any(bm).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		if m == 0 || n == 0 {
			return
		}
		ta, tb := gonumblas.NoTrans, gonumblas.NoTrans
		if tA {
			ta = gonumblas.Trans
		}
		if tB {
			tb = gonumblas.Trans
		}
		gonum.Implementation{}.Dgemm(ta, tb, m, n, k, float64(alpha), av, lda, any(bm).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// FLOPs returns the floating-point operations of the matrix products
// (2·m·n·k each: the convolutions' work) done so far; pad bench turns it
// into GFLOP/s.
func (b *Backend[T]) FLOPs() uint64 { return b.flops.Load() }

// Threads returns the number of threads the backend uses.
func (b *Backend[T]) Threads() int { return b.threads }

func (b *Backend[T]) fail(format string, a ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("cpu: "+format, a...)
	}
}

// data returns the slice behind a Buf, or nil after recording an error if
// the Buf is foreign or has the wrong length (want < 0: any length).
func (b *Backend[T]) data(op, name string, x backend.Buf, want int) []T {
	c, ok := x.(*buf[T])
	if !ok || c == nil {
		b.fail("%s: %s is not a CPU buffer (%T)", op, name, x)
		return nil
	}
	if want >= 0 && len(c.d) != want {
		b.fail("%s: %s holds %d values, want %d", op, name, len(c.d), want)
		return nil
	}
	return c.d
}

// Alloc returns n zeroed values.
func (b *Backend[T]) Alloc(n int) (backend.Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cpu: Alloc(%d): negative size", n)
	}
	return &buf[T]{d: make([]T, n)}, nil
}

// Free is a no-op on the CPU: the garbage collector reclaims memory.
func (b *Backend[T]) Free(backend.Buf) {}

// Upload copies src into dst.
func (b *Backend[T]) Upload(dst backend.Buf, src []float32) {
	if d := b.data("Upload", "dst", dst, len(src)); d != nil {
		for i, v := range src {
			d[i] = T(v)
		}
	}
}

// Download copies src to dst.
func (b *Backend[T]) Download(dst []float32, src backend.Buf) {
	if s := b.data("Download", "src", src, len(dst)); s != nil {
		for i, v := range s {
			dst[i] = float32(v)
		}
	}
}

// Copy copies src to dst.
func (b *Backend[T]) Copy(dst, src backend.Buf) {
	s := b.data("Copy", "src", src, -1)
	if d := b.data("Copy", "dst", dst, len(s)); d != nil && s != nil {
		copy(d, s)
	}
}

// Fill sets all of dst to v.
func (b *Backend[T]) Fill(dst backend.Buf, v float32) {
	d := b.data("Fill", "dst", dst, -1)
	for i := range d {
		d[i] = T(v)
	}
}

// Sync returns the first error; CPU ops run synchronously.
func (b *Backend[T]) Sync() error { return b.err }

// Err returns the first error.
func (b *Backend[T]) Err() error { return b.err }

// Close releases the workspaces.
func (b *Backend[T]) Close() error {
	b.col, b.tmp, b.gather = nil, nil, gatherB{}
	return b.err
}

// parallel runs fn over [0, n) split into contiguous chunks, on the
// threads that run the matrix products (gemm.Gemm.For): they are usually
// still polling for work after the last product, so a chunk starts at
// once, where a fresh goroutine would wait for a sleeping thread to wake.
// fn must write disjoint outputs for disjoint ranges and must not sum
// across them, so that the split cannot change a result.
func (b *Backend[T]) parallel(n int, fn func(lo, hi int)) {
	if b.threads <= 1 || n <= 1 {
		fn(0, n)
		return
	}
	b.gemm.For(n, fn)
}

// minParallel is the number of values below which an elementwise op runs
// on the calling goroutine: starting the others costs more than it saves.
const minParallel = 1 << 15

// each runs fn over [0, n) items of work values in all, split over the
// threads when the work is large enough. fn must compute each item on its
// own (the split never changes a result).
func (b *Backend[T]) each(n, work int, fn func(lo, hi int)) {
	if work < minParallel {
		fn(0, n)
		return
	}
	b.parallel(n, fn)
}

func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// ---- elementwise ----

// LeakyReLU applies max(x, slope·x) in place.
func (b *Backend[T]) LeakyReLU(x backend.Buf, slope float32) {
	d := b.data("LeakyReLU", "x", x, -1)
	if d32, ok := any(d).([]float32); ok {
		b.each(len(d32), len(d32), func(lo, hi int) { b.vec.Leaky(d32[lo:hi], 0, slope) })
		return
	}
	for i, v := range d {
		if v < 0 {
			d[i] = v * T(slope)
		}
	}
}

// LeakyReLUBackward scales dy where the output y is not positive.
func (b *Backend[T]) LeakyReLUBackward(y, dy backend.Buf, slope float32) {
	yd := b.data("LeakyReLUBackward", "y", y, -1)
	g := b.data("LeakyReLUBackward", "dy", dy, len(yd))
	if g == nil {
		return
	}
	b.each(len(yd), len(yd), func(lo, hi int) {
		if y32, ok := any(yd).([]float32); ok {
			b.vec.LeakyBackward(y32[lo:hi], any(g).([]float32)[lo:hi], slope)
			return
		}
		for i, v := range yd[lo:hi] {
			if v <= 0 {
				g[lo+i] *= T(slope)
			}
		}
	})
}

// Tanh applies tanh in place.
func (b *Backend[T]) Tanh(x backend.Buf) {
	d := b.data("Tanh", "x", x, -1)
	for i, v := range d {
		d[i] = T(math.Tanh(float64(v)))
	}
}

// TanhBackward multiplies dy by 1 − y².
func (b *Backend[T]) TanhBackward(y, dy backend.Buf) {
	yd := b.data("TanhBackward", "y", y, -1)
	g := b.data("TanhBackward", "dy", dy, len(yd))
	if g == nil {
		return
	}
	for i, v := range yd {
		// T(v*v) rounds the square before the subtraction: Go may fuse
		// 1 − v·v into one multiply-add on arm64, which the CUDA kernel
		// (compiled with --fmad=false) does not.
		g[i] *= 1 - T(v*v)
	}
}

// Sigmoid applies 1/(1+e^−x) in place.
func (b *Backend[T]) Sigmoid(x backend.Buf) {
	d := b.data("Sigmoid", "x", x, -1)
	for i, v := range d {
		d[i] = T(1 / (1 + math.Exp(-float64(v))))
	}
}

// SigmoidBackward multiplies dy by y(1 − y).
func (b *Backend[T]) SigmoidBackward(y, dy backend.Buf) {
	yd := b.data("SigmoidBackward", "y", y, -1)
	g := b.data("SigmoidBackward", "dy", dy, len(yd))
	if g == nil {
		return
	}
	for i, v := range yd {
		g[i] *= v * (1 - v)
	}
}

// Scale multiplies x by a.
func (b *Backend[T]) Scale(x backend.Buf, a float32) {
	d := b.data("Scale", "x", x, -1)
	for i := range d {
		d[i] *= T(a)
	}
}

// Axpby computes y = a·x + b·y.
func (b *Backend[T]) Axpby(y, x backend.Buf, a, c float32) {
	xd := b.data("Axpby", "x", x, -1)
	yd := b.data("Axpby", "y", y, len(xd))
	if yd == nil {
		return
	}
	for i, v := range xd {
		// Each product is rounded before the sum (T(...) forbids a fused
		// multiply-add, which Go may use on arm64), as in the CUDA kernel.
		yd[i] = T(T(a)*v) + T(T(c)*yd[i])
	}
}

// LatentMix computes dst = a·z + b·zOld + c·noise.
func (b *Backend[T]) LatentMix(dst, z, zOld, noise backend.Buf, a, bw, c float32) {
	zd := b.data("LatentMix", "z", z, -1)
	d := b.data("LatentMix", "dst", dst, len(zd))
	var od, nd []T
	if zOld != nil {
		od = b.data("LatentMix", "zOld", zOld, len(zd))
	} else if bw != 0 {
		b.fail("LatentMix: zOld is nil but its weight is %v", bw)
	}
	if noise != nil {
		nd = b.data("LatentMix", "noise", noise, len(zd))
	} else if c != 0 {
		b.fail("LatentMix: noise is nil but its weight is %v", c)
	}
	if b.err != nil {
		return
	}
	for i := range d {
		// Products rounded before each sum, as in Axpby.
		v := T(T(a) * zd[i])
		if od != nil {
			v += T(T(bw) * od[i])
		}
		if nd != nil {
			v += T(T(c) * nd[i])
		}
		d[i] = v
	}
}

// ApplyMask multiplies x by a shared or per-image mask.
func (b *Backend[T]) ApplyMask(x, mask backend.Buf, n, c, hw int, perImage bool) {
	xd := b.data("ApplyMask", "x", x, n*c*hw)
	mn := hw
	if perImage {
		mn = n * hw
	}
	md := b.data("ApplyMask", "mask", mask, mn)
	if xd == nil || md == nil {
		return
	}
	for i := 0; i < n; i++ {
		m := md
		if perImage {
			m = md[i*hw : (i+1)*hw]
		}
		for ch := 0; ch < c; ch++ {
			p := xd[(i*c+ch)*hw : (i*c+ch+1)*hw]
			for j := range p {
				p[j] *= m[j]
			}
		}
	}
}

// ---- losses and reductions ----

func (b *Backend[T]) scalar(op string, out backend.Buf) []T {
	return b.data(op, "loss", out, 1)
}

// MSE writes mean((a−b)²) and optionally its gradient with respect to a.
func (b *Backend[T]) MSE(a, t, loss, grad backend.Buf, scale float32) {
	ad := b.data("MSE", "a", a, -1)
	td := b.data("MSE", "b", t, len(ad))
	out := b.scalar("MSE", loss)
	var gd []T
	if grad != nil {
		gd = b.data("MSE", "grad", grad, len(ad))
	}
	if b.err != nil {
		return
	}
	n := float64(len(ad))
	var s float64
	for i, v := range ad {
		d := float64(v) - float64(td[i])
		s += d * d
	}
	out[0] = T(s / n)
	if gd != nil {
		k := 2 * float64(scale) / n
		for i, v := range ad {
			gd[i] = T(k * (float64(v) - float64(td[i])))
		}
	}
}

// BCE writes PyTorch's BCELoss of d against a constant target, and
// optionally its gradient with respect to d.
func (b *Backend[T]) BCE(d backend.Buf, target float32, loss, grad backend.Buf, scale float32) {
	dd := b.data("BCE", "d", d, -1)
	out := b.scalar("BCE", loss)
	var gd []T
	if grad != nil {
		gd = b.data("BCE", "grad", grad, len(dd))
	}
	if b.err != nil {
		return
	}
	t := float64(target)
	n := float64(len(dd))
	var s float64
	for _, v := range dd {
		p := float64(v)
		s -= t*math.Max(math.Log(p), -100) + (1-t)*math.Max(math.Log(1-p), -100)
	}
	out[0] = T(s / n)
	if gd != nil {
		for i, v := range dd {
			p := float64(v)
			gd[i] = T(float64(scale) * (p - t) / math.Max(p*(1-p), 1e-12) / n)
		}
	}
}

// KLBatch writes the batch-statistics KL loss of z and optionally its
// gradient.
func (b *Backend[T]) KLBatch(z backend.Buf, n, nz int, loss, grad backend.Buf, scale, beta float32) {
	zd := b.data("KLBatch", "z", z, n*nz)
	out := b.scalar("KLBatch", loss)
	var gd []T
	if grad != nil {
		gd = b.data("KLBatch", "grad", grad, n*nz)
	}
	if b.err != nil {
		return
	}
	if n < 2 {
		b.fail("KLBatch: batch of %d: the unbiased std needs at least 2", n)
		return
	}
	var total float64
	fn, fz := float64(n), float64(nz)
	for j := 0; j < nz; j++ {
		var m float64
		for i := 0; i < n; i++ {
			m += float64(zd[i*nz+j])
		}
		m /= fn
		var v float64
		for i := 0; i < n; i++ {
			d := float64(zd[i*nz+j]) - m
			v += d * d
		}
		v /= fn - 1
		s := math.Sqrt(v)
		total += (v+m*m)/2 - math.Log(s) - 0.5
		if gd != nil {
			// ∂/∂z_ij = (1/nz)·(m/N + (s − 1/s)·(z_ij − m)/((N−1)·s))
			k := float64(scale) / fz
			a := (s - 1/s) / ((fn - 1) * s)
			for i := 0; i < n; i++ {
				g := k * (m/fn + a*(float64(zd[i*nz+j])-m))
				gd[i*nz+j] = T(g + float64(beta)*float64(gd[i*nz+j]))
			}
		}
	}
	out[0] = T(total / fz)
}

// Mean writes the mean of x to out[0].
func (b *Backend[T]) Mean(x, out backend.Buf) {
	xd := b.data("Mean", "x", x, -1)
	o := b.data("Mean", "out", out, 1)
	if o == nil || len(xd) == 0 {
		return
	}
	var s float64
	for _, v := range xd {
		s += float64(v)
	}
	o[0] = T(s / float64(len(xd)))
}

// RowNormMean writes the mean Euclidean norm of the rows of x to out[0].
func (b *Backend[T]) RowNormMean(x backend.Buf, rows, cols int, out backend.Buf) {
	xd := b.data("RowNormMean", "x", x, rows*cols)
	o := b.data("RowNormMean", "out", out, 1)
	if xd == nil || o == nil || rows == 0 {
		return
	}
	var s float64
	for r := 0; r < rows; r++ {
		var q float64
		for _, v := range xd[r*cols : (r+1)*cols] {
			q += float64(v) * float64(v)
		}
		s += math.Sqrt(q)
	}
	o[0] = T(s / float64(rows))
}

// ---- random numbers ----

// fill32 hands fn a float32 slice of dst's length and stores its values in
// dst: random numbers and masks are defined in float32 (internal/rng), so
// the float64 backend converts them.
func (b *Backend[T]) fill32(dst []T, fn func([]float32)) {
	if d, ok := any(dst).([]float32); ok {
		fn(d)
		return
	}
	b.scratch = grow(b.scratch, len(dst))
	fn(b.scratch)
	for i, v := range b.scratch {
		dst[i] = T(v)
	}
}

// RandNormal fills dst with standard normal numbers of the stream k.
func (b *Backend[T]) RandNormal(dst backend.Buf, k rng.Key) {
	if d := b.data("RandNormal", "dst", dst, -1); d != nil {
		b.fill32(d, func(v []float32) { rng.FillNormal(v, k) })
	}
}

// RandUniform fills dst with uniform numbers of the stream k.
func (b *Backend[T]) RandUniform(dst backend.Buf, k rng.Key) {
	if d := b.data("RandUniform", "dst", dst, -1); d != nil {
		b.fill32(d, func(v []float32) { rng.FillUniform(v, k) })
	}
}

// OcclusionMask writes the masks o describes.
func (b *Backend[T]) OcclusionMask(mask backend.Buf, o backend.Occlusion) {
	if err := o.Validate(); err != nil {
		b.fail("OcclusionMask: %v", err)
		return
	}
	if d := b.data("OcclusionMask", "mask", mask, o.Masks*o.H*o.W); d != nil {
		b.fill32(d, o.Mask)
	}
}

// ---- optimiser ----

// Adam applies one Adam step to each listed segment.
func (b *Backend[T]) Adam(p, g, m, v backend.Buf, segs []backend.AdamSegment, h backend.AdamHyper) {
	pd := b.data("Adam", "p", p, -1)
	gd := b.data("Adam", "g", g, len(pd))
	md := b.data("Adam", "m", m, len(pd))
	vd := b.data("Adam", "v", v, len(pd))
	if b.err != nil {
		return
	}
	b1, b2, eps := T(h.Beta1), T(h.Beta2), T(h.Eps)
	for _, s := range segs {
		if s.Off < 0 || s.Len < 0 || s.Off+s.Len > len(pd) || s.Step < 1 {
			b.fail("Adam: segment %+v outside a buffer of %d values", s, len(pd))
			return
		}
		ss, bc := h.Scalars(s.Step)
		stepSize, bc2 := T(ss), T(bc)
		p32, is32 := any(pd).([]float32)
		b.each(s.Len, s.Len, func(lo, hi int) {
			lo, hi = s.Off+lo, s.Off+hi
			if is32 { // backend.AdamElem's arithmetic, eight values at a time
				g32, m32, v32 := any(gd).([]float32), any(md).([]float32), any(vd).([]float32)
				b.vec.Adam(p32[lo:hi], g32[lo:hi], m32[lo:hi], v32[lo:hi], float32(1-b1), float32(b2), float32(1-b2), float32(eps), float32(stepSize), float32(bc2))
				return
			}
			for i := lo; i < hi; i++ {
				pd[i], md[i], vd[i] = backend.AdamElem(pd[i], gd[i], md[i], vd[i], b1, b2, eps, stepSize, bc2)
			}
		})
	}
}
