package eval

import (
	"math"
	"testing"

	"github.com/pad-dreaming/pad/internal/rng"
)

var evalKey = rng.Key{Seed: 1, Stream: rng.StreamEval, Seq: 1 << 40}

func TestDistanceRatiosTightClusters(t *testing.T) {
	// Centres 20 apart on orthogonal axes (inter ≈ 28), noise 0.1 per
	// dimension (intra ≈ 0.1·√16 = 0.4).
	clean := gaussianClusters(2000, 8, 4, 0, 10)
	for i := range clean.X {
		clean.X[i] *= 0.1
	}
	for i := 0; i < clean.N; i++ {
		clean.X[i*clean.D+int(clean.Labels[i])] += 20
	}
	m, err := DistanceRatios(clean, clean, PairConfig{}, evalKey)
	if err != nil {
		t.Fatal(err)
	}
	if m.IntraInter > 0.05 || m.Classes != 4 {
		t.Errorf("tight clusters: intra/inter = %v (intra %v, inter %v), classes %d", m.IntraInter, m.Intra, m.Inter, m.Classes)
	}
	if m.Occ != 0 || m.OccInter != 0 {
		t.Errorf("identical clean and occluded features: occ/inter = %v", m.OccInter)
	}
	again, err := DistanceRatios(clean, clean, PairConfig{}, evalKey)
	if err != nil || again != m {
		t.Errorf("same key, different result: %+v vs %+v", again, m)
	}
}

func TestDistanceRatiosKnownValues(t *testing.T) {
	// Two classes on a line: class 0 at 0 and 1, class 1 at 10 and 11.
	// Same-class pairs of distinct images are always 1 apart; different-
	// class distances are 9, 10 or 11 with mean 10.
	clean := Features{X: []float32{0, 1, 10, 11}, N: 4, D: 1, Labels: []uint8{0, 0, 1, 1}}
	occ := Features{X: []float32{3, -2, 13, 8}, N: 4, D: 1} // every image moved by 3
	m, err := DistanceRatios(clean, occ, PairConfig{PerClass: 50, Inter: 20000, Occluded: 3}, evalKey)
	if err != nil {
		t.Fatal(err)
	}
	if m.Intra != 1 {
		t.Errorf("intra = %v, want 1", m.Intra)
	}
	if math.Abs(m.Inter-10) > 0.05 {
		t.Errorf("inter = %v, want ≈ 10", m.Inter)
	}
	if m.Occ != 3 || math.Abs(m.OccInter-0.3) > 0.002 {
		t.Errorf("occ = %v, occ/inter = %v, want 3 and ≈ 0.3", m.Occ, m.OccInter)
	}
	none, err := DistanceRatios(clean, Features{}, PairConfig{}, evalKey)
	if err != nil || !math.IsNaN(none.OccInter) {
		t.Errorf("no occluded features: %+v, %v", none, err)
	}
}

func TestDistanceRatiosBadInput(t *testing.T) {
	one := Features{X: []float32{0, 1, 2}, N: 3, D: 1, Labels: []uint8{5, 5, 5}}
	if _, err := DistanceRatios(one, Features{}, PairConfig{}, evalKey); err == nil {
		t.Errorf("single class: no error")
	}
	lonely := Features{X: []float32{0, 1}, N: 2, D: 1, Labels: []uint8{0, 1}}
	if _, err := DistanceRatios(lonely, Features{}, PairConfig{}, evalKey); err == nil {
		t.Errorf("no class with two images: no error")
	}
	two := Features{X: []float32{0, 1, 2, 3}, N: 4, D: 1, Labels: []uint8{0, 0, 1, 1}}
	if _, err := DistanceRatios(two, Features{X: []float32{1}, N: 1, D: 1}, PairConfig{}, evalKey); err == nil {
		t.Errorf("occluded shape mismatch: no error")
	}
	if _, err := DistanceRatios(two, Features{}, PairConfig{Inter: -1}, evalKey); err == nil {
		t.Errorf("negative count: no error")
	}
}

func TestPCAExactCovariance(t *testing.T) {
	// Four points ±a·u, ±b·v with orthonormal u, v in R³: the covariance
	// (N−1 = 3) is (2a²uuᵀ + 2b²vvᵀ)/3 exactly.
	u := []float64{1 / math.Sqrt2, 1 / math.Sqrt2, 0}
	v := []float64{-1 / math.Sqrt(3), 1 / math.Sqrt(3), 1 / math.Sqrt(3)}
	const a, b = 3.0, 1.0
	var x []float32
	for _, p := range []struct {
		axis  []float64
		scale float64
	}{{u, a}, {v, b}} {
		for _, sign := range []float64{1, -1} {
			for _, c := range p.axis {
				x = append(x, float32(sign*p.scale*c))
			}
		}
	}
	f := Features{X: x, N: 4, D: 3}
	p, err := PCA(f, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantVar := []float64{2 * a * a / 3, 2 * b * b / 3, 0}
	for i, w := range wantVar {
		if math.Abs(p.Variance[i]-w) > 1e-5 {
			t.Errorf("variance %d = %v, want %v", i, p.Variance[i], w)
		}
	}
	if r := p.VarianceRatio[0]; math.Abs(r-a*a/(a*a+b*b)) > 1e-6 {
		t.Errorf("variance ratio %v, want %v", r, a*a/(a*a+b*b))
	}
	for i, want := range [][]float64{u, v} {
		var dot float64
		for j := range want {
			dot += p.Components[i*3+j] * want[j]
		}
		if math.Abs(math.Abs(dot)-1) > 1e-6 {
			t.Errorf("component %d = %v, want ±%v", i, p.Components[i*3:i*3+3], want)
		}
	}
	proj, err := p.Project2(f)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(math.Abs(proj[0][0])-a) > 1e-5 || math.Abs(proj[0][1]) > 1e-5 || math.Abs(math.Abs(proj[2][1])-b) > 1e-5 {
		t.Errorf("projections %v", proj)
	}
}

func TestPCASampledCovariance(t *testing.T) {
	// z ~ N(0, I) in 4-D, x = Q·diag(σ)·z with Q a rotation in the (0,1)
	// and (2,3) planes: the covariance has eigenvectors Q's columns and
	// eigenvalues σ².
	const n = 20000
	sigma := []float64{3, 2, 1, 0.5}
	c1, s1 := math.Cos(0.3), math.Sin(0.3)
	c2, s2 := math.Cos(1.1), math.Sin(1.1)
	q := [4][4]float64{ // columns are the eigenvectors
		{c1, -s1, 0, 0},
		{s1, c1, 0, 0},
		{0, 0, c2, -s2},
		{0, 0, s2, c2},
	}
	z := make([]float32, n*4)
	rng.FillNormal(z, rng.Key{Seed: 3, Stream: rng.StreamEval, Seq: 77})
	f := Features{X: make([]float32, n*4), N: n, D: 4}
	for i := 0; i < n; i++ {
		for r := 0; r < 4; r++ {
			var s float64
			for c := 0; c < 4; c++ {
				s += q[r][c] * sigma[c] * float64(z[i*4+c])
			}
			f.X[i*4+r] = float32(s + 5) // offset: the mean must be removed
		}
	}
	p, err := PCA(f, 4)
	if err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 4; c++ {
		if w := sigma[c] * sigma[c]; math.Abs(p.Variance[c]-w)/w > 0.04 {
			t.Errorf("variance %d = %v, want ≈ %v", c, p.Variance[c], w)
		}
		var dot float64
		for r := 0; r < 4; r++ {
			dot += p.Components[c*4+r] * q[r][c]
		}
		if math.Abs(dot) < 0.995 {
			t.Errorf("component %d = %v, |cos| to the true axis %v", c, p.Components[c*4:c*4+4], math.Abs(dot))
		}
		if math.Abs(p.Mean[c]-5) > 0.1 {
			t.Errorf("mean %d = %v, want ≈ 5", c, p.Mean[c])
		}
	}
	if _, err := PCA(f, 5); err == nil {
		t.Errorf("k > D: no error")
	}
	if _, err := p.Project(Features{X: []float32{1, 2}, N: 1, D: 2}); err == nil {
		t.Errorf("projecting 2-D features on 4-D components: no error")
	}
}

// BenchmarkPCA times PCA of 10,000×256 features (a test set's codes).
func BenchmarkPCA(b *testing.B) {
	f := gaussianClusters(10000, 256, 10, 2, 30)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := PCA(f, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDistanceRatios times the paper's pair counts on 10,000×256
// features.
func BenchmarkDistanceRatios(b *testing.B) {
	f := gaussianClusters(10000, 256, 10, 2, 31)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DistanceRatios(f, f, PairConfig{}, evalKey); err != nil {
			b.Fatal(err)
		}
	}
}
