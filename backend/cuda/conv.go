package cuda

import (
	"fmt"
	"math"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
)

// A convPlan holds cuDNN's descriptors of one convolution geometry and the
// algorithm chosen for each direction. Algorithms are chosen on first use
// by timing every candidate on scratch buffers (cudnnFind…Ex), so the real
// outputs (which a beta = 1 call accumulates into) are never clobbered;
// the workspace grows to the largest chosen algorithm's need. Both happen
// during the first iteration only (rankAlgos has the rule).
type convPlan struct {
	x, y *cu.TensorDesc
	w    *cu.FilterDesc
	// One convolution descriptor per direction, each carrying the math
	// type its algorithm was chosen with.
	fwdDesc, bdDesc, bfDesc *cu.ConvDesc
	fwd                     cu.ConvFwdAlgo
	bd                      cu.ConvBwdDataAlgo
	bf                      cu.ConvBwdFilterAlgo
	fwdOK, bdOK, bfOK       bool
}

func (p *convPlan) destroy() {
	for _, d := range []*cu.ConvDesc{p.fwdDesc, p.bdDesc, p.bfDesc} {
		if d != nil {
			d.Destroy()
		}
	}
	if p.x != nil {
		p.x.Destroy()
	}
	if p.y != nil {
		p.y.Destroy()
	}
	if p.w != nil {
		p.w.Destroy()
	}
}

// mathType is the cuDNN math of the chosen precision: tensor cores (TF32)
// like PyTorch's default, or plain FMA for exact FP32.
func (b *Backend) mathType() cu.DNNMath {
	if b.opt.Precision == "fp32" {
		return cu.DNNFMAMath
	}
	return cu.DNNTensorOpMath
}

// algoChoice is an algorithm search result and the math type to run it
// with.
type algoChoice struct {
	perf cu.AlgoPerf
	math cu.DNNMath
	// forced: math is not the math type the result was measured with, so
	// cuDNN may lack that variant of the algorithm, and its workspace and
	// speed are unknown.
	forced bool
}

// rankAlgos turns the results of an algorithm search (cuDNN lists them
// fastest first) into the choices to try, best first. Only usable results
// count: status success, and a workspace of at most maxWorkspace bytes.
//
// At TF32 precision (fp32 false) every usable result is a choice, in
// cuDNN's order, with the math type it was measured with: tensor cores
// allowed.
//
// At FP32 precision only results measured with FMA math are accepted, in
// cuDNN's order: FMA is the one math type that rules out TF32.
// CUDNN_DEFAULT_MATH permits TF32 tensor cores on Ampere and later, and
// the tensor-op math types ask for them. If no usable result was measured
// with FMA math, the fallback is every usable algorithm measured with
// another math type, each once, those measured with the default math
// first (on GPUs before Ampere the default is FMA), each in cuDNN's order,
// with FMA math set explicitly (forced): the caller must then ask cuDNN
// for the workspace of the FMA variant and check that it runs, and go on
// to the next choice if it does not.
//
// Deterministic algorithms come before non-deterministic ones (each group
// in the order above): an algorithm whose sums land in a different order
// from run to run (cuDNN's backward ALGO_0 and filter ALGO_3) makes two
// identical runs differ, and Adam's first steps amplify that into
// visibly different training. The simulated GPU showed it: the fixture
// parity flickered with the order its non-deterministic algorithms drew.
func rankAlgos(perfs []cu.AlgoPerf, fp32 bool, maxWorkspace int) []algoChoice {
	out := rankAlgosAnyOrder(perfs, fp32, maxWorkspace)
	var det, nondet []algoChoice
	for _, c := range out {
		if c.perf.Determinism == cu.Deterministic {
			det = append(det, c)
		} else {
			nondet = append(nondet, c)
		}
	}
	return append(det, nondet...)
}

// rankAlgosAnyOrder is rankAlgos without the preference for deterministic
// algorithms.
func rankAlgosAnyOrder(perfs []cu.AlgoPerf, fp32 bool, maxWorkspace int) []algoChoice {
	usable := func(pf cu.AlgoPerf) bool { return pf.OK() && pf.Memory <= uintptr(maxWorkspace) }
	var out []algoChoice
	for _, pf := range perfs {
		if usable(pf) && (!fp32 || pf.MathType == cu.DNNFMAMath) {
			out = append(out, algoChoice{perf: pf, math: pf.MathType})
		}
	}
	if !fp32 || len(out) > 0 {
		return out
	}
	seen := map[int]bool{}
	for _, defaultMath := range []bool{true, false} {
		for _, pf := range perfs {
			if usable(pf) && (pf.MathType == cu.DNNDefaultMath) == defaultMath && !seen[pf.Algo] {
				seen[pf.Algo] = true
				out = append(out, algoChoice{perf: pf, math: cu.DNNFMAMath, forced: true})
			}
		}
	}
	return out
}

// searchWorkspace is the most workspace an algorithm may use (bytes).
const searchWorkspace = 64 << 20

func (b *Backend) plan(op string, g backend.ConvGeom) *convPlan {
	if p, ok := b.convs[g]; ok {
		return p
	}
	if err := g.Validate(); err != nil {
		b.fail(op, err)
		return nil
	}
	p := &convPlan{}
	var err error
	newConv := func() *cu.ConvDesc {
		if err != nil {
			return nil
		}
		var d *cu.ConvDesc
		d, err = cu.NewConv2d(g.Pad, g.Pad, g.Stride, g.Stride, 1, 1, cu.CrossCorrelation, cu.DataFloat, b.mathType())
		return d
	}
	if p.x, err = cu.NewTensor4d(cu.NCHW, cu.DataFloat, g.N, g.C, g.H, g.W); err == nil {
		if p.y, err = cu.NewTensor4d(cu.NCHW, cu.DataFloat, g.N, g.K, g.P, g.Q); err == nil {
			p.w, err = cu.NewFilter4d(cu.NCHW, cu.DataFloat, g.K, g.C, g.R, g.S)
		}
	}
	p.fwdDesc, p.bdDesc, p.bfDesc = newConv(), newConv(), newConv()
	if err != nil {
		p.destroy()
		b.fail(op, fmt.Errorf("descriptors of %v: %w", g, err))
		return nil
	}
	b.convs[g] = p
	return p
}

// scratch allocates temporary buffers for an algorithm search.
func (b *Backend) scratch(sizes ...int) ([]cu.DevicePtr, func(), error) {
	var ptrs []cu.DevicePtr
	free := func() {
		for _, q := range ptrs {
			b.rawFree(q)
		}
	}
	for _, s := range sizes {
		q, err := b.rawAlloc(s)
		if err != nil {
			free()
			return nil, nil, err
		}
		ptrs = append(ptrs, q)
	}
	return ptrs, free, nil
}

// growWorkspace makes the cuDNN workspace at least bytes long.
// The side stream's workspace grows with it.
func (b *Backend) growWorkspace(bytes int) error {
	if bytes <= b.wsSize {
		return nil
	}
	if b.ws != 0 {
		if err := b.stream.Synchronize(); err != nil {
			return err
		}
		if b.side.stream != 0 {
			if err := b.side.stream.Synchronize(); err != nil {
				return err
			}
		}
		b.rawFree(b.ws)
		if b.side.ws != 0 {
			b.rawFree(b.side.ws)
		}
		b.ws, b.side.ws, b.wsSize = 0, 0, 0
	}
	p, err := b.rawAlloc(bytes)
	if err != nil {
		return fmt.Errorf("cuDNN workspace of %d bytes: %w", bytes, err)
	}
	if b.side.stream != 0 {
		q, err := b.rawAlloc(bytes)
		if err != nil {
			b.rawFree(p)
			return fmt.Errorf("the side stream's cuDNN workspace of %d bytes: %w", bytes, err)
		}
		b.side.ws = q
	}
	b.ws, b.wsSize = p, bytes
	return nil
}

// choose picks the first choice of rankAlgos that works, sets its math
// type on d and grows the workspace for it. For a forced choice, try (run
// with d set to the choice's math type) returns the workspace the
// algorithm needs and runs it once on scratch buffers; a choice whose try
// fails, or that needs more than searchWorkspace, is passed over.
func (b *Backend) choose(g backend.ConvGeom, what string, perfs []cu.AlgoPerf, d *cu.ConvDesc, try func(algo int) (int, error)) (cu.AlgoPerf, error) {
	var passed []string
	for _, c := range rankAlgos(perfs, b.opt.Precision == "fp32", searchWorkspace) {
		if err := d.SetMathType(c.math); err != nil {
			return c.perf, err
		}
		need := int(c.perf.Memory)
		if c.forced {
			n, err := try(c.perf.Algo)
			if err == nil && n > searchWorkspace {
				err = fmt.Errorf("needs %d bytes of workspace", n)
			}
			if err != nil {
				passed = append(passed, fmt.Sprintf("algorithm %d (measured with %v, run with %v): %v", c.perf.Algo, c.perf.MathType, c.math, err))
				continue
			}
			need = n
		}
		return c.perf, b.growWorkspace(need)
	}
	err := fmt.Errorf("no %s algorithm for %v at %s precision among %d candidates", what, g, b.opt.Precision, len(perfs))
	if len(passed) > 0 {
		err = fmt.Errorf("%w; passed over: %s", err, strings.Join(passed, "; "))
	}
	return cu.AlgoPerf{}, err
}

// ConvForward computes y = conv(x, w).
func (b *Backend) ConvForward(g backend.ConvGeom, x, w, y backend.Buf) {
	if b.err != nil {
		return
	}
	xp, _ := b.ptr("ConvForward", "x", x, g.XLen())
	wp, _ := b.ptr("ConvForward", "w", w, g.WLen())
	yp, _ := b.ptr("ConvForward", "y", y, g.YLen())
	p := b.plan("ConvForward", g)
	if b.err != nil {
		return
	}
	if !p.fwdOK {
		err := b.withScratch(func(s []cu.DevicePtr) error {
			perfs, err := b.dnn.FindForwardAlgos(p.x, xp, p.w, wp, p.fwdDesc, p.y, s[0], s[1], searchWorkspace)
			if err != nil {
				return err
			}
			pf, err := b.choose(g, "forward", perfs, p.fwdDesc, func(algo int) (int, error) {
				n, err := b.dnn.ForwardWorkspaceSize(p.x, p.w, p.fwdDesc, p.y, cu.ConvFwdAlgo(algo))
				if err != nil || n > searchWorkspace {
					return n, err
				}
				return n, b.dnn.ConvForward(1, p.x, xp, p.w, wp, p.fwdDesc, cu.ConvFwdAlgo(algo), s[1], searchWorkspace, 0, p.y, s[0])
			})
			p.fwd = cu.ConvFwdAlgo(pf.Algo)
			return err
		}, g.YLen()*4, searchWorkspace)
		if err != nil {
			b.fail("ConvForward", err)
			return
		}
		p.fwdOK = true
	}
	b.fail("ConvForward", b.graphs.add(&entry{kind: opConvFwd, plan: p, p: [3]cu.DevicePtr{xp, wp, yp}}))
}

// ConvBackwardData computes dx = convᵀ(dy, w) + beta·dx.
func (b *Backend) ConvBackwardData(g backend.ConvGeom, dy, w, dx backend.Buf, beta float32) {
	if b.err != nil {
		return
	}
	dyp, _ := b.ptr("ConvBackwardData", "dy", dy, g.YLen())
	wp, _ := b.ptr("ConvBackwardData", "w", w, g.WLen())
	dxp, _ := b.ptr("ConvBackwardData", "dx", dx, g.XLen())
	p := b.plan("ConvBackwardData", g)
	if b.err != nil {
		return
	}
	if !p.bdOK {
		err := b.withScratch(func(s []cu.DevicePtr) error {
			perfs, err := b.dnn.FindBackwardDataAlgos(p.w, wp, p.y, dyp, p.bdDesc, p.x, s[0], s[1], searchWorkspace)
			if err != nil {
				return err
			}
			pf, err := b.choose(g, "backward-data", perfs, p.bdDesc, func(algo int) (int, error) {
				n, err := b.dnn.BackwardDataWorkspaceSize(p.w, p.y, p.bdDesc, p.x, cu.ConvBwdDataAlgo(algo))
				if err != nil || n > searchWorkspace {
					return n, err
				}
				return n, b.dnn.ConvBackwardData(1, p.w, wp, p.y, dyp, p.bdDesc, cu.ConvBwdDataAlgo(algo), s[1], searchWorkspace, 0, p.x, s[0])
			})
			p.bd = cu.ConvBwdDataAlgo(pf.Algo)
			return err
		}, g.XLen()*4, searchWorkspace)
		if err != nil {
			b.fail("ConvBackwardData", err)
			return
		}
		p.bdOK = true
	}
	b.fail("ConvBackwardData", b.graphs.add(&entry{kind: opConvBwdData, plan: p, p: [3]cu.DevicePtr{dyp, wp, dxp}, v: math.Float32bits(beta)}))
}

// ConvBackwardFilter computes dw = Σ dy ⋆ x + beta·dw.
func (b *Backend) ConvBackwardFilter(g backend.ConvGeom, x, dy, dw backend.Buf, beta float32) {
	if b.err != nil {
		return
	}
	xp, _ := b.ptr("ConvBackwardFilter", "x", x, g.XLen())
	dyp, _ := b.ptr("ConvBackwardFilter", "dy", dy, g.YLen())
	dwp, _ := b.ptr("ConvBackwardFilter", "dw", dw, g.WLen())
	p := b.plan("ConvBackwardFilter", g)
	if b.err != nil {
		return
	}
	if !p.bfOK {
		err := b.withScratch(func(s []cu.DevicePtr) error {
			perfs, err := b.dnn.FindBackwardFilterAlgos(p.x, xp, p.y, dyp, p.bfDesc, p.w, s[0], s[1], searchWorkspace)
			if err != nil {
				return err
			}
			pf, err := b.choose(g, "backward-filter", perfs, p.bfDesc, func(algo int) (int, error) {
				n, err := b.dnn.BackwardFilterWorkspaceSize(p.x, p.y, p.bfDesc, p.w, cu.ConvBwdFilterAlgo(algo))
				if err != nil || n > searchWorkspace {
					return n, err
				}
				return n, b.dnn.ConvBackwardFilter(1, p.x, xp, p.y, dyp, p.bfDesc, cu.ConvBwdFilterAlgo(algo), s[1], searchWorkspace, 0, p.w, s[0])
			})
			p.bf = cu.ConvBwdFilterAlgo(pf.Algo)
			return err
		}, g.WLen()*4, searchWorkspace)
		if err != nil {
			b.fail("ConvBackwardFilter", err)
			return
		}
		p.bfOK = true
	}
	b.fail("ConvBackwardFilter", b.graphs.add(&entry{kind: opConvBwdFilter, plan: p, p: [3]cu.DevicePtr{xp, dyp, dwp}, v: math.Float32bits(beta)}))
}

// withScratch runs fn with temporary device buffers of the given byte
// sizes (output, workspace), after the queued work that fills its inputs.
func (b *Backend) withScratch(fn func([]cu.DevicePtr) error, sizes ...int) error {
	if err := b.stream.Synchronize(); err != nil {
		return err
	}
	s, free, err := b.scratch(sizes...)
	if err != nil {
		return fmt.Errorf("scratch buffers for the algorithm search: %w", err)
	}
	defer free()
	if err := fn(s); err != nil {
		return err
	}
	return b.stream.Synchronize()
}
