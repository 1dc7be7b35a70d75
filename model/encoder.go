package model

import "github.com/pad-dreaming/pad/backend"

// Encoder is PAD's E: four strided convolutions from the image to the
// latent z, and the discriminator head dis on the third layer's output.
//
//	conv1.0  C → nf,    32→16, pad 1, LeakyReLU(0.2)
//	conv2.0  nf → 2nf,  16→8,  pad 1, LeakyReLU(0.2)
//	conv3.0  2nf → 4nf, 8→4,   pad 1, LeakyReLU(0.2)
//	conv4.0  4nf → nz,  4→1,   pad 0           → z
//	dis.0    4nf → 1,   4→1,   pad 0, sigmoid  → d
type Encoder struct {
	Net
	Spec Spec
	b    backend.Backend

	conv1, conv2, conv3, conv4, dis layer

	A1, A2, A3 backend.Buf // activations after LeakyReLU
	Z          backend.Buf // latent [N, nz]
	D          backend.Buf // discriminator output in (0, 1) [N]

	// Gradients. A phase writes ∂L/∂z into DZ and ∂L/∂d into DD before
	// calling Backward.
	DZ, DD        backend.Buf
	dA1, dA2, dA3 backend.Buf
}

// Heads selects which outputs Encoder.Forward computes.
type Heads int

const (
	Latent Heads = 1 << iota // z (conv4)
	Dis                      // d (dis + sigmoid)
	Both   = Latent | Dis
)

// NewEncoder allocates E's parameters and activations for spec.
func NewEncoder(b backend.Backend, s Spec) (*Encoder, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{Spec: s, b: b}
	e.Prefix = "E"
	n, c, nf, nz := s.Batch, s.C, s.NF, s.NZ
	w1 := e.add("conv1.0.weight", []int{nf, c, 4, 4}, false, 0)
	e.add("conv1.0.bias", []int{nf}, true, c*16)
	w2 := e.add("conv2.0.weight", []int{2 * nf, nf, 4, 4}, false, 0)
	e.add("conv2.0.bias", []int{2 * nf}, true, nf*16)
	w3 := e.add("conv3.0.weight", []int{4 * nf, 2 * nf, 4, 4}, false, 0)
	e.add("conv3.0.bias", []int{4 * nf}, true, 2*nf*16)
	w4 := e.add("conv4.0.weight", []int{nz, 4 * nf, 4, 4}, false, 0)
	e.add("conv4.0.bias", []int{nz}, true, 4*nf*16)
	wd := e.add("dis.0.weight", []int{1, 4 * nf, 4, 4}, false, 0)
	e.add("dis.0.bias", []int{1}, true, 4*nf*16)
	if err := e.alloc(b); err != nil {
		return nil, err
	}
	e.conv1 = e.layer(backend.NewConv(n, c, 32, 32, nf, 4, 2, 1), backend.ActLeakyReLU, w1)
	e.conv2 = e.layer(backend.NewConv(n, nf, 16, 16, 2*nf, 4, 2, 1), backend.ActLeakyReLU, w2)
	e.conv3 = e.layer(backend.NewConv(n, 2*nf, 8, 8, 4*nf, 4, 2, 1), backend.ActLeakyReLU, w3)
	e.conv4 = e.layer(backend.NewConv(n, 4*nf, 4, 4, nz, 4, 2, 0), backend.ActNone, w4)
	e.dis = e.layer(backend.NewConv(n, 4*nf, 4, 4, 1, 4, 2, 0), backend.ActSigmoid, wd)
	err := allocAll(b, "E", []bufSize{
		{&e.A1, e.conv1.g.YLen()}, {&e.A2, e.conv2.g.YLen()}, {&e.A3, e.conv3.g.YLen()},
		{&e.Z, n * nz}, {&e.D, n}, {&e.DZ, n * nz}, {&e.DD, n},
		{&e.dA1, e.conv1.g.YLen()}, {&e.dA2, e.conv2.g.YLen()}, {&e.dA3, e.conv3.g.YLen()},
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// convAct runs one convolution and its activation: y = act(conv(x, w) + bias).
func (e *Encoder) convAct(l layer, x, y backend.Buf) {
	e.b.ConvForward(l.g, x, l.w, y)
	e.b.BiasAct(y, l.b, l.g.N, l.g.K, l.g.P*l.g.Q, l.act, Slope)
}

// Forward runs E on the images x [N, C, 32, 32], computing the heads asked
// for: Z for Latent, D for Dis.
func (e *Encoder) Forward(x backend.Buf, heads Heads) {
	b := e.b
	e.convAct(e.conv1, x, e.A1)
	e.convAct(e.conv2, e.A1, e.A2)
	e.convAct(e.conv3, e.A2, e.A3)
	if heads&Latent != 0 {
		b.ConvForward(e.conv4.g, e.A3, e.conv4.w, e.Z)
		b.BiasAdd(e.Z, e.conv4.b, e.Spec.Batch, e.Spec.NZ, 1)
	}
	if heads&Dis != 0 {
		b.ConvForward(e.dis.g, e.A3, e.dis.w, e.D)
		b.BiasAct(e.D, e.dis.b, e.Spec.Batch, 1, 1, backend.ActSigmoid, 0)
	}
}

// Backward propagates the gradients a phase wrote to DZ (if heads has
// Latent) and DD (if heads has Dis) through E, after a Forward on the same
// x. It writes the parameter gradients (overwriting, and marking which
// tensors received one) and, if dx is not nil, ∂L/∂x to dx. DD is turned
// into the gradient of the pre-sigmoid logit in place.
func (e *Encoder) Backward(x backend.Buf, heads Heads, dx backend.Buf) {
	if heads&Both == 0 {
		return
	}
	b := e.b
	n := e.Spec.Batch
	beta := float32(0)
	if heads&Latent != 0 {
		l := e.conv4
		e.beginSide()
		b.ConvBackwardFilter(l.g, e.A3, e.DZ, l.dw, 0)
		b.BiasGrad(e.DZ, l.db, n, e.Spec.NZ, 1, 0)
		e.endSide()
		b.ConvBackwardData(l.g, e.DZ, l.w, e.dA3, 0)
		e.grads(l)
		beta = 1
	}
	if heads&Dis != 0 {
		l := e.dis
		actBackward(b, l, e.D, e.DD)
		e.beginSide()
		b.ConvBackwardFilter(l.g, e.A3, e.DD, l.dw, 0)
		b.BiasGrad(e.DD, l.db, n, 1, 1, 0)
		e.endSide()
		b.ConvBackwardData(l.g, e.DD, l.w, e.dA3, beta)
		e.grads(l)
	}
	e.backLayer(e.conv3, e.A2, e.A3, e.dA3, e.dA2)
	e.backLayer(e.conv2, e.A1, e.A2, e.dA2, e.dA1)
	e.backLayer(e.conv1, x, e.A1, e.dA1, dx)
	e.joinSide()
}

// backLayer propagates dy, the gradient of the layer's activated output y,
// through the activation (in place) and the convolution: parameter
// gradients, and dx if not nil.
func (e *Encoder) backLayer(l layer, x, y, dy, dx backend.Buf) {
	b := e.b
	actBackward(b, l, y, dy)
	e.beginSide()
	b.ConvBackwardFilter(l.g, x, dy, l.dw, 0)
	b.BiasGrad(dy, l.db, l.g.N, l.g.K, l.g.P*l.g.Q, 0)
	e.endSide()
	if dx != nil {
		b.ConvBackwardData(l.g, dy, l.w, dx, 0)
	}
	e.grads(l)
}
