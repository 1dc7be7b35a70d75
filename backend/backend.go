// Package backend defines the op set pad's model and phases are written
// against, and the shared definitions (convolution geometry, occlusion
// masks, Adam) every implementation must follow.
//
// Two implementations exist: backend/cpu, the readable reference, and
// backend/cuda. The model code never knows which one it runs on.
//
// Conventions:
//   - Every tensor is float32 in a Buf, laid out like PyTorch: activations
//     NCHW, Conv2d weights [K, C, R, S], ConvTranspose2d weights [in, out,
//     R, S], latents [N, nz].
//   - Ops are queued in call order and may run asynchronously. They do not
//     return errors: the first failure is kept and reported by Err and by
//     Sync, and later ops become no-ops (the "sticky error" of bufio.Writer
//     and of CUDA itself). A caller checks Sync at the end of an iteration.
//   - "beta" arguments follow BLAS and cuDNN: out = result + beta·out, with
//     beta 0 (overwrite) or 1 (accumulate).
//   - Losses write their value (unscaled) to a one-element Buf, so that the
//     per-iteration numbers can be fetched with one Download.
package backend

import "github.com/pad-dreaming/pad/internal/rng"

// Buf is a span of float32 values in a backend's memory. Slice returns a
// view of n values starting at off; views share memory with their parent.
type Buf interface {
	Len() int
	Slice(off, n int) Buf
}

// Backend is the op set. See the package comment for the conventions.
type Backend interface {
	// Name is a short description, e.g. "cpu (2 threads)".
	Name() string

	// Alloc returns n zeroed values. Memory is released by Close (or Free).
	Alloc(n int) (Buf, error)
	// Free releases a Buf returned by Alloc (not a view).
	Free(b Buf)
	// Upload copies host values to dst (len(src) == dst.Len()).
	Upload(dst Buf, src []float32)
	// Download copies src to host memory (len(dst) == src.Len()). It waits
	// for the queued work that writes src.
	Download(dst []float32, src Buf)
	// Copy copies src to dst (same length).
	Copy(dst, src Buf)
	// Fill sets every value of dst to v.
	Fill(dst Buf, v float32)

	// ConvForward computes y = conv(x, w) for the geometry g (no bias).
	ConvForward(g ConvGeom, x, w, y Buf)
	// ConvBackwardData computes dx = conv_transpose(dy, w) + beta·dx: the
	// adjoint of ConvForward with respect to x. It is also the forward pass
	// of ConvTranspose2d.
	ConvBackwardData(g ConvGeom, dy, w, dx Buf, beta float32)
	// ConvBackwardFilter computes dw = Σ_n dy ⋆ x + beta·dw.
	ConvBackwardFilter(g ConvGeom, x, dy, dw Buf, beta float32)
	// BiasAdd adds b[c] to every value of channel c of y ([n, c, hw]).
	BiasAdd(y, b Buf, n, c, hw int)
	// BiasAct adds b[c] to channel c of y ([n, c, hw]) and applies act in
	// place: the same values as BiasAdd followed by the activation's op,
	// bit for bit, in one pass (slope is LeakyReLU's).
	BiasAct(y, b Buf, n, c, hw int, act Activation, slope float32)
	// BiasGrad computes db[c] = Σ over n and hw of dy[n, c, hw] + beta·db[c].
	BiasGrad(dy, db Buf, n, c, hw int, beta float32)

	// LeakyReLU applies max(x, slope·x) in place.
	LeakyReLU(x Buf, slope float32)
	// LeakyReLUBackward multiplies dy in place by the derivative, read off
	// the activation's output y (y > 0: 1, else slope).
	LeakyReLUBackward(y, dy Buf, slope float32)
	// Tanh applies tanh in place; TanhBackward multiplies dy by 1 − y².
	Tanh(x Buf)
	TanhBackward(y, dy Buf)
	// Sigmoid applies the logistic function in place; SigmoidBackward
	// multiplies dy by y(1 − y).
	Sigmoid(x Buf)
	SigmoidBackward(y, dy Buf)
	// Scale multiplies x by a in place (a = −1 is gradient reversal).
	Scale(x Buf, a float32)
	// Axpby computes y = a·x + b·y.
	Axpby(y, x Buf, a, b float32)
	// LatentMix computes dst = a·z + b·zOld + c·noise. zOld or noise may be
	// nil when their weight is 0.
	LatentMix(dst, z, zOld, noise Buf, a, b, c float32)
	// ApplyMask multiplies x ([n, c, hw]) by mask: mask holds hw values
	// shared by all images (perImage false) or n·hw values, one plane per
	// image, shared by its channels (perImage true).
	ApplyMask(x, mask Buf, n, c, hw int, perImage bool)

	// MSE writes mean((a−b)²) to loss; if grad is not nil it sets
	// grad = scale·2(a−b)/len.
	MSE(a, b, loss, grad Buf, scale float32)
	// BCE writes PyTorch's BCELoss (mean, each log clamped at −100) of the
	// probabilities d against a constant target to loss; if grad is not nil
	// it sets grad = scale·∂loss/∂d with PyTorch's formula
	// (d − t) / max(d(1 − d), 1e-12) / len.
	BCE(d Buf, target float32, loss, grad Buf, scale float32)
	// KLBatch writes the batch-statistics KL loss of z ([n, nz]) to loss:
	// mean over units j of (s_j² + m_j²)/2 − log s_j − 1/2, m_j the batch
	// mean and s_j the unbiased batch standard deviation. If grad is not nil
	// it sets grad = scale·∂loss/∂z + beta·grad.
	KLBatch(z Buf, n, nz int, loss, grad Buf, scale, beta float32)
	// Mean writes the mean of x to out[0].
	Mean(x, out Buf)
	// RowNormMean writes the mean over rows of the Euclidean norm of each
	// row of x ([rows, cols]) to out[0].
	RowNormMean(x Buf, rows, cols int, out Buf)

	// RandNormal fills dst with standard normal numbers 0..len−1 of the
	// stream k (rng.FillNormal).
	RandNormal(dst Buf, k rng.Key)
	// RandUniform fills dst with uniform numbers in (0, 1) (rng.FillUniform).
	RandUniform(dst Buf, k rng.Key)
	// OcclusionMask writes occlusion masks as defined by Occlusion.Mask:
	// o.Masks planes of o.H·o.W values, each 0 or 1.
	OcclusionMask(mask Buf, o Occlusion)

	// Adam applies one Adam step to each segment of the flat parameter
	// buffer p, with gradients g and moments m and v of the same layout.
	// Segments not listed are left alone (they received no gradient).
	Adam(p, g, m, v Buf, segs []AdamSegment, h AdamHyper)

	// Sync waits for all queued work and returns the first error.
	Sync() error
	// Err returns the first error without waiting.
	Err() error
	// Close releases everything the backend holds.
	Close() error
}

// Activation names the activation BiasAct applies.
type Activation int

const (
	ActNone      Activation = iota // bias only
	ActLeakyReLU                   // max(x, slope·x)
	ActTanh                        // tanh
	ActSigmoid                     // 1/(1+e^−x)
)

// GraphRecorder is implemented by backends that can replay an iteration's work
// as a whole (the CUDA backend's graphs). The phases bracket each training
// iteration with BeginGraph and EndGraph; the results are the same with or
// without, only faster.
type GraphRecorder interface {
	BeginGraph()
	EndGraph()
}

// Fence marks the work queued on a backend up to some point (Streamer).
// The zero Fence marks nothing.
type Fence uint64

// Streamer is implemented by backends that copy mini-batches to the device
// on a stream of their own, so that the copy of the next batch overlaps the
// current iteration (the CUDA backend).
type Streamer interface {
	// HostBuffer returns n floats of host memory that UploadAsync copies
	// from without staging (page-locked). It stays valid until Close.
	HostBuffer(n int) ([]float32, error)
	// Fence marks the work queued so far.
	Fence() Fence
	// UploadAsync copies src to dst (len(src) == dst.Len()) on the copy
	// stream, starting once the work marked by after is done (so that dst
	// is no longer read); the work queued after UploadAsync waits for the
	// copy. src must stay unchanged until that work has been waited for
	// (Sync, or a Download after it).
	UploadAsync(dst Buf, src []float32, after Fence)
}

// AsyncReader is implemented by backends whose downloads can run behind
// the host (the CUDA backend), so that the host queues the next iteration
// before it waits for the numbers of the last one.
type AsyncReader interface {
	// DownloadAsync copies src to dst (len(dst) == src.Len(); host memory
	// from Streamer.HostBuffer) once the work queued so far is done, and
	// returns a fence that marks the copy. dst holds the values only
	// after Wait on that fence.
	DownloadAsync(dst []float32, src Buf) Fence
	// Wait blocks until the work marked by f is done and returns the
	// backend's first error.
	Wait(f Fence) error
}

// Overlapper is implemented by backends that can run some work beside the
// main queue (the CUDA backend's second stream), such as a layer's weight
// gradient while the gradient flows on to the layer below. The operations
// issued between BeginSide and EndSide start once the work queued before
// BeginSide is done and run beside whatever the main queue does next; the
// main queue waits for them at JoinSide. Until JoinSide the caller must
// queue nothing that writes what the side work reads, or reads or writes
// what it writes. Side work may not take per-call arguments (random keys,
// Adam tables, uploads); a backend refuses those there.
type Overlapper interface {
	BeginSide()
	EndSide()
	JoinSide()
}
