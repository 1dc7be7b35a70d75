package cu

import "unsafe"

// Stream is a CUstream. The zero Stream is the legacy default stream.
type Stream uintptr

// StreamFlags are the flags of StreamCreate (CUstream_flags).
type StreamFlags uint32

// CUstream_flags (cuda.h).
const (
	// StreamDefault creates a stream that synchronizes with the legacy
	// default stream.
	StreamDefault StreamFlags = 0x0
	// StreamNonBlocking creates a stream that does not synchronize with the
	// legacy default stream.
	StreamNonBlocking StreamFlags = 0x1
)

// StreamCreate creates a stream in the current context.
func StreamCreate(flags StreamFlags) (Stream, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var s uintptr
	if r := status(call2(drv.cuStreamCreate, uintptr(unsafe.Pointer(&s)), uintptr(flags))); r != 0 {
		return 0, driverError(r, "cuStreamCreate(flags %#x)", uint32(flags))
	}
	return Stream(s), nil
}

// Destroy destroys the stream once its queued work is done.
func (s Stream) Destroy() error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuStreamDestroy, uintptr(s))); r != 0 {
		return driverError(r, "cuStreamDestroy_v2(stream %#x)", uintptr(s))
	}
	return nil
}

// Synchronize waits until all work queued on the stream has finished.
func (s Stream) Synchronize() error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuStreamSynchronize, uintptr(s))); r != 0 {
		return driverError(r, "cuStreamSynchronize(stream %#x)", uintptr(s))
	}
	return nil
}

// Query reports whether all work queued on the stream has finished, without
// waiting.
func (s Stream) Query() (bool, error) {
	if err := Init(); err != nil {
		return false, err
	}
	switch r := status(call1(drv.cuStreamQuery, uintptr(s))); Result(r) {
	case ResultSuccess:
		return true, nil
	case ResultNotReady:
		return false, nil
	default:
		return false, driverError(r, "cuStreamQuery(stream %#x)", uintptr(s))
	}
}

// WaitEvent makes future work on the stream wait until the work captured
// by the event's last Record has finished (on the device, without blocking
// the host).
func (s Stream) WaitEvent(e Event) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call3(drv.cuStreamWaitEvent, uintptr(s), uintptr(e), 0)); r != 0 {
		return driverError(r, "cuStreamWaitEvent(stream %#x, event %#x)", uintptr(s), uintptr(e))
	}
	return nil
}

// Event is a CUevent.
type Event uintptr

// EventFlags are the flags of EventCreate (CUevent_flags).
type EventFlags uint32

// CUevent_flags (cuda.h).
const (
	EventDefault       EventFlags = 0x0
	EventBlockingSync  EventFlags = 0x1
	EventDisableTiming EventFlags = 0x2
	EventInterprocess  EventFlags = 0x4
)

// EventCreate creates an event in the current context.
func EventCreate(flags EventFlags) (Event, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var e uintptr
	if r := status(call2(drv.cuEventCreate, uintptr(unsafe.Pointer(&e)), uintptr(flags))); r != 0 {
		return 0, driverError(r, "cuEventCreate(flags %#x)", uint32(flags))
	}
	return Event(e), nil
}

// Record captures in the event the work queued on stream s so far.
func (e Event) Record(s Stream) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call2(drv.cuEventRecord, uintptr(e), uintptr(s))); r != 0 {
		return driverError(r, "cuEventRecord(event %#x, stream %#x)", uintptr(e), uintptr(s))
	}
	return nil
}

// Synchronize waits until the work captured by the event has finished.
func (e Event) Synchronize() error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuEventSynchronize, uintptr(e))); r != 0 {
		return driverError(r, "cuEventSynchronize(event %#x)", uintptr(e))
	}
	return nil
}

// Destroy destroys the event.
func (e Event) Destroy() error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuEventDestroy, uintptr(e))); r != 0 {
		return driverError(r, "cuEventDestroy_v2(event %#x)", uintptr(e))
	}
	return nil
}

// ElapsedTime returns the time in milliseconds between two recorded events
// (both created without EventDisableTiming, both completed).
func ElapsedTime(start, end Event) (float32, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var ms float32
	if r := status(call3(drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), uintptr(start), uintptr(end))); r != 0 {
		return 0, driverError(r, "cuEventElapsedTime(%#x, %#x)", uintptr(start), uintptr(end))
	}
	return ms, nil
}

// CaptureMode is a CUstreamCaptureMode: which API calls other threads may
// make while a stream captures.
type CaptureMode int32

// CUstreamCaptureMode (cuda.h).
const (
	CaptureModeGlobal      CaptureMode = 0
	CaptureModeThreadLocal CaptureMode = 1
	CaptureModeRelaxed     CaptureMode = 2
)

// CaptureStatus is a CUstreamCaptureStatus.
type CaptureStatus int32

// CUstreamCaptureStatus (cuda.h).
const (
	CaptureStatusNone        CaptureStatus = 0
	CaptureStatusActive      CaptureStatus = 1
	CaptureStatusInvalidated CaptureStatus = 2
)

// Graph is a CUgraph.
type Graph uintptr

// GraphExec is a CUgraphExec: an instantiated graph.
type GraphExec uintptr

// StreamBeginCapture starts capturing the work queued on s into a graph
// instead of running it (cuStreamBeginCapture_v2). Allocations, frees and
// synchronous copies are not allowed while capturing; cuBLAS needs a
// workspace set with BLAS.SetWorkspace.
func StreamBeginCapture(s Stream, mode CaptureMode) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call2(drv.cuStreamBeginCapture, uintptr(s), uintptr(mode))); r != 0 {
		return driverError(r, "cuStreamBeginCapture_v2(stream %#x, mode %d)", uintptr(s), int(mode))
	}
	return nil
}

// StreamEndCapture ends the capture started on s and returns the graph.
func StreamEndCapture(s Stream) (Graph, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var g uintptr
	if r := status(call2(drv.cuStreamEndCapture, uintptr(s), uintptr(unsafe.Pointer(&g)))); r != 0 {
		return 0, driverError(r, "cuStreamEndCapture(stream %#x)", uintptr(s))
	}
	return Graph(g), nil
}

// StreamIsCapturing returns the capture status of s.
func StreamIsCapturing(s Stream) (CaptureStatus, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var st int32
	if r := status(call2(drv.cuStreamIsCapturing, uintptr(s), uintptr(unsafe.Pointer(&st)))); r != 0 {
		return 0, driverError(r, "cuStreamIsCapturing(stream %#x)", uintptr(s))
	}
	return CaptureStatus(st), nil
}

// GraphInstantiate instantiates a graph for launching
// (cuGraphInstantiateWithFlags with no flags).
func GraphInstantiate(g Graph) (GraphExec, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var e uintptr
	if r := status(call3(drv.cuGraphInstantiateWithFlags, uintptr(unsafe.Pointer(&e)), uintptr(g), 0)); r != 0 {
		return 0, driverError(r, "cuGraphInstantiateWithFlags(graph %#x)", uintptr(g))
	}
	return GraphExec(e), nil
}

// GraphLaunch queues an instantiated graph on stream s. It allocates
// nothing.
func GraphLaunch(e GraphExec, s Stream) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call2(drv.cuGraphLaunch, uintptr(e), uintptr(s))); r != 0 {
		return driverError(r, "cuGraphLaunch(exec %#x, stream %#x)", uintptr(e), uintptr(s))
	}
	return nil
}

// GraphExecDestroy destroys an instantiated graph.
func GraphExecDestroy(e GraphExec) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuGraphExecDestroy, uintptr(e))); r != 0 {
		return driverError(r, "cuGraphExecDestroy(exec %#x)", uintptr(e))
	}
	return nil
}

// GraphDestroy destroys a graph. Instances made from it stay valid.
func GraphDestroy(g Graph) error {
	if err := Init(); err != nil {
		return err
	}
	if r := status(call1(drv.cuGraphDestroy, uintptr(g))); r != 0 {
		return driverError(r, "cuGraphDestroy(graph %#x)", uintptr(g))
	}
	return nil
}
