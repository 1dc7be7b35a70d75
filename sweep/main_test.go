package sweep

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/train"
)

// fakeWorkerEnv makes the test binary act as `pad sweep run`, so that
// Local can be tested without training (see fakeWorker).
const fakeWorkerEnv = "PAD_SWEEP_FAKE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeWorkerEnv) == "1" {
		os.Exit(fakeWorker(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// writeCheckpoint writes a checkpoint file that holds pad's metadata and no
// tensors: all Check reads.
func writeCheckpoint(dir, hash string, epoch, iter int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w := safetensors.NewWriter()
	w.SetMetadata("format", train.CheckpointFormat)
	w.SetMetadata("config_hash", hash)
	w.SetMetadata("epoch", strconv.Itoa(epoch))
	w.SetMetadata("index", "0")
	w.SetMetadata("iter", strconv.Itoa(iter))
	return safetensors.WriteFileAtomic(filepath.Join(dir, train.CheckpointName), w)
}

// fakeWorker parses a worker's command line as `pad sweep run` does and
// plays the run: it fails for the indices in PAD_FAKE_FAIL, holds
// PAD_FAKE_DIR/busy-gpu-K while it works (exit 3 if another worker holds
// it), sleeps PAD_FAKE_SLEEP (exiting 130 with a partial checkpoint on
// SIGINT), then writes a finished checkpoint.
func fakeWorker(args []string) int {
	if len(args) < 2 || args[0] != "sweep" || args[1] != "run" {
		fmt.Fprintf(os.Stderr, "fake worker: args %q do not start with sweep run\n", args)
		return 2
	}
	fs := flag.NewFlagSet("sweep run", flag.ContinueOnError)
	datasets := fs.String("datasets", "", "")
	conditions := fs.String("conditions", "", "")
	seeds := fs.Int("seeds", 0, "")
	seedStart := fs.Uint64("seed-start", 1, "")
	var sets setsFlag
	fs.Var(&sets, "set", "")
	data := fs.String("data", "", "")
	runs := fs.String("runs", "", "")
	device := fs.String("device", "", "")
	index := fs.Int("index", -1, "")
	fs.String("progress", "", "")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	s := Spec{Datasets: SplitList(*datasets), Conditions: SplitList(*conditions), Seeds: *seeds, SeedStart: *seedStart, Sets: sets, DataDir: *data}
	r, err := s.Run(*index)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg, err := s.Config(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("fake worker %d: %s device=%s gpu=%d threads=%d\n", r.Index, r.Name(), *device, cfg.Device.GPU, cfg.Device.Threads)
	for _, f := range SplitList(os.Getenv("PAD_FAKE_FAIL")) {
		if f == strconv.Itoa(r.Index) {
			fmt.Fprintln(os.Stderr, "fake failure")
			return 1
		}
	}
	dir := filepath.Join(*runs, r.Name())
	if d := os.Getenv("PAD_FAKE_DIR"); d != "" && *device == "cuda" {
		busy := filepath.Join(d, fmt.Sprintf("busy-gpu-%d", cfg.Device.GPU))
		f, err := os.OpenFile(busy, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gpu %d is busy\n", cfg.Device.GPU)
			return 3
		}
		f.Close()
		defer os.Remove(busy)
		used, _ := os.OpenFile(filepath.Join(d, "used"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		fmt.Fprintf(used, "%d %d\n", r.Index, cfg.Device.GPU)
		used.Close()
	}
	if d, err := time.ParseDuration(os.Getenv("PAD_FAKE_SLEEP")); err == nil {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-time.After(d):
		case <-sig:
			if err := writeCheckpoint(dir, cfg.Hash(), 0, 3); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Fprintln(os.Stderr, "interrupted")
			return 130
		}
	}
	if err := writeCheckpoint(dir, cfg.Hash(), cfg.Train.Epochs, 10); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type setsFlag []string

func (s *setsFlag) String() string     { return strings.Join(*s, ",") }
func (s *setsFlag) Set(v string) error { *s = append(*s, v); return nil }
