package cu

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"
)

func TestGPUInfo(t *testing.T) {
	dev := gpu(t)
	ver, err := DriverVersion()
	must(t, err)
	count, err := DeviceCount()
	must(t, err)
	name, err := dev.Name()
	must(t, err)
	major, minor, err := dev.ComputeCapability()
	must(t, err)
	total, err := dev.TotalMem()
	must(t, err)
	sms, err := dev.Attribute(AttrMultiprocessorCount)
	must(t, err)
	warp, err := dev.Attribute(AttrWarpSize)
	must(t, err)
	optin, err := dev.Attribute(AttrMaxSharedMemoryPerBlockOptin)
	must(t, err)
	free, ctxTotal, err := MemGetInfo()
	must(t, err)
	t.Logf("driver: %s, CUDA %d.%d (%d); %d device(s)", DriverLibrary(), ver/1000, ver%1000/10, ver, count)
	t.Logf("device 0: %s, compute capability %d.%d, %d SMs, warp %d, %.1f GiB (%.1f GiB free), opt-in shared memory %d KiB",
		name, major, minor, sms, warp, float64(total)/(1<<30), float64(free)/(1<<30), optin/1024)
	if ver < 12000 || count < 1 || name == "" || major < 3 || total <= 0 || sms <= 0 || warp != 32 {
		t.Errorf("implausible device report")
	}
	if ctxTotal != total || free <= 0 || free > total {
		t.Errorf("MemGetInfo: free %d, total %d; device total %d", free, ctxTotal, total)
	}
	if err := LoadNVRTC(); err == nil {
		ma, mi, err := NVRTCVersion()
		must(t, err)
		t.Logf("NVRTC %d.%d (%s)", ma, mi, NVRTCLibrary())
		if ma < 12 {
			t.Errorf("NVRTC %d.%d is older than 12", ma, mi)
		}
	} else {
		t.Logf("NVRTC: %v", err)
	}
	if err := LoadBLAS(); err == nil {
		b, err := NewBLAS()
		must(t, err)
		v, err := b.Version()
		must(t, err)
		must(t, b.Destroy())
		must(t, b.Destroy()) // a second Destroy is a no-op
		t.Logf("cuBLAS %d (%s)", v, BLASLibrary())
		if v < 12000 {
			t.Errorf("cuBLAS version %d", v)
		}
	} else {
		t.Logf("cuBLAS: %v", err)
	}
	if err := LoadDNN(); err == nil {
		v, err := DNNVersion()
		must(t, err)
		t.Logf("cuDNN %d (%s)", v, DNNLibrary())
		if v/10000 != 9 && v/1000 != 8 {
			t.Errorf("cuDNN version %d is neither 8 nor 9", v)
		}
	} else {
		t.Logf("cuDNN: %v", err)
	}
	if _, err := DeviceGet(count); err == nil {
		t.Errorf("DeviceGet(%d) succeeded with %d devices", count, count)
	} else {
		asError(t, err, "cuDeviceGet")
	}
}

func TestGPUMemoryRoundTrip(t *testing.T) {
	gpu(t)
	for _, n := range []int{1, 7, 1000, 1<<20 + 3} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(i)*0.5 - 3
		}
		a := upload(t, src)
		b := devAlloc(t, 4*n)
		must(t, MemcpyDtoD(b, a, 4*n))
		got := download(t, b, n)
		for i := range got {
			if got[i] != src[i] {
				t.Fatalf("n=%d: element %d = %v, want %v", n, i, got[i], src[i])
			}
		}
		// Offsets: overwrite the middle third of b with a memset.
		lo, hi := n/3, 2*n/3+1
		must(t, MemsetD32(b.Offset(4*lo), math.Float32bits(42), hi-lo))
		got = download(t, b, n)
		for i := range got {
			want := src[i]
			if i >= lo && i < hi {
				want = 42
			}
			if got[i] != want {
				t.Fatalf("n=%d memset: element %d = %v, want %v", n, i, got[i], want)
			}
		}
	}
	// Raw-pointer copies of other element types.
	bytes := []byte("pad dreams in CUDA")
	p := devAlloc(t, len(bytes))
	must(t, MemcpyHtoD(p, unsafe.Pointer(&bytes[0]), len(bytes)))
	back := make([]byte, len(bytes))
	must(t, MemcpyDtoH(unsafe.Pointer(&back[0]), p, len(back)))
	if string(back) != string(bytes) {
		t.Errorf("bytes: %q", back)
	}
	must(t, CopyHtoD[float32](p, nil)) // empty copies are no-ops
}

func TestGPUAsyncPinned(t *testing.T) {
	gpu(t)
	const n = 1 << 18
	srcP, src := pinned(t, n)
	dstP, dst := pinned(t, n)
	for i := range src {
		src[i] = float32(i%4096) - 2048
		dst[i] = float32(math.NaN())
	}
	s1 := newStream(t, StreamNonBlocking)
	s2 := newStream(t, StreamNonBlocking)
	ev, err := EventCreate(EventDisableTiming)
	must(t, err)
	defer ev.Destroy()

	a := devAlloc(t, 4*n)
	b := devAlloc(t, 4*n)
	// s1: upload, overwrite a quarter; s2 waits for s1's event, copies and
	// downloads.
	must(t, MemcpyHtoDAsync(a, srcP, 4*n, s1))
	must(t, MemsetD32Async(a.Offset(4*(n/4)), math.Float32bits(-1), n/4, s1))
	must(t, ev.Record(s1))
	must(t, s2.WaitEvent(ev))
	must(t, MemcpyDtoDAsync(b, a, 4*n, s2))
	must(t, MemcpyDtoHAsync(dstP, b, 4*n, s2))
	must(t, s2.Synchronize())
	done, err := s2.Query()
	must(t, err)
	if !done {
		t.Errorf("Query after Synchronize: not done")
	}
	for i := range dst {
		want := src[i]
		if i >= n/4 && i < n/2 {
			want = -1
		}
		if dst[i] != want {
			t.Fatalf("element %d = %v, want %v", i, dst[i], want)
		}
	}
	must(t, ev.Synchronize())
	must(t, s1.Synchronize())
	must(t, Synchronize())
}

func TestGPUErrors(t *testing.T) {
	dev := gpu(t)
	// Out of memory: 1 PiB.
	pib := uint64(1) << 50
	_, err := MemAlloc(int(pib))
	e := asError(t, err, "cuMemAlloc_v2")
	if e.Code != int(ResultOutOfMemory) || e.Name != "CUDA_ERROR_OUT_OF_MEMORY" ||
		!strings.HasPrefix(e.Error(), "cuMemAlloc_v2(1125899906842624 bytes): CUDA_ERROR_OUT_OF_MEMORY (out of memory") {
		t.Errorf("OOM error: %q (code %d)", e.Error(), e.Code)
	}
	if errors.Is(err, ErrNoDevice) || errors.Is(err, ErrNoDriver) {
		t.Errorf("OOM matches a no-GPU sentinel")
	}
	// A module that is not one.
	_, err = ModuleLoadData([]byte("this is not a module"))
	asError(t, err, "cuModuleLoadData")
	// Launches with impossible configurations, of a real kernel.
	m := build(t, dev, `extern "C" __global__ void nop(int* p) { if (p) *p = 1; }`, "nop.cu")
	f := function(t, m, "nop")
	var null uint64
	err = LaunchKernel(f, [3]uint32{0, 1, 1}, [3]uint32{32, 1, 1}, 0, 0, unsafe.Pointer(&null))
	if e := asError(t, err, "cuLaunchKernel"); e.Code != int(ResultInvalidValue) {
		t.Errorf("grid 0: %v, want CUDA_ERROR_INVALID_VALUE", err)
	}
	err = LaunchKernel(f, [3]uint32{1, 1, 1}, [3]uint32{4096, 1, 1}, 0, 0, unsafe.Pointer(&null))
	asError(t, err, "cuLaunchKernel")
	// A function the module does not have.
	_, err = m.Function("nope")
	if e := asError(t, err, `cuModuleGetFunction("nope")`); e.Code != int(ResultNotFound) {
		t.Errorf("missing function: %v, want CUDA_ERROR_NOT_FOUND", err)
	}
	// None of these errors is sticky: the context still works.
	must(t, Synchronize())
	p := upload(t, []float32{1, 2, 3})
	if got := download(t, p, 3); got[2] != 3 {
		t.Errorf("context broken after errors: %v", got)
	}
	must(t, LaunchKernel(f, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, 0, unsafe.Pointer(&null)))
	must(t, Synchronize())
}
