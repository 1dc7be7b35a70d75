package cu

// Every binding turns a failed C call into an *Error that names the C
// function (and the arguments that matter) and carries the library's
// status. On hardware most of these failures cannot be provoked; the
// simulation's fault fail=FUNCTION@N (SetSimFaults) fails exactly the N-th
// call of one exported function before it does anything, so each binding's
// error path runs here, one table row per binding. Each row also runs the
// operation again with the fault cleared and expects it to succeed: the
// failed call changed nothing, and the binding left nothing half done.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// faultRow is one binding whose C call is made to fail.
type faultRow struct {
	fn   string // the exported C function that fails
	at   int    // which of its calls fails (0 or 1: the operation's first)
	call string // how the *Error's Call starts
	// op prepares what the operation needs (with no fault set) and returns
	// the operation. It runs on the subtest's goroutine.
	op func(t *testing.T) func() error
}

func (r faultRow) name() string {
	if r.at > 1 {
		return fmt.Sprintf("%s@%d", r.fn, r.at)
	}
	return r.fn
}

// setSimFaults sets the simulation's faults for the rest of the test (or
// until the next call) and clears them when it ends.
func setSimFaults(t *testing.T, spec string) {
	t.Helper()
	if !SetSimFaults(spec) {
		t.Fatalf("SetSimFaults(%q): the loaded driver takes no faults", spec)
	}
	t.Cleanup(func() { SetSimFaults("") })
}

// runFaultRows runs each row in a subtest on the simulated GPU: the
// operation with its function failing, check on the *Error, then the
// operation again without the fault.
func runFaultRows(t *testing.T, rows []faultRow, check func(t *testing.T, r faultRow, e *Error)) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.name()] {
			t.Fatalf("two rows named %s", r.name())
		}
		seen[r.name()] = true
		t.Run(r.name(), func(t *testing.T) {
			simGPU(t)
			op := r.op(t)
			setSimFaults(t, fmt.Sprintf("fail=%s@%d", r.fn, max(r.at, 1)))
			err := op()
			SetSimFaults("")
			if err == nil {
				t.Fatalf("no error with %s failing", r.fn)
			}
			check(t, r, asError(t, err, r.call))
			if err := op(); err != nil {
				t.Errorf("again, without the fault: %v", err)
			}
		})
	}
}

// checkDriverFault: a driver call failed by the simulation returns
// CUDA_ERROR_UNKNOWN, named by the driver, with the simulation's
// explanation naming the function, and is not taken for a missing device.
func checkDriverFault(t *testing.T, r faultRow, e *Error) {
	t.Helper()
	checkSimDriverError(t, r.fn, e)
	if errors.Is(e, ErrNoDevice) || errors.Is(e, ErrNoDriver) || errors.Is(e, ErrNoLibrary) {
		t.Errorf("%v matches a no-GPU sentinel", e)
	}
}

func checkSimDriverError(t *testing.T, fn string, e *Error) {
	t.Helper()
	if Result(e.Code) != ResultUnknown || e.Name != "CUDA_ERROR_UNKNOWN" {
		t.Errorf("%v: code %d, want CUDA_ERROR_UNKNOWN (999)", e, e.Code)
	}
	if want := "unknown error; simulation: " + fn + ": failed (fault injected"; !strings.HasPrefix(e.Message, want) {
		t.Errorf("message %q does not start with %q", e.Message, want)
	}
}

// nopKernel has no parameters, for LaunchKernel without arguments.
const nopKernel = `extern "C" __global__ void nop() {}` + "\n"

// nopAfterParams puts nopKernel after a kernel with parameters: the
// simulated NVRTC once misread the signature records of such a program
// (a record without parameters is shorter than one with one).
const nopAfterParams = `extern "C" __global__ void first(float* x, int n) { if (n > 0) x[0] = 0.0f; }` + "\n" + nopKernel

// faultRig is what the driver rows share, made once with no fault set.
type faultRig struct {
	dev      Device
	image    []byte // testKernels as CUBIN
	mod      *Module
	add, nop Function
	buf      DevicePtr // rigN floats
	buf2     DevicePtr // rigN floats
	host     unsafe.Pointer
	s        Stream
}

const rigN = 256

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	r := &faultRig{dev: simGPU(t)}
	needLib(t, LoadNVRTC)
	major, minor, err := r.dev.ComputeCapability()
	must(t, err)
	// The programs and options of the other tests: NVRTC's cache has them.
	r.image, _, err = Compile(testKernels, "kernels.cu", []string{ArchFlag(major, minor)})
	must(t, err)
	r.mod, err = ModuleLoadData(r.image)
	must(t, err)
	t.Cleanup(func() { must(t, r.mod.Unload()) })
	r.add = function(t, r.mod, "add")
	r.nop = function(t, build(t, r.dev, nopAfterParams, "nop0.cu"), "nop")
	r.buf, r.buf2 = devAlloc(t, 4*rigN), devAlloc(t, 4*rigN)
	r.host, _ = pinned(t, rigN)
	r.s = newStream(t, StreamNonBlocking)
	return r
}

// done returns op as a preparation that needs nothing.
func done(op func() error) func(*testing.T) func() error {
	return func(*testing.T) func() error { return op }
}

// capturedGraph captures a memset on a new stream into a graph; the caller
// destroys the graph.
func capturedGraph(t *testing.T, r *faultRig) (Graph, Stream) {
	t.Helper()
	s := newStream(t, StreamNonBlocking)
	must(t, StreamBeginCapture(s, CaptureModeGlobal))
	must(t, MemsetD32Async(r.buf, math.Float32bits(1), rigN, s))
	g, err := StreamEndCapture(s)
	must(t, err)
	return g, s
}

func driverFaultRows(r *faultRig) []faultRow {
	bytes := 4 * rigN
	ignore := func(_ any, err error) error { return err }
	grid, block := [3]uint32{1, 1, 1}, [3]uint32{rigN, 1, 1}
	return []faultRow{
		{fn: "cuDriverGetVersion", call: "cuDriverGetVersion", op: done(func() error { return ignore(DriverVersion()) })},
		{fn: "cuDeviceGetCount", call: "cuDeviceGetCount", op: done(func() error { return ignore(DeviceCount()) })},
		{fn: "cuDeviceGet", call: "cuDeviceGet(0)", op: done(func() error { return ignore(DeviceGet(0)) })},
		{fn: "cuDeviceGetName", call: "cuDeviceGetName(device 0)", op: done(func() error { return ignore(r.dev.Name()) })},
		{fn: "cuDeviceGetAttribute", call: "cuDeviceGetAttribute(attribute 10, device 0)",
			op: done(func() error { return ignore(r.dev.Attribute(AttrWarpSize)) })},
		// ComputeCapability asks for the major version, then the minor.
		{fn: "cuDeviceGetAttribute", at: 2, call: "cuDeviceGetAttribute(attribute 76, device 0)",
			op: done(func() error { _, _, err := r.dev.ComputeCapability(); return err })},
		{fn: "cuDeviceTotalMem_v2", call: "cuDeviceTotalMem_v2(device 0)", op: done(func() error { return ignore(r.dev.TotalMem()) })},
		{fn: "cuDevicePrimaryCtxRetain", call: "cuDevicePrimaryCtxRetain(device 0)", op: done(func() error {
			c, err := r.dev.RetainPrimaryContext()
			if err != nil {
				return err
			}
			return c.Release()
		})},
		{fn: "cuDevicePrimaryCtxRelease_v2", call: "cuDevicePrimaryCtxRelease_v2(device 0)", op: func(t *testing.T) func() error {
			c, err := r.dev.RetainPrimaryContext()
			must(t, err)
			return c.Release
		}},
		{fn: "cuCtxSetCurrent", call: "cuCtxSetCurrent(device 0)", op: done(testGPU.ctx.SetCurrent)},
		{fn: "cuCtxSynchronize", call: "cuCtxSynchronize", op: done(Synchronize)},
		{fn: "cuMemAlloc_v2", call: "cuMemAlloc_v2(1024 bytes)", op: done(func() error {
			p, err := MemAlloc(bytes)
			if err != nil {
				return err
			}
			return MemFree(p)
		})},
		{fn: "cuMemFree_v2", call: "cuMemFree_v2(0x", op: func(t *testing.T) func() error {
			p, err := MemAlloc(bytes)
			must(t, err)
			return func() error { return MemFree(p) }
		}},
		{fn: "cuMemGetInfo_v2", call: "cuMemGetInfo_v2", op: done(func() error { _, _, err := MemGetInfo(); return err })},
		{fn: "cuMemcpyHtoD_v2", call: "cuMemcpyHtoD_v2(1024 bytes)", op: done(func() error { return MemcpyHtoD(r.buf, r.host, bytes) })},
		{fn: "cuMemcpyDtoH_v2", call: "cuMemcpyDtoH_v2(1024 bytes)", op: done(func() error { return MemcpyDtoH(r.host, r.buf, bytes) })},
		{fn: "cuMemcpyDtoD_v2", call: "cuMemcpyDtoD_v2(1024 bytes)", op: done(func() error { return MemcpyDtoD(r.buf2, r.buf, bytes) })},
		{fn: "cuMemcpyHtoDAsync_v2", call: "cuMemcpyHtoDAsync_v2(1024 bytes, stream 0x",
			op: done(func() error { return MemcpyHtoDAsync(r.buf, r.host, bytes, r.s) })},
		{fn: "cuMemcpyDtoHAsync_v2", call: "cuMemcpyDtoHAsync_v2(1024 bytes, stream 0x",
			op: done(func() error { return MemcpyDtoHAsync(r.host, r.buf, bytes, r.s) })},
		{fn: "cuMemcpyDtoDAsync_v2", call: "cuMemcpyDtoDAsync_v2(1024 bytes, stream 0x",
			op: done(func() error { return MemcpyDtoDAsync(r.buf2, r.buf, bytes, r.s) })},
		{fn: "cuMemsetD32_v2", call: "cuMemsetD32_v2(256 words)", op: done(func() error { return MemsetD32(r.buf, 0, rigN) })},
		{fn: "cuMemsetD32Async", call: "cuMemsetD32Async(256 words, stream 0x", op: done(func() error { return MemsetD32Async(r.buf, 0, rigN, r.s) })},
		{fn: "cuMemHostAlloc", call: "cuMemHostAlloc(1024 bytes, flags 0x1)", op: done(func() error {
			p, err := MemHostAlloc(bytes, HostAllocPortable)
			if err != nil {
				return err
			}
			return MemFreeHost(p)
		})},
		{fn: "cuMemFreeHost", call: "cuMemFreeHost(0x", op: func(t *testing.T) func() error {
			p, err := MemHostAlloc(bytes, HostAllocPortable)
			must(t, err)
			return func() error { return MemFreeHost(p) }
		}},
		{fn: "cuStreamCreate", call: "cuStreamCreate(flags 0x1)", op: done(func() error {
			s, err := StreamCreate(StreamNonBlocking)
			if err != nil {
				return err
			}
			return s.Destroy()
		})},
		{fn: "cuStreamDestroy_v2", call: "cuStreamDestroy_v2(stream 0x", op: func(t *testing.T) func() error {
			s, err := StreamCreate(StreamNonBlocking)
			must(t, err)
			return s.Destroy
		}},
		{fn: "cuStreamSynchronize", call: "cuStreamSynchronize(stream 0x", op: done(r.s.Synchronize)},
		{fn: "cuStreamQuery", call: "cuStreamQuery(stream 0x", op: done(func() error { return ignore(r.s.Query()) })},
		{fn: "cuStreamWaitEvent", call: "cuStreamWaitEvent(stream 0x", op: func(t *testing.T) func() error {
			ev := newEvent(t, EventDisableTiming)
			must(t, ev.Record(0))
			return func() error { return r.s.WaitEvent(ev) }
		}},
		{fn: "cuEventCreate", call: "cuEventCreate(flags 0x2)", op: done(func() error {
			ev, err := EventCreate(EventDisableTiming)
			if err != nil {
				return err
			}
			return ev.Destroy()
		})},
		{fn: "cuEventRecord", call: "cuEventRecord(event 0x", op: func(t *testing.T) func() error {
			ev := newEvent(t, EventDefault)
			return func() error { return ev.Record(r.s) }
		}},
		{fn: "cuEventSynchronize", call: "cuEventSynchronize(event 0x", op: func(t *testing.T) func() error {
			ev := newEvent(t, EventDefault)
			must(t, ev.Record(r.s))
			return ev.Synchronize
		}},
		{fn: "cuEventDestroy_v2", call: "cuEventDestroy_v2(event 0x", op: func(t *testing.T) func() error {
			ev, err := EventCreate(EventDefault)
			must(t, err)
			return ev.Destroy
		}},
		{fn: "cuEventElapsedTime_v2", call: "cuEventElapsedTime(0x", op: func(t *testing.T) func() error {
			a, b := newEvent(t, EventDefault), newEvent(t, EventDefault)
			must(t, a.Record(r.s))
			must(t, b.Record(r.s))
			must(t, b.Synchronize())
			return func() error {
				ms, err := ElapsedTime(a, b)
				if err == nil && !(ms >= 0) {
					return fmt.Errorf("elapsed time %v ms", ms)
				}
				return err
			}
		}},
		{fn: "cuModuleLoadData", call: fmt.Sprintf("cuModuleLoadData(%d bytes)", len(r.image)), op: done(func() error {
			m, err := ModuleLoadData(r.image)
			if err != nil {
				return err
			}
			return m.Unload()
		})},
		{fn: "cuModuleGetFunction", call: `cuModuleGetFunction("add")`, op: done(func() error { return ignore(r.mod.Function("add")) })},
		{fn: "cuModuleUnload", call: "cuModuleUnload", op: func(t *testing.T) func() error {
			m, err := ModuleLoadData(r.image)
			must(t, err)
			return m.Unload
		}},
		{fn: "cuFuncGetAttribute", call: "cuFuncGetAttribute(attribute 0)",
			op: done(func() error { return ignore(r.add.Attribute(FuncMaxThreadsPerBlock)) })},
		{fn: "cuFuncSetAttribute", call: "cuFuncSetAttribute(attribute 8, value 1024)",
			op: done(func() error { return FuncSetAttribute(r.add, FuncMaxDynamicSharedSizeBytes, 1024) })},
		{fn: "cuLaunchKernel", call: "cuLaunchKernel(grid [1 1 1], block [256 1 1], shared 0 bytes, 3 args)", op: done(func() error {
			p, v, n := uint64(r.buf), float32(2), int32(rigN)
			return LaunchKernel(r.add, grid, block, 0, r.s, unsafe.Pointer(&p), unsafe.Pointer(&v), unsafe.Pointer(&n))
		})},
		// The same binding without arguments, and through KernelArgs: the
		// fault counts the three launches of the operation.
		{fn: "cuLaunchKernel", at: 2, call: "cuLaunchKernel(grid [1 1 1], block [256 1 1], shared 0 bytes, 0 args)", op: done(func() error {
			p, v, n := uint64(r.buf), float32(2), int32(rigN)
			if err := LaunchKernel(r.add, grid, block, 0, r.s, unsafe.Pointer(&p), unsafe.Pointer(&v), unsafe.Pointer(&n)); err != nil {
				return err
			}
			return LaunchKernel(r.nop, grid, block, 0, r.s)
		})},
		{fn: "cuLaunchKernel", at: 3, call: "cuLaunchKernel(grid [1 1 1], block [256 1 1], shared 0 bytes, 3 args)", op: done(func() error {
			if err := LaunchKernel(r.nop, grid, block, 0, r.s); err != nil {
				return err
			}
			if err := LaunchKernel(r.nop, grid, block, 0, r.s); err != nil {
				return err
			}
			return LaunchKernelArgs(r.add, grid, block, 0, r.s, new(KernelArgs).Ptr(r.buf).Float32(3).Int32(rigN))
		})},
		{fn: "cuStreamBeginCapture_v2", call: "cuStreamBeginCapture_v2(stream 0x", op: func(t *testing.T) func() error {
			s := newStream(t, StreamNonBlocking)
			return func() error {
				if err := StreamBeginCapture(s, CaptureModeRelaxed); err != nil {
					return err
				}
				g, err := StreamEndCapture(s)
				if err != nil {
					return err
				}
				return GraphDestroy(g)
			}
		}},
		{fn: "cuStreamEndCapture", call: "cuStreamEndCapture(stream 0x", op: func(t *testing.T) func() error {
			s := newStream(t, StreamNonBlocking)
			must(t, StreamBeginCapture(s, CaptureModeGlobal))
			must(t, MemsetD32Async(r.buf, 0, rigN, s))
			return func() error {
				g, err := StreamEndCapture(s)
				if err != nil {
					return err
				}
				return GraphDestroy(g)
			}
		}},
		{fn: "cuStreamIsCapturing", call: "cuStreamIsCapturing(stream 0x", op: done(func() error {
			st, err := StreamIsCapturing(r.s)
			if err == nil && st != CaptureStatusNone {
				return fmt.Errorf("capture status %d of a stream that is not capturing", st)
			}
			return err
		})},
		{fn: "cuGraphInstantiateWithFlags", call: "cuGraphInstantiateWithFlags(graph 0x", op: func(t *testing.T) func() error {
			g, _ := capturedGraph(t, r)
			t.Cleanup(func() { must(t, GraphDestroy(g)) })
			return func() error {
				e, err := GraphInstantiate(g)
				if err != nil {
					return err
				}
				return GraphExecDestroy(e)
			}
		}},
		{fn: "cuGraphLaunch", call: "cuGraphLaunch(exec 0x", op: func(t *testing.T) func() error {
			g, s := capturedGraph(t, r)
			t.Cleanup(func() { must(t, GraphDestroy(g)) })
			e, err := GraphInstantiate(g)
			must(t, err)
			t.Cleanup(func() { must(t, GraphExecDestroy(e)) })
			return func() error {
				if err := GraphLaunch(e, s); err != nil {
					return err
				}
				return s.Synchronize()
			}
		}},
		{fn: "cuGraphExecDestroy", call: "cuGraphExecDestroy(exec 0x", op: func(t *testing.T) func() error {
			g, _ := capturedGraph(t, r)
			t.Cleanup(func() { must(t, GraphDestroy(g)) })
			e, err := GraphInstantiate(g)
			must(t, err)
			return func() error { return GraphExecDestroy(e) }
		}},
		{fn: "cuGraphDestroy", call: "cuGraphDestroy(graph 0x", op: func(t *testing.T) func() error {
			g, _ := capturedGraph(t, r)
			return func() error { return GraphDestroy(g) }
		}},
	}
}

func newEvent(t *testing.T, flags EventFlags) Event {
	t.Helper()
	ev, err := EventCreate(flags)
	must(t, err)
	t.Cleanup(func() {
		if err := ev.Destroy(); err != nil {
			t.Errorf("Event.Destroy: %v", err)
		}
	})
	return ev
}

// TestSimDriverFaults fails each driver binding's call once.
func TestSimDriverFaults(t *testing.T) {
	r := newFaultRig(t)
	rows := driverFaultRows(r)
	// Every driver function the package binds has a row, except cuInit
	// (TestSimInitFailure) and the error names and strings.
	bound := map[string]bool{}
	for _, s := range boundSymbols(t) {
		if s.lib == "drv" && strings.HasPrefix(s.field, "cu") {
			bound[s.names[0]] = true
		}
	}
	for _, row := range rows {
		delete(bound, row.fn)
	}
	for _, skip := range []string{"cuInit", "cuGetErrorName", "cuGetErrorString"} {
		delete(bound, skip)
	}
	if len(bound) > 0 {
		t.Errorf("driver functions without a fault row: %v", bound)
	}
	runFaultRows(t, rows, checkDriverFault)
	// The faults are gone and the context works.
	must(t, Synchronize())
	if got := download(t, upload(t, []float32{1, 2, 3}), 3); got[2] != 3 {
		t.Errorf("after the faults: %v", got)
	}
}

// TestSimFaultCounts: fail=FUNCTION@N fails the N-th call only, and fail@N
// the N-th call of any function.
func TestSimFaultCounts(t *testing.T) {
	dev := simGPU(t)
	setSimFaults(t, "fail=cuDeviceGetAttribute@3")
	for i := 1; i <= 4; i++ {
		_, err := dev.Attribute(AttrWarpSize)
		if (err != nil) != (i == 3) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	setSimFaults(t, "fail@2")
	if _, err := dev.TotalMem(); err != nil {
		t.Errorf("first call: %v", err)
	}
	_, err := dev.Name()
	checkSimDriverError(t, "cuDeviceGetName", asError(t, err, "cuDeviceGetName"))
	if _, err := dev.Name(); err != nil {
		t.Errorf("third call: %v", err)
	}
	// Cleared: nothing fails.
	setSimFaults(t, "")
	for range 3 {
		if _, err := dev.Name(); err != nil {
			t.Errorf("no faults: %v", err)
		}
	}
}

// resetInit forgets the outcome of Init, so that the next call runs cuInit
// again. Tests only; nothing else may run device work meanwhile.
func resetInit() {
	drv.initOnce = sync.Once{}
	drv.initErr = nil
}

// TestSimInitFailure: when cuInit fails with the driver loaded, Init's
// error is an *Error of cuInit that matches ErrNoDevice (not ErrNoDriver),
// and every function that needs the device returns that same error without
// calling the driver; DriverVersion still works. Then Init runs again with
// the fault gone and the context works.
func TestSimInitFailure(t *testing.T) {
	simGPU(t)
	t.Cleanup(func() {
		SetSimFaults("")
		resetInit()
		if err := Init(); err != nil {
			t.Fatalf("Init after the test: %v", err)
		}
		must(t, testGPU.ctx.SetCurrent())
		must(t, Synchronize())
	})
	setSimFaults(t, "fail=cuInit")
	resetInit()
	err := Init()
	SetSimFaults("")
	checkSimDriverError(t, "cuInit", asError(t, err, "cuInit(0)"))
	if !errors.Is(err, ErrNoDevice) || errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNoLibrary) {
		t.Errorf("%v: want ErrNoDevice only", err)
	}
	if again := Init(); again != err {
		t.Errorf("second Init: %v, want the first error", again)
	}
	ResetSimCounters()
	for name, call := range driverEntryPoints() {
		if got := call(); got != err {
			t.Errorf("%s: got %v, want the Init error", name, got)
		}
	}
	for _, c := range SimCounters() {
		if c.Value != 0 {
			t.Errorf("counter %s = %d: an entry point reached the device", c.Name, c.Value)
		}
	}
	if v, err := DriverVersion(); err != nil || v != 13000 {
		t.Errorf("DriverVersion with cuInit failed: %d, %v", v, err)
	}
}

// checkNVRTCFault: NVRTC calls failed by the simulation return
// NVRTC_ERROR_INTERNAL_ERROR, named by NVRTC.
func checkNVRTCFault(t *testing.T, r faultRow, e *Error) {
	t.Helper()
	if NVRTCResult(e.Code) != NVRTCErrorInternalError || e.Name != "NVRTC_ERROR_INTERNAL_ERROR" {
		t.Errorf("%v: code %d, want NVRTC_ERROR_INTERNAL_ERROR (11)", e, e.Code)
	}
}

// TestSimNVRTCFaults fails each NVRTC call of a compilation once. A failed
// log query loses only the log; every other failure fails the compilation.
func TestSimNVRTCFaults(t *testing.T) {
	dev := simGPU(t)
	needLib(t, LoadNVRTC)
	major, minor, err := dev.ComputeCapability()
	must(t, err)
	real, virtual := ArchFlag(major, minor), VirtualArchFlag(major, minor)
	cubin := func() error {
		out, _, err := Compile(testKernels, "kernels.cu", []string{real})
		if err == nil && len(out) == 0 {
			return fmt.Errorf("empty CUBIN")
		}
		return err
	}
	ptx := func() error {
		out, _, err := CompilePTX(testKernels, "kernels.cu", []string{virtual})
		if err == nil && !strings.Contains(string(out), ".entry add") {
			return fmt.Errorf("PTX lacks the kernel: %.100q", out)
		}
		return err
	}
	optq := fmt.Sprintf("%q", real)
	rows := []faultRow{
		{fn: "nvrtcVersion", call: "nvrtcVersion", op: done(func() error { _, _, err := NVRTCVersion(); return err })},
		{fn: "nvrtcCreateProgram", call: "nvrtcCreateProgram(kernels.cu)", op: done(cubin)},
		{fn: "nvrtcCompileProgram", call: "nvrtcCompileProgram(kernels.cu, " + optq + ")", op: done(cubin)},
		{fn: "nvrtcGetCUBINSize", call: "nvrtcGetCUBINSize(kernels.cu, " + optq + ")", op: done(cubin)},
		{fn: "nvrtcGetCUBIN", call: "nvrtcGetCUBIN(kernels.cu)", op: done(cubin)},
		{fn: "nvrtcGetPTXSize", call: fmt.Sprintf("nvrtcGetPTXSize(kernels.cu, %q)", virtual), op: done(ptx)},
		{fn: "nvrtcGetPTX", call: "nvrtcGetPTX(kernels.cu)", op: done(ptx)},
		{fn: "nvrtcDestroyProgram", call: "nvrtcDestroyProgram(kernels.cu)", op: done(cubin)},
	}
	runFaultRows(t, rows, func(t *testing.T, r faultRow, e *Error) {
		t.Helper()
		checkNVRTCFault(t, r, e)
		if r.fn == "nvrtcGetCUBINSize" && !strings.HasPrefix(e.Message, "no CUBIN: compile for a real architecture") {
			t.Errorf("message %q does not say how to get a CUBIN", e.Message)
		}
	})

	// A failure to read the log loses the log, nothing else: a compilation
	// still succeeds, and a failed one still reports its status.
	for _, fn := range []string{"nvrtcGetProgramLogSize", "nvrtcGetProgramLog"} {
		_, log, err := Compile(nopKernel, "opt.cu", []string{"--no-such-option"})
		e := asError(t, err, "nvrtcCompileProgram(opt.cu")
		if !strings.Contains(log, "--no-such-option") || e.Message != log {
			t.Errorf("without faults: log %q, message %q", log, e.Message)
		}
		setSimFaults(t, "fail="+fn)
		_, log, err = Compile(nopKernel, "opt.cu", []string{"--no-such-option"})
		SetSimFaults("")
		e = asError(t, err, "nvrtcCompileProgram(opt.cu")
		if NVRTCResult(e.Code) != NVRTCErrorInvalidOption || log != "" || e.Message != "" {
			t.Errorf("%s failing: %v (code %d), log %q", fn, e, e.Code, log)
		}
		setSimFaults(t, "fail="+fn)
		err = cubin()
		SetSimFaults("")
		if err != nil {
			t.Errorf("%s failing: the compilation failed: %v", fn, err)
		}
	}
}

// checkBLASFault: cuBLAS calls failed by the simulation return
// CUBLAS_STATUS_INTERNAL_ERROR with cuBLAS's description.
func checkBLASFault(t *testing.T, r faultRow, e *Error) {
	t.Helper()
	if BLASStatus(e.Code) != BLASStatusInternalError || e.Name != "CUBLAS_STATUS_INTERNAL_ERROR" || e.Message == "" {
		t.Errorf("%v: code %d, want CUBLAS_STATUS_INTERNAL_ERROR (14) with a description", e, e.Code)
	}
}

// TestSimBLASFaults fails each cuBLAS binding's call once.
func TestSimBLASFaults(t *testing.T) {
	simGPU(t)
	t.Setenv("PAD_CUDASIM_QUIET", "1") // cuBLAS's explanations go to stderr
	needLib(t, LoadBLAS)
	b, err := NewBLAS()
	must(t, err)
	t.Cleanup(func() { must(t, b.Destroy()) })
	s := newStream(t, StreamNonBlocking)
	const n = 16
	a, c := upload(t, make([]float32, n*n)), devAlloc(t, 4*n*n)
	ws := devAlloc(t, 1<<20)
	rows := []faultRow{
		{fn: "cublasCreate_v2", call: "cublasCreate_v2", op: done(func() error {
			h, err := NewBLAS()
			if err != nil {
				return err
			}
			return h.Destroy()
		})},
		{fn: "cublasDestroy_v2", call: "cublasDestroy_v2", op: func(t *testing.T) func() error {
			h, err := NewBLAS()
			must(t, err)
			return h.Destroy
		}},
		{fn: "cublasGetVersion_v2", call: "cublasGetVersion_v2", op: done(func() error {
			v, err := b.Version()
			if err == nil && v != 130100 {
				return fmt.Errorf("version %d, want 130100", v)
			}
			return err
		})},
		{fn: "cublasSetStream_v2", call: "cublasSetStream_v2(stream 0x", op: done(func() error { return b.SetStream(s) })},
		{fn: "cublasSetMathMode", call: "cublasSetMathMode(2)", op: done(func() error { return b.SetMathMode(BLASPedanticMath) })},
		{fn: "cublasSetWorkspace_v2", call: "cublasSetWorkspace_v2(1048576 bytes)", op: done(func() error { return b.SetWorkspace(ws, 1<<20) })},
		{fn: "cublasSgemm_v2", call: "cublasSgemm_v2(TN m=16 n=16 k=16 lda=16 ldb=16 ldc=16)", op: done(func() error {
			return b.Sgemm(true, false, n, n, n, 1, a, n, a, n, 0, c, n)
		})},
		{fn: "cublasSgemmStridedBatched", call: "cublasSgemmStridedBatched(NT m=8 n=8 k=8 lda=16 ldb=16 ldc=16 strides=8,8,8 batch=2)",
			op: done(func() error {
				return b.SgemmStridedBatched(false, true, 8, 8, 8, 1, a, n, 8, a, n, 8, 0, c, n, 8, 2)
			})},
		{fn: "cublasGetProperty", at: 3, call: "cublasGetProperty(2)", op: done(func() error {
			ma, mi, pa, err := BLASLibraryVersion()
			if err == nil && (ma != 13 || mi != 1 || pa != 0) {
				return fmt.Errorf("version %d.%d.%d, want 13.1.0", ma, mi, pa)
			}
			return err
		})},
	}
	runFaultRows(t, rows, checkBLASFault)
	must(t, Synchronize())
}

// checkDNNFault: cuDNN calls failed by the simulation return
// CUDNN_STATUS_INTERNAL_ERROR, with cuDNN's last error naming the function.
func checkDNNFault(t *testing.T, r faultRow, e *Error) {
	t.Helper()
	if DNNStatus(e.Code) != DNNStatusInternalError || e.Name != "CUDNN_STATUS_INTERNAL_ERROR" {
		t.Errorf("%v: code %d, want CUDNN_STATUS_INTERNAL_ERROR (4000)", e, e.Code)
	}
	if !strings.Contains(e.Message, r.fn) || !strings.Contains(e.Message, "fault injected") {
		t.Errorf("message %q does not explain the failure of %s", e.Message, r.fn)
	}
}

// TestSimDNNFaults fails each cuDNN binding's call once.
func TestSimDNNFaults(t *testing.T) {
	simGPU(t)
	d := dnnHandle(t)
	f := newConvFixture(t, d, convCases[2], DNNFMAMath, rand.New(rand.NewPCG(41, 42)))
	db, err := NewTensor4d(NCHW, DataFloat, 1, f.cc.k, 1, 1)
	must(t, err)
	t.Cleanup(func() { must(t, db.Destroy()) })
	dbP := devAlloc(t, 4*f.cc.k)
	s := newStream(t, StreamNonBlocking)
	t.Cleanup(func() { must(t, d.SetStream(0)) })
	perfs := func(p []AlgoPerf, err error) error {
		if err == nil && len(p) == 0 {
			return fmt.Errorf("no algorithms")
		}
		return err
	}
	size := func(n int, err error) error {
		if err == nil && n < 0 {
			return fmt.Errorf("workspace %d bytes", n)
		}
		return err
	}
	tensor := func() error {
		td, err := NewTensor4d(NHWC, DataFloat, 2, 3, 4, 5)
		if err != nil {
			return err
		}
		if n, c, h, w := td.Dims(); n != 2 || c != 3 || h != 4 || w != 5 {
			return fmt.Errorf("dims %d %d %d %d", n, c, h, w)
		}
		return td.Destroy()
	}
	filter := func() error {
		fd, err := NewFilter4d(NCHW, DataFloat, 6, 3, 3, 2)
		if err != nil {
			return err
		}
		if k, c, r, s := fd.Dims(); k != 6 || c != 3 || r != 3 || s != 2 {
			return fmt.Errorf("dims %d %d %d %d", k, c, r, s)
		}
		return fd.Destroy()
	}
	conv := func() error {
		cd, err := NewConv2d(1, 1, 1, 1, 1, 1, CrossCorrelation, DataFloat, DNNTensorOpMath)
		if err != nil {
			return err
		}
		if cd.MathType() != DNNTensorOpMath {
			return fmt.Errorf("math type %v", cd.MathType())
		}
		return cd.Destroy()
	}
	fwd, bwdD, bwdF := ConvFwdImplicitGemm, ConvBwdDataAlgo0, ConvBwdFilterAlgo0
	const xs, ws, cs, ys = "x float NCHW [2 3 8 8]", "w float NCHW filter [6 3 3 3]", "conv pad 1x1 stride 1x1 dilation 1x1 fma", "y float NCHW [2 6 8 8]"
	rows := []faultRow{
		{fn: "cudnnCreate", call: "cudnnCreate", op: done(func() error {
			h, err := NewDNN()
			if err != nil {
				return err
			}
			return h.Destroy()
		})},
		{fn: "cudnnDestroy", call: "cudnnDestroy", op: func(t *testing.T) func() error {
			h, err := NewDNN()
			must(t, err)
			return h.Destroy
		}},
		{fn: "cudnnSetStream", call: "cudnnSetStream(stream 0x", op: done(func() error { return d.SetStream(s) })},
		{fn: "cudnnCreateTensorDescriptor", call: "cudnnCreateTensorDescriptor", op: done(tensor)},
		{fn: "cudnnSetTensor4dDescriptor", call: "cudnnSetTensor4dDescriptor(float NHWC [2 3 4 5])", op: done(tensor)},
		{fn: "cudnnDestroyTensorDescriptor", call: "cudnnDestroyTensorDescriptor", op: func(t *testing.T) func() error {
			td, err := NewTensor4d(NCHW, DataFloat, 1, 1, 1, 1)
			must(t, err)
			return td.Destroy
		}},
		{fn: "cudnnCreateFilterDescriptor", call: "cudnnCreateFilterDescriptor", op: done(filter)},
		{fn: "cudnnSetFilter4dDescriptor", call: "cudnnSetFilter4dDescriptor(float NCHW filter [6 3 3 2])", op: done(filter)},
		{fn: "cudnnDestroyFilterDescriptor", call: "cudnnDestroyFilterDescriptor", op: func(t *testing.T) func() error {
			fd, err := NewFilter4d(NCHW, DataFloat, 1, 1, 1, 1)
			must(t, err)
			return fd.Destroy
		}},
		{fn: "cudnnCreateConvolutionDescriptor", call: "cudnnCreateConvolutionDescriptor", op: done(conv)},
		{fn: "cudnnSetConvolution2dDescriptor", call: "cudnnSetConvolution2dDescriptor(conv pad 1x1 stride 1x1 dilation 1x1 tensor-op)", op: done(conv)},
		// NewConv2d sets the math type last.
		{fn: "cudnnSetConvolutionMathType", call: "cudnnSetConvolutionMathType(tensor-op)", op: done(conv)},
		{fn: "cudnnSetConvolutionMathType", at: 2, call: "cudnnSetConvolutionMathType(default)", op: done(func() error {
			if err := conv(); err != nil {
				return err
			}
			if err := f.conv.SetMathType(DNNDefaultMath); err != nil {
				if f.conv.MathType() != DNNFMAMath {
					return fmt.Errorf("math type %v after a failed SetMathType", f.conv.MathType())
				}
				return err
			}
			if f.conv.MathType() != DNNDefaultMath {
				return fmt.Errorf("math type %v", f.conv.MathType())
			}
			return f.conv.SetMathType(DNNFMAMath)
		})},
		{fn: "cudnnDestroyConvolutionDescriptor", call: "cudnnDestroyConvolutionDescriptor", op: func(t *testing.T) func() error {
			cd, err := NewConv2d(0, 0, 1, 1, 1, 1, CrossCorrelation, DataFloat, DNNFMAMath)
			must(t, err)
			return cd.Destroy
		}},
		{fn: "cudnnGetConvolution2dForwardOutputDim", call: "cudnnGetConvolution2dForwardOutputDim(" + cs + ", " + xs + ", " + ws + ")",
			op: done(func() error {
				n, c, h, w, err := f.conv.OutputDim(f.xd, f.wd)
				if err == nil && (n != 2 || c != 6 || h != 8 || w != 8) {
					return fmt.Errorf("output %dx%dx%dx%d", n, c, h, w)
				}
				return err
			})},
		{fn: "cudnnGetConvolutionForwardAlgorithmMaxCount", call: "cudnnGetConvolutionForwardAlgorithmMaxCount", op: done(func() error {
			return perfs(d.FindForwardAlgos(f.xd, f.xP, f.wd, f.wP, f.conv, f.yd, f.yP, f.ws, f.wsBytes))
		})},
		{fn: "cudnnFindConvolutionForwardAlgorithmEx", call: "cudnnFindConvolutionForwardAlgorithmEx(" + xs + ", " + ws + ", " + cs + ", " + ys,
			op: done(func() error {
				return perfs(d.FindForwardAlgos(f.xd, f.xP, f.wd, f.wP, f.conv, f.yd, f.yP, f.ws, f.wsBytes))
			})},
		{fn: "cudnnGetConvolutionForwardAlgorithm_v7", call: "cudnnGetConvolutionForwardAlgorithm_v7(" + xs, op: done(func() error {
			return perfs(d.ForwardAlgosHeuristic(f.xd, f.wd, f.conv, f.yd))
		})},
		{fn: "cudnnGetConvolutionBackwardDataAlgorithmMaxCount", call: "cudnnGetConvolutionBackwardDataAlgorithmMaxCount", op: done(func() error {
			return perfs(d.BackwardDataAlgosHeuristic(f.wd, f.yd, f.conv, f.xd))
		})},
		{fn: "cudnnFindConvolutionBackwardDataAlgorithmEx", call: "cudnnFindConvolutionBackwardDataAlgorithmEx(" + ws, op: done(func() error {
			return perfs(d.FindBackwardDataAlgos(f.wd, f.wP, f.yd, f.dyP, f.conv, f.xd, f.dxP, f.ws, f.wsBytes))
		})},
		{fn: "cudnnGetConvolutionBackwardDataAlgorithm_v7", call: "cudnnGetConvolutionBackwardDataAlgorithm_v7(" + ws, op: done(func() error {
			return perfs(d.BackwardDataAlgosHeuristic(f.wd, f.yd, f.conv, f.xd))
		})},
		{fn: "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", call: "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", op: done(func() error {
			return perfs(d.BackwardFilterAlgosHeuristic(f.xd, f.yd, f.conv, f.wd))
		})},
		{fn: "cudnnFindConvolutionBackwardFilterAlgorithmEx", call: "cudnnFindConvolutionBackwardFilterAlgorithmEx(" + xs, op: done(func() error {
			return perfs(d.FindBackwardFilterAlgos(f.xd, f.xP, f.yd, f.dyP, f.conv, f.wd, f.dwP, f.ws, f.wsBytes))
		})},
		{fn: "cudnnGetConvolutionBackwardFilterAlgorithm_v7", call: "cudnnGetConvolutionBackwardFilterAlgorithm_v7(" + xs, op: done(func() error {
			return perfs(d.BackwardFilterAlgosHeuristic(f.xd, f.yd, f.conv, f.wd))
		})},
		{fn: "cudnnGetConvolutionForwardWorkspaceSize", call: "cudnnGetConvolutionForwardWorkspaceSize(" + xs + ", " + ws + ", " + cs + ", " + ys + ", IMPLICIT_GEMM)",
			op: done(func() error { return size(d.ForwardWorkspaceSize(f.xd, f.wd, f.conv, f.yd, fwd)) })},
		{fn: "cudnnGetConvolutionBackwardDataWorkspaceSize", call: "cudnnGetConvolutionBackwardDataWorkspaceSize(" + ws,
			op: done(func() error { return size(d.BackwardDataWorkspaceSize(f.wd, f.yd, f.conv, f.xd, bwdD)) })},
		{fn: "cudnnGetConvolutionBackwardFilterWorkspaceSize", call: "cudnnGetConvolutionBackwardFilterWorkspaceSize(" + xs,
			op: done(func() error { return size(d.BackwardFilterWorkspaceSize(f.xd, f.yd, f.conv, f.wd, bwdF)) })},
		{fn: "cudnnConvolutionForward", call: "cudnnConvolutionForward(" + xs, op: done(func() error {
			return d.ConvForward(1, f.xd, f.xP, f.wd, f.wP, f.conv, fwd, f.ws, f.wsBytes, 0, f.yd, f.yP)
		})},
		{fn: "cudnnConvolutionBackwardData", call: "cudnnConvolutionBackwardData(" + ws, op: done(func() error {
			return d.ConvBackwardData(1, f.wd, f.wP, f.yd, f.dyP, f.conv, bwdD, f.ws, f.wsBytes, 0, f.xd, f.dxP)
		})},
		{fn: "cudnnConvolutionBackwardFilter", call: "cudnnConvolutionBackwardFilter(" + xs, op: done(func() error {
			return d.ConvBackwardFilter(1, f.xd, f.xP, f.yd, f.dyP, f.conv, bwdF, f.ws, f.wsBytes, 0, f.wd, f.dwP)
		})},
		{fn: "cudnnConvolutionBackwardBias", call: "cudnnConvolutionBackwardBias(dy " + ys[2:] + ", db float NCHW [1 6 1 1])", op: done(func() error {
			return d.ConvBackwardBias(1, f.yd, f.dyP, 0, db, dbP)
		})},
		{fn: "cudnnAddTensor", call: "cudnnAddTensor(a float NCHW [1 6 1 1], c " + ys[2:] + ")", op: done(func() error {
			return d.AddTensor(1, db, dbP, 1, f.yd, f.yP)
		})},
	}
	runFaultRows(t, rows, checkDNNFault)
	must(t, Synchronize())
}
