package eval

import (
	"errors"
	"fmt"
	"math"

	"github.com/pad-dreaming/pad/internal/rng"
)

// PairConfig sets how many pairs DistanceRatios draws. Zero fields take
// the paper's values (see DefaultPairConfig).
type PairConfig struct {
	// PerClass is the number of same-class pairs drawn in each class (1000).
	PerClass int
	// Inter is the number of different-class pairs (10,000).
	Inter int
	// Occluded is the number of images whose clean and occluded features
	// are compared (10,000; all images when there are fewer).
	Occluded int
}

// DefaultPairConfig returns the paper's pair counts.
func DefaultPairConfig() PairConfig {
	return PairConfig{PerClass: 1000, Inter: 10000, Occluded: 10000}
}

// LatentMetrics are the paper's measures of latent organisation. Distances
// are Euclidean, between feature vectors.
type LatentMetrics struct {
	// Intra is the mean distance of same-class pairs (pooled over classes,
	// each class contributing the same number of pairs).
	Intra float64
	// Inter is the mean distance of different-class pairs.
	Inter float64
	// Occ is the mean distance between an image's clean and occluded
	// features; NaN when no occluded features were given.
	Occ float64
	// IntraInter is Intra / Inter: below 1 when classes form clusters.
	IntraInter float64
	// OccInter is Occ / Inter: small when occlusion moves an image's code
	// little compared with the distance between classes; NaN when no
	// occluded features were given.
	OccInter float64
	// Classes is the number of classes with at least two images, the
	// classes that contributed same-class pairs.
	Classes int
}

// Regions of the index space of the caller's key, so that the three kinds
// of pairs draw from disjoint parts of the stream (Key.Intn index i uses
// block i/2 and blocks are counted with 32 bits).
const (
	intraDraws uint64 = 0       // same-class pairs: 0 .. 2^32−1
	interDraws uint64 = 1 << 32 // different-class pairs: 2^32 .. 3·2^31−1
	occDraws   uint64 = 3 << 31 // occluded images: 3·2^31 ..
)

// DistanceRatios computes the latent-organisation ratios of the paper:
// intra-class / inter-class mean distance over pairs.PerClass random pairs
// of distinct images in every class and pairs.Inter random pairs of images
// of different classes, and clean–occluded / inter-class mean distance over
// pairs.Occluded random images (drawn without replacement), the distance
// of an image being the one between its row in clean and in occluded.
// Pass a zero Features as occluded to skip the occlusion ratio. All draws
// come from key (with the same key, the same result).
func DistanceRatios(clean, occluded Features, pairs PairConfig, key rng.Key) (LatentMetrics, error) {
	pairs, err := pairs.withDefaults()
	if err != nil {
		return LatentMetrics{}, err
	}
	hasOcc, err := checkLatentInput(clean, occluded)
	if err != nil {
		return LatentMetrics{}, err
	}
	m := LatentMetrics{Occ: math.NaN(), OccInter: math.NaN()}
	byClass := classMembers(clean.Labels)
	if m.Intra, m.Classes = sameClassDistance(clean, byClass, pairs.PerClass, key); m.Classes == 0 {
		return LatentMetrics{}, errors.New("latent: no class has two images")
	}
	if m.Classes == 1 && len(byClass[clean.Labels[0]]) == clean.N {
		return LatentMetrics{}, errors.New("latent: all images have the same class")
	}
	if m.Inter, err = differentClassDistance(clean, pairs.Inter, key); err != nil {
		return LatentMetrics{}, err
	}
	m.IntraInter = m.Intra / m.Inter
	if hasOcc && clean.N > 0 {
		if occ, ok := occludedDistance(clean, occluded, pairs.Occluded, key); ok {
			m.Occ = occ
			m.OccInter = m.Occ / m.Inter
		}
	}
	return m, nil
}

// withDefaults fills zero counts with the paper's and rejects negative
// ones.
func (pairs PairConfig) withDefaults() (PairConfig, error) {
	d := DefaultPairConfig()
	if pairs.PerClass == 0 {
		pairs.PerClass = d.PerClass
	}
	if pairs.Inter == 0 {
		pairs.Inter = d.Inter
	}
	if pairs.Occluded == 0 {
		pairs.Occluded = d.Occluded
	}
	if pairs.PerClass < 0 || pairs.Inter < 0 || pairs.Occluded < 0 {
		return pairs, fmt.Errorf("latent: negative pair counts %+v", pairs)
	}
	return pairs, nil
}

// checkLatentInput validates the features of DistanceRatios and reports
// whether occluded features were given (any but a zero Features).
func checkLatentInput(clean, occluded Features) (hasOcc bool, err error) {
	if err := clean.Validate(true); err != nil {
		return false, fmt.Errorf("latent: clean %w", err)
	}
	hasOcc = occluded.X != nil || occluded.N != 0
	if hasOcc {
		if err := occluded.Validate(false); err != nil {
			return false, fmt.Errorf("latent: occluded %w", err)
		}
		if occluded.N != clean.N || occluded.D != clean.D {
			return false, fmt.Errorf("latent: occluded features are %d×%d, clean %d×%d", occluded.N, occluded.D, clean.N, clean.D)
		}
	}
	return hasOcc, nil
}

// classMembers returns the rows of each of the 256 labels, in row order.
func classMembers(labels []uint8) [][]int {
	byClass := make([][]int, 256)
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	return byClass
}

// sameClassDistance returns the mean distance of perClass random pairs of
// distinct rows in every class that has two rows or more, drawn class by
// class from the intraDraws region of key, and the number of such classes
// (0, with a zero mean, when there is none).
func sameClassDistance(clean Features, byClass [][]int, perClass int, key rng.Key) (mean float64, classes int) {
	next := intraDraws
	var sum float64
	var n int
	for _, members := range byClass {
		size := len(members)
		if size < 2 {
			continue
		}
		classes++
		for p := 0; p < perClass; p++ {
			i := key.Intn(next, size)
			j := key.Intn(next+1, size-1) // a different member: skip i
			next += 2
			if j >= i {
				j++
			}
			sum += distance(clean.Row(members[i]), clean.Row(members[j]))
			n++
		}
	}
	if n > 0 {
		mean = sum / float64(n)
	}
	return mean, classes
}

// differentClassDistance returns the mean distance of count pairs drawn
// uniformly among the pairs of rows whose labels differ (same-class draws
// are rejected), from the interDraws region of key. It fails when the
// region runs out (1000 draws per pair on average) before count pairs are
// found.
func differentClassDistance(clean Features, count int, key rng.Key) (float64, error) {
	next := interDraws
	var sum float64
	limit := min(interDraws+uint64(count)*2*1000, occDraws)
	for p := 0; p < count; {
		if next >= limit {
			return 0, errors.New("latent: too few different-class pairs to draw from")
		}
		i, j := key.Intn(next, clean.N), key.Intn(next+1, clean.N)
		next += 2
		if clean.Labels[i] == clean.Labels[j] {
			continue
		}
		sum += distance(clean.Row(i), clean.Row(j))
		p++
	}
	if count > 0 {
		return sum / float64(count), nil
	}
	return 0, nil
}

// occludedDistance returns the mean distance between the clean and the
// occluded row of min(count, clean.N) rows drawn without replacement from
// the occDraws region of key; ok is false when no row is drawn.
func occludedDistance(clean, occluded Features, count int, key rng.Key) (mean float64, ok bool) {
	idx := make([]int, clean.N)
	for i := range idx {
		idx[i] = i
	}
	count = min(count, clean.N)
	// Partial Fisher–Yates: the first count entries are a uniform sample
	// without replacement.
	for k := 0; k < count; k++ {
		j := k + key.Intn(occDraws+uint64(k), clean.N-k)
		idx[k], idx[j] = idx[j], idx[k]
	}
	var sum float64
	for _, i := range idx[:count] {
		sum += distance(clean.Row(i), occluded.Row(i))
	}
	if count == 0 {
		return 0, false
	}
	return sum / float64(count), true
}

// distance returns the Euclidean distance of a and b, summed in float64.
func distance(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		d := float64(v) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
