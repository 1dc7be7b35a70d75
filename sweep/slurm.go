package sweep

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pad-dreaming/pad/internal/shell"
)

// Slurm describes the sbatch script WriteSlurm writes.
type Slurm struct {
	// Name is the job name (--job-name).
	Name string
	// Parallel throttles the array: at most Parallel tasks run at once
	// (--array=0-N%Parallel); 0 leaves it to the scheduler.
	Parallel int
	// GPUs per task: 1 (--gres=gpu:1), or 0 for CPU-only tasks.
	GPUs int
	// CPUs per task (--cpus-per-task) and MemoryGiB per task (--mem); 0
	// leaves them out.
	CPUs, MemoryGiB int
	// Partition and Time (--partition, --time, e.g. "24:00:00"); empty
	// leaves them to the cluster's defaults. A Time limit must be at least
	// minSlurmTime: pad is signalled signalLead before it.
	Partition, Time string
	// Extra holds more sbatch options, each written as an #SBATCH line
	// (e.g. "--account=lab").
	Extra []string
	// LogDir is where each task writes its log, <LogDir>/<job>-<array
	// job id>_<index>.out; it must exist before sbatch (the script says so).
	LogDir string
	// Binary is the pad executable the tasks run (default "pad" on the
	// PATH). Ignored with Image.
	Binary string
	// Image, when set, runs pad in a container with Apptainer: a .sif
	// file (build it once with `apptainer pull pad.sif docker://IMAGE`),
	// or a docker:// reference.
	Image string
	// Command is the command line that generated the file, written into
	// its header.
	Command string
}

var slurmTime = regexp.MustCompile(`^(\d+-)?\d+(:\d+){0,2}$`)

// signalLead is how long before the time limit Slurm sends pad SIGTERM
// (#SBATCH --signal=B:TERM@300): time to finish the iteration, or the
// linear probe of an epoch's end, and write the checkpoint.
const signalLead = 5 * time.Minute

// minSlurmTime is the shortest --time WriteSlurm accepts. Slurm sends the
// signal when less than signalLead is left, checking every half minute or
// so: with a shorter limit pad is stopped as soon as it starts (on a real
// Slurm 22.05, --time 1 brought SIGTERM 10 seconds into the task).
const minSlurmTime = 10 * time.Minute

// parseSlurmTime reads a Slurm time limit: minutes, minutes:seconds,
// hours:minutes:seconds, days-hours, days-hours:minutes or
// days-hours:minutes:seconds. 0 means no limit.
func parseSlurmTime(s string) (time.Duration, error) {
	if !slurmTime.MatchString(s) {
		return 0, fmt.Errorf("not a Slurm time limit")
	}
	days := 0
	d, rest, hasDays := strings.Cut(s, "-")
	if hasDays {
		days, _ = strconv.Atoi(d)
		s = rest
	}
	var f []int
	for _, p := range strings.Split(s, ":") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("not a Slurm time limit")
		}
		f = append(f, n)
	}
	var h, m, sec int
	switch {
	case hasDays:
		h = f[0]
		if len(f) > 1 {
			m = f[1]
		}
		if len(f) > 2 {
			sec = f[2]
		}
	case len(f) == 1:
		m = f[0]
	case len(f) == 2:
		m, sec = f[0], f[1]
	default:
		h, m, sec = f[0], f[1], f[2]
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

// Check validates the options; the messages name the flag.
func (o Slurm) Check() error {
	if o.Name == "" || strings.ContainsAny(o.Name, " \t\n'\"$`\\%") {
		return fmt.Errorf("--name %q: a Slurm job name without spaces, quotes, '$' or '%%'", o.Name)
	}
	if o.GPUs < 0 || o.GPUs > 1 {
		return fmt.Errorf("--gpus %d: a run uses one GPU; give 1 (the default) or 0 for CPU-only tasks", o.GPUs)
	}
	if o.Parallel < 0 {
		return fmt.Errorf("--parallel %d: want 0 (no throttle) or more", o.Parallel)
	}
	if o.Time != "" {
		d, err := parseSlurmTime(o.Time)
		if err != nil {
			return fmt.Errorf("--time %q: want a Slurm time limit such as 90, 12:00:00 or 2-00:00:00", o.Time)
		}
		if d > 0 && d < minSlurmTime {
			return fmt.Errorf("--time %s: at least %d minutes; Slurm signals pad %d minutes before the limit to write its checkpoint, so a shorter task would stop at once",
				o.Time, int(minSlurmTime.Minutes()), int(signalLead.Minutes()))
		}
	}
	for _, f := range []struct{ flag, v string }{{"--partition", o.Partition}, {"--log-dir", o.LogDir}} {
		if strings.ContainsAny(f.v, " \t\n'\"$`\\") {
			return fmt.Errorf("%s %q: no spaces, quotes, '$' or backslashes", f.flag, f.v)
		}
	}
	for _, e := range o.Extra {
		if !strings.HasPrefix(e, "-") || strings.ContainsAny(e, "\n") {
			return fmt.Errorf("--sbatch %q: want one sbatch option such as --account=lab", e)
		}
	}
	return nil
}

// WriteSlurm writes a bash script for sbatch that runs the sweep as a job
// array: task I (0..N-1, from SLURM_ARRAY_TASK_ID) runs `pad sweep run
// --index I` with the sweep's flags. Submitting the script again after a
// time limit, a node failure or a fix skips the finished runs and resumes
// the others from their checkpoints.
func WriteSlurm(out io.Writer, w Worker, o Slurm) error {
	if err := o.Check(); err != nil {
		return err
	}
	logDir := o.LogDir
	if logDir == "" {
		logDir = "."
	}
	var b bytes.Buffer
	b.WriteString("#!/bin/bash\n")
	writeSlurmHeader(&b, w, o, logDir)
	writeSlurmDirectives(&b, o, w.Spec.Len(), logDir)
	writeSlurmBody(&b, w, o)
	_, err := out.Write(b.Bytes())
	return err
}

// writeSlurmHeader writes the comment block after the script's #! line:
// what it runs, the commands to submit the array (creating logDir first)
// and follow its tasks, where their logs go, how to resume, and the
// index → run table. Whoever submits the script may not have the command
// that generated it at hand, so the script says how to use it.
func writeSlurmHeader(b *bytes.Buffer, w Worker, o Slurm, logDir string) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := w.Spec
	writeIntro(b, "Slurm", s, o.Command)
	p("#   mkdir -p %s && sbatch FILE   submit, from %s\n", logDir, w.submitDirs())
	p("#   squeue -r --name=%s   the array's tasks\n", o.Name)
	p("#   sacct -X --name=%s --format=JobID,State,ExitCode,Elapsed   how they ended\n", o.Name)
	p("# Each task's log: %s/%s-<job id>_<index>.out. Submit the same file again to\n", logDir, o.Name)
	p("# resume: finished runs exit at once, interrupted ones continue from their\n")
	p("# checkpoints. When all are done: pad report %s\n", w.RunsDir)
	p("#\n")
	writeRunTable(b, s, "# ")
	p("#\n")
}

// writeSlurmDirectives writes the #SBATCH lines for an array of n tasks
// logging into logDir: the array and its throttle, the resources asked
// for, the signal before the time limit and the requeueing that let a
// task checkpoint and resume, the log file, and the Extra options last.
// A partition or time limit left to the cluster gets a comment instead,
// saying so and which flag sets it.
func writeSlurmDirectives(b *bytes.Buffer, o Slurm, n int, logDir string) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	array := fmt.Sprintf("0-%d", n-1)
	if o.Parallel > 0 && o.Parallel < n {
		array += fmt.Sprintf("%%%d", o.Parallel)
	}
	p("#SBATCH --job-name=%s\n", o.Name)
	p("#SBATCH --array=%s\n", array)
	if o.GPUs > 0 {
		p("#SBATCH --gres=gpu:%d\n", o.GPUs)
	}
	if o.CPUs > 0 {
		p("#SBATCH --cpus-per-task=%d\n", o.CPUs)
	}
	if o.MemoryGiB > 0 {
		p("#SBATCH --mem=%dG\n", o.MemoryGiB)
	}
	if o.Partition != "" {
		p("#SBATCH --partition=%s\n", o.Partition)
	} else {
		p("# (no --partition: the cluster's default; add one with pad sweep --partition)\n")
	}
	if o.Time != "" {
		p("#SBATCH --time=%s\n", o.Time)
	} else {
		p("# (no --time: the partition's default limit; add one with pad sweep --time)\n")
	}
	p("#SBATCH --signal=B:TERM@%d\n", int(signalLead.Seconds()))
	p("#SBATCH --requeue\n")
	p("#SBATCH --output=%s\n", path.Join(logDir, "%x-%A_%a.out"))
	p("#SBATCH --open-mode=append\n")
	for _, e := range o.Extra {
		p("#SBATCH %s\n", e)
	}
}

// writeSlurmBody writes the commands each task runs, after a blank line
// that ends the directives: a comment on what the signal and requeue
// directives mean for pad, strict bash settings, a check that sbatch set
// the task's index, a first log line naming the task, its node and GPUs,
// and last the command that runs pad (writeSlurmExec).
func writeSlurmBody(b *bytes.Buffer, w Worker, o Slurm) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("\n")
	p("# --signal: five minutes before the time limit pad gets SIGTERM, finishes the\n")
	p("# iteration, writes its checkpoint and exits (code 130: sacct shows FAILED);\n")
	p("# resubmit to go on. scancel, preemption and scontrol requeue stop it the same\n")
	p("# way. --requeue: a task requeued after a node failure or preemption resumes\n")
	p("# by itself; --open-mode=append keeps the log of its earlier attempts.\n")
	p("set -euo pipefail\n")
	p(": \"${SLURM_ARRAY_TASK_ID:?submit this script with sbatch, which sets SLURM_ARRAY_TASK_ID}\"\n")
	p("echo \"pad sweep task $SLURM_ARRAY_TASK_ID of %d on $(hostname), GPUs: ${CUDA_VISIBLE_DEVICES:-none}\"\n", w.Spec.Len())
	writeSlurmExec(b, w, o)
}

// writeSlurmExec writes the line that replaces the task's shell with pad,
// given the worker's arguments with the array task's index as the run
// index: `apptainer exec` on the Image with Image set, binding the
// absolute runs and data directories and, for GPU tasks, the host's
// NVIDIA driver; otherwise the Binary, which PAD in the environment
// overrides. exec hands pad the signals Slurm sends to the batch shell.
func writeSlurmExec(b *bytes.Buffer, w Worker, o Slurm) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	args := shellLines(w.Args("__INDEX__"))
	args = strings.Replace(args, "__INDEX__", `"$SLURM_ARRAY_TASK_ID"`, 1)
	switch {
	case o.Image != "":
		img := o.Image
		if !strings.HasSuffix(img, ".sif") && !strings.Contains(img, "://") {
			img = "docker://" + img
		}
		nv := ""
		if o.GPUs > 0 {
			nv = "--nv "
		}
		binds := ""
		for _, d := range []string{w.RunsDir, w.Spec.DataDir} {
			if path.IsAbs(d) {
				binds += "--bind " + shell.Quote(d) + " "
			}
		}
		p("# Apptainer mounts the submit directory (the working directory) by default;\n")
		p("# --nv brings in the host's NVIDIA driver.\n")
		p("exec apptainer exec %s%s%s pad %s\n", nv, binds, shell.Quote(img), args)
	default:
		bin := o.Binary
		if bin == "" {
			bin = "pad"
		}
		p("PAD=${PAD:-%s} # the pad binary; override with PAD=/path/to/pad sbatch ...\n", shell.Quote(bin))
		p("exec \"$PAD\" %s\n", args)
	}
}

// submitDirs names the relative directories the submit directory must
// hold, e.g. "data/ and runs/".
func (w Worker) submitDirs() string {
	data := w.Spec.DataDir
	if data == "" {
		data = "data"
	}
	var rel []string
	for _, d := range []string{data, w.RunsDir} {
		if d != "" && !path.IsAbs(d) {
			rel = append(rel, path.Clean(d)+"/")
		}
	}
	if len(rel) == 0 {
		return "any directory"
	}
	return "the directory holding " + strings.Join(rel, " and ")
}

// shellLines joins args like shell.Join, starting a continued line before
// each flag (an argument beginning with "--") after the first.
func shellLines(args []string) string {
	var b strings.Builder
	for i, a := range args {
		switch {
		case i == 0:
		case strings.HasPrefix(a, "--") && i > 2:
			b.WriteString(" \\\n    ")
		default:
			b.WriteString(" ")
		}
		b.WriteString(shell.Quote(a))
	}
	return b.String()
}
