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
		return LatentMetrics{}, fmt.Errorf("latent: negative pair counts %+v", pairs)
	}
	if err := clean.Validate(true); err != nil {
		return LatentMetrics{}, fmt.Errorf("latent: clean %w", err)
	}
	hasOcc := occluded.X != nil || occluded.N != 0
	if hasOcc {
		if err := occluded.Validate(false); err != nil {
			return LatentMetrics{}, fmt.Errorf("latent: occluded %w", err)
		}
		if occluded.N != clean.N || occluded.D != clean.D {
			return LatentMetrics{}, fmt.Errorf("latent: occluded features are %d×%d, clean %d×%d", occluded.N, occluded.D, clean.N, clean.D)
		}
	}

	var byClass [256][]int
	for i, l := range clean.Labels {
		byClass[l] = append(byClass[l], i)
	}
	m := LatentMetrics{Occ: math.NaN(), OccInter: math.NaN()}

	// Same-class pairs of distinct images, class by class.
	next := intraDraws
	var intraSum float64
	var intraN int
	for _, members := range byClass {
		n := len(members)
		if n < 2 {
			continue
		}
		m.Classes++
		for p := 0; p < pairs.PerClass; p++ {
			i := key.Intn(next, n)
			j := key.Intn(next+1, n-1) // a different member: skip i
			next += 2
			if j >= i {
				j++
			}
			intraSum += distance(clean.Row(members[i]), clean.Row(members[j]))
			intraN++
		}
	}
	if m.Classes == 0 {
		return LatentMetrics{}, errors.New("latent: no class has two images")
	}

	// Different-class pairs: uniform over all pairs of images whose labels
	// differ (rejection of same-class draws).
	if m.Classes == 1 && len(byClass[clean.Labels[0]]) == clean.N {
		return LatentMetrics{}, errors.New("latent: all images have the same class")
	}
	next = interDraws
	var interSum float64
	limit := min(interDraws+uint64(pairs.Inter)*2*1000, occDraws)
	for p := 0; p < pairs.Inter; {
		if next >= limit {
			return LatentMetrics{}, errors.New("latent: too few different-class pairs to draw from")
		}
		i, j := key.Intn(next, clean.N), key.Intn(next+1, clean.N)
		next += 2
		if clean.Labels[i] == clean.Labels[j] {
			continue
		}
		interSum += distance(clean.Row(i), clean.Row(j))
		p++
	}
	if intraN > 0 {
		m.Intra = intraSum / float64(intraN)
	}
	if pairs.Inter > 0 {
		m.Inter = interSum / float64(pairs.Inter)
	}
	m.IntraInter = m.Intra / m.Inter

	if hasOcc && clean.N > 0 {
		idx := make([]int, clean.N)
		for i := range idx {
			idx[i] = i
		}
		count := min(pairs.Occluded, clean.N)
		// Partial Fisher–Yates: the first count entries are a uniform
		// sample without replacement.
		for k := 0; k < count; k++ {
			j := k + key.Intn(occDraws+uint64(k), clean.N-k)
			idx[k], idx[j] = idx[j], idx[k]
		}
		var occSum float64
		for _, i := range idx[:count] {
			occSum += distance(clean.Row(i), occluded.Row(i))
		}
		if count > 0 {
			m.Occ = occSum / float64(count)
			m.OccInter = m.Occ / m.Inter
		}
	}
	return m, nil
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
