package cu

// The small accessors, the arguments rejected before any C call, the
// fallback tables of status names, and what Libraries reports when a
// version query fails.

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// Names and shapes need no library.
func TestStringsAndDims(t *testing.T) {
	checks := []struct{ got, want string }{
		{NCHW.String(), "NCHW"},
		{NHWC.String(), "NHWC"},
		{TensorFormat(7).String(), "TensorFormat(7)"},
		{DataFloat.String(), "float"},
		{DataDouble.String(), "double"},
		{DataHalf.String(), "half"},
		{DataInt8.String(), "int8"},
		{DataInt32.String(), "int32"},
		{DataUint8.String(), "uint8"},
		{DataBFloat16.String(), "bfloat16"},
		{DataInt64.String(), "int64"},
		{DataType(5).String(), "DataType(5)"},
		{DNNDefaultMath.String(), "default"},
		{DNNTensorOpMath.String(), "tensor-op"},
		{DNNTensorOpMathAllowConversion.String(), "tensor-op-allow-conversion"},
		{DNNFMAMath.String(), "fma"},
		{DNNMath(9).String(), "DNNMath(9)"},
		{ConvFwdWinogradNonfused.String(), "WINOGRAD_NONFUSED"},
		{ConvFwdAlgoCount.String(), "ConvFwdAlgo(8)"},
		{ConvBwdDataFFTTiling.String(), "FFT_TILING"},
		{ConvBwdDataAlgo(-1).String(), "ConvBwdDataAlgo(-1)"},
		{ConvBwdFilterFFTTiling.String(), "FFT_TILING"},
		{ConvBwdFilterAlgoCount.String(), "ConvBwdFilterAlgo(7)"},
		{Device(3).String(), "device 3"},
		{Function(0xbeef).String(), "function 0xbeef"},
		{(&TensorDesc{n: 2, c: 3, y: 4, x: 5, format: NHWC, dtype: DataHalf}).String(), "half NHWC [2 3 4 5]"},
		{(&FilterDesc{k: 6, c: 3, r: 1, s: 7, format: NCHW, dtype: DataBFloat16}).String(), "bfloat16 NCHW filter [6 3 1 7]"},
		{(&ConvDesc{padH: 1, padW: 2, strideH: 3, strideW: 4, dilH: 5, dilW: 6, math: DNNTensorOpMath}).String(),
			"conv pad 1x2 stride 3x4 dilation 5x6 tensor-op"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	td := &TensorDesc{n: 2, c: 3, y: 4, x: 5}
	if n, c, h, w := td.Dims(); n != 2 || c != 3 || h != 4 || w != 5 || td.Len() != 120 {
		t.Errorf("tensor dims %d %d %d %d, len %d", n, c, h, w, td.Len())
	}
	fd := &FilterDesc{k: 6, c: 3, r: 1, s: 7}
	if k, c, r, s := fd.Dims(); k != 6 || c != 3 || r != 1 || s != 7 || fd.Len() != 126 {
		t.Errorf("filter dims %d %d %d %d, len %d", k, c, r, s, fd.Len())
	}
	if m := (&ConvDesc{math: DNNFMAMath}).MathType(); m != DNNFMAMath {
		t.Errorf("MathType %v", m)
	}
	if isRelease("580.a") || isRelease("580") || !isRelease("580.159.04") {
		t.Errorf("isRelease")
	}
}

// Values and Widths report the slots appended since Reset, at most
// MaxKernelArgs of them.
func TestKernelArgsValues(t *testing.T) {
	a := new(KernelArgs)
	a.Ptr(0x1000).Int32(-1).Float32(2).Uint32(7).Float64(0.5).Int64(-2).Uint64(3)
	wantV := []uint64{0x1000, 0xffffffff, uint64(math.Float32bits(2)), 7, math.Float64bits(0.5), uint64(1<<64 - 2), 3}
	wantW := []uint8{8, 4, 4, 4, 8, 8, 8}
	v, w := a.Values(), a.Widths()
	if len(v) != len(wantV) || len(w) != len(wantW) {
		t.Fatalf("%d values, %d widths", len(v), len(w))
	}
	for i := range wantV {
		if v[i] != wantV[i] || w[i] != wantW[i] {
			t.Errorf("slot %d: %#x (%d bytes), want %#x (%d bytes)", i, v[i], w[i], wantV[i], wantW[i])
		}
	}
	if len(a.Reset().Values()) != 0 || len(a.Widths()) != 0 {
		t.Errorf("after Reset: %v %v", a.Values(), a.Widths())
	}
	for i := range MaxKernelArgs + 3 {
		a.Int32(int32(i))
	}
	if len(a.Values()) != MaxKernelArgs || len(a.Widths()) != MaxKernelArgs || a.Values()[MaxKernelArgs-1] != MaxKernelArgs-1 {
		t.Errorf("overfull: %d values, %d widths", len(a.Values()), len(a.Widths()))
	}
}

// A library that did not load is reported with its error and where the
// loader looked.
func TestLibInfoOfAFailure(t *testing.T) {
	le := &LoadError{Lib: "cudnn", Tried: []string{"libcudnn.so.9"}, Searched: []string{"loader path"}, sentence: "cudnn: not found", kind: ErrNoLibrary}
	li := libInfo("cudnn", le, loaded{}, func() string { t.Error("version asked of a library that did not load"); return "" })
	if li.Err != le || li.Path != "" || li.Version != "" || len(li.Tried) != 1 || li.Tried[0] != "libcudnn.so.9" ||
		len(li.Searched) != 1 || li.Searched[0] != "loader path" {
		t.Errorf("%+v", li)
	}
	other := errors.New("something else")
	li = libInfo("cuda", other, loaded{tried: []string{"a"}, searched: []string{"b"}}, nil)
	if li.Err != other || len(li.Tried) != 1 || len(li.Searched) != 1 {
		t.Errorf("%+v", li)
	}
}

// TestSimContextRelease: a retained primary context reports its device,
// releases once (a second Release is a no-op) and cannot be made current
// after; the test's own reference keeps the context alive.
func TestSimContextRelease(t *testing.T) {
	dev := simGPU(t)
	c, err := dev.RetainPrimaryContext()
	must(t, err)
	if c.Device() != dev {
		t.Errorf("Device() = %v, want %v", c.Device(), dev)
	}
	must(t, c.SetCurrent())
	must(t, c.Release())
	must(t, c.Release())
	if err := c.SetCurrent(); err == nil || !strings.Contains(err.Error(), "Context.SetCurrent: context of device 0 was released") {
		t.Errorf("SetCurrent after Release: %v", err)
	}
	must(t, testGPU.ctx.SetCurrent())
	if got := download(t, upload(t, []float32{4, 5}), 2); got[1] != 5 {
		t.Errorf("after Release: %v", got)
	}
}

// TestSimCounters: the counters count what the host asked for, and start
// again from zero after ResetSimCounters.
func TestSimCounters(t *testing.T) {
	simGPU(t)
	names := map[string]bool{}
	for _, c := range SimCounters() {
		names[c.Name] = true
	}
	for _, n := range []string{"kernel_launches", "allocs", "frees", "htod_copies", "htod_bytes", "dtoh_copies", "memsets", "host_syncs"} {
		if !names[n] {
			t.Errorf("no counter %s in %v", n, names)
		}
	}
	ResetSimCounters()
	p, err := MemAlloc(4 * 100)
	must(t, err)
	must(t, CopyHtoD(p, make([]float32, 100)))
	must(t, CopyDtoH(make([]float32, 0), p)) // empty: no copy
	must(t, CopyDtoH(make([]float32, 10), p))
	must(t, MemsetD32(p, 0, 100))
	must(t, MemFree(p))
	got := map[string]uint64{}
	for _, c := range SimCounters() {
		got[c.Name] = c.Value
	}
	want := map[string]uint64{"allocs": 1, "frees": 1, "htod_copies": 1, "htod_bytes": 400, "dtoh_copies": 1, "dtoh_bytes": 40,
		"memsets": 1, "kernel_launches": 0}
	for n, v := range want {
		if got[n] != v {
			t.Errorf("%s = %d, want %d", n, got[n], v)
		}
	}
	if n := SimCount("allocs", "frees", "htod_bytes"); n != 402 {
		t.Errorf("SimCount(allocs, frees, htod_bytes) = %d, want 402", n)
	}
	ResetSimCounters()
	for _, c := range SimCounters() {
		if c.Value != 0 {
			t.Errorf("after ResetSimCounters: %s = %d", c.Name, c.Value)
		}
	}
}

// HostBytes and HostFloat32s view the same pinned memory, which a copy
// round trip through the device preserves.
func TestSimHostBytes(t *testing.T) {
	simGPU(t)
	p, f := pinned(t, 4)
	b := HostBytes(p, 16)
	copy(f, []float32{1, -2, 0.5, 3})
	if b[0] != 0 || b[3] != 0x3f || b[7] != 0xc0 { // 1.0 = 0x3f800000, -2.0 = 0xc0000000, little-endian
		t.Errorf("bytes % x", b)
	}
	d := devAlloc(t, 16)
	must(t, MemcpyHtoD(d, p, 16))
	for i := range b {
		b[i] = 0
	}
	must(t, MemcpyDtoH(p, d, 16))
	if f[0] != 1 || f[1] != -2 || f[2] != 0.5 || f[3] != 3 {
		t.Errorf("round trip %v", f)
	}
}

// TestSimStreamQuery: a stream with queued work that nothing forced is not
// done yet under the lazy schedule; after Synchronize it is.
func TestSimStreamQuery(t *testing.T) {
	simGPU(t)
	needLazy(t)
	s := newStream(t, StreamNonBlocking)
	p := devAlloc(t, 4*1024)
	must(t, MemsetD32Async(p, 1, 1024, s))
	if done, err := s.Query(); err != nil || done {
		t.Errorf("Query with queued work: %v, %v; want not done", done, err)
	}
	must(t, s.Synchronize())
	if done, err := s.Query(); err != nil || !done {
		t.Errorf("Query after Synchronize: %v, %v; want done", done, err)
	}
}

// Arguments that no C function could take are rejected first, with the Go
// operation's name, on every library.
func TestSimArgumentErrors(t *testing.T) {
	simGPU(t)
	needLib(t, LoadBLAS)
	needLib(t, LoadDNN)
	if unsafe.Sizeof(0) < 8 {
		t.Skip("int is 32 bits: every int fits a C int")
	}
	big64 := int64(math.MaxInt32)
	big := int(big64 + 1)
	b, err := NewBLAS()
	must(t, err)
	t.Cleanup(func() { must(t, b.Destroy()) })
	var buf [4]byte
	host := unsafe.Pointer(&buf[0])
	ResetSimCounters()
	checks := []struct {
		want string
		err  error
	}{
		{"cu: MemcpyDtoD: negative size -4", MemcpyDtoD(0, 0, -4)},
		{"cu: MemcpyHtoDAsync: negative size -1", MemcpyHtoDAsync(0, host, -1, 0)},
		{"cu: MemsetD32: negative size -1", MemsetD32(0, 0, -1)},
		{"cu: MemHostAlloc: size 0 is not positive", func() error { _, err := MemHostAlloc(0, HostAllocPortable); return err }()},
		{"cu: ModuleLoadData: empty image", func() error { _, err := ModuleLoadData(nil); return err }()},
		{"cu: BLAS.SetWorkspace: negative size -1", b.SetWorkspace(0, -1)},
		{"cu: BLAS.Sgemm: m=2147483648 n=1 k=1 lda=1 ldb=1 ldc=1 exceed a C int", b.Sgemm(false, false, big, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1)},
		{"cu: BLAS.SgemmStridedBatched: m=1 n=1 k=1 lda=1 ldb=1 ldc=1 batch=2147483648 exceed a C int",
			b.SgemmStridedBatched(false, false, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, big)},
		{"cu: NewTensor4d: shape 1x2147483648x1x1 exceeds a C int", func() error { _, err := NewTensor4d(NCHW, DataFloat, 1, big, 1, 1); return err }()},
		{"cu: NewFilter4d: shape 1x1x1x2147483648 exceeds a C int", func() error { _, err := NewFilter4d(NCHW, DataFloat, 1, 1, 1, big); return err }()},
		{"cu: NewConv2d: geometry exceeds a C int", func() error {
			_, err := NewConv2d(big, 0, 1, 1, 1, 1, CrossCorrelation, DataFloat, DNNFMAMath)
			return err
		}()},
	}
	for _, c := range checks {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("got %v, want %s", c.err, c.want)
		}
		var e *Error
		if errors.As(c.err, &e) {
			t.Errorf("%v is a library's error", c.err)
		}
	}
	for _, c := range SimCounters() {
		if c.Value != 0 {
			t.Errorf("counter %s = %d: a rejected call reached the device", c.Name, c.Value)
		}
	}
}

// Nil descriptors reach cuDNN as NULL and come back as its error, named in
// the Go error; nothing dereferences them.
func TestSimDNNNilDescriptors(t *testing.T) {
	simGPU(t)
	needLib(t, LoadDNN)
	var c *ConvDesc
	_, _, _, _, err := c.OutputDim(nil, nil)
	e := asError(t, err, "cudnnGetConvolution2dForwardOutputDim(<nil conv>, x <nil tensor>, w <nil filter>)")
	if !strings.HasPrefix(e.Name, "CUDNN_STATUS_BAD_PARAM") {
		t.Errorf("%v: want CUDNN_STATUS_BAD_PARAM", err)
	}
	err = c.SetMathType(DNNFMAMath)
	asError(t, err, "cudnnSetConvolutionMathType(fma)")
}

// TestSimStatusNameTables: the tables behind the error names, used where
// a library cannot name a status, agree with the names the simulated
// libraries give (both transcribe NVIDIA's headers; older releases of
// NVIDIA's own libraries lack some of the statuses).
func TestSimStatusNameTables(t *testing.T) {
	simGPU(t)
	if err := LoadDNN(); err == nil {
		if v, _ := DNNVersion(); v/10000 == 9 {
			save := dnn.cudnnGetErrorString
			for code, name := range dnnStatusNames {
				if got := dnnStatusName(int32(code)); got != name {
					t.Errorf("cuDNN names %d %q, the table %q", code, got, name)
				}
			}
			dnn.cudnnGetErrorString = 0
			for code, name := range dnnStatusNames {
				if got := dnnStatusName(int32(code)); got != name {
					t.Errorf("without cudnnGetErrorString: %d is %q, want %q", code, got, name)
				}
			}
			unknown := dnnStatusName(12345)
			dnn.cudnnGetErrorString = save
			if unknown != "cudnnStatus_t(12345)" {
				t.Errorf("unknown cuDNN status: %q", unknown)
			}
		} else {
			t.Logf("cuDNN %d is not cuDNN 9: the table is cuDNN 9's", v)
		}
	}
	if err := LoadNVRTC(); err == nil {
		save := nvrtc.nvrtcGetErrorString
		for code, name := range nvrtcNames {
			if got := nvrtcError(int32(code), "x").Name; got != name {
				t.Errorf("NVRTC names %d %q, the table %q", code, got, name)
			}
		}
		nvrtc.nvrtcGetErrorString = 0
		for code, name := range nvrtcNames {
			if got := nvrtcError(int32(code), "x").Name; got != name {
				t.Errorf("without nvrtcGetErrorString: %d is %q, want %q", code, got, name)
			}
		}
		unknown := nvrtcError(99, "x").Name
		nvrtc.nvrtcGetErrorString = save
		if unknown != "nvrtcResult(99)" {
			t.Errorf("unknown NVRTC result: %q", unknown)
		}
	}
	if err := LoadBLAS(); err == nil && blas.cublasGetStatusName != 0 {
		for code, names := range blasStatusNames {
			if got := gostring(call1(blas.cublasGetStatusName, uintptr(code))); got != names[0] {
				t.Errorf("cuBLAS names %d %q, the table %q", code, got, names[0])
			}
		}
		if e := blasError(12345, "x"); e.Name == "" || e.Name == "cublasStatus_t(12345)" || e.Message == "" {
			t.Errorf("unknown cuBLAS status named %q (%q) with cublasGetStatusName bound", e.Name, e.Message)
		}
		save := blas.cublasGetStatusName
		blas.cublasGetStatusName = 0
		unknown := blasError(12345, "x").Name
		blas.cublasGetStatusName = save
		if unknown != "cublasStatus_t(12345)" {
			t.Errorf("unknown cuBLAS status without cublasGetStatusName: %q", unknown)
		}
	}
}

// TestSimLibrariesWithoutVersions: a library whose version query fails is
// still reported as loaded, from its place, without a version.
func TestSimLibrariesWithoutVersions(t *testing.T) {
	simGPU(t)
	needLib(t, LoadNVRTC)
	needLib(t, LoadBLAS)
	needLib(t, LoadDNN)
	t.Setenv("PAD_CUDASIM_QUIET", "1") // cuBLAS's explanations go to stderr
	setSimFaults(t, "fail=cuDriverGetVersion,fail=nvrtcVersion,fail=cublasGetProperty")
	libs := Libraries()
	SetSimFaults("")
	for _, l := range libs {
		if l.Err != nil || !filepath.IsAbs(l.Path) || l.From != FromOverride {
			t.Errorf("%s: %+v", l.Lib, l)
		}
		if _, err := os.Stat(l.Path); err != nil {
			t.Errorf("%s: %v", l.Lib, err)
		}
		if want := l.Lib == "cudnn"; (l.Version != "") != want {
			t.Errorf("%s: version %q with its version query failing (cuDNN's cannot)", l.Lib, l.Version)
		}
	}
}

// Every method of a nil or destroyed cuBLAS or cuDNN handle is rejected
// with the method's name before any C call.
func TestDestroyedHandles(t *testing.T) {
	t.Run("cublas", func(t *testing.T) {
		if err := LoadBLAS(); err != nil {
			t.Skipf("cuBLAS: %v", err)
		}
		for _, b := range []*BLAS{nil, new(BLAS)} {
			calls := map[string]error{
				"Version":             func() error { _, err := b.Version(); return err }(),
				"SetStream":           b.SetStream(0),
				"SetMathMode":         b.SetMathMode(BLASDefaultMath),
				"SetWorkspace":        b.SetWorkspace(0, 0),
				"Sgemm":               b.Sgemm(false, false, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1),
				"SgemmStridedBatched": b.SgemmStridedBatched(false, false, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1),
			}
			for name, err := range calls {
				if want := "cu: BLAS." + name + ": cuBLAS handle is nil or destroyed"; err == nil || err.Error() != want {
					t.Errorf("%s: got %v, want %s", name, err, want)
				}
			}
			if err := b.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		}
	})
	t.Run("cudnn", func(t *testing.T) {
		if err := LoadDNN(); err != nil {
			t.Skipf("cuDNN: %v", err)
		}
		var x, y *TensorDesc
		var w *FilterDesc
		var c *ConvDesc
		for _, d := range []*DNN{nil, new(DNN)} {
			perfs := func(_ []AlgoPerf, err error) error { return err }
			size := func(_ int, err error) error { return err }
			calls := map[string]error{
				"SetStream":                    d.SetStream(0),
				"FindForwardAlgos":             perfs(d.FindForwardAlgos(x, 0, w, 0, c, y, 0, 0, 0)),
				"ForwardAlgosHeuristic":        perfs(d.ForwardAlgosHeuristic(x, w, c, y)),
				"FindBackwardDataAlgos":        perfs(d.FindBackwardDataAlgos(w, 0, y, 0, c, x, 0, 0, 0)),
				"BackwardDataAlgosHeuristic":   perfs(d.BackwardDataAlgosHeuristic(w, y, c, x)),
				"FindBackwardFilterAlgos":      perfs(d.FindBackwardFilterAlgos(x, 0, y, 0, c, w, 0, 0, 0)),
				"BackwardFilterAlgosHeuristic": perfs(d.BackwardFilterAlgosHeuristic(x, y, c, w)),
				"ForwardWorkspaceSize":         size(d.ForwardWorkspaceSize(x, w, c, y, ConvFwdGemm)),
				"BackwardDataWorkspaceSize":    size(d.BackwardDataWorkspaceSize(w, y, c, x, ConvBwdDataAlgo0)),
				"BackwardFilterWorkspaceSize":  size(d.BackwardFilterWorkspaceSize(x, y, c, w, ConvBwdFilterAlgo0)),
				"ConvForward":                  d.ConvForward(1, x, 0, w, 0, c, ConvFwdGemm, 0, 0, 0, y, 0),
				"ConvBackwardData":             d.ConvBackwardData(1, w, 0, y, 0, c, ConvBwdDataAlgo0, 0, 0, 0, x, 0),
				"ConvBackwardFilter":           d.ConvBackwardFilter(1, x, 0, y, 0, c, ConvBwdFilterAlgo0, 0, 0, 0, w, 0),
				"ConvBackwardBias":             d.ConvBackwardBias(1, y, 0, 0, x, 0),
				"AddTensor":                    d.AddTensor(1, x, 0, 0, y, 0),
			}
			for name, err := range calls {
				if want := "cu: DNN." + name + ": cuDNN handle is nil or destroyed"; err == nil || err.Error() != want {
					t.Errorf("%s: got %v, want %s", name, err, want)
				}
			}
			if err := d.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		}
	})
}
