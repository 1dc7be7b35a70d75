package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/pad-dreaming/pad/internal/cu"
	"os"
	"path/filepath"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/train"
)

const trainUsage = `
Usage: pad train [--config FILE|NAME] [--set key=value]... [--resume] [--device auto|cpu|cuda]

Trains a PAD model. Without --config it runs the quickstart: a small model
on the Fashion-MNIST sample built into pad, on the CPU, in about a minute.
--config takes a TOML file or the name of a built-in config (see
'pad train --list'); --set overrides any key, e.g. --set train.epochs=10.

The run directory runs/<name>/ receives config.toml (the resolved config),
metrics.jsonl and TensorBoard events, checkpoint.safetensors and samples/.
The name is the config's name, or <dataset>-<condition>-s<seed>.
Ctrl-C finishes the current iteration, writes a checkpoint and exits with
code 130; --resume continues from it. A run that has no checkpoint yet (it
never started, or a crash came before its first checkpoint) is started
afresh by --resume with a one-line notice, the earlier attempt's records
kept aside, so the same command can be repeated after any crash. A
--resume whose config differs from the run's in a setting that changes
the training (model, data, optimiser, condition, seed) is an error naming
those keys; epochs, max_iters, logging, evaluation and device may change.
`

// Config errors follow one rule, whichever way the config came in: the
// config named by --config (a file or a built-in name), each --set
// override and each flag that sets a key (--device) are what the user
// typed, so anything wrong in them — a config that does not exist, a
// syntax error, an unknown key, a wrong type, a value out of range, a
// condition that does not validate — is a usage error, exit code 2, the
// same for a key in a file as for that key through --set. Exit code 1 is
// for what pad meets while running: a config file it cannot read (I/O),
// missing or broken data files, checkpoints, run directories (including a
// run's own config.toml, which pad wrote) and devices.

// loadConfig resolves --config, --set and --device (if not empty) into a
// validated config, and the name of the config for deriving the run name.
// Every problem with the config is a usage error (see above), except a
// config file that exists but cannot be read.
func loadConfig(ref string, sets []string, device string) (configs.Config, string, error) {
	if ref == "" {
		ref = "quickstart"
	}
	cfg, err := configs.Open(ref)
	if err != nil {
		var ke *configs.KeyError
		if _, statErr := os.Stat(ref); errors.As(err, &ke) || statErr != nil {
			return cfg, "", usagef("--config %s: %v", ref, err)
		}
		return cfg, "", err
	}
	for _, kv := range sets {
		if err := cfg.Set(kv); err != nil {
			return cfg, "", usagef("--set %s: %v", kv, err)
		}
	}
	if err := finishConfig(&cfg, device); err != nil {
		return cfg, "", err
	}
	base := strings.TrimSuffix(filepath.Base(ref), ".toml")
	return cfg, base, nil
}

// finishConfig is the last step of building a run's config, for pad train
// and pad sweep run alike: it applies --device (when not empty) and checks
// the result, its values and its condition. Every problem is a usage
// error.
func finishConfig(cfg *configs.Config, device string) error {
	if device != "" {
		if err := cfg.Set("device.kind=" + device); err != nil {
			return usagef("--device: %v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if _, err := train.Condition(*cfg); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// runName is the config's name, "quickstart" for the quickstart, or
// <dataset>-<condition>-s<seed>, the form pad sweep uses (pad report groups
// runs by their config.toml, whatever their names).
func runName(cfg configs.Config, base string) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	if base == "quickstart" {
		return "quickstart"
	}
	return fmt.Sprintf("%s-%s-s%d", cfg.Data.Dataset, cfg.Train.Condition, cfg.Seed)
}

// openTrainBackend opens the device pad train and pad sweep run train on;
// tests replace it to see whether (and when) it is called.
var openTrainBackend = openBackend

func cmdTrain(args []string, e *env) error {
	fs := newFlags(e, "train", trainUsage)
	cfgRef := fs.String("config", "", "TOML config file or built-in config name (default: quickstart)")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key, `key=value` (repeatable)")
	resume := fs.Bool("resume", false, "continue the run from its checkpoint (start it afresh when it has none)")
	device := fs.String("device", "", "auto, cpu or cuda (default: the config's device.kind)")
	runs := fs.String("runs", "runs", "directory holding the run directories")
	prog := fs.String("progress", "auto", "auto, bar, lines or none")
	list := fs.Bool("list", false, "list the built-in configs and exit")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if *list {
		for _, f := range configs.Files() {
			fmt.Fprintln(e.stdout, strings.TrimSuffix(f, ".toml"))
		}
		return nil
	}
	if fs.NArg() > 0 {
		return usagef("train: unexpected argument %q (use --config and --set)", fs.Arg(0))
	}
	cfg, base, err := loadConfig(*cfgRef, sets, *device)
	if err != nil {
		return err
	}
	mode, err := progressMode(*prog, e)
	if err != nil {
		return err
	}
	if e.checkOnly {
		return errChecked
	}
	// Everything that can be checked is checked before the backend opens
	// (on a GPU: before the kernels compile) and before the run directory
	// exists: a missing data file leaves nothing behind (train.Execute).
	dir := filepath.Join(*runs, runName(cfg, base))
	out, err := train.Execute(context.Background(), trainJob(e, cfg, dir, *resume, mode))
	return reportTraining(e, out, err, dir, *runs, resumeArgs(*cfgRef, sets, *runs))
}

// trainJob is the train.Job of a pad command: the device opened by
// openTrainBackend, the progress and notices on stderr, and the training
// interrupted by SIGINT or SIGTERM (a second one ends the process at once).
func trainJob(e *env, cfg configs.Config, dir string, resume bool, mode train.ProgressMode) train.Job {
	return train.Job{
		Config:   cfg,
		Dir:      dir,
		Resume:   resume,
		Progress: mode,
		Log:      e.stderr,
		OpenBackend: func(d configs.Device) (backend.Backend, error) {
			return openTrainBackend(d, e.stderr)
		},
		Interrupts: func(ctx context.Context) (context.Context, func()) {
			return withInterrupts(ctx, nil, nil)
		},
	}
}

// reportTraining prints what came of train.Execute (out and err) for the
// run in dir, whose runs directory is runs: after a finished run where its
// results are and what to run next; after an interruption the pad train
// command that continues the run, continueArgs being its flags before
// --resume (errInterrupted). Other errors are returned as they are.
func reportTraining(e *env, out train.Outcome, err error, dir, runs, continueArgs string) error {
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(e.stderr, "interrupted after iteration %d; checkpoint written. Continue with:\n  pad train %s--resume\n",
			out.Position.Iter, continueArgs)
		return errInterrupted
	}
	if err != nil {
		if out.Started {
			return gpuFailure(err, dir, continueArgs)
		}
		return err
	}
	fmt.Fprintf(e.stderr, "done: %d iterations in %.1f s\n", out.Summary.Iters, out.Summary.Seconds)
	if len(out.Samples) > 0 {
		fmt.Fprintf(e.stderr, "samples (reconstructions, NREM and REM dreams, filters):\n")
		for _, s := range out.Samples {
			fmt.Fprintf(e.stderr, "  %s\n", s)
		}
	}
	fmt.Fprintf(e.stderr, "checkpoint: %s\nmetrics:    %s\n", filepath.Join(dir, train.CheckpointName), filepath.Join(dir, "metrics.jsonl"))
	fmt.Fprintf(e.stderr, "next: pad eval linear %s   (or: pad dream %s, tensorboard --logdir %s)\n", dir, dir, runs)
	return nil
}

// gpuFailure adds to an error of the GPU during the training what it means in
// plain words and where the run stands: the last checkpoint, which the
// failure does not touch, and the command that continues from it. Other
// errors are returned as they are.
func gpuFailure(err error, dir, continueArgs string) error {
	var ce *cu.Error
	if !errors.As(err, &ce) {
		return err
	}
	cause := "a call into the NVIDIA libraries failed"
	switch cu.FaultOf(err) {
	case cu.FaultOutOfMemory:
		cause = "the GPU ran out of memory (a smaller train.batch or model, or another process on the GPU, may be the cause)"
	case cu.FaultKernel:
		cause = "a kernel failed on the GPU; the device's state is lost for this process"
	case cu.FaultDeviceLost:
		cause = "the GPU stopped responding or became unavailable"
	}
	where := "no checkpoint was written before the failure; pad train starts the run afresh"
	path := filepath.Join(dir, train.CheckpointName)
	if c, rerr := train.ReadCheckpoint(path); rerr == nil {
		where = fmt.Sprintf("the checkpoint of iteration %d (%s) is intact. Continue with:\n  pad train %s--resume", c.State.Iter, path, continueArgs)
	}
	return fmt.Errorf("%s: %w\n%s", cause, err, where)
}

// resumeArgs returns the flags of the pad train command that continues a
// run (before --resume): --config, the --set overrides and --runs.
func resumeArgs(cfgRef string, sets []string, runs string) string {
	var b strings.Builder
	if cfgRef != "" {
		fmt.Fprintf(&b, "--config %s ", cfgRef)
	}
	for _, s := range sets {
		fmt.Fprintf(&b, "--set %s ", s)
	}
	if runs != "runs" {
		fmt.Fprintf(&b, "--runs %s ", runs)
	}
	return b.String()
}

func progressMode(s string, e *env) (train.ProgressMode, error) {
	switch s {
	case "auto":
		if e.isTerminal {
			return train.ProgressBar, nil
		}
		return train.ProgressLines, nil
	case "bar":
		return train.ProgressBar, nil
	case "lines":
		return train.ProgressLines, nil
	case "none":
		return train.ProgressNone, nil
	}
	return 0, usagef("--progress %q: want auto, bar, lines or none", s)
}
