// Package train runs PAD training: it loads the data, builds the model on a
// backend, schedules Wake, NREM and REM over the mini-batches, records
// metrics, writes checkpoints and samples, probes the encoder, and resumes
// interrupted runs exactly.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/conditions"
	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/internal/atomicfile"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// ErrInterrupted is returned by Run when its context was cancelled (SIGINT,
// SIGTERM): the iteration in progress was finished and checkpointed.
var ErrInterrupted = errors.New("interrupted")

// NonFiniteError reports a loss that became NaN or infinite.
type NonFiniteError struct {
	Phase string // Wake, NREM or REM
	Loss  string
	Value float32
	Iter  int // global iteration (from 0)
	Epoch int
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("%s loss %s = %v at iteration %d (epoch %d): training stopped; the last checkpoint holds the state before it (lower train.lr_e / train.lr_g, or check the data)",
		e.Phase, e.Loss, e.Value, e.Iter, e.Epoch+1)
}

// Options configure a Trainer.
type Options struct {
	Config   configs.Config  // validated
	Dir      string          // run directory
	Resume   bool            // continue from Dir's checkpoint, or start afresh when it has none
	Backend  backend.Backend // where the model lives
	Log      io.Writer       // progress and notices (nil: discard)
	Progress ProgressMode
	// Data holds the sets Preflight loaded for this Config and Dir (which
	// it checked); nil makes New run Preflight itself.
	Data *Data
}

// Data is a run's training and test sets.
type Data struct {
	Train, Test *dataset.Set
	// Split says where the test set comes from, for the run's first line:
	// "test split of <dataset>", "<root>/test", or the held-out fraction.
	Split string
}

// Preflight checks everything a run can check before it touches the
// device or the file system: the config's values, the condition, the data
// files (loading them), whether another process holds dir, and dir's
// checkpoint (see checkpointToResume). It creates no directory and writes
// nothing but the lock file of an existing run directory, so a failing run
// leaves nothing behind.
func Preflight(cfg configs.Config, dir string, resume bool) (*Data, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := Condition(cfg); err != nil {
		return nil, err
	}
	// A run another process holds is reported as such, before what its
	// checkpoint (being written, or not yet) would say.
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		unlock, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		unlock()
	}
	if _, err := checkpointToResume(cfg, dir, resume); err != nil {
		return nil, err
	}
	return LoadData(cfg)
}

// checkpointToResume applies the rule on dir's checkpoint. Without
// resume there must be none, and the result is nil. With resume, a
// checkpoint must have been written with cfg (its config hash), and it is
// returned; when there is none (a run never started, or killed before its
// first checkpoint was complete) the result is nil and the run starts
// afresh (New says so), unless dir's config.toml shows that the run was
// started with settings that change the trajectory. Either mismatch is an
// error naming the keys that differ.
func checkpointToResume(cfg configs.Config, dir string, resume bool) (*Checkpoint, error) {
	ckptPath := filepath.Join(dir, CheckpointName)
	if !resume {
		if fileExists(ckptPath) {
			return nil, fmt.Errorf("run %s already has a checkpoint: pass --resume to continue it, or choose another name (--set name=...)", dir)
		}
		return nil, nil
	}
	if !fileExists(ckptPath) {
		return nil, sameRunConfig(cfg, dir)
	}
	ckpt, err := ReadCheckpoint(ckptPath)
	if err != nil {
		return nil, err
	}
	if h := cfg.Hash(); ckpt.State.ConfigHash != h {
		changes := ""
		if old, err := configs.Parse([]byte(ckpt.State.Config), ckptPath); err == nil {
			changes = describeChanges(old, cfg)
		}
		return nil, fmt.Errorf("--resume: %s was written with a different config%s (hash %s, now %s): the model or the training settings changed; resume with the run's settings (%s), or start a new run (--set name=...)",
			ckptPath, changes, ckpt.State.ConfigHash, h, filepath.Join(dir, "config.toml"))
	}
	return ckpt, nil
}

// sameRunConfig checks, for a --resume that finds no checkpoint in dir,
// that the config.toml an earlier attempt left there (if any) trains what
// cfg trains: keys outside the config hash (epochs, output, evaluation,
// device) may change, as on any resume.
func sameRunConfig(cfg configs.Config, dir string) error {
	path := filepath.Join(dir, "config.toml")
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	old, err := configs.Load(path)
	if err != nil {
		return fmt.Errorf("--resume: the run's own config: %w", err)
	}
	if old.Hash() == cfg.Hash() {
		return nil
	}
	return fmt.Errorf("--resume: %s has no checkpoint, but its config.toml holds a different config%s: resume with the run's settings (%s), or start a new run (--set name=...)",
		dir, describeChanges(old, cfg), path)
}

// describeChanges lists, for an error message, the keys of the config
// hash whose values differ between the run's config old and cfg:
// " (model.nf 8 → 4, train.condition pad → no-rem)", or "" when none do.
func describeChanges(old, cfg configs.Config) string {
	changes := configs.HashChanges(old, cfg)
	if len(changes) == 0 {
		return ""
	}
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.String()
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// Trainer is one training run.
type Trainer struct {
	opt     Options
	cfg     configs.Config
	b       backend.Backend
	Model   *phases.PAD
	Train   *dataset.Set
	Test    *dataset.Set
	Split   string // where the test set comes from (Data.Split)
	feed    *feeder
	metrics *metrics.Writer
	unlock  func()
	log     io.Writer
	pos     Position
	enc     *eval.FrozenEncoder
	win, ep window // the iterations not yet logged, and those of the epoch so far
	depth   int    // iterations whose numbers may be unread at once (lagDepth)

	// Samples lists the image files written so far.
	Samples []string
}

// New prepares a run: it checks the config and the data (Preflight, unless
// Options.Data holds its result), then locks the run directory, builds the
// model and, with Resume, restores the checkpoint. When it fails, a run
// directory it created is removed again.
func New(opt Options) (_ *Trainer, err error) {
	cfg := opt.Config
	data := opt.Data
	if data == nil {
		if data, err = Preflight(cfg, opt.Dir, opt.Resume); err != nil {
			return nil, err
		}
	}
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	unlock, created, err := claimDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	t := &Trainer{opt: opt, cfg: cfg, b: opt.Backend, unlock: unlock, log: log,
		Train: data.Train, Test: data.Test, Split: data.Split}
	defer func() {
		if err != nil {
			t.Close()
			if created {
				// Nothing of this run was worth keeping: it never started.
				os.RemoveAll(opt.Dir)
			}
		}
	}()
	// Under the lock no other process writes here: temporary files are
	// leftovers of a process killed while writing them.
	if err := removeStaleTemps(opt.Dir, log); err != nil {
		return nil, err
	}

	// The checkpoint rule again, under the lock: another process may have
	// written or replaced the checkpoint since Preflight looked.
	ckpt, err := checkpointToResume(cfg, opt.Dir, opt.Resume)
	if err != nil {
		return nil, err
	}
	if ckpt == nil {
		aside, err := setAsideOrphanMetrics(opt.Dir)
		if err != nil {
			return nil, err
		}
		kept := ""
		if aside != "" {
			kept = fmt.Sprintf("; the records of the earlier attempt are kept as %s", aside)
		}
		switch {
		case opt.Resume:
			fmt.Fprintf(log, "notice: --resume: %s has no checkpoint to resume from; starting the run afresh%s\n", opt.Dir, kept)
		case aside != "":
			fmt.Fprintf(log, "notice: %s has no checkpoint%s\n", opt.Dir, kept)
		}
	}
	if err := t.buildModel(); err != nil {
		return nil, err
	}
	if err := t.restore(ckpt); err != nil {
		return nil, err
	}
	if err := t.openMetrics(ckpt != nil); err != nil {
		return nil, err
	}
	if t.enc, err = eval.NewFrozenEncoder(t.Model); err != nil {
		return nil, err
	}
	resolved, err := cfg.Resolved().TOML()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opt.Dir, "config.toml"), resolved); err != nil {
		return nil, err
	}
	return t, nil
}

// claimDir creates the run directory dir unless it exists, and locks it
// against other pad processes; created says whether it was created here.
func claimDir(dir string) (unlock func(), created bool, err error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, created, err
	}
	// When it fails, dir is not removed even when created here: another
	// process that created it at the same moment may hold the lock.
	unlock, err = lockDir(dir)
	return unlock, created, err
}

// buildModel builds the model, initialised from the config's seed, and
// the feeder of its batches on the backend.
func (t *Trainer) buildModel() error {
	cfg := t.cfg
	cond, err := Condition(cfg)
	if err != nil {
		return err
	}
	spec := model.Spec{C: t.Train.C, NF: cfg.Model.NF, NZ: cfg.Model.NZ, Batch: cfg.Train.Batch}
	batchLen := spec.Batch * spec.C * model.ImageSize * model.ImageSize
	t.depth = lagDepth(cfg.Train.LogEvery, batchLen*4)
	popt := phases.Options{
		StatSlots:         t.depth + 1,
		Seed:              cfg.Seed,
		AdamE:             backend.AdamHyper{LR: cfg.Train.LRE, Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2, Eps: cfg.Train.Eps},
		AdamG:             backend.AdamHyper{LR: cfg.Train.LRG, Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2, Eps: cfg.Train.Eps},
		MaxTile:           cfg.Train.MaxTile,
		OcclusionPerImage: cfg.Train.OcclusionPerImage,
	}
	if t.Model, err = phases.New(t.b, spec, cond, popt); err != nil {
		return err
	}
	t.feed, err = newFeeder(t.b, t.Train, spec.Batch, cfg.Seed, batchLen, t.depth)
	return err
}

// Bounds of lagDepth: how many iterations the host may queue ahead of the
// numbers it has read, and how many bytes of page-locked batches that may
// hold (each pending iteration keeps its batch's host buffer until its
// numbers are read, see feeder).
const (
	maxLag      = 256
	maxLagBytes = 256 << 20
)

// lagDepth is how many iterations may be queued on a backend that copies
// behind the host before the host reads their numbers: a whole log window
// (logEvery), so that in the steady state the host waits for the device
// only where it writes a log line; but at most maxLag iterations and
// maxLagBytes of batches of batchBytes each, and at least 1.
func lagDepth(logEvery, batchBytes int) int {
	d := min(logEvery, maxLag)
	if batchBytes > 0 {
		d = min(d, maxLagBytes/batchBytes)
	}
	return max(d, 1)
}

// restore puts a resumed run where its checkpoint ckpt left it: the
// weights and optimiser states, the position, the log windows in progress,
// and metrics.jsonl cut back to the checkpoint's iteration. Then it moves
// the loader to the run's position (for a new run, ckpt nil: the start).
func (t *Trainer) restore(ckpt *Checkpoint) error {
	if ckpt != nil {
		if err := ckpt.LoadState(t.b, t.Model); err != nil {
			return err
		}
		t.pos = ckpt.State.Position
		t.win, t.ep = ckpt.State.win, ckpt.State.ep
		if err := truncateMetrics(t.opt.Dir, t.pos.Iter); err != nil {
			return err
		}
		fmt.Fprintf(t.log, "resuming %s at epoch %d, batch %d (iteration %d)\n", t.opt.Dir, t.pos.Epoch+1, t.pos.Index, t.pos.Iter)
	}
	return t.feed.loader.Seek(t.pos.Epoch, t.pos.Index)
}

// openMetrics opens the run's metrics writers (metrics.jsonl and a
// TensorBoard event file) and marks this process's start in the event
// file; resumed says the run continues from a checkpoint.
func (t *Trainer) openMetrics(resumed bool) error {
	var err error
	if t.metrics, err = metrics.Open(t.opt.Dir); err != nil {
		return err
	}
	// TensorBoard drops what earlier event files hold from this step on:
	// the records of a process that died after its last checkpoint (which
	// this run logs again), or, for a new run, those of an attempt that
	// died before its first checkpoint. Train records are stepped by
	// iteration, and a resumed run's first is pos.Iter+1. The other
	// records are stepped by epoch: the purge keeps every one the
	// checkpoint covers (its epoch is at most pos.Iter), but an epoch's
	// record logged after the checkpoint and logged again keeps its
	// earlier point as well (the same numbers on the CPU, where a resumed
	// run is exact).
	startStep := int64(0)
	if resumed {
		startStep = int64(t.pos.Iter) + 1
	}
	return t.metrics.MarkStart(startStep)
}

// LoadData loads the configured training and test sets, cut to the
// configured limits, and says where the test set comes from.
func LoadData(cfg configs.Config) (*Data, error) {
	d := cfg.Data
	train, test, split, err := dataset.LoadSplit(d.Dataset, d.Dir(), d.TestFraction)
	if err != nil {
		return nil, err
	}
	if d.TrainLimit > 0 && d.TrainLimit < train.N {
		train = train.Subset(d.TrainLimit)
	}
	if d.TestLimit > 0 && d.TestLimit < test.N {
		test = test.Subset(d.TestLimit)
	}
	if test.N == 0 {
		return nil, fmt.Errorf("data.dataset %s: the test set is empty (%s): with data.test_fraction = %v no class of %s has enough images to hold one out; raise data.test_fraction, add images, or give %s train/ and test/ sub-folders",
			d.Dataset, split, d.TestFraction, d.Dir(), d.Dir())
	}
	if train.N < cfg.Train.Batch {
		return nil, fmt.Errorf("data.dataset %s: %d training images, fewer than one batch of %d", d.Dataset, train.N, cfg.Train.Batch)
	}
	return &Data{Train: train, Test: test, Split: split}, nil
}

// Condition returns the configured condition with the weight overrides.
func Condition(cfg configs.Config) (conditions.Condition, error) {
	c, err := conditions.Lookup(cfg.Train.Condition)
	if err != nil {
		return c, fmt.Errorf("train.condition: %w", err)
	}
	w, err := cfg.Train.Weights()
	if err != nil {
		return c, err
	}
	c.W, c.N, c.R, c.Epsilon = w.Wake, w.NREM, w.REM, w.WakeNoise
	c.Lambda = cfg.Train.Lambda
	return c, c.Validate()
}

// Close releases the run: loader, metrics files, device buffers and lock.
func (t *Trainer) Close() error {
	var errs []error
	if t.feed != nil {
		errs = append(errs, t.feed.close())
	}
	if t.metrics != nil {
		errs = append(errs, t.metrics.Close())
	}
	if t.enc != nil {
		t.enc.Close()
	}
	if t.unlock != nil {
		t.unlock()
		t.unlock = nil
	}
	return errors.Join(errs...)
}

// Position returns where the run stands.
func (t *Trainer) Position() Position { return t.pos }

// Dir returns the run directory.
func (t *Trainer) Dir() string { return t.opt.Dir }

// Summary describes a finished (or interrupted) Run.
type Summary struct {
	Iters    int     // iterations run by this call
	Seconds  float64 // wall time of this call
	Last     [phases.NumStats]float32
	ProbeAcc float64 // the last probe's test accuracy (%), or NaN
}

// pendingIter is an iteration queued on the device whose numbers were not
// read yet.
type pendingIter struct {
	ticket phases.PendingStats
	pos    Position // after the iteration
}

// window accumulates the per-iteration numbers between two log lines.
type window struct {
	sum [phases.NumStats]float64
	n   int
}

func (w *window) add(s [phases.NumStats]float32) {
	for i, v := range s {
		w.sum[i] += float64(v)
	}
	w.n++
}

func (w *window) record(kind string, epoch, iter int, elapsed, itPerSec float64) metrics.Record {
	m := func(s phases.Stat) *float64 { return metrics.F(w.sum[s] / float64(w.n)) }
	r := metrics.Record{Kind: kind, Epoch: epoch, Iter: iter, Time: elapsed,
		WakeRec: m(phases.StatWakeRec), NREMRec: m(phases.StatNREM), KL: m(phases.StatKL),
		DX: m(phases.StatDX), DGZ: m(phases.StatDGZ), LatentNorm: m(phases.StatLatentNorm),
		DLoss: metrics.F((w.sum[phases.StatReal] + w.sum[phases.StatFake]) / float64(w.n)),
		GLoss: metrics.F(-w.sum[phases.StatFake] / float64(w.n)),
	}
	if itPerSec > 0 {
		r.ItPerSec = metrics.F(itPerSec)
	}
	return r
}

// statPhase names the phase and loss of each recorded number.
var statPhase = [phases.NumStats][2]string{
	phases.StatWakeRec: {"Wake", "reconstruction"}, phases.StatKL: {"Wake", "KL"},
	phases.StatReal: {"Wake", "real BCE"}, phases.StatNREM: {"NREM", "latent reconstruction"},
	phases.StatFake: {"REM", "fake BCE"}, phases.StatDX: {"Wake", "D(x)"},
	phases.StatDGZ: {"REM", "D(G(z))"}, phases.StatLatentNorm: {"Wake", "latent norm"},
}

// runState is what one call of Run carries from iteration to iteration.
type runState struct {
	sum     Summary
	started time.Time // when the call began
	elapsed float64   // seconds of training before this call (resumed runs)
	bpe     int       // batches per epoch
	prog    *progress
	// On backends that copy behind the host (backend.AsyncReader), lag is
	// true and the iterations' numbers are read once per log window: the
	// host queues the iterations of a window without waiting for the
	// device (up to t.depth of them, lagDepth), so the device never waits
	// for the host. Before anything that needs them (a log line, a
	// checkpoint, the end of an epoch or of the run, an interrupt) they
	// are all read: every record and checkpoint is the same as with a
	// wait after each iteration.
	lag  bool
	pend []pendingIter // the iterations whose numbers were not read, oldest first
	// The time and iteration of the last log line, for its rate.
	lastLog  time.Time
	lastIter int
}

// stop ends the call early (interrupted, or its probe failed): the summary
// gets the call's time, and err is returned.
func (r *runState) stop(err error) error {
	r.sum.Seconds = time.Since(r.started).Seconds()
	return err
}

// now returns the seconds of training so far, across resumptions.
func (r *runState) now() float64 { return r.elapsed + time.Since(r.started).Seconds() }

// Run trains until the configured epochs (or train.max_iters) are done, or
// ctx is cancelled (then it checkpoints and returns ErrInterrupted).
func (t *Trainer) Run(ctx context.Context) (_ Summary, runErr error) {
	cfg := t.cfg
	r := &runState{sum: Summary{ProbeAcc: math.NaN()}, bpe: t.feed.loader.BatchesPerEpoch()}
	// A batch fetched ahead for an iteration that did not run goes back,
	// so that the next Run (or a resume) starts with it. When the run
	// failed, the device's error is already the run's: it is not repeated.
	defer func() {
		if err := t.feed.drop(); err != nil && runErr == nil {
			fmt.Fprintf(t.log, "warning: %v\n", err)
		}
	}()
	r.started = time.Now()
	// The records of the earlier processes: the time they trained, and the
	// probes they ran.
	recs, _, err := metrics.ReadFile(filepath.Join(t.opt.Dir, metrics.FileName))
	if err != nil {
		recs = nil
	}
	if len(recs) > 0 {
		r.elapsed = recs[len(recs)-1].Time
	}
	r.prog = newProgress(t.log, t.opt.Progress, cfg.Train.Epochs, r.bpe, cfg.Train.MaxIters)
	defer r.prog.done()

	if err := t.probeMissing(ctx, r, recs); err != nil {
		return r.sum, err
	}
	r.lastLog = time.Now()
	r.lastIter = t.pos.Iter
	r.lag = t.Model.AsyncStats()
	r.pend = make([]pendingIter, 0, t.depth+1)
	for t.pos.Epoch < cfg.Train.Epochs {
		for t.pos.Index < r.bpe {
			if cfg.Train.MaxIters > 0 && t.pos.Iter >= cfg.Train.MaxIters {
				return r.sum, t.finish(r)
			}
			if err := t.iteration(ctx, r); err != nil {
				return r.sum, err
			}
		}
		if err := t.endEpoch(ctx, r); err != nil {
			return r.sum, err
		}
	}
	return r.sum, t.finish(r)
}

// probeMissing runs, before the first iteration of a Run, a probe that is
// due at the run's position but missing from recs (metrics.jsonl): that of
// the untrained encoder (the first point of the accuracy curve), or that of
// an epoch whose end was checkpointed but whose probe was interrupted.
func (t *Trainer) probeMissing(ctx context.Context, r *runState, recs []metrics.Record) error {
	cfg := t.cfg
	if !(t.pos.Index == 0 && cfg.Eval.Every > 0 && t.pos.Epoch%cfg.Eval.Every == 0 && !probed(recs, t.pos.Epoch)) {
		return nil
	}
	acc, err := t.probe(ctx, r, t.pos.Epoch)
	if errors.Is(err, ErrInterrupted) && !fileExists(filepath.Join(t.opt.Dir, CheckpointName)) {
		// Interrupted before anything was trained: a checkpoint of the
		// start, so that --resume works as the message says.
		if cerr := t.checkpoint(); cerr != nil {
			return cerr
		}
	}
	if err != nil {
		return r.stop(err)
	}
	r.sum.ProbeAcc = acc
	return nil
}

// iteration trains the batch at the run's position: it queues the
// iteration on the device and moves the position on. Then it does what
// falls due: reading the numbers of the iterations queued (at once, or,
// where the backend copies behind the host, when a log line, a checkpoint
// or the end of the epoch needs them), the log line of the window, a
// periodic checkpoint, and when ctx is done in the middle of an epoch,
// the checkpoint of the interruption (ErrInterrupted).
func (t *Trainer) iteration(ctx context.Context, r *runState) error {
	cfg := t.cfg
	x, err := t.feed.next(t.pos.Epoch, t.pos.Index)
	if err != nil {
		return err
	}
	t.Model.Iterate(x, uint64(t.pos.Iter), t.pos.Index == 0)
	// The next batch of this epoch is copied while this iteration
	// computes (on backends with a copy stream).
	more := t.pos.Index+1 < r.bpe && (cfg.Train.MaxIters <= 0 || t.pos.Iter+1 < cfg.Train.MaxIters) && ctx.Err() == nil
	if err := t.feed.queued(t.pos.Epoch, t.pos.Index+1, more); err != nil {
		return err
	}
	ticket, err := t.Model.QueueStats()
	if err != nil {
		return fmt.Errorf("iteration %d: %w", t.pos.Iter, err)
	}
	t.pos.Iter++
	t.pos.Index++
	r.pend = append(r.pend, pendingIter{ticket: ticket, pos: t.pos})

	logDue := cfg.Train.LogEvery > 0 && t.pos.Iter%cfg.Train.LogEvery == 0
	ckptDue := cfg.Train.CheckpointEvery > 0 && t.pos.Iter%cfg.Train.CheckpointEvery == 0 && t.pos.Index < r.bpe
	last := t.pos.Index == r.bpe || (cfg.Train.MaxIters > 0 && t.pos.Iter >= cfg.Train.MaxIters)
	switch {
	case !r.lag || logDue || ckptDue || last || ctx.Err() != nil:
		if err := t.settle(r, 0); err != nil {
			return err
		}
	case len(r.pend) > t.depth:
		// A window longer than the lag allows: the oldest numbers now,
		// while the newer iterations compute.
		if err := t.settle(r, t.depth); err != nil {
			return err
		}
	}
	if logDue {
		if err := t.logWindow(r); err != nil {
			return err
		}
	}
	if ckptDue {
		if err := t.checkpoint(); err != nil {
			return err
		}
	}
	// After an epoch's last batch, the end of the epoch checkpoints and
	// stops (endEpoch): a checkpoint here would hold a batch index past
	// the epoch.
	if ctx.Err() != nil && t.pos.Index < r.bpe {
		if err := t.settle(r, 0); err != nil {
			return err
		}
		if err := t.checkpoint(); err != nil {
			return err
		}
		return r.stop(ErrInterrupted)
	}
	return nil
}

// settle reads the numbers of the pending iterations, oldest first, until
// keep are left, each once the device has them: it checks that they are
// finite and adds them to the summary, to the log window and the epoch's
// window, and to the progress display. The feeder gives the batches of
// the iterations read back to the loader.
func (t *Trainer) settle(r *runState, keep int) error {
	if n := len(r.pend) - keep; n > 1 {
		// The device runs the iterations in order: one wait, for the
		// newest iteration read, covers the older ones.
		if _, err := t.Model.WaitStats(r.pend[n-1].ticket); err != nil {
			return fmt.Errorf("iteration %d: %w", r.pend[n-1].pos.Iter-1, err)
		}
	}
	for len(r.pend) > keep {
		p := r.pend[0]
		n := copy(r.pend, r.pend[1:])
		r.pend = r.pend[:n]
		stats, err := t.Model.WaitStats(p.ticket)
		if err != nil {
			return fmt.Errorf("iteration %d: %w", p.pos.Iter-1, err)
		}
		t.feed.settled()
		for i, v := range stats {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &NonFiniteError{Phase: statPhase[i][0], Loss: statPhase[i][1], Value: v, Iter: p.pos.Iter - 1, Epoch: p.pos.Epoch}
			}
		}
		r.sum.Last = stats
		r.sum.Iters++
		t.win.add(stats)
		t.ep.add(stats)
		r.prog.update(p.pos, stats)
	}
	return nil
}

// logWindow writes the train record of the iterations since the last one
// (metrics.jsonl and TensorBoard) and its line on the log, and starts the
// next window.
func (t *Trainer) logWindow(r *runState) error {
	now := time.Now()
	rate := float64(t.pos.Iter-r.lastIter) / now.Sub(r.lastLog).Seconds()
	if err := t.metrics.Write(t.win.record(metrics.KindTrain, t.pos.Epoch, t.pos.Iter, r.now(), rate)); err != nil {
		return err
	}
	r.prog.line(t.pos, t.win, rate)
	t.win, r.lastLog, r.lastIter = window{}, now, t.pos.Iter
	return nil
}

// endEpoch closes the epoch whose last batch was just trained: its record,
// its samples (every train.sample_every epochs), the checkpoint of its
// end, and its probe (every eval.every epochs). The checkpoint comes
// before the probe: an interrupted probe loses no training, and a resumed
// run probes that epoch first. When ctx is done, it returns ErrInterrupted
// after the checkpoint.
func (t *Trainer) endEpoch(ctx context.Context, r *runState) error {
	cfg := t.cfg
	done := t.pos.Epoch + 1
	if t.ep.n > 0 {
		if err := t.metrics.Write(t.ep.record(metrics.KindEpoch, done, t.pos.Iter, r.now(), 0)); err != nil {
			return err
		}
	}
	t.ep = window{}
	if cfg.Train.SampleEvery > 0 && done%cfg.Train.SampleEvery == 0 {
		if err := t.writeSamples(done); err != nil {
			return err
		}
	}
	t.pos.Epoch, t.pos.Index = done, 0
	if err := t.checkpoint(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return r.stop(ErrInterrupted)
	}
	if cfg.Eval.Every > 0 && done%cfg.Eval.Every == 0 {
		acc, err := t.probe(ctx, r, done)
		if err != nil {
			return r.stop(err)
		}
		r.sum.ProbeAcc = acc
	}
	return nil
}

// finish ends a Run that trained what it was to: the summary gets the
// call's time, and the last checkpoint and metrics are written.
func (t *Trainer) finish(r *runState) error {
	r.sum.Seconds = time.Since(r.started).Seconds()
	if err := t.checkpoint(); err != nil {
		return err
	}
	return t.metrics.Sync()
}

func (t *Trainer) checkpoint() error {
	resolved, err := t.cfg.Resolved().TOML()
	if err != nil {
		return err
	}
	st := State{Position: t.pos, Config: string(resolved), ConfigHash: t.cfg.Hash(), HasOld: t.Model.HasOld(), win: t.win, ep: t.ep}
	if err := SaveCheckpoint(filepath.Join(t.opt.Dir, CheckpointName), t.b, t.Model, st); err != nil {
		return err
	}
	return t.metrics.Sync()
}

// probed tells whether recs hold the probe of epoch.
func probed(recs []metrics.Record, epoch int) bool {
	for _, r := range recs {
		if r.Kind == metrics.KindProbe && r.Epoch == epoch {
			return true
		}
	}
	return false
}

// probe encodes both sets with the current E, trains the paper's linear
// probe on the training features and records its accuracies. When ctx is
// done it stops between two batches of the encoding or two epochs of the
// probe and returns ErrInterrupted; the run's last checkpoint stands.
func (t *Trainer) probe(ctx context.Context, r *runState, epoch int) (float64, error) {
	pc := ProbeSettings(t.cfg)
	r.prog.probeStart(fmt.Sprintf("epoch %d: linear probe: encoding %d training and %d test images, then %d epochs of SGD",
		epoch, t.Train.N, t.Test.N, pc.Epochs))
	began := time.Now()
	res, err := ProbeContext(ctx, t.enc, t.Train, t.Test, pc)
	if ctx.Err() != nil {
		r.prog.message(fmt.Sprintf("epoch %d: linear probe interrupted after %.1f s", epoch, time.Since(began).Seconds()))
		return 0, ErrInterrupted
	}
	if err != nil {
		return 0, err
	}
	rec := metrics.Record{Kind: metrics.KindProbe, Epoch: epoch, Iter: t.pos.Iter, Time: r.now(),
		TrainAcc: metrics.F(res.TrainAcc), TestAcc: metrics.F(res.TestAcc), TestAccAll: metrics.F(res.TestAccAll)}
	if err := t.metrics.Write(rec); err != nil {
		return 0, err
	}
	r.prog.message(fmt.Sprintf("epoch %d: linear probe test accuracy %.2f%% (train %.2f%%) in %.1f s", epoch, res.TestAcc, res.TrainAcc, time.Since(began).Seconds()))
	return res.TestAcc, nil
}

// ProbeSettings returns the probe configuration of cfg.
func ProbeSettings(cfg configs.Config) eval.ProbeConfig {
	return eval.ProbeConfig{Epochs: cfg.Eval.ProbeEpochs, Batch: cfg.Eval.ProbeBatch, LR: cfg.Eval.ProbeLR, Seed: cfg.Seed}
}

// Probe runs the linear probe on the encodings of train and test.
func Probe(enc *eval.FrozenEncoder, train, test *dataset.Set, pc eval.ProbeConfig) (eval.ProbeResult, error) {
	return ProbeContext(context.Background(), enc, train, test, pc)
}

// ProbeContext is Probe that stops with ctx's error once ctx is done:
// between two batches of the encoding or two epochs of the probe.
func ProbeContext(ctx context.Context, enc *eval.FrozenEncoder, train, test *dataset.Set, pc eval.ProbeConfig) (eval.ProbeResult, error) {
	ftr, err := enc.EncodeContext(ctx, train, nil)
	if err != nil {
		return eval.ProbeResult{}, err
	}
	fte, err := enc.EncodeContext(ctx, test, nil)
	if err != nil {
		return eval.ProbeResult{}, err
	}
	pc.Stop = ctx.Err
	pc.Classes = max(len(train.Classes), 2)
	return eval.RunProbe(ftr, fte, pc)
}

// writeFileAtomic writes data to path through a temporary file
// (internal/atomicfile: synced, renamed, directory synced). The file keeps
// the permission bits of the one it replaces, or gets 0644.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, atomicfile.KeepMode)
}

// truncateMetrics drops the records written after iteration iter (by a
// process that died after its last checkpoint), so a resumed run does not
// repeat them.
func truncateMetrics(dir string, iter int) error {
	path := filepath.Join(dir, metrics.FileName)
	if !fileExists(path) {
		return nil
	}
	recs, _, err := metrics.ReadFile(path)
	if err != nil {
		return err
	}
	var keep []byte
	for _, r := range recs {
		if r.Iter > iter {
			continue
		}
		line, err := r.MarshalJSON()
		if err != nil {
			return err
		}
		keep = append(append(keep, line...), '\n')
	}
	return writeFileAtomic(path, keep)
}

// staleTempPatterns match the temporary files of the atomic writes into a
// run directory: the checkpoint's (safetensors.WriteFileAtomic) and those of
// config.toml and metrics.jsonl (writeFileAtomic).
var staleTempPatterns = []string{
	"." + CheckpointName + ".tmp*",
	".config.toml.tmp*",
	"." + metrics.FileName + ".tmp*",
}

// removeStaleTemps removes the temporary files a process killed in the
// middle of an atomic write left in dir. The caller holds dir's lock.
func removeStaleTemps(dir string, log io.Writer) error {
	var n int
	for _, pat := range staleTempPatterns {
		names, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return err
		}
		for _, name := range names {
			if st, err := os.Lstat(name); err != nil || !st.Mode().IsRegular() {
				continue
			}
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("run %s: removing the stale temporary file %s: %w", dir, name, err)
			}
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(log, "removed %d temporary file(s) left in %s by an interrupted write\n", n, dir)
	}
	return nil
}

// setAsideOrphanMetrics renames the metrics.jsonl of a run that is
// started afresh to metrics.jsonl.abandoned-N and returns that path ("" when
// there was none): with no checkpoint, its records come from an earlier
// attempt that died before its first checkpoint, and the new run would
// repeat them.
func setAsideOrphanMetrics(dir string) (string, error) {
	path := filepath.Join(dir, metrics.FileName)
	if !fileExists(path) {
		return "", nil
	}
	for k := 1; ; k++ {
		aside := fmt.Sprintf("%s.abandoned-%d", path, k)
		if _, err := os.Lstat(aside); err == nil {
			continue
		}
		if err := os.Rename(path, aside); err != nil {
			return "", fmt.Errorf("run %s: setting aside the records of an attempt without a checkpoint: %w", dir, err)
		}
		return aside, nil
	}
}
