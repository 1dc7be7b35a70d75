package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/train"
)

const reportUsage = `
Usage: pad report [--out DIR] RUN...

Aggregates runs into the paper's Appendix 1—table 1 form: the final
linear-probe test accuracy, mean ± SEM over seeds, of each dataset and
condition. A RUN that is a folder of runs (e.g. runs/) stands for all the
runs in it.

Runs are grouped by what their config.toml says, not by their folder's
name: the dataset, the condition, and the settings that make runs
comparable (data limits, model size, optimiser, epochs, probe). Runs that
differ in such a setting are separate rows, and the row says what differs.
Runs without a config.toml or without probe results, and a second run of
the same settings and seed, are listed as skipped with the reason; a name
of the form <dataset>-<condition>-s<seed> that disagrees with its config
is a warning. Only when no run can be reported is that an error.

Writes report.md, report.csv and accuracy-vs-epoch curves with SEM bands
(accuracy-<dataset>.png) into --out; by default report/ in the folder of
runs given first (for a RUN that is a single run: the folder holding it).
`

// runMarkers are the files that make a folder a run directory.
var runMarkers = []string{metrics.FileName, "config.toml", train.CheckpointName}

// isRunDir reports whether dir holds one of the files of a run.
func isRunDir(dir string) bool {
	for _, m := range runMarkers {
		if st, err := os.Stat(filepath.Join(dir, m)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func cmdReport(args []string, e *env) error {
	fs := newFlags(e, "report", reportUsage)
	out := fs.String("out", "", "output directory (default: report/ in the first folder of runs)")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("report: name at least one run directory (or a directory of runs)")
	}
	if e.checkOnly {
		return errChecked
	}
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		key := filepath.Clean(d)
		if abs, err := filepath.Abs(d); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			dirs = append(dirs, d)
		}
	}
	for i, a := range fs.Args() {
		if isRunDir(a) {
			add(a)
			if i == 0 && *out == "" {
				*out = filepath.Join(filepath.Dir(filepath.Clean(a)), "report")
			}
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		found := 0
		for _, en := range entries {
			if d := filepath.Join(a, en.Name()); en.IsDir() && isRunDir(d) {
				add(d)
				found++
			}
		}
		if found == 0 {
			return fmt.Errorf("report: %s is neither a run (no %s or config.toml) nor a directory of runs", a, metrics.FileName)
		}
		if i == 0 && *out == "" {
			*out = filepath.Join(a, "report")
		}
	}
	var runs []eval.RunSummary
	for _, d := range dirs {
		r, skipped, err := eval.LoadRun(d)
		if err != nil {
			// One unreadable run does not stop the report: it is listed.
			r = eval.RunSummary{Name: filepath.Base(filepath.Clean(d)), Dir: d, Problem: strings.TrimPrefix(err.Error(), "report: ")}
		}
		if skipped > 0 {
			fmt.Fprintf(e.stderr, "notice: %s: incomplete last line of %s skipped\n", d, metrics.FileName)
		}
		runs = append(runs, r)
	}
	res, err := eval.Report(runs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	md, csv := res.Markdown(), res.CSV()
	mdPath, csvPath := filepath.Join(*out, "report.md"), filepath.Join(*out, "report.csv")
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(csvPath, []byte(csv), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	pngs, err := res.PlotCurves(*out)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprint(e.stdout, md)
	fmt.Fprintf(e.stdout, "\nwrote %s, %s", mdPath, csvPath)
	for _, p := range pngs {
		fmt.Fprintf(e.stdout, ", %s", p)
	}
	fmt.Fprintln(e.stdout)
	return nil
}
