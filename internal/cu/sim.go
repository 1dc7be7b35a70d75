package cu

import (
	"runtime"
	"unsafe"
)

// pad's simulated NVIDIA stack (internal/cudasim) exports, beside the
// driver API, counters of what the host asked the device to do and the
// text behind its last error. NVIDIA's driver has neither: there these
// functions report nothing.

// Simulated reports whether the loaded driver is pad's simulation, not
// NVIDIA's.
func Simulated() bool {
	return loadDriver() == nil && drv.padsimCounterCount != 0
}

// SimCounter is one counter of the simulated driver, e.g. kernel_launches.
type SimCounter struct {
	Name  string
	Value uint64
}

// SimCounters returns the simulated driver's counters (internal/cudasim's
// padsim.h says what each counts) in its order, or nil on NVIDIA's driver.
func SimCounters() []SimCounter {
	if !Simulated() {
		return nil
	}
	n := int(int32(call0(drv.padsimCounterCount)))
	out := make([]SimCounter, 0, n)
	for i := range n {
		out = append(out, SimCounter{
			Name:  gostring(call1(drv.padsimCounterName, uintptr(i))),
			Value: uint64(call1(drv.padsimCounterValue, uintptr(i))),
		})
	}
	return out
}

// SimCount returns the sum of the simulated driver's counters named
// (0 on NVIDIA's driver), e.g. SimCount("allocs", "frees").
func SimCount(names ...string) uint64 {
	var n uint64
	for _, c := range SimCounters() {
		for _, name := range names {
			if c.Name == name {
				n += c.Value
			}
		}
	}
	return n
}

// ResetSimCounters sets the simulated driver's counters to zero (a no-op
// on NVIDIA's driver).
func ResetSimCounters() {
	if Simulated() {
		call0(drv.padsimCountersReset)
	}
}

// SetSimFaults replaces the simulated driver's faults with spec, in the
// syntax of PAD_CUDASIM_FAULT (padsim.h), e.g. "fail=cuMemAlloc_v2@2" or
// "fail@7"; "" clears them. Counting starts afresh. It reports false on
// NVIDIA's driver, which has no faults to inject.
func SetSimFaults(spec string) bool {
	if !Simulated() || drv.padsimSetFaults == 0 {
		return false
	}
	c := cstr(spec)
	call1(drv.padsimSetFaults, uintptr(unsafe.Pointer(&c[0])))
	runtime.KeepAlive(c)
	return true
}

// simLastMessage returns what the simulated driver said about its last
// error ("" on NVIDIA's driver): which pointer, which allocation, which
// capture rule. Driver errors carry it in their Message.
func simLastMessage() string {
	if drv.padsimLastMessage == 0 {
		return ""
	}
	return gostring(call0(drv.padsimLastMessage))
}
