package cu

import (
	"bytes"
	"fmt"
	"math"
	"unsafe"
)

// Module is a loaded CUmodule (a cubin, fatbin or PTX image).
type Module struct {
	h uintptr
}

// ModuleLoadData loads a module image into the current context: a CUBIN
// from Compile, or PTX text from CompilePTX (which the driver compiles for
// the device). The image is copied; it may be reused after the call.
func ModuleLoadData(image []byte) (*Module, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	if len(image) == 0 {
		return nil, argError("ModuleLoadData", "empty image")
	}
	// PTX is text and must end with a NUL; ELF (cubin) and fatbin images
	// carry their own sizes.
	if !bytes.HasPrefix(image, []byte("\x7fELF")) && image[len(image)-1] != 0 {
		image = append(image[:len(image):len(image)], 0)
	}
	var h uintptr
	if r := status(call2(drv.cuModuleLoadData, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&image[0])))); r != 0 {
		return nil, driverError(r, "cuModuleLoadData(%d bytes)", len(image))
	}
	return &Module{h: h}, nil
}

// Function returns the kernel of the module with the given name (declare it
// extern "C" to keep its name unmangled).
func (m *Module) Function(name string) (Function, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	if m == nil || m.h == 0 {
		return 0, argError("Module.Function", "module is not loaded")
	}
	cname := cstr(name)
	var f uintptr
	if r := status(call3(drv.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), m.h, uintptr(unsafe.Pointer(&cname[0])))); r != 0 {
		return 0, driverError(r, "cuModuleGetFunction(%q)", name)
	}
	return Function(f), nil
}

// Unload unloads the module; its functions become invalid. Unloading twice
// is a no-op.
func (m *Module) Unload() error {
	if m == nil || m.h == 0 {
		return nil
	}
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuModuleUnload, m.h)); r != 0 {
		return driverError(r, "cuModuleUnload")
	}
	m.h = 0
	return nil
}

// Function is a CUfunction: a kernel of a loaded module.
type Function uintptr

// FuncAttribute is a CUfunction_attribute.
type FuncAttribute int32

// CUfunction_attribute (cuda.h).
const (
	FuncMaxThreadsPerBlock            FuncAttribute = 0
	FuncSharedSizeBytes               FuncAttribute = 1
	FuncConstSizeBytes                FuncAttribute = 2
	FuncLocalSizeBytes                FuncAttribute = 3
	FuncNumRegs                       FuncAttribute = 4
	FuncPTXVersion                    FuncAttribute = 5
	FuncBinaryVersion                 FuncAttribute = 6
	FuncCacheModeCA                   FuncAttribute = 7
	FuncMaxDynamicSharedSizeBytes     FuncAttribute = 8
	FuncPreferredSharedMemoryCarveout FuncAttribute = 9
)

// Attribute returns a kernel attribute (registers, static shared memory,
// ...).
func (f Function) Attribute(a FuncAttribute) (int, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var v int32
	if r := status(call3(drv.cuFuncGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(a), uintptr(f))); r != 0 {
		return 0, driverError(r, "cuFuncGetAttribute(attribute %d)", int(a))
	}
	return int(v), nil
}

// FuncSetAttribute sets a kernel attribute; launches asking for more than
// 48 KiB of dynamic shared memory need FuncMaxDynamicSharedSizeBytes set
// first.
func FuncSetAttribute(f Function, a FuncAttribute, value int) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call3(drv.cuFuncSetAttribute, uintptr(f), uintptr(a), uintptr(value))); r != 0 {
		return driverError(r, "cuFuncSetAttribute(attribute %d, value %d)", int(a), value)
	}
	return nil
}

// LaunchKernel queues kernel f on stream s with the given grid and block
// dimensions and bytes of dynamic shared memory. args are pointers to the
// argument values, in the kernel's parameter order and each pointing to a
// value of exactly the parameter's type (cuLaunchKernel's kernelParams):
//
//	n := int32(len(x))
//	a := float32(2)
//	err := cu.LaunchKernel(f, grid, block, 0, s,
//		unsafe.Pointer(&a), unsafe.Pointer(&xPtr), unsafe.Pointer(&n))
//
// The values are copied at the call; they may change afterwards. This form
// allocates the argument values on the heap on every call; KernelArgs with
// LaunchKernelArgs allocates nothing.
func LaunchKernel(f Function, grid, block [3]uint32, sharedMem uint32, s Stream, args ...unsafe.Pointer) error {
	if err := Init(); err != nil {
		return err
	}
	var r int32
	if len(args) == 0 {
		r = status(call11(drv.cuLaunchKernel, uintptr(f), uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
			uintptr(block[0]), uintptr(block[1]), uintptr(block[2]), uintptr(sharedMem), uintptr(s), 0, 0))
	} else {
		r = status(call11(drv.cuLaunchKernel, uintptr(f), uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
			uintptr(block[0]), uintptr(block[1]), uintptr(block[2]), uintptr(sharedMem), uintptr(s),
			uintptr(unsafe.Pointer(&args[0])), 0))
	}
	if r != 0 {
		return driverError(r, "cuLaunchKernel(grid %v, block %v, shared %d bytes, %d args)", grid, block, sharedMem, len(args))
	}
	return nil
}

// MaxKernelArgs is the number of arguments a KernelArgs holds.
const MaxKernelArgs = 32

// KernelArgs is a reusable block of kernel arguments of up to 8 bytes each
// (pointers, integers, floats), for launches that allocate nothing. Keep
// one per launch site (allocated once, e.g. with new), Reset it, append the
// arguments in the kernel's parameter order and launch it with
// LaunchKernelArgs:
//
//	args.Reset().Ptr(y).Ptr(x).Float32(a).Int32(n)
//	err := cu.LaunchKernelArgs(f, grid, block, 0, s, args)
//
// Each value occupies its own 8-byte slot; the kernel reads as many bytes
// as its parameter's type has, so the slots suit any scalar up to 8 bytes
// on little-endian hosts (all CUDA hosts). Pass larger values (structs)
// with LaunchKernel. Each slot also records the width of the C type it was
// appended as (Widths), so tests can compare a launch with the kernel's
// compiled parameter list.
type KernelArgs struct {
	n      int
	vals   [MaxKernelArgs]uint64
	widths [MaxKernelArgs]uint8
	ptrs   [MaxKernelArgs]unsafe.Pointer
}

// Reset empties the block.
func (a *KernelArgs) Reset() *KernelArgs {
	a.n = 0
	return a
}

// Len returns the number of arguments appended since Reset, counting any
// beyond MaxKernelArgs (which make the launch fail).
func (a *KernelArgs) Len() int { return a.n }

func (a *KernelArgs) add(v uint64, width uint8) *KernelArgs {
	if a.n < MaxKernelArgs {
		a.vals[a.n] = v
		a.widths[a.n] = width
	}
	a.n++
	return a
}

// Values returns the argument slots appended since Reset (at most
// MaxKernelArgs), e.g. to record a launch and replay it later.
func (a *KernelArgs) Values() []uint64 { return a.vals[:min(a.n, MaxKernelArgs)] }

// Widths returns, for each slot Values returns, the size in bytes of the
// C type it was appended as: 8 for Ptr, Int64, Uint64 and Float64, 4 for
// Int32, Uint32 and Float32. It allocates nothing; the slice is valid
// until the next Reset.
func (a *KernelArgs) Widths() []uint8 { return a.widths[:min(a.n, MaxKernelArgs)] }

// Ptr appends a device pointer (a T* parameter).
func (a *KernelArgs) Ptr(p DevicePtr) *KernelArgs { return a.add(uint64(p), 8) }

// Int32 appends an int parameter.
func (a *KernelArgs) Int32(v int32) *KernelArgs { return a.add(uint64(uint32(v)), 4) }

// Uint32 appends an unsigned int parameter.
func (a *KernelArgs) Uint32(v uint32) *KernelArgs { return a.add(uint64(v), 4) }

// Int64 appends a long or long long parameter.
func (a *KernelArgs) Int64(v int64) *KernelArgs { return a.add(uint64(v), 8) }

// Uint64 appends an unsigned long long parameter.
func (a *KernelArgs) Uint64(v uint64) *KernelArgs { return a.add(v, 8) }

// Float32 appends a float parameter.
func (a *KernelArgs) Float32(v float32) *KernelArgs { return a.add(uint64(math.Float32bits(v)), 4) }

// Float64 appends a double parameter.
func (a *KernelArgs) Float64(v float64) *KernelArgs { return a.add(math.Float64bits(v), 8) }

// LaunchKernelArgs is LaunchKernel with the arguments of a KernelArgs. It
// allocates nothing.
func LaunchKernelArgs(f Function, grid, block [3]uint32, sharedMem uint32, s Stream, a *KernelArgs) error {
	if a == nil {
		return argError("LaunchKernelArgs", "nil KernelArgs")
	}
	if a.n > MaxKernelArgs {
		return argError("LaunchKernelArgs", "%d arguments, at most %d fit in a KernelArgs", a.n, MaxKernelArgs)
	}
	if err := Init(); err != nil {
		return err
	}
	// The pointer table is rebuilt here so that a copied KernelArgs still
	// points at its own values.
	for i := 0; i < a.n; i++ {
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
	r := status(call11(drv.cuLaunchKernel, uintptr(f), uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]), uintptr(sharedMem), uintptr(s),
		uintptr(unsafe.Pointer(&a.ptrs[0])), 0))
	if r != 0 {
		return driverError(r, "cuLaunchKernel(grid %v, block %v, shared %d bytes, %d args)", grid, block, sharedMem, a.n)
	}
	return nil
}

// GridFor returns the number of blocks of blockSize threads that cover n
// elements, for one-dimensional launches.
func GridFor(n, blockSize int) uint32 {
	if n <= 0 || blockSize <= 0 {
		return 0
	}
	return uint32((n + blockSize - 1) / blockSize)
}

// String names the function handle for messages.
func (f Function) String() string { return fmt.Sprintf("function %#x", uintptr(f)) }
