package cu

import (
	"fmt"
	"structs"
	"unsafe"
)

// ConvFwdAlgo is a cudnnConvolutionFwdAlgo_t.
type ConvFwdAlgo int32

// cudnnConvolutionFwdAlgo_t (cudnn_ops.h).
const (
	ConvFwdImplicitGemm        ConvFwdAlgo = 0
	ConvFwdImplicitPrecompGemm ConvFwdAlgo = 1
	ConvFwdGemm                ConvFwdAlgo = 2
	ConvFwdDirect              ConvFwdAlgo = 3
	ConvFwdFFT                 ConvFwdAlgo = 4
	ConvFwdFFTTiling           ConvFwdAlgo = 5
	ConvFwdWinograd            ConvFwdAlgo = 6
	ConvFwdWinogradNonfused    ConvFwdAlgo = 7
	ConvFwdAlgoCount           ConvFwdAlgo = 8
)

var convFwdNames = [...]string{"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"}

// String returns the algorithm's name without the CUDNN_CONVOLUTION_FWD_ALGO_ prefix.
func (a ConvFwdAlgo) String() string {
	if a >= 0 && int(a) < len(convFwdNames) {
		return convFwdNames[a]
	}
	return fmt.Sprintf("ConvFwdAlgo(%d)", int32(a))
}

// ConvBwdDataAlgo is a cudnnConvolutionBwdDataAlgo_t.
type ConvBwdDataAlgo int32

// cudnnConvolutionBwdDataAlgo_t (cudnn_ops.h).
const (
	ConvBwdDataAlgo0            ConvBwdDataAlgo = 0
	ConvBwdDataAlgo1            ConvBwdDataAlgo = 1
	ConvBwdDataFFT              ConvBwdDataAlgo = 2
	ConvBwdDataFFTTiling        ConvBwdDataAlgo = 3
	ConvBwdDataWinograd         ConvBwdDataAlgo = 4
	ConvBwdDataWinogradNonfused ConvBwdDataAlgo = 5
	ConvBwdDataAlgoCount        ConvBwdDataAlgo = 6
)

var convBwdDataNames = [...]string{"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"}

// String returns the algorithm's name without the CUDNN_CONVOLUTION_BWD_DATA_ prefix.
func (a ConvBwdDataAlgo) String() string {
	if a >= 0 && int(a) < len(convBwdDataNames) {
		return convBwdDataNames[a]
	}
	return fmt.Sprintf("ConvBwdDataAlgo(%d)", int32(a))
}

// ConvBwdFilterAlgo is a cudnnConvolutionBwdFilterAlgo_t.
type ConvBwdFilterAlgo int32

// cudnnConvolutionBwdFilterAlgo_t (cudnn_ops.h).
const (
	ConvBwdFilterAlgo0            ConvBwdFilterAlgo = 0
	ConvBwdFilterAlgo1            ConvBwdFilterAlgo = 1
	ConvBwdFilterFFT              ConvBwdFilterAlgo = 2
	ConvBwdFilterAlgo3            ConvBwdFilterAlgo = 3
	ConvBwdFilterWinograd         ConvBwdFilterAlgo = 4
	ConvBwdFilterWinogradNonfused ConvBwdFilterAlgo = 5
	ConvBwdFilterFFTTiling        ConvBwdFilterAlgo = 6
	ConvBwdFilterAlgoCount        ConvBwdFilterAlgo = 7
)

var convBwdFilterNames = [...]string{"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"}

// String returns the algorithm's name without the CUDNN_CONVOLUTION_BWD_FILTER_ prefix.
func (a ConvBwdFilterAlgo) String() string {
	if a >= 0 && int(a) < len(convBwdFilterNames) {
		return convBwdFilterNames[a]
	}
	return fmt.Sprintf("ConvBwdFilterAlgo(%d)", int32(a))
}

// algoPerfC mirrors cudnnConvolutionFwdAlgoPerf_t,
// cudnnConvolutionBwdDataAlgoPerf_t and cudnnConvolutionBwdFilterAlgoPerf_t,
// which share one layout in cuDNN 8 and 9 (cudnn_cnn.h):
//
//	typedef struct {
//	    cudnnConvolutionFwdAlgo_t algo;   // enum: int, offset 0
//	    cudnnStatus_t status;             // enum: int, offset 4
//	    float time;                       //             offset 8
//	    size_t memory;                    // 8 bytes, aligned to 8: offset 16 (4 bytes padding before)
//	    cudnnDeterminism_t determinism;   // enum: int, offset 24
//	    cudnnMathType_t mathType;         // enum: int, offset 28
//	    int reserved[3];                  //             offsets 32..43
//	} cudnnConvolutionFwdAlgoPerf_t;      // size rounded up to the 8-byte alignment: 48
//
// on LP64 hosts (linux/amd64, linux/arm64), where enums are 4-byte ints.
// TestAlgoPerfLayout checks the offsets and the size.
type algoPerfC struct {
	_           structs.HostLayout
	algo        int32
	status      int32
	time        float32
	_           [4]byte
	memory      uint64
	determinism int32
	mathType    int32
	reserved    [3]int32
	_           [4]byte
}

// AlgoPerf is one result of an algorithm search (Find*Algos) or heuristic
// query (*AlgosHeuristic).
type AlgoPerf struct {
	// Algo is the algorithm: convert it with ConvFwdAlgo(p.Algo),
	// ConvBwdDataAlgo(p.Algo) or ConvBwdFilterAlgo(p.Algo).
	Algo int
	// Status is the cudnnStatus_t of running (Find) or of the availability
	// of (heuristics) the algorithm; 0 means usable.
	Status int
	// TimeMs is the measured time in milliseconds (Find); heuristics
	// measure nothing and report a placeholder (typically -1).
	TimeMs float32
	// Memory is the workspace the algorithm needs, in bytes.
	Memory uintptr
	// Determinism says whether results are bitwise reproducible.
	Determinism Determinism
	// MathType is the math type the algorithm was measured with; set it on
	// the convolution descriptor before running the algorithm.
	MathType DNNMath
}

// OK reports whether the algorithm is usable (Status is success).
func (p AlgoPerf) OK() bool { return p.Status == 0 }

// StatusName names Status with the loaded cuDNN.
func (p AlgoPerf) StatusName() string { return dnnStatusName(int32(p.Status)) }

func convertPerfs(c []algoPerfC) []AlgoPerf {
	out := make([]AlgoPerf, len(c))
	for i, p := range c {
		out[i] = AlgoPerf{Algo: int(p.algo), Status: int(p.status), TimeMs: p.time, Memory: uintptr(p.memory),
			Determinism: Determinism(p.determinism), MathType: DNNMath(p.mathType)}
	}
	return out
}

// maxAlgos asks cuDNN how many algorithms a search can return.
func (d *DNN) maxAlgos(fn uintptr, call string) (int, error) {
	var n int32
	if r := status(call2(fn, d.h, uintptr(unsafe.Pointer(&n)))); r != 0 {
		return 0, dnnError(r, "%s", call)
	}
	if n < 1 {
		n = 1
	}
	return int(n), nil
}

// search runs one of the Find*Ex or Get*_v7 functions through run, which
// receives requestedAlgoCount, returnedAlgoCount and perfResults. run must
// convert the pointers to uintptr in the argument list of its C call.
func (d *DNN) search(countFn uintptr, countCall string, run func(req uintptr, ret *int32, perf *algoPerfC) int32, call string) ([]AlgoPerf, error) {
	n, err := d.maxAlgos(countFn, countCall)
	if err != nil {
		return nil, err
	}
	perfs := make([]algoPerfC, n)
	got := new(int32)
	if r := run(uintptr(n), got, &perfs[0]); r != 0 {
		return nil, dnnError(r, "%s", call)
	}
	if *got < 0 || int(*got) > n {
		return nil, fmt.Errorf("cu: %s returned %d results for %d requested", call, *got, n)
	}
	return convertPerfs(perfs[:*got]), nil
}

// FindForwardAlgos runs every forward algorithm that fits in the workspace
// on the given buffers (cudnnFindConvolutionForwardAlgorithmEx) and returns
// the results sorted fastest first. It overwrites y. Results with Status 0
// are usable; set the descriptor's math type to the result's MathType
// before running one.
func (d *DNN) FindForwardAlgos(x *TensorDesc, xPtr DevicePtr, w *FilterDesc, wPtr DevicePtr, conv *ConvDesc,
	y *TensorDesc, yPtr DevicePtr, ws DevicePtr, wsBytes int) ([]AlgoPerf, error) {
	if err := d.check("DNN.FindForwardAlgos"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnFindConvolutionForwardAlgorithmEx(x %v, w %v, %v, y %v, workspace %d bytes)", x, w, conv, y, wsBytes)
	return d.search(dnn.cudnnGetConvolutionForwardAlgorithmMaxCount, "cudnnGetConvolutionForwardAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call13(dnn.cudnnFindConvolutionForwardAlgorithmEx, d.h, x.handle(), uintptr(xPtr), w.handle(), uintptr(wPtr),
				conv.handle(), y.handle(), uintptr(yPtr), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf)), uintptr(ws), uintptr(wsBytes)))
		}, call)
}

// ForwardAlgosHeuristic returns cuDNN's ranking of the forward algorithms
// without running them (cudnnGetConvolutionForwardAlgorithm_v7): the
// fallback when no buffers are at hand.
func (d *DNN) ForwardAlgosHeuristic(x *TensorDesc, w *FilterDesc, conv *ConvDesc, y *TensorDesc) ([]AlgoPerf, error) {
	if err := d.check("DNN.ForwardAlgosHeuristic"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnGetConvolutionForwardAlgorithm_v7(x %v, w %v, %v, y %v)", x, w, conv, y)
	return d.search(dnn.cudnnGetConvolutionForwardAlgorithmMaxCount, "cudnnGetConvolutionForwardAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call8(dnn.cudnnGetConvolutionForwardAlgorithm_v7, d.h, x.handle(), w.handle(), conv.handle(), y.handle(), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf))))
		}, call)
}

// FindBackwardDataAlgos is FindForwardAlgos for the data gradient
// (cudnnFindConvolutionBackwardDataAlgorithmEx). It overwrites dx.
func (d *DNN) FindBackwardDataAlgos(w *FilterDesc, wPtr DevicePtr, dy *TensorDesc, dyPtr DevicePtr, conv *ConvDesc,
	dx *TensorDesc, dxPtr DevicePtr, ws DevicePtr, wsBytes int) ([]AlgoPerf, error) {
	if err := d.check("DNN.FindBackwardDataAlgos"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnFindConvolutionBackwardDataAlgorithmEx(w %v, dy %v, %v, dx %v, workspace %d bytes)", w, dy, conv, dx, wsBytes)
	return d.search(dnn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call13(dnn.cudnnFindConvolutionBackwardDataAlgorithmEx, d.h, w.handle(), uintptr(wPtr), dy.handle(), uintptr(dyPtr),
				conv.handle(), dx.handle(), uintptr(dxPtr), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf)), uintptr(ws), uintptr(wsBytes)))
		}, call)
}

// BackwardDataAlgosHeuristic is ForwardAlgosHeuristic for the data
// gradient (cudnnGetConvolutionBackwardDataAlgorithm_v7).
func (d *DNN) BackwardDataAlgosHeuristic(w *FilterDesc, dy *TensorDesc, conv *ConvDesc, dx *TensorDesc) ([]AlgoPerf, error) {
	if err := d.check("DNN.BackwardDataAlgosHeuristic"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnGetConvolutionBackwardDataAlgorithm_v7(w %v, dy %v, %v, dx %v)", w, dy, conv, dx)
	return d.search(dnn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call8(dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7, d.h, w.handle(), dy.handle(), conv.handle(), dx.handle(), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf))))
		}, call)
}

// FindBackwardFilterAlgos is FindForwardAlgos for the weight gradient
// (cudnnFindConvolutionBackwardFilterAlgorithmEx). It overwrites dw.
func (d *DNN) FindBackwardFilterAlgos(x *TensorDesc, xPtr DevicePtr, dy *TensorDesc, dyPtr DevicePtr, conv *ConvDesc,
	dw *FilterDesc, dwPtr DevicePtr, ws DevicePtr, wsBytes int) ([]AlgoPerf, error) {
	if err := d.check("DNN.FindBackwardFilterAlgos"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnFindConvolutionBackwardFilterAlgorithmEx(x %v, dy %v, %v, dw %v, workspace %d bytes)", x, dy, conv, dw, wsBytes)
	return d.search(dnn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call13(dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx, d.h, x.handle(), uintptr(xPtr), dy.handle(), uintptr(dyPtr),
				conv.handle(), dw.handle(), uintptr(dwPtr), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf)), uintptr(ws), uintptr(wsBytes)))
		}, call)
}

// BackwardFilterAlgosHeuristic is ForwardAlgosHeuristic for the weight
// gradient (cudnnGetConvolutionBackwardFilterAlgorithm_v7).
func (d *DNN) BackwardFilterAlgosHeuristic(x *TensorDesc, dy *TensorDesc, conv *ConvDesc, dw *FilterDesc) ([]AlgoPerf, error) {
	if err := d.check("DNN.BackwardFilterAlgosHeuristic"); err != nil {
		return nil, err
	}
	call := fmt.Sprintf("cudnnGetConvolutionBackwardFilterAlgorithm_v7(x %v, dy %v, %v, dw %v)", x, dy, conv, dw)
	return d.search(dnn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount",
		func(req uintptr, ret *int32, perf *algoPerfC) int32 {
			return status(call8(dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7, d.h, x.handle(), dy.handle(), conv.handle(), dw.handle(), req, uintptr(unsafe.Pointer(ret)), uintptr(unsafe.Pointer(perf))))
		}, call)
}

// ForwardWorkspaceSize returns the workspace algo needs for the forward
// convolution, in bytes.
func (d *DNN) ForwardWorkspaceSize(x *TensorDesc, w *FilterDesc, conv *ConvDesc, y *TensorDesc, algo ConvFwdAlgo) (int, error) {
	if err := d.check("DNN.ForwardWorkspaceSize"); err != nil {
		return 0, err
	}
	var n uint64
	if r := status(call7(dnn.cudnnGetConvolutionForwardWorkspaceSize, d.h, x.handle(), w.handle(), conv.handle(), y.handle(),
		uintptr(algo), uintptr(unsafe.Pointer(&n)))); r != 0 {
		return 0, dnnError(r, "cudnnGetConvolutionForwardWorkspaceSize(x %v, w %v, %v, y %v, %v)", x, w, conv, y, algo)
	}
	return int(n), nil
}

// BackwardDataWorkspaceSize returns the workspace algo needs for the data
// gradient, in bytes.
func (d *DNN) BackwardDataWorkspaceSize(w *FilterDesc, dy *TensorDesc, conv *ConvDesc, dx *TensorDesc, algo ConvBwdDataAlgo) (int, error) {
	if err := d.check("DNN.BackwardDataWorkspaceSize"); err != nil {
		return 0, err
	}
	var n uint64
	if r := status(call7(dnn.cudnnGetConvolutionBackwardDataWorkspaceSize, d.h, w.handle(), dy.handle(), conv.handle(), dx.handle(),
		uintptr(algo), uintptr(unsafe.Pointer(&n)))); r != 0 {
		return 0, dnnError(r, "cudnnGetConvolutionBackwardDataWorkspaceSize(w %v, dy %v, %v, dx %v, %v)", w, dy, conv, dx, algo)
	}
	return int(n), nil
}

// BackwardFilterWorkspaceSize returns the workspace algo needs for the
// weight gradient, in bytes.
func (d *DNN) BackwardFilterWorkspaceSize(x *TensorDesc, dy *TensorDesc, conv *ConvDesc, dw *FilterDesc, algo ConvBwdFilterAlgo) (int, error) {
	if err := d.check("DNN.BackwardFilterWorkspaceSize"); err != nil {
		return 0, err
	}
	var n uint64
	if r := status(call7(dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize, d.h, x.handle(), dy.handle(), conv.handle(), dw.handle(),
		uintptr(algo), uintptr(unsafe.Pointer(&n)))); r != 0 {
		return 0, dnnError(r, "cudnnGetConvolutionBackwardFilterWorkspaceSize(x %v, dy %v, %v, dw %v, %v)", x, dy, conv, dw, algo)
	}
	return int(n), nil
}

// ConvForward computes y = alpha*conv(x, w) + beta*y (cudnnConvolutionForward)
// for FP32 tensors; alpha and beta are passed by host pointer. ws must hold
// at least ForwardWorkspaceSize bytes. It allocates nothing.
func (d *DNN) ConvForward(alpha float32, x *TensorDesc, xPtr DevicePtr, w *FilterDesc, wPtr DevicePtr, conv *ConvDesc,
	algo ConvFwdAlgo, ws DevicePtr, wsBytes int, beta float32, y *TensorDesc, yPtr DevicePtr) error {
	if err := d.check("DNN.ConvForward"); err != nil {
		return err
	}
	d.scal[0], d.scal[1] = alpha, beta
	r := status(call13(dnn.cudnnConvolutionForward, d.h, uintptr(unsafe.Pointer(&d.scal[0])), x.handle(), uintptr(xPtr),
		w.handle(), uintptr(wPtr), conv.handle(), uintptr(algo), uintptr(ws), uintptr(wsBytes),
		uintptr(unsafe.Pointer(&d.scal[1])), y.handle(), uintptr(yPtr)))
	if r != 0 {
		return dnnError(r, "cudnnConvolutionForward(x %v, w %v, %v, y %v, %v, workspace %d bytes)", x, w, conv, y, algo, wsBytes)
	}
	return nil
}

// ConvBackwardData computes dx = alpha*conv_transpose(dy, w) + beta*dx
// (cudnnConvolutionBackwardData), the input gradient of ConvForward and the
// forward pass of a transposed convolution. It allocates nothing.
func (d *DNN) ConvBackwardData(alpha float32, w *FilterDesc, wPtr DevicePtr, dy *TensorDesc, dyPtr DevicePtr, conv *ConvDesc,
	algo ConvBwdDataAlgo, ws DevicePtr, wsBytes int, beta float32, dx *TensorDesc, dxPtr DevicePtr) error {
	if err := d.check("DNN.ConvBackwardData"); err != nil {
		return err
	}
	d.scal[0], d.scal[1] = alpha, beta
	r := status(call13(dnn.cudnnConvolutionBackwardData, d.h, uintptr(unsafe.Pointer(&d.scal[0])), w.handle(), uintptr(wPtr),
		dy.handle(), uintptr(dyPtr), conv.handle(), uintptr(algo), uintptr(ws), uintptr(wsBytes),
		uintptr(unsafe.Pointer(&d.scal[1])), dx.handle(), uintptr(dxPtr)))
	if r != 0 {
		return dnnError(r, "cudnnConvolutionBackwardData(w %v, dy %v, %v, dx %v, %v, workspace %d bytes)", w, dy, conv, dx, algo, wsBytes)
	}
	return nil
}

// ConvBackwardFilter computes dw = alpha*(weight gradient of x, dy) + beta*dw
// (cudnnConvolutionBackwardFilter). It allocates nothing.
func (d *DNN) ConvBackwardFilter(alpha float32, x *TensorDesc, xPtr DevicePtr, dy *TensorDesc, dyPtr DevicePtr, conv *ConvDesc,
	algo ConvBwdFilterAlgo, ws DevicePtr, wsBytes int, beta float32, dw *FilterDesc, dwPtr DevicePtr) error {
	if err := d.check("DNN.ConvBackwardFilter"); err != nil {
		return err
	}
	d.scal[0], d.scal[1] = alpha, beta
	r := status(call13(dnn.cudnnConvolutionBackwardFilter, d.h, uintptr(unsafe.Pointer(&d.scal[0])), x.handle(), uintptr(xPtr),
		dy.handle(), uintptr(dyPtr), conv.handle(), uintptr(algo), uintptr(ws), uintptr(wsBytes),
		uintptr(unsafe.Pointer(&d.scal[1])), dw.handle(), uintptr(dwPtr)))
	if r != 0 {
		return dnnError(r, "cudnnConvolutionBackwardFilter(x %v, dy %v, %v, dw %v, %v, workspace %d bytes)", x, dy, conv, dw, algo, wsBytes)
	}
	return nil
}

// ConvBackwardBias computes db = alpha*sum(dy over n, h, w) + beta*db
// (cudnnConvolutionBackwardBias); db is a 1×C×1×1 tensor.
func (d *DNN) ConvBackwardBias(alpha float32, dy *TensorDesc, dyPtr DevicePtr, beta float32, db *TensorDesc, dbPtr DevicePtr) error {
	if err := d.check("DNN.ConvBackwardBias"); err != nil {
		return err
	}
	d.scal[0], d.scal[1] = alpha, beta
	r := status(call7(dnn.cudnnConvolutionBackwardBias, d.h, uintptr(unsafe.Pointer(&d.scal[0])), dy.handle(), uintptr(dyPtr),
		uintptr(unsafe.Pointer(&d.scal[1])), db.handle(), uintptr(dbPtr)))
	if r != 0 {
		return dnnError(r, "cudnnConvolutionBackwardBias(dy %v, db %v)", dy, db)
	}
	return nil
}

// AddTensor computes c = alpha*a + beta*c (cudnnAddTensor), broadcasting a
// over c's dimensions where a has size 1 (a 1×C×1×1 bias onto N×C×H×W).
func (d *DNN) AddTensor(alpha float32, a *TensorDesc, aPtr DevicePtr, beta float32, c *TensorDesc, cPtr DevicePtr) error {
	if err := d.check("DNN.AddTensor"); err != nil {
		return err
	}
	d.scal[0], d.scal[1] = alpha, beta
	r := status(call7(dnn.cudnnAddTensor, d.h, uintptr(unsafe.Pointer(&d.scal[0])), a.handle(), uintptr(aPtr),
		uintptr(unsafe.Pointer(&d.scal[1])), c.handle(), uintptr(cPtr)))
	if r != 0 {
		return dnnError(r, "cudnnAddTensor(a %v, c %v)", a, c)
	}
	return nil
}
