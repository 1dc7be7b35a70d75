// Package eval measures what a frozen PAD encoder has learnt:
//
//   - the evaluation protocol of pad eval (Evaluator, Evaluations): a
//     checkpoint's encoder and data sets in, results and the run's eval/
//     files out, each set's clean features computed once and shared;
//   - the frozen encoder that turns data sets into feature matrices (the
//     latent codes z = E_z(x), FrozenEncoder), clean or occluded;
//   - the linear probe of the paper's evaluation protocol (TrainProbe,
//     RunProbe), built with gorgonia;
//   - the latent organisation ratios (DistanceRatios) and PCA;
//   - figures (PlotPCA, PlotLosses, PlotAccuracy, Grid, Filters) and .npy
//     export (SaveNpy) for outside analysis;
//   - the multi-seed report over run directories (Report).
//
// Apart from the frozen encoder, nothing here knows how a model computes
// its features or how it is trained.
package eval

import (
	"fmt"
	"math"
)

// Features is a row-major N×D matrix of feature vectors (one row per image)
// with one class label per row.
type Features struct {
	// X holds the N×D values, row i at X[i*D : (i+1)*D].
	X []float32
	// N is the number of rows (images).
	N int
	// D is the number of columns (feature dimensions, nz for PAD's z).
	D int
	// Labels holds the class of each row; it may be nil where no function
	// that is called needs labels (PCA, Project).
	Labels []uint8
}

// Row returns row i of f (a sub-slice of f.X, not a copy).
func (f Features) Row(i int) []float32 { return f.X[i*f.D : (i+1)*f.D] }

// Validate checks that the sizes agree, that every value is finite and,
// when needLabels is set, that there is one label per row.
func (f Features) Validate(needLabels bool) error {
	if f.N < 0 || f.D <= 0 {
		return fmt.Errorf("features: invalid shape %d×%d", f.N, f.D)
	}
	if len(f.X) != f.N*f.D {
		return fmt.Errorf("features: %d values for shape %d×%d (want %d)", len(f.X), f.N, f.D, f.N*f.D)
	}
	if needLabels && len(f.Labels) != f.N {
		return fmt.Errorf("features: %d labels for %d rows", len(f.Labels), f.N)
	}
	for i, v := range f.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("features: row %d column %d is %v", i/f.D, i%f.D, v)
		}
	}
	return nil
}

// checkLabels reports an error if a label is not below classes.
func (f Features) checkLabels(classes int) error {
	for i, l := range f.Labels {
		if int(l) >= classes {
			return fmt.Errorf("features: row %d has label %d, outside 0..%d", i, l, classes-1)
		}
	}
	return nil
}
