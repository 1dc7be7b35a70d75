package doctor

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/backend"
)

// The limits of the checks. Errors are relative L2 errors,
// ‖got − want‖ / ‖want‖ over all values of a tensor. An error in the code
// (a wrong index, a stale argument, a missing synchronisation) shows up as
// an error of order 1, so the limits only need to sit safely above the
// rounding differences that correct implementations produce.
const (
	// LimitExact: ops that are the same float32 operations, rounded the
	// same way, on the device and on the CPU float32 backend — copies,
	// fills, scaling, LeakyReLU and its backward, Axpby, the latent mix,
	// masks, bias addition, Adam (the kernels are compiled with
	// --fmad=false, so no product is fused into an FMA, and the CPU backend
	// rounds each product explicitly, so Go does not fuse them on arm64
	// either), and the counter-based random numbers (uniforms, occlusion
	// masks). They must agree bit for bit.
	LimitExact = 0.0

	// LimitRounded: elementwise functions evaluated in double and rounded
	// once to float32 on both sides (tanh, the logistic function,
	// Box–Muller's log and sincos for normal numbers, the MSE and BCE
	// values and gradients, whose sums run in double). The device's and
	// Go's double-precision libraries may differ in the last double bit,
	// which moves a float32 result by one ulp (≤ 1.2e-7 relative) only in
	// the rare value that lies on a rounding boundary; in norm that stays
	// below 1e-7.
	LimitRounded = 1e-7

	// LimitReduction: sums over up to ~10^5 values (Mean, RowNormMean,
	// BiasGrad, the KL loss and its gradient), accumulated in double in a
	// different order and rounded once (~1e-7 in practice), and the
	// activation backwards dy·(1 − y²) and dy·y(1 − y): the same float32
	// operations on both sides (the CPU rounds y² before 1 − y², as the
	// kernels do), but the cancellation in 1 − y² magnifies any one-ulp
	// difference of y. 1e-6 allowed.
	LimitReduction = 1e-6

	// LimitConvFP32: FP32 convolutions (cuDNN with FMA math against the
	// CPU's im2col and blocked GEMM) sum up to C·R·S = 4,096 products per
	// output in float32, in different orders. Each order has a relative
	// error of about √K·2⁻²⁴: 1e-6 to 4e-6 for PAD's layers; 1e-5 leaves a
	// margin for the occasional cancelling output.
	LimitConvFP32 = 1e-5

	// LimitConvTF32: TF32 tensor cores round both inputs of every product
	// to a 10-bit mantissa (unit roundoff 2⁻¹¹ ≈ 4.9e-4, RMS ≈ 2.8e-4 per
	// input), so a product is off by ≈ 4e-4 RMS and, the errors having
	// random signs, so is a sum of them: the relative error of a TF32
	// convolution is ≈ 4e-4 to 1e-3 whatever its size. 2e-3 allows that
	// with a margin; an error in the code is still ~1000× larger.
	LimitConvTF32 = 2e-3

	// LimitVsFloat64 replaces the three limits above (not the
	// convolutions') when the reference is the float64 twin of the CPU
	// backend (the CPU self-check): the float32 backend then rounds every
	// intermediate result (2⁻²⁴ ≈ 6e-8 each) where the twin rounds once
	// at the end, and a few roundings of terms that partly cancel (a − b,
	// 1 − y²) reach a few 1e-7. Adam is held to AdamVsFloat64 instead.
	LimitVsFloat64 = 1e-6

	// LimitIteration: after two full Wake/NREM/REM iterations, every
	// parameter of E and G and every loss must agree with the float64 twin
	// to 1e-4 — the rule the PyTorch fixtures are held to — or to
	// FloorFactor times the tensor's float32 floor, when that is larger.
	// The floor is the difference between two runs on the device itself
	// whose initial parameters and images differ by one ulp: at
	// initialisation E maps every image to nearly the same z, so the KL
	// gradient and NREM's loss are sums of large cancelling terms, and a
	// one-ulp change of the inputs already moves a few tensors by ~1e-3.
	// No float32 implementation can do better than its floor.
	LimitIteration = 1e-4
	FloorFactor    = 4

	// LimitSampleRun: over SampleIterations iterations of `pad train` on
	// the embedded sample, every number a record logs (losses, d(x),
	// d(G(z)), the latent norm; means over two iterations) must stay within
	// 2e-2 of the largest value it takes in the reference run. Both sides
	// compute in float32 but round differently, and Adam and the
	// adversarial game amplify the differences, so trajectories drift apart
	// slowly without diverging: on the CPU, float32 against float64 stays
	// below 2e-4 of every number's range for 20 iterations and reaches
	// 6.8e-3 (the NREM loss; 1e-3 for the others) after 50 with nf 32,
	// nz 128; two float32 implementations drift apart by as much, or √2 more.
	// The check is not about the arithmetic (the op and iteration checks
	// are, far tighter) but about the training path: a wrong, stale or torn
	// mini-batch or a loss read from another iteration moves the numbers
	// by several percent at the iteration it happens.
	LimitSampleRun = 2e-2

	// MemoryGrowth is how much more device memory may be in use after
	// MemoryIterations iterations than after the warm-up (the driver's own
	// pools may move a little); pad's own allocations must not change at
	// all.
	MemoryGrowth = 16 << 20
)

// Iteration counts of the full check.
const (
	// StepIterations is the length of the float64 comparison.
	StepIterations = 2
	// ReplayIterations is the length of the bit-for-bit comparisons of
	// graphs and streams. PAD's cycle has three distinct steps: an epoch's
	// first (once), then the two parities of the memory swap, which
	// alternate. Each parity has occurred twice by iteration 4, so whether
	// a recorder captures a step at its first or its second occurrence,
	// iterations 5 to 7 are replays.
	ReplayIterations = 8
	// SampleIterations is the length of the sample run.
	SampleIterations = 50
	// MemoryWarmup and MemoryIterations are the memory check's warm-up
	// (algorithm search, workspaces, graphs) and its length.
	MemoryWarmup     = 20
	MemoryIterations = 300
	// BenchIterations is the number of timed iterations of the bench line.
	BenchIterations = 50

	// On pad's simulated GPU (internal/cudasim) the memory check counts
	// the device allocations themselves: SimMemoryIterations after
	// SimMemoryWarmup (enough for every step to be captured and replayed)
	// must make none, which is stricter than a bound on growth. The bench
	// line runs SimBenchIterations: it proves the path works; the
	// simulation's times say nothing of a GPU's.
	SimMemoryWarmup     = 8
	SimMemoryIterations = 12
	SimBenchIterations  = 2
	// SimSampleIterations is the sample run's length there: long enough
	// for every step to be captured and replayed many times and for a
	// stale or torn mini-batch to show, at a quarter of a second per
	// iteration of the quickstart model.
	SimSampleIterations = 20
)

// AdamVsFloat64 is the limit of Adam against the float64 twin. The
// float32 backend holds β1 and β2 as float32, so its 1 − β differs from
// the twin's by |β − float32(β)|/(1 − β) relative — 1.3e-5 for β2 =
// 0.999 — and the second moment v, a sum of (1 − β2)·g² terms, with it.
// The limit is twice the larger of the two, or LimitVsFloat64.
func AdamVsFloat64(h backend.AdamHyper) float64 {
	off := func(beta float64) float64 {
		if beta >= 1 {
			return 0
		}
		return math.Abs(beta-float64(float32(beta))) / (1 - beta)
	}
	return max(LimitVsFloat64, 2*max(off(h.Beta1), off(h.Beta2)))
}

// class groups the ops that share a limit.
type class int

const (
	classExact     class = iota // LimitExact; against float64, LimitVsFloat64 (Adam: AdamVsFloat64)
	classRounded                // LimitRounded
	classReduction              // LimitReduction
	classConv                   // LimitConvFP32 or LimitConvTF32
)

func (c class) String() string {
	return [...]string{"exact", "rounded once", "reduction", "convolution"}[c]
}

// limit returns the limit of an op of class c at a convolution precision
// ("tf32", else FP32), against a reference that computes in float64 or not.
func limit(c class, precision string, ref64 bool) float64 {
	var l float64
	switch c {
	case classExact:
		l = LimitExact
	case classRounded:
		l = LimitRounded
	case classReduction:
		l = LimitReduction
	case classConv:
		if precision == "tf32" {
			return LimitConvTF32
		}
		return LimitConvFP32
	}
	if ref64 {
		l = max(l, LimitVsFloat64)
	}
	return l
}

// LimitsText is the paragraph `pad doctor --help` prints about the limits.
func LimitsText() string {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	rows := [][2]string{
		{"exact ops (copies, masks, LeakyReLU, Axpby,", ""},
		{"  latent mix, bias add, Adam, uniform random", ""},
		{"  numbers, occlusion masks)", "bit for bit"},
		{"tanh, sigmoid, normal random numbers, MSE, BCE", g(LimitRounded) + " (double, rounded once)"},
		{"sums and activation backwards", g(LimitReduction)},
		{"convolutions, FP32", g(LimitConvFP32)},
		{"convolutions, TF32", g(LimitConvTF32) + " (10-bit mantissa inputs)"},
		{"CPU self-check, non-convolution ops", g(LimitVsFloat64) + " (float32 against float64;"},
		{"", fmt.Sprintf("Adam %.2g at β2 0.999)", AdamVsFloat64(backend.AdamHyper{Beta1: 0.5, Beta2: 0.999}))},
		{fmt.Sprintf("%d iterations against the float64 twin", StepIterations), fmt.Sprintf("%s, or %d× the float32 floor", g(LimitIteration), FloorFactor)},
		{"graphs against direct launches", "bit for bit"},
		{fmt.Sprintf("%d iterations against the CPU's losses", SampleIterations), fmt.Sprintf("%s of each number's range", g(LimitSampleRun))},
		{fmt.Sprintf("device memory over %d iterations", MemoryIterations), "pad's allocations constant,"},
		{"", fmt.Sprintf("< %d MiB more in use", MemoryGrowth>>20)},
	}
	var b strings.Builder
	b.WriteString("Limits (relative L2 error ‖device − reference‖/‖reference‖ per tensor):\n")
	for _, r := range rows {
		b.WriteString(strings.TrimRight(fmt.Sprintf("  %-48s %s", r[0], r[1]), " ") + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
