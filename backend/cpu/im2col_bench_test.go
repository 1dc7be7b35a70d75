package cpu

import (
	"testing"

	"github.com/pad-dreaming/pad/backend"
)

// BenchmarkIm2col times the im2col and col2im of PAD's largest layers
// (batch 64): conv2 (64→128 channels, 16→8) and tconv3 as a convolution
// (64 channels at 16×16 from 128 at 8×8).
func BenchmarkIm2col(b *testing.B) {
	g := backend.NewConv(64, 64, 16, 16, 128, 4, 2, 1)
	be := New(0)
	x := make([]float32, g.XLen())
	col := make([]float32, g.C*g.R*g.S*g.N*g.P*g.Q)
	b.Run("im2col", func(b *testing.B) {
		b.SetBytes(int64(len(col) * 4))
		for i := 0; i < b.N; i++ {
			be.im2col(g, x, col)
		}
	})
	b.Run("col2im", func(b *testing.B) {
		b.SetBytes(int64(len(col) * 4))
		for i := 0; i < b.N; i++ {
			be.col2im(g, col, x, 0)
		}
	})
}
