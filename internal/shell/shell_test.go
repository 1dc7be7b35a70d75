package shell

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"train.epochs=50":  "train.epochs=50",
		"":                 "''",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"$(x)":             "'$(x)'",
		"data/my set":      "'data/my set'",
		"/runs/s1,gpu:0@x": "/runs/s1,gpu:0@x",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// What Join writes, a shell reads back as the same words.
func TestJoinRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	args := []string{"plain", "", "a b", "it's", "$(x) `y`", `back\slash`, "tab\there", "new\nline", "*"}
	out, err := exec.Command(sh, "-c", `for a in `+Join(args)+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	start := 0
	for i, c := range out {
		if c == 0 {
			got = append(got, string(out[start:i]))
			start = i + 1
		}
	}
	if len(got) != len(args) {
		t.Fatalf("sh read %d words %q, want %d", len(got), got, len(args))
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("word %d: sh read %q, want %q", i, got[i], args[i])
		}
	}
}
