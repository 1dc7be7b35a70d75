// Package model holds PAD's two networks — the encoder/discriminator E and
// the generator G — as flat parameter sets with the reference's tensor
// names and PyTorch layouts, their initialisation, and a forward and a
// backward function per network written against backend.Backend.
//
// All parameters of a network live in one buffer, and so do their
// gradients and Adam moments; all activations are allocated once for a
// batch size. Nothing is allocated per iteration.
package model

import (
	"fmt"
	"math"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/rng"
)

// Spec gives the sizes of a PAD model.
type Spec struct {
	C     int // image channels (1 or 3); images are C×32×32
	NF    int // filter factor (64 in the paper)
	NZ    int // latent size (256 in the paper)
	Batch int // mini-batch size the activations are allocated for
}

// Validate reports sizes no PAD model has.
func (s Spec) Validate() error {
	if s.C < 1 || s.NF < 1 || s.NZ < 1 || s.Batch < 1 {
		return fmt.Errorf("model: channels %d, nf %d, nz %d, batch %d: all must be positive", s.C, s.NF, s.NZ, s.Batch)
	}
	return nil
}

// ImageSize is the side of PAD's square images.
const ImageSize = 32

// Slope is the negative slope of every LeakyReLU.
const Slope = 0.2

// Tensor is one parameter tensor inside a network's flat buffer.
type Tensor struct {
	Name  string // reference name without the network prefix, e.g. "conv1.0.weight"
	Shape []int  // PyTorch shape
	Off   int    // offset in the flat buffer
	Len   int    // number of values
	Bias  bool   // bias (uniform init) rather than weight (normal init)
	FanIn int    // weight.size(1)·kh·kw of the layer, for the bias init
}

// Net is a network's parameter set: values, gradients, Adam moments and
// per-tensor Adam step counts, all in flat buffers indexed by Tensors.
type Net struct {
	Prefix        string // "E" or "G": the checkpoint name is Prefix + "." + Tensor.Name
	Tensors       []Tensor
	Size          int
	Values, Grads backend.Buf // values and gradients
	M, V          backend.Buf // Adam's first and second moments
	AdamSteps     []int       // Adam steps taken per tensor
	hasGrad       []bool      // which tensors received a gradient in the current phase
	segs          []backend.AdamSegment
	ov            backend.Overlapper // nil: the backend runs everything in order
}

func (n *Net) add(name string, shape []int, bias bool, fanIn int) int {
	l := 1
	for _, d := range shape {
		l *= d
	}
	n.Tensors = append(n.Tensors, Tensor{Name: name, Shape: shape, Off: n.Size, Len: l, Bias: bias, FanIn: fanIn})
	n.Size += l
	return len(n.Tensors) - 1
}

func (n *Net) alloc(b backend.Backend) error {
	var err error
	for _, p := range []*backend.Buf{&n.Values, &n.Grads, &n.M, &n.V} {
		if *p, err = b.Alloc(n.Size); err != nil {
			return fmt.Errorf("model: %s parameters (%d values): %w", n.Prefix, n.Size, err)
		}
	}
	n.AdamSteps = make([]int, len(n.Tensors))
	n.hasGrad = make([]bool, len(n.Tensors))
	n.segs = make([]backend.AdamSegment, 0, len(n.Tensors))
	n.ov, _ = b.(backend.Overlapper)
	return nil
}

// The backward passes queue each layer's weight and bias gradients as
// side work (backend.Overlapper): they read the layer's input and output
// gradient, which nothing later in the pass writes, and write only the
// layer's parameter gradients, which only the Adam step after the pass
// reads. Every backward pass joins its side work before it returns.

func (n *Net) beginSide() {
	if n.ov != nil {
		n.ov.BeginSide()
	}
}

func (n *Net) endSide() {
	if n.ov != nil {
		n.ov.EndSide()
	}
}

func (n *Net) joinSide() {
	if n.ov != nil {
		n.ov.JoinSide()
	}
}

// Index returns the position of the tensor called name, or −1.
func (n *Net) Index(name string) int {
	for i, t := range n.Tensors {
		if t.Name == name {
			return i
		}
	}
	return -1
}

// Param and Grad return views of tensor i's values and gradient.
func (n *Net) Param(i int) backend.Buf { return n.Values.Slice(n.Tensors[i].Off, n.Tensors[i].Len) }
func (n *Net) Grad(i int) backend.Buf  { return n.Grads.Slice(n.Tensors[i].Off, n.Tensors[i].Len) }

// ForgetGrads forgets which tensors received gradients (PyTorch's
// zero_grad(set_to_none=True)): a tensor no backward pass writes to before
// the next AdamStep is skipped by Adam.
func (n *Net) ForgetGrads() {
	for i := range n.hasGrad {
		n.hasGrad[i] = false
	}
}

// markGrad records that tensor i received a gradient in this phase.
func (n *Net) markGrad(i int) { n.hasGrad[i] = true }

// HasGrad reports whether tensor i received a gradient since ForgetGrads.
func (n *Net) HasGrad(i int) bool { return n.hasGrad[i] }

// AdamStep applies one Adam step to every tensor that received a gradient
// since ForgetGrads, advancing only those tensors' step counts.
func (n *Net) AdamStep(b backend.Backend, h backend.AdamHyper) {
	n.segs = n.segs[:0]
	for i, t := range n.Tensors {
		if !n.hasGrad[i] {
			continue
		}
		n.AdamSteps[i]++
		n.segs = append(n.segs, backend.AdamSegment{Off: t.Off, Len: t.Len, Step: n.AdamSteps[i]})
	}
	if len(n.segs) > 0 {
		b.Adam(n.Values, n.Grads, n.M, n.V, n.segs, h)
	}
}

// Init draws the reference initialisation: every weight from N(0, 0.02²),
// every bias from U(−1/√fanIn, 1/√fanIn) (PyTorch's default for conv
// biases). Tensor i of the network uses the stream
// {seed, rng.StreamInit, firstSeq+i}, so E and G draw independently.
func (n *Net) Init(b backend.Backend, seed uint64, firstSeq uint64) {
	host := make([]float32, n.Size)
	for i, t := range n.Tensors {
		k := rng.Key{Seed: seed, Stream: rng.StreamInit, Seq: firstSeq + uint64(i)}
		v := host[t.Off : t.Off+t.Len]
		if t.Bias {
			bound := 1 / math.Sqrt(float64(t.FanIn))
			rng.FillUniform(v, k)
			for j := range v {
				v[j] = float32(-bound + 2*bound*float64(v[j]))
			}
		} else {
			rng.FillNormal(v, k)
			for j := range v {
				v[j] *= 0.02
			}
		}
	}
	b.Upload(n.Values, host)
	b.Fill(n.M, 0)
	b.Fill(n.V, 0)
	for i := range n.AdamSteps {
		n.AdamSteps[i] = 0
	}
}

// layer is one convolution of a network: its geometry, the activation
// that follows it, parameter views and the index of its weight tensor (the
// bias follows it).
type layer struct {
	g      backend.ConvGeom
	act    backend.Activation
	w, b   backend.Buf // values
	dw, db backend.Buf // gradients
	wi     int         // tensor index of the weight; bias is wi+1
}

func (n *Net) layer(g backend.ConvGeom, act backend.Activation, wi int) layer {
	return layer{g: g, act: act, w: n.Param(wi), b: n.Param(wi + 1), dw: n.Grad(wi), db: n.Grad(wi + 1), wi: wi}
}

// actBackward turns dy, the gradient of the layer's activated output y,
// into the gradient of its pre-activation output, in place.
func actBackward(b backend.Backend, l layer, y, dy backend.Buf) {
	switch l.act {
	case backend.ActLeakyReLU:
		b.LeakyReLUBackward(y, dy, Slope)
	case backend.ActTanh:
		b.TanhBackward(y, dy)
	case backend.ActSigmoid:
		b.SigmoidBackward(y, dy)
	}
}

// grads records a gradient for the layer's weight and bias.
func (n *Net) grads(l layer) {
	n.markGrad(l.wi)
	n.markGrad(l.wi + 1)
}

// bufSize names a buffer to allocate and its number of values.
type bufSize struct {
	p *backend.Buf
	n int
}

// allocAll allocates the buffers in the order given, so that a network's
// memory layout (and with it, on a GPU, every address and alignment) is the
// same from run to run.
func allocAll(b backend.Backend, what string, bufs []bufSize) error {
	for _, s := range bufs {
		x, err := b.Alloc(s.n)
		if err != nil {
			return fmt.Errorf("model: %s activations (%d values): %w", what, s.n, err)
		}
		*s.p = x
	}
	return nil
}
