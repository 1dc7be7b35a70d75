// Package conditions is the table of PAD's training conditions: the
// paper's five (full PAD and its ablations) and the appendix variants, as
// data about the learning cycle's schedule — loss weights, wake noise, how
// REM mixes memories, the phase order. Package phases runs a condition;
// package configs names one. It imports nothing of pad's, so both can use
// it.
package conditions

import (
	"fmt"
	"sort"
	"strings"
)

// Mix says how REM builds its latent z_mix from the episodic memories and
// noise n (λ = Condition.Lambda, 0.5 in the paper).
type Mix int

const (
	// MixMemories is the paper's REM: λ(λz + (1−λ)z_old) + (1−λ)n, where
	// z_old is the previous iteration's memory; the first iteration of every
	// epoch has no z_old and uses λz + (1−λ)n.
	MixMemories Mix = iota
	// MixOne is "w/o memory mix": λz + (1−λ)n at every iteration.
	MixOne
	// MixNoise is the appendix variant "REM from noise only": z_mix = n.
	MixNoise
	// MixNoNoise is the appendix variant "REM from memory mix only":
	// λz + (1−λ)z_old with no noise (z alone on the first iteration of an
	// epoch).
	MixNoNoise
)

var mixNames = map[Mix]string{MixMemories: "memories+noise", MixOne: "memory+noise", MixNoise: "noise", MixNoNoise: "memories"}

func (m Mix) String() string { return mixNames[m] }

// Condition is one configuration of the learning cycle.
type Condition struct {
	Name        string
	Description string
	W           float64 // weight of Wake's reconstruction loss
	N           float64 // weight of NREM's latent loss (0: NREM learns nothing)
	R           float64 // adversarial learning on when > 0 (a switch, as in the reference; it scales nothing)
	Epsilon     float64 // std of the noise added to z before G in Wake
	Mix         Mix     // how REM mixes memories and noise
	Lambda      float64 // mixing factor λ
	REMFirst    bool    // run REM before NREM (order Wake–REM–NREM)
	NREMMix     bool    // NREM replays λz + (1−λ)z_old instead of z
}

// The paper's five conditions (pad-reference, "Conditions") and the four
// appendix variants, by name.
var conditions = map[string]Condition{
	"pad":             {Description: "full PAD: Wake, NREM, REM with memory mix", W: 1, N: 1, R: 1},
	"no-memory-mix":   {Description: "w/o memory mix: REM mixes one memory with noise", W: 1, N: 1, R: 1, Mix: MixOne},
	"no-rem":          {Description: "w/o REM: no adversarial dreaming; NREM weight 0.5 and wake noise 0.5 as in the paper", W: 1, N: 0.5, R: 0, Epsilon: 0.5},
	"no-nrem":         {Description: "w/o NREM: no perturbed dreaming", W: 1, N: 0, R: 1},
	"wake-only":       {Description: "Wake only: reconstruction and KL, wake noise 0.5", W: 1, N: 0, R: 0, Epsilon: 0.5},
	"rem-noise-only":  {Description: "appendix: REM dreams from noise only", W: 1, N: 1, R: 1, Mix: MixNoise},
	"rem-memory-only": {Description: "appendix: REM dreams from a mix of two memories, no noise", W: 1, N: 1, R: 1, Mix: MixNoNoise},
	"wake-rem-nrem":   {Description: "appendix: phase order Wake–REM–NREM", W: 1, N: 1, R: 1, REMFirst: true},
	"nrem-mix":        {Description: "appendix: NREM replays a convex mix of two memories", W: 1, N: 1, R: 1, NREMMix: true},
}

// Names lists the known conditions, the paper's five first.
func Names() []string {
	first := []string{"pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only"}
	var rest []string
	for n := range conditions {
		if !contains(first, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(first, rest...)
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// Lookup returns the condition called name with λ = 0.5.
func Lookup(name string) (Condition, error) {
	c, ok := conditions[name]
	if !ok {
		return Condition{}, fmt.Errorf("unknown condition %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	c.Name = name
	c.Lambda = 0.5
	return c, nil
}

// Validate reports weights no cycle can use.
func (c Condition) Validate() error {
	if c.W < 0 || c.N < 0 || c.R < 0 || c.Epsilon < 0 {
		return fmt.Errorf("condition %q: weights W=%v N=%v R=%v and wake noise %v must not be negative", c.Name, c.W, c.N, c.R, c.Epsilon)
	}
	if c.Lambda < 0 || c.Lambda > 1 {
		return fmt.Errorf("condition %q: λ = %v outside [0, 1]", c.Name, c.Lambda)
	}
	return nil
}
