package cu

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// dnnSpec: libcudnn.so.9 (and .8) is a shim that opens its sub-libraries
// (libcudnn_graph, _ops, _cnn, ...) by bare name, and they open cuBLASLt
// and NVRTC; from a folder off the loader's path those are opened first,
// from the same folder or a sibling pip wheel.
var dnnSpec = libSpec{
	lib:     "cudnn",
	sonames: []string{"libcudnn.so.9", "libcudnn.so.8"},
	deps: []string{"libcublasLt.so.[0-9]*", "libnvrtc.so.[0-9]*", "libnvrtc-builtins.so.*",
		"libcudnn_graph.so.[0-9]*", "libcudnn_ops.so.[0-9]*", "libcudnn_ops_infer.so.[0-9]*", "libcudnn_ops_train.so.[0-9]*",
		"libcudnn_cnn.so.[0-9]*", "libcudnn_cnn_infer.so.[0-9]*", "libcudnn_cnn_train.so.[0-9]*"},
	missing:  "libcudnn.so.9 (or .8) not found",
	install:  "install cuDNN 9 (pip install nvidia-cudnn-cu13 or nvidia-cudnn-cu12, conda install cudnn, the libcudnn9-cuda-13 package, or an nvidia/cuda cudnn-runtime image) or set " + LibDirEnv + " to its folder",
	sentinel: ErrNoLibrary,
}

// dnn holds libcudnn's function pointers. cuDNN 9 keeps the legacy
// convolution API (cudnn_cnn.h, deprecated but exported; it lives in
// libcudnn_cnn.so.9 and the libcudnn.so.9 shim forwards to it) and the
// tensor API (cudnn_ops.h); cuDNN 8 exports the same functions with the same
// signatures.
var dnn struct {
	once sync.Once
	err  error
	lib  loaded

	cudnnGetVersion, cudnnGetErrorString, cudnnGetLastErrorString, cudnnCreate, cudnnDestroy, cudnnSetStream uintptr

	cudnnCreateTensorDescriptor, cudnnSetTensor4dDescriptor, cudnnDestroyTensorDescriptor          uintptr
	cudnnCreateFilterDescriptor, cudnnSetFilter4dDescriptor, cudnnDestroyFilterDescriptor          uintptr
	cudnnCreateConvolutionDescriptor, cudnnSetConvolution2dDescriptor, cudnnSetConvolutionMathType uintptr
	cudnnDestroyConvolutionDescriptor, cudnnGetConvolution2dForwardOutputDim                       uintptr
	cudnnGetConvolutionForwardAlgorithmMaxCount, cudnnGetConvolutionBackwardDataAlgorithmMaxCount  uintptr
	cudnnGetConvolutionBackwardFilterAlgorithmMaxCount                                             uintptr
	cudnnFindConvolutionForwardAlgorithmEx, cudnnFindConvolutionBackwardDataAlgorithmEx            uintptr
	cudnnFindConvolutionBackwardFilterAlgorithmEx                                                  uintptr
	cudnnGetConvolutionForwardAlgorithm_v7, cudnnGetConvolutionBackwardDataAlgorithm_v7            uintptr
	cudnnGetConvolutionBackwardFilterAlgorithm_v7                                                  uintptr
	cudnnGetConvolutionForwardWorkspaceSize, cudnnGetConvolutionBackwardDataWorkspaceSize          uintptr
	cudnnGetConvolutionBackwardFilterWorkspaceSize                                                 uintptr
	cudnnConvolutionForward, cudnnConvolutionBackwardData, cudnnConvolutionBackwardFilter          uintptr
	cudnnConvolutionBackwardBias, cudnnAddTensor                                                   uintptr
}

// LoadDNN loads libcudnn (9, else 8), once; NewDNN and the descriptor
// constructors call it. Its error matches ErrNoLibrary and says what to
// install.
func LoadDNN() error {
	dnn.once.Do(func() {
		dnn.lib, dnn.err = dnnSpec.load([]symbol{
			need(&dnn.cudnnGetVersion, "cudnnGetVersion"),
			need(&dnn.cudnnGetErrorString, "cudnnGetErrorString"),
			maybe(&dnn.cudnnGetLastErrorString, "cudnnGetLastErrorString"), // cuDNN 9 only
			need(&dnn.cudnnCreate, "cudnnCreate"),
			need(&dnn.cudnnDestroy, "cudnnDestroy"),
			need(&dnn.cudnnSetStream, "cudnnSetStream"),
			need(&dnn.cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor"),
			need(&dnn.cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor"),
			need(&dnn.cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor"),
			need(&dnn.cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor"),
			need(&dnn.cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor"),
			need(&dnn.cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor"),
			need(&dnn.cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor"),
			need(&dnn.cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor"),
			need(&dnn.cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType"),
			need(&dnn.cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor"),
			need(&dnn.cudnnGetConvolution2dForwardOutputDim, "cudnnGetConvolution2dForwardOutputDim"),
			need(&dnn.cudnnGetConvolutionForwardAlgorithmMaxCount, "cudnnGetConvolutionForwardAlgorithmMaxCount"),
			need(&dnn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount"),
			need(&dnn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount"),
			need(&dnn.cudnnFindConvolutionForwardAlgorithmEx, "cudnnFindConvolutionForwardAlgorithmEx"),
			need(&dnn.cudnnFindConvolutionBackwardDataAlgorithmEx, "cudnnFindConvolutionBackwardDataAlgorithmEx"),
			need(&dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx, "cudnnFindConvolutionBackwardFilterAlgorithmEx"),
			need(&dnn.cudnnGetConvolutionForwardAlgorithm_v7, "cudnnGetConvolutionForwardAlgorithm_v7"),
			need(&dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7, "cudnnGetConvolutionBackwardDataAlgorithm_v7"),
			need(&dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7, "cudnnGetConvolutionBackwardFilterAlgorithm_v7"),
			need(&dnn.cudnnGetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize"),
			need(&dnn.cudnnGetConvolutionBackwardDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize"),
			need(&dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize, "cudnnGetConvolutionBackwardFilterWorkspaceSize"),
			need(&dnn.cudnnConvolutionForward, "cudnnConvolutionForward"),
			need(&dnn.cudnnConvolutionBackwardData, "cudnnConvolutionBackwardData"),
			need(&dnn.cudnnConvolutionBackwardFilter, "cudnnConvolutionBackwardFilter"),
			need(&dnn.cudnnConvolutionBackwardBias, "cudnnConvolutionBackwardBias"),
			need(&dnn.cudnnAddTensor, "cudnnAddTensor"),
		})
	})
	return dnn.err
}

// DNNLibrary returns the file cuDNN was loaded from, or "".
func DNNLibrary() string {
	if LoadDNN() != nil {
		return ""
	}
	return dnn.lib.path
}

// DNNVersion returns the loaded cuDNN's version number (cudnnGetVersion):
// 91400 for 9.14.0, 8907 for 8.9.7. DecodeDNNVersion splits it.
func DNNVersion() (int, error) {
	if err := LoadDNN(); err != nil {
		return 0, err
	}
	return int(call0(dnn.cudnnGetVersion)), nil
}

// DecodeDNNVersion splits a cudnnGetVersion number: cuDNN 9 encodes
// major·10000 + minor·100 + patch (91400 is 9.14.0), cuDNN 8 and earlier
// major·1000 + minor·100 + patch (8907 is 8.9.7).
func DecodeDNNVersion(v int) (major, minor, patch int) {
	if v >= 10000 {
		return v / 10000, v % 10000 / 100, v % 100
	}
	return v / 1000, v % 1000 / 100, v % 100
}

// DNNStatus is a cudnnStatus_t. The constants are cuDNN 9's values (cuDNN 8
// numbered its statuses 0..14); error names always come from the loaded
// library's cudnnGetErrorString.
type DNNStatus int

// cudnnStatus_t of cuDNN 9 (cudnn_graph.h).
const (
	DNNStatusSuccess                   DNNStatus = 0
	DNNStatusNotInitialized            DNNStatus = 1001
	DNNStatusSublibraryVersionMismatch DNNStatus = 1002
	DNNStatusDeprecated                DNNStatus = 1004
	DNNStatusLicenseError              DNNStatus = 1005
	DNNStatusSublibraryLoadingFailed   DNNStatus = 1008
	DNNStatusBadParam                  DNNStatus = 2000
	DNNStatusBadParamNullPointer       DNNStatus = 2002
	DNNStatusBadParamMisalignedPointer DNNStatus = 2003
	DNNStatusBadParamOutOfBound        DNNStatus = 2005
	DNNStatusBadParamSizeInsufficient  DNNStatus = 2006
	DNNStatusBadParamShapeMismatch     DNNStatus = 2008
	DNNStatusNotSupported              DNNStatus = 3000
	DNNStatusNotSupportedShape         DNNStatus = 3002
	DNNStatusNotSupportedDataType      DNNStatus = 3003
	DNNStatusNotSupportedLayout        DNNStatus = 3004
	DNNStatusNotSupportedArchMismatch  DNNStatus = 3007
	DNNStatusInternalError             DNNStatus = 4000
	DNNStatusInternalHostAllocFailed   DNNStatus = 4003
	DNNStatusInternalDeviceAllocFailed DNNStatus = 4004
	DNNStatusExecutionFailed           DNNStatus = 5000
	DNNStatusExecutionFailedCUDADriver DNNStatus = 5001
	DNNStatusExecutionFailedCUBLAS     DNNStatus = 5002
	DNNStatusExecutionFailedCUDART     DNNStatus = 5003
)

var dnnStatusNames = map[DNNStatus]string{
	DNNStatusSuccess:                   "CUDNN_STATUS_SUCCESS",
	DNNStatusNotInitialized:            "CUDNN_STATUS_NOT_INITIALIZED",
	DNNStatusSublibraryVersionMismatch: "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH",
	DNNStatusDeprecated:                "CUDNN_STATUS_DEPRECATED",
	DNNStatusLicenseError:              "CUDNN_STATUS_LICENSE_ERROR",
	DNNStatusSublibraryLoadingFailed:   "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
	DNNStatusBadParam:                  "CUDNN_STATUS_BAD_PARAM",
	DNNStatusBadParamNullPointer:       "CUDNN_STATUS_BAD_PARAM_NULL_POINTER",
	DNNStatusBadParamMisalignedPointer: "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER",
	DNNStatusBadParamOutOfBound:        "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND",
	DNNStatusBadParamSizeInsufficient:  "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT",
	DNNStatusBadParamShapeMismatch:     "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH",
	DNNStatusNotSupported:              "CUDNN_STATUS_NOT_SUPPORTED",
	DNNStatusNotSupportedShape:         "CUDNN_STATUS_NOT_SUPPORTED_SHAPE",
	DNNStatusNotSupportedDataType:      "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE",
	DNNStatusNotSupportedLayout:        "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT",
	DNNStatusNotSupportedArchMismatch:  "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH",
	DNNStatusInternalError:             "CUDNN_STATUS_INTERNAL_ERROR",
	DNNStatusInternalHostAllocFailed:   "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
	DNNStatusInternalDeviceAllocFailed: "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED",
	DNNStatusExecutionFailed:           "CUDNN_STATUS_EXECUTION_FAILED",
	DNNStatusExecutionFailedCUDADriver: "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER",
	DNNStatusExecutionFailedCUBLAS:     "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS",
	DNNStatusExecutionFailedCUDART:     "CUDNN_STATUS_EXECUTION_FAILED_CUDART",
}

// dnnStatusName names a status with the loaded library, or the table.
func dnnStatusName(code int32) string {
	if dnn.cudnnGetErrorString != 0 {
		if s := gostring(call1(dnn.cudnnGetErrorString, uintptr(code))); s != "" {
			return s
		}
	}
	if n, ok := dnnStatusNames[DNNStatus(code)]; ok {
		return n
	}
	return fmt.Sprintf("cudnnStatus_t(%d)", code)
}

// dnnError builds the *Error of a failed cuDNN call. cuDNN 9 explains the
// failure in cudnnGetLastErrorString; that text becomes the Message.
func dnnError(code int32, format string, args ...any) *Error {
	e := &Error{Call: fmt.Sprintf(format, args...), Code: int(code), Name: dnnStatusName(code)}
	if dnn.cudnnGetLastErrorString != 0 {
		buf := make([]byte, 1024)
		call2(dnn.cudnnGetLastErrorString, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		e.Message = strings.TrimSpace(cbytes(buf))
	}
	return e
}

// DNN is a cuDNN handle, bound to the context current when it was made.
// Use it from one goroutine (the one locked to that context's thread).
type DNN struct {
	h    uintptr
	scal [2]float32 // alpha, beta: host memory read by cuDNN during a call
}

// NewDNN creates a cuDNN handle in the current context.
func NewDNN() (*DNN, error) {
	if err := LoadDNN(); err != nil {
		return nil, err
	}
	d := new(DNN)
	if r := status(call1(dnn.cudnnCreate, uintptr(unsafe.Pointer(&d.h)))); r != 0 {
		return nil, dnnError(r, "cudnnCreate")
	}
	return d, nil
}

func (d *DNN) check(call string) error {
	if err := LoadDNN(); err != nil {
		return err
	}
	if d == nil || d.h == 0 {
		return argError(call, "cuDNN handle is nil or destroyed")
	}
	return nil
}

// Destroy destroys the handle. Destroying twice is a no-op.
func (d *DNN) Destroy() error {
	if d == nil || d.h == 0 {
		return nil
	}
	if r := status(call1(dnn.cudnnDestroy, d.h)); r != 0 {
		return dnnError(r, "cudnnDestroy")
	}
	d.h = 0
	return nil
}

// Version returns the loaded cuDNN's version, as DNNVersion.
func (d *DNN) Version() int {
	v, _ := DNNVersion()
	return v
}

// SetStream makes the handle queue its work on s.
func (d *DNN) SetStream(s Stream) error {
	if err := d.check("DNN.SetStream"); err != nil {
		return err
	}
	if r := status(call2(dnn.cudnnSetStream, d.h, uintptr(s))); r != 0 {
		return dnnError(r, "cudnnSetStream(stream %#x)", uintptr(s))
	}
	return nil
}

// TensorFormat is a cudnnTensorFormat_t.
type TensorFormat int32

// cudnnTensorFormat_t (cudnn_graph.h).
const (
	NCHW TensorFormat = 0
	NHWC TensorFormat = 1
)

// String returns "NCHW" or "NHWC".
func (f TensorFormat) String() string {
	switch f {
	case NCHW:
		return "NCHW"
	case NHWC:
		return "NHWC"
	}
	return fmt.Sprintf("TensorFormat(%d)", int32(f))
}

// DataType is a cudnnDataType_t.
type DataType int32

// cudnnDataType_t (cudnn_graph.h).
const (
	DataFloat    DataType = 0
	DataDouble   DataType = 1
	DataHalf     DataType = 2
	DataInt8     DataType = 3
	DataInt32    DataType = 4
	DataUint8    DataType = 6
	DataBFloat16 DataType = 9
	DataInt64    DataType = 10
)

// String names the data type.
func (t DataType) String() string {
	switch t {
	case DataFloat:
		return "float"
	case DataDouble:
		return "double"
	case DataHalf:
		return "half"
	case DataInt8:
		return "int8"
	case DataInt32:
		return "int32"
	case DataUint8:
		return "uint8"
	case DataBFloat16:
		return "bfloat16"
	case DataInt64:
		return "int64"
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// DNNMath is a cudnnMathType_t.
type DNNMath int32

// cudnnMathType_t (cudnn_graph.h).
const (
	// DNNDefaultMath lets cuDNN pick; for FP32 data on Ampere and later it
	// may use TF32 tensor cores.
	DNNDefaultMath DNNMath = 0
	// DNNTensorOpMath allows tensor cores.
	DNNTensorOpMath DNNMath = 1
	// DNNTensorOpMathAllowConversion allows tensor cores with down-conversion.
	DNNTensorOpMathAllowConversion DNNMath = 2
	// DNNFMAMath restricts to FMA (full FP32) kernels: no TF32.
	DNNFMAMath DNNMath = 3
)

// String names the math type.
func (m DNNMath) String() string {
	switch m {
	case DNNDefaultMath:
		return "default"
	case DNNTensorOpMath:
		return "tensor-op"
	case DNNTensorOpMathAllowConversion:
		return "tensor-op-allow-conversion"
	case DNNFMAMath:
		return "fma"
	}
	return fmt.Sprintf("DNNMath(%d)", int32(m))
}

// ConvMode is a cudnnConvolutionMode_t.
type ConvMode int32

// cudnnConvolutionMode_t (cudnn_graph.h).
const (
	// Convolution flips the filter (true convolution).
	Convolution ConvMode = 0
	// CrossCorrelation does not flip the filter; this is what deep-learning
	// frameworks call convolution.
	CrossCorrelation ConvMode = 1
)

// Determinism is a cudnnDeterminism_t.
type Determinism int32

// cudnnDeterminism_t (cudnn_ops.h).
const (
	NonDeterministic Determinism = 0
	Deterministic    Determinism = 1
)

// TensorDesc is a 4-d cudnnTensorDescriptor_t.
type TensorDesc struct {
	h          uintptr
	n, c, y, x int
	format     TensorFormat
	dtype      DataType
}

// NewTensor4d creates a fully packed 4-d tensor descriptor of shape
// n×c×h×w in the given layout.
func NewTensor4d(format TensorFormat, dtype DataType, n, c, h, w int) (*TensorDesc, error) {
	if err := LoadDNN(); err != nil {
		return nil, err
	}
	if !fitsInt32(n, c, h, w) {
		return nil, argError("NewTensor4d", "shape %dx%dx%dx%d exceeds a C int", n, c, h, w)
	}
	t := &TensorDesc{n: n, c: c, y: h, x: w, format: format, dtype: dtype}
	if r := status(call1(dnn.cudnnCreateTensorDescriptor, uintptr(unsafe.Pointer(&t.h)))); r != 0 {
		return nil, dnnError(r, "cudnnCreateTensorDescriptor")
	}
	if r := status(call7(dnn.cudnnSetTensor4dDescriptor, t.h, uintptr(format), uintptr(dtype),
		uintptr(n), uintptr(c), uintptr(h), uintptr(w))); r != 0 {
		err := dnnError(r, "cudnnSetTensor4dDescriptor(%v)", t)
		t.Destroy()
		return nil, err
	}
	return t, nil
}

// Dims returns the tensor's n, c, h, w.
func (t *TensorDesc) Dims() (n, c, h, w int) { return t.n, t.c, t.y, t.x }

// Len returns the number of elements, n*c*h*w.
func (t *TensorDesc) Len() int { return t.n * t.c * t.y * t.x }

// String describes the tensor, e.g. "float NCHW [3 5 9 9]".
func (t *TensorDesc) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%v %v [%d %d %d %d]", t.dtype, t.format, t.n, t.c, t.y, t.x)
}

func (t *TensorDesc) handle() uintptr {
	if t == nil {
		return 0
	}
	return t.h
}

// Destroy destroys the descriptor. Destroying twice is a no-op.
func (t *TensorDesc) Destroy() error {
	if t == nil || t.h == 0 {
		return nil
	}
	if r := status(call1(dnn.cudnnDestroyTensorDescriptor, t.h)); r != 0 {
		return dnnError(r, "cudnnDestroyTensorDescriptor")
	}
	t.h = 0
	return nil
}

// FilterDesc is a 4-d cudnnFilterDescriptor_t: k output channels, c input
// channels, r×s taps.
type FilterDesc struct {
	h          uintptr
	k, c, r, s int
	format     TensorFormat
	dtype      DataType
}

// NewFilter4d creates a 4-d filter descriptor; in NCHW layout the weights
// are stored k×c×r×s (PyTorch's Conv2d layout).
func NewFilter4d(format TensorFormat, dtype DataType, k, c, r, s int) (*FilterDesc, error) {
	if err := LoadDNN(); err != nil {
		return nil, err
	}
	if !fitsInt32(k, c, r, s) {
		return nil, argError("NewFilter4d", "shape %dx%dx%dx%d exceeds a C int", k, c, r, s)
	}
	f := &FilterDesc{k: k, c: c, r: r, s: s, format: format, dtype: dtype}
	if st := status(call1(dnn.cudnnCreateFilterDescriptor, uintptr(unsafe.Pointer(&f.h)))); st != 0 {
		return nil, dnnError(st, "cudnnCreateFilterDescriptor")
	}
	// Note the order: data type first, then format (cudnn_ops.h).
	if st := status(call7(dnn.cudnnSetFilter4dDescriptor, f.h, uintptr(dtype), uintptr(format),
		uintptr(k), uintptr(c), uintptr(r), uintptr(s))); st != 0 {
		err := dnnError(st, "cudnnSetFilter4dDescriptor(%v)", f)
		f.Destroy()
		return nil, err
	}
	return f, nil
}

// Dims returns the filter's k, c, r, s.
func (f *FilterDesc) Dims() (k, c, r, s int) { return f.k, f.c, f.r, f.s }

// Len returns the number of weights, k*c*r*s.
func (f *FilterDesc) Len() int { return f.k * f.c * f.r * f.s }

// String describes the filter, e.g. "float NCHW filter [4 5 4 4]".
func (f *FilterDesc) String() string {
	if f == nil {
		return "<nil filter>"
	}
	return fmt.Sprintf("%v %v filter [%d %d %d %d]", f.dtype, f.format, f.k, f.c, f.r, f.s)
}

func (f *FilterDesc) handle() uintptr {
	if f == nil {
		return 0
	}
	return f.h
}

// Destroy destroys the descriptor. Destroying twice is a no-op.
func (f *FilterDesc) Destroy() error {
	if f == nil || f.h == 0 {
		return nil
	}
	if r := status(call1(dnn.cudnnDestroyFilterDescriptor, f.h)); r != 0 {
		return dnnError(r, "cudnnDestroyFilterDescriptor")
	}
	f.h = 0
	return nil
}

// ConvDesc is a 2-d cudnnConvolutionDescriptor_t.
type ConvDesc struct {
	h                                        uintptr
	padH, padW, strideH, strideW, dilH, dilW int
	mode                                     ConvMode
	compute                                  DataType
	math                                     DNNMath
}

// NewConv2d creates a 2-d convolution descriptor. For pad, stride and
// dilation the first value is along h, the second along w; computeType is
// the accumulation type (DataFloat for FP32); math selects the kernels
// (DNNFMAMath for exact FP32).
func NewConv2d(padH, padW, strideH, strideW, dilH, dilW int, mode ConvMode, computeType DataType, math DNNMath) (*ConvDesc, error) {
	if err := LoadDNN(); err != nil {
		return nil, err
	}
	if !fitsInt32(padH, padW, strideH, strideW, dilH, dilW) {
		return nil, argError("NewConv2d", "geometry exceeds a C int")
	}
	c := &ConvDesc{padH: padH, padW: padW, strideH: strideH, strideW: strideW, dilH: dilH, dilW: dilW,
		mode: mode, compute: computeType, math: math}
	if r := status(call1(dnn.cudnnCreateConvolutionDescriptor, uintptr(unsafe.Pointer(&c.h)))); r != 0 {
		return nil, dnnError(r, "cudnnCreateConvolutionDescriptor")
	}
	if r := status(call9(dnn.cudnnSetConvolution2dDescriptor, c.h, uintptr(padH), uintptr(padW),
		uintptr(strideH), uintptr(strideW), uintptr(dilH), uintptr(dilW), uintptr(mode), uintptr(computeType))); r != 0 {
		err := dnnError(r, "cudnnSetConvolution2dDescriptor(%v)", c)
		c.Destroy()
		return nil, err
	}
	if err := c.SetMathType(math); err != nil {
		c.Destroy()
		return nil, err
	}
	return c, nil
}

// SetMathType changes the descriptor's math type, e.g. to the MathType of
// the AlgoPerf about to be run.
func (c *ConvDesc) SetMathType(m DNNMath) error {
	if err := LoadDNN(); err != nil {
		return err
	}
	if r := status(call2(dnn.cudnnSetConvolutionMathType, c.handle(), uintptr(m))); r != 0 {
		return dnnError(r, "cudnnSetConvolutionMathType(%v)", m)
	}
	c.math = m
	return nil
}

// MathType returns the descriptor's math type.
func (c *ConvDesc) MathType() DNNMath { return c.math }

// String describes the convolution, e.g. "conv pad 1x1 stride 2x2 dilation
// 1x1 fma".
func (c *ConvDesc) String() string {
	if c == nil {
		return "<nil conv>"
	}
	return fmt.Sprintf("conv pad %dx%d stride %dx%d dilation %dx%d %v", c.padH, c.padW, c.strideH, c.strideW, c.dilH, c.dilW, c.math)
}

func (c *ConvDesc) handle() uintptr {
	if c == nil {
		return 0
	}
	return c.h
}

// Destroy destroys the descriptor. Destroying twice is a no-op.
func (c *ConvDesc) Destroy() error {
	if c == nil || c.h == 0 {
		return nil
	}
	if r := status(call1(dnn.cudnnDestroyConvolutionDescriptor, c.h)); r != 0 {
		return dnnError(r, "cudnnDestroyConvolutionDescriptor")
	}
	c.h = 0
	return nil
}

// OutputDim returns the shape of the convolution's output for input x and
// filter w (cudnnGetConvolution2dForwardOutputDim).
func (c *ConvDesc) OutputDim(x *TensorDesc, w *FilterDesc) (n, ch, h, wd int, err error) {
	if err := LoadDNN(); err != nil {
		return 0, 0, 0, 0, err
	}
	var v [4]int32
	if r := status(call7(dnn.cudnnGetConvolution2dForwardOutputDim, c.handle(), x.handle(), w.handle(),
		uintptr(unsafe.Pointer(&v[0])), uintptr(unsafe.Pointer(&v[1])), uintptr(unsafe.Pointer(&v[2])), uintptr(unsafe.Pointer(&v[3])))); r != 0 {
		return 0, 0, 0, 0, dnnError(r, "cudnnGetConvolution2dForwardOutputDim(%v, x %v, w %v)", c, x, w)
	}
	return int(v[0]), int(v[1]), int(v[2]), int(v[3]), nil
}
