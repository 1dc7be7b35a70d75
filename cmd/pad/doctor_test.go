package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/backend/cuda"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/doctor"
	"github.com/pad-dreaming/pad/kernels"
)

// tinyModel keeps the CPU self-check to seconds.
var tinyModel = []string{"--set", "model.nf=4", "--set", "model.nz=8", "--set", "train.batch=8"}

// noGPU skips a test where a GPU is usable.
func noGPU(t *testing.T) error {
	t.Helper()
	err := doctor.Probe(0, kernels.DefaultCacheDir())
	if err == nil || !doctor.Unavailable(err) {
		t.Skip("a GPU is usable here")
	}
	return err
}

func TestDoctorCPU(t *testing.T) {
	code, out, errOut := runPad(t, append([]string{"doctor", "--device", "cpu"}, tinyModel...)...)
	if code != exitOK {
		t.Fatalf("pad doctor --device cpu: code %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"CHECK", "RESULT", "VALUE", "LIMIT", "TIME", "op ConvForward", "op Adam",
		"2 iterations vs float64", "10 iterations vs float64", "PASS: the full check of cpu"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") || strings.Contains(out, "no usable NVIDIA GPU") {
		t.Errorf("output:\n%s", out)
	}
}

func TestDoctorJSON(t *testing.T) {
	code, out, errOut := runPad(t, append([]string{"doctor", "--device", "cpu", "--json", "--quick"}, tinyModel...)...)
	if code != exitOK {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
	var r doctor.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("not one JSON report: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("more than one JSON value:\n%s", out)
	}
	if !r.Pass || r.Device != "cpu" || !r.Quick || len(r.Checks) < 25 || r.Model.NF != 4 {
		t.Errorf("report: pass %v device %q quick %v, %d checks, model %+v", r.Pass, r.Device, r.Quick, len(r.Checks), r.Model)
	}
	for _, c := range r.Checks {
		if c.Name == "" || c.Status != doctor.Pass || c.Value == "" || c.Limit == "" {
			t.Errorf("check %+v", c)
		}
	}
}

// Without a GPU, auto says so in one line and runs the CPU self-check.
func TestDoctorAutoWithoutGPU(t *testing.T) {
	reason := noGPU(t)
	code, out, errOut := runPad(t, append([]string{"doctor", "--quick"}, tinyModel...)...)
	if code != exitOK {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
	first, _, _ := strings.Cut(out, "\n")
	if first != fmt.Sprintf("no usable NVIDIA GPU: %v; running the CPU self-check", reason) {
		t.Errorf("first line %q", first)
	}
	if strings.Count(out, "no usable") != 1 || !strings.Contains(out, "op Tanh") || !strings.Contains(out, "quick check only") {
		t.Errorf("output:\n%s", out)
	}
}

// --device cuda without a GPU prints where pad looked, then fails with
// cuda.New's one sentence.
func TestDoctorCUDAWithoutGPU(t *testing.T) {
	reason := noGPU(t)
	code, out, errOut := runPad(t, "doctor", "--device", "cuda")
	if code != exitError {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
	if errOut != "pad: "+reason.Error()+"\n" {
		t.Errorf("stderr is not one line with cuda.New's error %q:\n%s", reason, errOut)
	}
	for _, want := range []string{"driver (libcuda)", "library nvrtc", "library cublas", "library cudnn", "gpu 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("the library table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "op ") {
		t.Errorf("op checks ran without a GPU:\n%s", out)
	}
}

func TestDoctorHelp(t *testing.T) {
	code, out, _ := runPad(t, "doctor", "--help")
	if code != exitOK {
		t.Fatalf("code %d", code)
	}
	for _, want := range []string{"Usage: pad doctor", "--quick", "--json", "NVRTC", "cuDNN", "cuBLAS is optional",
		"graphs", "second stream", "float64 twin", "embedded", "memory", "bench", "CPU self-check", "--device auto",
		"FP32", "TF32", strconv.FormatFloat(doctor.LimitConvFP32, 'g', -1, 64), strconv.FormatFloat(doctor.LimitConvTF32, 'g', -1, 64),
		strconv.FormatFloat(doctor.LimitIteration, 'g', -1, 64), strconv.FormatFloat(doctor.LimitSampleRun, 'g', -1, 64)} {
		if !strings.Contains(out, want) {
			t.Errorf("pad doctor --help lacks %q", want)
		}
	}
	if code, out, _ := runPad(t, "--help"); code != exitOK || !strings.Contains(out, "doctor") {
		t.Errorf("pad --help does not list doctor:\n%s", out)
	}
}

// fakeGPU stands for the CUDA backend in the gate's tests.
type fakeGPU struct{ backend.Backend }

func (fakeGPU) Name() string { return "fake gpu" }

// gate replaces the GPU gate's functions for a test and counts quick
// checks.
type gate struct {
	id      doctor.Identity
	pass    bool
	quicks  int
	openErr error
	dir     string
}

func newGate(t *testing.T) *gate {
	g := &gate{pass: true, dir: filepath.Join(t.TempDir(), "doctor"),
		id: doctor.Identity{GPU: "Test GPU", Capability: "9.0", Driver: "13.0", Pad: "pad v1",
			Libraries: []doctor.LibraryID{{Lib: "cudnn", Path: "/x/libcudnn.so.9", Version: "9.14.0"}}}}
	saved := gpuGate
	t.Cleanup(func() { gpuGate = saved })
	gpuGate.open = func(configs.Device) (backend.Backend, error) {
		if g.openErr != nil {
			return nil, g.openErr
		}
		return fakeGPU{cpu.New(1)}, nil
	}
	gpuGate.identify = func(configs.Device) (doctor.Identity, error) { return g.id, nil }
	gpuGate.cacheDir = func() string { return g.dir }
	gpuGate.quick = func(configs.Device) *doctor.Report {
		g.quicks++
		st := doctor.Pass
		if !g.pass {
			st = doctor.Fail
		}
		return &doctor.Report{Checks: []doctor.Check{
			{Name: "op Tanh", Status: doctor.Pass, Quick: true},
			{Name: "op ConvForward tf32", Status: st, Quick: true, Detail: "ConvForward differs from the reference"},
		}}
	}
	return g
}

func open(t *testing.T, kind string) (backend.Backend, string, error) {
	t.Helper()
	var log bytes.Buffer
	b, err := openBackend(configs.Device{Kind: kind, Threads: 1}, &log)
	return b, log.String(), err
}

func TestAutoTrustsGPUOnceChecked(t *testing.T) {
	g := newGate(t)
	// Miss: the quick check runs once, with one line, and its verdict is kept.
	b, log, err := open(t, "auto")
	if err != nil || b.Name() != "fake gpu" || g.quicks != 1 {
		t.Fatalf("first open: %v, %v, %d quick checks; log %q", b, err, g.quicks, log)
	}
	if !strings.HasPrefix(log, "checking the GPU once (pad doctor --quick) ... passed") || strings.Count(log, "\n") != 1 {
		t.Errorf("log %q", log)
	}
	if _, err := os.Stat(doctor.Cache{Dir: g.dir}.Path(g.id)); err != nil {
		t.Errorf("no verdict kept: %v", err)
	}
	// Hit: the GPU opens at once, silently, for auto and cuda.
	for _, kind := range []string{"auto", "cuda"} {
		b, log, err = open(t, kind)
		if err != nil || b.Name() != "fake gpu" || g.quicks != 1 || log != "" {
			t.Errorf("%s, cached: %v, %v, %d quick checks, log %q", kind, b, err, g.quicks, log)
		}
	}
	// A new pad version (or driver, library, GPU) is checked again.
	g.id.Pad = "pad v2"
	if b, _, err = open(t, "auto"); err != nil || b.Name() != "fake gpu" || g.quicks != 2 {
		t.Errorf("after a version change: %v, %v, %d quick checks", b, err, g.quicks)
	}
	// The CPU needs no check.
	if b, log, err = open(t, "cpu"); err != nil || !strings.HasPrefix(b.Name(), "cpu") || g.quicks != 2 || log != "" {
		t.Errorf("cpu: %v, %v, %d, %q", b, err, g.quicks, log)
	}
}

func TestAutoFallsBackWhenTheCheckFails(t *testing.T) {
	g := newGate(t)
	g.pass = false
	b, log, err := open(t, "auto")
	if err != nil || !strings.HasPrefix(b.Name(), "cpu") {
		t.Fatalf("auto with a failing GPU: %v, %v", b, err)
	}
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "failed") || !strings.HasPrefix(lines[1], "notice: ") ||
		!strings.Contains(lines[1], "op ConvForward tf32") || !strings.Contains(lines[1], "pad doctor") || !strings.HasSuffix(lines[1], "using the CPU") {
		t.Errorf("log:\n%s", log)
	}
	// The failed verdict is kept too: no second check, the same message.
	b, log2, err := open(t, "auto")
	if err != nil || !strings.HasPrefix(b.Name(), "cpu") || g.quicks != 1 || log2 != lines[1]+"\n" {
		t.Errorf("second auto: %v, %v, %d quick checks, log %q", b, err, g.quicks, log2)
	}
	// --device cuda fails with the same message.
	_, log3, err := open(t, "cuda")
	want := strings.TrimSuffix(strings.TrimPrefix(lines[1], "notice: "), "; using the CPU")
	if err == nil || err.Error() != want || log3 != "" {
		t.Errorf("cuda: %v (want %q), log %q", err, want, log3)
	}
	code, _, errOut := runPad(t, "bench", "--device", "cuda", "--set", "model.nf=4", "--set", "model.nz=8", "--batch", "4", "--iters", "1", "--warmup", "0")
	if code != exitError || errOut != "pad: "+want+"\n" {
		t.Errorf("pad bench --device cuda: code %d, %q", code, errOut)
	}
}

func TestCorruptVerdictIsCheckedAgain(t *testing.T) {
	g := newGate(t)
	os.MkdirAll(g.dir, 0o755)
	path := doctor.Cache{Dir: g.dir}.Path(g.id)
	if err := os.WriteFile(path, []byte(`{"identity": {"gpu": "Test G`), 0o644); err != nil {
		t.Fatal(err)
	}
	b, log, err := open(t, "auto")
	if err != nil || b.Name() != "fake gpu" || g.quicks != 1 || !strings.Contains(log, "checking the GPU once") {
		t.Fatalf("corrupt verdict: %v, %v, %d quick checks, log %q", b, err, g.quicks, log)
	}
	if v, err := (doctor.Cache{Dir: g.dir}).Load(g.id); err != nil || v == nil || !v.Pass {
		t.Errorf("the corrupt verdict was not replaced: %+v, %v", v, err)
	}
}

func TestUnwritableVerdictDirStillWorks(t *testing.T) {
	g := newGate(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	g.dir = filepath.Join(file, "doctor")
	for i := 1; i <= 2; i++ {
		b, log, err := open(t, "auto")
		if err != nil || b.Name() != "fake gpu" || g.quicks != i || !strings.Contains(log, "the verdict is not kept") {
			t.Fatalf("open %d: %v, %v, %d quick checks, log %q", i, b, err, g.quicks, log)
		}
	}
	g.dir = "" // no cache folder at all
	if b, _, err := open(t, "auto"); err != nil || b.Name() != "fake gpu" || g.quicks != 3 {
		t.Errorf("without a cache folder: %v, %v, %d", b, err, g.quicks)
	}
}

// Without a GPU auto trains on the CPU as before, and cuda says why.
func TestNoGPUFallsBackAsBefore(t *testing.T) {
	g := newGate(t)
	g.openErr = fmt.Errorf("cuInit(0): no device (%w)", cuda.ErrUnavailable)
	b, log, err := open(t, "auto")
	if err != nil || !strings.HasPrefix(b.Name(), "cpu") || g.quicks != 0 || log != "notice: "+g.openErr.Error()+"; using the CPU\n" {
		t.Errorf("auto: %v, %v, %d quick checks, log %q", b, err, g.quicks, log)
	}
	if _, _, err := open(t, "cuda"); !errors.Is(err, cuda.ErrUnavailable) || g.quicks != 0 {
		t.Errorf("cuda: %v", err)
	}
	g.openErr = errors.New("cuda: kernels: compiling rng.cu: error")
	if _, _, err := open(t, "auto"); !errors.Is(err, g.openErr) || err.Error() != "GPU 0 could not be set up: "+g.openErr.Error() {
		t.Errorf("auto with a GPU that fails to set up: %v", err)
	}
}
