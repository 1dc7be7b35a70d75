// Package parity compares pad with an independent PyTorch implementation
// of PAD over many iterations.
//
// scripts/pad_torch.py implements the training cycle in PyTorch (float64)
// from pad-reference.md, draws pad's random numbers (Philox batch order,
// occlusion masks, noise, initial parameters) and records a trajectory:
// every loss of every iteration and every parameter every few
// iterations. RunPad trains the same model with pad's real code paths —
// train.Trainer with its loader, epoch handling and checkpoints, phases.PAD
// and the CPU backend's float64 twin — and records the same numbers;
// Compare measures the relative error of each. An identical algorithm
// stays near float64 round-off for the whole run (the errors grow slowly
// as the training dynamics amplify round-off); a semantic difference shows
// up as an error that jumps to the size of the quantity itself.
//
// The data are the embedded Fashion-MNIST sample (C = 1) or its tinted
// colour version (C = 3, Tint), which the pad side reads as CIFAR-10
// binary batch files (WriteCIFAR) so that the real cifar10 reader and
// loader feed it.
package parity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
	"github.com/pad-dreaming/pad/train"
)

// Losses names the numbers recorded per iteration, in the order of
// phases.Stat (scripts/pad_torch.py uses the same names).
var Losses = [phases.NumStats]string{
	phases.StatWakeRec: "wake_rec", phases.StatKL: "wake_kl", phases.StatReal: "wake_real",
	phases.StatNREM: "nrem", phases.StatFake: "rem_fake", phases.StatDX: "d_x",
	phases.StatDGZ: "d_gz", phases.StatLatentNorm: "latent_norm",
}

// The tint of the colour set: image i's colours come from block 0 of the
// stream (TintSeed, TintStream, i).
const (
	TintSeed   = 0x74696E74 // "tint"
	TintStream = 101
)

// Tint returns the colour version of a grayscale set of 32×32 images:
// image i gets a foreground colour (bytes 0–2 of word 0) and a background
// colour (bytes 0–2 of word 1), and channel c of a pixel of gray level g
// becomes (g·fg_c + (255−g)·bg_c + 127) div 255. Labels and classes stay.
func Tint(gray *dataset.Set) (*dataset.Set, error) {
	if gray.C != 1 {
		return nil, fmt.Errorf("parity: tint: %d channels, want 1", gray.C)
	}
	hw := gray.H * gray.W
	out := &dataset.Set{Name: gray.Name + "-tinted", N: gray.N, C: 3, H: gray.H, W: gray.W,
		Images: make([]byte, gray.N*3*hw), Labels: gray.Labels, Classes: gray.Classes}
	for i := 0; i < gray.N; i++ {
		w := rng.Key{Seed: TintSeed, Stream: TintStream, Seq: uint64(i)}.Block(0)
		src := gray.Images[i*hw : (i+1)*hw]
		for c := 0; c < 3; c++ {
			fg, bg := int(w[0]>>(8*c)&255), int(w[1]>>(8*c)&255)
			dst := out.Images[(i*3+c)*hw : (i*3+c+1)*hw]
			for j, g := range src {
				dst[j] = byte((int(g)*fg + (255-int(g))*bg + 127) / 255)
			}
		}
	}
	return out, out.Validate()
}

// WriteCIFAR writes train and test (3×32×32 images) into dir as CIFAR-10
// binary batch files: every training image in data_batch_1.bin, the first
// training image again in data_batch_2.bin … data_batch_5.bin (the reader
// wants five files; a train_limit of train.N cuts the repeats off), and
// test in test_batch.bin.
func WriteCIFAR(dir string, train, test *dataset.Set) error {
	for _, s := range []*dataset.Set{train, test} {
		if s.C != 3 || s.H != 32 || s.W != 32 || s.N < 1 {
			return fmt.Errorf("parity: CIFAR files need 3×32×32 images, got %d of %d×%d×%d", s.N, s.C, s.H, s.W)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, s *dataset.Set, n int) error {
		d := s.ImageSize()
		buf := make([]byte, 0, n*(d+1))
		for i := 0; i < n; i++ {
			buf = append(buf, s.Labels[i])
			buf = append(buf, s.Image(i)...)
		}
		return os.WriteFile(filepath.Join(dir, name), buf, 0o644)
	}
	if err := write("data_batch_1.bin", train, train.N); err != nil {
		return err
	}
	for k := 2; k <= 5; k++ {
		if err := write(fmt.Sprintf("data_batch_%d.bin", k), train, 1); err != nil {
			return err
		}
	}
	return write("test_batch.bin", test, test.N)
}

// Settings describe one trajectory.
type Settings struct {
	Condition string
	Channels  int // 1: the embedded sample; 3: its tinted version
	NF, NZ    int
	Batch     int
	Images    int // the first Images training images; the last partial batch of an epoch is dropped
	Iters     int
	Every     int // parameters are recorded after every Every iterations (and at 0 and Iters)
	Seed      uint64
}

// BatchesPerEpoch is ⌊Images/Batch⌋.
func (s Settings) BatchesPerEpoch() int { return s.Images / s.Batch }

func (s Settings) String() string {
	return fmt.Sprintf("%s c%d (nf %d, nz %d, batch %d, %d images = %d batches per epoch, %d iterations, seed %d)",
		s.Condition, s.Channels, s.NF, s.NZ, s.Batch, s.Images, s.BatchesPerEpoch(), s.Iters, s.Seed)
}

// Trajectory is what one side recorded.
type Trajectory struct {
	Losses map[string][]float64         // per iteration
	Params map[int]map[string][]float64 // after iteration k (0: initial)
	Meta   map[string]string            // the file's metadata (torch side)
	IDs    [][]int64                    // the images of each batch (torch side)
	Occl   []OcclusionDraw              // the occlusion draw of each iteration
}

// OcclusionDraw is the drop probability and tile size of one iteration's
// NREM mask.
type OcclusionDraw struct {
	P    float32
	Tile int
}

// Snapshots returns the iterations Params holds, in order.
func (t *Trajectory) Snapshots() []int {
	var ks []int
	for k := range t.Params {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// ReadTrajectory reads a trajectory written by scripts/pad_torch.py and
// the settings it was made with.
func ReadTrajectory(path string) (*Trajectory, Settings, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, Settings{}, err
	}
	m := f.Metadata
	var s Settings
	atoi := func(k string) int {
		v, e := strconv.Atoi(m[k])
		if e != nil && err == nil {
			err = fmt.Errorf("%s: metadata %q = %q: %v", path, k, m[k], e)
		}
		return v
	}
	s.Condition = m["condition"]
	s.Channels, s.NF, s.NZ, s.Batch = atoi("channels"), atoi("nf"), atoi("nz"), atoi("batch")
	s.Images, s.Iters, s.Every, s.Seed = atoi("images"), atoi("iters"), atoi("every"), uint64(atoi("seed"))
	if err != nil {
		return nil, s, err
	}
	t := &Trajectory{Losses: map[string][]float64{}, Params: map[int]map[string][]float64{}, Meta: m}
	for name, ts := range f.Tensors {
		if loss, ok := strings.CutPrefix(name, "loss/"); ok {
			if t.Losses[loss], err = ts.F64(); err != nil {
				return nil, s, err
			}
		} else if rest, ok := strings.CutPrefix(name, "param/"); ok {
			// param/<iteration, six digits>/<tensor>
			iter, param, _ := strings.Cut(rest, "/")
			k, e := strconv.Atoi(iter)
			if e != nil || param == "" {
				return nil, s, fmt.Errorf("%s: tensor %q: want param/<iteration>/<name>", path, name)
			}
			if t.Params[k] == nil {
				t.Params[k] = map[string][]float64{}
			}
			if t.Params[k][param], err = ts.F64(); err != nil {
				return nil, s, err
			}
		}
	}
	for _, k := range []int{0, s.Iters} {
		if len(t.Params[k]) == 0 {
			return nil, s, fmt.Errorf("%s: no parameters after iteration %d (the script records them at 0 and at the end)", path, k)
		}
	}
	if ids, ok := f.Get("batch/ids"); ok {
		v, err := ids.I64()
		if err != nil {
			return nil, s, err
		}
		for i := 0; i+s.Batch <= len(v); i += s.Batch {
			t.IDs = append(t.IDs, v[i:i+s.Batch])
		}
	}
	if pt, ok := f.Get("occlusion/p"); ok {
		ps, err := pt.F32()
		if err != nil {
			return nil, s, err
		}
		tt, ok := f.Get("occlusion/tile")
		if !ok {
			return nil, s, fmt.Errorf("%s: occlusion/p without occlusion/tile", path)
		}
		tiles, err := tt.I64()
		if err != nil {
			return nil, s, err
		}
		if len(tiles) != len(ps) {
			return nil, s, fmt.Errorf("%s: %d occlusion tiles for %d drop probabilities", path, len(tiles), len(ps))
		}
		for i := range ps {
			t.Occl = append(t.Occl, OcclusionDraw{P: ps[i], Tile: int(tiles[i])})
		}
	}
	for _, name := range Losses {
		if len(t.Losses[name]) != s.Iters {
			return nil, s, fmt.Errorf("%s: loss/%s has %d values, want %d", path, name, len(t.Losses[name]), s.Iters)
		}
	}
	return t, s, nil
}

// Data returns the training set of s (the first s.Images images) and a
// small test set, as pad loads them: the embedded sample, tinted for C = 3.
func Data(s Settings) (trainSet, testSet *dataset.Set, err error) {
	if trainSet, err = dataset.Load("embedded", "", true); err != nil {
		return nil, nil, err
	}
	if testSet, err = dataset.Load("embedded", "", false); err != nil {
		return nil, nil, err
	}
	if s.Images > trainSet.N {
		return nil, nil, fmt.Errorf("parity: %d images wanted, the sample has %d", s.Images, trainSet.N)
	}
	trainSet, testSet = trainSet.Subset(s.Images), testSet.Subset(16)
	if s.Channels == 3 {
		if trainSet, err = Tint(trainSet); err != nil {
			return nil, nil, err
		}
		if testSet, err = Tint(testSet); err != nil {
			return nil, nil, err
		}
	}
	return trainSet, testSet, nil
}

// SHA256 returns the hex sha256 of a set's pixels (the torch side's
// data_sha256).
func SHA256(s *dataset.Set) string {
	h := sha256.Sum256(s.Images)
	return hex.EncodeToString(h[:])
}

// Config returns the training configuration of s: pad's defaults with the
// sizes, the condition and the data of s, no probe, no samples, and
// train.max_iters = s.Iters.
func Config(s Settings, dataDir string) configs.Config {
	cfg := configs.Default()
	cfg.Name = "parity"
	cfg.Seed = s.Seed
	cfg.Data.Dataset = "embedded"
	if s.Channels == 3 {
		cfg.Data.Dataset, cfg.Data.Root = "cifar10", dataDir
	}
	cfg.Data.TrainLimit, cfg.Data.TestLimit = s.Images, 16
	cfg.Model.NF, cfg.Model.NZ = s.NF, s.NZ
	cfg.Train.Batch = s.Batch
	cfg.Train.Condition = s.Condition
	bpe := s.BatchesPerEpoch()
	cfg.Train.Epochs = (s.Iters + bpe - 1) / bpe
	cfg.Train.MaxIters = s.Iters
	cfg.Train.LogEvery = s.Iters
	cfg.Train.SampleEvery = 0
	cfg.Eval.Every = 0
	cfg.Device.Kind = "cpu"
	return cfg
}

// RunOptions tune RunPad.
type RunOptions struct {
	Threads int       // the backend's threads (0: all cores)
	Log     io.Writer // the trainer's notices (nil: discard)
	// NudgeInit moves every initial parameter by one float64 ulp before
	// training: the difference to an unmoved run is the float64 floor of
	// the trajectory, how far round-off alone carries it.
	NudgeInit bool
}

// RunPad trains s with pad's trainer on the CPU backend's float64 twin in
// the run directory dir/run (the C = 3 data go to dir/cifar) and records
// the trajectory (with the occlusion draw pad's model makes at each
// iteration), and returns it with the training set the trainer loaded.
func RunPad(s Settings, dir string, opt RunOptions) (*Trajectory, *dataset.Set, error) {
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	trainSet, testSet, err := Data(s)
	if err != nil {
		return nil, nil, err
	}
	dataDir := filepath.Join(dir, "cifar")
	if s.Channels == 3 {
		if err := WriteCIFAR(dataDir, trainSet, testSet); err != nil {
			return nil, nil, err
		}
	}
	b := cpu.New64(opt.Threads)
	tr, err := train.New(train.Options{Config: Config(s, dataDir), Dir: filepath.Join(dir, "run"), Backend: b,
		Log: log, Progress: train.ProgressNone})
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	p := tr.Model
	if tr.Train.C != s.Channels || tr.Train.N != s.Images {
		return nil, nil, fmt.Errorf("parity: the trainer loaded %d images of %d channels, want %d of %d", tr.Train.N, tr.Train.C, s.Images, s.Channels)
	}
	if opt.NudgeInit {
		for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
			if err := nudge(n.Values); err != nil {
				return nil, nil, err
			}
		}
	}
	t := &Trajectory{Losses: map[string][]float64{}, Params: map[int]map[string][]float64{}}
	for _, name := range Losses {
		t.Losses[name] = make([]float64, 0, s.Iters)
	}
	stats := p.StatsBuf()
	var recErr error
	fail := func(err error) {
		if recErr == nil {
			recErr = err
		}
	}
	snap := func(k int) {
		m := map[string][]float64{}
		for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
			for i, ts := range n.Tensors {
				v, err := Float64s(n.Param(i))
				if err != nil {
					fail(err)
				}
				m[n.Prefix+"."+ts.Name] = v
			}
		}
		t.Params[k] = m
	}
	snap(0)
	phasesDone, iter := 0, 0
	p.OnPhase = func(string) {
		// Wake, NREM and REM each report once per iteration; after the
		// third the iteration is complete.
		if phasesDone++; phasesDone%3 != 0 {
			return
		}
		v, err := Float64s(stats)
		if err != nil {
			fail(err)
		}
		// The trainer moves its position on after the iteration: it is
		// still the one that drew this iteration's mask.
		if at := tr.Position().Iter; at != iter {
			fail(fmt.Errorf("parity: the trainer is at iteration %d, %d recorded", at, iter))
		}
		p0, tile := p.OcclusionParams(uint64(iter))
		t.Occl = append(t.Occl, OcclusionDraw{P: p0, Tile: tile})
		for i, name := range Losses {
			if i < len(v) {
				t.Losses[name] = append(t.Losses[name], v[i])
			}
		}
		iter++
		if iter%s.Every == 0 || iter == s.Iters {
			snap(iter)
		}
	}
	if _, err := tr.Run(context.Background()); err != nil {
		return nil, nil, err
	}
	if recErr != nil {
		return nil, nil, recErr
	}
	if iter != s.Iters {
		return nil, nil, fmt.Errorf("parity: the trainer ran %d iterations, want %d", iter, s.Iters)
	}
	return t, tr.Train, nil
}

// Float64s returns a copy of the values behind a Buf of the CPU backend's
// float64 twin, without rounding them to float32 as Download would.
func Float64s(b backend.Buf) ([]float64, error) {
	d, err := twinSlice(b)
	if err != nil {
		return nil, err
	}
	return append([]float64(nil), d...), nil
}

// twinSlice returns the memory behind a Buf of the CPU backend's float64
// twin.
func twinSlice(b backend.Buf) ([]float64, error) {
	d, ok := cpu.Values[float64](b)
	if !ok {
		return nil, fmt.Errorf("parity: %T is not a buffer of the CPU float64 backend", b)
	}
	return d, nil
}

// nudge moves every value of the float64 buffer b by one ulp, up and
// down alternately.
func nudge(b backend.Buf) error {
	d, err := twinSlice(b)
	if err != nil {
		return err
	}
	for i, v := range d {
		if i%2 == 0 {
			d[i] = math.Nextafter(v, math.Inf(1))
		} else {
			d[i] = math.Nextafter(v, math.Inf(-1))
		}
	}
	return nil
}

// Result is the comparison of two trajectories.
type Result struct {
	Settings Settings
	// LossErr[name][i] is |pad − torch| / |torch| of that number at
	// iteration i.
	LossErr map[string][]float64
	// MaxLossErr[i] is the largest of the loss errors at iteration i.
	MaxLossErr []float64
	// ParamErr[k][name] is ‖pad − torch‖ / ‖torch‖ of a parameter tensor
	// after iteration k.
	ParamErr map[int]map[string]float64
	// Worst loss and parameter errors and where they are.
	WorstLoss, WorstParam         float64
	WorstLossAt, WorstParamAt     string
	WorstLossIter, WorstParamIter int
}

// Compare measures pad against torch.
func Compare(s Settings, pad, torch *Trajectory) (*Result, error) {
	r := &Result{Settings: s, LossErr: map[string][]float64{}, MaxLossErr: make([]float64, s.Iters),
		ParamErr: map[int]map[string]float64{}, WorstLoss: -1, WorstParam: -1}
	for _, name := range Losses {
		a, b := pad.Losses[name], torch.Losses[name]
		if len(a) != s.Iters || len(b) != s.Iters {
			return nil, fmt.Errorf("parity: loss %s: %d iterations from pad, %d from torch, want %d", name, len(a), len(b), s.Iters)
		}
		e := make([]float64, s.Iters)
		for i := range e {
			e[i] = relErr1(a[i], b[i])
			if e[i] > r.MaxLossErr[i] || math.IsNaN(e[i]) {
				r.MaxLossErr[i] = e[i]
			}
			if e[i] > r.WorstLoss || math.IsNaN(e[i]) {
				r.WorstLoss, r.WorstLossAt, r.WorstLossIter = e[i], name, i
			}
		}
		r.LossErr[name] = e
	}
	for _, k := range torch.Snapshots() {
		pk, ok := pad.Params[k]
		if !ok {
			return nil, fmt.Errorf("parity: pad recorded no parameters after iteration %d", k)
		}
		if len(pk) != len(torch.Params[k]) {
			return nil, fmt.Errorf("parity: after iteration %d: %d parameter tensors from pad, %d from torch", k, len(pk), len(torch.Params[k]))
		}
		r.ParamErr[k] = map[string]float64{}
		for name, want := range torch.Params[k] {
			got, ok := pk[name]
			if !ok || len(got) != len(want) {
				return nil, fmt.Errorf("parity: parameter %s after iteration %d: pad has %d values, torch %d", name, k, len(got), len(want))
			}
			e := RelErr(got, want)
			r.ParamErr[k][name] = e
			if e > r.WorstParam || math.IsNaN(e) {
				r.WorstParam, r.WorstParamAt, r.WorstParamIter = e, name, k
			}
		}
	}
	return r, nil
}

// MaxParamErr returns the largest parameter error after iteration k.
func (r *Result) MaxParamErr(k int) float64 {
	w := 0.0
	for _, e := range r.ParamErr[k] {
		if e > w || math.IsNaN(e) {
			w = e
		}
	}
	return w
}

// RelErr is ‖a − b‖ / ‖b‖ (‖a‖ when b is zero).
func RelErr(a, b []float64) float64 {
	var d, n float64
	for i := range b {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

func relErr1(a, b float64) float64 {
	if b == 0 {
		return math.Abs(a)
	}
	return math.Abs(a-b) / math.Abs(b)
}

// CheckBatches compares the batches pad's loader hands out for s with
// the images the torch side used (torch.IDs): it returns the first
// iteration whose batch differs, or −1.
func CheckBatches(s Settings, set *dataset.Set, torch *Trajectory) (int, error) {
	if len(torch.IDs) < s.Iters {
		return 0, fmt.Errorf("parity: the torch trajectory lists the images of %d batches, want %d", len(torch.IDs), s.Iters)
	}
	l, err := dataset.NewLoader(set, s.Batch, s.Seed)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	d := set.ImageSize()
	want := make([]float32, d)
	for it := 0; it < s.Iters; it++ {
		b, err := l.Next()
		if err != nil {
			return 0, err
		}
		for j, id := range torch.IDs[it] {
			dataset.Scale(want, set.Image(int(id)))
			got := b.X[j*d : (j+1)*d]
			for k := range want {
				if got[k] != want[k] {
					l.Release(b)
					return it, nil
				}
			}
		}
		l.Release(b)
	}
	return -1, nil
}

// CheckOcclusion compares the occlusion draws pad's model made at every
// iteration (pad.Occl, recorded by RunPad) with the torch side's: it
// returns the first iteration that differs, or −1.
func CheckOcclusion(pad, torch *Trajectory) (int, error) {
	if len(pad.Occl) != len(torch.Occl) {
		return 0, fmt.Errorf("parity: occlusion draws of %d iterations from pad, %d from torch", len(pad.Occl), len(torch.Occl))
	}
	for it, o := range torch.Occl {
		if pad.Occl[it] != o {
			return it, nil
		}
	}
	return -1, nil
}
