// Package cuda is the GPU implementation of backend.Backend: cuDNN for the
// convolutions, pad's own kernels (package kernels) for everything else,
// all queued on one CUDA stream. It loads the NVIDIA libraries at run time
// (internal/cu), so pad builds and runs without them and falls back to
// the CPU.
//
// Threading: a CUDA context is current on one OS thread. New locks the
// calling goroutine to its thread; every later call must come from that
// goroutine.
package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/kernels"
)

// Options configure New.
type Options struct {
	Device    int    // CUDA device ordinal
	Precision string // "tf32" (tensor cores for convolutions, PyTorch's default) or "fp32"
	CacheDir  string // where compiled kernels are cached ("" disables the cache)
	// NoGraphs issues every operation directly instead of replaying the
	// steps bracketed by BeginGraph and EndGraph as CUDA graphs.
	NoGraphs bool
	// NoOverlap queues everything on one stream instead of running the
	// weight gradients on a second stream beside the backward pass.
	NoOverlap bool
}

// Backend runs pad's ops on one NVIDIA GPU.
type Backend struct {
	opt    Options
	dev    cu.Device
	ctx    *cu.Context
	stream cu.Stream
	dnn    *cu.DNN
	k      *kernels.Kernels
	name   string
	major  int
	minor  int
	err    error

	allocs      map[cu.DevicePtr]int64
	bytes, peak int64

	partial cu.DevicePtr // kernels.ReduceBlocks doubles
	terms   cu.DevicePtr // KL terms, termsLen doubles
	termsN  int

	convs  map[backend.ConvGeom]*convPlan
	ws     cu.DevicePtr // cuDNN workspace
	wsSize int

	side sideStream // the second stream of BeginSide … JoinSide

	stage     stageRing // host values on their way to the device (stage.go)
	adamTable [adamMaxSegs]kernels.AdamSeg

	graphs *recorder
	arena  cu.DevicePtr // device side of a recorded step's arguments (arenaBytes)

	copy copier // the copy stream of UploadAsync
}

// ErrUnavailable matches the errors New returns when no GPU can be used
// (no driver, no device, a library missing): --device auto falls back to
// the CPU on it.
var ErrUnavailable = errors.New("no usable NVIDIA GPU")

type unavailable struct{ err error }

func (u unavailable) Error() string { return u.err.Error() }
func (u unavailable) Unwrap() []error {
	return []error{u.err, ErrUnavailable}
}

// New opens device o.Device, compiles (or loads) the kernels and creates
// the stream and the cuDNN handle. It locks the calling goroutine to its OS
// thread.
func New(o Options) (*Backend, error) {
	if o.Precision == "" {
		o.Precision = "tf32"
	}
	if o.Precision != "tf32" && o.Precision != "fp32" {
		return nil, fmt.Errorf("cuda: precision %q: want tf32 or fp32", o.Precision)
	}
	if err := cu.Init(); err != nil {
		return nil, unavailable{err}
	}
	n, err := cu.DeviceCount()
	if err != nil {
		return nil, unavailable{err}
	}
	if o.Device < 0 || o.Device >= n {
		return nil, unavailable{fmt.Errorf("cuda: device %d requested, %d present", o.Device, n)}
	}
	if err := cu.LoadDNN(); err != nil {
		return nil, unavailable{err}
	}
	if err := cu.LoadNVRTC(); err != nil {
		return nil, unavailable{err}
	}
	runtime.LockOSThread()
	b := &Backend{opt: o, allocs: map[cu.DevicePtr]int64{}, convs: map[backend.ConvGeom]*convPlan{}}
	opened := false
	defer func() {
		if !opened {
			// Release what was set up (memory, streams, handles, the
			// context), so that a caller falling back to the CPU leaves
			// nothing held on the device.
			b.Close()
			runtime.UnlockOSThread()
		}
	}()
	if b.dev, err = cu.DeviceGet(o.Device); err != nil {
		return nil, err
	}
	if b.ctx, err = b.dev.RetainPrimaryContext(); err != nil {
		return nil, err
	}
	if err := b.ctx.SetCurrent(); err != nil {
		return nil, err
	}
	if b.major, b.minor, err = b.dev.ComputeCapability(); err != nil {
		return nil, err
	}
	name, _ := b.dev.Name()
	b.name = fmt.Sprintf("cuda %s (sm_%d%d, %s)", name, b.major, b.minor, o.Precision)
	if b.stream, err = cu.StreamCreate(cu.StreamNonBlocking); err != nil {
		return nil, err
	}
	if b.dnn, err = cu.NewDNN(); err != nil {
		return nil, err
	}
	if err := b.dnn.SetStream(b.stream); err != nil {
		return nil, err
	}
	if b.k, err = kernels.Load(b.major, b.minor, o.CacheDir); err != nil {
		return nil, err
	}
	if b.partial, err = b.rawAlloc(kernels.ReduceBlocks * 8); err != nil {
		return nil, fmt.Errorf("cuda: reduction buffer: %w", err)
	}
	if err := b.stage.init(b); err != nil {
		return nil, fmt.Errorf("cuda: staging ring: %w", err)
	}
	if err := b.copy.init(); err != nil {
		return nil, fmt.Errorf("cuda: copy stream: %w", err)
	}
	if !o.NoOverlap {
		if err := b.side.init(); err != nil {
			return nil, fmt.Errorf("cuda: side stream: %w", err)
		}
	}
	if !o.NoGraphs { // the arena serves recorded steps only
		if b.arena, err = b.rawAlloc(arenaBytes); err != nil {
			return nil, fmt.Errorf("cuda: argument arena: %w", err)
		}
	}
	b.graphs = newRecorder(b, !o.NoGraphs, b.arena)
	b.k.SetLauncher(b.launchKernel)
	if !o.NoGraphs {
		b.name = b.name[:len(b.name)-1] + ", graphs)"
	}
	if !o.NoOverlap {
		b.name = b.name[:len(b.name)-1] + ", 2 streams)"
	}
	opened = true
	return b, nil
}

var _ backend.Backend = (*Backend)(nil)

// Name describes the device.
func (b *Backend) Name() string { return b.name }

// Stream returns the stream all ops are queued on.
func (b *Backend) Stream() cu.Stream { return b.stream }

// Kernels returns the loaded custom kernels.
func (b *Backend) Kernels() *kernels.Kernels { return b.k }

// PeakMemory reports the most device memory pad's allocations (tensors,
// workspaces, scratch) held at once.
func (b *Backend) PeakMemory() (int64, string) { return b.peak, "device, pad's allocations" }

// buf is a Buf in device memory.
type buf struct {
	p cu.DevicePtr
	n int
}

func (x *buf) Len() int { return x.n }

func (x *buf) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > x.n {
		panic(fmt.Sprintf("cuda: Slice(%d, %d) of a buffer of %d values", off, n, x.n))
	}
	return &buf{p: x.p.Offset(off * 4), n: n}
}

// Ptr returns the device address of a Buf of this backend (0 for others).
func Ptr(x backend.Buf) cu.DevicePtr {
	if d, ok := x.(*buf); ok {
		return d.p
	}
	return 0
}

func (b *Backend) fail(op string, err error) {
	if b.err == nil && err != nil {
		b.err = fmt.Errorf("cuda: %s: %w", op, err)
	}
}

func (b *Backend) failf(op, format string, a ...any) {
	b.fail(op, fmt.Errorf(format, a...))
}

// ptr checks that x is a device buffer of this backend with want values
// (want < 0: any), recording an error otherwise.
func (b *Backend) ptr(op, name string, x backend.Buf, want int) (cu.DevicePtr, int) {
	d, ok := x.(*buf)
	if !ok || d == nil {
		b.failf(op, "%s is not a CUDA buffer (%T)", name, x)
		return 0, 0
	}
	if want >= 0 && d.n != want {
		b.failf(op, "%s holds %d values, want %d", name, d.n, want)
		return 0, 0
	}
	return d.p, d.n
}

// optPtr is ptr for operands that may be nil.
func (b *Backend) optPtr(op, name string, x backend.Buf, want int) cu.DevicePtr {
	if x == nil {
		return 0
	}
	p, _ := b.ptr(op, name, x, want)
	return p
}

func (b *Backend) rawAlloc(bytes int) (cu.DevicePtr, error) {
	if bytes < 4 {
		bytes = 4
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		return 0, err
	}
	b.allocs[p] = int64(bytes)
	b.bytes += int64(bytes)
	b.peak = max(b.peak, b.bytes)
	return p, nil
}

func (b *Backend) rawFree(p cu.DevicePtr) {
	if n, ok := b.allocs[p]; ok {
		if b.graphs != nil {
			// A kept graph may point into this memory.
			b.graphs.invalidate()
		}
		if err := cu.MemFree(p); err != nil {
			// Still allocated: Close tries again (a capture left open
			// refuses every free until it is ended).
			b.fail("Free", err)
			return
		}
		delete(b.allocs, p)
		b.bytes -= n
	}
}

// Alloc returns n zeroed floats of device memory.
func (b *Backend) Alloc(n int) (backend.Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: Alloc(%d): negative size", n)
	}
	p, err := b.rawAlloc(n * 4)
	if err != nil {
		return nil, fmt.Errorf("cuda: Alloc(%d floats): %w", n, err)
	}
	if err := cu.MemsetD32Async(p, 0, max(n, 1), b.stream); err != nil {
		// The caller gets no Buf to free: release the memory now rather
		// than at Close (which frees it if the driver refuses here).
		if cu.MemFree(p) == nil {
			b.bytes -= b.allocs[p]
			delete(b.allocs, p)
		}
		return nil, fmt.Errorf("cuda: Alloc(%d floats): zeroing: %w", n, err)
	}
	return &buf{p: p, n: n}, nil
}

// Free releases a Buf returned by Alloc.
func (b *Backend) Free(x backend.Buf) {
	if d, ok := x.(*buf); ok {
		b.flushGraph("Free")
		b.rawFree(d.p)
	}
}

// Upload copies host values to dst; src may be reused when it returns.
func (b *Backend) Upload(dst backend.Buf, src []float32) {
	if b.err != nil {
		return
	}
	p, _ := b.ptr("Upload", "dst", dst, len(src))
	if p == 0 || len(src) == 0 {
		return
	}
	if b.graphs.recording() {
		// Inside a recorded step the values travel in the arena, so that
		// a replay uploads this iteration's values.
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), len(src)*4)
		if a, ok := b.graphs.arenaArg(raw); ok {
			b.fail("Upload", b.graphs.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{p, a}, n: len(raw)}))
			return
		}
		b.flushGraph("Upload")
	}
	// From pageable memory the driver stages the copy before returning.
	b.fail("Upload", cu.MemcpyHtoDAsync(p, unsafe.Pointer(&src[0]), len(src)*4, b.stream))
}

// Download copies src to dst after the work queued before it.
func (b *Backend) Download(dst []float32, src backend.Buf) {
	if b.err != nil {
		return
	}
	p, _ := b.ptr("Download", "src", src, len(dst))
	if p == 0 || len(dst) == 0 {
		return
	}
	b.flushGraph("Download")
	b.fail("Download", cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), p, len(dst)*4, b.stream))
	b.fail("Download", b.stream.Synchronize())
}

// Copy copies src to dst.
func (b *Backend) Copy(dst, src backend.Buf) {
	if b.err != nil {
		return
	}
	s, n := b.ptr("Copy", "src", src, -1)
	d, _ := b.ptr("Copy", "dst", dst, n)
	if s == 0 || d == 0 || n == 0 {
		return
	}
	b.fail("Copy", b.graphs.add(&entry{kind: opCopy, p: [3]cu.DevicePtr{d, s}, n: n * 4}))
}

// Fill sets every value of dst to v.
func (b *Backend) Fill(dst backend.Buf, v float32) {
	if b.err != nil {
		return
	}
	p, n := b.ptr("Fill", "dst", dst, -1)
	if p == 0 || n == 0 {
		return
	}
	b.fail("Fill", b.graphs.add(&entry{kind: opMemset, p: [3]cu.DevicePtr{p}, n: n, v: math.Float32bits(v)}))
}

// Sync waits for the queued work and returns the first error.
func (b *Backend) Sync() error {
	b.flushGraph("Sync")
	if b.err == nil {
		b.fail("Sync", b.stream.Synchronize())
	}
	if b.err == nil && b.copy.stream != 0 {
		b.fail("Sync", b.copy.stream.Synchronize())
	}
	if b.err == nil && b.side.stream != 0 {
		b.fail("Sync", b.side.stream.Synchronize())
	}
	return b.err
}

// Err returns the first error without waiting.
func (b *Backend) Err() error { return b.err }

// Close frees every allocation and releases the device.
func (b *Backend) Close() error {
	b.endStrayCapture()
	if b.stream != 0 {
		b.stream.Synchronize()
	}
	for _, pl := range b.convs {
		pl.destroy()
	}
	b.convs = nil
	if b.graphs != nil {
		b.graphs.invalidate()
		b.graphs = nil
	}
	b.stage.close()
	b.copy.close()
	b.side.close()
	for p := range b.allocs {
		b.rawFree(p)
	}
	if b.k != nil {
		b.k.Close()
	}
	if b.dnn != nil {
		b.dnn.Destroy()
	}
	if b.stream != 0 {
		b.stream.Destroy()
		b.stream = 0
	}
	if b.ctx != nil {
		b.ctx.Release()
		b.ctx = nil
	}
	return b.err
}

// endStrayCapture ends a capture that a failed EndGraph left open (its
// error matches errCaptureBroken). While it lasts, nothing on this thread
// may synchronise, allocate or free: Close could release nothing, and
// every later backend on the thread would fail.
func (b *Backend) endStrayCapture() {
	if b.stream == 0 {
		return
	}
	if st, err := cu.StreamIsCapturing(b.stream); err != nil || st == cu.CaptureStatusNone {
		return
	}
	if b.side.stream != 0 {
		// A capture ends only with every stream it forked joined.
		if st, err := cu.StreamIsCapturing(b.side.stream); err == nil && st != cu.CaptureStatusNone {
			b.run(&entry{kind: opJoin})
		}
	}
	if g, err := cu.StreamEndCapture(b.stream); err == nil && g != 0 {
		cu.GraphDestroy(g)
	}
}

// ---- elementwise ----

// LeakyReLU applies max(x, slope·x) in place.
func (b *Backend) LeakyReLU(x backend.Buf, slope float32) {
	if b.err != nil {
		return
	}
	p, n := b.ptr("LeakyReLU", "x", x, -1)
	if p != 0 {
		b.fail("LeakyReLU", b.k.LeakyReLU(b.stream, p, n, slope))
	}
}

// LeakyReLUBackward multiplies dy by slope where y ≤ 0.
func (b *Backend) LeakyReLUBackward(y, dy backend.Buf, slope float32) {
	if b.err != nil {
		return
	}
	yp, n := b.ptr("LeakyReLUBackward", "y", y, -1)
	dp, _ := b.ptr("LeakyReLUBackward", "dy", dy, n)
	if yp != 0 && dp != 0 {
		b.fail("LeakyReLUBackward", b.k.LeakyReLUBackward(b.stream, yp, dp, n, slope))
	}
}

// unary runs an in-place kernel f(x).
func (b *Backend) unary(op string, x backend.Buf, launch func(*kernels.Kernels, cu.Stream, cu.DevicePtr, int) error) {
	if b.err != nil {
		return
	}
	if p, n := b.ptr(op, "x", x, -1); p != 0 {
		b.fail(op, launch(b.k, b.stream, p, n))
	}
}

// backwardOf runs dy *= f'(y) for an activation with output y.
func (b *Backend) backwardOf(op string, y, dy backend.Buf, launch func(*kernels.Kernels, cu.Stream, cu.DevicePtr, cu.DevicePtr, int) error) {
	if b.err != nil {
		return
	}
	yp, n := b.ptr(op, "y", y, -1)
	dp, _ := b.ptr(op, "dy", dy, n)
	if yp != 0 && dp != 0 {
		b.fail(op, launch(b.k, b.stream, yp, dp, n))
	}
}

// Tanh applies tanh in place.
func (b *Backend) Tanh(x backend.Buf) { b.unary("Tanh", x, (*kernels.Kernels).Tanh) }

// TanhBackward multiplies dy by 1 − y².
func (b *Backend) TanhBackward(y, dy backend.Buf) {
	b.backwardOf("TanhBackward", y, dy, (*kernels.Kernels).TanhBackward)
}

// Sigmoid applies the logistic function in place.
func (b *Backend) Sigmoid(x backend.Buf) { b.unary("Sigmoid", x, (*kernels.Kernels).Sigmoid) }

// SigmoidBackward multiplies dy by y(1 − y).
func (b *Backend) SigmoidBackward(y, dy backend.Buf) {
	b.backwardOf("SigmoidBackward", y, dy, (*kernels.Kernels).SigmoidBackward)
}

// Scale multiplies x by a.
func (b *Backend) Scale(x backend.Buf, a float32) {
	if b.err != nil {
		return
	}
	if p, n := b.ptr("Scale", "x", x, -1); p != 0 {
		b.fail("Scale", b.k.Scale(b.stream, p, n, a))
	}
}

// Axpby computes y = a·x + c·y.
func (b *Backend) Axpby(y, x backend.Buf, a, c float32) {
	if b.err != nil {
		return
	}
	xp, n := b.ptr("Axpby", "x", x, -1)
	yp, _ := b.ptr("Axpby", "y", y, n)
	if xp != 0 && yp != 0 {
		b.fail("Axpby", b.k.Axpby(b.stream, yp, xp, n, a, c))
	}
}

// LatentMix computes dst = a·z + bw·zOld + c·noise.
func (b *Backend) LatentMix(dst, z, zOld, noise backend.Buf, a, bw, c float32) {
	if b.err != nil {
		return
	}
	zp, n := b.ptr("LatentMix", "z", z, -1)
	dp, _ := b.ptr("LatentMix", "dst", dst, n)
	op := b.optPtr("LatentMix", "zOld", zOld, n)
	np := b.optPtr("LatentMix", "noise", noise, n)
	if b.err == nil {
		b.fail("LatentMix", b.k.LatentMix(b.stream, dp, zp, op, np, n, a, bw, c))
	}
}

// ApplyMask multiplies x by a shared or per-image mask.
func (b *Backend) ApplyMask(x, mask backend.Buf, n, c, hw int, perImage bool) {
	if b.err != nil {
		return
	}
	mn := hw
	if perImage {
		mn = n * hw
	}
	xp, _ := b.ptr("ApplyMask", "x", x, n*c*hw)
	mp, _ := b.ptr("ApplyMask", "mask", mask, mn)
	if b.err == nil {
		b.fail("ApplyMask", b.k.ApplyMask(b.stream, xp, mp, n, c, hw, perImage))
	}
}

// BiasAdd adds bias[ch] to channel ch of y.
func (b *Backend) BiasAdd(y, bias backend.Buf, n, c, hw int) {
	if b.err != nil {
		return
	}
	yp, _ := b.ptr("BiasAdd", "y", y, n*c*hw)
	bp, _ := b.ptr("BiasAdd", "b", bias, c)
	if b.err == nil {
		b.fail("BiasAdd", b.k.BiasAdd(b.stream, yp, bp, n, c, hw))
	}
}

// BiasAct sets y to act(y + bias[ch]) in one kernel.
func (b *Backend) BiasAct(y, bias backend.Buf, n, c, hw int, act backend.Activation, slope float32) {
	if b.err != nil {
		return
	}
	yp, _ := b.ptr("BiasAct", "y", y, n*c*hw)
	bp, _ := b.ptr("BiasAct", "b", bias, c)
	if b.err == nil {
		b.fail("BiasAct", b.k.BiasAct(b.stream, yp, bp, n, c, hw, int(act), slope))
	}
}

// BiasGrad sums dy over n and hw into db.
func (b *Backend) BiasGrad(dy, db backend.Buf, n, c, hw int, beta float32) {
	if b.err != nil {
		return
	}
	yp, _ := b.ptr("BiasGrad", "dy", dy, n*c*hw)
	bp, _ := b.ptr("BiasGrad", "db", db, c)
	if b.err == nil {
		b.fail("BiasGrad", b.k.BiasGrad(b.stream, yp, bp, n, c, hw, beta))
	}
}

// ---- losses and reductions ----

// MSE writes mean((a−t)²) and optionally its gradient.
func (b *Backend) MSE(a, t, loss, grad backend.Buf, scale float32) {
	if b.err != nil {
		return
	}
	ap, n := b.ptr("MSE", "a", a, -1)
	tp, _ := b.ptr("MSE", "b", t, n)
	lp, _ := b.ptr("MSE", "loss", loss, 1)
	gp := b.optPtr("MSE", "grad", grad, n)
	if b.err == nil {
		b.fail("MSE", b.k.MSE(b.stream, ap, tp, gp, n, scale, b.partial, lp))
	}
}

// BCE writes PyTorch's BCELoss of d against target and optionally its
// gradient.
func (b *Backend) BCE(d backend.Buf, target float32, loss, grad backend.Buf, scale float32) {
	if b.err != nil {
		return
	}
	dp, n := b.ptr("BCE", "d", d, -1)
	lp, _ := b.ptr("BCE", "loss", loss, 1)
	gp := b.optPtr("BCE", "grad", grad, n)
	if b.err == nil {
		b.fail("BCE", b.k.BCE(b.stream, dp, target, gp, n, scale, b.partial, lp))
	}
}

// KLBatch writes the batch-statistics KL loss of z and optionally its
// gradient.
func (b *Backend) KLBatch(z backend.Buf, n, nz int, loss, grad backend.Buf, scale, beta float32) {
	if b.err != nil {
		return
	}
	zp, _ := b.ptr("KLBatch", "z", z, n*nz)
	lp, _ := b.ptr("KLBatch", "loss", loss, 1)
	gp := b.optPtr("KLBatch", "grad", grad, n*nz)
	if b.err != nil {
		return
	}
	if nz > b.termsN {
		b.flushGraph("KLBatch") // the recorded work may use the old buffer
		if b.terms != 0 {
			b.rawFree(b.terms)
		}
		p, err := b.rawAlloc(nz * 8)
		if err != nil {
			b.fail("KLBatch", fmt.Errorf("buffer of %d KL terms: %w", nz, err))
			return
		}
		b.terms, b.termsN = p, nz
	}
	b.fail("KLBatch", b.k.KLBatch(b.stream, zp, n, nz, b.terms, gp, scale, beta, lp))
}

// Mean writes the mean of x to out[0].
func (b *Backend) Mean(x, out backend.Buf) {
	if b.err != nil {
		return
	}
	xp, n := b.ptr("Mean", "x", x, -1)
	op, _ := b.ptr("Mean", "out", out, 1)
	if b.err == nil && n > 0 {
		b.fail("Mean", b.k.Mean(b.stream, xp, n, b.partial, op))
	}
}

// RowNormMean writes the mean row norm of x [rows, cols] to out[0].
func (b *Backend) RowNormMean(x backend.Buf, rows, cols int, out backend.Buf) {
	if b.err != nil {
		return
	}
	xp, _ := b.ptr("RowNormMean", "x", x, rows*cols)
	op, _ := b.ptr("RowNormMean", "out", out, 1)
	if b.err == nil && rows > 0 {
		b.fail("RowNormMean", b.k.RowNormMean(b.stream, xp, rows, cols, op))
	}
}

// ---- random numbers ----

// RandNormal fills dst with normal numbers of the stream k.
func (b *Backend) RandNormal(dst backend.Buf, k rng.Key) {
	if b.err != nil {
		return
	}
	if p, n := b.ptr("RandNormal", "dst", dst, -1); p != 0 {
		b.fail("RandNormal", b.k.RandNormal(b.stream, p, n, b.key("RandNormal", k)))
	}
}

// RandUniform fills dst with uniform numbers of the stream k.
func (b *Backend) RandUniform(dst backend.Buf, k rng.Key) {
	if b.err != nil {
		return
	}
	if p, n := b.ptr("RandUniform", "dst", dst, -1); p != 0 {
		b.fail("RandUniform", b.k.RandUniform(b.stream, p, n, b.key("RandUniform", k)))
	}
}

// OcclusionMask writes the masks o describes.
func (b *Backend) OcclusionMask(mask backend.Buf, o backend.Occlusion) {
	if b.err != nil {
		return
	}
	if err := o.Validate(); err != nil {
		b.fail("OcclusionMask", err)
		return
	}
	p, _ := b.ptr("OcclusionMask", "mask", mask, o.Masks*o.H*o.W)
	if p == 0 {
		return
	}
	prob := float32(-1)
	if o.P >= 0 {
		prob = float32(o.P)
	}
	b.fail("OcclusionMask", b.k.OcclusionMask(b.stream, p, o.H, o.W, o.Masks, prob, o.Tile, o.MaxTile, b.key("OcclusionMask", o.Key)))
}

// key places the words of k in device memory for the random-number kernel
// of op.
func (b *Backend) key(op string, k rng.Key) cu.DevicePtr {
	w := kernels.KeyWords(k)
	p, err := b.arg(unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), kernels.KeyBytes))
	if err != nil {
		b.fail(op, fmt.Errorf("random key: %w", err))
	}
	return p
}
