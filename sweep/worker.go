package sweep

import (
	"fmt"
	"io"
	"strings"
)

// Worker is the command every job of a sweep runs: `pad sweep run --index
// I` followed by the sweep's flags, so that the worker finds its run, and
// its run directory, from nothing but I.
type Worker struct {
	Spec Spec
	// RunsDir is --runs as the worker sees it (inside the container for
	// Kubernetes).
	RunsDir string
	// Device is --device for the worker: "cuda" for GPU jobs (a node
	// without a usable GPU then fails instead of training on its CPU for
	// days), "cpu", or "" for the config's device.kind.
	Device string
}

// Args returns the worker's arguments after the program name, with index
// in place of the run index (a number, or an engine's variable such as
// $(JOB_COMPLETION_INDEX)).
func (w Worker) Args(index string) []string {
	args := append([]string{"sweep", "run", "--index", index}, w.Spec.Args()...)
	if w.RunsDir != "" {
		args = append(args, "--runs", w.RunsDir)
	}
	if w.Device != "" {
		args = append(args, "--device", w.Device)
	}
	return args
}

// maxListed bounds the index → run table written into generated files.
const maxListed = 500

// writeRunTable writes the index → run table as comment lines starting
// with prefix ("# ").
func writeRunTable(w io.Writer, s Spec, prefix string) {
	n := s.Len()
	fmt.Fprintf(w, "%sIndex → run: i = (d·%d + c)·%d + (seed−%d), d and c the positions in --datasets and --conditions\n",
		prefix, len(s.Conditions), s.Seeds, s.SeedStart)
	width := len(fmt.Sprint(n - 1))
	for _, r := range s.Runs() {
		if r.Index == maxListed {
			fmt.Fprintf(w, "%s  … %d more (pad sweep … --emit list)\n", prefix, n-maxListed)
			break
		}
		fmt.Fprintf(w, "%s  %*d  %s\n", prefix, width, r.Index, r.Name())
	}
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellJoin joins args into a POSIX shell command line, quoting where
// needed.
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
