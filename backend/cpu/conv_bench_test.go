package cpu

import (
	"fmt"
	"testing"

	"github.com/pad-dreaming/pad/backend"
)

// padLayers are the paper model's convolutions at batch 64 (nf 64, nz
// 256); G's transposed convolutions are the same geometries run backwards.
var padLayers = []backend.ConvGeom{
	backend.NewConv(64, 3, 32, 32, 64, 4, 2, 1),
	backend.NewConv(64, 64, 16, 16, 128, 4, 2, 1),
	backend.NewConv(64, 128, 8, 8, 256, 4, 2, 1),
	backend.NewConv(64, 256, 4, 4, 256, 4, 2, 0),
}

// BenchmarkConv times each of PAD's layers three ways (forward,
// backward-data, backward-filter), as the backend runs them and through
// the explicit im2col matrix (im2col, GEMM, col2im), side by side.
func BenchmarkConv(b *testing.B) {
	be := New(0)
	for li, g := range padLayers {
		x, w, dy := randVec(g.XLen(), 1), randVec(g.WLen(), 2), randVec(g.YLen(), 3)
		y, dx, dw := make([]float32, g.YLen()), make([]float32, g.XLen()), make([]float32, g.WLen())
		crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
		col, tmp := make([]float32, crs*npq), make([]float32, g.K*npq)
		flops := 2 * float64(g.K) * float64(crs) * float64(npq)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("conv%d/%s", li+1, name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					f()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		run("forward", func() { be.ConvForward(g, Wrap(x), Wrap(w), Wrap(y)) })
		run("forward-explicit", func() {
			explicitIm2col(be, g, x, col)
			be.gemm.Sgemm(false, false, g.K, npq, crs, 1, w, crs, col, npq, 0, tmp, npq)
		})
		run("data", func() { be.ConvBackwardData(g, Wrap(dy), Wrap(w), Wrap(dx), 0) })
		run("data-explicit", func() {
			be.nchwToKM(g, dy, tmp)
			be.gemm.Sgemm(true, false, crs, npq, g.K, 1, w, crs, tmp, npq, 0, col, npq)
			explicitCol2im(be, g, col, dx, 0)
		})
		run("filter", func() { be.ConvBackwardFilter(g, Wrap(x), Wrap(dy), Wrap(dw), 0) })
		run("filter-explicit", func() {
			explicitIm2col(be, g, x, col)
			be.nchwToKM(g, dy, tmp)
			be.gemm.Sgemm(false, true, g.K, crs, npq, 1, tmp, npq, col, npq, 0, dw, crs)
		})
	}
}
