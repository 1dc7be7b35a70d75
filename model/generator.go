package model

import "github.com/pad-dreaming/pad/backend"

// Generator is PAD's G: z reshaped to nz×1×1, then four transposed
// convolutions up to the image.
//
//	tconv1.0  nz → 4nf,  1→4,   stride 1, pad 0, LeakyReLU(0.2)
//	tconv2.0  4nf → 2nf, 4→8,   stride 2, pad 1, LeakyReLU(0.2)
//	tconv3.0  2nf → nf,  8→16,  stride 2, pad 1, LeakyReLU(0.2)
//	tconv4.0  nf → C,    16→32, stride 2, pad 1, tanh
//
// Each transposed convolution is described by the convolution it is the
// adjoint of (backend.ConvGeom): its forward pass is that convolution's
// backward-data, its weight [in, out, 4, 4] is that convolution's
// [K, C, R, S].
type Generator struct {
	Net
	Spec Spec
	b    backend.Backend

	t1, t2, t3, t4 layer

	H1, H2, H3 backend.Buf // activations after LeakyReLU
	Out        backend.Buf // images in (−1, 1) [N, C, 32, 32]

	// Gradients. A phase writes ∂L/∂Out into DOut before Backward; Backward
	// writes ∂L/∂z into DZ when asked.
	DOut, DZ      backend.Buf
	dH1, dH2, dH3 backend.Buf
}

// NewGenerator allocates G's parameters and activations for spec.
func NewGenerator(b backend.Backend, s Spec) (*Generator, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{Spec: s, b: b}
	g.Prefix = "G"
	n, c, nf, nz := s.Batch, s.C, s.NF, s.NZ
	// PyTorch's ConvTranspose2d bias bound uses weight.size(1)·kh·kw, the
	// layer's output channels.
	w1 := g.add("tconv1.0.weight", []int{nz, 4 * nf, 4, 4}, false, 0)
	g.add("tconv1.0.bias", []int{4 * nf}, true, 4*nf*16)
	w2 := g.add("tconv2.0.weight", []int{4 * nf, 2 * nf, 4, 4}, false, 0)
	g.add("tconv2.0.bias", []int{2 * nf}, true, 2*nf*16)
	w3 := g.add("tconv3.0.weight", []int{2 * nf, nf, 4, 4}, false, 0)
	g.add("tconv3.0.bias", []int{nf}, true, nf*16)
	w4 := g.add("tconv4.0.weight", []int{nf, c, 4, 4}, false, 0)
	g.add("tconv4.0.bias", []int{c}, true, c*16)
	if err := g.alloc(b); err != nil {
		return nil, err
	}
	g.t1 = g.layer(backend.NewConv(n, 4*nf, 4, 4, nz, 4, 1, 0), backend.ActLeakyReLU, w1)
	g.t2 = g.layer(backend.NewConv(n, 2*nf, 8, 8, 4*nf, 4, 2, 1), backend.ActLeakyReLU, w2)
	g.t3 = g.layer(backend.NewConv(n, nf, 16, 16, 2*nf, 4, 2, 1), backend.ActLeakyReLU, w3)
	g.t4 = g.layer(backend.NewConv(n, c, 32, 32, nf, 4, 2, 1), backend.ActTanh, w4)
	err := allocAll(b, "G", []bufSize{
		{&g.H1, g.t1.g.XLen()}, {&g.H2, g.t2.g.XLen()}, {&g.H3, g.t3.g.XLen()}, {&g.Out, g.t4.g.XLen()},
		{&g.dH1, g.t1.g.XLen()}, {&g.dH2, g.t2.g.XLen()}, {&g.dH3, g.t3.g.XLen()},
		{&g.DOut, g.t4.g.XLen()}, {&g.DZ, n * nz},
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// up runs one transposed convolution and its activation:
// y = act(convT(x, w) + bias).
func (g *Generator) up(l layer, x, y backend.Buf) {
	g.b.ConvBackwardData(l.g, x, l.w, y, 0)
	g.b.BiasAct(y, l.b, l.g.N, l.g.C, l.g.H*l.g.W, l.act, Slope)
}

// Forward runs G on the latents z [N, nz], leaving the images in Out.
func (g *Generator) Forward(z backend.Buf) {
	g.up(g.t1, z, g.H1)
	g.up(g.t2, g.H1, g.H2)
	g.up(g.t3, g.H2, g.H3)
	g.up(g.t4, g.H3, g.Out)
}

// Backward propagates the gradient in DOut through G after a Forward on z:
// parameter gradients (overwriting, marking every tensor) and, if wantDZ,
// ∂L/∂z in DZ. DOut is turned into the pre-tanh gradient in place.
func (g *Generator) Backward(z backend.Buf, wantDZ bool) {
	var dz backend.Buf
	if wantDZ {
		dz = g.DZ
	}
	g.backLayer(g.t4, g.H3, g.Out, g.DOut, g.dH3)
	g.backLayer(g.t3, g.H2, g.H3, g.dH3, g.dH2)
	g.backLayer(g.t2, g.H1, g.H2, g.dH2, g.dH1)
	g.backLayer(g.t1, z, g.H1, g.dH1, dz)
	g.joinSide()
}

// backLayer propagates dy, the gradient of the layer's activated output y,
// through the activation (in place) and the transposed convolution:
// parameter gradients, and dx if not nil.
func (g *Generator) backLayer(l layer, x, y, dy, dx backend.Buf) {
	b := g.b
	actBackward(b, l, y, dy)
	// The layer computes y = ConvBackwardData(x, w), so ∂w = Σ x ⋆ dy with
	// dy on the convolution's input side and x on its output side.
	g.beginSide()
	b.ConvBackwardFilter(l.g, dy, x, l.dw, 0)
	b.BiasGrad(dy, l.db, l.g.N, l.g.C, l.g.H*l.g.W, 0)
	g.endSide()
	if dx != nil {
		b.ConvForward(l.g, dy, l.w, dx)
	}
	g.grads(l)
}
