package cu

import "unsafe"

// DevicePtr is a CUdeviceptr: an address in device memory (64-bit).
type DevicePtr uintptr

// Offset returns p advanced by bytes.
func (p DevicePtr) Offset(bytes int) DevicePtr { return p + DevicePtr(bytes) }

// MemAlloc allocates bytes of device memory in the current context.
func MemAlloc(bytes int) (DevicePtr, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	if bytes < 0 {
		return 0, argError("MemAlloc", "negative size %d", bytes)
	}
	var p uint64
	if r := status(call2(drv.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes))); r != 0 {
		return 0, driverError(r, "cuMemAlloc_v2(%d bytes)", bytes)
	}
	return DevicePtr(p), nil
}

// MemFree frees device memory from MemAlloc.
func MemFree(p DevicePtr) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuMemFree, uintptr(p))); r != 0 {
		return driverError(r, "cuMemFree_v2(%#x)", uintptr(p))
	}
	return nil
}

// MemGetInfo returns the free and total device memory of the current
// context's device, in bytes.
func MemGetInfo() (free, total int, err error) {
	if err := Init(); err != nil {
		return 0, 0, err
	}
	var f, t uint64
	if r := status(call2(drv.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t)))); r != 0 {
		return 0, 0, driverError(r, "cuMemGetInfo_v2")
	}
	return int(f), int(t), nil
}

func checkCopy(call string, bytes int) error {
	if err := Init(); err != nil {
		return err
	}
	if bytes < 0 {
		return argError(call, "negative size %d", bytes)
	}
	return nil
}

// MemcpyHtoD copies bytes from host memory src to device memory dst. It
// returns when src may be reused.
func MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	if err := checkCopy("MemcpyHtoD", bytes); err != nil {
		return err
	}
	if r := status(call3(drv.cuMemcpyHtoD, uintptr(dst), uintptr(src), uintptr(bytes))); r != 0 {
		return driverError(r, "cuMemcpyHtoD_v2(%d bytes)", bytes)
	}
	return nil
}

// MemcpyDtoH copies bytes from device memory src to host memory dst and
// waits for the copy.
func MemcpyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	if err := checkCopy("MemcpyDtoH", bytes); err != nil {
		return err
	}
	if r := status(call3(drv.cuMemcpyDtoH, uintptr(dst), uintptr(src), uintptr(bytes))); r != 0 {
		return driverError(r, "cuMemcpyDtoH_v2(%d bytes)", bytes)
	}
	return nil
}

// MemcpyDtoD copies bytes between device buffers.
func MemcpyDtoD(dst, src DevicePtr, bytes int) error {
	if err := checkCopy("MemcpyDtoD", bytes); err != nil {
		return err
	}
	if r := status(call3(drv.cuMemcpyDtoD, uintptr(dst), uintptr(src), uintptr(bytes))); r != 0 {
		return driverError(r, "cuMemcpyDtoD_v2(%d bytes)", bytes)
	}
	return nil
}

// MemcpyHtoDAsync queues a copy of bytes from host memory src to device
// memory dst on stream s. src must be pinned memory (MemHostAlloc) for the
// copy to be asynchronous and to be capturable in a graph, and it must stay
// valid until the stream has passed the copy. It allocates nothing.
func MemcpyHtoDAsync(dst DevicePtr, src unsafe.Pointer, bytes int, s Stream) error {
	if err := checkCopy("MemcpyHtoDAsync", bytes); err != nil {
		return err
	}
	if r := status(call4(drv.cuMemcpyHtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s))); r != 0 {
		return driverError(r, "cuMemcpyHtoDAsync_v2(%d bytes, stream %#x)", bytes, uintptr(s))
	}
	return nil
}

// MemcpyDtoHAsync queues a copy of bytes from device memory src to host
// memory dst (pinned, see MemcpyHtoDAsync) on stream s.
func MemcpyDtoHAsync(dst unsafe.Pointer, src DevicePtr, bytes int, s Stream) error {
	if err := checkCopy("MemcpyDtoHAsync", bytes); err != nil {
		return err
	}
	if r := status(call4(drv.cuMemcpyDtoHAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s))); r != 0 {
		return driverError(r, "cuMemcpyDtoHAsync_v2(%d bytes, stream %#x)", bytes, uintptr(s))
	}
	return nil
}

// MemcpyDtoDAsync queues a copy of bytes between device buffers on stream s.
func MemcpyDtoDAsync(dst, src DevicePtr, bytes int, s Stream) error {
	if err := checkCopy("MemcpyDtoDAsync", bytes); err != nil {
		return err
	}
	if r := status(call4(drv.cuMemcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s))); r != 0 {
		return driverError(r, "cuMemcpyDtoDAsync_v2(%d bytes, stream %#x)", bytes, uintptr(s))
	}
	return nil
}

// MemsetD32 sets count 32-bit words at ptr to value (math.Float32bits(0) for
// zeros) and waits.
func MemsetD32(ptr DevicePtr, value uint32, count int) error {
	if err := checkCopy("MemsetD32", count); err != nil {
		return err
	}
	if r := status(call3(drv.cuMemsetD32, uintptr(ptr), uintptr(value), uintptr(count))); r != 0 {
		return driverError(r, "cuMemsetD32_v2(%d words)", count)
	}
	return nil
}

// MemsetD32Async queues setting count 32-bit words at ptr to value on
// stream s.
func MemsetD32Async(ptr DevicePtr, value uint32, count int, s Stream) error {
	if err := checkCopy("MemsetD32Async", count); err != nil {
		return err
	}
	if r := status(call4(drv.cuMemsetD32Async, uintptr(ptr), uintptr(value), uintptr(count), uintptr(s))); r != 0 {
		return driverError(r, "cuMemsetD32Async(%d words, stream %#x)", count, uintptr(s))
	}
	return nil
}

// CopyHtoD copies a Go slice to device memory at dst (synchronously). T must
// be a type without pointers (float32, int32, uint8, ...).
func CopyHtoD[T any](dst DevicePtr, src []T) error {
	if len(src) == 0 {
		return nil
	}
	return MemcpyHtoD(dst, unsafe.Pointer(&src[0]), len(src)*int(unsafe.Sizeof(src[0])))
}

// CopyDtoH copies device memory at src into a Go slice (synchronously). T
// must be a type without pointers.
func CopyDtoH[T any](dst []T, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	return MemcpyDtoH(unsafe.Pointer(&dst[0]), src, len(dst)*int(unsafe.Sizeof(dst[0])))
}

// HostAllocFlags are the flags of MemHostAlloc (CU_MEMHOSTALLOC_*).
type HostAllocFlags uint32

// CU_MEMHOSTALLOC_* (cuda.h).
const (
	// HostAllocPortable makes the memory pinned for all contexts.
	HostAllocPortable HostAllocFlags = 0x01
	// HostAllocDeviceMap maps the memory into the device's address space.
	HostAllocDeviceMap HostAllocFlags = 0x02
	// HostAllocWriteCombined allocates write-combined memory: fast to write
	// and to transfer, slow to read from the host.
	HostAllocWriteCombined HostAllocFlags = 0x04
)

// MemHostAlloc allocates bytes of page-locked (pinned) host memory, the
// memory asynchronous copies and captured graphs need. Free it with
// MemFreeHost; view it with HostFloat32s or HostBytes. The memory is C
// memory: the Go garbage collector neither moves nor frees it.
func MemHostAlloc(bytes int, flags HostAllocFlags) (unsafe.Pointer, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	if bytes <= 0 {
		return nil, argError("MemHostAlloc", "size %d is not positive", bytes)
	}
	var p uintptr
	if r := status(call3(drv.cuMemHostAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes), uintptr(flags))); r != 0 {
		return nil, driverError(r, "cuMemHostAlloc(%d bytes, flags %#x)", bytes, uint32(flags))
	}
	return ptr(p), nil
}

// MemFreeHost frees memory from MemHostAlloc.
func MemFreeHost(p unsafe.Pointer) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuMemFreeHost, uintptr(p))); r != 0 {
		return driverError(r, "cuMemFreeHost(%p)", p)
	}
	return nil
}

// HostFloat32s views n float32 values of pinned memory at p as a slice. The
// slice is valid until MemFreeHost(p).
func HostFloat32s(p unsafe.Pointer, n int) []float32 { return unsafe.Slice((*float32)(p), n) }

// HostBytes views n bytes of pinned memory at p as a slice. The slice is
// valid until MemFreeHost(p).
func HostBytes(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }
