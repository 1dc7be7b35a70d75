package cpu

import (
	"fmt"
	"testing"
)

// BenchmarkPack times the implicit GEMM's packers alone on one block of
// kc × nc values per layer, beside im2col of as many values.
func BenchmarkPack(b *testing.B) {
	const kc, nc, nr = 256, 1024, 32
	for li, g := range padLayers[:3] {
		x := randVec(g.XLen(), 1)
		gb := &gatherB{src: x, planes: g.C, h: g.H, w: g.W, ny: g.P, nx: g.Q, st: g.Stride}
		for row := 0; row < g.C*g.R*g.S; row++ {
			c, r, s := row/(g.R*g.S), row/g.S%g.R, row%g.S
			gb.taps = append(gb.taps, gb.newTap(c, r-g.Pad, s-g.Pad))
		}
		pc := &patchCols{x: x, g: g}
		ps := nr*kc + 16
		dst := make([]float32, (nc/nr)*ps)
		k, n := min(kc, g.C*g.R*g.S), min(nc, g.C*g.R*g.S)
		b.Run(fmt.Sprintf("conv%d/forward", li+1), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				gb.PackB(dst, ps, nr, 0, k, 0, nc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k*nc), "ns/value")
		})
		b.Run(fmt.Sprintf("conv%d/filter", li+1), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pc.PackB(dst, ps, nr, 0, kc, 0, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*kc*n), "ns/value")
		})
		col := make([]float32, g.C*g.R*g.S*g.N*g.P*g.Q)
		b.Run(fmt.Sprintf("conv%d/im2col", li+1), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				im2colRows32(g, x, col, 0, g.C*g.R*g.S)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(col)), "ns/value")
		})
	}
}
