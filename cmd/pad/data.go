package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/fetch"
)

const dataUsage = `
Usage:
  pad data fetch <dataset>... [--dir DIR] [--force]
  pad data verify [<dataset>...] [--dir DIR]
  pad data list

Downloads the datasets pad trains on (mnist, fashion, cifar10, svhn) from
their canonical sources, checks them against their known checksums, and
puts them where the configs look for them: data/<dataset>, or DIR.
'pad data <command> --help' describes each command.
`

const dataFetchUsage = `
Usage: pad data fetch <dataset>... [--dir DIR] [--force]

Downloads the files of each dataset into data/<dataset> (or DIR), trying
mirrors when a source fails. An interrupted download (Ctrl-C, a dropped
connection) is kept as <file>.part and resumed by the next run. A file is
given its final name only once its checksum matches; CIFAR-10's archive is
then unpacked into cifar-10-batches-bin/. Files already there are checked,
not downloaded again. HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.
`

const dataVerifyUsage = `
Usage: pad data verify [<dataset>...] [--dir DIR]

Recomputes the checksums of the files of each dataset in data/<dataset> (or
DIR) and reports each file as ok, missing, mismatch or unverified (no known
checksum), with its SHA-256. Without a dataset it checks every dataset
whose folder exists. Exit code 1 when a file is missing or mismatched.
`

const dataListUsage = `
Usage: pad data list

Lists the datasets pad can download: their files, sources (primary first,
then mirrors), sizes and the kind of checksum each is verified with.
`

// dataCatalogue is the catalogue the data commands use; tests replace it.
var dataCatalogue = fetch.Default

// dataLineEvery is how often progress is reported when stderr is not a
// terminal.
var dataLineEvery = 5 * time.Second

func cmdData(args []string, e *env) error {
	if len(args) == 0 {
		return usagef("data: missing command (fetch, verify or list); see 'pad data --help'")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.stdout, strings.TrimSpace(dataUsage))
		return nil
	case "fetch":
		return dataFetch(args[1:], e)
	case "verify":
		return dataVerify(args[1:], e)
	case "list":
		return dataList(args[1:], e)
	}
	return usagef("data: unknown command %q (fetch, verify or list); see 'pad data --help'", args[0])
}

// parseInterspersed parses args with flags before, between and after the
// positional arguments, which it returns ("--" ends the flags).
func parseInterspersed(fs *flag.FlagSet, args []string, e *env) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args, e); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkDataNames rejects names the catalogue has no entries for, saying
// why, and returns the names without repeats.
func checkDataNames(cat fetch.Catalogue, cmd string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if why := fetch.NotFetchable(n); why != "" {
			return nil, usagef("data %s %s: %s (datasets to download: %s)", cmd, n, why, strings.Join(cat.Datasets(), ", "))
		}
		if _, err := cat.Entries(n); err != nil {
			return nil, usagef("data %s: unknown dataset %q (known: %s)", cmd, n, strings.Join(cat.Datasets(), ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func dataFetch(args []string, e *env) error {
	fs := newFlags(e, "data fetch", dataFetchUsage)
	dir := fs.String("dir", "", "folder to put the files in (default data/<dataset>)")
	force := fs.Bool("force", false, "download again even when the files are there; discard partial downloads")
	names, err := parseInterspersed(fs, args, e)
	if err != nil {
		return err
	}
	cat := dataCatalogue()
	if len(names) == 0 {
		return usagef("data fetch: name a dataset (%s); see 'pad data fetch --help'", strings.Join(cat.Datasets(), ", "))
	}
	if names, err = checkDataNames(cat, "fetch", names); err != nil {
		return err
	}
	if *dir != "" && len(names) > 1 {
		return usagef("data fetch: --dir takes one dataset, not %d (%s)", len(names), strings.Join(names, ", "))
	}
	if e.checkOnly {
		return errChecked
	}

	ctx, stop := withInterrupts(context.Background(), nil, nil) // a second Ctrl-C kills at once
	defer stop()

	var failed []error
	for _, name := range names {
		d := *dir
		if d == "" {
			d = fetch.DefaultDir(name)
		}
		entries, _ := cat.Entries(name)
		ok := true
		for i, entry := range entries {
			pr := &dataProgress{e: e}
			opts := fetch.Options{Force: *force, Progress: pr.update, Log: pr.note}
			if e.isTerminal {
				opts.Interval = 100 * time.Millisecond
			}
			res, err := fetch.Fetch(ctx, entry, d, opts)
			pr.clear()
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintf(e.stderr, "%v\nrun the same command again to resume\n", err)
					return errInterrupted
				}
				var me *fetch.MismatchError
				if errors.As(err, &me) && me.URL == "" {
					err = fmt.Errorf("%w\n(pad data fetch %s --force downloads it again)", err, name)
				}
				failed = append(failed, err)
				ok = false
				if left := len(entries) - i - 1; left > 0 {
					fmt.Fprintf(e.stderr, "%s failed; not fetching the other %d file(s) of %s\n", entry.File, left, name)
				}
				break
			}
			printFetched(e, entry, res)
		}
		if ok {
			fmt.Fprintf(e.stdout, "%s is ready in %s", name, d)
			if slices.Contains(configs.Files(), name+".toml") {
				fmt.Fprintf(e.stdout, "; train with: pad train --config %s", name)
				if d != fetch.DefaultDir(name) {
					fmt.Fprintf(e.stdout, " --set data.root=%s", d)
				}
			}
			fmt.Fprintln(e.stdout)
		}
	}
	return errors.Join(failed...)
}

// printFetched reports one fetched file on stdout.
func printFetched(e *env, entry fetch.Entry, res fetch.Result) {
	how := "already there"
	if !res.Present {
		how = "downloaded from " + res.URL
		if res.Resumed > 0 {
			how += fmt.Sprintf(" (resumed at byte %d)", res.Resumed)
		}
	}
	check := "verified (" + entry.SumKind() + ")"
	if !res.Verified {
		check = "UNVERIFIED: no known checksum; compare its sha256 with a trusted source"
	}
	fmt.Fprintf(e.stdout, "%s: %s, %d bytes, %s\n  sha256 %s\n", res.Path, how, res.Sums.Size, check, res.Sums.SHA256)
	if len(res.Extracted) > 0 {
		fmt.Fprintf(e.stdout, "  extracted %d files to %s\n", len(res.Extracted), dirOf(res.Extracted[0]))
	}
}

func dirOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[:i]
	}
	return "."
}

// dataProgress shows a download's progress on stderr: a bar redrawn in
// place on a terminal, a line every dataLineEvery otherwise.
type dataProgress struct {
	e     *env
	bar   bool // a bar is on the screen
	lines time.Time
}

func (p *dataProgress) update(pr fetch.Progress) {
	size := dataBytes(pr.Done)
	pct := ""
	if pr.Total > 0 {
		size += " of " + dataBytes(pr.Total)
		pct = fmt.Sprintf("%3.0f%%", 100*float64(pr.Done)/float64(pr.Total))
	}
	rate := dataBytes(int64(pr.Rate)) + "/s"
	if p.e.isTerminal {
		bar := ""
		if pr.Total > 0 {
			const w = 30
			n := min(w, int(w*pr.Done/pr.Total))
			bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", w-n) + "] "
		}
		fmt.Fprintf(p.e.stderr, "\r%s %s%s %s, %s\x1b[K", pr.File, bar, pct, size, rate)
		p.bar = true
		return
	}
	now := time.Now()
	if !pr.Finished && !p.lines.IsZero() && now.Sub(p.lines) < dataLineEvery {
		return
	}
	p.lines = now
	verb := "downloading"
	if pr.Finished {
		verb = "downloaded"
	}
	if pct != "" {
		pct = " (" + strings.TrimSpace(pct) + ")"
	}
	fmt.Fprintf(p.e.stderr, "%s %s: %s%s, %s\n", verb, pr.File, size, pct, rate)
}

// note prints a message from fetch on a line of its own.
func (p *dataProgress) note(msg string) {
	p.clear()
	fmt.Fprintln(p.e.stderr, msg)
}

// clear removes the bar.
func (p *dataProgress) clear() {
	if p.bar {
		fmt.Fprint(p.e.stderr, "\r\x1b[K")
		p.bar = false
	}
}

// dataBytes formats n bytes in decimal units.
func dataBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func dataVerify(args []string, e *env) error {
	fs := newFlags(e, "data verify", dataVerifyUsage)
	dir := fs.String("dir", "", "folder holding the files (default data/<dataset>); needs one dataset")
	names, err := parseInterspersed(fs, args, e)
	if err != nil {
		return err
	}
	cat := dataCatalogue()
	if names, err = checkDataNames(cat, "verify", names); err != nil {
		return err
	}
	if *dir != "" && len(names) != 1 {
		return usagef("data verify: --dir needs exactly one dataset, got %d", len(names))
	}
	if e.checkOnly {
		return errChecked
	}
	all := len(names) == 0
	if all {
		names = cat.Datasets()
	}
	var files, bad, checked int
	for _, name := range names {
		d := *dir
		if d == "" {
			d = fetch.DefaultDir(name)
		}
		if all {
			if _, err := os.Stat(d); errors.Is(err, iofs.ErrNotExist) {
				fmt.Fprintf(e.stdout, "%s: not downloaded (no %s)\n", name, d)
				continue
			}
		}
		checked++
		rs, err := cat.Verify(d, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s in %s:\n", name, d)
		for _, r := range rs {
			files++
			if r.Status.Failed() {
				bad++
			}
			fmt.Fprintf(e.stdout, "  %-10s %s\n", r.Status, r.Path)
			if r.Sums.SHA256 != "" {
				fmt.Fprintf(e.stdout, "             sha256 %s, %d bytes\n", r.Sums.SHA256, r.Sums.Size)
			}
			if r.Detail != "" {
				fmt.Fprintf(e.stdout, "             %s\n", r.Detail)
			}
		}
	}
	if checked == 0 {
		fmt.Fprintln(e.stdout, "nothing to verify; download a dataset with 'pad data fetch <dataset>'")
		return nil
	}
	if bad > 0 {
		return fmt.Errorf("data verify: %d of %d files missing, mismatched or unreadable; 'pad data fetch <dataset>' downloads missing files, with --force it replaces mismatched ones", bad, files)
	}
	return nil
}

func dataList(args []string, e *env) error {
	fs := newFlags(e, "data list", dataListUsage)
	names, err := parseInterspersed(fs, args, e)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return usagef("data list: unexpected argument %q", names[0])
	}
	if e.checkOnly {
		return errChecked
	}
	cat := dataCatalogue()
	for _, name := range cat.Datasets() {
		entries, _ := cat.Entries(name)
		var total int64
		for _, en := range entries {
			if len(en.Versions) > 0 {
				total += en.Versions[0].Size
			}
		}
		fmt.Fprintf(e.stdout, "%s → %s", name, fetch.DefaultDir(name))
		if total > 0 {
			fmt.Fprintf(e.stdout, " (%s)", dataBytes(total))
		}
		fmt.Fprintln(e.stdout)
		for _, en := range entries {
			size := "size unknown"
			if n := en.Size(); n > 0 {
				size = fmt.Sprintf("%d bytes", n)
			} else if len(en.Versions) > 0 && en.Versions[0].Size > 0 {
				size = fmt.Sprintf("%d bytes", en.Versions[0].Size)
				for _, v := range en.Versions[1:] {
					size += fmt.Sprintf(" or %d", v.Size)
				}
			}
			fmt.Fprintf(e.stdout, "  %-28s %-26s %s\n", en.File, size, en.SumKind())
			for i, u := range en.URLs {
				role := "primary"
				if i > 0 {
					role = "mirror"
				}
				fmt.Fprintf(e.stdout, "      %-8s %s\n", role, u)
			}
			for _, v := range en.Versions {
				if v.Source != "" {
					fmt.Fprintf(e.stdout, "      %-8s %s\n", "sums", v.Source)
				}
			}
			if a := en.Archive; a != nil {
				var outs []string
				for _, m := range a.Members {
					outs = append(outs, m.Out())
				}
				fmt.Fprintf(e.stdout, "      unpacks to %s/: %s\n", a.Dir, strings.Join(outs, ", "))
			}
		}
	}
	fmt.Fprintf(e.stdout, "embedded: %s\nfolder: %s\n", fetch.NotFetchable("embedded"), fetch.NotFetchable("folder"))
	return nil
}
