package parity

import (
	"fmt"
	"math"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// draws.safetensors holds random numbers drawn by scripts/pad_torch.py
// (numpy, written from internal/rng and backend/occlusion.go; regenerate
// with `make parity-draws`). pad must draw the very same bits: the PyTorch
// side of the parity runs feeds its model with these numbers.
const drawsFile = "../../testdata/parity/draws.safetensors"

type draws struct {
	t *testing.T
	f *safetensors.File
}

func loadDraws(t *testing.T) draws {
	f, err := safetensors.Read(drawsFile)
	if err != nil {
		t.Fatal(err)
	}
	return draws{t, f}
}

// values returns the values of the tensor called name, read by read
// (one of safetensors.Tensor's typed readers); a tensor that is missing,
// of another dtype or empty fails the test.
func values[T any](d draws, name string, read func(*safetensors.Tensor) ([]T, error)) []T {
	d.t.Helper()
	ts, ok := d.f.Get(name)
	if !ok {
		d.t.Fatalf("%s has no tensor %q", drawsFile, name)
	}
	v, err := read(ts)
	if err != nil {
		d.t.Fatal(err)
	}
	if len(v) == 0 {
		d.t.Fatalf("%s: tensor %q is empty", drawsFile, name)
	}
	return v
}

func (d draws) f32(name string) []float32 {
	d.t.Helper()
	return values(d, name, (*safetensors.Tensor).F32)
}

func (d draws) i64(name string) []int64 {
	d.t.Helper()
	return values(d, name, (*safetensors.Tensor).I64)
}

func (d draws) u8(name string) []byte {
	d.t.Helper()
	return values(d, name, (*safetensors.Tensor).U8)
}

// sameBits fails unless got and want are equal bit for bit.
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, the script drew %d", name, len(got), len(want))
		return
	}
	n, first := 0, -1
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d values differ; first at %d: pad %v, script %v", name, n, len(got), first, got[first], want[first])
	}
}

const drawSeed = 0x1234_5678_9ABC_DEF0

func TestDrawsPhilox(t *testing.T) {
	d := loadDraws(t)
	for _, c := range []struct {
		name string
		key  rng.Key
	}{
		{"philox/words", rng.Key{Seed: drawSeed, Stream: 9, Seq: 7<<32 | 5}},
		{"philox/zero", rng.Key{}},
	} {
		want := d.i64(c.name)
		for i, w := range want {
			if got := c.key.Word(uint64(i)); int64(got) != w {
				t.Fatalf("%s: word %d: pad %#x, script %#x", c.name, i, got, w)
			}
		}
	}
	want := d.f32("uniform")
	got := make([]float32, len(want))
	rng.FillUniform(got, rng.Key{Seed: drawSeed, Stream: 6, Seq: 3})
	sameBits(t, "uniform", got, want)
	want = d.f32("normal")
	got = make([]float32, len(want))
	rng.FillNormal(got, rng.Key{Seed: drawSeed, Stream: rng.StreamREMNoise, Seq: 41})
	sameBits(t, "normal", got, want)
}

// TestDrawsRun checks what a training run draws: the shuffles of the
// loader, the occlusion masks and their parameters, the Wake and REM
// noise, the initial parameters.
func TestDrawsRun(t *testing.T) {
	d := loadDraws(t)
	for _, c := range []struct{ n, epochs int }{{725, 4}, {100, 4}, {5, 2}} {
		for e := 0; e < c.epochs; e++ {
			name := fmt.Sprintf("shuffle/n%d/e%d", c.n, e)
			want := d.i64(name)
			if len(want) != c.n {
				t.Fatalf("%s: %d positions, want %d", name, len(want), c.n)
			}
			got := make([]int, c.n)
			rng.Permutation(got, rng.Key{Seed: 1, Stream: rng.StreamShuffle, Seq: uint64(e)})
			for i := range got {
				if int64(got[i]) != want[i] {
					t.Fatalf("%s: position %d: pad %d, script %d", name, i, got[i], want[i])
				}
			}
		}
	}
	for _, it := range []int{0, 1, 99, 100, 299} {
		pre := fmt.Sprintf("mask/it%d", it)
		occ := backend.Occlusion{H: 32, W: 32, Masks: 1, P: -1, MaxTile: 8,
			Key: rng.Key{Seed: 1, Stream: rng.StreamNREMMask, Seq: uint64(it)}}
		checkMask(t, d, pre, occ)
		p, tile := occ.Params(0)
		sameBits(t, pre+"/p", []float32{p}, d.f32(pre+"/p"))
		if want := d.i64(pre + "/tile"); int64(tile) != want[0] {
			t.Errorf("%s/tile: pad %d, script %d", pre, tile, want[0])
		}
		for _, n := range []struct {
			name   string
			stream uint32
		}{{"rem_noise", rng.StreamREMNoise}, {"wake_noise", rng.StreamWakeNoise}} {
			name := fmt.Sprintf("%s/it%d", n.name, it)
			want := d.f32(name)
			got := make([]float32, len(want))
			rng.FillNormal(got, rng.Key{Seed: 1, Stream: n.stream, Seq: uint64(it)})
			sameBits(t, name, got, want)
		}
	}
	checkMask(t, d, "mask/per_image", backend.Occlusion{H: 32, W: 32, Masks: 4, P: -1, MaxTile: 8,
		Key: rng.Key{Seed: 3, Stream: rng.StreamNREMMask, Seq: 7}})
	checkMask(t, d, "mask/fixed", backend.Occlusion{H: 32, W: 32, Masks: 2, P: 0.3, Tile: 4, MaxTile: 8,
		Key: rng.Key{Seed: 3, Stream: rng.StreamNREMMask, Seq: 8}})
	checkMask(t, d, "mask/h20w27", backend.Occlusion{H: 20, W: 27, Masks: 3, P: -1, MaxTile: 8,
		Key: rng.Key{Seed: 5, Stream: rng.StreamNREMMask, Seq: 1}})

	// The occlusion draws of 1000 iterations: the same bits, and the
	// reference's distribution (p uniform in (0, 1), tile uniform in 1..8).
	ps, tiles := d.f32("mask/p1000"), d.i64("mask/tile1000")
	var sum float64
	count := make([]int, 9)
	for it := range ps {
		occ := backend.Occlusion{H: 32, W: 32, Masks: 1, P: -1, MaxTile: 8,
			Key: rng.Key{Seed: 1, Stream: rng.StreamNREMMask, Seq: uint64(it)}}
		p, tile := occ.Params(0)
		if p != ps[it] || int64(tile) != tiles[it] {
			t.Fatalf("occlusion draw of iteration %d: pad p=%v tile %d, script p=%v tile %d", it, p, tile, ps[it], tiles[it])
		}
		sum += float64(p)
		count[tile]++
	}
	if m := sum / float64(len(ps)); math.Abs(m-0.5) > 0.03 {
		t.Errorf("mean drop probability of %d draws %.3f, want 0.5 ± 0.03", len(ps), m)
	}
	for tile := 1; tile <= 8; tile++ {
		if c := count[tile]; c < 85 || c > 165 { // 125 ± 3.6σ
			t.Errorf("tile %d drawn %d times in %d, want about 125", tile, c, len(ps))
		}
	}
}

func checkMask(t *testing.T, d draws, name string, occ backend.Occlusion) {
	t.Helper()
	want := d.u8(name)
	got := make([]float32, occ.Masks*occ.H*occ.W)
	occ.Mask(got)
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, the script drew %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i] != float32(want[i]) {
			t.Fatalf("%s: value %d (mask %d, row %d, column %d): pad %v, script %d", name, i,
				i/(occ.H*occ.W), i/occ.W%occ.H, i%occ.W, got[i], want[i])
		}
	}
}

// TestDrawsInit checks the initial parameters: PAD's own initialisation
// (phases.New) against the script's, written from pad-reference.md's
// init rules and internal/rng.
func TestDrawsInit(t *testing.T) {
	d := loadDraws(t)
	for _, c := range []int{1, 3} {
		cond, err := conditions.Lookup("pad")
		if err != nil {
			t.Fatal(err)
		}
		b := cpu.New(1)
		p, err := phases.New(b, model.Spec{C: c, NF: 2, NZ: 4, Batch: 2}, cond,
			phases.Options{Seed: 1, AdamE: phases.DefaultAdam, AdamG: phases.DefaultAdam, MaxTile: 8})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
			for i, ts := range n.Tensors {
				name := fmt.Sprintf("init/c%d/%s.%s", c, n.Prefix, ts.Name)
				got := make([]float32, ts.Len)
				b.Download(got, n.Param(i))
				sameBits(t, name, got, d.f32(name))
			}
		}
	}
}

// TestDrawsData checks the data of the parity runs: the embedded sample
// resized as PIL resizes it, and its tinted version.
func TestDrawsData(t *testing.T) {
	d := loadDraws(t)
	set, err := dataset.Load("embedded", "", true)
	if err != nil {
		t.Fatal(err)
	}
	gray := d.u8("data/gray")
	n := len(gray) / 1024
	set = set.Subset(n)
	if string(set.Images) != string(gray) {
		t.Errorf("the first %d images of the embedded sample differ from the script's (PIL bilinear resize)", n)
	}
	tinted, err := Tint(set)
	if err != nil {
		t.Fatal(err)
	}
	if string(tinted.Images) != string(d.u8("data/tinted")) {
		t.Error("tinted images differ from the script's")
	}
}
