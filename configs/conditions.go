package configs

import (
	"fmt"

	"github.com/pad-dreaming/pad/conditions"
)

// Weights are the loss weights and the wake noise of a training condition
// (the columns W, N, R and ε of the paper's conditions table).
type Weights struct {
	// Wake is W, the weight of the wake reconstruction loss.
	Wake float64
	// NREM is N, the weight of the NREM latent-recovery loss.
	NREM float64
	// REM is R: adversarial learning (REM's updates and Wake's "real"
	// loss) is on when R > 0. As in the reference, R is a switch; its value
	// does not scale the losses.
	REM float64
	// WakeNoise is ε, the standard deviation of the noise added to z
	// before the wake reconstruction.
	WakeNoise float64
}

// Conditions returns the names of the training conditions, the paper's
// five first, then the appendix variants. The conditions themselves are
// defined once, in package conditions.
func Conditions() []string { return conditions.Names() }

// ConditionWeights returns the weights W, N, R and ε of a condition, and
// false when there is no condition of that name.
func ConditionWeights(name string) (Weights, bool) {
	c, err := conditions.Lookup(name)
	if err != nil {
		return Weights{}, false
	}
	return Weights{Wake: c.W, NREM: c.N, REM: c.R, WakeNoise: c.Epsilon}, true
}

// Weights returns the weights the run uses: the condition's, replaced by
// WakeWeight, NREMWeight, REMWeight and WakeNoise where those are set.
func (t Train) Weights() (Weights, error) {
	w, ok := ConditionWeights(t.Condition)
	if !ok {
		return Weights{}, fmt.Errorf("train.condition = %q: unknown condition%s", t.Condition, oneOf(Conditions()))
	}
	for _, o := range []struct {
		src *float64
		dst *float64
	}{
		{t.WakeWeight, &w.Wake},
		{t.NREMWeight, &w.NREM},
		{t.REMWeight, &w.REM},
		{t.WakeNoise, &w.WakeNoise},
	} {
		if o.src != nil {
			*o.dst = *o.src
		}
	}
	return w, nil
}

// Datasets returns the names data.dataset accepts.
func Datasets() []string {
	return []string{"embedded", "mnist", "fashion", "cifar10", "svhn", "folder"}
}

// DeviceKinds returns the names device.kind accepts.
func DeviceKinds() []string { return []string{"auto", "cpu", "cuda"} }

// Precisions returns the names device.precision accepts.
func Precisions() []string { return []string{"tf32", "fp32"} }
