package train

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/configs"
)

// Job is a training run as a command starts it (pad train, pad sweep run):
// a resolved config, the run directory, and how to reach the device.
type Job struct {
	// Config is the run's resolved config; Execute checks it (Preflight).
	Config configs.Config
	// Dir is the run directory. Execute creates it only once Preflight
	// has passed.
	Dir string
	// Resume continues the run from Dir's checkpoint; when Dir has none
	// (the run never started, or a crash came before its first checkpoint)
	// the run starts afresh with a notice on Log, so the same Job can be
	// repeated after any crash. A checkpoint, or a config.toml without one,
	// written with settings that change the trajectory is an error naming
	// the keys.
	Resume bool
	// Progress says how the training shows its progress on Log.
	Progress ProgressMode
	// Log receives the run's first line, the progress and the notices
	// (nil: discard).
	Log io.Writer
	// OpenBackend opens the device the run trains on (Config.Device); it
	// is required. Execute calls it once Preflight has passed, and closes
	// the backend before it returns.
	OpenBackend func(configs.Device) (backend.Backend, error)
	// Interrupts, when not nil, gives the context the training runs under:
	// Execute calls it with its own context once the run is set up, right
	// before the first iteration, and calls the stop function it returns
	// when the training has stopped. pad installs its SIGINT and SIGTERM
	// handling here, so that a signal during the set-up (loading the data,
	// opening the device, compiling kernels) keeps its default action and
	// ends the process at once, while one during the training finishes the
	// iteration and writes a checkpoint.
	Interrupts func(context.Context) (ctx context.Context, stop func())
}

// Outcome is what became of a Job whose training started.
type Outcome struct {
	// Summary is Run's.
	Summary Summary
	// Samples lists the image files the run wrote (Trainer.Samples).
	Samples []string
	// Position is where the run stands: after ErrInterrupted, the
	// position of the checkpoint it wrote.
	Position Position
	// Started says that the training started (the error, if any, came
	// from it, not from the set-up).
	Started bool
}

// Execute is the one way a command trains: it runs Preflight (the config,
// the condition, the data, the run directory's lock and checkpoint), so
// that a failing run opens no device and creates nothing; then it opens
// the backend (Job.OpenBackend), prepares the run (New), prints the run's
// first line on Job.Log,
//
//	run DIR: DATASET on DEVICE, N training images (SPLIT), model nf=… nz=…, batch …, … epochs, condition …
//
// and trains (Run) under ctx, or under the context Job.Interrupts derives
// from it. Once the training has started, the Outcome comes with Run's
// error: nil, ErrInterrupted (a checkpoint was written at
// Outcome.Position), a *NonFiniteError or another failure. An error
// before that comes with a zero Outcome.
func Execute(ctx context.Context, job Job) (Outcome, error) {
	if job.OpenBackend == nil {
		return Outcome{}, errors.New("train.Execute: the Job has no OpenBackend")
	}
	cfg := job.Config
	log := job.Log
	if log == nil {
		log = io.Discard
	}
	data, err := Preflight(cfg, job.Dir, job.Resume)
	if err != nil {
		return Outcome{}, err
	}
	be, err := job.OpenBackend(cfg.Device)
	if err != nil {
		return Outcome{}, err
	}
	defer be.Close()

	tr, err := New(Options{Config: cfg, Dir: job.Dir, Resume: job.Resume, Backend: be, Log: log, Progress: job.Progress, Data: data})
	if err != nil {
		return Outcome{}, err
	}
	defer tr.Close()
	fmt.Fprintf(log, "run %s: %s on %s, %d training images (%s), model nf=%d nz=%d, batch %d, %d epochs, condition %s\n",
		job.Dir, cfg.Data.Dataset, be.Name(), tr.Train.N, tr.Split, cfg.Model.NF, cfg.Model.NZ, cfg.Train.Batch, cfg.Train.Epochs, cfg.Train.Condition)

	if job.Interrupts != nil {
		var stop func()
		ctx, stop = job.Interrupts(ctx)
		defer stop()
	}
	sum, err := tr.Run(ctx)
	return Outcome{Summary: sum, Samples: tr.Samples, Position: tr.Position(), Started: true}, err
}
