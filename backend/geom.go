package backend

import "fmt"

// ConvGeom describes a 2-D convolution y = conv(x, w) in NCHW layout:
// x is [N, C, H, W], w is [K, C, R, S], y is [N, K, P, Q], with
// P = (H + 2·Pad − R)/Stride + 1 and Q likewise.
//
// A ConvTranspose2d layer is described by the convolution it is the adjoint
// of: its input is that convolution's y side and its output the x side, so
// its forward pass is ConvBackwardData and its weight [in, out, R, S] is the
// convolution's [K, C, R, S].
type ConvGeom struct {
	N, C, H, W  int
	K, R, S     int
	Stride, Pad int
	P, Q        int
}

// NewConv returns the geometry of a convolution of n images of c×h×w with
// k filters of size kernel×kernel.
func NewConv(n, c, h, w, k, kernel, stride, pad int) ConvGeom {
	g := ConvGeom{N: n, C: c, H: h, W: w, K: k, R: kernel, S: kernel, Stride: stride, Pad: pad}
	if stride > 0 {
		g.P = (h+2*pad-kernel)/stride + 1
		g.Q = (w+2*pad-kernel)/stride + 1
	}
	return g
}

// XLen, WLen and YLen are the sizes of the three tensors.
func (g ConvGeom) XLen() int { return g.N * g.C * g.H * g.W }
func (g ConvGeom) WLen() int { return g.K * g.C * g.R * g.S }
func (g ConvGeom) YLen() int { return g.N * g.K * g.P * g.Q }

// Validate reports a geometry that no convolution has.
func (g ConvGeom) Validate() error {
	if g.N <= 0 || g.C <= 0 || g.H <= 0 || g.W <= 0 || g.K <= 0 || g.R <= 0 || g.S <= 0 || g.Stride <= 0 || g.Pad < 0 {
		return fmt.Errorf("conv geometry %v: sizes must be positive", g)
	}
	if g.P != (g.H+2*g.Pad-g.R)/g.Stride+1 || g.Q != (g.W+2*g.Pad-g.S)/g.Stride+1 || g.P <= 0 || g.Q <= 0 {
		return fmt.Errorf("conv geometry %v: output %dx%d does not follow from input, kernel, stride and padding", g, g.P, g.Q)
	}
	return nil
}

func (g ConvGeom) String() string {
	return fmt.Sprintf("[%d,%d,%d,%d]*[%d,%d,%d,%d]/s%dp%d->[%d,%d,%d,%d]",
		g.N, g.C, g.H, g.W, g.K, g.C, g.R, g.S, g.Stride, g.Pad, g.N, g.K, g.P, g.Q)
}
