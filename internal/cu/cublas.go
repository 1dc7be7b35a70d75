package cu

import (
	"fmt"
	"sync"
	"unsafe"
)

// blasSpec: cuBLAS opens cuBLASLt by bare name, so a cuBLAS from a folder
// off the loader's path gets its cuBLASLt opened first.
var blasSpec = libSpec{
	lib:      "cublas",
	sonames:  []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"},
	deps:     []string{"libcublasLt.so.[0-9]*"},
	missing:  "libcublas.so.13 (or .12, .11) not found",
	install:  "install cuBLAS (pip install nvidia-cublas, the libcublas-13-0 package, or an nvidia/cuda runtime image) or set " + LibDirEnv + " to its folder",
	sentinel: ErrNoLibrary,
}

var blas struct {
	once sync.Once
	err  error
	lib  loaded

	cublasCreate, cublasDestroy, cublasGetVersion, cublasSetStream, cublasSetMathMode uintptr
	cublasSetWorkspace, cublasSgemm, cublasSgemmStridedBatched                        uintptr
	cublasGetStatusName, cublasGetStatusString, cublasGetProperty                     uintptr
}

// LoadBLAS loads libcublas (13, else 12, else 11), once; NewBLAS calls it. Its error
// matches ErrNoLibrary and says what to install.
func LoadBLAS() error {
	blas.once.Do(func() {
		// cublas_v2.h maps cublasCreate, cublasDestroy, cublasGetVersion,
		// cublasSetStream, cublasSetWorkspace and cublasSgemm to their _v2
		// symbols; cublasSetMathMode and cublasSgemmStridedBatched have no
		// suffix.
		blas.lib, blas.err = blasSpec.load([]symbol{
			need(&blas.cublasCreate, "cublasCreate_v2"),
			need(&blas.cublasDestroy, "cublasDestroy_v2"),
			need(&blas.cublasGetVersion, "cublasGetVersion_v2"),
			need(&blas.cublasSetStream, "cublasSetStream_v2"),
			need(&blas.cublasSetMathMode, "cublasSetMathMode"),
			need(&blas.cublasSetWorkspace, "cublasSetWorkspace_v2"),
			need(&blas.cublasSgemm, "cublasSgemm_v2"),
			need(&blas.cublasSgemmStridedBatched, "cublasSgemmStridedBatched"),
			maybe(&blas.cublasGetStatusName, "cublasGetStatusName"),
			maybe(&blas.cublasGetStatusString, "cublasGetStatusString"),
			maybe(&blas.cublasGetProperty, "cublasGetProperty"),
		})
	})
	return blas.err
}

// BLASLibrary returns the file cuBLAS was loaded from, or "".
func BLASLibrary() string {
	if LoadBLAS() != nil {
		return ""
	}
	return blas.lib.path
}

// BLASLibraryVersion returns the loaded cuBLAS's version as major, minor,
// patch (cublasGetProperty), which needs no device.
func BLASLibraryVersion() (major, minor, patch int, err error) {
	if err := LoadBLAS(); err != nil {
		return 0, 0, 0, err
	}
	if blas.cublasGetProperty == 0 {
		return 0, 0, 0, fmt.Errorf("cublas: %s does not export cublasGetProperty", blas.lib.path)
	}
	var v [3]int32
	for i := range v { // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL (library_types.h)
		if r := status(call2(blas.cublasGetProperty, uintptr(i), uintptr(unsafe.Pointer(&v[i])))); r != 0 {
			return 0, 0, 0, blasError(r, "cublasGetProperty(%d)", i)
		}
	}
	return int(v[0]), int(v[1]), int(v[2]), nil
}

// BLASStatus is a cublasStatus_t.
type BLASStatus int

// cublasStatus_t (cublas_api.h).
const (
	BLASStatusSuccess         BLASStatus = 0
	BLASStatusNotInitialized  BLASStatus = 1
	BLASStatusAllocFailed     BLASStatus = 3
	BLASStatusInvalidValue    BLASStatus = 7
	BLASStatusArchMismatch    BLASStatus = 8
	BLASStatusMappingError    BLASStatus = 11
	BLASStatusExecutionFailed BLASStatus = 13
	BLASStatusInternalError   BLASStatus = 14
	BLASStatusNotSupported    BLASStatus = 15
	BLASStatusLicenseError    BLASStatus = 16
)

var blasStatusNames = map[BLASStatus][2]string{
	BLASStatusSuccess:         {"CUBLAS_STATUS_SUCCESS", "success"},
	BLASStatusNotInitialized:  {"CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
	BLASStatusAllocFailed:     {"CUBLAS_STATUS_ALLOC_FAILED", "the resource allocation failed"},
	BLASStatusInvalidValue:    {"CUBLAS_STATUS_INVALID_VALUE", "an invalid numeric value was used as an argument"},
	BLASStatusArchMismatch:    {"CUBLAS_STATUS_ARCH_MISMATCH", "an absent device architectural feature is required"},
	BLASStatusMappingError:    {"CUBLAS_STATUS_MAPPING_ERROR", "an access to GPU memory space failed"},
	BLASStatusExecutionFailed: {"CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
	BLASStatusInternalError:   {"CUBLAS_STATUS_INTERNAL_ERROR", "an internal operation failed"},
	BLASStatusNotSupported:    {"CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
	BLASStatusLicenseError:    {"CUBLAS_STATUS_LICENSE_ERROR", "error detected trying to check the license"},
}

// blasError builds the *Error of a failed cuBLAS call.
func blasError(code int32, format string, args ...any) *Error {
	e := &Error{Call: fmt.Sprintf(format, args...), Code: int(code)}
	if t, ok := blasStatusNames[BLASStatus(code)]; ok {
		e.Name, e.Message = t[0], t[1]
	} else {
		e.Name = fmt.Sprintf("cublasStatus_t(%d)", code)
		if blas.cublasGetStatusName != 0 {
			e.Name = gostring(call1(blas.cublasGetStatusName, uintptr(code)))
		}
	}
	if blas.cublasGetStatusString != 0 {
		if s := gostring(call1(blas.cublasGetStatusString, uintptr(code))); s != "" {
			e.Message = s
		}
	}
	return e
}

// BLASMath is a cublasMath_t.
type BLASMath int32

// cublasMath_t (cublas_api.h).
const (
	// BLASDefaultMath computes FP32 GEMMs in FP32 (no TF32 unless the
	// NVIDIA_TF32_OVERRIDE environment variable says otherwise).
	BLASDefaultMath BLASMath = 0
	// BLASTensorOpMath is deprecated by NVIDIA.
	BLASTensorOpMath BLASMath = 1
	// BLASPedanticMath forces the exact compute type of the routine.
	BLASPedanticMath BLASMath = 2
	// BLASTF32TensorOpMath lets FP32 routines use TF32 tensor cores.
	BLASTF32TensorOpMath BLASMath = 3
	// BLASDisallowReducedPrecisionReduction is a flag to OR in.
	BLASDisallowReducedPrecisionReduction BLASMath = 16
)

// BLAS is a cuBLAS handle, bound to the context current when it was made.
// Use it from one goroutine (the one locked to that context's thread).
type BLAS struct {
	h    uintptr
	scal [2]float32 // alpha, beta: host memory read by cuBLAS during a call
}

// NewBLAS creates a cuBLAS handle in the current context.
func NewBLAS() (*BLAS, error) {
	if err := LoadBLAS(); err != nil {
		return nil, err
	}
	b := new(BLAS)
	if r := status(call1(blas.cublasCreate, uintptr(unsafe.Pointer(&b.h)))); r != 0 {
		return nil, blasError(r, "cublasCreate_v2")
	}
	return b, nil
}

func (b *BLAS) check(call string) error {
	if err := LoadBLAS(); err != nil {
		return err
	}
	if b == nil || b.h == 0 {
		return argError(call, "cuBLAS handle is nil or destroyed")
	}
	return nil
}

// Destroy destroys the handle. Destroying twice is a no-op.
func (b *BLAS) Destroy() error {
	if b == nil || b.h == 0 {
		return nil
	}
	if r := status(call1(blas.cublasDestroy, b.h)); r != 0 {
		return blasError(r, "cublasDestroy_v2")
	}
	b.h = 0
	return nil
}

// Version returns cuBLAS's version, e.g. 130100 for 13.1.0.
func (b *BLAS) Version() (int, error) {
	if err := b.check("BLAS.Version"); err != nil {
		return 0, err
	}
	var v int32
	if r := status(call2(blas.cublasGetVersion, b.h, uintptr(unsafe.Pointer(&v)))); r != 0 {
		return 0, blasError(r, "cublasGetVersion_v2")
	}
	return int(v), nil
}

// SetStream makes the handle queue its work on s. cuBLAS resets the
// workspace to its default pool here: call SetWorkspace after SetStream.
func (b *BLAS) SetStream(s Stream) error {
	if err := b.check("BLAS.SetStream"); err != nil {
		return err
	}
	if r := status(call2(blas.cublasSetStream, b.h, uintptr(s))); r != 0 {
		return blasError(r, "cublasSetStream_v2(stream %#x)", uintptr(s))
	}
	return nil
}

// SetMathMode selects FP32 (BLASDefaultMath, BLASPedanticMath) or TF32
// (BLASTF32TensorOpMath) arithmetic for FP32 routines.
func (b *BLAS) SetMathMode(m BLASMath) error {
	if err := b.check("BLAS.SetMathMode"); err != nil {
		return err
	}
	if r := status(call2(blas.cublasSetMathMode, b.h, uintptr(m))); r != 0 {
		return blasError(r, "cublasSetMathMode(%d)", int(m))
	}
	return nil
}

// SetWorkspace gives cuBLAS a device workspace of bytes at ws, which it
// then uses instead of allocating its own. Stream capture requires one
// (NVIDIA recommends 32 MiB on Hopper). The workspace must stay allocated
// while the handle (or a graph captured with it) uses it. SetStream resets
// it, so set it after the stream.
func (b *BLAS) SetWorkspace(ws DevicePtr, bytes int) error {
	if err := b.check("BLAS.SetWorkspace"); err != nil {
		return err
	}
	if bytes < 0 {
		return argError("BLAS.SetWorkspace", "negative size %d", bytes)
	}
	if r := status(call3(blas.cublasSetWorkspace, b.h, uintptr(ws), uintptr(bytes))); r != 0 {
		return blasError(r, "cublasSetWorkspace_v2(%d bytes)", bytes)
	}
	return nil
}

func blasOp(trans bool) uintptr {
	if trans {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}

func opName(trans bool) string {
	if trans {
		return "T"
	}
	return "N"
}

// fitsInt32 reports whether all values fit a C int.
func fitsInt32(vals ...int) bool {
	for _, v := range vals {
		if v != int(int32(v)) {
			return false
		}
	}
	return true
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C in column-major storage:
// op(A) is m×k, op(B) is k×n, C is m×n; op(X) is X, or its transpose when
// trans is true (then A is stored k×m, B n×k). lda, ldb and ldc are the
// leading dimensions (column strides in elements). alpha and beta are
// passed by host pointer, as in the default pointer mode. It allocates
// nothing.
//
// A row-major Y = X·W (X rows×in, W in×out) is, in column-major terms,
// Yᵀ = Wᵀ·Xᵀ: Sgemm(false, false, out, rows, in, 1, W, out, X, in, 0, Y, out).
func (b *BLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, A DevicePtr, lda int,
	B DevicePtr, ldb int, beta float32, C DevicePtr, ldc int) error {
	if err := b.check("BLAS.Sgemm"); err != nil {
		return err
	}
	if !fitsInt32(m, n, k, lda, ldb, ldc) {
		return argError("BLAS.Sgemm", "m=%d n=%d k=%d lda=%d ldb=%d ldc=%d exceed a C int", m, n, k, lda, ldb, ldc)
	}
	b.scal[0], b.scal[1] = alpha, beta
	r := status(call14(blas.cublasSgemm, b.h, blasOp(transA), blasOp(transB), uintptr(m), uintptr(n), uintptr(k),
		uintptr(unsafe.Pointer(&b.scal[0])), uintptr(A), uintptr(lda), uintptr(B), uintptr(ldb),
		uintptr(unsafe.Pointer(&b.scal[1])), uintptr(C), uintptr(ldc)))
	if r != 0 {
		return blasError(r, "cublasSgemm_v2(%s%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d)",
			opName(transA), opName(transB), m, n, k, lda, ldb, ldc)
	}
	return nil
}

// SgemmStridedBatched computes batch independent Sgemms; matrix i of A, B
// and C starts strideA, strideB and strideC elements after matrix i-1.
func (b *BLAS) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, A DevicePtr, lda int, strideA int64,
	B DevicePtr, ldb int, strideB int64, beta float32, C DevicePtr, ldc int, strideC int64, batch int) error {
	if err := b.check("BLAS.SgemmStridedBatched"); err != nil {
		return err
	}
	if !fitsInt32(m, n, k, lda, ldb, ldc, batch) {
		return argError("BLAS.SgemmStridedBatched", "m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d exceed a C int",
			m, n, k, lda, ldb, ldc, batch)
	}
	b.scal[0], b.scal[1] = alpha, beta
	r := status(call18(blas.cublasSgemmStridedBatched, b.h, blasOp(transA), blasOp(transB), uintptr(m), uintptr(n), uintptr(k),
		uintptr(unsafe.Pointer(&b.scal[0])), uintptr(A), uintptr(lda), uintptr(strideA), uintptr(B), uintptr(ldb), uintptr(strideB),
		uintptr(unsafe.Pointer(&b.scal[1])), uintptr(C), uintptr(ldc), uintptr(strideC), uintptr(batch)))
	if r != 0 {
		return blasError(r, "cublasSgemmStridedBatched(%s%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d strides=%d,%d,%d batch=%d)",
			opName(transA), opName(transB), m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch)
	}
	return nil
}
