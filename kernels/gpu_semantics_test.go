package kernels

// CUDA's rules, on the GPU or the simulated GPU (gpu_test.go): the block
// reduction of common.cuh with every block shape, and the simulation's
// emulation of shuffles, shared memory and barriers (internal/cudasim/
// csrc/emu.h) with the kernels of testdata/selftest.cu. On a GPU the same
// checks hold, which keeps the expectations honest; the mistakes the
// simulation must catch (TestSim*) run on it only.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/cu"
)

// TestGPUBlockSumShapes runs the shared block_sum (through pad_finish_mean,
// which sums partials in runs per thread) with block sizes that are and are
// not multiples of the warp, on both engines: the shuffles of partial warps
// and the one-warp second stage must still add every value once.
func TestGPUBlockSumShapes(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		f := d.fn("pad_finish_mean")
		for _, threads := range []uint32{32, 64, 256, 1024} {
			for _, parts := range []int{1, 31, 33, 264, 1000} {
				vals := make([]float64, parts)
				var want float64
				for i := range vals {
					vals[i] = float64(i%7) + 0.25
					want += vals[i]
				}
				p := d.float64s(vals)
				out := d.alloc(4)
				var a cu.KernelArgs
				a.Reset().Ptr(p).Int32(int32(parts)).Float64(1).Ptr(out)
				d.must(d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{threads, 1, 1}, 0, &a))
				if got := d.download32(out, 1)[0]; got != float32(want) {
					t.Errorf("%d threads, %d parts: sum %v, want %v", threads, parts, got, want)
				}
			}
		}
	})
}

// selftest compiles testdata/selftest.cu for the device, as Load compiles
// a family, loads it and returns its kernels by name.
func selftest(t *testing.T) func(name string) cu.Function {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "selftest.cu"))
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]string{cu.ArchFlag(gpuState.major, gpuState.minor)}, Options...)
	cubin, log, err := cu.Compile(string(src), "selftest.cu", opts)
	if err != nil {
		t.Fatalf("compiling selftest.cu: %v", err)
	}
	if log != "" {
		t.Logf("selftest.cu: compiler log:\n%s", log)
	}
	m, err := cu.ModuleLoadData(cubin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(t.Name(), "TestSim") {
		// Not after a sticky error (those children just end).
		t.Cleanup(func() {
			if err := m.Unload(); err != nil {
				t.Errorf("unloading selftest.cu: %v", err)
			}
		})
	}
	return func(name string) cu.Function {
		t.Helper()
		f, err := m.Function(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

// TestGPUSemantics checks shuffles (delta, width, the lanes that keep
// their own value) and one shared array per block against CUDA's rules,
// on both engines of the simulation.
func TestGPUSemantics(t *testing.T) {
	onGPU(t, bothEngines, func(t *testing.T, d *gpuDev) {
		fn := selftest(t)
		var a cu.KernelArgs
		for _, threads := range []uint32{32, 96} {
			for _, c := range []struct{ delta, width int }{{1, 32}, {16, 32}, {5, 32}, {3, 8}, {1, 2}, {0, 32}, {31, 32}} {
				out := d.alloc(4 * int(threads))
				a.Reset().Ptr(out).Uint32(uint32(c.delta)).Int32(int32(c.width))
				d.must(d.run(fn("emu_shfl_down"), 1, threads, &a))
				got := d.downloadInt32(out, int(threads))
				for tid := 0; tid < int(threads); tid++ {
					lane := tid % 32
					want := tid
					if lane%c.width+c.delta < c.width {
						want = tid + c.delta
					}
					if int(got[tid]) != want {
						t.Errorf("shfl_down delta %d width %d, thread %d of %d: %d, want %d", c.delta, c.width, tid, threads, got[tid], want)
					}
				}
			}
		}

		const blocks, threads = 3, 64
		out := d.alloc(4 * blocks * threads)
		a.Reset().Ptr(out)
		d.must(d.run(fn("emu_shared_reverse"), blocks, threads, &a))
		got := d.downloadInt32(out, blocks*threads)
		for i := 0; i < blocks*threads; i++ {
			b, tid := i/threads, i%threads
			if want := int32(threads - 1 - tid + 1000*b); got[i] != want {
				t.Errorf("shared reverse, block %d thread %d: %d, want %d", b, tid, got[i], want)
			}
		}
	})
}

// TestSimDivergentBarrier: a __syncthreads that threads which returned
// never reach fails the launch on both engines.
func TestSimDivergentBarrier(t *testing.T) {
	onSimulation(t, bothEngines, func(t *testing.T, d *gpuDev) {
		var a cu.KernelArgs
		a.Reset().Ptr(d.alloc(4 * Threads))
		if err := d.run(selftest(t)("emu_divergent_sync"), 1, Threads, &a); err == nil || !strings.Contains(err.Error(), "not reached by every thread") {
			t.Errorf("divergent __syncthreads: %v", err)
		}
	})
}

// TestSimWritePastEnd: a write past the end of a buffer is caught (the
// simulated driver's redzones).
func TestSimWritePastEnd(t *testing.T) {
	onSimulation(t, fibersOnly, func(t *testing.T, d *gpuDev) {
		var a cu.KernelArgs
		a.Reset().Ptr(d.alloc(4 * 5)).Int32(5)
		if err := d.run(selftest(t)("emu_write_past"), 1, 32, &a); err == nil || !strings.Contains(err.Error(), "past the end") ||
			!strings.Contains(err.Error(), "emu_write_past") {
			t.Errorf("write past the end: %v", err)
		}
	})
}

// TestSimDeadlock: lanes that shuffle while the rest of the block waits at
// __syncthreads never finish; only the fibers engine can tell (the threads
// would hang).
func TestSimDeadlock(t *testing.T) {
	onSimulation(t, fibersOnly, func(t *testing.T, d *gpuDev) {
		var a cu.KernelArgs
		a.Reset().Ptr(d.alloc(4 * Threads))
		if err := d.run(selftest(t)("emu_deadlock"), 1, Threads, &a); err == nil || !strings.Contains(err.Error(), "deadlock") {
			t.Errorf("fibers: deadlock: %v", err)
		}
	})
}
