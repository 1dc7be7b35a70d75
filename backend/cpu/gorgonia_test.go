package cpu

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gorgonia's symbolic differentiation is an independent oracle for the two
// losses whose gradients are written by hand: the KL loss on batch
// statistics and the BCE loss (with the sigmoid in front of it, as the
// discriminator uses it). Both sides compute in float64.

// gradOf builds the scalar loss from the input node with build, asks
// gorgonia for the gradient with respect to the input, and returns the
// loss and the gradient.
func gradOf(t *testing.T, shape []int, values []float64, build func(g *G.ExprGraph, x *G.Node) *G.Node) (float64, []float64) {
	t.Helper()
	g := G.NewGraph()
	val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), values...)))
	var x *G.Node
	if len(shape) == 1 {
		x = G.NewVector(g, tensor.Float64, G.WithShape(shape...), G.WithName("x"), G.WithValue(val))
	} else {
		x = G.NewMatrix(g, tensor.Float64, G.WithShape(shape...), G.WithName("x"), G.WithValue(val))
	}
	loss := build(g, x)
	if _, err := G.Grad(loss, x); err != nil {
		t.Fatalf("gorgonia Grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("gorgonia run: %v", err)
	}
	gv, err := x.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return loss.Value().Data().(float64), append([]float64(nil), gv.Data().([]float64)...)
}

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

func scalar(g *G.ExprGraph, v float64) *G.Node { return G.NewConstant(v) }

func TestKLGradientAgreesWithGorgonia(t *testing.T) {
	for _, sz := range [][2]int{{2, 3}, {8, 16}, {64, 5}} {
		n, nz := sz[0], sz[1]
		z := to64(randVec(n*nz, uint64(n*nz)))
		wantLoss, wantGrad := gradOf(t, []int{n, nz}, z, func(g *G.ExprGraph, x *G.Node) *G.Node {
			m := must(G.Mean(x, 0))                         // batch mean per unit
			c := must(G.BroadcastSub(x, m, nil, []byte{0})) // z − m
			v := must(G.Div(must(G.Sum(must(G.Square(c)), 0)), scalar(g, float64(n-1))))
			s := must(G.Sqrt(v)) // unbiased std
			half := must(G.Div(must(G.Add(must(G.Square(s)), must(G.Square(m)))), scalar(g, 2)))
			term := must(G.Sub(must(G.Sub(half, must(G.Log(s)))), scalar(g, 0.5)))
			return must(G.Mean(term))
		})
		b := New64(1)
		loss := put64([]float64{0})
		grad := put64(make([]float64, n*nz))
		b.KLBatch(put64(z), n, nz, loss, grad, 1, 0)
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		if d := get64(loss)[0] - wantLoss; d*d > 1e-20 {
			t.Errorf("KL %dx%d: loss %v, gorgonia %v", n, nz, get64(loss)[0], wantLoss)
		}
		if e := relErr64(get64(grad), wantGrad); e > 1e-10 {
			t.Errorf("KL %dx%d: gradient differs from gorgonia's by %.3g", n, nz, e)
		}
	}
}

func TestBCEGradientAgreesWithGorgonia(t *testing.T) {
	n := 16
	logits := to64(randVec(n, 77))
	for _, target := range []float64{0, 1} {
		// Loss as a function of the logits: BCE(sigmoid(l), t), mean over
		// the batch. Our side runs Sigmoid, BCE and SigmoidBackward.
		wantLoss, wantGrad := gradOf(t, []int{n}, logits, func(g *G.ExprGraph, x *G.Node) *G.Node {
			d := must(G.Sigmoid(x))
			var ll *G.Node
			if target == 1 {
				ll = must(G.Log(d))
			} else {
				ll = must(G.Log(must(G.Sub(scalar(g, 1), d))))
			}
			return must(G.Neg(must(G.Mean(ll))))
		})
		b := New64(1)
		d := put64(logits)
		b.Sigmoid(d)
		loss := put64([]float64{0})
		grad := put64(make([]float64, n))
		b.BCE(d, float32(target), loss, grad, 1)
		b.SigmoidBackward(d, grad)
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		if dl := get64(loss)[0] - wantLoss; dl*dl > 1e-20 {
			t.Errorf("BCE t=%v: loss %v, gorgonia %v", target, get64(loss)[0], wantLoss)
		}
		if e := relErr64(get64(grad), wantGrad); e > 1e-10 {
			t.Errorf("BCE t=%v: gradient differs from gorgonia's by %.3g", target, e)
		}
	}
}
