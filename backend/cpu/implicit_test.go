package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// packRef packs the kc×nc block of op(B) at (p0, j0) the way gemm.Packer
// must, from at(p, j), one value at a time; the gaps between panels keep
// their sentinel.
func packRef(dst []float32, ps, nr, p0, kc, j0, nc int, at func(p, j int) float32) {
	for c := 0; c < (nc+nr-1)/nr*nr; c++ {
		for p := 0; p < kc; p++ {
			var v float32
			if c < nc {
				v = at(p0+p, j0+c)
			}
			dst[c/nr*ps+p*nr+c%nr] = v
		}
	}
}

// TestPackersGiveTheColumns: the implicit GEMM's packers write exactly
// what packing the explicit im2col matrix col would (forward: col;
// backward-filter: colᵀ), on blocks that start and end anywhere, for
// panel widths of the assembly and pure-Go kernels, and nothing else.
func TestPackersGiveTheColumns(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 3))
	sentinel := float32(math.Inf(-1))
	for _, g := range testGeoms(rnd, 80) {
		rows, npq := g.C*g.R*g.S, g.N*g.P*g.Q
		x := randVec(g.XLen(), uint64(rows))
		col := make([]float32, rows*npq)
		im2colRows(g, x, col, 0, rows)
		gb := &gatherB{src: x, planes: g.C, h: g.H, w: g.W, ny: g.P, nx: g.Q, st: g.Stride}
		for row := 0; row < rows; row++ {
			c, r, s := row/(g.R*g.S), row/g.S%g.R, row%g.S
			gb.taps = append(gb.taps, gb.newTap(c, r-g.Pad, s-g.Pad))
		}
		pc := &patchCols{x: x, g: g}
		for trial := 0; trial < 12; trial++ {
			nr := []int{4, 8, 16, 32}[trial%4]
			for _, op := range []struct {
				name   string
				k, n   int
				packer interface {
					PackB(dst []float32, ps, nr, p0, kc, j0, nc int)
				}
				at func(p, j int) float32
			}{
				{"forward", rows, npq, gb, func(p, j int) float32 { return col[p*npq+j] }},
				{"backward-filter", npq, rows, pc, func(p, j int) float32 { return col[j*npq+p] }},
			} {
				p0 := rnd.IntN(op.k)
				kc := 1 + rnd.IntN(op.k-p0)
				j0 := rnd.IntN(op.n)
				nc := 1 + rnd.IntN(op.n-j0)
				ps := nr*kc + 1 + rnd.IntN(20)
				size := ((nc+nr-1)/nr-1)*ps + kc*nr + 7
				got, want := make([]float32, size), make([]float32, size)
				for i := range got {
					got[i], want[i] = sentinel, sentinel
				}
				op.packer.PackB(got, ps, nr, p0, kc, j0, nc)
				packRef(want, ps, nr, p0, kc, j0, nc, op.at)
				if i := testkit.FirstBitDiff(got, want); i >= 0 {
					t.Fatalf("%v %s, nr %d, block (%d+%d, %d+%d), ps %d: dst[%d] = %v, want %v",
						g, op.name, nr, p0, kc, j0, nc, ps, i, got[i], want[i])
				}
			}
		}
	}
}

// explicitConv runs forward and backward-filter of the float32 backend
// through the explicit im2col matrix and Sgemm, as before the implicit
// GEMM: tmp [K, N·P·Q] and dw.
func explicitConv(b *Backend[float32], g backend.ConvGeom, x, w, dy, dw []float32, beta float32) (tmp []float32) {
	crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
	col := make([]float32, crs*npq)
	explicitIm2col(b, g, x, col)
	tmp = make([]float32, g.K*npq)
	b.gemm.Sgemm(false, false, g.K, npq, crs, 1, w, crs, col, npq, 0, tmp, npq)
	dyKM := make([]float32, g.K*npq)
	b.nchwToKM(g, dy, dyKM)
	b.gemm.Sgemm(false, true, g.K, crs, npq, 1, dyKM, npq, col, npq, beta, dw, crs)
	return tmp
}

// TestImplicitConvGivesExplicitBits: forward, backward-data and
// backward-filter through the packers (or, for dense layers, straight on
// x, dy and dx) give the bits of the explicit im2col path, on one and on
// three threads (dense backward-data with beta 0 and 1 only).
func TestImplicitConvGivesExplicitBits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(2, 8))
	geoms := append(testGeoms(rnd, 40), threadGeoms...)
	geoms = append(geoms, padLayers[3], backend.NewConv(64, 256, 4, 4, 1, 4, 2, 0), // conv4, dis
		backend.ConvGeom{N: 5, C: 7, H: 3, W: 2, K: 9, R: 3, S: 2, Stride: 1, P: 1, Q: 1}) // dense, R ≠ S
	for _, threads := range []int{1, 3} {
		b := New(threads)
		for i, g := range geoms {
			x, w, dy := randVec(g.XLen(), uint64(i)), randVec(g.WLen(), uint64(i+1)), randVec(g.YLen(), uint64(i+2))
			dw0 := randVec(g.WLen(), uint64(i+3))
			for _, beta := range []float32{0, 1, -0.5} {
				want := append([]float32(nil), dw0...)
				tmp := explicitConv(b, g, x, w, dy, want, beta)
				wantY := make([]float32, g.YLen())
				pq := g.P * g.Q
				for n := 0; n < g.N; n++ {
					for k := 0; k < g.K; k++ {
						copy(wantY[(n*g.K+k)*pq:(n*g.K+k+1)*pq], tmp[(k*g.N+n)*pq:(k*g.N+n+1)*pq])
					}
				}
				y, dw := Wrap(make([]float32, g.YLen())), Wrap(append([]float32(nil), dw0...))
				b.ConvForward(g, Wrap(x), Wrap(w), y)
				b.ConvBackwardFilter(g, Wrap(x), Wrap(dy), dw, beta)
				if err := b.Sync(); err != nil {
					t.Fatal(err)
				}
				if j := testkit.FirstBitDiff(Data(y), wantY); j >= 0 {
					t.Fatalf("%d threads, %v: forward y[%d] = %v, explicit %v", threads, g, j, Data(y)[j], wantY[j])
				}
				if j := testkit.FirstBitDiff(Data(dw), want); j >= 0 {
					t.Fatalf("%d threads, %v, beta %v: backward-filter dw[%d] = %v, explicit %v", threads, g, beta, j, Data(dw)[j], want[j])
				}
				if dense(g) && beta == -0.5 {
					continue // beta·dx is added inside the dense product
				}
				dx0 := randVec(g.XLen(), uint64(i+4))
				wantDx := append([]float32(nil), dx0...)
				crs, npq := g.C*g.R*g.S, g.N*g.P*g.Q
				col, dyKM := make([]float32, crs*npq), make([]float32, g.K*npq)
				b.nchwToKM(g, dy, dyKM)
				b.gemm.Sgemm(true, false, crs, npq, g.K, 1, w, crs, dyKM, npq, 0, col, npq)
				explicitCol2im(b, g, col, wantDx, beta)
				dx := Wrap(dx0)
				b.ConvBackwardData(g, Wrap(dy), Wrap(w), dx, beta)
				if j := testkit.FirstBitDiff(Data(dx), wantDx); j >= 0 {
					t.Fatalf("%d threads, %v, beta %v: backward-data dx[%d] = %v, explicit %v", threads, g, beta, j, Data(dx)[j], wantDx[j])
				}
			}
		}
		b.Close()
	}
}
