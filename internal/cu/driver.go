package cu

import (
	"fmt"
	"sync"
	"unsafe"
)

var driverSpec = libSpec{
	lib:      "cuda",
	sonames:  []string{"libcuda.so.1"},
	system:   true,
	missing:  "no NVIDIA driver found (could not load libcuda.so.1)",
	install:  "install the NVIDIA driver",
	sentinel: ErrNoDriver,
}

// drv holds the driver library's function pointers. They are written once,
// inside drv.once, and only read after it.
var drv struct {
	once sync.Once
	err  error
	lib  loaded

	initOnce sync.Once
	initErr  error

	cuInit, cuDriverGetVersion, cuGetErrorName, cuGetErrorString                           uintptr
	cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute, cuDeviceTotalMem uintptr
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize uintptr
	cuMemAlloc, cuMemFree, cuMemGetInfo, cuMemHostAlloc, cuMemFreeHost                     uintptr
	cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync         uintptr
	cuMemcpyDtoDAsync, cuMemsetD32, cuMemsetD32Async                                       uintptr
	cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamWaitEvent, cuStreamQuery uintptr
	cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy   uintptr
	cuModuleLoadData, cuModuleGetFunction, cuModuleUnload                                  uintptr
	cuLaunchKernel, cuFuncSetAttribute, cuFuncGetAttribute                                 uintptr
	cuStreamBeginCapture, cuStreamEndCapture, cuStreamIsCapturing                          uintptr
	cuGraphInstantiateWithFlags, cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy         uintptr

	// pad's simulated driver (internal/cudasim) only; 0 on NVIDIA's.
	padsimCounterCount, padsimCounterName, padsimCounterValue, padsimCountersReset, padsimLastMessage, padsimSetFaults uintptr
}

// loadDriver loads libcuda.so.1 and resolves the driver API, once.
func loadDriver() error {
	drv.once.Do(func() {
		// The names are the versioned symbols that the CUDA 12 and 13
		// headers map the API names to (cuda.h: #define cuMemAlloc
		// cuMemAlloc_v2 ...). CUDA 12.8 added cuEventElapsedTime_v2 (same
		// signature) and CUDA 13 maps cuEventElapsedTime to it; older
		// drivers only have the plain symbol.
		drv.lib, drv.err = driverSpec.load([]symbol{
			need(&drv.cuInit, "cuInit"),
			need(&drv.cuDriverGetVersion, "cuDriverGetVersion"),
			need(&drv.cuGetErrorName, "cuGetErrorName"),
			need(&drv.cuGetErrorString, "cuGetErrorString"),
			need(&drv.cuDeviceGetCount, "cuDeviceGetCount"),
			need(&drv.cuDeviceGet, "cuDeviceGet"),
			need(&drv.cuDeviceGetName, "cuDeviceGetName"),
			need(&drv.cuDeviceGetAttribute, "cuDeviceGetAttribute"),
			need(&drv.cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
			need(&drv.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
			need(&drv.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
			need(&drv.cuCtxSetCurrent, "cuCtxSetCurrent"),
			need(&drv.cuCtxSynchronize, "cuCtxSynchronize"),
			need(&drv.cuMemAlloc, "cuMemAlloc_v2"),
			need(&drv.cuMemFree, "cuMemFree_v2"),
			need(&drv.cuMemGetInfo, "cuMemGetInfo_v2"),
			need(&drv.cuMemHostAlloc, "cuMemHostAlloc"),
			need(&drv.cuMemFreeHost, "cuMemFreeHost"),
			need(&drv.cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
			need(&drv.cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
			need(&drv.cuMemcpyDtoD, "cuMemcpyDtoD_v2"),
			need(&drv.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
			need(&drv.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
			need(&drv.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
			need(&drv.cuMemsetD32, "cuMemsetD32_v2"),
			need(&drv.cuMemsetD32Async, "cuMemsetD32Async"),
			need(&drv.cuStreamCreate, "cuStreamCreate"),
			need(&drv.cuStreamDestroy, "cuStreamDestroy_v2"),
			need(&drv.cuStreamSynchronize, "cuStreamSynchronize"),
			need(&drv.cuStreamWaitEvent, "cuStreamWaitEvent"),
			need(&drv.cuStreamQuery, "cuStreamQuery"),
			need(&drv.cuEventCreate, "cuEventCreate"),
			need(&drv.cuEventRecord, "cuEventRecord"),
			need(&drv.cuEventSynchronize, "cuEventSynchronize"),
			need(&drv.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
			need(&drv.cuEventDestroy, "cuEventDestroy_v2"),
			need(&drv.cuModuleLoadData, "cuModuleLoadData"),
			need(&drv.cuModuleGetFunction, "cuModuleGetFunction"),
			need(&drv.cuModuleUnload, "cuModuleUnload"),
			need(&drv.cuLaunchKernel, "cuLaunchKernel"),
			need(&drv.cuFuncSetAttribute, "cuFuncSetAttribute"),
			need(&drv.cuFuncGetAttribute, "cuFuncGetAttribute"),
			need(&drv.cuStreamBeginCapture, "cuStreamBeginCapture_v2"),
			need(&drv.cuStreamEndCapture, "cuStreamEndCapture"),
			need(&drv.cuStreamIsCapturing, "cuStreamIsCapturing"),
			need(&drv.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"),
			need(&drv.cuGraphLaunch, "cuGraphLaunch"),
			need(&drv.cuGraphExecDestroy, "cuGraphExecDestroy"),
			need(&drv.cuGraphDestroy, "cuGraphDestroy"),
			maybe(&drv.padsimCounterCount, "padsim_counter_count"),
			maybe(&drv.padsimCounterName, "padsim_counter_name"),
			maybe(&drv.padsimCounterValue, "padsim_counter_value"),
			maybe(&drv.padsimCountersReset, "padsim_counters_reset"),
			maybe(&drv.padsimLastMessage, "padsim_last_message"),
			maybe(&drv.padsimSetFaults, "padsim_set_faults"),
		})
	})
	return drv.err
}

// Init loads the driver (libcuda.so.1) and calls cuInit(0). It is safe to
// call more than once and from any goroutine; every call returns the same
// error. Every driver function calls it implicitly.
//
// When the driver library is missing the error matches ErrNoDriver; when it
// loads but cuInit fails (no visible device, a driver/kernel-module
// mismatch) the error is an *Error that matches ErrNoDevice. `--device auto`
// should fall back to the CPU on either.
func Init() error {
	drv.initOnce.Do(func() {
		if err := loadDriver(); err != nil {
			drv.initErr = err
			return
		}
		if r := status(call1(drv.cuInit, 0)); r != 0 {
			e := driverError(r, "cuInit(0)")
			e.kind = ErrNoDevice
			drv.initErr = e
		}
	})
	return drv.initErr
}

// DriverLibrary returns the file name the driver was loaded from, or "" if
// it is not loaded.
func DriverLibrary() string {
	if loadDriver() != nil {
		return ""
	}
	return drv.lib.path
}

// DriverVersion returns the CUDA version the driver supports, as
// 1000*major + 10*minor (13000 for CUDA 13.0). It needs the driver library
// but not a working device.
func DriverVersion() (int, error) {
	if err := loadDriver(); err != nil {
		return 0, err
	}
	var v int32
	if r := status(call1(drv.cuDriverGetVersion, uintptr(unsafe.Pointer(&v)))); r != 0 {
		return 0, driverError(r, "cuDriverGetVersion")
	}
	return int(v), nil
}

// DeviceCount returns the number of CUDA devices.
func DeviceCount() (int, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var n int32
	if r := status(call1(drv.cuDeviceGetCount, uintptr(unsafe.Pointer(&n)))); r != 0 {
		return 0, driverError(r, "cuDeviceGetCount")
	}
	return int(n), nil
}

// Device is a CUdevice handle.
type Device int

// DeviceGet returns the device with the given ordinal (0 is the first).
func DeviceGet(ordinal int) (Device, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var d int32
	if r := status(call2(drv.cuDeviceGet, uintptr(unsafe.Pointer(&d)), uintptr(ordinal))); r != 0 {
		return 0, driverError(r, "cuDeviceGet(%d)", ordinal)
	}
	return Device(d), nil
}

// Name returns the device's product name, e.g. "NVIDIA H100 80GB HBM3".
func (d Device) Name() (string, error) {
	if err := Init(); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	if r := status(call3(drv.cuDeviceGetName, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(d))); r != 0 {
		return "", driverError(r, "cuDeviceGetName(device %d)", int(d))
	}
	return cbytes(buf), nil
}

// DeviceAttribute is a CUdevice_attribute.
type DeviceAttribute int32

// A selection of CUdevice_attribute values (cuda.h).
const (
	AttrMaxThreadsPerBlock               DeviceAttribute = 1
	AttrMaxBlockDimX                     DeviceAttribute = 2
	AttrMaxBlockDimY                     DeviceAttribute = 3
	AttrMaxBlockDimZ                     DeviceAttribute = 4
	AttrMaxGridDimX                      DeviceAttribute = 5
	AttrMaxGridDimY                      DeviceAttribute = 6
	AttrMaxGridDimZ                      DeviceAttribute = 7
	AttrMaxSharedMemoryPerBlock          DeviceAttribute = 8
	AttrWarpSize                         DeviceAttribute = 10
	AttrClockRate                        DeviceAttribute = 13
	AttrMultiprocessorCount              DeviceAttribute = 16
	AttrIntegrated                       DeviceAttribute = 18
	AttrConcurrentKernels                DeviceAttribute = 31
	AttrPCIBusID                         DeviceAttribute = 33
	AttrMemoryClockRate                  DeviceAttribute = 36
	AttrGlobalMemoryBusWidth             DeviceAttribute = 37
	AttrL2CacheSize                      DeviceAttribute = 38
	AttrMaxThreadsPerMultiprocessor      DeviceAttribute = 39
	AttrAsyncEngineCount                 DeviceAttribute = 40
	AttrUnifiedAddressing                DeviceAttribute = 41
	AttrComputeCapabilityMajor           DeviceAttribute = 75
	AttrComputeCapabilityMinor           DeviceAttribute = 76
	AttrMaxSharedMemoryPerMultiprocessor DeviceAttribute = 81
	AttrMaxRegistersPerMultiprocessor    DeviceAttribute = 82
	AttrManagedMemory                    DeviceAttribute = 83
	AttrMaxSharedMemoryPerBlockOptin     DeviceAttribute = 97
	AttrMemoryPoolsSupported             DeviceAttribute = 115
)

// Attribute returns one device attribute.
func (d Device) Attribute(a DeviceAttribute) (int, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var v int32
	if r := status(call3(drv.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(a), uintptr(d))); r != 0 {
		return 0, driverError(r, "cuDeviceGetAttribute(attribute %d, device %d)", int(a), int(d))
	}
	return int(v), nil
}

// ComputeCapability returns the device's compute capability, e.g. 9, 0 for
// an H100.
func (d Device) ComputeCapability() (major, minor int, err error) {
	if major, err = d.Attribute(AttrComputeCapabilityMajor); err != nil {
		return 0, 0, err
	}
	if minor, err = d.Attribute(AttrComputeCapabilityMinor); err != nil {
		return 0, 0, err
	}
	return major, minor, nil
}

// TotalMem returns the device's memory in bytes.
func (d Device) TotalMem() (int, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var n uint64
	if r := status(call2(drv.cuDeviceTotalMem, uintptr(unsafe.Pointer(&n)), uintptr(d))); r != 0 {
		return 0, driverError(r, "cuDeviceTotalMem_v2(device %d)", int(d))
	}
	return int(n), nil
}

// Context is a retained primary context of a device: the context the CUDA
// runtime, cuBLAS and cuDNN use for that device too.
//
// A context is current per OS thread. Run all device work on one goroutine
// locked with runtime.LockOSThread, and call SetCurrent on that thread
// before the first CUDA call.
type Context struct {
	h        uintptr
	dev      Device
	released bool
}

// RetainPrimaryContext retains (creating on first use) the device's primary
// context. Pair it with Release.
func (d Device) RetainPrimaryContext() (*Context, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	var h uintptr
	if r := status(call2(drv.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&h)), uintptr(d))); r != 0 {
		return nil, driverError(r, "cuDevicePrimaryCtxRetain(device %d)", int(d))
	}
	return &Context{h: h, dev: d}, nil
}

// Device returns the context's device.
func (c *Context) Device() Device { return c.dev }

// SetCurrent binds the context to the calling OS thread.
func (c *Context) SetCurrent() error {
	if err := Init(); err != nil {
		return err
	}
	if c.released {
		return argError("Context.SetCurrent", "context of device %d was released", int(c.dev))
	}
	if r := status(call1(drv.cuCtxSetCurrent, c.h)); r != 0 {
		return driverError(r, "cuCtxSetCurrent(device %d)", int(c.dev))
	}
	return nil
}

// Release releases the primary context retained by RetainPrimaryContext.
// Releasing twice is a no-op.
func (c *Context) Release() error {
	if c.released {
		return nil
	}
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuDevicePrimaryCtxRelease, uintptr(c.dev))); r != 0 {
		return driverError(r, "cuDevicePrimaryCtxRelease_v2(device %d)", int(c.dev))
	}
	c.released = true
	return nil
}

// Synchronize blocks until all work queued in the calling thread's current
// context has finished (cuCtxSynchronize).
func Synchronize() error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call0(drv.cuCtxSynchronize)); r != 0 {
		return driverError(r, "cuCtxSynchronize")
	}
	return nil
}

// String returns "device N".
func (d Device) String() string { return fmt.Sprintf("device %d", int(d)) }
