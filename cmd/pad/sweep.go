package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/configs"
	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/shell"
	"github.com/pad-dreaming/pad/sweep"
	"github.com/pad-dreaming/pad/train"
)

const sweepUsage = `
Usage:
  pad sweep --datasets LIST [--conditions LIST] [--seeds N] [--seed-start S]
            [--set key=value]... --emit list|local|k8s|slurm [flags]
  pad sweep run --index I <the same sweep flags>

A sweep is the paper's kind of study: every dataset × condition × seed,
each a 'pad train' run named <dataset>-<condition>-s<seed> in --runs, with
the dataset's built-in config (quickstart for the embedded sample), the
run's condition and seed, and the --set overrides. The runs are numbered
0..N-1, the dataset varying slowest and the seed fastest:
  i = (d·C + c)·S + (seed − seed-start)
for the d-th dataset and c-th condition of the lists as given, C
conditions and S seeds; the same flags always give the same numbering.

--emit list    print index, run, dataset, condition, seed and state
--emit local   run the sweep here: one run at a time on each GPU (or --gpus
               N), or one after another on the CPU; a rerun skips finished
               runs and resumes interrupted ones
--emit k8s     write a Kubernetes Indexed Job (needs --image)
--emit slurm   write an sbatch script for a job array
'pad sweep run --index I' is what each job runs: it trains run I, resumes
it from its checkpoint, or exits 0 at once when it is finished. Without
--index it reads JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID.
Aggregate a finished sweep with 'pad report RUNS'.

Example, the paper's CIFAR-10 and SVHN table on a cluster:
  pad sweep --datasets cifar10,svhn --conditions paper --seeds 4 \
    --set train.epochs=50 --set eval.every=1 \
    --emit k8s --image registry.example.com/pad:1.0 --out sweep.yaml
`

// sweepFlags are the flags that define a sweep, shared by the emitters
// and the worker.
type sweepFlags struct {
	datasets, conditions string
	seeds                int
	seedStart            uint64
	sets                 multiFlag
	data, runs, device   string
}

func addSweepFlags(fs *flag.FlagSet, f *sweepFlags) {
	fs.StringVar(&f.datasets, "datasets", "", "comma-separated datasets: "+strings.Join(configs.Datasets(), ", ")+" (required)")
	fs.StringVar(&f.conditions, "conditions", "paper", "comma-separated conditions; \"paper\" is the paper's five ("+strings.Join(sweep.PaperConditions(), ",")+"), \"all\" every one")
	fs.IntVar(&f.seeds, "seeds", 4, "number of seeds per dataset and condition")
	fs.Uint64Var(&f.seedStart, "seed-start", 1, "first seed")
	fs.Var(&f.sets, "set", "override a config key in every run, `key=value` (repeatable)")
	fs.StringVar(&f.data, "data", "", "`DIR` holding one folder per dataset; each run reads DIR/<dataset> (default: the config's data/<dataset>; /data for k8s)")
	fs.StringVar(&f.runs, "runs", "", "`DIR` holding the run directories (default runs; /runs for k8s)")
	fs.StringVar(&f.device, "device", "", "auto, cpu or cuda for every run (default: cuda for GPU jobs, cpu without GPUs; 'sweep run': the config's)")
}

// spec builds and validates the sweep; its mistakes are usage errors.
func (f *sweepFlags) spec() (sweep.Spec, error) {
	s := sweep.Spec{
		Datasets:   sweep.SplitList(f.datasets),
		Conditions: sweep.ExpandConditions(sweep.SplitList(f.conditions)),
		Seeds:      f.seeds,
		SeedStart:  f.seedStart,
		Sets:       f.sets,
		DataDir:    f.data,
	}
	switch f.device {
	case "", "auto", "cpu", "cuda":
	default:
		return s, usagef("sweep: --device %q: want auto, cpu or cuda", f.device)
	}
	if err := s.Validate(); err != nil {
		return s, usagef("sweep: %v", err)
	}
	return s, nil
}

func cmdSweep(args []string, e *env) error {
	if len(args) > 0 && args[0] == "run" {
		return sweepRun(args[1:], e)
	}
	fs := newFlags(e, "sweep", sweepUsage)
	var f sweepFlags
	addSweepFlags(fs, &f)
	emit := fs.String("emit", "list", "list, local, k8s or slurm")
	outPath := fs.String("out", "", "write the list, Job or script to `FILE` (default: standard output)")
	name := fs.String("name", "pad-sweep", "job name (k8s Job, Slurm --job-name)")
	image := fs.String("image", "", "container image with pad (k8s: required; slurm: run pad through Apptainer from IMAGE or a .sif file)")
	parallel := fs.Int("parallel", 0, "runs at once: k8s parallelism, Slurm array throttle, local runs (default: all; local: one per GPU)")
	gpus := fs.Int("gpus", -1, "local: GPUs to use (default: every visible one; 0 = CPU); k8s, slurm: GPUs per run, 1 (default) or 0")
	retries := fs.Int("retries", 3, "k8s: retries of a failed run (backoffLimitPerIndex); each resumes from the checkpoint")
	dataPVC := fs.String("data-pvc", "pad-data", "k8s: PersistentVolumeClaim with the datasets, mounted read-only at --data")
	runsPVC := fs.String("runs-pvc", "pad-runs", "k8s: PersistentVolumeClaim (ReadWriteMany) for the runs, mounted at --runs")
	namespace := fs.String("namespace", "", "k8s: the Job's namespace (default: kubectl's)")
	cpus := fs.Int("cpus", 8, "k8s, slurm: CPUs per run (0: no request)")
	mem := fs.Int("mem", 16, "k8s, slurm: memory per run in GiB (0: no request)")
	partition := fs.String("partition", "", "slurm: partition (default: the cluster's)")
	timeLimit := fs.String("time", "", "slurm: time limit per run, at least 10 minutes, e.g. 24:00:00 (default: the partition's); pad is signalled 5 minutes before it")
	var extra multiFlag
	fs.Var(&extra, "sbatch", "slurm: another sbatch `option`, e.g. --account=lab (repeatable)")
	logDir := fs.String("log-dir", "slurm-logs", "slurm: directory for the tasks' logs")
	bin := fs.String("bin", "pad", "slurm: the pad binary the tasks run (without --image)")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("sweep: unexpected argument %q (the command is 'pad sweep [flags]' or 'pad sweep run [flags]')", fs.Arg(0))
	}
	if f.datasets == "" {
		return usagef("sweep: --datasets is required (known: %s); see 'pad sweep --help'", strings.Join(configs.Datasets(), ", "))
	}
	switch *emit {
	case "list", "local", "k8s", "slurm":
	default:
		return usagef("sweep: --emit %q: want list, local, k8s or slurm", *emit)
	}
	if *emit == "k8s" {
		f.data = defaultString(f.data, "/data")
		f.runs = defaultString(f.runs, "/runs")
	}
	f.runs = defaultString(f.runs, "runs")
	s, err := f.spec()
	if err != nil {
		return err
	}
	if *emit == "local" {
		if *outPath != "" {
			return usagef("sweep: --out applies to --emit list, k8s and slurm; --emit local prints its summary")
		}
		return sweepLocal(s, &f, *gpus, *parallel, e)
	}

	command := "pad sweep " + shell.Join(withoutOut(args))
	var buf strings.Builder
	switch *emit {
	case "list":
		err = sweep.WriteList(&buf, s, f.runs)
	case "k8s", "slurm":
		g := *gpus
		if g < 0 {
			g = 1
		}
		device := f.device
		if device == "" {
			device = "cuda"
			if g == 0 {
				device = "cpu"
			}
		}
		w := sweep.Worker{Spec: s, RunsDir: f.runs, Device: device}
		if *emit == "k8s" {
			err = sweep.WriteK8s(&buf, w, sweep.K8s{
				Name: *name, Namespace: *namespace, Image: *image, Parallel: *parallel, Retries: *retries,
				GPUs: g, CPUs: *cpus, MemoryGiB: *mem, DataPVC: *dataPVC, RunsPVC: *runsPVC,
				UID: containerUID, Command: command,
			})
		} else {
			err = sweep.WriteSlurm(&buf, w, sweep.Slurm{
				Name: *name, Parallel: *parallel, GPUs: g, CPUs: *cpus, MemoryGiB: *mem,
				Partition: *partition, Time: *timeLimit, Extra: extra, LogDir: *logDir,
				Binary: *bin, Image: *image, Command: command,
			})
		}
		if err != nil {
			return usagef("sweep: %v", err)
		}
	}
	if err != nil {
		return err
	}
	if *outPath == "" {
		_, err = io.WriteString(e.stdout, buf.String())
		return err
	}
	mode := os.FileMode(0o644)
	if *emit == "slurm" {
		mode = 0o755
	}
	if err := os.WriteFile(*outPath, []byte(buf.String()), mode); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote %s: %s\n", *outPath, s.Describe())
	return nil
}

// containerUID is the user docker/Dockerfile creates for pad.
const containerUID = 10001

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// withoutOut drops --out and its value from args, so that a generated
// file's header names the command that regenerates it wherever it is
// written.
func withoutOut(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--out" || a == "-out":
			i++
		case strings.HasPrefix(a, "--out=") || strings.HasPrefix(a, "-out="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// sweepLocal runs the sweep on this machine through worker processes of
// this binary.
func sweepLocal(s sweep.Spec, f *sweepFlags, gpus, parallel int, e *env) error {
	if gpus < 0 {
		gpus = 0
		if f.device != "cpu" {
			n, err := cu.DeviceCount()
			switch {
			case err != nil:
				fmt.Fprintf(e.stderr, "notice: no usable GPU (%v); the runs go one after another on the CPU\n", err)
			default:
				gpus = n
			}
		}
	}
	if f.device == "cpu" && gpus > 0 {
		return usagef("sweep: --device cpu with --gpus %d: choose one", gpus)
	}
	if f.device == "cuda" && gpus == 0 {
		return usagef("sweep: --device cuda, but no GPU to run on (--gpus 0, or none visible)")
	}
	if parallel < 0 {
		return usagef("sweep: --parallel %d: want 0 (one per GPU) or more", parallel)
	}
	device := f.device
	if device == "" {
		device = "cpu"
		if gpus > 0 {
			device = "cuda"
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sweep: finding the pad executable to start the runs with: %w", err)
	}
	slots := parallel
	if slots == 0 {
		slots = max(gpus, 1)
	}
	where := "the CPU"
	if gpus > 0 {
		where = fmt.Sprintf("%d GPU(s)", gpus)
	}
	fmt.Fprintf(e.stderr, "sweep: %s; %d at a time on %s, in %s\n", s.Describe(), slots, where, f.runs)

	kill := make(chan struct{})
	ctx, stop := withInterrupts(context.Background(), func() {
		fmt.Fprintln(e.stderr, "sweep: interrupting the running runs (they write a checkpoint); Ctrl-C again kills them")
	}, func() { close(kill) })
	defer stop()

	l := sweep.Local{
		Exe:      exe,
		Worker:   sweep.Worker{Spec: s, RunsDir: f.runs, Device: device},
		GPUs:     gpus,
		Parallel: parallel,
		Log:      e.stderr,
		Tee:      slots == 1,
		Kill:     kill,
	}
	results, err := l.Run(ctx)
	if results != nil {
		fmt.Fprintln(e.stdout)
		if werr := sweep.WriteSummary(e.stdout, results); werr != nil {
			return werr
		}
		fmt.Fprintf(e.stdout, "aggregate with: pad report %s\n", f.runs)
	}
	if errors.Is(err, sweep.ErrInterrupted) {
		fmt.Fprintf(e.stderr, "run the same command again to resume\n")
		return errInterrupted
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

const sweepRunUsage = `
Usage: pad sweep run [--index I] <sweep flags> [--progress MODE]

Trains run I of the sweep the flags describe (see 'pad sweep --help' for
the numbering): a run whose directory holds a checkpoint is resumed, a
finished run exits 0 at once, others start from scratch. This is the
command the Kubernetes Job and the Slurm array run; without --index it
reads JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID. Exit codes as for
'pad train': 0 done, 1 error, 2 usage or config error, 130 interrupted
(checkpoint written).
`

// indexEnv are the variables the job engines put a worker's index in.
var indexEnv = []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"}

func sweepRun(args []string, e *env) error {
	fs := newFlags(e, "sweep run", sweepRunUsage)
	var f sweepFlags
	addSweepFlags(fs, &f)
	index := fs.Int("index", -1, "the run's index, 0..N-1 (default: $JOB_COMPLETION_INDEX or $SLURM_ARRAY_TASK_ID)")
	prog := fs.String("progress", "auto", "auto, bar, lines or none")
	if err := parse(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("sweep run: unexpected argument %q", fs.Arg(0))
	}
	if f.datasets == "" {
		return usagef("sweep run: --datasets is required (the same sweep flags as the emitting command)")
	}
	f.runs = defaultString(f.runs, "runs")
	s, err := f.spec()
	if err != nil {
		return err
	}
	i := *index
	if i < 0 {
		from := ""
		for _, v := range indexEnv {
			if val, ok := os.LookupEnv(v); ok {
				n, err := strconv.Atoi(strings.TrimSpace(val))
				if err != nil {
					return usagef("sweep run: %s=%q is not a run index", v, val)
				}
				i, from = n, v
				break
			}
		}
		if from == "" {
			return usagef("sweep run: no --index, and neither %s is set", strings.Join(indexEnv, " nor "))
		}
	}
	r, err := s.Run(i)
	if err != nil {
		return usagef("sweep run: --index: %v", err)
	}
	cfg, err := s.Config(r)
	if err != nil {
		return usagef("sweep run: %v", err)
	}
	dir := filepath.Join(f.runs, r.Name())
	st, err := sweep.Check(cfg, dir)
	if errors.Is(err, sweep.ErrOtherConfig) {
		// Exit 2: a retry cannot help (the Kubernetes Job fails the index).
		return usagef("sweep run %d (%s): %v", i, r.Name(), err)
	}
	if err != nil {
		return fmt.Errorf("sweep run %d (%s): %w", i, r.Name(), err)
	}
	head := fmt.Sprintf("sweep run %d of %d: %s", i, s.Len(), dir)
	resume := false
	switch st.State {
	case sweep.Finished:
		fmt.Fprintf(e.stderr, "%s is finished (%s); nothing to do\n", head, st.Progress())
		return nil
	case sweep.Partial:
		fmt.Fprintf(e.stderr, "%s: resuming at %s\n", head, st.Progress())
		resume = true
	default:
		fmt.Fprintf(e.stderr, "%s: starting\n", head)
	}
	// The run is trained as pad train trains it, with the same rules for
	// --device and --progress.
	if err := finishConfig(&cfg, f.device); err != nil {
		return err
	}
	mode, err := progressMode(*prog, e)
	if err != nil {
		return err
	}
	// In-process, on the main goroutine (locked to its thread for CUDA).
	out, err := train.Execute(context.Background(), trainJob(e, cfg, dir, resume, mode))
	err = reportTraining(e, out, err, dir, f.runs, resumeArgs(sweep.ConfigRef(r.Dataset), s.TrainSets(r), f.runs))
	if errors.Is(err, errInterrupted) {
		// Stopped by scancel, a requeue, preemption or the time limit's
		// signal: the way on is the job engine's, not pad train's.
		return fmt.Errorf("sweep run %d (%s): %w, checkpoint written; running the same task again (submitting the sweep again, a requeue or a retry) resumes it", i, r.Name(), err)
	}
	return err
}
