package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// countingEncoder is a deterministic stand-in for a frozen encoder that
// counts its calls. A row's code depends only on its image and the
// occlusion, as with the real encoder.
type countingEncoder struct {
	calls map[string]int
}

func (c *countingEncoder) Encode(set *dataset.Set, occ *Occlusion) (Features, error) {
	key := fmt.Sprintf("%s/%d clean", set.Name, set.N)
	if occ != nil {
		key = fmt.Sprintf("%s/%d p=%g tile=%d seed=%d", set.Name, set.N, occ.P, occ.Tile, occ.Seed)
	}
	c.calls[key]++
	const d = 4
	f := Features{X: make([]float32, set.N*d), N: set.N, D: d, Labels: append([]uint8(nil), set.Labels...)}
	for i := range set.N {
		img := set.Image(i)
		q := len(img) / d
		for j := range d {
			var s float64
			for _, v := range img[j*q : (j+1)*q] {
				s += float64(v)
			}
			x := s / float64(q) / 255
			if occ != nil {
				x = x*(1-occ.P) + 0.01*occ.P*float64(j)
			}
			f.X[i*d+j] = float32(x)
		}
	}
	return f, nil
}

// testSet returns n 32×32 grey images in 3 classes whose brightness
// depends on the class.
func testSet(name string, n int, seq uint64) *dataset.Set {
	s := &dataset.Set{Name: name, N: n, C: 1, H: 32, W: 32, Images: make([]byte, n*32*32), Labels: make([]uint8, n),
		Classes: []string{"dark", "mid", "light"}}
	key := rng.Key{Seed: 9, Stream: rng.StreamEval, Seq: seq}
	for i := range n {
		l := key.Intn(uint64(i), 3)
		s.Labels[i] = uint8(l)
		for p := range 32 * 32 {
			s.Images[i*32*32+p] = uint8(60*l + key.Intn(uint64(n+i*32*32+p), 80))
		}
	}
	return s
}

// writeMetrics writes epoch and probe records into dir's metrics.jsonl.
func writeMetrics(t *testing.T, dir string) {
	t.Helper()
	var b bytes.Buffer
	for e := 1; e <= 3; e++ {
		v := float64(e)
		for _, r := range []metrics.Record{
			{Kind: metrics.KindEpoch, Epoch: e, DLoss: metrics.F(1.4 - v/20), GLoss: metrics.F(-0.7 + v/40),
				WakeRec: metrics.F(0.3 / v), NREMRec: metrics.F(0.1 / v), KL: metrics.F(0.01 * v), DX: metrics.F(0.6), DGZ: metrics.F(0.4)},
			{Kind: metrics.KindProbe, Epoch: e, TestAcc: metrics.F(50 + v), TestAccAll: metrics.F(50 + v)},
		} {
			line, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(append(line, '\n'))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, metrics.FileName), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestEvaluator returns an Evaluator of a fresh run directory with the
// counting encoder; PCA plots the first 40 of 75 test images.
func newTestEvaluator(t *testing.T) (*Evaluator, *countingEncoder) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "embedded-pad-s1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeMetrics(t, dir)
	enc := &countingEncoder{calls: map[string]int{}}
	ev := &Evaluator{
		Encoder: enc, Train: testSet("train", 150, 1), Test: testSet("test", 75, 2),
		Seed: 5, ProbeConfig: ProbeConfig{Epochs: 3, Batch: 16, LR: 0.2}, Tile: 4, Points: 40,
		RunDir: dir, Out: filepath.Join(dir, "eval"), Epoch: 3, Iter: 30,
	}
	if err := ev.Prepare(); err != nil {
		t.Fatal(err)
	}
	return ev, enc
}

// run runs the evaluation called name.
func run(t *testing.T, ev *Evaluator, name string) {
	t.Helper()
	var err error
	switch name {
	case "linear":
		_, err = ev.Linear()
	case "occlusion":
		_, err = ev.Occlusion(nil)
	case "latent":
		_, err = ev.Latent()
	case "pca":
		_, err = ev.PCA()
	case "plots":
		_, err = ev.Plots()
	case "export":
		_, err = ev.Export()
	default:
		t.Fatalf("no method for evaluation %q", name)
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestSelect(t *testing.T) {
	names := Evaluations()
	for _, name := range names {
		if got, ok := Select(name); !ok || !slices.Equal(got, []string{name}) {
			t.Errorf("Select(%q) = %v, %v", name, got, ok)
		}
	}
	names[0] = "changed"
	if Evaluations()[0] != "linear" {
		t.Errorf("Evaluations shares its slice with the caller")
	}
	names[0] = "linear"
	if want := []string{"linear", "occlusion", "latent", "pca", "plots", "export"}; !slices.Equal(names, want) {
		t.Errorf("evaluations %v, want %v", names, want)
	}
	if got, ok := Select(All); !ok || !slices.Equal(got, names) {
		t.Errorf("Select(all) = %v, %v", got, ok)
	}
	for _, bad := range []string{"", "nonsense", "Linear", "all "} {
		if got, ok := Select(bad); ok || got != nil {
			t.Errorf("Select(%q) = %v, %v", bad, got, ok)
		}
	}
}

// TestEvaluatorEncodesEachSetOnce runs every evaluation, as pad eval all
// does, and counts the encodings: each set clean once, the test set once
// per occlusion probability of the grid, the training set and PCA's
// subset of the test set once at 30 %.
func TestEvaluatorEncodesEachSetOnce(t *testing.T) {
	ev, enc := newTestEvaluator(t)
	names, _ := Select(All)
	for _, name := range names {
		run(t, ev, name)
	}
	want := map[string]int{
		"train/150 clean":               1,
		"test/75 clean":                 1,
		"train/150 p=0.3 tile=4 seed=5": 1,
		"test/40 p=0.3 tile=4 seed=5":   1,
	}
	for _, p := range OcclusionGrid() {
		want[fmt.Sprintf("test/75 p=%g tile=4 seed=5", p)]++
	}
	if len(OcclusionGrid()) != 11 {
		t.Errorf("occlusion grid %v", OcclusionGrid())
	}
	for k, n := range enc.calls {
		if n != want[k] {
			t.Errorf("%s encoded %d times, want %d", k, n, want[k])
		}
	}
	for k, n := range want {
		if enc.calls[k] == 0 {
			t.Errorf("%s never encoded, want %d", k, n)
		}
	}
}

// TestEvaluatorSharingChangesNothing checks that each evaluation writes the
// same files, byte for byte, when it runs alone as when it runs after the
// others and uses what they computed.
func TestEvaluatorSharingChangesNothing(t *testing.T) {
	all, _ := newTestEvaluator(t)
	names, _ := Select(All)
	for _, name := range names {
		run(t, all, name)
	}
	files, err := os.ReadDir(all.Out)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"accuracy.png", "latent.json", "linear.json", "losses.png", "occlusion.csv", "occlusion.png",
		"pca.png", "y_test.npy", "y_train.npy", "z_test.npy", "z_train.npy"}
	var got []string
	for _, f := range files {
		got = append(got, f.Name())
	}
	if !slices.Equal(got, wantFiles) {
		t.Errorf("files %v, want %v", got, wantFiles)
	}
	for _, name := range names {
		alone, enc := newTestEvaluator(t)
		run(t, alone, name)
		clean := 0
		for k, n := range enc.calls {
			if n > 1 {
				t.Errorf("%s alone: %s encoded %d times", name, k, n)
			}
			if bytes.HasSuffix([]byte(k), []byte(" clean")) {
				clean++
			}
		}
		if name == "pca" && (clean != 1 || enc.calls["test/40 clean"] != 1) {
			t.Errorf("pca alone encoded %v, want the 40 images it plots", enc.calls)
		}
		fs, err := os.ReadDir(alone.Out)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			t.Errorf("%s alone wrote nothing", name)
		}
		for _, f := range fs {
			a, err := os.ReadFile(filepath.Join(alone.Out, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(all.Out, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s: %s differs alone and after the others", name, f.Name())
			}
		}
	}
}

// TestEvaluatorResults checks the results against the files and against
// the functions the evaluations are made of.
func TestEvaluatorResults(t *testing.T) {
	ev, _ := newTestEvaluator(t)
	lin, err := ev.Linear()
	if err != nil {
		t.Fatal(err)
	}
	ftr, _ := ev.TrainFeatures()
	fte, _ := ev.TestFeatures()
	ref, err := RunProbe(ftr, fte, ProbeConfig{Epochs: 3, Batch: 16, LR: 0.2, Seed: 5, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if lin.TestAcc != ref.TestAcc || lin.TrainAcc != ref.TrainAcc || lin.TestAccAll != ref.TestAccAll || lin.TestImages != 75 ||
		lin.Config.Seed != 5 || lin.Config.Epochs != 3 || lin.Config.Classes != 3 {
		t.Errorf("linear %+v, reference %+v", lin, ref)
	}
	var js map[string]any
	b, err := os.ReadFile(lin.File)
	if err != nil || json.Unmarshal(b, &js) != nil {
		t.Fatalf("linear.json: %v\n%s", err, b)
	}
	if js["test_acc"] != lin.TestAcc || js["epoch"] != 3.0 || js["iter"] != 30.0 || js["seed"] != 5.0 || js["probe_batch"] != 16.0 {
		t.Errorf("linear.json %v", js)
	}

	var seen []OcclusionPoint
	occ, err := ev.Occlusion(func(p OcclusionPoint) { seen = append(seen, p) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, occ.Points) || len(occ.Points) != len(OcclusionGrid()) || occ.Tile != 4 {
		t.Errorf("occlusion points %v, streamed %v", occ.Points, seen)
	}
	if occ.Points[0].TestAcc != lin.TestAcc || occ.Points[0].TestAccAll != lin.TestAccAll {
		t.Errorf("occlusion at p = 0: %+v, clean %v/%v", occ.Points[0], lin.TestAcc, lin.TestAccAll)
	}
	csv, err := os.ReadFile(occ.CSV)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("p,tile,test_acc,test_acc_all\n0.0,4,%.4f,%.4f\n", lin.TestAcc, lin.TestAccAll); !bytes.HasPrefix(csv, []byte(want)) {
		t.Errorf("occlusion.csv starts\n%s\nwant\n%s", csv, want)
	}

	lat, err := ev.Latent()
	if err != nil {
		t.Fatal(err)
	}
	occTrain, _ := (&countingEncoder{calls: map[string]int{}}).Encode(ev.Train, &Occlusion{P: 0.3, Tile: 4, Seed: 5})
	m, err := DistanceRatios(ftr, occTrain, PairConfig{}, rng.Key{Seed: 5, Stream: rng.StreamEval, Seq: 1 << 33})
	if err != nil {
		t.Fatal(err)
	}
	if lat.LatentMetrics != m || lat.P != 0.3 || lat.Tile != 4 || !(m.IntraInter > 0 && m.IntraInter < 1) {
		t.Errorf("latent %+v, want %+v", lat, m)
	}

	p, err := ev.PCA()
	if err != nil {
		t.Fatal(err)
	}
	if p.Images != 40 || p.PCA.K() != 2 || math.IsNaN(p.PCA.Variance[0]) {
		t.Errorf("pca %+v", p)
	}
	pl, err := ev.Plots()
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Files) != 2 || pl.Skipped != 0 {
		t.Errorf("plots %+v", pl)
	}
	ex, err := ev.Export()
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Sets) != 2 || ex.Sets[0].Name != "train" || ex.Sets[0].N != 150 || ex.Sets[1].N != 75 || ex.Sets[1].D != 4 {
		t.Errorf("export %+v", ex)
	}
}

// TestPlotsWithoutRecords checks that Plots fails on a run that has logged
// nothing to plot, still reporting the skipped partial line.
func TestPlotsWithoutRecords(t *testing.T) {
	ev, _ := newTestEvaluator(t)
	if err := os.WriteFile(filepath.Join(ev.RunDir, metrics.FileName), []byte(`{"kind":"train","epoch":1`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ev.Plots()
	if err == nil || r == nil || r.Skipped != 1 || len(r.Files) != 0 {
		t.Errorf("plots of no records: %+v, %v", r, err)
	}
}

// TestEncodePrefixIndependent checks what PCA relies on when it takes the
// codes of the first test images from those of the whole set: with a real
// encoder, an image's code does not depend on the other images of its
// batch, so encoding the first n images gives the first n rows of the
// whole set's encoding bit for bit.
func TestEncodePrefixIndependent(t *testing.T) {
	spec := model.Spec{C: 1, NF: 4, NZ: 8, Batch: 16}
	cond, err := conditions.Lookup("pad")
	if err != nil {
		t.Fatal(err)
	}
	p, err := phases.New(cpu.New(2), spec, cond, phases.Options{Seed: 3, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewFrozenEncoder(p)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	set := testSet("test", 45, 3)
	whole, err := enc.Encode(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(whole.Row(0), whole.Row(1)) || slices.Equal(whole.Row(17), whole.Row(18)) {
		t.Fatalf("images encode alike: %v %v", whole.Row(0), whole.Row(1))
	}
	for _, n := range []int{1, 7, 16, 21, 44} {
		part, err := enc.Encode(set.Subset(n), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range part.X {
			if math.Float32bits(v) != math.Float32bits(whole.X[i]) {
				t.Fatalf("first %d images: value %d is %v, %v in the whole set's encoding", n, i, v, whole.X[i])
			}
		}
	}
}
