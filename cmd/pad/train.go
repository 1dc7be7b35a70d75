package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/train"
)

const trainUsage = `
Usage: pad train [--config FILE|NAME] [--set key=value]... [--resume] [--device auto|cpu|cuda]

Trains a PAD model. Without --config it runs the quickstart: a small model
on the Fashion-MNIST sample built into pad, on the CPU, in a few minutes.
--config takes a TOML file or the name of a built-in config (see
'pad train --list'); --set overrides any key, e.g. --set train.epochs=10.

The run directory runs/<name>/ receives config.toml (the resolved config),
metrics.jsonl and TensorBoard events, checkpoint.safetensors and samples/.
The name is the config's name, or <dataset>-<condition>-s<seed>.
Ctrl-C finishes the current iteration, writes a checkpoint and exits with
code 130; --resume continues from it.
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
	if device != "" {
		if err := cfg.Set("device.kind=" + device); err != nil {
			return cfg, "", usagef("--device: %v", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", usagef("%v", err)
	}
	if _, err := train.Condition(cfg); err != nil {
		return cfg, "", usagef("%v", err)
	}
	base := strings.TrimSuffix(filepath.Base(ref), ".toml")
	return cfg, base, nil
}

// runName is the config's name, "quickstart" for the quickstart, or
// <dataset>-<condition>-s<seed>, the form `pad report` groups by.
func runName(cfg configs.Config, base string) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	if base == "quickstart" {
		return "quickstart"
	}
	return fmt.Sprintf("%s-%s-s%d", cfg.Data.Dataset, cfg.Train.Condition, cfg.Seed)
}

// openTrainBackend opens the device pad train trains on; tests replace it
// to see whether (and when) it is called.
var openTrainBackend = openBackend

func cmdTrain(args []string, e *env) error {
	fs := newFlags(e, "train", trainUsage)
	cfgRef := fs.String("config", "", "TOML config file or built-in config name (default: quickstart)")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key, `key=value` (repeatable)")
	resume := fs.Bool("resume", false, "continue the run from its checkpoint")
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
	// exists: a missing data file leaves nothing behind.
	dir := filepath.Join(*runs, runName(cfg, base))
	data, err := train.Preflight(cfg, dir, *resume)
	if err != nil {
		return err
	}
	be, err := openTrainBackend(cfg.Device, e.stderr)
	if err != nil {
		return err
	}
	defer be.Close()

	tr, err := train.New(train.Options{Config: cfg, Dir: dir, Resume: *resume, Backend: be, Log: e.stderr, Progress: mode, Data: data})
	if err != nil {
		return err
	}
	defer tr.Close()
	fmt.Fprintf(e.stderr, "run %s: %s on %s, %d training images (%s), model nf=%d nz=%d, batch %d, %d epochs, condition %s\n",
		dir, cfg.Data.Dataset, be.Name(), tr.Train.N, tr.Split, cfg.Model.NF, cfg.Model.NZ, cfg.Train.Batch, cfg.Train.Epochs, cfg.Train.Condition)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	sum, err := tr.Run(ctx)
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(e.stderr, "interrupted after iteration %d; checkpoint written. Continue with:\n  pad train %s--resume\n",
			tr.Position().Iter, resumeArgs(*cfgRef, sets, *runs))
		return errInterrupted
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "done: %d iterations in %.1f s\n", sum.Iters, sum.Seconds)
	if len(tr.Samples) > 0 {
		fmt.Fprintf(e.stderr, "samples (reconstructions, NREM and REM dreams, filters):\n")
		for _, s := range tr.Samples {
			fmt.Fprintf(e.stderr, "  %s\n", s)
		}
	}
	fmt.Fprintf(e.stderr, "checkpoint: %s\nmetrics:    %s\n", filepath.Join(dir, train.CheckpointName), filepath.Join(dir, "metrics.jsonl"))
	fmt.Fprintf(e.stderr, "next: pad eval linear %s   (or: pad dream %s, tensorboard --logdir %s)\n", dir, dir, *runs)
	return nil
}

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
