// Command pad trains and evaluates Perturbed and Adversarial Dreaming
// (Deperrois et al., eLife 2022) on the CPU or an NVIDIA GPU.
//
// Run `pad --help` for the commands and `pad <command> --help` for each
// command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// command is one subcommand of pad.
type command struct {
	name    string
	summary string
	run     func(args []string, env *env) error
}

// env is what commands share: output streams, so tests can capture them.
type env struct {
	stdout, stderr io.Writer
	isTerminal     bool
	// checkOnly makes a command stop with errChecked once its command line
	// (flags, arguments and, where it takes one, its config) is checked,
	// before it reads data, opens a device or writes anything. Tests use it
	// to prove that the commands shown in help texts and config comments
	// are accepted as shown.
	checkOnly bool
}

// errChecked ends a command run with env.checkOnly whose command line was
// accepted (exit code 0).
var errChecked = errors.New("command line accepted")

// checkedByCommand lists the commands that check their arguments and
// config after parsing and stop at env.checkOnly themselves; for the
// others parse stops there, right after the flags. A flag set named after
// a command and its operand ("pad eval linear") is the command's.
var checkedByCommand = map[string]bool{
	"pad train": true, "pad eval": true, "pad bench": true, "pad dream": true, "pad report": true,
	"pad data fetch": true, "pad data verify": true, "pad data list": true,
}

// checksItself reports whether the flag set called name belongs to a
// command of checkedByCommand.
func checksItself(name string) bool {
	for c := range checkedByCommand {
		if name == c || strings.HasPrefix(name, c+" ") {
			return true
		}
	}
	return false
}

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// interrupted marks a run stopped by SIGINT/SIGTERM (exit code 130).
var errInterrupted = errors.New("interrupted")

var commands []command

func init() {
	commands = []command{
		{"train", "train a PAD model (embedded Fashion-MNIST sample by default)", cmdTrain},
		{"eval", "evaluate a run: linear probe, occlusion, latent metrics, PCA, export", cmdEval},
		{"dream", "write image grids of a run: reconstructions, NREM and REM dreams, filters", cmdDream},
		{"report", "aggregate runs into the paper's table (mean ± SEM) and curves", cmdReport},
		{"sweep", "run or schedule a study: datasets × conditions × seeds (local, Kubernetes, Slurm)", cmdSweep},
		{"bench", "time training iterations and report seconds per epoch", cmdBench},
		{"data", "download and verify datasets (fetch, verify, list)", cmdData},
		{"info", "show the devices, libraries and versions pad can use", cmdInfo},
		{"doctor", "check that the GPU (or the CPU) computes what pad's CPU reference computes", cmdDoctor},
	}
}

const mainUsage = `pad — Perturbed and Adversarial Dreaming (Deperrois et al., eLife 2022)

Usage:
  pad <command> [flags] [arguments]

Commands:
%s
Quick start (no download, no GPU):
  pad train                 train on the embedded Fashion-MNIST sample
  pad eval linear runs/quickstart

On a GPU, 'pad doctor' checks the libraries, the kernels and the training
iterations against the CPU before you rely on it.

Run 'pad <command> --help' for a command's flags.
Exit codes: 0 success, 1 error, 2 usage or config error, 130 interrupted.
`

func mainHelp() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	return fmt.Sprintf(mainUsage, b.String())
}

func main() {
	e := &env{stdout: os.Stdout, stderr: os.Stderr, isTerminal: isTerminal(os.Stderr)}
	os.Exit(runMain(os.Args[1:], e))
}

// runMain runs pad with args and returns the exit code.
func runMain(args []string, e *env) int {
	if len(args) == 0 {
		// No command: the README's first command, `pad train`, is the
		// default only when spelled out; a bare `pad` prints the help.
		fmt.Fprint(e.stderr, mainHelp())
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return runMain([]string{args[1], "--help"}, e)
		}
		fmt.Fprint(e.stdout, mainHelp())
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(e.stdout, versionString())
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return exitCode(c.run(args[1:], e), e)
		}
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	sort.Strings(names)
	fmt.Fprintf(e.stderr, "pad: unknown command %q (commands: %s); see 'pad --help'\n", args[0], strings.Join(names, ", "))
	return exitUsage
}

// exitCode prints err and maps it to pad's exit codes.
func exitCode(err error, e *env) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errChecked):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "pad: %v\n", err)
		return exitUsage
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(e.stderr, "pad: %v\n", err)
		return exitInterrupted
	default:
		fmt.Fprintf(e.stderr, "pad: %v\n", err)
		return exitError
	}
}

// newFlags returns a FlagSet for a subcommand whose help prints usage (the
// synopsis and description) before the flags.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("pad "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "%s\nFlags:\n", strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, printing help to stdout for --help and turning other
// mistakes into usage errors. Flags may follow positional arguments
// (pad eval linear RUN --seed 2); "--" ends the flags.
func parse(fs *flag.FlagSet, args []string, e *env) error {
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(e.stderr)
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		if err != nil {
			return usagef("%s: %v (see '%s --help')", fs.Name(), err, fs.Name())
		}
		rest := fs.Args()
		// Parse stops at the first positional argument, or after "--".
		if len(rest) == 0 || len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments where fs.Args() finds them.
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return err
	}
	if e.checkOnly && !checksItself(fs.Name()) {
		// A command without a check of its own stops after its flags.
		return errChecked
	}
	return nil
}

// multiFlag collects repeated string flags (--set k=v --set k=v).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
