package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pad-dreaming/pad/eval"
)

const reportUsage = `
Usage: pad report [--out DIR] RUN...

Aggregates runs named <dataset>-<condition>-s<seed> (as pad train names
them) into the paper's Appendix 1—table 1 form: per dataset and condition
the final linear-probe test accuracy, mean ± SEM over seeds. Writes
report.md, report.csv and accuracy-vs-epoch curves with SEM bands
(accuracy-<dataset>.png) into --out. A RUN that is a directory of runs
(e.g. runs/) stands for all the runs in it.
`

func cmdReport(args []string, e *env) error {
	fs := newFlags(e, "report", reportUsage)
	out := fs.String("out", filepath.Join("runs", "report"), "output directory")
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
	for _, a := range fs.Args() {
		if _, err := os.Stat(filepath.Join(a, "metrics.jsonl")); err == nil {
			dirs = append(dirs, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		found := 0
		for _, en := range entries {
			if _, err := os.Stat(filepath.Join(a, en.Name(), "metrics.jsonl")); en.IsDir() && err == nil {
				dirs = append(dirs, filepath.Join(a, en.Name()))
				found++
			}
		}
		if found == 0 {
			return fmt.Errorf("report: %s is neither a run (no metrics.jsonl) nor a directory of runs", a)
		}
	}
	var runs []eval.RunSummary
	for _, d := range dirs {
		r, skipped, err := eval.LoadRun(d)
		if err != nil {
			return err
		}
		if skipped > 0 {
			fmt.Fprintf(e.stderr, "notice: %s: incomplete last line of metrics.jsonl skipped\n", d)
		}
		runs = append(runs, r)
	}
	res, err := eval.Report(runs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	md, csv := res.Markdown(), res.CSV()
	if err := os.WriteFile(filepath.Join(*out, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "report.csv"), []byte(csv), 0o644); err != nil {
		return err
	}
	pngs, err := res.PlotCurves(*out)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, md)
	fmt.Fprintf(e.stdout, "\nwrote %s, %s", filepath.Join(*out, "report.md"), filepath.Join(*out, "report.csv"))
	for _, p := range pngs {
		fmt.Fprintf(e.stdout, ", %s", p)
	}
	fmt.Fprintln(e.stdout)
	return nil
}
