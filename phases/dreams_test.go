package phases

import (
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// Dreams draws NREM and REM dreams exactly as the learning phases do, but
// changes no parameter and no optimiser state.
func TestDreamsLearnNothing(t *testing.T) {
	b := cpu.New(1)
	cond, _ := conditions.Lookup("pad")
	spec := model.Spec{C: 1, NF: 4, NZ: 8, Batch: 4}
	p, err := New(b, spec, cond, Options{Seed: 3, AdamE: DefaultAdam, AdamG: DefaultAdam, MaxTile: 8})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := b.Alloc(spec.Batch * 32 * 32)
	b.RandUniform(x, rng.Key{Seed: 4})
	p.Iterate(x, 0, true) // memories and perturbations of a real iteration
	if st, err := p.Stats(); err != nil || st[StatKL] != st[StatKL] {
		t.Fatalf("the iteration before Dreams failed: %v, %v", st, err)
	}
	before := append(append([]float32(nil), cpu.Data(p.E.Values)...), cpu.Data(p.G.Values)...)
	steps := append([]int(nil), p.E.AdamSteps...)

	p.Dreams()
	after := append(append([]float32(nil), cpu.Data(p.E.Values)...), cpu.Data(p.G.Values)...)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("Dreams changed parameter %d: %v -> %v", i, before[i], after[i])
		}
	}
	for i := range steps {
		if steps[i] != p.E.AdamSteps[i] {
			t.Fatal("Dreams advanced an Adam step count")
		}
	}
	// The REM dream is G(ZMix); the NREM dream is G(memory) masked, so it
	// is zero exactly where the mask is.
	rem := append([]float32(nil), cpu.Data(p.G.Out)...)
	p.G.Forward(p.ZMix)
	for i, v := range cpu.Data(p.G.Out) {
		if v != rem[i] {
			t.Fatal("the REM dream is not G(ZMix)")
		}
	}
	mask, dream := cpu.Data(p.Mask), cpu.Data(p.Dream)
	for i, v := range dream {
		if mask[i%len(mask)] == 0 && v != 0 {
			t.Fatalf("NREM dream value %d is %v under a dropped tile", i, v)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}
