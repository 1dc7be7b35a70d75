package doctor

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// tinyOptions are options for a small model that the CPU checks in
// seconds.
func tinyOptions(t *testing.T) Options {
	t.Helper()
	cond, err := conditions.Lookup("pad")
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Specs:       []model.Spec{{C: 3, NF: 4, NZ: 8, Batch: 8}},
		Condition:   cond,
		Phases:      phases.Options{Seed: 3, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8},
		SampleIters: 6,
	}
}

func failed(r *Report) []string {
	var out []string
	for _, c := range r.Failed() {
		out = append(out, c.Name)
	}
	return out
}

func TestCPUSelfCheckPasses(t *testing.T) {
	o := tinyOptions(t)
	var seen []Check
	o.Progress = func(c Check) { seen = append(seen, c) }
	r := Run(CPU(2), o)
	if !r.Pass {
		for _, c := range r.Failed() {
			t.Errorf("%s: %s (value %s, limit %s)", c.Name, c.Detail, c.Value, c.Limit)
		}
	}
	if !reflect.DeepEqual(seen, r.Checks) {
		t.Errorf("the progress callback saw %d checks, the report holds %d", len(seen), len(r.Checks))
	}
	want := []string{"op ConvBackwardFilter", "op Tanh", "op Adam", "op OcclusionMask", "2 iterations vs float64",
		"repeatable (2 iterations twice)", "6 iterations vs float64"}
	for _, name := range want {
		found := false
		for _, c := range r.Checks {
			found = found || c.Name == name
		}
		if !found {
			t.Errorf("no check %q", name)
		}
	}
	if r.Device != "cpu" || !strings.HasPrefix(r.Backend, "cpu") || r.Quick {
		t.Errorf("report: device %q backend %q quick %v", r.Device, r.Backend, r.Quick)
	}
	for _, c := range r.Checks {
		if c.Status == Skip || c.Seconds < 0 || (strings.HasPrefix(c.Name, "op ") != c.Quick) {
			t.Errorf("%+v", c)
		}
	}
}

// broken wraps the CPU backend and gets one op wrong.
type broken struct {
	backend.Backend
	op string
}

// noise adds ±rel·rms(x) to every value of x.
func (b broken) noise(x backend.Buf, rel float64) {
	v := make([]float32, x.Len())
	b.Download(v, x)
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	d := float32(rel * math.Sqrt(ss/float64(len(v))))
	for i := range v {
		if i%2 == 0 {
			v[i] += d
		} else {
			v[i] -= d
		}
	}
	b.Upload(x, v)
}

func (b broken) ConvBackwardFilter(g backend.ConvGeom, x, dy, dw backend.Buf, beta float32) {
	b.Backend.ConvBackwardFilter(g, x, dy, dw, beta)
	if b.op == "ConvBackwardFilter" {
		b.noise(dw, 1e-3)
	}
}

func (b broken) Tanh(x backend.Buf) {
	if b.op == "Tanh" {
		b.Backend.Sigmoid(x) // the wrong function
		return
	}
	b.Backend.Tanh(x)
}

func (b broken) OcclusionMask(m backend.Buf, o backend.Occlusion) {
	if b.op == "OcclusionMask" {
		o.Key.Seq++ // the next iteration's mask
	}
	b.Backend.OcclusionMask(m, o)
}

func (b broken) Adam(p, g, m, v backend.Buf, segs []backend.AdamSegment, h backend.AdamHyper) {
	if b.op == "Adam" && len(segs) > 1 {
		segs = segs[1:] // forgets a tensor
	}
	b.Backend.Adam(p, g, m, v, segs, h)
}

func (b broken) KLBatch(z backend.Buf, n, nz int, loss, grad backend.Buf, scale, beta float32) {
	b.Backend.KLBatch(z, n, nz, loss, grad, scale, beta)
	if b.op == "KLBatch" {
		b.noise(loss, 1e-5)
	}
}

// A backend with one op wrong fails exactly that op's check, which names
// it.
func TestBrokenOpFailsItsCheck(t *testing.T) {
	for _, op := range []string{"ConvBackwardFilter", "Tanh", "OcclusionMask", "Adam", "KLBatch"} {
		t.Run(op, func(t *testing.T) {
			tg := CPU(2)
			tg.Open = func(Variant) (backend.Backend, error) { return broken{cpu.New(2), op}, nil }
			o := tinyOptions(t)
			o.Quick = true
			r := Run(tg, o)
			f := r.Failed()
			if len(f) != 1 || f[0].Name != "op "+op || !strings.Contains(f[0].Detail, op) {
				t.Fatalf("failed checks %v, want exactly op %s naming it; %+v", failed(r), op, f)
			}
			t.Logf("%s: %s", f[0].Name, f[0].Detail)
			if r.Pass {
				t.Error("the report passes")
			}
		})
	}
}

// The full check of a backend whose weight gradients are 1e-3 off also
// fails the iterations against the float64 twin. (Adam divides each
// gradient by its own running size, so only the part of the error that
// changes small gradients' signs reaches the parameters: the op-parity
// check is the sharper one.)
func TestBrokenBackendFailsIterations(t *testing.T) {
	tg := CPU(2)
	tg.Open = func(Variant) (backend.Backend, error) { return broken{cpu.New(2), "ConvBackwardFilter"}, nil }
	o := tinyOptions(t)
	o.SampleIters = -1
	r := Run(tg, o)
	if got := failed(r); !reflect.DeepEqual(got, []string{"op ConvBackwardFilter", "2 iterations vs float64"}) {
		t.Fatalf("failed %v", got)
	}
}

// graphFake wraps the CPU backend as a device that records iterations as
// graphs (backend.GraphRecorder) and has a second stream (backend.Overlapper,
// whose side work it runs in order). With stale set, a replayed step
// draws the REM noise of the step it was recorded in, the bug graph
// arenas exist to prevent; with off set, it never replays.
type graphFake struct {
	backend.Backend
	stale, off bool
	in         bool
	steps      int
	rec        map[int]uint64 // parity of the memory swap → Seq recorded
}

func (s *graphFake) BeginGraph() { s.in = true; s.steps++ }
func (s *graphFake) EndGraph()   { s.in = false }
func (s *graphFake) BeginSide()  {}
func (s *graphFake) EndSide()    {}
func (s *graphFake) JoinSide()   {}

func (s *graphFake) GraphStats() cuda.GraphStats {
	st := cuda.GraphStats{Enabled: !s.off, Direct: min(s.steps, 2), Replays: max(s.steps-2, 0)}
	if s.off {
		st.Direct, st.Replays, st.Off = s.steps, 0, "switched off for the test"
	}
	return st
}

func (s *graphFake) RandNormal(dst backend.Buf, k rng.Key) {
	if s.stale && s.in && k.Stream == rng.StreamREMNoise {
		if s.rec == nil {
			s.rec = map[int]uint64{}
		}
		if s.steps <= 2 {
			s.rec[s.steps%2] = k.Seq
		}
		k.Seq = s.rec[s.steps%2]
	}
	s.Backend.RandNormal(dst, k)
}

func graphTarget(stale, off bool) *Target {
	tg := CPU(2)
	tg.Variants = []Variant{{Graphs: true, Overlap: true}, {Graphs: false, Overlap: true}}
	tg.Open = func(v Variant) (backend.Backend, error) {
		if v.Graphs {
			return &graphFake{Backend: cpu.New(2), stale: stale, off: off}, nil
		}
		return cpu.New(2), nil
	}
	return tg
}

// The bit-for-bit comparison of graphs with direct launches passes on a
// faithful graphFake and catches one that replays a stale random key, or
// that never replays.
func TestGraphReplayCheck(t *testing.T) {
	for _, c := range []struct {
		stale, off bool
		want       Status
	}{{false, false, Pass}, {true, false, Fail}, {false, true, Fail}} {
		o := tinyOptions(t)
		o.Specs = []model.Spec{{C: 1, NF: 4, NZ: 8, Batch: 4}}
		rn := &runner{t: graphTarget(c.stale, c.off), o: &o, r: &Report{Pass: true}}
		rn.iterations()
		got := map[string]Check{}
		for _, ch := range rn.r.Checks {
			got[ch.Name] = ch
		}
		for _, name := range []string{"graphs = direct (2 streams)", "graphs = direct (1 stream)"} {
			if g := got[name]; g.Status != c.want {
				t.Errorf("stale %v, off %v: %s %q: %s", c.stale, c.off, name, g.Status, g.Detail)
			}
		}
		for _, name := range []string{"repeatable (8 iterations twice)", "2 streams = 1 stream", "2 iterations vs float64 (graphs, 2 streams)"} {
			if g := got[name]; g.Status != Pass {
				t.Errorf("stale %v, off %v: %s %q: %s", c.stale, c.off, name, g.Status, g.Detail)
			}
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	o := tinyOptions(t)
	o.Quick = true
	r := Run(CPU(2), o)
	r.Notice = "no usable NVIDIA GPU: test; running the CPU self-check"
	r.GPU = &GPU{Ordinal: 1, Name: "Test GPU", Major: 9, Minor: 0, MemoryBytes: 80 << 30, Driver: "13.0 (580.1)"}
	r.Libraries = []Library{{Lib: "cudnn", Error: "not found", Tried: []string{"libcudnn.so.9"}, Searched: []string{"loader path"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, &back) {
		t.Errorf("round trip differs:\n%+v\n%+v", r, &back)
	}
	var generic map[string]any
	json.Unmarshal(b, &generic)
	for _, k := range []string{"device", "libraries", "checks", "pass"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	c := generic["checks"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "status", "value", "limit", "seconds"} {
		if _, ok := c[k]; !ok {
			t.Errorf("a check's JSON lacks %q: %v", k, c)
		}
	}
}

// The limits are those the documentation states.
func TestLimits(t *testing.T) {
	for _, c := range []struct {
		cl    class
		prec  string
		ref64 bool
		want  float64
	}{
		{classExact, "", false, 0}, {classRounded, "", false, 1e-7}, {classReduction, "", false, 1e-6},
		{classConv, "fp32", false, 1e-5}, {classConv, "tf32", false, 2e-3}, {classConv, "", true, 1e-5},
		{classExact, "", true, 1e-6}, {classRounded, "", true, 1e-6},
	} {
		if got := limit(c.cl, c.prec, c.ref64); got != c.want {
			t.Errorf("limit(%v, %q, %v) = %g, want %g", c.cl, c.prec, c.ref64, got, c.want)
		}
	}
	if LimitExact != 0 || LimitRounded != 1e-7 || LimitConvFP32 != 1e-5 || LimitConvTF32 != 2e-3 || LimitIteration != 1e-4 || LimitSampleRun != 2e-2 {
		t.Error("a limit differs from its documentation")
	}
	// β2 = 0.999 is 0.99900001287 in float32: 1 − β2 is off by 1.3e-5.
	if a := AdamVsFloat64(phases.DefaultAdam); math.Abs(a/2-1.29e-5) > 0.01e-5 {
		t.Errorf("AdamVsFloat64(β2 0.999) = %g, want 2×1.29e-5", a)
	}
	text := LimitsText()
	for _, v := range []float64{LimitRounded, LimitReduction, LimitConvFP32, LimitConvTF32, LimitVsFloat64, LimitIteration, LimitSampleRun} {
		if s := strconv.FormatFloat(v, 'g', -1, 64); !strings.Contains(text, s) {
			t.Errorf("LimitsText lacks %s:\n%s", s, text)
		}
	}
	for _, w := range []string{"FP32", "TF32", "bit for bit"} {
		if !strings.Contains(text, w) {
			t.Errorf("LimitsText lacks %q", w)
		}
	}
}

// Every method of backend.Backend has a parity case (or is one every case
// uses), and every op the model issues has one.
func TestEveryBackendMethodHasAParityCase(t *testing.T) {
	o := tinyOptions(t)
	cases, err := buildCases(&o)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		for _, op := range c.ops {
			covered[op] = true
		}
	}
	it := reflect.TypeOf((*backend.Backend)(nil)).Elem()
	for i := 0; i < it.NumMethod(); i++ {
		m := it.Method(i).Name
		if _, ok := notOps[m]; ok {
			if covered[m] {
				t.Errorf("%s is both a parity case and exempt", m)
			}
			continue
		}
		if !covered[m] {
			t.Errorf("backend.Backend.%s has no op-parity case", m)
		}
		if opRank(m) == len(opOrder) {
			t.Errorf("%s is missing from opOrder", m)
		}
	}
	for m := range notOps {
		if _, ok := it.MethodByName(m); !ok {
			t.Errorf("notOps names %s, which backend.Backend lacks", m)
		}
	}
	// Every condition, with masks per batch and per image.
	for _, name := range conditions.Names() {
		for _, per := range []bool{false, true} {
			cond, _ := conditions.Lookup(name)
			spec := model.Spec{C: 1, NF: 2, NZ: 4, Batch: 4}
			calls, err := modelCalls(spec, cond, phases.Options{Seed: 1, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8, OcclusionPerImage: per})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range calls {
				if _, ok := caseOf(c, &inputs{}); !ok {
					t.Errorf("condition %s: the model issues %s, which has no case", name, c.op)
				}
			}
		}
	}
}

// The recorder sees every layer geometry of E and G.
func TestModelGeometries(t *testing.T) {
	spec := model.Spec{C: 3, NF: 64, NZ: 256, Batch: 64}
	cond, _ := conditions.Lookup("pad")
	calls, err := modelCalls(spec, cond, phases.Options{Seed: 1, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8})
	if err != nil {
		t.Fatal(err)
	}
	geoms := map[backend.ConvGeom]map[string]bool{}
	for _, c := range calls {
		if strings.HasPrefix(c.op, "Conv") {
			if geoms[c.g] == nil {
				geoms[c.g] = map[string]bool{}
			}
			geoms[c.g][c.op] = true
		}
	}
	n := spec.Batch
	want := []backend.ConvGeom{
		backend.NewConv(n, 3, 32, 32, 64, 4, 2, 1),   // E.conv1, G.tconv4
		backend.NewConv(n, 64, 16, 16, 128, 4, 2, 1), // E.conv2, G.tconv3
		backend.NewConv(n, 128, 8, 8, 256, 4, 2, 1),  // E.conv3, G.tconv2
		backend.NewConv(n, 256, 4, 4, 256, 4, 2, 0),  // E.conv4
		backend.NewConv(n, 256, 4, 4, 1, 4, 2, 0),    // E.dis
		backend.NewConv(n, 256, 4, 4, 256, 4, 1, 0),  // G.tconv1
	}
	if len(geoms) != len(want) {
		t.Errorf("%d geometries, want %d: %v", len(geoms), len(want), geoms)
	}
	for _, g := range want {
		if geoms[g] == nil {
			t.Errorf("geometry %v not seen", g)
		}
	}
	// The op-parity check runs all three directions at each of them.
	perOp := map[string]int{}
	for _, c := range distinct(append(calls, convCalls(calls)...)) {
		if strings.HasPrefix(c.op, "Conv") {
			perOp[c.op]++
		}
	}
	for _, op := range []string{"ConvForward", "ConvBackwardData", "ConvBackwardFilter"} {
		if perOp[op] < len(want) {
			t.Errorf("%s: %d cases, want one per geometry (%d) at least", op, perOp[op], len(want))
		}
	}
}

// Against a float32 reference (as on a GPU) exact ops are held bit for
// bit, and the convolutions are checked at each precision.
func TestFloat32ReferenceAndPrecisions(t *testing.T) {
	tg := CPU(2)
	tg.Reference = func() (backend.Backend, error) { return cpu.New(1), nil }
	tg.Ref64 = false
	tg.Precisions = []string{"fp32", "tf32"}
	o := tinyOptions(t)
	o.Quick = true
	r := Run(tg, o)
	if !r.Pass {
		t.Fatalf("failed %v", failed(r))
	}
	lim := map[string]string{}
	for _, c := range r.Checks {
		lim[c.Name] = c.Limit
	}
	fused := "bit for bit" // Axpby and the latent mix: the CPU rounds each product, as the kernels do
	for name, want := range map[string]string{
		"op ConvForward fp32": "1e-05", "op ConvForward tf32": "0.002", "op ConvBackwardFilter tf32": "0.002",
		"op Axpby": fused, "op LatentMix": fused, "op Adam": "bit for bit", "op OcclusionMask": "bit for bit",
		"op Tanh": "1e-07", "op KLBatch": "1e-06", "op TanhBackward": "1e-06",
	} {
		if lim[name] != want {
			t.Errorf("%s: limit %q, want %q", name, lim[name], want)
		}
	}
	if _, ok := lim["op Tanh tf32"]; ok {
		t.Error("a non-convolution op was checked per precision")
	}
}

// The whole check as a GPU runs it — setup, op parity at two precisions,
// four variants with graphs, the sample run at FP32 and TF32, memory and
// the bench line — on a CPU device that records steps.
func TestFullCheckOnAFakeDevice(t *testing.T) {
	tg := graphTarget(false, false)
	tg.Kind = "fake"
	tg.Variants = []Variant{{"fp32", true, true}, {"fp32", false, true}, {"fp32", true, false}, {"fp32", false, false}}
	tg.Precisions = []string{"fp32", "tf32"}
	tg.Reference = func() (backend.Backend, error) { return cpu.New(1), nil }
	tg.Ref64, tg.Repeatable = false, false
	tg.SampleRef, tg.SampleRefName = tg.Reference, "cpu float32"
	tg.Memory = func() (int64, error) { return 1 << 30, nil }
	tg.Bench = true
	tg.Setup = func(r *Report, emit func(Check)) bool {
		r.Libraries = []Library{{Lib: "cuda", Path: "/fake/libcuda.so.1", Version: "13.0"}}
		emit(libraryCheck(r.Libraries[0]))
		emit(libraryCheck(Library{Lib: "cublas", Error: "cublas: libcublas.so.13 (or .12) not found"}))
		return true
	}
	o := tinyOptions(t)
	o.Specs[0].C = 1
	o.Configured = Variant{Precision: "tf32", Graphs: true, Overlap: true}
	o.SampleIters, o.MemoryIters, o.BenchIters = 4, 5, 2
	o.BenchSpec = model.Spec{C: 3, NF: 4, NZ: 8, Batch: 8}
	r := Run(tg, o)
	if !r.Pass {
		for _, c := range r.Failed() {
			t.Errorf("%s: %s", c.Name, c.Detail)
		}
	}
	status := map[string]Status{}
	for _, c := range r.Checks {
		status[c.Name] = c.Status
	}
	for name, want := range map[string]Status{
		"driver (libcuda)": Pass, "library cublas": Info,
		"op ConvForward fp32": Pass, "op ConvForward tf32": Pass,
		"2 iterations vs float64 (graphs, 2 streams)": Pass, "2 iterations vs float64 (direct, 1 stream)": Pass,
		"repeatable (8 iterations twice)": Pass,
		"graphs = direct (2 streams)":     Pass, "graphs = direct (1 stream)": Pass, "2 streams = 1 stream": Pass,
		"4 iterations vs cpu float32 (fp32)": Pass, "4 iterations vs cpu float32 (tf32)": Info,
		"memory over 5 iterations": Pass, "bench C=3 nf=4 nz=8 batch 8": Info,
	} {
		if status[name] != want {
			t.Errorf("%s: %q, want %s", name, status[name], want)
		}
	}
	if t.Failed() {
		for _, c := range r.Checks {
			t.Logf("%-50s %s %s", c.Name, c.Status, c.Detail)
		}
	}
}

// Device memory that grows with iterations fails the memory check.
func TestMemoryGrowthFails(t *testing.T) {
	tg := CPU(1)
	used := int64(1 << 30)
	tg.Memory = func() (int64, error) { used += 32 << 20; return used, nil }
	o := tinyOptions(t)
	o.MemoryIters = 3
	rn := &runner{t: tg, o: &o, r: &Report{Pass: true}}
	rn.memory()
	if c := rn.r.Checks[0]; c.Status != Fail || c.Value != "+32 MiB" || !strings.Contains(c.Detail, "grows") {
		t.Errorf("%+v", c)
	}
}

// lagging wraps the CPU backend and uploads each mini-batch one iteration
// late, as a copy stream racing the computation would.
type lagging struct {
	backend.Backend
	n    int
	prev []float32
}

func (l *lagging) Upload(dst backend.Buf, src []float32) {
	if len(src) != l.n {
		l.Backend.Upload(dst, src)
		return
	}
	if l.prev == nil {
		l.prev = append([]float32(nil), src...)
	}
	l.Backend.Upload(dst, l.prev)
	l.prev = append(l.prev[:0], src...)
}

// The sample run, which goes through pad train's data path, catches
// mini-batches that arrive one iteration late.
func TestSampleRunCatchesStaleBatches(t *testing.T) {
	o := tinyOptions(t)
	o.SampleIters = 20
	for _, lag := range []bool{false, true} {
		tg := CPU(2)
		tg.SampleRef = func() (backend.Backend, error) { return cpu.New(2), nil }
		tg.Open = func(Variant) (backend.Backend, error) {
			if lag {
				return &lagging{Backend: cpu.New(2), n: o.Specs[0].Batch * model.ImageSize * model.ImageSize}, nil
			}
			return cpu.New(2), nil
		}
		rn := &runner{t: tg, o: &o, r: &Report{Pass: true}}
		rn.sampleRun()
		c := rn.r.Checks[0]
		if (c.Status == Fail) != lag {
			t.Errorf("stale batches %v: %s %s %s", lag, c.Status, c.Value, c.Detail)
		}
		t.Logf("stale batches %v: %s %s %s", lag, c.Status, c.Value, c.Detail)
	}
}
