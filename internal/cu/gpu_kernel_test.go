package cu

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

const testKernels = `
extern "C" __global__ void mix(float* out, unsigned long long* out64, const float* in, int n,
                               float scale, unsigned long long tag, double offset, int shift) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = in[i] * scale + (float)offset;
    out64[i] = (tag ^ (unsigned long long)i) + (unsigned long long)(long long)shift;
  }
}

extern "C" __global__ void add(float* x, float v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += v;
}

extern "C" __global__ void scale(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

extern "C" __global__ void busy(float* x, int n, int iters) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    float v = x[i];
    for (int k = 0; k < iters; k++) v = v * 0.999f + 0.001f;
    x[i] = v;
  }
}

// Each block reverses its chunk of m floats through dynamic shared memory.
extern "C" __global__ void reverse_chunks(float* x, int m) {
  extern __shared__ float s[];
  float* chunk = x + (long long)blockIdx.x * m;
  for (int j = threadIdx.x; j < m; j += blockDim.x) s[j] = chunk[j];
  __syncthreads();
  for (int j = threadIdx.x; j < m; j += blockDim.x) chunk[j] = s[m - 1 - j];
}
`

// checkMix verifies the outputs of the mix kernel for in[i] = i, exactly:
// every value involved is representable.
func checkMix(t *testing.T, how string, out []float32, out64 []uint64, scale float32, tag uint64, offset float64, shift int32) {
	t.Helper()
	for i := range out {
		want := float32(i)*scale + float32(offset)
		if out[i] != want {
			t.Fatalf("%s: out[%d] = %v, want %v", how, i, out[i], want)
		}
		want64 := (tag ^ uint64(i)) + uint64(int64(shift))
		if out64[i] != want64 {
			t.Fatalf("%s: out64[%d] = %#x, want %#x", how, i, out64[i], want64)
		}
	}
}

// TestGPUKernelArgs launches an NVRTC-compiled kernel with pointer, int32,
// float32, uint64 and float64 arguments, through both launch forms.
func TestGPUKernelArgs(t *testing.T) {
	dev := gpu(t)
	m := build(t, dev, testKernels, "kernels.cu")
	mix := function(t, m, "mix")
	regs, err := mix.Attribute(FuncNumRegs)
	must(t, err)
	maxThreads, err := mix.Attribute(FuncMaxThreadsPerBlock)
	must(t, err)
	t.Logf("mix: %d registers, at most %d threads per block", regs, maxThreads)
	if maxThreads < 256 {
		t.Fatalf("mix allows only %d threads per block", maxThreads)
	}

	const n = 3000
	in := make([]float32, n)
	for i := range in {
		in[i] = float32(i)
	}
	inP := upload(t, in)
	outP := devAlloc(t, 4*n)
	out64P := devAlloc(t, 8*n)
	grid, block := [3]uint32{GridFor(n, 256), 1, 1}, [3]uint32{256, 1, 1}

	// LaunchKernel: pointers to the values, in parameter order.
	var (
		count  = int32(n)
		scale  = float32(0.5)
		tag    = uint64(0x0123_4567_89ab_cdef)
		offset = 0.25
		shift  = int32(-5)
	)
	must(t, LaunchKernel(mix, grid, block, 0, 0,
		unsafe.Pointer(&outP), unsafe.Pointer(&out64P), unsafe.Pointer(&inP), unsafe.Pointer(&count),
		unsafe.Pointer(&scale), unsafe.Pointer(&tag), unsafe.Pointer(&offset), unsafe.Pointer(&shift)))
	must(t, Synchronize())
	out64 := make([]uint64, n)
	must(t, CopyDtoH(out64, out64P))
	checkMix(t, "LaunchKernel", download(t, outP, n), out64, scale, tag, offset, shift)

	// KernelArgs with other values; the same block is reused twice.
	must(t, MemsetD32(outP, 0, n))
	args := new(KernelArgs)
	for _, c := range []struct {
		scale  float32
		tag    uint64
		offset float64
		shift  int32
	}{{2, 0xffff_0000_ffff_0000, -1.5, 7}, {-0.125, 1 << 63, 1024, math.MinInt32}} {
		args.Reset().Ptr(outP).Ptr(out64P).Ptr(inP).Int32(n).Float32(c.scale).Uint64(c.tag).Float64(c.offset).Int32(c.shift)
		must(t, LaunchKernelArgs(mix, grid, block, 0, 0, args))
		must(t, Synchronize())
		must(t, CopyDtoH(out64, out64P))
		checkMix(t, "LaunchKernelArgs", download(t, outP, n), out64, c.scale, c.tag, c.offset, c.shift)
	}
}

// TestGPUDynamicSharedMemory needs FuncSetAttribute to launch with more than
// 48 KiB of dynamic shared memory.
func TestGPUDynamicSharedMemory(t *testing.T) {
	dev := gpu(t)
	m := build(t, dev, testKernels, "kernels.cu")
	rev := function(t, m, "reverse_chunks")
	optin, err := dev.Attribute(AttrMaxSharedMemoryPerBlockOptin)
	must(t, err)
	shared := min(optin, 96*1024) &^ 1023
	chunk := shared / 4
	const blocks = 3
	x := make([]float32, blocks*chunk)
	for i := range x {
		x[i] = float32(i)
	}
	xP := upload(t, x)
	args := new(KernelArgs).Ptr(xP).Int32(int32(chunk))
	grid, block := [3]uint32{blocks, 1, 1}, [3]uint32{256, 1, 1}
	if shared > 48*1024 {
		err := LaunchKernelArgs(rev, grid, block, uint32(shared), 0, args)
		asError(t, err, "cuLaunchKernel")
	}
	must(t, FuncSetAttribute(rev, FuncMaxDynamicSharedSizeBytes, shared))
	must(t, LaunchKernelArgs(rev, grid, block, uint32(shared), 0, args))
	must(t, Synchronize())
	got := download(t, xP, len(x))
	for b := range blocks {
		for j := range chunk {
			if want := x[b*chunk+chunk-1-j]; got[b*chunk+j] != want {
				t.Fatalf("%d KiB shared: block %d element %d = %v, want %v", shared/1024, b, j, got[b*chunk+j], want)
			}
		}
	}
	t.Logf("reversed %d chunks through %d KiB of dynamic shared memory", blocks, shared/1024)
}

func TestGPUCompile(t *testing.T) {
	dev := gpu(t)
	needLib(t, LoadNVRTC)
	major, minor, err := dev.ComputeCapability()
	must(t, err)

	// A compilation error carries the log.
	_, log, err := Compile("extern \"C\" __global__ void bad(float* x) { x[0] = y; }\n", "bad.cu", []string{ArchFlag(major, minor)})
	e := asError(t, err, "nvrtcCompileProgram(bad.cu")
	if e.Name != "NVRTC_ERROR_COMPILATION" || e.Code != int(NVRTCErrorCompilation) {
		t.Errorf("status %s (%d), want NVRTC_ERROR_COMPILATION", e.Name, e.Code)
	}
	if !strings.Contains(log, "error") || !strings.Contains(log, "bad.cu") || e.Message != log || !strings.Contains(err.Error(), log) {
		t.Errorf("log not in the error: log %q, error %q", log, err)
	}
	// An unknown option.
	_, _, err = Compile("extern \"C\" __global__ void k() {}\n", "opt.cu", []string{"--no-such-option"})
	asError(t, err, "nvrtcCompileProgram(opt.cu")

	// PTX for the virtual architecture, compiled by the driver on load.
	ptx, _, err := CompilePTX(testKernels, "kernels.cu", []string{VirtualArchFlag(major, minor)})
	must(t, err)
	if !strings.Contains(string(ptx), ".entry add") || ptx[len(ptx)-1] != 0 {
		t.Fatalf("PTX lacks the kernel or its NUL: %.200q", ptx)
	}
	m, err := ModuleLoadData(ptx)
	must(t, err)
	defer m.Unload()
	add := function(t, m, "add")
	x := upload(t, []float32{1, 2, 3, 4, 5})
	must(t, LaunchKernelArgs(add, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, 0, new(KernelArgs).Ptr(x).Float32(10).Int32(5)))
	must(t, Synchronize())
	if got := download(t, x, 5); got[0] != 11 || got[4] != 15 {
		t.Errorf("PTX kernel: %v", got)
	}
	// The PTX without its NUL loads too (ModuleLoadData appends one).
	m2, err := ModuleLoadData(ptx[:len(ptx)-1])
	must(t, err)
	must(t, m2.Unload())

	// CUBIN needs a real architecture.
	if _, _, err := Compile(testKernels, "kernels.cu", []string{VirtualArchFlag(major, minor)}); err != nil {
		t.Logf("CUBIN for a virtual architecture: %v", err)
	} else {
		t.Logf("NVRTC produced a CUBIN for a virtual architecture")
	}
}

func TestGPUEventTiming(t *testing.T) {
	dev := gpu(t)
	m := build(t, dev, testKernels, "kernels.cu")
	busy := function(t, m, "busy")
	s := newStream(t, StreamNonBlocking)
	start, err := EventCreate(EventDefault)
	must(t, err)
	defer start.Destroy()
	end, err := EventCreate(EventDefault)
	must(t, err)
	defer end.Destroy()
	const n = 1 << 20
	x := devAlloc(t, 4*n)
	must(t, MemsetD32Async(x, math.Float32bits(1), n, s))
	args := new(KernelArgs).Ptr(x).Int32(n).Int32(2000)
	must(t, start.Record(s))
	for range 5 {
		must(t, LaunchKernelArgs(busy, [3]uint32{GridFor(n, 256), 1, 1}, [3]uint32{256, 1, 1}, 0, s, args))
	}
	must(t, end.Record(s))
	must(t, end.Synchronize())
	ms, err := ElapsedTime(start, end)
	must(t, err)
	t.Logf("5 launches of busy(2^20 elements, 2000 iterations): %.3f ms", ms)
	if !(ms > 0 && ms < 60_000) {
		t.Errorf("elapsed time %v ms", ms)
	}
}

// TestGPUNoAllocations checks that the calls of a training step allocate
// no Go memory.
func TestGPUNoAllocations(t *testing.T) {
	dev := gpu(t)
	m := build(t, dev, testKernels, "kernels.cu")
	add := function(t, m, "add")
	s := newStream(t, StreamNonBlocking)
	const n = 1 << 12
	x := devAlloc(t, 4*n)
	hostP, _ := pinned(t, n)
	ev, err := EventCreate(EventDisableTiming)
	must(t, err)
	defer ev.Destroy()
	args := new(KernelArgs)
	grid, block := [3]uint32{GridFor(n, 256), 1, 1}, [3]uint32{256, 1, 1}

	must(t, StreamBeginCapture(s, CaptureModeGlobal))
	must(t, LaunchKernelArgs(add, grid, block, 0, s, args.Reset().Ptr(x).Float32(1).Int32(n)))
	g, err := StreamEndCapture(s)
	must(t, err)
	exec, err := GraphInstantiate(g)
	must(t, err)
	defer GraphExecDestroy(exec)
	defer GraphDestroy(g)

	checks := []struct {
		name string
		f    func() error
	}{
		{"LaunchKernelArgs", func() error {
			return LaunchKernelArgs(add, grid, block, 0, s, args.Reset().Ptr(x).Float32(1).Int32(n))
		}},
		{"MemcpyHtoDAsync", func() error { return MemcpyHtoDAsync(x, hostP, 4*n, s) }},
		{"MemcpyDtoHAsync", func() error { return MemcpyDtoHAsync(hostP, x, 4*n, s) }},
		{"MemsetD32Async", func() error { return MemsetD32Async(x, 0, n, s) }},
		{"Event.Record", func() error { return ev.Record(s) }},
		{"Stream.WaitEvent", func() error { return s.WaitEvent(ev) }},
		{"GraphLaunch", func() error { return GraphLaunch(exec, s) }},
	}
	if LoadBLAS() == nil {
		b, err := NewBLAS()
		must(t, err)
		defer b.Destroy()
		must(t, b.SetStream(s))
		const k = 32
		a, c := devAlloc(t, 4*k*k), devAlloc(t, 4*k*k)
		must(t, MemsetD32(a, 0, k*k))
		checks = append(checks, struct {
			name string
			f    func() error
		}{"BLAS.Sgemm", func() error { return b.Sgemm(false, true, k, k, k, 1, a, k, a, k, 0, c, k) }})
	}
	if LoadDNN() == nil {
		d := dnnHandle(t)
		must(t, d.SetStream(s))
		f := newConvFixture(t, d, convCases[2], DNNFMAMath, rand.New(rand.NewPCG(1, 1)))
		need, err := d.ForwardWorkspaceSize(f.xd, f.wd, f.conv, f.yd, ConvFwdImplicitGemm)
		must(t, err)
		checks = append(checks, struct {
			name string
			f    func() error
		}{"DNN.ConvForward", func() error {
			return d.ConvForward(1, f.xd, f.xP, f.wd, f.wP, f.conv, ConvFwdImplicitGemm, f.ws, need, 0, f.yd, f.yP)
		}})
	}
	for _, c := range checks {
		var callErr error
		allocs := testing.AllocsPerRun(100, func() {
			if err := c.f(); err != nil && callErr == nil {
				callErr = err
			}
		})
		must(t, callErr)
		if allocs != 0 {
			t.Errorf("%s allocates %v times per call", c.name, allocs)
		} else {
			t.Logf("%s: no allocations", c.name)
		}
	}
	must(t, s.Synchronize())
}
