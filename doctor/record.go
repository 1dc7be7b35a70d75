package doctor

import (
	"fmt"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// call is one op the model issued, with the arguments that shape it (sizes,
// geometry, scalars, which optional operands were nil). The op-parity
// check replays every distinct call on fresh random inputs.
type call struct {
	op     string
	g      backend.ConvGeom
	n      int // length of the main operand
	nch    [3]int
	beta   float32
	act    backend.Activation
	slope  float32
	a      [3]float32
	nilArg [2]bool // optional operands that were nil
	per    bool
	target float32
	key    rng.Key
	occ    backend.Occlusion
	segs   []backend.AdamSegment
	hyper  backend.AdamHyper
	size   int // total length of Adam's buffers
}

// sig identifies a call up to its random keys and Adam step counts.
func (c call) sig() string {
	switch c.op {
	case "RandNormal", "RandUniform":
		return fmt.Sprintf("%s %d", c.op, c.n)
	case "OcclusionMask":
		o := c.occ
		o.Key = rng.Key{}
		return fmt.Sprintf("%s %+v", c.op, o)
	case "Adam":
		s := fmt.Sprintf("Adam %d %+v", c.size, c.hyper)
		for _, g := range c.segs {
			s += fmt.Sprintf(" %d:%d", g.Off, g.Len)
		}
		return s
	}
	return fmt.Sprintf("%s %+v %d %v %v %v %v %v %v %v %v", c.op, c.g, c.n, c.nch, c.beta, c.act, c.slope, c.a, c.nilArg, c.per, c.target)
}

// nullBuf is a Buf of the recorder: a length, no memory.
type nullBuf struct{ n int }

func (b nullBuf) Len() int { return b.n }
func (b nullBuf) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("doctor: Slice(%d, %d) of a buffer of %d values", off, n, b.n))
	}
	return nullBuf{n}
}

func lenOf(b backend.Buf) int {
	if b == nil {
		return 0
	}
	return b.Len()
}

// recorder is a backend that computes nothing and records every op, so
// that the op-parity check knows exactly which ops the model issues, with
// which shapes.
type recorder struct {
	calls []call
}

func (r *recorder) add(c call) { r.calls = append(r.calls, c) }

func (r *recorder) Name() string                     { return "recorder" }
func (r *recorder) Alloc(n int) (backend.Buf, error) { return nullBuf{n}, nil }
func (r *recorder) Free(backend.Buf)                 {}
func (r *recorder) Upload(dst backend.Buf, src []float32) {
	r.add(call{op: "Upload", n: len(src)})
}
func (r *recorder) Download(dst []float32, src backend.Buf) {
	r.add(call{op: "Download", n: len(dst)})
}
func (r *recorder) Copy(dst, src backend.Buf) { r.add(call{op: "Copy", n: lenOf(src)}) }
func (r *recorder) Fill(dst backend.Buf, v float32) {
	r.add(call{op: "Fill", n: lenOf(dst), a: [3]float32{v}})
}
func (r *recorder) ConvForward(g backend.ConvGeom, x, w, y backend.Buf) {
	r.add(call{op: "ConvForward", g: g})
}
func (r *recorder) ConvBackwardData(g backend.ConvGeom, dy, w, dx backend.Buf, beta float32) {
	r.add(call{op: "ConvBackwardData", g: g, beta: beta})
}
func (r *recorder) ConvBackwardFilter(g backend.ConvGeom, x, dy, dw backend.Buf, beta float32) {
	r.add(call{op: "ConvBackwardFilter", g: g, beta: beta})
}
func (r *recorder) BiasAdd(y, b backend.Buf, n, c, hw int) {
	r.add(call{op: "BiasAdd", nch: [3]int{n, c, hw}})
}
func (r *recorder) BiasAct(y, b backend.Buf, n, c, hw int, act backend.Activation, slope float32) {
	r.add(call{op: "BiasAct", nch: [3]int{n, c, hw}, act: act, slope: slope})
}
func (r *recorder) BiasGrad(dy, db backend.Buf, n, c, hw int, beta float32) {
	r.add(call{op: "BiasGrad", nch: [3]int{n, c, hw}, beta: beta})
}
func (r *recorder) LeakyReLU(x backend.Buf, slope float32) {
	r.add(call{op: "LeakyReLU", n: lenOf(x), slope: slope})
}
func (r *recorder) LeakyReLUBackward(y, dy backend.Buf, slope float32) {
	r.add(call{op: "LeakyReLUBackward", n: lenOf(y), slope: slope})
}
func (r *recorder) Tanh(x backend.Buf)             { r.add(call{op: "Tanh", n: lenOf(x)}) }
func (r *recorder) TanhBackward(y, dy backend.Buf) { r.add(call{op: "TanhBackward", n: lenOf(y)}) }
func (r *recorder) Sigmoid(x backend.Buf)          { r.add(call{op: "Sigmoid", n: lenOf(x)}) }
func (r *recorder) SigmoidBackward(y, dy backend.Buf) {
	r.add(call{op: "SigmoidBackward", n: lenOf(y)})
}
func (r *recorder) Scale(x backend.Buf, a float32) {
	r.add(call{op: "Scale", n: lenOf(x), a: [3]float32{a}})
}
func (r *recorder) Axpby(y, x backend.Buf, a, b float32) {
	r.add(call{op: "Axpby", n: lenOf(x), a: [3]float32{a, b}})
}
func (r *recorder) LatentMix(dst, z, zOld, noise backend.Buf, a, b, c float32) {
	r.add(call{op: "LatentMix", n: lenOf(z), a: [3]float32{a, b, c}, nilArg: [2]bool{zOld == nil, noise == nil}})
}
func (r *recorder) ApplyMask(x, mask backend.Buf, n, c, hw int, perImage bool) {
	r.add(call{op: "ApplyMask", nch: [3]int{n, c, hw}, per: perImage})
}
func (r *recorder) MSE(a, b, loss, grad backend.Buf, scale float32) {
	r.add(call{op: "MSE", n: lenOf(a), a: [3]float32{scale}, nilArg: [2]bool{grad == nil}})
}
func (r *recorder) BCE(d backend.Buf, target float32, loss, grad backend.Buf, scale float32) {
	r.add(call{op: "BCE", n: lenOf(d), target: target, a: [3]float32{scale}, nilArg: [2]bool{grad == nil}})
}
func (r *recorder) KLBatch(z backend.Buf, n, nz int, loss, grad backend.Buf, scale, beta float32) {
	r.add(call{op: "KLBatch", nch: [3]int{n, nz}, a: [3]float32{scale}, beta: beta, nilArg: [2]bool{grad == nil}})
}
func (r *recorder) Mean(x, out backend.Buf) { r.add(call{op: "Mean", n: lenOf(x)}) }
func (r *recorder) RowNormMean(x backend.Buf, rows, cols int, out backend.Buf) {
	r.add(call{op: "RowNormMean", nch: [3]int{rows, cols}})
}
func (r *recorder) RandNormal(dst backend.Buf, k rng.Key) {
	r.add(call{op: "RandNormal", n: lenOf(dst), key: k})
}
func (r *recorder) RandUniform(dst backend.Buf, k rng.Key) {
	r.add(call{op: "RandUniform", n: lenOf(dst), key: k})
}
func (r *recorder) OcclusionMask(mask backend.Buf, o backend.Occlusion) {
	r.add(call{op: "OcclusionMask", occ: o})
}
func (r *recorder) Adam(p, g, m, v backend.Buf, segs []backend.AdamSegment, h backend.AdamHyper) {
	r.add(call{op: "Adam", size: lenOf(p), segs: append([]backend.AdamSegment(nil), segs...), hyper: h})
}
func (r *recorder) Sync() error  { return nil }
func (r *recorder) Err() error   { return nil }
func (r *recorder) Close() error { return nil }

var _ backend.Backend = (*recorder)(nil)

// modelCalls returns the distinct ops two training iterations of a model
// of spec issue (the first of an epoch and the next), in the order first
// issued, after its initialisation.
func modelCalls(spec model.Spec, cond conditions.Condition, opt phases.Options) ([]call, error) {
	r := &recorder{}
	p, err := phases.New(r, spec, cond, opt)
	if err != nil {
		return nil, err
	}
	x, _ := r.Alloc(spec.Batch * spec.C * model.ImageSize * model.ImageSize)
	for it := uint64(0); it < 3; it++ {
		p.Iterate(x, it, it == 0)
		if _, err := p.Stats(); err != nil {
			return nil, err
		}
	}
	return distinct(r.calls), nil
}

// distinct keeps the first call of each signature.
func distinct(calls []call) []call {
	seen := map[string]bool{}
	var out []call
	for _, c := range calls {
		s := c.sig()
		if !seen[s] {
			seen[s] = true
			out = append(out, c)
		}
	}
	return out
}
