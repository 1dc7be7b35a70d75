package gemm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShape is one of the CPU backend's convolution GEMMs (batch 64,
// nf 64, nz 256).
type benchShape struct {
	transA, transB bool
	m, n, k        int
}

func (s benchShape) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s_m%d_n%d_k%d", t(s.transA), t(s.transB), s.m, s.n, s.k)
}

var benchShapes = []benchShape{
	// W·col
	{false, false, 64, 16384, 48},
	{false, false, 128, 4096, 1024},
	{false, false, 256, 1024, 2048},
	{false, false, 256, 64, 4096},
	// Wᵀ·dY
	{true, false, 1024, 1024, 256},
	{true, false, 4096, 64, 256},
	{true, false, 2048, 1024, 256},
	{true, false, 1024, 4096, 128},
	{true, false, 48, 16384, 64},
	// dY·colᵀ
	{false, true, 64, 48, 16384},
	{false, true, 128, 1024, 4096},
	{false, true, 256, 2048, 1024},
	{false, true, 256, 4096, 64},
}

type benchData struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

func newBenchData(s benchShape) benchData {
	rng := rand.New(rand.NewPCG(1, 1))
	d := benchData{
		a:   randSlice(rng, s.m*s.k),
		b:   randSlice(rng, s.k*s.n),
		c:   randSlice(rng, s.m*s.n),
		lda: s.k, ldb: s.n, ldc: s.n,
	}
	if s.transA {
		d.lda = s.m
	}
	if s.transB {
		d.ldb = s.k
	}
	return d
}

// reportGFLOPS reports the throughput of b.N products of shape s:
// GFLOP/s by wall-clock time and, when cpu0 (the process CPU time before
// the loop) is known, coreGFLOP/s by CPU time, which is the throughput per
// busy core and is much less disturbed by other processes on the machine.
func reportGFLOPS(b *testing.B, s benchShape, cpu0 time.Duration) {
	reportFlops(b, 2*float64(s.m)*float64(s.n)*float64(s.k), cpu0)
}

func reportFlops(b *testing.B, flopsPerOp float64, cpu0 time.Duration) {
	flops := flopsPerOp * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - cpu0; cpu0 != 0 && cpu > 0 {
		b.ReportMetric(flops/cpu.Seconds()/1e9, "coreGFLOP/s")
	}
}

// BenchmarkSgemm compares this package (impl=pad, two threads) with gonum's
// pure-Go Sgemm (impl=gonum) on the CPU backend's shapes.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		var d benchData
		b.Run(s.String()+"/impl=pad", func(b *testing.B) {
			d = newBenchData(s)
			g := New(2)
			defer g.Close()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, d.a, d.lda, d.b, d.ldb, 0, d.c, d.ldc)
			}
			reportGFLOPS(b, s, cpu0)
		})
		b.Run(s.String()+"/impl=gonum", func(b *testing.B) {
			if d.a == nil {
				d = newBenchData(s)
			}
			var impl gonum.Implementation
			ta, tb := blas.NoTrans, blas.NoTrans
			if s.transA {
				ta = blas.Trans
			}
			if s.transB {
				tb = blas.Trans
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				impl.Sgemm(ta, tb, s.m, s.n, s.k, 1, d.a, d.lda, d.b, d.ldb, 0, d.c, d.ldc)
			}
			reportGFLOPS(b, s, cpu0)
		})
	}
}

// tuneFromEnv overrides g's cache blocking with the environment variables
// GEMM_KC, GEMM_MC and GEMM_NC, for tuning experiments.
func tuneFromEnv(g *Gemm) {
	for _, v := range []struct {
		name string
		p    *int
	}{{"GEMM_KC", &g.kc}, {"GEMM_MC", &g.mc}, {"GEMM_NC", &g.nc}} {
		if n, err := strconv.Atoi(os.Getenv(v.name)); err == nil && n > 0 {
			*v.p = n
		}
	}
}

// BenchmarkKernels runs the shapes with every micro-kernel this CPU has, on
// one and on two threads.
func BenchmarkKernels(b *testing.B) {
	for _, k := range availableKernels() {
		for _, threads := range []int{1, 2} {
			for _, s := range benchShapes {
				b.Run(fmt.Sprintf("%s/threads=%d/%v", k.name, threads, s), func(b *testing.B) {
					d := newBenchData(s)
					g := New(threads)
					defer g.Close()
					g.setKernel(k)
					tuneFromEnv(g)
					cpu0 := cpuTime()
					for b.Loop() {
						g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, d.a, d.lda, d.b, d.ldb, 0, d.c, d.ldc)
					}
					reportGFLOPS(b, s, cpu0)
				})
			}
		}
	}
}

// BenchmarkMicroKernel measures each micro-kernel alone on one packed
// micro-panel pair that stays in L1: the peak the blocked loops can reach.
func BenchmarkMicroKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, k := range availableKernels() {
		for _, kc := range []int{64, 256} {
			a := randSlice(rng, k.mr*kc)
			bp := randSlice(rng, k.nr*kc)
			c := randSlice(rng, k.mr*k.nr)
			b.Run(fmt.Sprintf("%s/kc=%d", k.name, kc), func(b *testing.B) {
				cpu0 := cpuTime()
				for b.Loop() {
					k.fn(kc, a, bp, c, k.nr, 1, 0)
				}
				reportFlops(b, 2*float64(k.mr*k.nr*kc), cpu0)
			})
		}
	}
}

// BenchmarkClock estimates the core clock from clockChain (peak.go; two
// cycles per iteration), by wall time (GHz) and by CPU time (coreGHz), so that the
// GFLOP/s above can be turned into FLOP per cycle and set against the
// core's peak (for FP32 FMA: 2 × vector lanes × FMA pipes per cycle).
func BenchmarkClock(b *testing.B) {
	const n = 1 << 24
	cpu0 := cpuTime()
	for b.Loop() {
		clockSink += clockChain(n, clockSink|1)
	}
	cycles := 2 * float64(n) * float64(b.N)
	b.ReportMetric(cycles/b.Elapsed().Seconds()/1e9, "GHz")
	if cpu := cpuTime() - cpu0; cpu0 != 0 && cpu > 0 {
		b.ReportMetric(cycles/cpu.Seconds()/1e9, "coreGHz")
	}
}
