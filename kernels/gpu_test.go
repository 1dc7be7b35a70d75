package kernels

// The GPU tests (TestGPU*, TestSim*) launch pad's kernels through the Go
// launchers of launch.go on real device memory (internal/cu) and compare
// the results with the CPU backend (gpu_ops_test.go) or with CUDA's rules
// (gpu_semantics_test.go).
//
// Where they run:
//   - On the GPU where one is expected (testkit.GPUExpected), failing there
//     if it cannot be used.
//   - Elsewhere on pad's simulated NVIDIA stack (internal/cudasim): its
//     NVRTC compiles the exact source Load sends, with Load's options, and
//     its driver runs each launch under internal/cudasim/csrc/emu.h. The
//     simulation chooses its engine (CUDA threads as fibers or as real
//     threads, PAD_CUDASIM_ENGINE) when the driver initialises, so each test
//     runs in a child process of this test binary per engine it names (the
//     subtests fibers and threads; the threads engine takes seconds for a
//     launch of hundreds of blocks with barriers, so the biggest launches
//     run on fibers only), with the blocks of every launch in a seeded
//     random order (PAD_CUDASIM_SCHEDULE=random:SEED, unless set). The
//     test binary itself never loads the simulation: its NVRTC tests
//     (nvrtc_test.go) compile with NVIDIA's NVRTC where it is installed.
//   - Where PAD_CUDASIM=off, or no C++ compiler builds the simulation, and
//     there is no GPU, they skip, as the other GPU tests do.
//   - Where PAD_CUDA_LIB_DIR is set, in this process, on the libraries it
//     names (the simulation too, with the engine of the environment).
//
// The simulation reports a kernel that writes past the end of a buffer,
// a barrier not every thread reaches and a deadlock as a sticky error of
// the context; the tests that provoke them run only on the simulation,
// each in a child process of its own.

import (
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/cudasim"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// The engines of the simulation (PAD_CUDASIM_ENGINE).
const (
	engineFibers  = "fibers"
	engineThreads = "threads"
)

// bothEngines runs a test on each engine of the simulation; fibersOnly on
// the default one, for tests whose launches take seconds on threads.
var (
	bothEngines = []string{engineFibers, engineThreads}
	fibersOnly  = []string{engineFibers}
)

// childEnv names the test a child process runs (set by runChild).
const childEnv = "PAD_KERNELS_TEST_CHILD"

// childTimeout bounds a child process (a threads-engine launch whose
// barrier never completes hangs).
const childTimeout = 5 * time.Minute

func TestMain(m *testing.M) {
	code := m.Run()
	closeGPU()
	os.Exit(code)
}

var sim struct {
	once sync.Once
	dir  string // the simulation's folder when the GPU tests run in children
	err  error
}

// simChildren returns the folder of the simulated NVIDIA stack when this
// process runs its GPU tests in child processes on it, or "" when it runs
// them itself (a child; a GPU machine; PAD_CUDASIM=off; PAD_CUDA_LIB_DIR
// set; no C++ compiler). It builds the simulation if needed (the same rules
// as testkit.UseSimulatedGPU, without pointing this process at it).
func simChildren(t *testing.T) string {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		return ""
	}
	sim.once.Do(func() {
		if os.Getenv(testkit.SimulatedGPUEnv) == "off" || os.Getenv(cu.LibDirEnv) != "" {
			return
		}
		if ok, _ := testkit.GPUExpected(); ok {
			return
		}
		if _, err := cudasim.Compiler(); err != nil {
			return
		}
		sim.dir, sim.err = cudasim.Ensure()
	})
	if sim.err != nil {
		t.Fatalf("building the simulated GPU: %v", sim.err)
	}
	return sim.dir
}

// inChild reports whether this process is the child process that runs t.
func inChild(t *testing.T) bool {
	return os.Getenv(childEnv) == t.Name()
}

// runChild runs the test t (a top-level test) in a child process of this
// test binary on the given engine, with PAD_CUDA_LIB_DIR=libDir (unless
// ""), and fails, skips or passes as it did.
func runChild(t *testing.T, name, libDir, engine string) {
	t.Helper()
	args := []string{"-test.run=^" + name + "$", "-test.v", "-test.count=1", "-test.timeout=" + childTimeout.String()}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+name, "PAD_CUDASIM_ENGINE="+engine)
	if libDir != "" {
		cmd.Env = append(cmd.Env, cu.LibDirEnv+"="+libDir)
	}
	if os.Getenv("PAD_CUDASIM_SCHEDULE") == "" {
		// Blocks in a random order, drawn per launch: a kernel whose result
		// depends on the order of its blocks fails.
		cmd.Env = append(cmd.Env, "PAD_CUDASIM_SCHEDULE=random:7")
	}
	b, err := cmd.CombinedOutput()
	out := string(b)
	switch {
	case strings.Contains(out, "--- SKIP: "+name+" "):
		t.Skipf("the child process skipped %s:\n%s", name, quoteOutput(out))
	case err != nil || !strings.Contains(out, "--- PASS: "+name+" "):
		t.Fatalf("the child process (PAD_CUDASIM_ENGINE=%s) failed %s (%v):\n%s", engine, name, err, quoteOutput(out))
	}
	if testing.Verbose() {
		t.Logf("the child process (PAD_CUDASIM_ENGINE=%s):\n%s", engine, quoteOutput(out))
	}
}

// quoteOutput prefixes every line of a child's output with "> ", so that
// its "--- PASS" lines are not read as this process's results (go test
// -json).
func quoteOutput(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n")
}

// onGPU runs body on the GPU (see the top of this file): on the simulation
// once per engine, each in a child process, as parallel subtests named by
// the engine; else here.
func onGPU(t *testing.T, engines []string, body func(t *testing.T, d *gpuDev)) {
	t.Helper()
	if dir := simChildren(t); dir != "" {
		name := t.Name()
		for _, e := range engines {
			t.Run(e, func(t *testing.T) {
				t.Parallel()
				runChild(t, name, dir, e)
			})
		}
		return
	}
	if os.Getenv(childEnv) != "" && !inChild(t) {
		t.Skipf("the child process of %s", os.Getenv(childEnv))
	}
	body(t, openGPU(t))
}

// onSimulation runs body on the simulated GPU only, once per engine, each
// in a child process of its own (body may leave the context with a sticky
// error); on a GPU it skips.
func onSimulation(t *testing.T, engines []string, body func(t *testing.T, d *gpuDev)) {
	t.Helper()
	if inChild(t) {
		d := openGPU(t)
		d.sticky = true
		gpuState.sticky = true
		if !cu.Simulated() {
			t.Fatal("not the simulated GPU")
		}
		body(t, d)
		return
	}
	dir := simChildren(t)
	if dir == "" {
		// Here: on the simulation only when PAD_CUDA_LIB_DIR names it.
		if ok, why := testkit.GPUExpected(); ok {
			t.Skipf("%s: the simulation's own checks (on a GPU the mistake would hang or corrupt the context)", why)
		}
		openGPU(t)
		if !cu.Simulated() {
			t.Skip("not the simulated GPU")
		}
	}
	name := t.Name()
	for _, e := range engines {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			runChild(t, name, dir, e)
		})
	}
}

// The process's device: the primary context of device 0 and the loaded
// kernels, set up by the first GPU test.
var gpuState struct {
	once   sync.Once
	dev    cu.Device
	ctx    *cu.Context
	k      *Kernels
	major  int
	minor  int
	err    error
	noGPU  bool // err means no usable GPU (skip), not a broken set-up
	sticky bool // a test broke the context on purpose: leave it as it is
	loaded time.Duration
}

// gpuDev is one test's view of the device: the loaded kernels, whose
// launches it records (and can reshape), and the buffers it allocated.
type gpuDev struct {
	t testing.TB
	k *Kernels
	// maxGridX, if not 0, caps grid.x of every launch: the grid-stride
	// loops must cover any n with any grid (test knob, not the launcher's
	// shape).
	maxGridX uint32
	launches []gpuLaunch
	bufs     []cu.DevicePtr
	// sticky: the test leaves the context broken on purpose (in a child
	// process of its own), so nothing is freed at its end.
	sticky bool
}

type gpuLaunch struct {
	f           cu.Function
	grid, block [3]uint32
}

// openGPU locks the test to its OS thread, makes device 0's primary
// context current there and returns the kernels, loaded once per process.
// Without a usable GPU it skips the test (fails it where a GPU is
// expected, or in a child process on the simulation).
func openGPU(t *testing.T) *gpuDev {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	g := &gpuState
	g.once.Do(func() {
		start := time.Now()
		if g.err = cu.Init(); g.err != nil {
			g.noGPU = true
			return
		}
		if g.dev, g.err = cu.DeviceGet(0); g.err != nil {
			g.noGPU = true
			return
		}
		if g.major, g.minor, g.err = g.dev.ComputeCapability(); g.err != nil {
			return
		}
		if g.ctx, g.err = g.dev.RetainPrimaryContext(); g.err != nil {
			return
		}
		if g.err = g.ctx.SetCurrent(); g.err != nil {
			return
		}
		if err := cu.LoadNVRTC(); err != nil {
			g.err, g.noGPU = err, true
			return
		}
		g.k, g.err = Load(g.major, g.minor, "")
		g.loaded = time.Since(start)
	})
	if g.err != nil {
		if g.noGPU && os.Getenv(childEnv) == "" {
			testkit.SkipOrFailNoGPU(t, g.err)
		}
		t.Fatalf("setting up the device: %v", g.err)
	}
	if err := g.ctx.SetCurrent(); err != nil {
		t.Fatalf("SetCurrent: %v", err)
	}
	d := &gpuDev{t: t, k: g.k}
	g.k.launchFn = d.launch
	t.Cleanup(func() {
		g.k.launchFn = launchArgs
		if d.sticky {
			return
		}
		// Errors of work still queued show here, not in a later test.
		if err := cu.Synchronize(); err != nil {
			t.Errorf("synchronising at the end: %v", err)
			return
		}
		for _, p := range d.bufs {
			if err := cu.MemFree(p); err != nil {
				t.Errorf("MemFree: %v", err)
			}
		}
		t.Logf("%d launches on %s (kernels loaded in %v)", len(d.launches), deviceName(), g.loaded.Round(time.Millisecond))
	})
	return d
}

// simEngine returns the engine of the simulated GPU ("" on a GPU).
func simEngine() string {
	if !cu.Simulated() {
		return ""
	}
	if os.Getenv("PAD_CUDASIM_ENGINE") == engineThreads {
		return engineThreads
	}
	return engineFibers
}

// deviceName names the device and, on the simulation, its engine.
func deviceName() string {
	name, err := gpuState.dev.Name()
	if err != nil {
		name = err.Error()
	}
	if e := simEngine(); e != "" {
		name += ", engine " + e
	}
	return name
}

// closeGPU unloads the kernels and releases the context (TestMain).
func closeGPU() {
	g := &gpuState
	if g.ctx == nil || g.sticky {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if g.ctx.SetCurrent() == nil && g.k != nil {
		g.k.Close()
	}
	g.ctx.Release()
}

// launch is the Kernels' launchFn in the GPU tests: it applies maxGridX,
// records the launch and launches it.
func (d *gpuDev) launch(f cu.Function, grid, block [3]uint32, s cu.Stream, a *cu.KernelArgs) error {
	if d.maxGridX > 0 && grid[0] > d.maxGridX {
		grid[0] = d.maxGridX
	}
	d.launches = append(d.launches, gpuLaunch{f, grid, block})
	return launchArgs(f, grid, block, s, a)
}

// fn returns a loaded kernel.
func (d *gpuDev) fn(name string) cu.Function {
	d.t.Helper()
	f, ok := d.k.fns[name]
	if !ok {
		d.t.Fatalf("kernel %s not loaded", name)
	}
	return f
}

// alloc returns a zeroed device buffer of n bytes (a multiple of 4), freed
// when the test ends. An empty buffer gets 4 bytes: CUDA allocates none.
func (d *gpuDev) alloc(n int) cu.DevicePtr {
	d.t.Helper()
	if n%4 != 0 {
		d.t.Fatalf("alloc(%d): not a multiple of 4", n)
	}
	p, err := cu.MemAlloc(max(n, 4))
	d.must(err)
	d.bufs = append(d.bufs, p)
	d.must(cu.MemsetD32(p, 0, max(n, 4)/4))
	return p
}

func (d *gpuDev) upload32(p cu.DevicePtr, v []float32) {
	d.t.Helper()
	d.must(cu.CopyHtoD(p, v))
}

// download32 copies n floats from the device (waiting for the work before
// it, so a kernel's error shows here).
func (d *gpuDev) download32(p cu.DevicePtr, n int) []float32 {
	d.t.Helper()
	out := make([]float32, n)
	d.must(cu.CopyDtoH(out, p))
	return out
}

func (d *gpuDev) downloadInt32(p cu.DevicePtr, n int) []int32 {
	d.t.Helper()
	out := make([]int32, n)
	d.must(cu.CopyDtoH(out, p))
	return out
}

// floats allocates a device buffer holding v.
func (d *gpuDev) floats(v []float32) cu.DevicePtr {
	d.t.Helper()
	p := d.alloc(4 * len(v))
	d.upload32(p, v)
	return p
}

// float64s allocates a device buffer holding v.
func (d *gpuDev) float64s(v []float64) cu.DevicePtr {
	d.t.Helper()
	p := d.alloc(8 * len(v))
	bits := make([]uint64, len(v))
	for i, x := range v {
		bits[i] = math.Float64bits(x)
	}
	d.must(cu.CopyHtoD(p, bits))
	return p
}

// must fails the test on an error.
func (d *gpuDev) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// lastLaunch returns the most recent launch.
func (d *gpuDev) lastLaunch() gpuLaunch {
	d.t.Helper()
	if len(d.launches) == 0 {
		d.t.Fatal("no launch recorded")
	}
	return d.launches[len(d.launches)-1]
}

// run launches f directly (not through a launcher) and waits for it: the
// error of the launch or of the kernel, nil if it ran.
func (d *gpuDev) run(f cu.Function, grid, threads uint32, a *cu.KernelArgs) error {
	if err := d.launch(f, [3]uint32{grid, 1, 1}, [3]uint32{threads, 1, 1}, 0, a); err != nil {
		return err
	}
	return cu.Synchronize()
}
