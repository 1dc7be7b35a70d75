package eval

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// PCAResult holds the principal components of a feature matrix.
type PCAResult struct {
	// D is the feature dimension.
	D int
	// Mean is the per-column mean the data are centred by (length D).
	Mean []float64
	// Components holds the k unit-length principal axes, row-major k×D,
	// ordered by decreasing variance. The sign of each axis is fixed so
	// that its entry of largest magnitude is positive.
	Components []float64
	// Variance is the variance of the data along each component (the
	// eigenvalues of the covariance, N−1 denominator).
	Variance []float64
	// VarianceRatio is each component's share of the total variance.
	VarianceRatio []float64
}

// pcaChunk is the number of rows added to the covariance at a time.
const pcaChunk = 2048

// PCA computes the first k principal components of the rows of f from the
// eigen-decomposition of their covariance matrix (gonum's EigenSym).
func PCA(f Features, k int) (*PCAResult, error) {
	if err := f.Validate(false); err != nil {
		return nil, fmt.Errorf("pca: %w", err)
	}
	if k < 1 || k > f.D {
		return nil, fmt.Errorf("pca: %d components of %d-dimensional features", k, f.D)
	}
	if f.N < 2 {
		return nil, fmt.Errorf("pca: %d rows, need at least 2", f.N)
	}
	d := f.D
	mean := make([]float64, d)
	for i := 0; i < f.N; i++ {
		for j, v := range f.Row(i) {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(f.N)
	}
	// Covariance, accumulated chunk by chunk to bound the memory.
	cov := mat.NewSymDense(d, nil)
	buf := make([]float64, pcaChunk*d)
	for start := 0; start < f.N; start += pcaChunk {
		rows := min(pcaChunk, f.N-start)
		for i := 0; i < rows; i++ {
			for j, v := range f.Row(start + i) {
				buf[i*d+j] = float64(v) - mean[j]
			}
		}
		chunk := mat.NewDense(rows, d, buf[:rows*d])
		cov.SymRankK(cov, 1/float64(f.N-1), chunk.T())
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, errors.New("pca: eigen-decomposition of the covariance did not converge")
	}
	values := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return values[order[a]] > values[order[b]] })
	var total float64
	for _, v := range values {
		total += math.Max(v, 0)
	}
	res := &PCAResult{D: d, Mean: mean, Components: make([]float64, k*d), Variance: make([]float64, k), VarianceRatio: make([]float64, k)}
	for c := 0; c < k; c++ {
		col := order[c]
		axis := res.Components[c*d : (c+1)*d]
		big := 0
		for j := range axis {
			axis[j] = vecs.At(j, col)
			if math.Abs(axis[j]) > math.Abs(axis[big]) {
				big = j
			}
		}
		if axis[big] < 0 {
			for j := range axis {
				axis[j] = -axis[j]
			}
		}
		res.Variance[c] = math.Max(values[col], 0)
		if total > 0 {
			res.VarianceRatio[c] = res.Variance[c] / total
		}
	}
	return res, nil
}

// K returns the number of components.
func (p *PCAResult) K() int { return len(p.Variance) }

// Project returns the coordinates of every row of f along the components:
// N rows of K values.
func (p *PCAResult) Project(f Features) ([][]float64, error) {
	if p == nil || p.D == 0 || len(p.Components) != p.K()*p.D || len(p.Mean) != p.D {
		return nil, errors.New("pca: not a computed PCA")
	}
	if err := f.Validate(false); err != nil {
		return nil, fmt.Errorf("pca: %w", err)
	}
	if f.D != p.D {
		return nil, fmt.Errorf("pca: features have %d columns, the components %d", f.D, p.D)
	}
	k := p.K()
	out := make([][]float64, f.N)
	centred := make([]float64, p.D)
	for i := range out {
		for j, v := range f.Row(i) {
			centred[j] = float64(v) - p.Mean[j]
		}
		row := make([]float64, k)
		for c := 0; c < k; c++ {
			axis := p.Components[c*p.D : (c+1)*p.D]
			var s float64
			for j, v := range centred {
				s += v * axis[j]
			}
			row[c] = s
		}
		out[i] = row
	}
	return out, nil
}

// Project2 returns the coordinates of every row of f along the first two
// components, the form PlotPCA takes.
func (p *PCAResult) Project2(f Features) ([][2]float64, error) {
	if p == nil || p.K() < 2 {
		return nil, errors.New("pca: fewer than two components")
	}
	rows, err := p.Project(f)
	if err != nil {
		return nil, err
	}
	out := make([][2]float64, len(rows))
	for i, r := range rows {
		out[i] = [2]float64{r[0], r[1]}
	}
	return out, nil
}
