package main

import (
	"fmt"
	"path/filepath"
)

const dreamUsage = `
Usage: pad dream [--seed N] [--out DIR] RUN

Writes PNG grids of the run's latest checkpoint into RUN/dreams/ (or
--out): test images beside their reconstructions G(E(x)), NREM dreams
(G(z) of their latents, occluded as in training), REM dreams (G of a mix of
two memories and noise) and the first layer's filters as receptive fields.
`

func cmdDream(args []string, e *env) error {
	fs := newFlags(e, "dream", dreamUsage)
	seed := fs.Uint64("seed", 1, "seed of the occlusion mask and the REM noise")
	out := fs.String("out", "", "output directory (default RUN/dreams)")
	device := fs.String("device", "", "auto, cpu or cuda (default: the run's device.kind)")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("dream: want one run directory, got %d arguments", fs.NArg())
	}
	if e.checkOnly {
		return errChecked
	}
	dir := fs.Arg(0)
	run, closeRun, err := openRun(dir, *device, e)
	if err != nil {
		return err
	}
	defer closeRun()
	if *out == "" {
		*out = filepath.Join(dir, "dreams")
	}
	files, p, tile, err := run.Dreams(*out, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "dreams of %s (checkpoint at epoch %d; NREM occlusion p = %.2f, tile %d):\n", dir, run.Checkpoint.State.Epoch, p, tile)
	for _, f := range files {
		fmt.Fprintf(e.stdout, "  %s\n", f)
	}
	return nil
}
