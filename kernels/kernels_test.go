package kernels

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// These tests need no GPU: they check that the sources, the kernel names
// and the launchers agree, including the number of arguments each launcher
// passes, which a GPU would only report as a crash or garbage.

func TestFamiliesAndSources(t *testing.T) {
	fams := Families()
	want := []string{"adam", "elementwise", "reduce", "rng"}
	if strings.Join(fams, ",") != strings.Join(want, ",") {
		t.Fatalf("families %v, want %v", fams, want)
	}
	for _, f := range fams {
		src, err := Source(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(src, "philox4x32_10") || !strings.Contains(src, `#line 1 "`+f+`.cu"`) {
			t.Errorf("%s: source lacks the common header or its #line marker", f)
		}
		if len(kernelNames(src)) == 0 {
			t.Errorf("%s: no kernels found", f)
		}
	}
	if _, err := Source("nope"); err == nil {
		t.Error("Source of an unknown family succeeded")
	}
}

// paramCounts parses every extern "C" __global__ signature of the sources
// and counts its parameters (KEY_PARAMS is one: the key's address).
func paramCounts(t *testing.T) map[string]int {
	t.Helper()
	re := regexp.MustCompile(`(?s)extern "C" __global__ void (\w+)\((.*?)\)\s*\{`)
	out := map[string]int{}
	for _, f := range Families() {
		src, _ := Source(f)
		for _, m := range re.FindAllStringSubmatch(src, -1) {
			params := strings.TrimSpace(m[2])
			n := 0
			if params != "" {
				n = strings.Count(params, ",") + 1
			}
			out[m[1]] = n
		}
	}
	return out
}

type launch struct {
	name    string
	args    int
	widths  []uint8 // the byte width of each argument slot (KernelArgs.Widths)
	grid    [3]uint32
	threads uint32
}

// fake returns Kernels whose every kernel is a distinct fake function and
// whose launches are recorded instead of run.
func fake(t *testing.T) (*Kernels, *[]launch) {
	names := map[cu.Function]string{}
	k := &Kernels{fns: map[string]cu.Function{}}
	i := cu.Function(1)
	for name := range paramCounts(t) {
		k.fns[name] = i
		names[i] = name
		i++
	}
	var got []launch
	k.launchFn = func(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
		got = append(got, launch{names[f], a.Len(), append([]uint8(nil), a.Widths()...), grid, block[0]})
		return nil
	}
	return k, &got
}

// launcherCalls calls every launcher once with valid arguments. Between
// them the calls launch every kernel (TestLaunchersPassEveryParameter
// checks that); the tests that compare launches with the kernels' own
// parameter lists share this one table.
func launcherCalls(k *Kernels) []func() error {
	p := cu.DevicePtr(0x1000)
	return []func() error{
		func() error { return k.Fill(0, p, 10, 1) },
		func() error { return k.LeakyReLU(0, p, 10, 0.2) },
		func() error { return k.LeakyReLUBackward(0, p, p, 10, 0.2) },
		func() error { return k.Tanh(0, p, 10) },
		func() error { return k.TanhBackward(0, p, p, 10) },
		func() error { return k.Sigmoid(0, p, 10) },
		func() error { return k.SigmoidBackward(0, p, p, 10) },
		func() error { return k.Scale(0, p, 10, 2) },
		func() error { return k.Axpby(0, p, p, 10, 1, 2) },
		func() error { return k.LatentMix(0, p, p, p, p, 10, 1, 2, 3) },
		func() error { return k.ApplyMask(0, p, p, 2, 3, 4, true) },
		func() error { return k.BiasAdd(0, p, p, 2, 3, 4) },
		func() error { return k.BiasAct(0, p, p, 2, 3, 4, 1, 0.2) },
		func() error { return k.BiasGrad(0, p, p, 2, 3, 4, 1) },
		func() error { return k.MSE(0, p, p, p, 10, 1, p, p) },
		func() error { return k.BCE(0, p, 1, p, 10, 1, p, p) },
		func() error { return k.KLBatch(0, p, 8, 16, p, p, 1, 0, p) },
		func() error { return k.Mean(0, p, 10, p, p) },
		func() error { return k.RowNormMean(0, p, 8, 16, p) },
		func() error { return k.RandNormal(0, p, 10, p) },
		func() error { return k.RandUniform(0, p, 10, p) },
		func() error { return k.OcclusionMask(0, p, 32, 32, 1, -1, 0, 8, p) },
		func() error { return k.Adam(0, p, p, p, p, p, 3, 100, 0.5, 0.999, 1e-8) },
	}
}

// recordLaunches runs launcherCalls on fake Kernels and returns what they
// launched, in order.
func recordLaunches(t *testing.T) []launch {
	t.Helper()
	k, got := fake(t)
	for i, c := range launcherCalls(k) {
		if err := c(); err != nil {
			t.Fatalf("launcher call %d: %v", i, err)
		}
	}
	return *got
}

func TestLaunchersPassEveryParameter(t *testing.T) {
	counts := paramCounts(t)
	seen := map[string]bool{}
	for _, l := range recordLaunches(t) {
		seen[l.name] = true
		if l.args != counts[l.name] {
			t.Errorf("%s: launcher passes %d arguments, the kernel takes %d", l.name, l.args, counts[l.name])
		}
		if len(l.widths) != l.args {
			t.Errorf("%s: %d argument widths recorded for %d arguments", l.name, len(l.widths), l.args)
		}
		if l.grid[0] == 0 || l.grid[1] == 0 || l.threads == 0 || l.threads%32 != 0 {
			t.Errorf("%s: launch shape grid %v block %d", l.name, l.grid, l.threads)
		}
	}
	for name := range counts {
		if !seen[name] {
			t.Errorf("kernel %s has no launcher (or the test does not call it)", name)
		}
	}
}

func TestLaunchersCheckArguments(t *testing.T) {
	k, got := fake(t)
	p := cu.DevicePtr(0x1000)
	bad := map[string]error{
		"null pointer":      k.Scale(0, 0, 10, 1),
		"negative size":     k.Fill(0, p, -1, 0),
		"weight without op": k.LatentMix(0, p, p, 0, p, 4, 1, 0.5, 0.5),
		"kl batch of one":   k.KLBatch(0, p, 1, 4, p, p, 1, 0, p),
		"mean of nothing":   k.MSE(0, p, p, 0, 0, 1, p, p),
		"no tile":           k.OcclusionMask(0, p, 4, 4, 1, 0.5, 0, 0, p),
		"bad activation":    k.BiasAct(0, p, p, 2, 3, 4, 7, 0.2),
		"no key":            k.RandNormal(0, p, 4, 0),
		"no segments":       k.Adam(0, p, p, p, p, p, 0, 10, 0.5, 0.9, 1e-8),
	}
	for what, err := range bad {
		if err == nil {
			t.Errorf("%s: no error", what)
		} else if !strings.Contains(err.Error(), "pad_") {
			t.Errorf("%s: error %q does not name the kernel", what, err)
		}
	}
	if len(*got) != 0 {
		t.Errorf("%d launches happened despite bad arguments", len(*got))
	}
	// Size zero is a no-op, not an error.
	if err := k.Scale(0, p, 0, 1); err != nil || len(*got) != 0 {
		t.Errorf("empty Scale: err %v, %d launches", err, len(*got))
	}
}

// The Go mirror of the kernel's adam_seg must have its C layout.
func TestAdamSegLayout(t *testing.T) {
	if adamSegBytes := 24; int(sizeofAdamSeg()) != adamSegBytes {
		t.Fatalf("AdamSeg is %d bytes, the kernel's adam_seg %d", sizeofAdamSeg(), adamSegBytes)
	}
}
