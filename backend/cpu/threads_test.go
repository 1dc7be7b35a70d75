package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/pad-dreaming/pad/backend"
)

// threadGeoms are convolutions whose GEMMs are big enough to be split
// between threads, over each of m, n and k (shapes as m×n×k):
var threadGeoms = []backend.ConvGeom{
	// forward 32×4096×128 (n), backward-data 128×4096×32 (n),
	// backward-filter 32×128×4096 (k, 16 blocks of 256)
	backend.NewConv(16, 8, 32, 32, 32, 4, 2, 1),
	// forward 64×256×1024, backward-data 1024×256×64 (m),
	// backward-filter 64×1024×256 (n)
	backend.NewConv(4, 64, 16, 16, 64, 4, 2, 1),
	// forward 24×9000×27 (n), backward-filter 24×27×9000 (k: 36 blocks
	// of 250, none a multiple of the other thread counts' chunks)
	backend.NewConv(10, 3, 30, 30, 24, 3, 1, 1),
}

// namedBits is an op's output as float64 bits.
type namedBits struct {
	name string
	bits []uint64
}

// reductionOutputs runs every op of b that sums over many values on fixed
// random inputs and returns each output's values as float64 bits.
func reductionOutputs[T Float](t *testing.T, b *Backend[T]) []namedBits {
	t.Helper()
	var out []namedBits
	keep := func(name string, x backend.Buf) {
		if err := b.Sync(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, _ := Values[T](x)
		bits := make([]uint64, len(v))
		for i, f := range v {
			bits[i] = math.Float64bits(float64(f))
		}
		out = append(out, namedBits{name, bits})
	}
	for gi, g := range threadGeoms {
		x := alloc(t, b, randVec(g.XLen(), uint64(10*gi+1)))
		w := alloc(t, b, randVec(g.WLen(), uint64(10*gi+2)))
		dy := alloc(t, b, randVec(g.YLen(), uint64(10*gi+3)))
		y, _ := b.Alloc(g.YLen())
		b.ConvForward(g, x, w, y)
		keep(fmt.Sprintf("geom %d: ConvForward", gi), y)
		for _, beta := range []float32{0, 1} {
			dx := alloc(t, b, randVec(g.XLen(), uint64(10*gi+4)))
			b.ConvBackwardData(g, dy, w, dx, beta)
			keep(fmt.Sprintf("geom %d: ConvBackwardData beta=%v", gi, beta), dx)
			dw := alloc(t, b, randVec(g.WLen(), uint64(10*gi+5)))
			b.ConvBackwardFilter(g, x, dy, dw, beta)
			keep(fmt.Sprintf("geom %d: ConvBackwardFilter beta=%v", gi, beta), dw)
		}
	}

	const n, c, hw = 64, 32, 256
	dy := alloc(t, b, randVec(n*c*hw, 20))
	db := alloc(t, b, randVec(c, 21))
	b.BiasGrad(dy, db, n, c, hw, 1)
	keep("BiasGrad", db)

	size := n * c * hw
	a, tg := alloc(t, b, randVec(size, 22)), alloc(t, b, randVec(size, 23))
	loss, _ := b.Alloc(1)
	grad, _ := b.Alloc(size)
	b.MSE(a, tg, loss, grad, 0.5)
	keep("MSE loss", loss)
	keep("MSE grad", grad)
	prob := randVec(size, 24)
	for i, v := range prob {
		prob[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
	p := alloc(t, b, prob)
	b.BCE(p, 1, loss, grad, 1)
	keep("BCE loss", loss)
	keep("BCE grad", grad)
	b.Mean(a, loss)
	keep("Mean", loss)
	b.RowNormMean(a, n*c, hw, loss)
	keep("RowNormMean", loss)

	const batch, nz = 512, 256
	z := alloc(t, b, randVec(batch*nz, 25))
	kgrad := alloc(t, b, randVec(batch*nz, 26))
	b.KLBatch(z, batch, nz, loss, kgrad, 0.7, 1)
	keep("KLBatch loss", loss)
	keep("KLBatch grad", kgrad)

	pb, gb := alloc(t, b, randVec(size, 27)), alloc(t, b, randVec(size, 28))
	mb, vb := alloc(t, b, make([]float32, size)), alloc(t, b, make([]float32, size))
	h := backend.AdamHyper{LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	for step := 1; step <= 2; step++ {
		b.Adam(pb, gb, mb, vb, []backend.AdamSegment{{Off: 0, Len: size / 2, Step: step}, {Off: size / 2, Len: size / 2, Step: step + 3}}, h)
	}
	keep("Adam p", pb)
	keep("Adam m", mb)
	keep("Adam v", vb)
	return out
}

// Every op gives the same bits whatever the number of threads, so that a
// run resumed on a machine with another core count (or device.threads)
// continues the same trajectory.
func TestThreadCountGivesSameBits(t *testing.T) {
	for _, typ := range []string{"float32", "float64"} {
		t.Run(typ, func(t *testing.T) {
			outputs := func(threads int) []namedBits {
				if typ == "float32" {
					b := New(threads)
					defer b.Close()
					return reductionOutputs(t, b)
				}
				b := New64(threads)
				defer b.Close()
				return reductionOutputs(t, b)
			}
			ref := outputs(1)
			for _, threads := range []int{2, 3, 5} {
				got := outputs(threads)
				for j, want := range ref {
					g := got[j].bits
					for i := range want.bits {
						if g[i] != want.bits[i] {
							t.Errorf("%d threads: %s[%d] = %v, one thread gives %v", threads, want.name, i,
								math.Float64frombits(g[i]), math.Float64frombits(want.bits[i]))
							break
						}
					}
				}
			}
		})
	}
}
