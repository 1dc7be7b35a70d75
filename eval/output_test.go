package eval

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/metrics"
)

func TestGridPixels(t *testing.T) {
	// Three 2×2 grayscale images in rows of 2: a 2×2-cell grid of
	// (2·3+1)×(2·3+1) pixels with the fourth cell empty.
	imgs := []float32{
		-1, 1, 0, 5, // values clamp: 5 → 255
		1, 1, 1, 1,
		-1, -1, -1, -2, // -2 → 0
	}
	g, err := Grid(imgs, 3, 1, 2, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Bounds(); b.Dx() != 7 || b.Dy() != 7 {
		t.Fatalf("grid is %v, want 7×7", b)
	}
	gray := func(x, y int) uint8 {
		c := g.RGBAAt(x, y)
		if c.R != c.G || c.G != c.B || c.A != 255 {
			t.Errorf("pixel (%d,%d) = %v is not opaque gray", x, y, c)
		}
		return c.R
	}
	want := map[[2]int]uint8{
		{1, 1}: 0, {2, 1}: 255, {1, 2}: 128, {2, 2}: 255, // image 0
		{4, 1}: 255, {5, 2}: 255, // image 1
		{1, 4}: 0, {2, 5}: 0, // image 2
	}
	for p, v := range want {
		if got := gray(p[0], p[1]); got != v {
			t.Errorf("pixel %v = %d, want %d", p, got, v)
		}
	}
	for _, p := range [][2]int{{0, 0}, {3, 1}, {1, 3}, {6, 6}, {3, 3}, {0, 5}, {4, 4} /* empty cell */} {
		if c := g.RGBAAt(p[0], p[1]); c != separatorColor {
			t.Errorf("separator pixel %v = %v", p, c)
		}
	}

	// RGB: one 1×1 image of (−1, 0, 1).
	rgb, err := Grid([]float32{-1, 0, 1}, 1, 3, 1, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	if c := rgb.RGBAAt(1, 1); c.R != 0 || c.G != 128 || c.B != 255 {
		t.Errorf("RGB pixel = %v", c)
	}
	if rgb.Bounds().Dx() != 3 {
		t.Errorf("cols are capped at n: width %d, want 3", rgb.Bounds().Dx())
	}

	for name, c := range map[string]struct{ n, c, h, w, cols, len int }{
		"channels": {1, 2, 2, 2, 1, 8}, "length": {2, 1, 2, 2, 1, 7}, "cols": {1, 1, 1, 1, 0, 1},
		"empty": {0, 1, 1, 1, 1, 0}, "huge": {1 << 20, 1, 1 << 20, 1 << 20, 1, 1},
	} {
		if _, err := Grid(make([]float32, c.len), c.n, c.c, c.h, c.w, c.cols); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFilters(t *testing.T) {
	// Two 1-channel 4×4 filters: a ramp 0..15 and a constant.
	w := make([]float32, 2*16)
	for i := 0; i < 16; i++ {
		w[i] = float32(i) * 0.01
		w[16+i] = 3
	}
	img, err := Filters(w, 2, 1, 4, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Scale 4: cells of 16×16, width 2·17+1.
	if b := img.Bounds(); b.Dx() != 35 || b.Dy() != 18 {
		t.Fatalf("filters image is %v", b)
	}
	if c := img.RGBAAt(1, 1); c.R != 0 { // ramp minimum
		t.Errorf("filter minimum drawn as %v", c)
	}
	if c := img.RGBAAt(16, 16); c.R != 255 { // ramp maximum, last upscaled pixel
		t.Errorf("filter maximum drawn as %v", c)
	}
	if a, b := img.RGBAAt(1, 1), img.RGBAAt(4, 4); a != b { // same source pixel
		t.Errorf("nearest upscaling: %v vs %v", a, b)
	}
	if c := img.RGBAAt(5, 1); c.R != 17 { // value 1 of 0..15 → 255/15
		t.Errorf("second filter column drawn as %v, want 17", c)
	}
	if c := img.RGBAAt(20, 5); c.R != 128 {
		t.Errorf("constant filter drawn as %v, want mid-gray", c)
	}
	if c := img.RGBAAt(17, 5); c != separatorColor {
		t.Errorf("separator = %v", c)
	}
	rgb, err := Filters([]float32{0, 1, 1, 0, 0, 0}, 1, 3, 1, 2, 1) // [1,3,1,2]: R, G, B planes of 1×2
	if err != nil {
		t.Fatal(err)
	}
	// Left pixel: R=0 G=1 B=0 → (0,255,0) after min..max over the filter.
	if c := rgb.RGBAAt(1, 1); c.R != 0 || c.G != 255 || c.B != 0 {
		t.Errorf("RGB filter pixel = %v", c)
	}
	if _, err := Filters(w, 2, 1, 4, 3, 2); err == nil {
		t.Errorf("wrong length: no error")
	}
	path := filepath.Join(t.TempDir(), "f.png")
	if err := SavePNG(path, img); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 35, 18)
}

// checkPNG decodes path and checks its size (0 = any).
func checkPNG(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if (w > 0 && b.Dx() != w) || (h > 0 && b.Dy() != h) || b.Dx() == 0 || b.Dy() == 0 {
		t.Errorf("%s is %d×%d, want %d×%d", path, b.Dx(), b.Dy(), w, h)
	}
	return img
}

// distinctColors counts the colours of an image (up to limit).
func distinctColors(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return limit
			}
		}
	}
	return len(seen)
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	f := gaussianClusters(300, 4, 3, 5, 20)
	pca, err := PCA(f, 2)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := pca.Project2(f)
	if err != nil {
		t.Fatal(err)
	}
	occ := make([][2]float64, len(clean))
	for i, p := range clean {
		occ[i] = [2]float64{p[0] * 0.5, p[1] * 0.5}
	}
	path := filepath.Join(dir, "pca.png")
	if err := PlotPCA(path, clean, occ, f.Labels, []string{"zero", "one"}); err != nil {
		t.Fatal(err)
	}
	if img := checkPNG(t, path, 8*plotDPI, 6*plotDPI); distinctColors(img, 20) < 10 {
		t.Errorf("PCA plot looks empty")
	}
	if err := PlotPCA(filepath.Join(dir, "pca2.png"), clean, nil, f.Labels, nil); err != nil {
		t.Fatal(err)
	}
	if err := PlotPCA(filepath.Join(dir, "bad.png"), clean, occ[:3], f.Labels, nil); err == nil {
		t.Errorf("PlotPCA with mismatched lengths: no error")
	}

	var recs []metrics.Record
	for e := 1; e <= 5; e++ {
		v := float64(e)
		recs = append(recs,
			metrics.Record{Kind: metrics.KindTrain, Epoch: e, WakeRec: metrics.F(9)},
			metrics.Record{Kind: metrics.KindEpoch, Epoch: e, DLoss: metrics.F(1.4 - v/20), GLoss: metrics.F(-0.7 + v/40),
				WakeRec: metrics.F(0.3 / v), NREMRec: metrics.F(0.1 / v), KL: metrics.F(0.01 * v), DX: metrics.F(0.6), DGZ: metrics.F(0.4)})
	}
	path = filepath.Join(dir, "losses.png")
	if err := PlotLosses(path, recs); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 12*plotDPI, int(6.4*plotDPI))
	wakeOnly := []metrics.Record{{Kind: metrics.KindEpoch, Epoch: 1, WakeRec: metrics.F(0.2), KL: metrics.F(0)}}
	if err := PlotLosses(filepath.Join(dir, "wake.png"), wakeOnly); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "wake.png"), 8*plotDPI, 0)
	if err := PlotLosses(filepath.Join(dir, "none.png"), recs[:1]); err == nil {
		t.Errorf("PlotLosses without epoch records: no error")
	}

	curves := []Curve{
		{Label: "PAD", X: []float64{0, 1, 2}, Y: []float64{80, 94, 97}, SEM: []float64{0.5, 0.4, 0.2}},
		{Label: "Wake only", X: []float64{0, 1, 2}, Y: []float64{80, 90, 91}},
	}
	path = filepath.Join(dir, "acc.png")
	if err := PlotAccuracy(path, curves, PlotLabels{}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 8*plotDPI, 5*plotDPI)
	path = filepath.Join(dir, "occ.png")
	if err := PlotOcclusion(path, []Curve{{Label: "PAD", X: []float64{0, 0.5, 1}, Y: []float64{97, 60, 10}}}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 8*plotDPI, 5*plotDPI)
	for name, c := range map[string]Curve{
		"lengths": {X: []float64{1, 2}, Y: []float64{1}},
		"sem":     {X: []float64{1, 2}, Y: []float64{1, 2}, SEM: []float64{1}},
		"nan":     {X: []float64{1, 2}, Y: []float64{1, math.NaN()}},
		"empty":   {},
	} {
		if err := PlotAccuracy(filepath.Join(dir, "bad.png"), []Curve{c}, PlotLabels{}); err == nil {
			t.Errorf("PlotAccuracy %s: no error", name)
		}
	}
	if err := PlotAccuracy(filepath.Join(dir, "no-such-dir", "x.png"), curves, PlotLabels{}); err == nil {
		t.Errorf("unwritable path: no error")
	}
}

func TestSaveNpy(t *testing.T) {
	dir := t.TempDir()
	data := []float32{1, -2.5, 3, 4, 5, 6}
	path := filepath.Join(dir, "z.npy")
	if err := SaveNpy(path, data, 2, 3); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\x93NUMPY\x01\x00")) {
		t.Fatalf("magic/version: % x", raw[:8])
	}
	hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
	header := string(raw[10 : 10+hlen])
	if (10+hlen)%16 != 0 {
		t.Errorf("data offset %d is not 16-aligned", 10+hlen)
	}
	for _, want := range []string{"'descr': '<f4'", "'fortran_order': False", "'shape': (2, 3)"} {
		if !strings.Contains(header, want) {
			t.Errorf("header %q lacks %q", header, want)
		}
	}
	body := raw[10+hlen:]
	if len(body) != 4*len(data) {
		t.Fatalf("%d data bytes, want %d", len(body), 4*len(data))
	}
	for i, v := range data {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])); got != v {
			t.Errorf("value %d = %v, want %v", i, got, v)
		}
	}
	// Read back with gorgonia's reader.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	back := new(tensor.Dense)
	if err := back.ReadNpy(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !back.Shape().Eq(tensor.Shape{2, 3}) {
		t.Errorf("read back shape %v", back.Shape())
	}
	got, ok := back.Data().([]float32)
	if !ok || len(got) != len(data) {
		t.Fatalf("read back %T", back.Data())
	}
	for i := range data {
		if got[i] != data[i] {
			t.Errorf("read back value %d = %v", i, got[i])
		}
	}

	// Labels as 1-D int64 and uint8.
	lp := filepath.Join(dir, "y.npy")
	if err := SaveLabelsNpy(lp, []uint8{3, 0, 9}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(lp)
	hlen = int(binary.LittleEndian.Uint16(raw[8:10]))
	header = string(raw[10 : 10+hlen])
	if !strings.Contains(header, "'descr': '<i8'") || !strings.Contains(header, "'shape': (3,)") {
		t.Errorf("labels header %q", header)
	}
	if body := raw[10+hlen:]; len(body) != 24 || binary.LittleEndian.Uint64(body[16:]) != 9 {
		t.Errorf("labels body % x", body)
	}
	up := filepath.Join(dir, "u.npy")
	if err := SaveNpyUint8(up, []uint8{7, 8}, 2); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(up)
	if !bytes.Contains(raw, []byte("'descr': '|u1'")) && !bytes.Contains(raw, []byte("'descr': '<u1'")) {
		t.Errorf("uint8 header %q", raw)
	}
	if !bytes.HasSuffix(raw, []byte{7, 8}) {
		t.Errorf("uint8 body % x", raw)
	}

	for name, shape := range map[string][]int{"mismatch": {4, 2}, "none": nil, "zero": {0, 6}, "negative": {-2, -3}, "overflow": {1 << 40, 1 << 40, 1 << 40}} {
		if err := SaveNpy(filepath.Join(dir, "bad.npy"), data, shape...); err == nil {
			t.Errorf("shape %s %v: no error", name, shape)
		}
	}
}

func TestParseRunName(t *testing.T) {
	cases := []struct {
		name, ds, cond string
		seed           int
		ok             bool
	}{
		{"mnist-pad-s1", "mnist", "pad", 1, true},
		{"cifar10-no-memory-mix-s12", "cifar10", "no-memory-mix", 12, true},
		{"svhn-rem-noise-only-s0", "svhn", "rem-noise-only", 0, true},
		{"fashion-wake-only-s3", "fashion", "wake-only", 3, true},
		{"mnist-some-s-thing-s4", "mnist", "some-s-thing", 4, true},
		{"mnist-pad", "", "", 0, false},
		{"mnist-s1", "", "", 0, false},
		{"mnist-pad-sx", "", "", 0, false},
		{"mnist-pad-s", "", "", 0, false},
		{"-pad-s1", "", "", 0, false},
		{"mnist--s1", "", "", 0, false},
		{"mnist-pad-s1a", "", "", 0, false},
		{"mnist-pad-s99999999999999999999999", "", "", 0, false},
	}
	for _, c := range cases {
		ds, cond, seed, ok := ParseRunName(c.name)
		if ok != c.ok || ds != c.ds || cond != c.cond || seed != c.seed {
			t.Errorf("ParseRunName(%q) = %q, %q, %d, %v; want %q, %q, %d, %v", c.name, ds, cond, seed, ok, c.ds, c.cond, c.seed, c.ok)
		}
	}
}

// fakeConfig is the config of a run named <dataset>-<condition>-s<seed>,
// with the sets applied.
func fakeConfig(t *testing.T, name string, sets ...string) *configs.Config {
	t.Helper()
	ds, cond, seed, ok := ParseRunName(name)
	if !ok {
		t.Fatalf("fakeConfig: %q is not <dataset>-<condition>-s<seed>", name)
	}
	c := configs.Default()
	c.Data.Dataset, c.Train.Condition, c.Seed = ds, cond, uint64(seed)
	for _, kv := range sets {
		if err := c.Set(kv); err != nil {
			t.Fatal(err)
		}
	}
	return &c
}

// probeRecords are the records of a run whose probe reaches final at the
// last epoch.
func probeRecords(epochs int, final float64) []metrics.Record {
	var recs []metrics.Record
	for e := 0; e <= epochs; e++ {
		recs = append(recs, metrics.Record{Kind: metrics.KindEpoch, Epoch: e, KL: metrics.F(1)})
		acc := final - float64(epochs-e)
		recs = append(recs, metrics.Record{Kind: metrics.KindProbe, Epoch: e, TestAcc: metrics.F(acc), TestAccAll: metrics.F(acc + 0.1)})
	}
	return recs
}

// fakeRun builds a run named <dataset>-<condition>-s<seed> whose config
// says so (with sets applied) and whose probe reaches final at the last
// epoch.
func fakeRun(t *testing.T, name string, epochs int, final float64, sets ...string) RunSummary {
	t.Helper()
	return NewRunSummary(filepath.Join("runs", name), fakeConfig(t, name, sets...), probeRecords(epochs, final))
}

func TestReport(t *testing.T) {
	runs := []RunSummary{
		fakeRun(t, "cifar10-wake-only-s1", 2, 42),
		fakeRun(t, "cifar10-pad-s2", 2, 59),
		fakeRun(t, "cifar10-pad-s1", 2, 57),
		fakeRun(t, "cifar10-pad-s3", 2, 58),
		fakeRun(t, "mnist-pad-s1", 1, 97.5),
		fakeRun(t, "cifar10-rem-noise-only-s1", 2, 50),
		fakeRun(t, "cifar10-zzz-custom-s1", 2, 10),
		fakeRun(t, "svhn-no-memory-mix-s1", 2, 60),
		fakeRun(t, "svhn-no-memory-mix-s2", 1, 62), // ended one epoch earlier
	}
	empty := NewRunSummary("mnist-no-rem-s9", fakeConfig(t, "mnist-no-rem-s9"), []metrics.Record{{Kind: metrics.KindEpoch, Epoch: 1}})
	runs = append(runs, empty)
	res, err := Report(runs)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, g := range res.Groups {
		order = append(order, g.Dataset+"/"+g.Condition)
	}
	wantOrder := "cifar10/pad cifar10/wake-only cifar10/rem-noise-only cifar10/zzz-custom svhn/no-memory-mix mnist/pad"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("group order %q, want %q", got, wantOrder)
	}
	pad := res.Groups[0]
	// 57, 58, 59: mean 58, sample sd 1, SEM 1/√3.
	if pad.N != 3 || pad.Mean != 58 || math.Abs(pad.SEM-1/math.Sqrt(3)) > 1e-12 {
		t.Errorf("cifar10/pad: n %d, mean %v, sem %v", pad.N, pad.Mean, pad.SEM)
	}
	if len(pad.Seeds) != 3 || pad.Seeds[0] != 1 || pad.Values[0] != 57 || pad.Epochs[2] != 2 {
		t.Errorf("cifar10/pad per seed: %v %v %v", pad.Seeds, pad.Values, pad.Epochs)
	}
	if strings.Join(pad.Runs, " ") != "cifar10-pad-s1 cifar10-pad-s2 cifar10-pad-s3" || len(pad.Differs) != 0 {
		t.Errorf("cifar10/pad runs %v, differs %v", pad.Runs, pad.Differs)
	}
	if len(pad.Curve.X) != 3 || pad.Curve.Y[0] != 56 || pad.CurveN[0] != 3 {
		t.Errorf("cifar10/pad curve %+v n %v", pad.Curve, pad.CurveN)
	}
	if g := res.Groups[5]; g.N != 1 || g.SEM != 0 || g.Cell() != "97.50 ± — (n=1)" {
		t.Errorf("single run group: %+v, cell %q", g, g.Cell())
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Name != "mnist-no-rem-s9" {
		t.Errorf("skipped %v", res.Skipped)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %v", res.Warnings)
	}

	md := res.Markdown()
	wantLines := []string{
		"| dataset | PAD | w/o memory mix | Wake only | REM from noise only | zzz-custom |",
		"|---|---|---|---|---|---|",
		"| CIFAR-10 | 58.00 ± 0.58 (n=3) | — | 42.00 ± — (n=1) | 50.00 ± — (n=1) | 10.00 ± — (n=1) |",
		"| SVHN | — | 61.00 ± 1.00 (n=2) † | — | — | — |",
		"| MNIST | 97.50 ± — (n=1) | — | — | — | — |",
		"† the runs of this cell ended at different epochs.",
		"Skipped:",
		"- mnist-no-rem-s9: no probe results in metrics.jsonl",
	}
	for _, l := range wantLines {
		if !strings.Contains(md, l+"\n") {
			t.Errorf("markdown lacks line %q:\n%s", l, md)
		}
	}

	csvText := res.CSV()
	lines := strings.Split(strings.TrimSpace(csvText), "\n")
	if len(lines) != 7 || lines[0] != "dataset,condition,n,mean,sem,seeds,epochs,values,settings,runs" {
		t.Fatalf("CSV:\n%s", csvText)
	}
	if want := "cifar10,pad,3,58," + strconv.FormatFloat(1/math.Sqrt(3), 'f', -1, 64) + ",1;2;3,2;2;2,57;59;58,,cifar10-pad-s1;cifar10-pad-s2;cifar10-pad-s3"; lines[1] != want {
		// Values are listed in seed order: seed 1 → 57, seed 2 → 59, seed 3 → 58.
		t.Errorf("CSV line %q, want %q", lines[1], want)
	}
	if want := "mnist,pad,1,97.5,,1,1,97.5,,mnist-pad-s1"; lines[6] != want {
		t.Errorf("CSV line %q, want %q", lines[6], want)
	}

	dir := t.TempDir()
	paths, err := res.PlotCurves(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || filepath.Base(paths[0]) != "accuracy-cifar10.png" {
		t.Errorf("plots %v", paths)
	}
	for _, p := range paths {
		checkPNG(t, p, 8*plotDPI, 5*plotDPI)
	}

	if _, err := Report(nil); err == nil {
		t.Errorf("no runs: no error")
	}
	// Nothing to report: an error that says why.
	_, err = Report([]RunSummary{empty, NewRunSummary("runs/not-a-run", nil, nil)})
	if err == nil || !strings.Contains(err.Error(), "not-a-run: no config.toml") || !strings.Contains(err.Error(), "mnist-no-rem-s9: no probe results") {
		t.Errorf("nothing to report: %v", err)
	}
}

// A runs folder as a study leaves it: the study's runs, a quick test under
// another name, a run of another model size, a run that never probed, a
// folder without a config, a run copied under two names, a run renamed
// after the fact. Report groups by config, says what differs, and lists
// the rest with reasons.
func TestReportGroupsByConfig(t *testing.T) {
	small := []string{"model.nf=4", "model.nz=8", "train.epochs=2"}
	quick := NewRunSummary("runs/quickstart", fakeConfig(t, "embedded-pad-s1", "model.nf=32", "model.nz=128", "train.epochs=3"), probeRecords(3, 70))
	copied := NewRunSummary("runs/backup-of-s2", fakeConfig(t, "embedded-pad-s2", small...), probeRecords(2, 61))
	renamed := NewRunSummary("runs/embedded-no-rem-s7", fakeConfig(t, "embedded-pad-s3", small...), probeRecords(2, 62))
	// Weights and the wake noise that only restate the condition's values,
	// and the device, logging and probing schedule, do not split a group.
	sameAsS1 := []string{"train.nrem_weight=1", "train.wake_noise=0", "device.kind=cpu", "train.log_every=7", "eval.every=2", "data.root=elsewhere"}
	runs := []RunSummary{
		quick,
		fakeRun(t, "embedded-pad-s1", 2, 60, append(small, sameAsS1...)...),
		fakeRun(t, "embedded-pad-s2", 2, 61, small...),
		copied,
		renamed,
		fakeRun(t, "embedded-pad-s4", 2, 50, append(small, "model.nf=8")...),
		fakeRun(t, "embedded-no-rem-s1", 2, 55, small...),
		fakeRun(t, "embedded-no-rem-s2", 2, 57, append(small, "train.rem_weight=0.5")...),
		NewRunSummary("runs/embedded-wake-only-s1", fakeConfig(t, "embedded-wake-only-s1", append(small, "eval.every=0")...), nil),
		NewRunSummary("runs/scratch", nil, probeRecords(1, 10)),
	}
	res, err := Report(runs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range res.Groups {
		got = append(got, fmt.Sprintf("%s/%s [%s] %v", g.Dataset, g.Condition, g.RowLabel(), g.Runs))
	}
	want := []string{
		"embedded/pad [model.nf=32, model.nz=128, train.epochs=3] [quickstart]",
		"embedded/pad [model.nf=4, model.nz=8, train.epochs=2] [embedded-pad-s1 embedded-pad-s2 embedded-no-rem-s7]",
		"embedded/no-rem [model.nf=4, model.nz=8, train.epochs=2] [embedded-no-rem-s1]",
		"embedded/no-rem [model.nf=4, model.nz=8, train.epochs=2, train.rem_weight=0.5] [embedded-no-rem-s2]",
		"embedded/pad [model.nf=8, model.nz=8, train.epochs=2] [embedded-pad-s4]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("groups:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var skipped []string
	for _, s := range res.Skipped {
		skipped = append(skipped, s.String())
	}
	wantSkipped := []string{
		"backup-of-s2: the same settings and seed as embedded-pad-s2, which is reported",
		"embedded-wake-only-s1: no probe results in metrics.jsonl (eval.every = 0; pad eval linear does not add them)",
		"scratch: no config.toml",
	}
	if strings.Join(skipped, "\n") != strings.Join(wantSkipped, "\n") {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "embedded-no-rem-s7: the name says dataset embedded, condition no-rem, seed 7, but its config.toml says dataset embedded, condition pad, seed 3") {
		t.Errorf("warnings %q", res.Warnings)
	}
	md := res.Markdown()
	for _, l := range []string{
		"| dataset | PAD | w/o REM |",
		"| embedded (model.nf=32, model.nz=128, train.epochs=3) | 70.00 ± — (n=1) | — |",
		"| embedded (model.nf=4, model.nz=8, train.epochs=2) | 61.00 ± 0.58 (n=3) | 55.00 ± — (n=1) |",
		"| embedded (model.nf=4, model.nz=8, train.epochs=2, train.rem_weight=0.5) | — | 57.00 ± — (n=1) |",
		"- scratch: no config.toml",
		"- embedded-no-rem-s7: the name says",
	} {
		if !strings.Contains(md, l) {
			t.Errorf("markdown lacks %q:\n%s", l, md)
		}
	}
	if _, err := res.PlotCurves(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-run")
	w, err := metrics.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(metrics.Record{Kind: metrics.KindProbe, Epoch: 1, TestAcc: metrics.F(81.5)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Without a config.toml the run is described by its name, if it can be,
	// and says what it lacks.
	run, skipped, err := LoadRun(dir)
	if err != nil || skipped != 0 || run.Problem != "no config.toml" || run.Config != nil || len(run.Records) != 1 || run.Name != "my-run" {
		t.Fatalf("LoadRun without a config = %+v, %d, %v", run, skipped, err)
	}
	// With one, the run is what its config says.
	cfg := fakeConfig(t, "fashion-no-nrem-s7")
	text, err := cfg.Resolved().TOML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	run, _, err = LoadRun(dir)
	if err != nil || run.Problem != "" || run.Dataset != "fashion" || run.Condition != "no-nrem" || run.Seed != 7 || len(run.Records) != 1 {
		t.Errorf("LoadRun = %+v, %v", run, err)
	}
	// A config.toml that does not read is the run's problem, named.
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[model]\nnf = \"big\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run, _, err = LoadRun(dir)
	if err != nil || !strings.Contains(run.Problem, "config.toml") || !strings.Contains(run.Problem, "model.nf") {
		t.Errorf("LoadRun with a broken config: %+v, %v", run, err)
	}
	// A metrics.jsonl that does not read is an error naming it.
	if err := os.WriteFile(filepath.Join(dir, metrics.FileName), []byte("{not json}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err = LoadRun(dir); err == nil || !strings.Contains(err.Error(), metrics.FileName) {
		t.Errorf("LoadRun with a broken metrics.jsonl: %v", err)
	}
}
