package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/rng"
)

// Threads is the block size of the one-dimensional kernels.
const Threads = 256

// ReduceBlocks is the fixed number of blocks of the two-stage reductions:
// each writes one double partial sum, and a fixed grid makes the order of
// additions, and so the result, the same every run. Partial buffers must
// hold ReduceBlocks doubles.
const ReduceBlocks = 264

// maxGrid caps grid-stride launches (the H100 has 132 SMs).
const maxGrid = 4096

func grid(n int) uint32 {
	g := (n + Threads - 1) / Threads
	if g > maxGrid {
		g = maxGrid
	}
	if g < 1 {
		g = 1
	}
	return uint32(g)
}

// argError reports a launcher argument that would make the kernel misbehave.
func argError(kernel, format string, a ...any) error {
	return fmt.Errorf("kernels: %s: %s", kernel, fmt.Sprintf(format, a...))
}

func (k *Kernels) launch(name string, gx, gy uint32, threads uint32, s cu.Stream) error {
	f, ok := k.fns[name]
	if !ok {
		return argError(name, "not loaded")
	}
	if err := k.launchFn(f, [3]uint32{gx, gy, 1}, [3]uint32{threads, 1, 1}, s, &k.args); err != nil {
		return fmt.Errorf("kernels: %s: %w", name, err)
	}
	return nil
}

// check returns an error unless every pointer is set and n is a valid
// element count.
func check(kernel string, n int, ptrs ...cu.DevicePtr) error {
	if n < 0 {
		return argError(kernel, "negative size %d", n)
	}
	for i, p := range ptrs {
		if p == 0 {
			return argError(kernel, "pointer argument %d is null", i)
		}
	}
	return nil
}

func fitsInt32(kernel string, vals ...int) error {
	for _, v := range vals {
		if v < 0 || v > math.MaxInt32 {
			return argError(kernel, "size %d outside 0..2^31-1", v)
		}
	}
	return nil
}

// elementwise launches a grid-stride kernel over n values after the
// arguments were appended.
func (k *Kernels) elementwise(name string, n int, s cu.Stream) error {
	if n == 0 {
		return nil
	}
	return k.launch(name, grid(n), 1, Threads, s)
}

// Fill sets n floats at x to v.
func (k *Kernels) Fill(s cu.Stream, x cu.DevicePtr, n int, v float32) error {
	if err := check("pad_fill", n, x); err != nil {
		return err
	}
	k.args.Reset().Ptr(x).Float32(v).Int64(int64(n))
	return k.elementwise("pad_fill", n, s)
}

// LeakyReLU applies max(x, slope·x) in place.
func (k *Kernels) LeakyReLU(s cu.Stream, x cu.DevicePtr, n int, slope float32) error {
	if err := check("pad_leaky_relu", n, x); err != nil {
		return err
	}
	k.args.Reset().Ptr(x).Float32(slope).Int64(int64(n))
	return k.elementwise("pad_leaky_relu", n, s)
}

// LeakyReLUBackward multiplies dy by slope where y ≤ 0.
func (k *Kernels) LeakyReLUBackward(s cu.Stream, y, dy cu.DevicePtr, n int, slope float32) error {
	if err := check("pad_leaky_relu_backward", n, y, dy); err != nil {
		return err
	}
	k.args.Reset().Ptr(y).Ptr(dy).Float32(slope).Int64(int64(n))
	return k.elementwise("pad_leaky_relu_backward", n, s)
}

// unary launches an in-place kernel f(x) over n values.
func (k *Kernels) unary(name string, s cu.Stream, x cu.DevicePtr, n int) error {
	if err := check(name, n, x); err != nil {
		return err
	}
	k.args.Reset().Ptr(x).Int64(int64(n))
	return k.elementwise(name, n, s)
}

// backward launches dy *= f'(y) over n values.
func (k *Kernels) backward(name string, s cu.Stream, y, dy cu.DevicePtr, n int) error {
	if err := check(name, n, y, dy); err != nil {
		return err
	}
	k.args.Reset().Ptr(y).Ptr(dy).Int64(int64(n))
	return k.elementwise(name, n, s)
}

// Tanh applies tanh in place.
func (k *Kernels) Tanh(s cu.Stream, x cu.DevicePtr, n int) error { return k.unary("pad_tanh", s, x, n) }

// TanhBackward multiplies dy by 1 − y².
func (k *Kernels) TanhBackward(s cu.Stream, y, dy cu.DevicePtr, n int) error {
	return k.backward("pad_tanh_backward", s, y, dy, n)
}

// Sigmoid applies the logistic function in place.
func (k *Kernels) Sigmoid(s cu.Stream, x cu.DevicePtr, n int) error {
	return k.unary("pad_sigmoid", s, x, n)
}

// SigmoidBackward multiplies dy by y(1 − y).
func (k *Kernels) SigmoidBackward(s cu.Stream, y, dy cu.DevicePtr, n int) error {
	return k.backward("pad_sigmoid_backward", s, y, dy, n)
}

// Scale multiplies n values at x by a.
func (k *Kernels) Scale(s cu.Stream, x cu.DevicePtr, n int, a float32) error {
	if err := check("pad_scale", n, x); err != nil {
		return err
	}
	k.args.Reset().Ptr(x).Float32(a).Int64(int64(n))
	return k.elementwise("pad_scale", n, s)
}

// Axpby computes y = a·x + b·y over n values.
func (k *Kernels) Axpby(s cu.Stream, y, x cu.DevicePtr, n int, a, b float32) error {
	if err := check("pad_axpby", n, y, x); err != nil {
		return err
	}
	k.args.Reset().Ptr(y).Ptr(x).Float32(a).Float32(b).Int64(int64(n))
	return k.elementwise("pad_axpby", n, s)
}

// LatentMix computes dst = a·z + b·zOld + c·noise; zOld and noise may be 0
// (null) when their weights are 0.
func (k *Kernels) LatentMix(s cu.Stream, dst, z, zOld, noise cu.DevicePtr, n int, a, b, c float32) error {
	if err := check("pad_latent_mix", n, dst, z); err != nil {
		return err
	}
	if (zOld == 0 && b != 0) || (noise == 0 && c != 0) {
		return argError("pad_latent_mix", "a null operand with a non-zero weight (b %v, c %v)", b, c)
	}
	k.args.Reset().Ptr(dst).Ptr(z).Ptr(zOld).Ptr(noise).Float32(a).Float32(b).Float32(c).Int64(int64(n))
	return k.elementwise("pad_latent_mix", n, s)
}

// ApplyMask multiplies x [n, c, hw] by a shared ([hw]) or per-image
// ([n, hw]) mask.
func (k *Kernels) ApplyMask(s cu.Stream, x, mask cu.DevicePtr, n, c, hw int, perImage bool) error {
	if err := check("pad_apply_mask", n*c*hw, x, mask); err != nil {
		return err
	}
	if err := fitsInt32("pad_apply_mask", n, c, hw); err != nil {
		return err
	}
	pi := int32(0)
	if perImage {
		pi = 1
	}
	k.args.Reset().Ptr(x).Ptr(mask).Int32(int32(n)).Int32(int32(c)).Int32(int32(hw)).Int32(pi)
	return k.elementwise("pad_apply_mask", n*c*hw, s)
}

// BiasAdd adds b[ch] to channel ch of y [n, c, hw].
func (k *Kernels) BiasAdd(s cu.Stream, y, b cu.DevicePtr, n, c, hw int) error {
	if err := check("pad_bias_add", n*c*hw, y, b); err != nil {
		return err
	}
	if err := fitsInt32("pad_bias_add", n, c, hw); err != nil {
		return err
	}
	k.args.Reset().Ptr(y).Ptr(b).Int32(int32(n)).Int32(int32(c)).Int32(int32(hw))
	return k.elementwise("pad_bias_add", n*c*hw, s)
}

// BiasAct sets y [n, c, hw] to act(y + b[ch]); act is 0 (none), 1
// (LeakyReLU with slope), 2 (tanh) or 3 (sigmoid), backend.Activation's
// values.
func (k *Kernels) BiasAct(s cu.Stream, y, b cu.DevicePtr, n, c, hw, act int, slope float32) error {
	if err := check("pad_bias_act", n*c*hw, y, b); err != nil {
		return err
	}
	if err := fitsInt32("pad_bias_act", n, c, hw); err != nil {
		return err
	}
	if act < 0 || act > 3 {
		return argError("pad_bias_act", "unknown activation %d", act)
	}
	k.args.Reset().Ptr(y).Ptr(b).Int32(int32(n)).Int32(int32(c)).Int32(int32(hw)).Int32(int32(act)).Float32(slope)
	return k.elementwise("pad_bias_act", n*c*hw, s)
}

// BiasGrad computes db[ch] = Σ dy[·, ch, ·] + beta·db[ch].
func (k *Kernels) BiasGrad(s cu.Stream, dy, db cu.DevicePtr, n, c, hw int, beta float32) error {
	if err := check("pad_bias_grad", n*c*hw, dy, db); err != nil {
		return err
	}
	if err := fitsInt32("pad_bias_grad", n, c, hw); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	k.args.Reset().Ptr(dy).Ptr(db).Int32(int32(n)).Int32(int32(c)).Int32(int32(hw)).Float32(beta)
	return k.launch("pad_bias_grad", uint32(c), 1, Threads, s)
}

// finishMean writes Σ partial[0..parts) / divisor to out[0].
func (k *Kernels) finishMean(s cu.Stream, partial cu.DevicePtr, parts int, divisor float64, out cu.DevicePtr) error {
	k.args.Reset().Ptr(partial).Int32(int32(parts)).Float64(divisor).Ptr(out)
	return k.launch("pad_finish_mean", 1, 1, Threads, s)
}

// MSE writes mean((a−b)²) to loss[0] and, if grad is not 0,
// grad = scale·2(a−b)/n. partial holds ReduceBlocks doubles of scratch.
func (k *Kernels) MSE(s cu.Stream, a, b, grad cu.DevicePtr, n int, scale float32, partial, loss cu.DevicePtr) error {
	if err := check("pad_mse_partial", n, a, b, partial, loss); err != nil {
		return err
	}
	if n == 0 {
		return argError("pad_mse_partial", "mean of no values")
	}
	k.args.Reset().Ptr(a).Ptr(b).Ptr(grad).Ptr(partial).Int64(int64(n)).Float32(scale)
	if err := k.launch("pad_mse_partial", ReduceBlocks, 1, Threads, s); err != nil {
		return err
	}
	return k.finishMean(s, partial, ReduceBlocks, float64(n), loss)
}

// BCE writes PyTorch's BCELoss of d against target to loss[0] and, if grad
// is not 0, scale times its gradient.
func (k *Kernels) BCE(s cu.Stream, d cu.DevicePtr, target float32, grad cu.DevicePtr, n int, scale float32, partial, loss cu.DevicePtr) error {
	if err := check("pad_bce_partial", n, d, partial, loss); err != nil {
		return err
	}
	if n == 0 {
		return argError("pad_bce_partial", "mean of no values")
	}
	k.args.Reset().Ptr(d).Float32(target).Ptr(grad).Ptr(partial).Int64(int64(n)).Float32(scale)
	if err := k.launch("pad_bce_partial", ReduceBlocks, 1, Threads, s); err != nil {
		return err
	}
	return k.finishMean(s, partial, ReduceBlocks, float64(n), loss)
}

// KLBatch writes the batch-statistics KL loss of z [n, nz] to loss[0] and,
// if grad is not 0, grad = scale·∂loss/∂z + beta·grad. terms holds nz
// doubles of scratch.
func (k *Kernels) KLBatch(s cu.Stream, z cu.DevicePtr, n, nz int, terms, grad cu.DevicePtr, scale, beta float32, loss cu.DevicePtr) error {
	if err := check("pad_kl_batch", n*nz, z, terms, loss); err != nil {
		return err
	}
	if err := fitsInt32("pad_kl_batch", n, nz); err != nil {
		return err
	}
	if n < 2 || nz < 1 {
		return argError("pad_kl_batch", "batch %d, %d units: need a batch of at least 2", n, nz)
	}
	k.args.Reset().Ptr(z).Int32(int32(n)).Int32(int32(nz)).Ptr(terms).Ptr(grad).Float32(scale).Float32(beta)
	if err := k.launch("pad_kl_batch", uint32(nz), 1, Threads, s); err != nil {
		return err
	}
	return k.finishMean(s, terms, nz, float64(nz), loss)
}

// Mean writes the mean of n values at x to out[0].
func (k *Kernels) Mean(s cu.Stream, x cu.DevicePtr, n int, partial, out cu.DevicePtr) error {
	if err := check("pad_sum_partial", n, x, partial, out); err != nil {
		return err
	}
	if n == 0 {
		return argError("pad_sum_partial", "mean of no values")
	}
	k.args.Reset().Ptr(x).Ptr(partial).Int64(int64(n))
	if err := k.launch("pad_sum_partial", ReduceBlocks, 1, Threads, s); err != nil {
		return err
	}
	return k.finishMean(s, partial, ReduceBlocks, float64(n), out)
}

// RowNormMean writes the mean Euclidean norm of the rows of x [rows, cols]
// to out[0].
func (k *Kernels) RowNormMean(s cu.Stream, x cu.DevicePtr, rows, cols int, out cu.DevicePtr) error {
	if err := check("pad_row_norm_mean", rows*cols, x, out); err != nil {
		return err
	}
	if err := fitsInt32("pad_row_norm_mean", rows, cols); err != nil {
		return err
	}
	if rows == 0 {
		return argError("pad_row_norm_mean", "no rows")
	}
	k.args.Reset().Ptr(x).Int32(int32(rows)).Int32(int32(cols)).Ptr(out)
	return k.launch("pad_row_norm_mean", 1, 1, Threads, s)
}

// KeyWords is how the random-number kernels read a stream's key from device
// memory: seed low and high word, stream, sequence low and high word,
// padded to 32 bytes. Keys live in device memory so that a captured graph
// replays with the key the host wrote for the current iteration.
func KeyWords(key rng.Key) [8]uint32 {
	return [8]uint32{uint32(key.Seed), uint32(key.Seed >> 32), key.Stream, uint32(key.Seq), uint32(key.Seq >> 32)}
}

// KeyBytes is the size of KeyWords in device memory.
const KeyBytes = 32

// RandNormal writes normal numbers 0..n−1 of the stream whose KeyWords are
// at key to dst.
func (k *Kernels) RandNormal(s cu.Stream, dst cu.DevicePtr, n int, key cu.DevicePtr) error {
	if err := check("pad_rand_normal", n, dst, key); err != nil {
		return err
	}
	k.args.Reset().Ptr(dst).Int64(int64(n)).Ptr(key)
	return k.elementwise("pad_rand_normal", (n+3)/4, s)
}

// RandUniform writes uniform numbers 0..n−1 of the stream whose KeyWords
// are at key to dst.
func (k *Kernels) RandUniform(s cu.Stream, dst cu.DevicePtr, n int, key cu.DevicePtr) error {
	if err := check("pad_rand_uniform", n, dst, key); err != nil {
		return err
	}
	k.args.Reset().Ptr(dst).Int64(int64(n)).Ptr(key)
	return k.elementwise("pad_rand_uniform", (n+3)/4, s)
}

// OcclusionMask writes masks planes of h·w values (backend.Occlusion):
// p < 0 draws the drop probability per mask, tile ≤ 0 the tile size from
// 1..maxTile; the stream's KeyWords are at key.
func (k *Kernels) OcclusionMask(s cu.Stream, mask cu.DevicePtr, h, w, masks int, p float32, tile, maxTile int, key cu.DevicePtr) error {
	if err := check("pad_occlusion_mask", h*w*masks, mask, key); err != nil {
		return err
	}
	if err := fitsInt32("pad_occlusion_mask", h, w, masks, maxTile); err != nil {
		return err
	}
	if tile <= 0 && maxTile <= 0 {
		return argError("pad_occlusion_mask", "no tile size and no maximum")
	}
	k.args.Reset().Ptr(mask).Int32(int32(h)).Int32(int32(w)).Int32(int32(masks)).Float32(p).Int32(int32(tile)).Int32(int32(maxTile)).Ptr(key)
	return k.elementwise("pad_occlusion_mask", h*w*masks, s)
}

// AdamSeg mirrors the kernel's adam_seg: {long off, len; float step_size,
// bc2_sqrt}, 24 bytes.
type AdamSeg struct {
	Off, Len          int64
	StepSize, BC2Sqrt float32
}

// Adam applies one Adam step to nseg segments described by the table at
// segs (device memory, nseg AdamSegs) of the flat buffers p, g, m, v;
// maxLen is the longest segment (it sizes the grid).
func (k *Kernels) Adam(s cu.Stream, p, g, m, v, segs cu.DevicePtr, nseg, maxLen int, beta1, beta2, eps float32) error {
	if err := check("pad_adam", maxLen, p, g, m, v, segs); err != nil {
		return err
	}
	if nseg <= 0 || nseg > 65535 {
		return argError("pad_adam", "%d segments (want 1..65535)", nseg)
	}
	gx := uint32(min((maxLen+Threads-1)/Threads, 512))
	if gx < 1 {
		gx = 1
	}
	k.args.Reset().Ptr(p).Ptr(g).Ptr(m).Ptr(v).Ptr(segs).Float32(beta1).Float32(beta2).Float32(eps)
	return k.launch("pad_adam", gx, uint32(nseg), Threads, s)
}

func sizeofAdamSeg() uintptr { return unsafe.Sizeof(AdamSeg{}) }
