package phases

import (
	"fmt"
	"testing"

	"github.com/pad-dreaming/pad/backend/cpu"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
)

// BenchmarkIteration times one full Wake/NREM/REM iteration of the paper's
// model (batch 64, nf 64, nz 256) on the CPU backend, for C = 1 (MNIST
// shape) and C = 3 (CIFAR-10 shape). The PyTorch CPU peer takes 347 ms per
// iteration at C = 1 on 2 pinned threads of another machine.
func BenchmarkIteration(b *testing.B) {
	for _, c := range []int{1, 3} {
		b.Run(fmt.Sprintf("C%d", c), func(b *testing.B) {
			be := cpu.New(0)
			spec := model.Spec{C: c, NF: 64, NZ: 256, Batch: 64}
			cond, _ := conditions.Lookup("pad")
			p, err := New(be, spec, cond, Options{Seed: 1, AdamE: DefaultAdam, AdamG: DefaultAdam, MaxTile: 8})
			if err != nil {
				b.Fatal(err)
			}
			host := make([]float32, spec.Batch*c*32*32)
			rng.FillUniform(host, rng.Key{Seed: 2})
			for i := range host {
				host[i] = 2*host[i] - 1
			}
			x, _ := be.Alloc(len(host))
			be.Upload(x, host)
			p.Iterate(x, 0, true) // first call grows the workspaces
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Iterate(x, uint64(i+1), false)
			}
			b.StopTimer()
			if _, err := p.Stats(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/iter")
		})
	}
}
