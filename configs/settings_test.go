package configs

import (
	"strings"
	"testing"
)

func TestSettingsAndChanges(t *testing.T) {
	c := Default()
	got := map[string]string{}
	for _, s := range c.Settings() {
		got[s.Key] = s.Value
	}
	for k, v := range map[string]string{"name": "", "seed": "1", "data.dataset": "embedded", "model.nf": "64", "train.lr_e": "0.0002",
		"train.wake_weight": "unset", "train.occlusion_per_image": "false", "device.kind": "auto", "eval.probe_lr": "0.2"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	n := c
	n.Model.NZ = 16
	n.Train.Condition = "no-rem"
	var changes []string
	for _, ch := range Changes(c, n, func(k string) bool { return strings.HasPrefix(k, "train.") }) {
		changes = append(changes, ch.String())
	}
	if strings.Join(changes, "; ") != "model.nz 256 → 16" {
		t.Errorf("changes %q", changes)
	}
}

// HashChanges names exactly the keys behind a different Hash: not the
// excluded ones, and the test fraction only where a config is a folder's.
func TestHashChanges(t *testing.T) {
	c := Default()
	n := c
	n.Model.NF = 8
	n.Train.Epochs = c.Train.Epochs + 1
	n.Data.TestFraction = c.Data.TestFraction + 0.1
	var got []string
	for _, ch := range HashChanges(c, n) {
		got = append(got, ch.Key)
	}
	if strings.Join(got, " ") != "model.nf" || c.Hash() == n.Hash() {
		t.Errorf("hash changes %q (hashes %s, %s), want model.nf only", got, c.Hash(), n.Hash())
	}
	n.Data.Dataset = "folder"
	got = got[:0]
	for _, ch := range HashChanges(c, n) {
		got = append(got, ch.Key)
	}
	if strings.Join(got, " ") != "data.dataset data.test_fraction model.nf" {
		t.Errorf("hash changes with a folder %q, want data.dataset, data.test_fraction and model.nf", got)
	}
}
