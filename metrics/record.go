// Package metrics records what a pad run measures: one JSON object per line
// in runs/<name>/metrics.jsonl, mirrored as scalars into a TensorBoard event
// file in the same directory so that `tensorboard --logdir runs` shows the
// curves while a run is going.
package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Record kinds.
const (
	// KindTrain is one logged window of training iterations.
	KindTrain = "train"
	// KindEpoch holds the per-epoch means of the training measures.
	KindEpoch = "epoch"
	// KindProbe is a linear-probe result.
	KindProbe = "probe"
	// KindOcclusion is the probe's accuracy on occluded test images at one
	// occlusion probability P and tile size Tile.
	KindOcclusion = "occlusion"
	// KindLatent holds the latent-organisation ratios.
	KindLatent = "latent"
)

// Record is one line of a run's metrics.jsonl.
//
// Kind, Epoch, Iter and Time are always written. Every measure is a
// pointer: nil means "not measured in this record" and is left out of the
// JSON, while a measured 0 is written as 0. Non-finite measures (a loss that
// diverged) are written as the JSON strings "NaN", "Inf" and "-Inf", which
// are read back as the same values. Unknown keys are ignored on reading.
type Record struct {
	// Kind says what the record holds: KindTrain, KindEpoch, KindProbe,
	// KindOcclusion or KindLatent.
	Kind string
	// Epoch is the number of completed epochs (0 = before training).
	Epoch int
	// Iter is the global iteration count.
	Iter int
	// Time is the number of seconds since the run started.
	Time float64

	// WakeRec is the Wake reconstruction loss (MSE, before weighting).
	WakeRec *float64
	// NREMRec is the NREM latent reconstruction loss (MSE).
	NREMRec *float64
	// KL is the Wake KL term.
	KL *float64
	// DLoss is the discriminator loss as the reference logs it: BCE on
	// real images plus BCE on REM dreams.
	DLoss *float64
	// GLoss is the generator loss as the reference logs it: −BCE on REM
	// dreams.
	GLoss *float64
	// DX is the mean discriminator output on real images in Wake.
	DX *float64
	// DGZ is the mean discriminator output on REM dreams.
	DGZ *float64
	// LatentNorm is the mean Euclidean norm of z.
	LatentNorm *float64
	// ItPerSec is the training speed in iterations per second.
	ItPerSec *float64

	// TrainAcc is the probe's train accuracy in % (mean per-batch accuracy
	// of its last training epoch).
	TrainAcc *float64
	// TestAcc is the probe's test accuracy in % as the reference reports
	// it (mean of per-batch accuracies, last partial batch dropped). In
	// occlusion records it is the accuracy at occlusion probability P.
	TestAcc *float64
	// TestAccAll is the probe's plain accuracy in % over every test image.
	TestAccAll *float64

	// P is the occlusion probability of an occlusion record.
	P *float64
	// Tile is the occlusion tile size of an occlusion record (0 = not
	// set; valid tile sizes are at least 1).
	Tile int

	// IntraInter is the intra-class / inter-class mean distance ratio.
	IntraInter *float64
	// OccInter is the clean–occluded / inter-class mean distance ratio.
	OccInter *float64
}

// F returns a pointer to v, for filling the measures of a Record.
func F(v float64) *float64 { return &v }

// measure names one pointer field of a Record by its JSON key.
type measure struct {
	key string
	ptr **float64
}

// measures lists the pointer fields of r in their JSON order.
func (r *Record) measures() []measure {
	return []measure{
		{"wake_rec", &r.WakeRec},
		{"nrem_rec", &r.NREMRec},
		{"kl", &r.KL},
		{"d_loss", &r.DLoss},
		{"g_loss", &r.GLoss},
		{"d_x", &r.DX},
		{"d_g_z", &r.DGZ},
		{"latent_norm", &r.LatentNorm},
		{"it_per_sec", &r.ItPerSec},
		{"train_acc", &r.TrainAcc},
		{"test_acc", &r.TestAcc},
		{"test_acc_all", &r.TestAccAll},
		{"p", &r.P},
		{"intra_inter", &r.IntraInter},
		{"occ_inter", &r.OccInter},
	}
}

// appendFloat writes v as a JSON number, or as a string for NaN and ±Inf.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// parseFloat reads a JSON number, or one of the strings appendFloat writes.
func parseFloat(raw json.RawMessage) (float64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Inf", "+Inf", "Infinity":
			return math.Inf(1), nil
		case "-Inf", "-Infinity":
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, err
	}
	return v, nil
}

// MarshalJSON encodes r as one JSON object (see Record for the rules).
func (r Record) MarshalJSON() ([]byte, error) {
	kind, err := json.Marshal(r.Kind)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"kind":`...)
	b = append(b, kind...)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendInt(b, int64(r.Epoch), 10)
	b = append(b, `,"iter":`...)
	b = strconv.AppendInt(b, int64(r.Iter), 10)
	b = append(b, `,"time":`...)
	b = appendFloat(b, r.Time)
	for _, m := range r.measures() {
		if *m.ptr == nil {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, m.key...)
		b = append(b, '"', ':')
		b = appendFloat(b, **m.ptr)
	}
	if r.Tile != 0 {
		b = append(b, `,"tile":`...)
		b = strconv.AppendInt(b, int64(r.Tile), 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes one JSON object written by MarshalJSON; unknown
// keys are ignored and null measures are left nil.
func (r *Record) UnmarshalJSON(data []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	if obj == nil {
		return fmt.Errorf("record is not a JSON object")
	}
	var out Record
	isNull := func(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
	if raw, ok := obj["kind"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &out.Kind); err != nil {
			return fmt.Errorf("kind: %w", err)
		}
	}
	ints := []struct {
		key string
		p   *int
	}{{"epoch", &out.Epoch}, {"iter", &out.Iter}, {"tile", &out.Tile}}
	for _, f := range ints {
		if raw, ok := obj[f.key]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, f.p); err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	if raw, ok := obj["time"]; ok && !isNull(raw) {
		v, err := parseFloat(raw)
		if err != nil {
			return fmt.Errorf("time: %w", err)
		}
		out.Time = v
	}
	for _, m := range out.measures() {
		raw, ok := obj[m.key]
		if !ok || isNull(raw) {
			continue
		}
		v, err := parseFloat(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", m.key, err)
		}
		*m.ptr = F(v)
	}
	*r = out
	return nil
}
