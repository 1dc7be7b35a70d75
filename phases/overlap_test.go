package phases

import (
	"math"
	"testing"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// lateSideCPU is the CPU backend posing as a backend.Overlapper whose side
// work runs as late as a real side stream may run it: the weight and bias
// gradients queued between BeginSide and EndSide are held back and done at
// JoinSide, after everything the main queue did in between. If the model
// queued on the main queue anything that touches what the side work reads
// or writes before the join, the results would differ from running in
// order.
type lateSideCPU struct {
	*cpu.Backend[float32]
	t        *testing.T
	onSide   bool
	held     []func()
	sides    int // operations run as side work
	sections int // side sections opened
}

func (l *lateSideCPU) BeginSide() {
	if l.onSide {
		l.t.Error("BeginSide inside a side section")
	}
	l.onSide = true
	l.sections++
}

func (l *lateSideCPU) EndSide() { l.onSide = false }

func (l *lateSideCPU) JoinSide() {
	l.onSide = false
	for _, f := range l.held {
		f()
	}
	l.held = l.held[:0]
}

func (l *lateSideCPU) ConvBackwardFilter(g backend.ConvGeom, x, dy, dw backend.Buf, beta float32) {
	if !l.onSide {
		l.Backend.ConvBackwardFilter(g, x, dy, dw, beta)
		return
	}
	l.sides++
	l.held = append(l.held, func() { l.Backend.ConvBackwardFilter(g, x, dy, dw, beta) })
}

func (l *lateSideCPU) BiasGrad(dy, db backend.Buf, n, c, hw int, beta float32) {
	if !l.onSide {
		l.Backend.BiasGrad(dy, db, n, c, hw, beta)
		return
	}
	l.sides++
	l.held = append(l.held, func() { l.Backend.BiasGrad(dy, db, n, c, hw, beta) })
}

// The other operations of a backward pass must not be side work: here
// they would run at once, on the GPU on the side stream.
func (l *lateSideCPU) ConvBackwardData(g backend.ConvGeom, dy, w, dx backend.Buf, beta float32) {
	l.notOnSide("ConvBackwardData")
	l.Backend.ConvBackwardData(g, dy, w, dx, beta)
}

func (l *lateSideCPU) ConvForward(g backend.ConvGeom, x, w, y backend.Buf) {
	l.notOnSide("ConvForward")
	l.Backend.ConvForward(g, x, w, y)
}

func (l *lateSideCPU) Adam(p, g, m, v backend.Buf, segs []backend.AdamSegment, h backend.AdamHyper) {
	l.notOnSide("Adam")
	if len(l.held) > 0 {
		l.t.Error("an Adam step before the side work was joined")
	}
	l.Backend.Adam(p, g, m, v, segs, h)
}

func (l *lateSideCPU) LeakyReLUBackward(y, dy backend.Buf, slope float32) {
	l.notOnSide("LeakyReLUBackward")
	l.Backend.LeakyReLUBackward(y, dy, slope)
}

func (l *lateSideCPU) SigmoidBackward(y, dy backend.Buf) {
	l.notOnSide("SigmoidBackward")
	l.Backend.SigmoidBackward(y, dy)
}

func (l *lateSideCPU) TanhBackward(y, dy backend.Buf) {
	l.notOnSide("TanhBackward")
	l.Backend.TanhBackward(y, dy)
}

func (l *lateSideCPU) BiasAct(y, bias backend.Buf, n, c, hw int, act backend.Activation, slope float32) {
	l.notOnSide("BiasAct")
	l.Backend.BiasAct(y, bias, n, c, hw, act, slope)
}

func (l *lateSideCPU) notOnSide(op string) {
	if l.onSide {
		l.t.Errorf("%s inside a side section", op)
	}
}

// Every condition's iterations give the same bits whether the weight
// gradients run in order or as late as the side stream may run them.
func TestSideWorkMayRunLate(t *testing.T) {
	for _, name := range conditions.Names() {
		t.Run(name, func(t *testing.T) {
			cond, err := conditions.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			spec := model.Spec{C: 3, NF: 4, NZ: 8, Batch: 4}
			opt := Options{Seed: 5, AdamE: DefaultAdam, AdamG: DefaultAdam, MaxTile: 8}
			plain := cpu.New(1)
			late := &lateSideCPU{Backend: cpu.New(1), t: t}
			pa, err := New(plain, spec, cond, opt)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := New(late, spec, cond, opt)
			if err != nil {
				t.Fatal(err)
			}
			xa, _ := plain.Alloc(spec.Batch * 3 * 32 * 32)
			xb, _ := late.Alloc(spec.Batch * 3 * 32 * 32)
			for i := 0; i < 3; i++ {
				plain.RandUniform(xa, rng.Key{Seed: 6, Seq: uint64(i)})
				late.RandUniform(xb, rng.Key{Seed: 6, Seq: uint64(i)})
				pa.Iterate(xa, uint64(i), i == 0)
				pb.Iterate(xb, uint64(i), i == 0)
				if len(late.held) > 0 {
					t.Fatalf("iteration %d ended with %d side operations not joined", i, len(late.held))
				}
				sa, err := pa.Stats()
				if err != nil {
					t.Fatal(err)
				}
				sb, err := pb.Stats()
				if err != nil {
					t.Fatal(err)
				}
				if sa != sb {
					t.Fatalf("iteration %d: stats %v in order, %v with late side work", i, sa, sb)
				}
			}
			for _, n := range []struct {
				what string
				a, b *model.Net
			}{{"E", &pa.E.Net, &pb.E.Net}, {"G", &pa.G.Net, &pb.G.Net}} {
				a, b := cpu.Data(n.a.Values), cpu.Data(n.b.Values)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("%s parameter %d: %v in order, %v with late side work", n.what, i, a[i], b[i])
					}
				}
			}
			if late.sides == 0 {
				t.Fatal("no work ran as side work")
			}
			t.Logf("%d side sections, %d side operations", late.sections, late.sides)
		})
	}
}
