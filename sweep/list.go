package sweep

import (
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
)

// WriteList writes one line per run: index, run name, dataset, condition,
// seed, and the run's state in runsDir (not-started, partial, finished, or
// error when its checkpoint cannot be used), in columns under a header.
func WriteList(w io.Writer, s Spec, runsDir string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "index\trun\tdataset\tcondition\tseed\tstate")
	for _, r := range s.Runs() {
		state := "error"
		if cfg, err := s.Config(r); err == nil {
			if st, err := Check(cfg, filepath.Join(runsDir, r.Name())); err == nil {
				state = st.State.String()
				if st.State == Partial {
					state = fmt.Sprintf("partial(%d/%d)", st.Epoch, st.Epochs)
				}
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.Index, r.Name(), r.Dataset, r.Condition, r.Seed, state)
	}
	return tw.Flush()
}
