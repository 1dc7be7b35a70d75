package phases

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/internal/testkit"
	"github.com/pad-dreaming/pad/model"
)

// The golden fixtures: two full Wake/NREM/REM iterations of a small PAD
// net computed by PyTorch autograd in float64 (see testdata/fixtures).
// Every recorded tensor must be reproduced in float32 to 1e-4 in relative
// norm, and exactly the same tensors must receive gradients.

const fixtureTol = 1e-4

// fixturePath finds a fixture in the repo's testdata (converted to
// float32) or, failing that, in ../shared. With preferOriginal it looks in
// ../shared (float64, as PyTorch wrote them) first.
func fixturePath(t testing.TB, name string, preferOriginal bool) string {
	dirs := []string{filepath.Join("..", "testdata", "fixtures"), filepath.Join("..", "..", "shared", "fixtures")}
	if preferOriginal {
		dirs[0], dirs[1] = dirs[1], dirs[0]
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("fixture %s not found in testdata/fixtures or ../shared/fixtures", name)
	return ""
}

// Fixture is a loaded golden file.
type Fixture struct {
	t    testing.TB
	file *safetensors.File
	Path string
	Spec model.Spec
}

// LoadFixture reads pad_step_c<channels>.safetensors and its sizes,
// preferring the float64 originals if asked and available.
func LoadFixture(t testing.TB, channels int, preferOriginal bool) *Fixture {
	name := fmt.Sprintf("pad_step_c%d.safetensors", channels)
	path := fixturePath(t, name, preferOriginal)
	f, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(fixturePath(t, "fixtures.json", false))
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]struct{ Channels, NZ, NF, Batch int }
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	i, ok := info[name]
	if !ok {
		t.Fatalf("fixtures.json has no entry for %s", name)
	}
	return &Fixture{t: t, file: f, Path: path, Spec: model.Spec{C: i.Channels, NF: i.NF, NZ: i.NZ, Batch: i.Batch}}
}

// Has reports whether the fixture records name.
func (f *Fixture) Has(name string) bool { _, ok := f.file.Get(name); return ok }

// Get returns a recorded tensor as float32.
func (f *Fixture) Get(name string) []float32 {
	f.t.Helper()
	ts, ok := f.file.Get(name)
	if !ok {
		f.t.Fatalf("fixture has no tensor %q", name)
	}
	v, err := ts.F32()
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// recorder downloads every tensor the fixture records, under the
// fixture's name, and notes which tensors received gradients.
type recorder struct {
	t       *testing.T
	f       *Fixture
	b       backend.Backend
	got     map[string][]float32
	gradSet map[string]bool // our gradient presence, by fixture name
}

func (r *recorder) take(name string, buf backend.Buf) {
	r.t.Helper()
	host := make([]float32, buf.Len())
	r.b.Download(host, buf)
	if err := r.b.Sync(); err != nil {
		r.t.Fatal(err)
	}
	r.got[name] = host
}

// net records a phase's gradients and updated parameters of one network.
func (r *recorder) net(prefix string, n *model.Net, afterRecorded bool) {
	for i, ts := range n.Tensors {
		gname := prefix + "/grad/" + n.Prefix + "." + ts.Name
		r.gradSet[gname] = n.HasGrad(i)
		if n.HasGrad(i) {
			r.take(gname, n.Grad(i))
		}
		if afterRecorded {
			r.take(prefix+"/after/"+n.Prefix+"."+ts.Name, n.Param(i))
		}
	}
}

// perturbULP moves every value one float32 ulp up or down (alternating):
// the smallest change of the inputs float32 can represent.
func perturbULP(v []float32, salt int) []float32 {
	out := make([]float32, len(v))
	for j, x := range v {
		if (j+salt)%2 == 0 {
			out[j] = math.Nextafter32(x, float32(math.Inf(1)))
		} else {
			out[j] = math.Nextafter32(x, float32(math.Inf(-1)))
		}
	}
	return out
}

// replay runs the fixture's two iterations on b from its initial
// parameters, inputs, masks and noise (each moved by one ulp if perturb),
// and returns every tensor the fixture records. On a backend.GraphRecorder (the
// CUDA backend's graphs) each phase is recorded as a step and replayed.
func replay(t *testing.T, b backend.Backend, f *Fixture, perturb bool) *recorder {
	cond, _ := conditions.Lookup("pad")
	p, err := New(b, f.Spec, cond, Options{Seed: 1, AdamE: DefaultAdam, AdamG: DefaultAdam, MaxTile: 8})
	if err != nil {
		t.Fatal(err)
	}
	in := func(name string, salt int) []float32 {
		v := f.Get(name)
		if perturb {
			v = perturbULP(v, salt)
		}
		return v
	}
	for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
		for i, ts := range n.Tensors {
			v := in("init/"+n.Prefix+"."+ts.Name, i)
			if len(v) != ts.Len {
				t.Fatalf("init/%s.%s: %d values, model has %d", n.Prefix, ts.Name, len(v), ts.Len)
			}
			b.Upload(n.Param(i), v)
		}
	}
	r := &recorder{t: t, f: f, b: b, got: map[string][]float32{}, gradSet: map[string]bool{}}
	stat := func(name string, s Stat) { r.take(name, p.stat(s)) }
	x, err := b.Alloc(f.Spec.Batch * f.Spec.C * model.ImageSize * model.ImageSize)
	if err != nil {
		t.Fatal(err)
	}
	phase := func(run func()) { run() }
	if st, ok := b.(backend.GraphRecorder); ok {
		phase = func(run func()) {
			st.BeginGraph()
			run()
			st.EndGraph()
		}
	}
	for it := 0; it < 2; it++ {
		pre := fmt.Sprintf("it%d/", it)
		b.Upload(x, in(pre+"x", it))
		// The reference's mask is [C, 32, 32] with identical planes.
		mask := f.Get(pre + "mask")
		plane := mask[:model.ImageSize*model.ImageSize]
		for c := 1; c < f.Spec.C; c++ {
			if testkit.RelErr(mask[c*len(plane):(c+1)*len(plane)], plane) != 0 {
				t.Fatalf("%smask: channel %d differs from channel 0", pre, c)
			}
		}
		b.Upload(p.Mask, plane)
		b.Upload(p.REMNoise, in(pre+"noise", it))
		p.begin(it == 0)

		phase(func() { p.Wake(x) })
		r.take(pre+"wake/z", p.Memory)
		r.take(pre+"wake/d", p.E.D)
		r.take(pre+"wake/x_rec", p.G.Out)
		stat(pre+"wake/loss_rec", StatWakeRec)
		stat(pre+"wake/loss_kl", StatKL)
		stat(pre+"wake/loss_real", StatReal)
		r.net(pre+"wake", &p.E.Net, true)
		r.net(pre+"wake", &p.G.Net, true)

		phase(p.NREM)
		r.take(pre+"nrem/dream", p.Dream)
		r.take(pre+"nrem/z_rec", p.E.Z)
		stat(pre+"nrem/loss", StatNREM)
		r.net(pre+"nrem", &p.E.Net, true)
		r.net(pre+"nrem", &p.G.Net, false)

		phase(p.REM)
		r.take(pre+"rem/z_mix", p.ZMix)
		r.take(pre+"rem/dream", p.G.Out)
		r.take(pre+"rem/d", p.E.D)
		stat(pre+"rem/loss_fake", StatFake)
		r.net(pre+"rem", &p.E.Net, true)
		r.net(pre+"rem", &p.G.Net, true)
		p.end()
	}
	return r
}

// outputs lists the tensors the fixture records as results (not inputs).
func (f *Fixture) outputs() []string {
	var names []string
	for n := range f.file.Tensors {
		if strings.HasPrefix(n, "init/") || strings.HasSuffix(n, "/x") || strings.HasSuffix(n, "/mask") || strings.HasSuffix(n, "/noise") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkGradSets fails unless exactly the fixture's tensors received
// gradients in every phase.
func checkGradSets(t *testing.T, f *Fixture, r *recorder) {
	for name, ours := range r.gradSet {
		if f.Has(name) != ours {
			t.Errorf("%s: fixture gradient present %v, ours %v", name, f.Has(name), ours)
		}
	}
	for _, name := range f.outputs() {
		if strings.Contains(name, "/grad/") && !r.gradSet[name] {
			t.Errorf("%s: the fixture has this gradient, ours has none", name)
		}
	}
}

// errors returns ‖ours − fixture‖/‖fixture‖ for every recorded tensor.
func errorsAgainst(t *testing.T, f *Fixture, r *recorder) map[string]float64 {
	errs := map[string]float64{}
	for _, name := range f.outputs() {
		got, ok := r.got[name]
		want := f.Get(name)
		if !ok || len(got) != len(want) {
			t.Errorf("%s: not produced (or wrong size: %d values, fixture %d)", name, len(got), len(want))
			continue
		}
		errs[name] = testkit.RelErr(got, want)
	}
	return errs
}

func worst(errs map[string]float64) (string, float64) {
	var at string
	w := -1.0
	for n, e := range errs {
		if e > w || math.IsNaN(e) {
			at, w = n, e
		}
	}
	return at, w
}

// TestFixtureParityFloat64 replays the fixtures on the float64 twin of the
// CPU backend: the same model, phases and op code as the float32 backend,
// computing in float64. Values still enter and leave through float32
// (Upload, Download), which alone accounts for relative errors of ~1e-7 on
// the worst-conditioned tensors; every tensor must agree to 1e-6, a
// hundred times tighter than the float32 requirement.
func TestFixtureParityFloat64(t *testing.T) {
	for _, ch := range []int{1, 3} {
		t.Run(fmt.Sprintf("c%d", ch), func(t *testing.T) {
			f := LoadFixture(t, ch, true)
			const tol = 1e-6
			r := replay(t, cpu.New64(2), f, false)
			checkGradSets(t, f, r)
			errs := errorsAgainst(t, f, r)
			for name, e := range errs {
				if !(e <= tol) {
					t.Errorf("%s: relative error %.3g > %g", name, e, tol)
				}
			}
			at, w := worst(errs)
			t.Logf("%s from %s: %d tensors; worst %.3g at %s (tolerance %g)", "float64", f.Path, len(errs), w, at, tol)
		})
	}
}

// TestFixtureParityFloat32 replays the fixtures on the float32 CPU backend
// pad trains with. Every tensor must agree to 1e-4 in relative norm, except
// where float32 itself cannot: at initialisation E maps every image to
// nearly the same z (batch std ≈ 4e-4 around means ≈ 0.03), so the KL
// gradient and NREM's ẑ − z are sums of large cancelling terms, and moving
// the float32 inputs by one ulp already changes a few gradients by ~1e-3.
// The test measures that floor — the difference between two float32 runs
// whose inputs differ by one ulp — and allows a tensor 4× its floor when
// that exceeds 1e-4. An error in the implementation shows up far above
// both (see TestFixtureParityFloat64 for the exact check).
func TestFixtureParityFloat32(t *testing.T) {
	for _, ch := range []int{1, 3} {
		t.Run(fmt.Sprintf("c%d", ch), func(t *testing.T) {
			f := LoadFixture(t, ch, false)
			r := replay(t, cpu.New(2), f, false)
			checkGradSets(t, f, r)
			errs := errorsAgainst(t, f, r)
			floor := map[string]float64{}
			q := replay(t, cpu.New(2), f, true)
			for name := range errs {
				floor[name] = testkit.RelErr(q.got[name], r.got[name])
			}
			strict, loose := 0, 0
			for name, e := range errs {
				tol := math.Max(fixtureTol, 4*floor[name])
				if !(e <= tol) {
					t.Errorf("%s: relative error %.3g > %.3g (float32 floor %.3g)", name, e, tol, floor[name])
				}
				if e <= fixtureTol {
					strict++
				} else {
					loose++
					t.Logf("%s: %.3g, above 1e-4 but within 4× its float32 floor %.3g", name, e, floor[name])
				}
			}
			at, w := worst(errs)
			t.Logf("float32: %d of %d tensors within 1e-4, %d within their float32 floor; worst %.3g at %s", strict, len(errs), loose, w, at)
		})
	}
}
