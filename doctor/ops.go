package doctor

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// streamDoctor is the random-number stream of the op-parity inputs (apart
// from the streams of training, internal/rng).
const streamDoctor uint32 = 0xd0c

// output is one result tensor of an op case.
type output struct {
	name string
	v    []float32
}

// opCase is one op on one shape, with its inputs drawn: run executes it on
// a backend and returns its outputs.
type opCase struct {
	check string   // the op the check is named after
	ops   []string // the Backend methods it exercises
	what  string   // the shape, e.g. "n=16384" or a geometry
	class class
	hyper *backend.AdamHyper // Adam's, for its limit against float64
	run   func(b backend.Backend) ([]output, error)
}

// limit is the case's limit at a convolution precision, against a
// reference that computes in float64 or not.
func (c *opCase) limit(precision string, ref64 bool) float64 {
	if c.hyper != nil && ref64 {
		return AdamVsFloat64(*c.hyper)
	}
	return limit(c.class, precision, ref64)
}

// inputs draws the random inputs of the cases.
type inputs struct {
	seed uint64
	seq  uint64
}

// sub returns a generator of its own range of sequences (2^20 of them).
func (in *inputs) sub() *inputs {
	in.seq += 1 << 20
	return &inputs{seed: in.seed, seq: in.seq}
}

func (in *inputs) key() rng.Key {
	in.seq++
	return rng.Key{Seed: in.seed, Stream: streamDoctor, Seq: in.seq}
}

func (in *inputs) normal(n int, scale float32) []float32 {
	v := make([]float32, n)
	rng.FillNormal(v, in.key())
	if scale != 1 {
		for i := range v {
			v[i] *= scale
		}
	}
	return v
}

func (in *inputs) uniform(n int) []float32 {
	v := make([]float32, n)
	rng.FillUniform(v, in.key())
	return v
}

// withZeros sets every 17th value to zero (LeakyReLU's boundary).
func withZeros(v []float32) []float32 {
	for i := 0; i < len(v); i += 17 {
		v[i] = 0
	}
	return v
}

func mapped(v []float32, f func(float64) float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(f(float64(x)))
	}
	return out
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// run holds the buffers of one execution of a case on one backend.
type run struct {
	b    backend.Backend
	bufs []backend.Buf
	outs []struct {
		name string
		buf  backend.Buf
	}
	err error
}

func (r *run) alloc(n int) backend.Buf {
	x, err := r.b.Alloc(n)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		x, _ = r.b.Alloc(0)
		return x
	}
	r.bufs = append(r.bufs, x)
	return x
}

// in returns a buffer holding v.
func (r *run) in(v []float32) backend.Buf {
	x := r.alloc(len(v))
	if r.err == nil {
		r.b.Upload(x, v)
	}
	return x
}

// out marks x as a result, downloaded by finish.
func (r *run) out(name string, x backend.Buf) {
	r.outs = append(r.outs, struct {
		name string
		buf  backend.Buf
	}{name, x})
}

// finish downloads the results, waits for the device and frees the buffers.
func (r *run) finish() ([]output, error) {
	var res []output
	if r.err == nil {
		for _, o := range r.outs {
			v := make([]float32, o.buf.Len())
			r.b.Download(v, o.buf)
			res = append(res, output{o.name, v})
		}
	}
	err := r.b.Sync()
	for _, x := range r.bufs {
		r.b.Free(x)
	}
	if r.err != nil {
		return nil, r.err
	}
	return res, err
}

// exec runs f on b with a fresh run and returns the results.
func exec(b backend.Backend, f func(r *run)) ([]output, error) {
	r := &run{b: b}
	f(r)
	return r.finish()
}

func geomString(g backend.ConvGeom) string {
	return fmt.Sprintf("x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d", g.N, g.C, g.H, g.W, g.K, g.C, g.R, g.S, g.Stride, g.Pad)
}

// extraCalls are calls the model does not issue but the check covers: the
// ops no training iteration uses (RandUniform), other scalars, and sizes
// that are not multiples of a block (1, 257, 100003), where kernels handle
// their last partial block.
func extraCalls(batch int) []call {
	var out []call
	for _, n := range []int{1, 257, 100003} {
		out = append(out,
			call{op: "Upload", n: n}, call{op: "Copy", n: n}, call{op: "Fill", n: n, a: [3]float32{-1.5}},
			call{op: "LeakyReLU", n: n, slope: model.Slope}, call{op: "LeakyReLUBackward", n: n, slope: model.Slope},
			call{op: "Tanh", n: n}, call{op: "TanhBackward", n: n}, call{op: "Sigmoid", n: n}, call{op: "SigmoidBackward", n: n},
			call{op: "Scale", n: n, a: [3]float32{0.37}}, call{op: "Axpby", n: n, a: [3]float32{0.5, -2}},
			call{op: "LatentMix", n: n, a: [3]float32{0.25, 0.25, 0.5}},
			call{op: "MSE", n: n, a: [3]float32{0.7}}, call{op: "Mean", n: n},
			call{op: "RandNormal", n: n, key: rng.Key{Stream: rng.StreamREMNoise}},
			call{op: "RandUniform", n: n, key: rng.Key{Stream: rng.StreamREMNoise}},
		)
	}
	if batch >= 2 {
		out = append(out, call{op: "BCE", n: batch, target: 1, a: [3]float32{1.3}}, call{op: "BCE", n: batch, target: 0, a: [3]float32{1.3}})
	}
	for _, act := range []backend.Activation{backend.ActNone, backend.ActLeakyReLU, backend.ActTanh, backend.ActSigmoid} {
		out = append(out, call{op: "BiasAct", nch: [3]int{3, 5, 7}, act: act, slope: model.Slope})
	}
	out = append(out,
		call{op: "BiasAdd", nch: [3]int{3, 5, 7}}, call{op: "BiasGrad", nch: [3]int{3, 5, 7}, beta: 1},
		call{op: "ApplyMask", nch: [3]int{3, 5, 7}}, call{op: "ApplyMask", nch: [3]int{3, 5, 7}, per: true},
		call{op: "KLBatch", nch: [3]int{3, 7}, a: [3]float32{1}, beta: 1},
		call{op: "RowNormMean", nch: [3]int{3, 35}},
		call{op: "OcclusionMask", occ: backend.Occlusion{H: model.ImageSize, W: model.ImageSize, Masks: max(batch, 1), P: -1, MaxTile: 8, Key: rng.Key{Stream: rng.StreamNREMMask}}},
		call{op: "OcclusionMask", occ: backend.Occlusion{H: model.ImageSize, W: model.ImageSize, Masks: 16, P: 0.3, Tile: 4, Key: rng.Key{Stream: rng.StreamNREMMask}}},
		call{op: "OcclusionMask", occ: backend.Occlusion{H: 17, W: 9, Masks: 3, P: 0.5, MaxTile: 5, Key: rng.Key{Stream: rng.StreamNREMMask}}},
		call{op: "Adam", size: 10000, segs: []backend.AdamSegment{{Off: 0, Len: 3000, Step: 1}, {Off: 5000, Len: 4999, Step: 7}},
			hyper: backend.AdamHyper{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}},
	)
	return out
}

// convCalls returns, for every convolution geometry among calls, all three
// convolution ops with beta 0, and the calls with beta 1 the model makes.
func convCalls(calls []call) []call {
	var out []call
	seen := map[backend.ConvGeom]bool{}
	for _, c := range calls {
		if !strings.HasPrefix(c.op, "Conv") || seen[c.g] {
			continue
		}
		seen[c.g] = true
		out = append(out, call{op: "ConvForward", g: c.g}, call{op: "ConvBackwardData", g: c.g}, call{op: "ConvBackwardFilter", g: c.g})
	}
	for _, c := range calls {
		if strings.HasPrefix(c.op, "Conv") && c.beta != 0 {
			out = append(out, c)
		}
	}
	return out
}

// buildCases returns the op-parity cases of the models of specs: every
// distinct op the model issues in training, all three convolution
// directions for each of its layer geometries, and extraCalls.
func buildCases(o *Options) ([]opCase, error) {
	var calls []call
	for _, s := range o.Specs {
		c, err := modelCalls(s, o.Condition, o.Phases)
		if err != nil {
			return nil, fmt.Errorf("the ops of the model %+v: %w", s, err)
		}
		calls = append(calls, c...)
	}
	calls = append(calls, convCalls(calls)...)
	calls = append(calls, extraCalls(o.Specs[0].Batch)...)
	calls = distinct(calls)
	in := &inputs{seed: o.Phases.Seed}
	var cases []opCase
	for _, c := range calls {
		if oc, ok := caseOf(c, in); ok {
			cases = append(cases, oc)
		}
	}
	sort.SliceStable(cases, func(i, j int) bool { return opRank(cases[i].check) < opRank(cases[j].check) })
	return cases, nil
}

// opOrder is the order the checks are reported in (backend.Backend's).
var opOrder = []string{
	"Upload", "Download", "Copy", "Fill",
	"ConvForward", "ConvBackwardData", "ConvBackwardFilter", "BiasAdd", "BiasAct", "BiasGrad",
	"LeakyReLU", "LeakyReLUBackward", "Tanh", "TanhBackward", "Sigmoid", "SigmoidBackward",
	"Scale", "Axpby", "LatentMix", "ApplyMask",
	"MSE", "BCE", "KLBatch", "Mean", "RowNormMean",
	"RandNormal", "RandUniform", "OcclusionMask", "Adam",
}

func opRank(op string) int {
	for i, o := range opOrder {
		if o == op {
			return i
		}
	}
	return len(opOrder)
}

// notOps are the Backend methods no case is about: every case allocates,
// frees, synchronises and reads errors, and Name and Close are not
// computations.
var notOps = map[string]string{
	"Name":  "describes the backend",
	"Alloc": "every case allocates its buffers",
	"Free":  "every case frees its buffers",
	"Sync":  "every case waits for the device and reads its error",
	"Err":   "the error Sync returns",
	"Close": "releases the backend",
}

// caseOf turns a call into a case. Its inputs are drawn from a range of
// random-number sequences of its own each time it runs, so every backend
// sees the same values and no case holds memory between runs.
func caseOf(c call, in *inputs) (opCase, bool) {
	n := c.n
	nch := c.nch[0] * c.nch[1] * max(c.nch[2], 1)
	shape := fmt.Sprintf("[%d,%d,%d]", c.nch[0], c.nch[1], c.nch[2])
	oc := opCase{check: c.op, ops: []string{c.op}, what: fmt.Sprintf("n=%d", n), class: classExact}
	base := in.sub()
	var body func(g *inputs, b backend.Backend, r *run)
	switch c.op {
	case "Upload", "Download":
		oc.ops = []string{"Upload", "Download"}
		body = func(g *inputs, b backend.Backend, r *run) { r.out("x", r.in(g.normal(n, 1))) }
	case "Copy":
		body = func(g *inputs, b backend.Backend, r *run) {
			dst := r.alloc(n)
			b.Copy(dst, r.in(g.normal(n, 1)))
			r.out("dst", dst)
		}
	case "Fill":
		oc.what += fmt.Sprintf(" v=%g", c.a[0])
		body = func(g *inputs, b backend.Backend, r *run) {
			dst := r.in(g.normal(n, 1))
			b.Fill(dst, c.a[0])
			r.out("dst", dst)
		}
	case "ConvForward", "ConvBackwardData", "ConvBackwardFilter":
		geom, beta := c.g, c.beta
		oc.class = classConv
		oc.what = geomString(geom)
		if c.op != "ConvForward" {
			oc.what += fmt.Sprintf(" beta=%g", beta)
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			x, w, y := r.in(g.normal(geom.XLen(), 1)), r.in(g.normal(geom.WLen(), 1)), r.in(g.normal(geom.YLen(), 1))
			switch c.op {
			case "ConvForward":
				b.ConvForward(geom, x, w, y) // y's values are overwritten
				r.out("y", y)
			case "ConvBackwardData":
				b.ConvBackwardData(geom, y, w, x, beta)
				r.out("dx", x)
			default:
				b.ConvBackwardFilter(geom, x, y, w, beta)
				r.out("dw", w)
			}
		}
	case "BiasAdd", "BiasAct":
		nn, ch, hw := c.nch[0], c.nch[1], c.nch[2]
		oc.what = shape
		if c.op == "BiasAct" {
			oc.what += " " + [...]string{"none", "LeakyReLU", "tanh", "sigmoid"}[c.act]
			if c.act == backend.ActTanh || c.act == backend.ActSigmoid {
				oc.class = classRounded
			}
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			y, bias := r.in(g.normal(nch, 1)), r.in(g.normal(ch, 1))
			if c.op == "BiasAdd" {
				b.BiasAdd(y, bias, nn, ch, hw)
			} else {
				b.BiasAct(y, bias, nn, ch, hw, c.act, c.slope)
			}
			r.out("y", y)
		}
	case "BiasGrad":
		nn, ch, hw := c.nch[0], c.nch[1], c.nch[2]
		oc.class, oc.what = classReduction, fmt.Sprintf("%s beta=%g", shape, c.beta)
		body = func(g *inputs, b backend.Backend, r *run) {
			dy, db := r.in(g.normal(nch, 1)), r.in(g.normal(ch, 1))
			b.BiasGrad(dy, db, nn, ch, hw, c.beta)
			r.out("db", db)
		}
	case "LeakyReLU", "Tanh", "Sigmoid", "Scale":
		if c.op == "Tanh" || c.op == "Sigmoid" {
			oc.class = classRounded
		}
		if c.op == "Scale" {
			oc.what += fmt.Sprintf(" a=%g", c.a[0])
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			x := r.in(withZeros(g.normal(n, 2)))
			switch c.op {
			case "LeakyReLU":
				b.LeakyReLU(x, c.slope)
			case "Tanh":
				b.Tanh(x)
			case "Sigmoid":
				b.Sigmoid(x)
			default:
				b.Scale(x, c.a[0])
			}
			r.out("x", x)
		}
	case "LeakyReLUBackward", "TanhBackward", "SigmoidBackward":
		if c.op != "LeakyReLUBackward" {
			oc.class = classReduction
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			yv, dy := g.normal(n, 1), r.in(g.normal(n, 1))
			switch c.op {
			case "LeakyReLUBackward":
				b.LeakyReLUBackward(r.in(withZeros(yv)), dy, c.slope)
			case "TanhBackward":
				b.TanhBackward(r.in(mapped(yv, math.Tanh)), dy)
			default:
				b.SigmoidBackward(r.in(mapped(yv, sigmoid)), dy)
			}
			r.out("dy", dy)
		}
	case "Axpby":
		oc.what += fmt.Sprintf(" a=%g b=%g", c.a[0], c.a[1])
		body = func(g *inputs, b backend.Backend, r *run) {
			x, y := r.in(g.normal(n, 1)), r.in(g.normal(n, 1))
			b.Axpby(y, x, c.a[0], c.a[1])
			r.out("y", y)
		}
	case "LatentMix":
		oc.what += fmt.Sprintf(" a=%g b=%g c=%g", c.a[0], c.a[1], c.a[2])
		if c.nilArg[0] {
			oc.what += " no older memory"
		}
		if c.nilArg[1] {
			oc.what += " no noise"
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			z, zo, ns := r.in(g.normal(n, 1)), r.in(g.normal(n, 1)), r.in(g.normal(n, 1))
			if c.nilArg[0] {
				zo = nil
			}
			if c.nilArg[1] {
				ns = nil
			}
			dst := r.alloc(n)
			b.LatentMix(dst, z, zo, ns, c.a[0], c.a[1], c.a[2])
			r.out("dst", dst)
		}
	case "ApplyMask":
		nn, ch, hw, per := c.nch[0], c.nch[1], c.nch[2], c.per
		mn := hw
		if per {
			mn = nn * hw
		}
		oc.what = fmt.Sprintf("%s per-image=%v", shape, per)
		body = func(g *inputs, b backend.Backend, r *run) {
			x, mask := r.in(g.normal(nch, 1)), g.uniform(mn)
			for i, u := range mask {
				mask[i] = float32(math.Round(float64(u)))
			}
			b.ApplyMask(x, r.in(mask), nn, ch, hw, per)
			r.out("x", x)
		}
	case "MSE", "BCE":
		oc.class = classRounded
		if c.op == "BCE" {
			oc.what += fmt.Sprintf(" target=%g", c.target)
		}
		oc.what += fmt.Sprintf(" scale=%g grad=%v", c.a[0], !c.nilArg[0])
		body = func(g *inputs, b backend.Backend, r *run) {
			loss := r.alloc(1)
			var grad backend.Buf
			if !c.nilArg[0] {
				grad = r.alloc(n)
				r.out("grad", grad)
			}
			if c.op == "MSE" {
				b.MSE(r.in(g.normal(n, 1)), r.in(g.normal(n, 1)), loss, grad, c.a[0])
			} else {
				d := mapped(g.normal(n, 2), sigmoid)
				if n >= 2 {
					d[0], d[n-1] = 0, 1 // the clamps of the log and of the gradient's denominator
				}
				b.BCE(r.in(d), c.target, loss, grad, c.a[0])
			}
			r.out("loss", loss)
		}
	case "KLBatch":
		nn, nz := c.nch[0], c.nch[1]
		oc.class = classReduction
		oc.what = fmt.Sprintf("[%d,%d] scale=%g beta=%g grad=%v", nn, nz, c.a[0], c.beta, !c.nilArg[0])
		body = func(g *inputs, b backend.Backend, r *run) {
			z := g.normal(nn*nz, 0.5)
			for i := range z {
				z[i] += 0.1
			}
			loss := r.alloc(1)
			var grad backend.Buf
			if !c.nilArg[0] {
				grad = r.in(g.normal(nn*nz, 1))
				r.out("grad", grad)
			}
			b.KLBatch(r.in(z), nn, nz, loss, grad, c.a[0], c.beta)
			r.out("loss", loss)
		}
	case "Mean", "RowNormMean":
		rows, cols := c.nch[0], c.nch[1]
		oc.class = classReduction
		if c.op == "RowNormMean" {
			oc.what, n = fmt.Sprintf("[%d,%d]", rows, cols), rows*cols
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			x, out := r.in(g.normal(n, 1)), r.alloc(1)
			if c.op == "Mean" {
				b.Mean(x, out)
			} else {
				b.RowNormMean(x, rows, cols, out)
			}
			r.out("mean", out)
		}
	case "RandNormal", "RandUniform":
		if c.op == "RandNormal" {
			oc.class = classRounded
		}
		body = func(g *inputs, b backend.Backend, r *run) {
			// The iteration's stream at a fresh sequence number, and a key
			// whose every word matters.
			for i, k := range []rng.Key{
				{Seed: g.seed, Stream: c.key.Stream, Seq: c.key.Seq + g.key().Seq},
				{Seed: g.seed + 1<<40, Stream: 9, Seq: 1<<33 + 5},
			} {
				dst := r.alloc(n)
				if c.op == "RandNormal" {
					b.RandNormal(dst, k)
				} else {
					b.RandUniform(dst, k)
				}
				r.out(fmt.Sprintf("key %d", i), dst)
			}
		}
	case "OcclusionMask":
		o := c.occ
		oc.what = fmt.Sprintf("%d×%dx%d p=%g tile=%d max tile=%d", o.Masks, o.H, o.W, o.P, o.Tile, o.MaxTile)
		body = func(g *inputs, b backend.Backend, r *run) {
			for s := 0; s < 8; s++ {
				o := o
				o.Key = rng.Key{Seed: g.seed, Stream: o.Key.Stream, Seq: g.key().Seq}
				m := r.alloc(o.Masks * o.H * o.W)
				b.OcclusionMask(m, o)
				r.out(fmt.Sprintf("mask %d", s), m)
			}
		}
	case "Adam":
		size, segs, h := c.size, c.segs, c.hyper
		oc.what = fmt.Sprintf("%d values, %d tensors, 3 steps", size, len(segs))
		oc.hyper = &h
		body = func(g *inputs, b backend.Backend, r *run) {
			p, m, v := r.in(g.normal(size, 0.02)), r.alloc(size), r.alloc(size)
			for i := 0; i < 3; i++ {
				s := make([]backend.AdamSegment, len(segs))
				for j, sg := range segs {
					s[j] = backend.AdamSegment{Off: sg.Off, Len: sg.Len, Step: sg.Step + i}
				}
				b.Adam(p, r.in(g.normal(size, 1e-3)), m, v, s, h)
			}
			r.out("p", p)
			r.out("m", m)
			r.out("v", v)
		}
	default:
		return oc, false
	}
	oc.run = func(b backend.Backend) ([]output, error) {
		g := *base
		return exec(b, func(r *run) { body(&g, b, r) })
	}
	return oc, true
}
