package cuda

import (
	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/cu"
)

// A second stream for the work the model marks as able to run beside the
// main stream (backend.Overlapper): each layer's weight and bias gradients
// during a backward pass, while the main stream carries the gradient on
// to the layer below. At batch 64 one convolution leaves most of an H100
// idle, so the two run at the same time. Inside a recorded step the side
// operations are recorded like the rest, and the fork and join become
// edges of the captured graph. The side stream has its own cuDNN handle
// and workspace, so the two streams never share scratch memory.

var _ backend.Overlapper = (*Backend)(nil)

type sideStream struct {
	stream     cu.Stream
	dnn        *cu.DNN
	ws         cu.DevicePtr // the side handle's workspace, wsSize bytes like the main one
	fork, join cu.Event
}

func (s *sideStream) init() error {
	var err error
	if s.stream, err = cu.StreamCreate(cu.StreamNonBlocking); err != nil {
		return err
	}
	if s.dnn, err = cu.NewDNN(); err != nil {
		return err
	}
	if err = s.dnn.SetStream(s.stream); err != nil {
		return err
	}
	if s.fork, err = cu.EventCreate(cu.EventDisableTiming); err != nil {
		return err
	}
	s.join, err = cu.EventCreate(cu.EventDisableTiming)
	return err
}

// close releases the stream, handle and events; the workspace goes with
// the backend's other allocations.
func (s *sideStream) close() {
	if s.stream != 0 {
		s.stream.Synchronize()
	}
	if s.dnn != nil {
		s.dnn.Destroy()
		s.dnn = nil
	}
	for _, e := range []*cu.Event{&s.fork, &s.join} {
		if *e != 0 {
			e.Destroy()
			*e = 0
		}
	}
	if s.stream != 0 {
		s.stream.Destroy()
		s.stream = 0
	}
}

// BeginSide sends the operations that follow to the side stream, after the
// work queued so far (backend.Overlapper). Without a side stream
// (Options.NoOverlap) the side calls do nothing.
func (b *Backend) BeginSide() {
	if b.err != nil || b.side.stream == 0 {
		return
	}
	b.fail("BeginSide", b.graphs.beginSide())
}

// EndSide sends the operations that follow to the main stream again.
func (b *Backend) EndSide() {
	if b.side.stream == 0 {
		return
	}
	b.graphs.endSide()
}

// JoinSide makes the main stream wait for the side work queued so far.
func (b *Backend) JoinSide() {
	if b.err != nil || b.side.stream == 0 {
		return
	}
	b.fail("JoinSide", b.graphs.join())
}
