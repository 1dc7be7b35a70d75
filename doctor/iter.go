package doctor

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// statNames name the numbers an iteration records (phases.Stat order).
var statNames = [phases.NumStats]string{"wake_rec", "kl", "loss_real", "nrem_rec", "loss_fake", "d_x", "d_gz", "latent_norm"}

var sample struct {
	once sync.Once
	set  *dataset.Set
	err  error
}

// sampleSet returns the embedded Fashion-MNIST sample's training split.
func sampleSet() (*dataset.Set, error) {
	sample.once.Do(func() { sample.set, sample.err = dataset.Load("embedded", "", true) })
	return sample.set, sample.err
}

// sampleImages returns mini-batch i of the embedded sample in [-1, 1], its
// grayscale planes repeated to c channels.
func sampleImages(s model.Spec, i int) ([]float32, error) {
	set, err := sampleSet()
	if err != nil {
		return nil, err
	}
	plane := model.ImageSize * model.ImageSize
	x := make([]float32, s.Batch*s.C*plane)
	for j := 0; j < s.Batch; j++ {
		img := set.Image((i*s.Batch + j) % set.N)
		for ch := 0; ch < s.C; ch++ {
			dataset.Scale(x[(j*s.C+ch)*plane:(j*s.C+ch+1)*plane], img[:plane])
		}
	}
	return x, nil
}

// perturbULP moves every value one float32 ulp up or down (alternating):
// the smallest change of the inputs float32 can represent.
func perturbULP(v []float32, salt int) {
	for j, x := range v {
		if (j+salt)%2 == 0 {
			v[j] = math.Nextafter32(x, float32(math.Inf(1)))
		} else {
			v[j] = math.Nextafter32(x, float32(math.Inf(-1)))
		}
	}
}

// snapshot holds every parameter of E and G and every recorded loss, by
// name.
type snapshot struct {
	names []string
	vals  map[string][]float32
}

func (s *snapshot) put(name string, v []float32) {
	if s.vals == nil {
		s.vals = map[string][]float32{}
	}
	if _, ok := s.vals[name]; !ok {
		s.names = append(s.names, name)
	}
	s.vals[name] = v
}

// trained is the record of a short training run.
type trained struct {
	early snapshot // after StepIterations
	late  snapshot // after all iterations
}

type graphStater interface{ GraphStats() cuda.GraphStats }

// trainSteps runs iters iterations (phases.PAD.Iterate) of a model of spec on b
// from o's seed on the images x, recording each iteration's losses, and
// every parameter after StepIterations and at the end. With perturb, the
// initial parameters and the images are moved by one ulp.
func trainSteps(b backend.Backend, o *Options, spec model.Spec, x []float32, iters int, perturb bool) (*trained, error) {
	p, err := phases.New(b, spec, o.Condition, o.Phases)
	if err != nil {
		return nil, err
	}
	nets := []*model.Net{&p.E.Net, &p.G.Net}
	if perturb {
		for k, n := range nets {
			v := make([]float32, n.Size)
			b.Download(v, n.Values)
			perturbULP(v, k)
			b.Upload(n.Values, v)
		}
		x = append([]float32(nil), x...)
		perturbULP(x, 2)
	}
	xb, err := b.Alloc(len(x))
	if err != nil {
		return nil, err
	}
	b.Upload(xb, x)
	tr := &trained{}
	params := func(s *snapshot) {
		for _, n := range nets {
			for i, t := range n.Tensors {
				v := make([]float32, t.Len)
				b.Download(v, n.Param(i))
				s.put(n.Prefix+"."+t.Name, v)
			}
		}
	}
	for it := 0; it < iters; it++ {
		p.Iterate(xb, uint64(it), it == 0)
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", it, err)
		}
		for k, v := range st {
			name := fmt.Sprintf("it%d/%s", it, statNames[k])
			if it < StepIterations {
				tr.early.put(name, []float32{v})
			}
			tr.late.put(name, []float32{v})
		}
		if it == StepIterations-1 {
			params(&tr.early)
		}
	}
	params(&tr.late)
	if err := b.Sync(); err != nil {
		return nil, err
	}
	return tr, nil
}

// openTrain opens a backend with f, trains on it and closes it.
func openTrain(f Factory, o *Options, spec model.Spec, x []float32, iters int, perturb bool) (*trained, error) {
	b, err := f()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return trainSteps(b, o, spec, x, iters, perturb)
}

// tensorErr is one tensor's comparison.
type tensorErr struct {
	name         string
	err, floor   float64
	limit, ratio float64
}

// compareSnapshots compares got with want tensor by tensor, each within
// max(LimitIteration, FloorFactor·floor), floor being its difference
// between got and alt (a run from inputs one ulp away).
func compareSnapshots(got, want, alt *snapshot) []tensorErr {
	var out []tensorErr
	for _, name := range want.names {
		e := tensorErr{name: name, err: relErr(got.vals[name], want.vals[name])}
		if alt != nil {
			e.floor = relErr(alt.vals[name], got.vals[name])
		}
		e.limit = math.Max(LimitIteration, FloorFactor*e.floor)
		e.ratio = e.err / e.limit
		out = append(out, e)
	}
	return out
}

// maxDiff returns the largest relative error between two snapshots, the
// tensor it is in, and how many values differ in their bits.
func maxDiff(a, b *snapshot) (worst float64, at string, diffs, values int) {
	for _, name := range b.names {
		e := relErr(a.vals[name], b.vals[name])
		if e > worst || at == "" {
			worst, at = e, name
		}
		diffs += bitDiffs(a.vals[name], b.vals[name])
		values += len(b.vals[name])
	}
	return worst, at, diffs, values
}

// iterations runs the iteration checks: StepIterations on every variant
// of the device against the float64 twin, then the bit-for-bit
// comparisons (replayChecks).
func (rn *runner) iterations() {
	t, o := rn.t, rn.o
	spec := o.Specs[0]
	start := time.Now()
	x, err := sampleImages(spec, 0)
	if err != nil {
		rn.emit(Check{Name: "iterations", Status: Fail, Detail: err.Error()})
		return
	}
	twin, err := openTrain(t.Twin, o, spec, x, StepIterations, false)
	if err != nil {
		rn.emit(Check{Name: "iterations: float64 twin", Status: Fail, Detail: err.Error(), Seconds: time.Since(start).Seconds()})
		return
	}
	variants := t.Variants
	if len(variants) == 0 {
		variants = []Variant{{}}
	}
	open := func(v Variant) Factory { return func() (backend.Backend, error) { return t.Open(v) } }
	floor, err := openTrain(open(variants[0]), o, spec, x, StepIterations, true)
	if err != nil {
		rn.emit(Check{Name: "iterations: float32 floor", Status: Fail, Detail: err.Error(), Seconds: time.Since(start).Seconds()})
		return
	}
	shared := time.Since(start).Seconds() / float64(len(variants))
	for _, v := range variants {
		name := fmt.Sprintf("%d iterations vs float64", StepIterations)
		if len(variants) > 1 {
			name += " (" + Variant{Graphs: v.Graphs, Overlap: v.Overlap}.String() + ")"
		}
		c := rn.timed(name, false, func(c *Check) {
			tr, err := openTrain(open(v), o, spec, x, StepIterations, false)
			if err != nil {
				c.Status, c.Detail = Fail, err.Error()
				return
			}
			iterationCheck(c, compareSnapshots(&tr.early, &twin.early, &floor.early))
		})
		c.Seconds += shared
		rn.emit(c)
	}
	rn.replayChecks(spec, x)
}

// iterationCheck fills c from the tensors' comparisons.
func iterationCheck(c *Check, errs []tensorErr) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].ratio > errs[j].ratio })
	w := errs[0]
	c.Value, c.Limit = fmtErr(w.err), fmtLimit(w.limit)
	var bad []string
	loose := 0
	for _, e := range errs {
		if !(e.err <= e.limit) {
			bad = append(bad, fmt.Sprintf("%s %s > %s", e.name, fmtErr(e.err), fmtLimit(e.limit)))
		}
		if e.limit > LimitIteration {
			loose++
		}
	}
	if len(bad) > 0 {
		c.Status = Fail
		if len(bad) > 4 {
			bad = append(bad[:4], fmt.Sprintf("and %d more", len(bad)-4))
		}
		c.Detail = fmt.Sprintf("%d of %d tensors differ from the float64 twin: %s", len(bad), len(errs), strings.Join(bad, "; "))
		return
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("%d tensors (every parameter of E and G, every loss); worst %s (float32 floor %s); %d held to %d× their floor",
		len(errs), w.name, fmtErr(w.floor), loose, FloorFactor)
}

// feature is a way of running one backend instance: with or without its
// graphs (backend.GraphRecorder) and its second stream (backend.Overlapper).
type feature struct{ graphs, overlap bool }

func (f feature) String() string {
	return Variant{Graphs: f.graphs, Overlap: f.overlap}.String()
}

// restrict shows the model only the features f of b: without GraphRecorder the
// phases issue every op directly; without Overlapper the model queues
// everything in order.
func restrict(b backend.Backend, f feature) backend.Backend {
	st, _ := b.(backend.GraphRecorder)
	ov, _ := b.(backend.Overlapper)
	switch {
	case f.graphs && f.overlap:
		return struct {
			backend.Backend
			backend.GraphRecorder
			backend.Overlapper
		}{b, st, ov}
	case f.graphs:
		return struct {
			backend.Backend
			backend.GraphRecorder
		}{b, st}
	case f.overlap:
		return struct {
			backend.Backend
			backend.Overlapper
		}{b, ov}
	}
	return struct{ backend.Backend }{b}
}

// replayChecks compares runs that must agree bit for bit: the same run
// twice (repeatability), graphs against direct launches and two streams
// against one. They all run on one backend instance opened with every
// feature, each from a fresh model, so that they share cuDNN's algorithm
// choices (made per instance, by timing) and differ only in the feature.
func (rn *runner) replayChecks(spec model.Spec, x []float32) {
	t, o := rn.t, rn.o
	full := Variant{Graphs: true, Overlap: true}
	if len(t.Precisions) > 0 {
		full.Precision = t.Precisions[0]
	}
	b, err := t.Open(full)
	if err != nil {
		rn.emit(Check{Name: "repeatable", Status: Fail, Detail: err.Error()})
		return
	}
	defer b.Close()
	_, hasSteps := b.(backend.GraphRecorder)
	_, hasSide := b.(backend.Overlapper)
	base := feature{}
	ways := []feature{base}
	if hasSteps {
		ways = append(ways, feature{graphs: true})
	}
	if hasSide {
		ways = append(ways, feature{overlap: true})
	}
	if hasSteps && hasSide {
		ways = append(ways, feature{graphs: true, overlap: true})
	}
	iters := StepIterations
	if len(ways) > 1 {
		iters = ReplayIterations
	}
	stats := func() GraphCounts {
		if g, ok := b.(graphStater); ok {
			st := g.GraphStats()
			return GraphCounts{Captures: st.Captures, Replays: st.Replays, Direct: st.Direct, Off: st.Off}
		}
		return GraphCounts{}
	}
	runs := map[feature]*trained{}
	counts := map[feature]GraphCounts{}
	errs := map[feature]error{}
	train := func(f feature) (*trained, error) {
		before := stats()
		tr, err := trainSteps(restrict(b, f), o, spec, x, iters, false)
		after := stats()
		counts[f] = GraphCounts{Captures: after.Captures - before.Captures, Replays: after.Replays - before.Replays,
			Direct: after.Direct - before.Direct, Off: after.Off}
		return tr, err
	}
	start := time.Now()
	for _, f := range ways {
		runs[f], errs[f] = train(f)
	}
	shared := time.Since(start).Seconds() / float64(len(ways))

	var tol float64 // what identical runs differ by (0: bit for bit)
	c := rn.timed(fmt.Sprintf("repeatable (%d iterations twice)", iters), false, func(c *Check) {
		if errs[base] != nil {
			c.Status, c.Detail = Fail, errs[base].Error()
			return
		}
		again, err := trainSteps(restrict(b, base), o, spec, x, iters, false)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			return
		}
		worst, at, diffs, values := maxDiff(&again.late, &runs[base].late)
		c.Value, c.Limit = fmtErr(worst), "bit for bit"
		switch {
		case diffs == 0:
			c.Status, c.Detail = Pass, fmt.Sprintf("%d values identical", values)
		case t.Repeatable:
			c.Status = Fail
			c.Detail = fmt.Sprintf("two identical runs differ in %d of %d values, most in %s: the backend is not deterministic", diffs, values, at)
		default:
			tol = worst
			c.Status, c.Limit = Info, ""
			c.Detail = fmt.Sprintf("two identical runs differ in %d of %d values, most in %s: cuDNN chose non-deterministic algorithms; the comparisons below allow %d× this", diffs, values, at, FloorFactor)
		}
	})
	c.Seconds += shared
	rn.emit(c)

	same := func(name string, a, b feature, why string) {
		c := rn.timed(name, false, func(c *Check) {
			for _, f := range []feature{a, b} {
				if errs[f] != nil {
					c.Status, c.Detail = Fail, f.String()+": "+errs[f].Error()
					return
				}
			}
			worst, at, diffs, values := maxDiff(&runs[a].late, &runs[b].late)
			c.Value, c.Limit = fmtErr(worst), "bit for bit"
			switch {
			case diffs == 0:
				c.Status = Pass
				c.Detail = fmt.Sprintf("%d values identical after %d iterations", values, iters)
			case tol > 0 && worst <= FloorFactor*tol:
				c.Status, c.Limit = Pass, fmtLimit(FloorFactor*tol)
				c.Detail = fmt.Sprintf("%d of %d values differ, most in %s, no more than identical runs do", diffs, values, at)
			default:
				c.Status = Fail
				c.Detail = fmt.Sprintf("%d of %d values differ after %d iterations, most in %s (relative %s): %s", diffs, values, iters, at, fmtErr(worst), why)
			}
			if a.graphs {
				n := counts[a]
				c.Detail += fmt.Sprintf("; %d steps direct, %d captured, %d replayed", n.Direct, n.Captures, n.Replays)
				if (n.Replays == 0 || n.Off != "") && c.Status == Pass {
					c.Status = Fail
					c.Detail = "no graph was replayed, so replays were not checked"
					if n.Off != "" {
						c.Detail += ": graphs were switched off: " + n.Off
					}
				}
			}
		})
		c.Seconds += shared
		rn.emit(c)
	}
	for _, overlap := range []bool{true, false} {
		g, d := feature{graphs: true, overlap: overlap}, feature{overlap: overlap}
		if runs[g] != nil || errs[g] != nil {
			same(fmt.Sprintf("graphs = direct (%s)", Variant{Overlap: overlap}.streams()), g, d,
				"a replayed graph computes something else than direct launches (a random key, an Adam step or an upload not carried into the replay)")
		}
	}
	if f := (feature{overlap: true}); runs[f] != nil || errs[f] != nil {
		same("2 streams = 1 stream", f, base, "the second stream changes results (side work reads or writes what the main stream touches before the join)")
	}
}

// GraphCounts say how the steps of a run were issued.
type GraphCounts struct {
	Captures, Replays, Direct int
	Off                       string // why graphs were switched off
}

func (v Variant) streams() string {
	if v.Overlap {
		return "2 streams"
	}
	return "1 stream"
}
