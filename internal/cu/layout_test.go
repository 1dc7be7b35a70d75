package cu

import (
	"math"
	"testing"
	"unsafe"
)

// TestAlgoPerfLayout checks the Go mirror of cudnnConvolution*AlgoPerf_t
// against the C layout derived in the comment of algoPerfC: on an LP64 host
// the enums and float are 4 bytes, size_t is 8 bytes aligned to 8, so
// memory sits at 16 after 4 bytes of padding and the struct is 48 bytes.
func TestAlgoPerfLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the layout is derived for 64-bit hosts")
	}
	var p algoPerfC
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof", unsafe.Sizeof(p), 48},
		{"alignof", unsafe.Alignof(p), 8},
		{"algo", unsafe.Offsetof(p.algo), 0},
		{"status", unsafe.Offsetof(p.status), 4},
		{"time", unsafe.Offsetof(p.time), 8},
		{"memory", unsafe.Offsetof(p.memory), 16},
		{"determinism", unsafe.Offsetof(p.determinism), 24},
		{"mathType", unsafe.Offsetof(p.mathType), 28},
		{"reserved", unsafe.Offsetof(p.reserved), 32},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// An array of them, as cuDNN fills it, has no gaps.
	var arr [2]algoPerfC
	if d := uintptr(unsafe.Pointer(&arr[1])) - uintptr(unsafe.Pointer(&arr[0])); d != 48 {
		t.Errorf("array stride %d, want 48", d)
	}
}

func TestConvertPerfs(t *testing.T) {
	c := []algoPerfC{{algo: 6, status: 0, time: 0.25, memory: 1 << 20, determinism: 1, mathType: 3},
		{algo: 4, status: 3000, time: -1}}
	p := convertPerfs(c)
	if len(p) != 2 || p[0].Algo != 6 || !p[0].OK() || p[0].TimeMs != 0.25 || p[0].Memory != 1<<20 ||
		p[0].Determinism != Deterministic || p[0].MathType != DNNFMAMath || p[1].OK() || p[1].Status != 3000 {
		t.Errorf("got %+v", p)
	}
	if ConvFwdAlgo(p[0].Algo) != ConvFwdWinograd {
		t.Errorf("algo conversion")
	}
}

// TestKernelArgs checks what a kernel would read through the pointer table:
// each value little-endian at the start of its own 8-byte slot.
func TestKernelArgs(t *testing.T) {
	a := new(KernelArgs)
	devPtr := uint64(0x7f0012345678)
	a.Reset().Ptr(DevicePtr(devPtr)).Int32(-3).Uint32(0xdeadbeef).Float32(1.5).Float64(-2.25).Int64(-1 << 40).Uint64(math.MaxUint64)
	if a.Len() != 7 {
		t.Fatalf("Len = %d", a.Len())
	}
	for i := 0; i < a.n; i++ { // what LaunchKernelArgs does before the call
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
	if got := *(*uint64)(a.ptrs[0]); got != 0x7f0012345678 {
		t.Errorf("ptr: %#x", got)
	}
	if got := *(*int32)(a.ptrs[1]); got != -3 {
		t.Errorf("int32: %d", got)
	}
	if got := *(*uint32)(a.ptrs[2]); got != 0xdeadbeef {
		t.Errorf("uint32: %#x", got)
	}
	if got := *(*float32)(a.ptrs[3]); got != 1.5 {
		t.Errorf("float32: %v", got)
	}
	if got := *(*float64)(a.ptrs[4]); got != -2.25 {
		t.Errorf("float64: %v", got)
	}
	if got := *(*int64)(a.ptrs[5]); got != -1<<40 {
		t.Errorf("int64: %v", got)
	}
	if got := *(*uint64)(a.ptrs[6]); got != math.MaxUint64 {
		t.Errorf("uint64: %v", got)
	}
	if a.Reset().Len() != 0 {
		t.Errorf("Reset")
	}
	for range MaxKernelArgs + 1 {
		a.Int32(1)
	}
	if err := LaunchKernelArgs(0, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, 0, a); err == nil {
		t.Errorf("launch with %d arguments succeeded", a.Len())
	}
	if err := LaunchKernelArgs(0, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, 0, nil); err == nil {
		t.Errorf("launch with nil KernelArgs succeeded")
	}
}

func TestHelpers(t *testing.T) {
	if got := cbytes([]byte("abc\x00def")); got != "abc" {
		t.Errorf("cbytes: %q", got)
	}
	if got := cbytes([]byte("abc")); got != "abc" {
		t.Errorf("cbytes without NUL: %q", got)
	}
	b := cstr("hi")
	if len(b) != 3 || b[2] != 0 {
		t.Errorf("cstr: %q", b)
	}
	if got := gostring(uintptr(unsafe.Pointer(&b[0]))); got != "hi" {
		t.Errorf("gostring: %q", got)
	}
	if gostring(0) != "" {
		t.Errorf("gostring(0)")
	}
	if reg := uint64(0xffffffff00000007); status(uintptr(reg)) != 7 || status(0xfffffffe) != -2 {
		t.Errorf("status truncation")
	}
	if ArchFlag(9, 0) != "--gpu-architecture=sm_90" || VirtualArchFlag(8, 6) != "--gpu-architecture=compute_86" {
		t.Errorf("arch flags")
	}
	if GridFor(1000, 256) != 4 || GridFor(1024, 256) != 4 || GridFor(0, 256) != 0 {
		t.Errorf("GridFor")
	}
	if DevicePtr(0x1000).Offset(16) != 0x1010 {
		t.Errorf("Offset")
	}
	big := int64(math.MaxInt32) + 1
	if !fitsInt32(0, -1, math.MaxInt32) || (unsafe.Sizeof(0) == 8 && fitsInt32(int(big))) {
		t.Errorf("fitsInt32")
	}
}
