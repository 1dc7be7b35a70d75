package kernels

// The kernels run here without a GPU: testdata/emu/harness.cpp, compiled
// with g++ once per test run around the exact text Source returns for each
// family, runs kernel launches under the emulation in
// internal/cudasim/csrc/emu.h (CUDA threads as real threads or as
// fibers). A fake launchFn hands each launch of the real Go launchers
// (grid, block, argument slots) and the device buffers it points into to
// the harness (one process per test) and copies the buffers back, so the launchers' shapes and argument encodings
// are exercised end to end. The harness rejects wrong argument counts, bad
// or misaligned pointers, invalid launch shapes, divergent barriers and
// writes outside a buffer. emu_ops_test.go compares every kernel with the
// CPU backend.
//
// PAD_EMU_ENGINE=threads or fibers forces one engine for every launch
// (threads for the 264-block reductions takes seconds per launch);
// PAD_EMU_SANITIZE=address,undefined builds the harness with those
// sanitizers (about twice as slow), so that any access outside a buffer,
// read or write, fails.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/cu"
)

// emuPtrShift places the buffer index above the byte offset in a fake
// device address (as the harness decodes it).
const emuPtrShift = 40

// emuThreadsMaxBlocks is the largest grid run with real threads by default;
// larger grids run as fibers (a barrier across 256 OS threads costs
// milliseconds on a small machine).
const emuThreadsMaxBlocks = 8

const emuMagic = "PADEMU01"

// emuTimeout bounds one launch in the harness.
const emuTimeout = 2 * time.Minute

// emuSelftest is the family of the emulation's own test kernels
// (testdata/emu/selftest.cu).
const emuSelftest = "emu_selftest"

type emuHarness struct {
	dir    string
	bin    string            // the harness binary
	family map[string]string // kernel → family
	params map[string]int    // kernel → parameter count (from the sources)
	build  time.Duration
	log    string // compiler warnings
	err    error
	skip   string
}

var (
	emuOnce sync.Once
	emuH    emuHarness
)

func TestMain(m *testing.M) {
	code := m.Run()
	if emuH.dir != "" {
		os.RemoveAll(emuH.dir)
	}
	os.Exit(code)
}

// emuHarnessFor builds the harness (once per test run) or skips t.
func emuHarnessFor(t testing.TB) *emuHarness {
	t.Helper()
	emuOnce.Do(emuBuild)
	if emuH.skip != "" {
		t.Skip(emuH.skip)
	}
	if emuH.err != nil {
		t.Fatal(emuH.err)
	}
	return &emuH
}

var defineRE = regexp.MustCompile(`(?m)^\s*#\s*define\s+(\w+)`)

func emuBuild() {
	h := &emuH
	gxx, err := exec.LookPath("g++")
	if err != nil {
		h.skip = "g++ not found: kernel emulation skipped"
		return
	}
	if v, err := exec.Command(gxx, "-dumpversion").Output(); err == nil {
		var major int
		if _, err := fmt.Sscanf(string(v), "%d", &major); err == nil && major < 11 {
			h.skip = fmt.Sprintf("g++ %s has no C++20 <barrier>: kernel emulation skipped", strings.TrimSpace(string(v)))
			return
		}
	}
	emuDir, err := filepath.Abs(filepath.Join("testdata", "emu"))
	if err != nil {
		h.err = err
		return
	}
	// emu.h lives with the simulated NVIDIA libraries, which compile every
	// kernel around it too (internal/cudasim).
	simDir, err := filepath.Abs(filepath.Join("..", "internal", "cudasim", "csrc"))
	if err != nil {
		h.err = err
		return
	}
	if h.dir, err = os.MkdirTemp("", "pad-kernels-emu-"); err != nil {
		h.err = err
		return
	}
	h.family = map[string]string{}
	h.params = map[string]int{}
	selftest, err := os.ReadFile(filepath.Join(emuDir, "selftest.cu"))
	if err != nil {
		h.err = err
		return
	}
	var fams, reg strings.Builder
	for _, fam := range append(Families(), emuSelftest) {
		src, err := Source(fam)
		if fam == emuSelftest {
			src, err = string(selftest), nil
		}
		if err != nil {
			h.err = err
			return
		}
		path := filepath.Join(h.dir, fam+".cu")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			h.err = err
			return
		}
		fmt.Fprintf(&fams, "namespace pad_family_%s {\n#include %q\n}\n", fam, path)
		for _, m := range defineRE.FindAllStringSubmatch(src, -1) {
			fmt.Fprintf(&fams, "#undef %s\n", m[1])
		}
		for _, name := range kernelNames(src) {
			if other, dup := h.family[name]; dup {
				h.err = fmt.Errorf("kernel %s is defined by both %s.cu and %s.cu", name, other, fam)
				return
			}
			h.family[name] = fam
			fmt.Fprintf(&reg, "PAD_KERNEL(pad_family_%s, %s)\n", fam, name)
		}
		for name, n := range paramCountsOf(src) {
			h.params[name] = n
		}
	}
	famPath := filepath.Join(h.dir, "families.inc")
	regPath := filepath.Join(h.dir, "registry.inc")
	if err := os.WriteFile(famPath, []byte(fams.String()), 0o644); err != nil {
		h.err = err
		return
	}
	if err := os.WriteFile(regPath, []byte(reg.String()), 0o644); err != nil {
		h.err = err
		return
	}
	h.bin = filepath.Join(h.dir, "harness")
	// -ffp-contract=off: no fused multiply-adds, as --fmad=false on the GPU
	// (plain x86-64 has no FMA instructions anyway).
	args := []string{"-std=c++20", "-O1", "-pthread", "-ffp-contract=off", "-fno-fast-math",
		"-Wall", "-Wno-unknown-pragmas", "-Wno-sign-compare", "-I", emuDir, "-I", simDir,
		fmt.Sprintf("-DPAD_FAMILIES=%q", famPath), fmt.Sprintf("-DPAD_REGISTRY=%q", regPath)}
	if s := os.Getenv("PAD_EMU_SANITIZE"); s != "" {
		args = append(args, "-fsanitize="+s, "-fno-omit-frame-pointer", "-fno-sanitize-recover=all")
	}
	args = append(args, filepath.Join(emuDir, "harness.cpp"), "-o", h.bin)
	start := time.Now()
	out, err := exec.Command(gxx, args...).CombinedOutput()
	h.build = time.Since(start)
	if err != nil {
		h.err = fmt.Errorf("compiling the emulation harness: %v\n%s", err, out)
		return
	}
	h.log = string(out)
}

// emuDev is an emulated device: its memory (buffer i has index i+1 in the
// fake addresses) and a Kernels whose launches run in the harness.
type emuDev struct {
	t     testing.TB
	h     *emuHarness
	k     *Kernels
	bufs  [][]byte
	names map[cu.Function]string

	// engine forces "threads" or "fibers" ("": by grid size).
	engine string
	// maxGridX, if not 0, caps grid.x of every launch: the grid-stride
	// loops must cover any n with any grid (test knob, not the launcher's
	// shape).
	maxGridX uint32
	// orderSeed picks the block order of the next launch (0: in order).
	orderSeed uint32
	launches  []emuLaunch
	proc      *emuProc
}

type emuLaunch struct {
	name         string
	grid, block  [3]uint32
	engine       string
	args         int
	wall         time.Duration
	harnessError string
}

func newEmu(t testing.TB) *emuDev {
	t.Helper()
	h := emuHarnessFor(t)
	d := &emuDev{t: t, h: h, names: map[cu.Function]string{}, orderSeed: 1}
	d.engine = os.Getenv("PAD_EMU_ENGINE")
	d.k = &Kernels{fns: map[string]cu.Function{}, launchFn: d.launch}
	t.Cleanup(func() {
		d.close()
		var n [2]int
		var wall [2]time.Duration
		for _, l := range d.launches {
			i := 0
			if l.engine == "fibers" {
				i = 1
			}
			n[i]++
			wall[i] += l.wall
		}
		t.Logf("emulated %d launches on threads (%v), %d on fibers (%v)", n[0], wall[0].Round(time.Millisecond), n[1], wall[1].Round(time.Millisecond))
	})
	i := cu.Function(1)
	for name := range h.family {
		d.k.fns[name] = i
		d.names[i] = name
		i++
	}
	return d
}

// alloc returns a zeroed device buffer of n bytes.
func (d *emuDev) alloc(n int) cu.DevicePtr {
	d.bufs = append(d.bufs, make([]byte, n))
	return cu.DevicePtr(uint64(len(d.bufs)) << emuPtrShift)
}

// mem returns the bytes of device memory from p to the end of its buffer.
func (d *emuDev) mem(p cu.DevicePtr) []byte {
	idx, off := uint64(p)>>emuPtrShift, uint64(p)&(1<<emuPtrShift-1)
	if idx == 0 || idx > uint64(len(d.bufs)) || off > uint64(len(d.bufs[idx-1])) {
		d.t.Fatalf("emu: %#x is not a device address", uint64(p))
	}
	return d.bufs[idx-1][off:]
}

func (d *emuDev) upload32(p cu.DevicePtr, v []float32) {
	m := d.mem(p)
	for i, x := range v {
		binary.LittleEndian.PutUint32(m[4*i:], math.Float32bits(x))
	}
}

func (d *emuDev) download32(p cu.DevicePtr, n int) []float32 {
	m := d.mem(p)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(m[4*i:]))
	}
	return out
}

// floats allocates a device buffer holding v.
func (d *emuDev) floats(v []float32) cu.DevicePtr {
	p := d.alloc(4 * len(v))
	d.upload32(p, v)
	return p
}

// kernelArgs reads the argument slots of a KernelArgs (its fields are
// unexported; reflect may read them).
func kernelArgs(a *cu.KernelArgs) ([]uint64, error) {
	v := reflect.ValueOf(a).Elem()
	nf, vf := v.FieldByName("n"), v.FieldByName("vals")
	if !nf.IsValid() || !vf.IsValid() || vf.Kind() != reflect.Array {
		return nil, errors.New("cu.KernelArgs changed: no n and vals fields")
	}
	n := int(nf.Int())
	if n > vf.Len() {
		return nil, fmt.Errorf("%d arguments, a KernelArgs holds %d", n, vf.Len())
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = vf.Index(i).Uint()
	}
	return out, nil
}

// launch is the Kernels' launchFn: it runs the launch in the harness.
func (d *emuDev) launch(f cu.Function, grid, block [3]uint32, _ cu.Stream, a *cu.KernelArgs) error {
	name, ok := d.names[f]
	if !ok {
		return fmt.Errorf("emu: unknown function %v", f)
	}
	slots, err := kernelArgs(a)
	if err != nil {
		return err
	}
	if d.maxGridX > 0 && grid[0] > d.maxGridX {
		grid[0] = d.maxGridX
	}
	engine := d.engine
	if engine == "" {
		engine = "fibers"
		if uint64(grid[0])*uint64(grid[1])*uint64(grid[2]) <= emuThreadsMaxBlocks {
			engine = "threads"
		}
	}
	var eng uint32
	switch engine {
	case "threads":
	case "fibers":
		eng = 1
	default:
		return fmt.Errorf("emu: unknown engine %q", engine)
	}

	var in bytes.Buffer
	le := binary.LittleEndian
	in.WriteString(emuMagic)
	binary.Write(&in, le, uint32(len(name)))
	in.WriteString(name)
	binary.Write(&in, le, grid)
	binary.Write(&in, le, block)
	binary.Write(&in, le, d.orderSeed)
	binary.Write(&in, le, eng)
	binary.Write(&in, le, uint32(len(slots)))
	binary.Write(&in, le, slots)
	// The buffers the slots point into travel (a scalar slot that happens
	// to look like an address only sends one buffer too many; pad's
	// kernels keep no pointers in device memory).
	var used []int
	for i := range d.bufs {
		for _, s := range slots {
			if s>>emuPtrShift == uint64(i+1) {
				used = append(used, i)
				break
			}
		}
	}
	binary.Write(&in, le, uint32(len(used)))
	total := 0
	for _, i := range used {
		binary.Write(&in, le, uint32(i+1))
		binary.Write(&in, le, uint64(len(d.bufs[i])))
		in.Write(d.bufs[i])
		total += len(d.bufs[i])
	}
	if d.orderSeed != 0 {
		d.orderSeed = d.orderSeed*1664525 + 1013904223
		if d.orderSeed == 0 {
			d.orderSeed = 1
		}
	}

	start := time.Now()
	res, failure, err := d.roundTrip(in.Bytes(), total)
	l := emuLaunch{name: name, grid: grid, block: block, engine: engine, args: len(slots), wall: time.Since(start), harnessError: failure}
	d.launches = append(d.launches, l)
	if err != nil {
		return fmt.Errorf("emu: %s: %w", name, err)
	}
	if failure != "" {
		return fmt.Errorf("emu: %s", failure)
	}
	for _, i := range used {
		b := d.bufs[i]
		copy(b, res[:len(b)])
		res = res[len(b):]
	}
	return nil
}

// emuProc is a running harness: launches go to its stdin, results come
// from its stdout.
type emuProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

// roundTrip sends one launch to the harness (started on first use) and
// returns the buffers' bytes after it, or the harness's message for a
// launch it refused or found broken.
func (d *emuDev) roundTrip(msg []byte, total int) (res []byte, failure string, err error) {
	if d.proc == nil {
		p := &emuProc{cmd: exec.Command(d.h.bin)}
		p.cmd.Stderr = &p.stderr
		if p.in, err = p.cmd.StdinPipe(); err != nil {
			return nil, "", err
		}
		stdout, err := p.cmd.StdoutPipe()
		if err != nil {
			return nil, "", err
		}
		p.out = bufio.NewReaderSize(stdout, 1<<20)
		if err := p.cmd.Start(); err != nil {
			return nil, "", err
		}
		d.proc = p
	}
	p := d.proc
	// A hung harness (threads waiting at a barrier that never completes)
	// is killed; reading then fails.
	timer := time.AfterFunc(emuTimeout, func() { p.cmd.Process.Kill() })
	defer timer.Stop()
	broken := func(err error) ([]byte, string, error) {
		p.in.Close()
		if werr := p.cmd.Wait(); werr != nil {
			err = fmt.Errorf("%v (%v)", err, werr)
		}
		d.proc = nil
		return nil, "", fmt.Errorf("harness failed: %v\n%s", err, strings.TrimSpace(p.stderr.String()))
	}
	// Write while reading: large launches fill the pipes both ways.
	werr := make(chan error, 1)
	go func() {
		_, err := p.in.Write(msg)
		werr <- err
	}()
	var head [12]byte
	if _, err := io.ReadFull(p.out, head[:]); err != nil {
		return broken(err)
	}
	if err := <-werr; err != nil {
		return broken(err)
	}
	if string(head[:8]) != emuMagic {
		return broken(errors.New("bad reply"))
	}
	if binary.LittleEndian.Uint32(head[8:]) != 0 {
		var n [4]byte
		if _, err := io.ReadFull(p.out, n[:]); err != nil {
			return broken(err)
		}
		text := make([]byte, binary.LittleEndian.Uint32(n[:]))
		if _, err := io.ReadFull(p.out, text); err != nil {
			return broken(err)
		}
		return nil, string(text), nil
	}
	res = make([]byte, total)
	if _, err := io.ReadFull(p.out, res); err != nil {
		return broken(err)
	}
	return res, "", nil
}

// close ends the harness.
func (d *emuDev) close() {
	if d.proc == nil {
		return
	}
	d.proc.in.Close()
	if err := d.proc.cmd.Wait(); err != nil {
		d.t.Errorf("emu: harness: %v\n%s", err, d.proc.stderr.String())
	}
	d.proc = nil
}

// must fails the test on a launcher error.
func (d *emuDev) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// paramCountsOf counts the parameters of every kernel of one source
// (KEY_PARAMS stands for five), like paramCounts.
func paramCountsOf(src string) map[string]int {
	out := map[string]int{}
	const marker = `extern "C" __global__ void `
	for _, part := range strings.Split(src, marker)[1:] {
		open := strings.IndexByte(part, '(')
		closeIdx := strings.IndexByte(part, ')')
		if open < 0 || closeIdx < open {
			continue
		}
		params := strings.TrimSpace(part[open+1 : closeIdx])
		n := 0
		if params != "" {
			n = strings.Count(params, ",") + 1
		}
		if strings.Contains(params, "KEY_PARAMS") {
			n += 4
		}
		out[part[:open]] = n
	}
	return out
}

// TestEmuHarness checks the emulation itself: the build, the argument
// count check, a misaligned pointer, a bad launch shape and one kernel on
// both engines.
func TestEmuHarness(t *testing.T) {
	d := newEmu(t)
	t.Logf("harness built in %v (%s)", d.h.build.Round(time.Millisecond), runtime.Version())
	if d.h.log != "" {
		t.Logf("compiler messages:\n%s", d.h.log)
	}
	if len(d.h.family) != len(d.h.params) {
		t.Errorf("%d kernels registered, %d parsed", len(d.h.family), len(d.h.params))
	}
	x := d.floats([]float32{1, 2, 3, 4, 5})
	for _, engine := range []string{"threads", "fibers"} {
		d.engine = engine
		d.must(d.k.Scale(0, x, 5, 2))
	}
	if got := d.download32(x, 5); !reflect.DeepEqual(got, []float32{4, 8, 12, 16, 20}) {
		t.Errorf("Scale twice by 2: %v", got)
	}
	d.engine = ""

	// The harness refuses what a GPU would reject or misread.
	f := d.k.fns["pad_scale"]
	var a cu.KernelArgs
	a.Reset().Ptr(x).Float32(2)
	if err := d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{Threads, 1, 1}, 0, &a); err == nil || !strings.Contains(err.Error(), "takes 3") {
		t.Errorf("two arguments for three parameters: %v", err)
	}
	a.Reset().Ptr(x + 2).Float32(2).Int64(1)
	if err := d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{Threads, 1, 1}, 0, &a); err == nil || !strings.Contains(err.Error(), "misaligned") {
		t.Errorf("misaligned float pointer: %v", err)
	}
	a.Reset().Ptr(x).Float32(2).Int64(1)
	if err := d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{2048, 1, 1}, 0, &a); err == nil || !strings.Contains(err.Error(), "invalid launch") {
		t.Errorf("2048 threads per block: %v", err)
	}
	a.Reset().Ptr(cu.DevicePtr(99 << emuPtrShift)).Float32(2).Int64(1)
	if err := d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{Threads, 1, 1}, 0, &a); err == nil || !strings.Contains(err.Error(), "not a device pointer") {
		t.Errorf("wild pointer: %v", err)
	}
}

// TestEmuBlockSumShapes runs the shared block_sum (through pad_finish_mean,
// which sums partials in runs per thread) with block sizes that are and are
// not multiples of the warp, on both engines: the shuffles of partial warps
// and the one-warp second stage must still add every value once.
func TestEmuBlockSumShapes(t *testing.T) {
	d := newEmu(t)
	f := d.k.fns["pad_finish_mean"]
	for _, engine := range []string{"threads", "fibers"} {
		d.engine = engine
		for _, threads := range []uint32{32, 64, 256, 1024} {
			for _, parts := range []int{1, 31, 33, 264, 1000} {
				vals := make([]float64, parts)
				var want float64
				for i := range vals {
					vals[i] = float64(i%7) + 0.25
					want += vals[i]
				}
				p := d.alloc(8 * parts)
				m := d.mem(p)
				for i, v := range vals {
					binary.LittleEndian.PutUint64(m[8*i:], math.Float64bits(v))
				}
				out := d.alloc(4)
				var a cu.KernelArgs
				a.Reset().Ptr(p).Int32(int32(parts)).Float64(1).Ptr(out)
				d.must(d.launch(f, [3]uint32{1, 1, 1}, [3]uint32{threads, 1, 1}, 0, &a))
				if got := d.download32(out, 1)[0]; got != float32(want) {
					t.Errorf("%s, %d threads, %d parts: sum %v, want %v", engine, threads, parts, got, want)
				}
			}
		}
	}
}

// TestClangCUDASyntax runs clang's CUDA front end over every family with a
// declarations-only shim of the CUDA built-ins the kernels use, so that
// errors only a CUDA compiler reports (a device function calling a host
// one, a missing __device__, CUDA-only syntax) show up without NVRTC.
func TestClangCUDASyntax(t *testing.T) {
	clang, err := exec.LookPath("clang++-14")
	if err != nil {
		t.Skip("clang++-14 not found")
	}
	shim, err := filepath.Abs(filepath.Join("testdata", "emu", "clang_shim.h"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, fam := range Families() {
		src, err := Source(fam)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fam+".cu")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(clang, "-x", "cuda", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
			"--cuda-device-only", "-fsyntax-only", "-std=c++17", "-Wall", "-Wno-unknown-cuda-version",
			"-include", shim, path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s.cu: clang: %v\n%s", fam, err, out)
		} else if len(out) > 0 {
			t.Logf("%s.cu: clang says:\n%s", fam, out)
		}
	}
}

// TestEmuSemantics checks the emulation against CUDA's rules with the
// kernels of testdata/emu/selftest.cu: shuffles (delta, width, the lanes
// that keep their own value), one shared array per block, and the errors
// for a barrier some threads never reach.
func TestEmuSemantics(t *testing.T) {
	d := newEmu(t)
	var a cu.KernelArgs
	run := func(name string, grid, threads uint32) error {
		return d.launch(d.k.fns[name], [3]uint32{grid, 1, 1}, [3]uint32{threads, 1, 1}, 0, &a)
	}
	for _, engine := range []string{"threads", "fibers"} {
		d.engine = engine
		for _, threads := range []uint32{32, 96} {
			for _, c := range []struct{ delta, width int }{{1, 32}, {16, 32}, {5, 32}, {3, 8}, {1, 2}, {0, 32}, {31, 32}} {
				out := d.alloc(4 * int(threads))
				a.Reset().Ptr(out).Uint32(uint32(c.delta)).Int32(int32(c.width))
				d.must(run("emu_shfl_down", 1, threads))
				m := d.mem(out)
				for tid := 0; tid < int(threads); tid++ {
					lane := tid % 32
					want := tid
					if lane%c.width+c.delta < c.width {
						want = tid + c.delta
					}
					if got := int(int32(binary.LittleEndian.Uint32(m[4*tid:]))); got != want {
						t.Errorf("%s: shfl_down delta %d width %d, thread %d of %d: %d, want %d", engine, c.delta, c.width, tid, threads, got, want)
					}
				}
			}
		}

		const blocks, threads = 3, 64
		out := d.alloc(4 * blocks * threads)
		a.Reset().Ptr(out)
		d.must(run("emu_shared_reverse", blocks, threads))
		m := d.mem(out)
		for i := 0; i < blocks*threads; i++ {
			b, tid := i/threads, i%threads
			if got, want := int32(binary.LittleEndian.Uint32(m[4*i:])), int32(threads-1-tid+1000*b); got != want {
				t.Errorf("%s: shared reverse, block %d thread %d: %d, want %d", engine, b, tid, got, want)
			}
		}

		out = d.alloc(4 * Threads)
		a.Reset().Ptr(out)
		if err := run("emu_divergent_sync", 1, Threads); err == nil || !strings.Contains(err.Error(), "not reached by every thread") {
			t.Errorf("%s: divergent __syncthreads: %v", engine, err)
		}
	}
	// A write past the end of a buffer (caught by the redzones, or by
	// AddressSanitizer in a sanitizer build).
	d.engine = ""
	out := d.alloc(4 * 5)
	a.Reset().Ptr(out).Int32(5)
	if err := run("emu_write_past", 1, 32); err == nil || !(strings.Contains(err.Error(), "past the end of buffer") || strings.Contains(err.Error(), "heap-buffer-overflow")) {
		t.Errorf("write past the end: %v", err)
	}

	// Only the fibers engine can tell a deadlock (the threads would hang).
	d.engine = "fibers"
	out = d.alloc(4 * Threads)
	a.Reset().Ptr(out)
	if err := run("emu_deadlock", 1, Threads); err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Errorf("fibers: deadlock: %v", err)
	}
}
