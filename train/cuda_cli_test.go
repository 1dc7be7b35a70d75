//go:build unix

package train

// Child-process tests of `pad train --device cuda` on pad's simulated GPU
// (internal/cudasim; TestMain points PAD_CUDA_LIB_DIR at it): a SIGTERM
// and --resume give the uninterrupted run's checkpoint, and every fault the
// simulation can inject (PAD_CUDASIM_FAULT) gets a clear error naming the
// cause, leaves the last checkpoint as it was, and --resume without the
// fault ends exactly where the uninterrupted run does. On a machine with
// a GPU the same runs use the hardware, without the faults.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/cu"
	"github.com/pad-dreaming/pad/internal/testkit"
)

// cudaSets turn the crash tests' tiny run (childSets) into a GPU run: 2
// epochs of 10 batches, a checkpoint after every iteration.
var cudaSets = []string{"device.kind=cuda", "train.epochs=2"}

// cudaChild is a pad train child on the GPU, with env added to its
// environment (the simulation's faults).
type cudaChild struct {
	padCmd
	env []string
}

func (c cudaChild) run(t *testing.T, resume bool) (int, string) {
	t.Helper()
	w := &watcher{}
	cmd := c.command(w, resume)
	cmd.Env = append(os.Environ(), c.env...)
	return exitCodeOf(t, cmd.Run()), w.text()
}

func TestCUDATrainCLI(t *testing.T) {
	runtimeGPU(t)
	bin := buildPad(t)
	base := t.TempDir()
	// The children share the user's kernel and verdict caches (as the
	// other GPU tests do): the GPU's quick check runs once per machine
	// and pad binary, not in every child.
	t.Setenv("PAD_CUDASIM_QUIET", "1")
	child := func(name string, env ...string) cudaChild {
		return cudaChild{padCmd: newPadCmd(bin, filepath.Join(base, name), cudaSets...), env: env}
	}
	ref := child("ref")
	if code, out := ref.run(t, false); code != 0 {
		t.Fatalf("uninterrupted run on the GPU: exit %d\n%s", code, out)
	}

	// SIGTERM (as cluster schedulers send) in each epoch: exit 130 with a
	// checkpoint; --resume continues to the uninterrupted run's bits.
	t.Run("SIGTERM and resume", func(t *testing.T) {
		p := child("sigterm")
		interrupted := regexp.MustCompile(`interrupted after iteration (\d+); checkpoint written`)
		// Signals at iterations 3 and 11 of 20: a loaded machine may log
		// the iteration seconds before the signal lands, and the run must
		// still be going then.
		for i, after := range []int{3, 11} {
			w := &watcher{}
			cmd := p.command(w, i > 0)
			cmd.Env = append(os.Environ(), p.env...)
			err := signalAfter(t, cmd, w, after, 5*time.Minute, syscall.SIGTERM)
			m := interrupted.FindStringSubmatch(w.text())
			if code := exitCodeOf(t, err); code != 130 || m == nil {
				t.Fatalf("SIGTERM after iteration %d: exit %d, want 130 and the interrupted message\n%s", after, code, w.text())
			}
			c, rerr := ReadCheckpoint(filepath.Join(p.dir(), CheckpointName))
			if n, _ := strconv.Atoi(m[1]); rerr != nil || c.State.Iter != n {
				t.Fatalf("interrupted after iteration %s: checkpoint %v (%v)", m[1], c.State.Position, rerr)
			}
		}
		if code, out := p.run(t, true); code != 0 {
			t.Fatalf("--resume: exit %d\n%s", code, out)
		}
		sameAsReference(t, ref.dir(), p.dir())
	})

	if !cu.Simulated() {
		return // faults are the simulation's
	}
	five := child("five")
	five.sets = append(five.sets, "train.max_iters=5")
	if code, out := five.run(t, false); code != 0 {
		t.Fatalf("first 5 iterations: exit %d\n%s", code, out)
	}
	// Each fault after 5 good iterations (a --resume of a run stopped
	// there): exit 1, a message naming the cause, the checkpoint of
	// iteration 5 unchanged, and --resume without the fault completing
	// the run exactly.
	for _, tc := range []struct {
		name, fault string
		want        []string
	}{
		{"out of memory", "oom@3", []string{"out of memory", "CUDA_ERROR_OUT_OF_MEMORY"}},
		{"kernel fails", "launch@40", []string{"a kernel failed on the GPU", "CUDA_ERROR_LAUNCH_FAILED", "is intact", "--resume"}},
		{"device lost", "lost@60", []string{"the GPU stopped responding or became unavailable", "CUDA_ERROR_DEVICE_UNAVAILABLE", "is intact", "--resume"}},
		{"cuDNN fails", "fail=cudnnConvolutionBackwardFilter@7", []string{"cudnnConvolutionBackwardFilter", "CUDNN_STATUS_INTERNAL_ERROR", "is intact", "--resume"}},
		{"cuDNN cannot start", "fail=cudnnCreate", []string{"GPU 0 could not be set up", "cudnnCreate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := child("fault-" + strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.CopyFS(p.dir(), os.DirFS(five.dir())); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(p.dir(), CheckpointName)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			faulty := p
			faulty.env = []string{"PAD_CUDASIM_FAULT=" + tc.fault}
			code, out := faulty.run(t, true)
			if code != 1 {
				t.Fatalf("PAD_CUDASIM_FAULT=%s: exit %d, want 1\n%s", tc.fault, code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("PAD_CUDASIM_FAULT=%s: the error does not say %q:\n%s", tc.fault, w, out)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "warning:") {
				t.Errorf("PAD_CUDASIM_FAULT=%s: a panic or a repeated warning:\n%s", tc.fault, out)
			}
			if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, good) {
				t.Fatalf("PAD_CUDASIM_FAULT=%s changed the checkpoint of iteration 5 (%v)", tc.fault, err)
			}
			if code, out := p.run(t, true); code != 0 {
				t.Fatalf("--resume without the fault: exit %d\n%s", code, out)
			}
			sameAsReference(t, ref.dir(), p.dir())
		})
	}

	// A failed capture is not fatal: the recorder runs that step directly
	// and the run is the uninterrupted run, bit for bit (graphs and direct
	// launches compute the same bits; pad doctor checks that too).
	t.Run("capture fails", func(t *testing.T) {
		p := child("capture")
		p.env = []string{"PAD_CUDASIM_FAULT=capture@2"}
		if code, out := p.run(t, false); code != 0 {
			t.Fatalf("PAD_CUDASIM_FAULT=capture@2: exit %d\n%s", code, out)
		}
		sameAsReference(t, ref.dir(), p.dir())
	})

	// --device auto: a driver that finds no usable GPU means the CPU, with
	// a notice saying why.
	t.Run("auto falls back", func(t *testing.T) {
		p := child("auto")
		p.sets = append(p.sets, "device.kind=auto", "train.max_iters=2")
		p.env = []string{"PAD_CUDASIM_FAULT=fail=cuInit"}
		code, out := p.run(t, false)
		if code != 0 || !strings.Contains(out, "notice: cuInit(0): CUDA_ERROR_UNKNOWN") || !strings.Contains(out, "using the CPU") ||
			!strings.Contains(out, "on cpu") {
			t.Fatalf("--device auto without a usable GPU: exit %d, want 0, a notice and the CPU\n%s", code, out)
		}
	})
}

// runtimeGPU skips the test where there is neither a GPU nor the
// simulation (it fails where a GPU is expected).
func runtimeGPU(t *testing.T) {
	t.Helper()
	err := cu.Init()
	if err == nil {
		if n, derr := cu.DeviceCount(); derr != nil || n == 0 {
			err = fmt.Errorf("%d devices (%v)", n, derr)
		}
	}
	if err != nil {
		testkit.SkipOrFailNoGPU(t, err)
	}
}
