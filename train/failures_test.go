//go:build unix

package train

// Child-process tests of the failures a user meets at the command line: a
// disk that refuses the checkpoint write, two processes on one run, Ctrl-C,
// and a run whose checkpoint was replaced by another model's or another
// program's file. Helpers are in crash_test.go.

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/metrics"
	"github.com/pad-dreaming/pad/model"
)

// sameAsReference checks that the run in dir completed exactly as ref.
func sameAsReference(t *testing.T, ref, dir string) {
	t.Helper()
	sameCheckpoint(t, ref, dir)
	sameRecords(t, "train and epoch records", recordsOf(t, ref, metrics.KindTrain, metrics.KindEpoch), recordsOf(t, dir, metrics.KindTrain, metrics.KindEpoch))
}

// TestCLIFailures runs the pad binary through the failures a run meets.
func TestCLIFailures(t *testing.T) {
	bin := buildPad(t)
	base := t.TempDir()
	refCmd := newPadCmd(bin, filepath.Join(base, "ref"))
	if code, out := refCmd.run(t, false); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
	}
	ref := refCmd.dir()

	// The file-size limit (RLIMIT_FSIZE, set by the shell's ulimit) makes
	// the checkpoint write fail with EFBIG after a good checkpoint exists:
	// pad exits 1 naming the checkpoint and the error, the previous
	// checkpoint is intact and loads, and --resume without the limit
	// completes the run exactly.
	t.Run("file size limit", func(t *testing.T) {
		p := newPadCmd(bin, filepath.Join(base, "fsize"))
		if code, out := p.run(t, false, "--set", "train.max_iters=5"); code != 0 {
			t.Fatalf("first 5 iterations: exit %d\n%s", code, out)
		}
		path := filepath.Join(p.dir(), CheckpointName)
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// 100 blocks of 512 (dash) or 1024 (bash) bytes: metrics.jsonl and
		// the event file stay below, the checkpoint (about 120 KB) not.
		w := &watcher{}
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -f 100 && exec "$0" "$@"`, bin}, p.args(true)...)...)
		cmd.Stdout, cmd.Stderr = w, w
		code := exitCodeOf(t, cmd.Run())
		out := w.text()
		if code != 1 {
			t.Fatalf("under a 100-block file size limit: exit %d, want 1\n%s", code, out)
		}
		for _, want := range []string{"checkpoint " + path, "file too large", "the previous checkpoint is unchanged"} {
			if !strings.Contains(out, want) {
				t.Errorf("the error does not say %q:\n%s", want, out)
			}
		}
		if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, good) {
			t.Fatalf("the previous checkpoint changed (%v)", err)
		}
		c, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		m := tinyModel(t, model.Spec{C: 1, NF: 4, NZ: 8, Batch: 16}, 1)
		if err := c.LoadState(m.Backend(), m); err != nil || c.State.Iter != 5 {
			t.Fatalf("the previous checkpoint (iteration %d) does not load: %v", c.State.Iter, err)
		}
		if tmp := tempNames(t, p.dir()); len(tmp) > 0 {
			t.Errorf("temporary files left: %v", tmp)
		}
		if code, out := p.run(t, true); code != 0 {
			t.Fatalf("--resume without the limit: exit %d\n%s", code, out)
		}
		sameAsReference(t, ref, p.dir())
	})

	// Two processes on one run directory: the second is refused at once
	// with a message naming the lock's holder, with or without --resume,
	// and the first finishes as a solo run would. The first is stopped
	// (SIGSTOP) while the others try, so that it is surely still running.
	t.Run("two processes", func(t *testing.T) {
		p := newPadCmd(bin, filepath.Join(base, "two"))
		w := &watcher{}
		first := p.command(w, false)
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var firstErr error
		go func() { firstErr = first.Wait(); close(exited) }()
		// "run …:" is printed once New holds the lock.
		if !waitFor(func() bool { return strings.Contains(w.text(), "run "+p.dir()+":") }, exited, 30*time.Second) {
			t.Fatalf("the first process did not start:\n%s", w.text())
		}
		if err := first.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		for _, resume := range []bool{false, true} {
			code, out := p.run(t, resume)
			if code != 1 || !strings.Contains(out, "in use by another pad process") || !strings.Contains(out, fmt.Sprintf("pid %d", first.Process.Pid)) {
				t.Errorf("second process (resume %v): exit %d, want 1 and a message naming the lock holder:\n%s", resume, code, out)
			}
		}
		if err := first.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		<-exited
		if firstErr != nil {
			t.Fatalf("the first process: %v\n%s", firstErr, w.text())
		}
		sameAsReference(t, ref, p.dir())
	})

	// Ctrl-C (and SIGTERM, as cluster schedulers send): exit code 130, a
	// checkpoint at the interrupted iteration, and --resume completes
	// exactly as the uninterrupted run. A second Ctrl-C right after the
	// first kills the process; what it leaves resumes too.
	t.Run("SIGINT", func(t *testing.T) {
		p := newPadCmd(bin, filepath.Join(base, "sigint"))
		interrupted := regexp.MustCompile(`interrupted after iteration (\d+); checkpoint written`)
		for i, stop := range []struct {
			after  int
			sig    syscall.Signal
			double bool
		}{{4, syscall.SIGINT, false}, {17, syscall.SIGTERM, false}, {23, syscall.SIGINT, true}} {
			w := &watcher{}
			cmd := p.command(w, i > 0)
			sigs := []os.Signal{stop.sig}
			if stop.double {
				sigs = append(sigs, syscall.SIGINT)
			}
			err := signalAfter(t, cmd, w, stop.after, 30*time.Second, sigs...)
			code := exitCodeOf(t, err)
			c, rerr := ReadCheckpoint(filepath.Join(p.dir(), CheckpointName))
			if rerr != nil {
				t.Fatalf("after SIGINT: %v", rerr)
			}
			if stop.double {
				// Killed by the second SIGINT, or done with the first.
				st := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !(st.Signaled() && st.Signal() == syscall.SIGINT) && code != 130 {
					t.Fatalf("two SIGINTs: exit %d\n%s", code, w.text())
				}
				continue
			}
			m := interrupted.FindStringSubmatch(w.text())
			if code != 130 || m == nil {
				t.Fatalf("%v after iteration %d: exit %d, want 130 and the interrupted message\n%s", stop.sig, stop.after, code, w.text())
			}
			n, _ := strconv.Atoi(m[1])
			if c.State.Iter != n || n < stop.after {
				t.Fatalf("interrupted after iteration %d (signal after %d), checkpoint at %+v", n, stop.after, c.State.Position)
			}
			if !strings.Contains(w.text(), "--resume") {
				t.Errorf("the message does not say how to continue:\n%s", w.text())
			}
		}
		if code, out := p.run(t, true); code != 0 {
			t.Fatalf("--resume: exit %d\n%s", code, out)
		}
		sameAsReference(t, ref, p.dir())
	})

	// A run whose checkpoint was replaced: by one of another nf and nz, of
	// another number of channels (an RGB folder run), or by a PyTorch file.
	// `pad eval linear` exits 1 listing the tensors that do not fit (or
	// saying the file is not a pad checkpoint), and so does --resume.
	t.Run("replaced checkpoint", func(t *testing.T) {
		runs := filepath.Join(base, "replaced")
		quick := []string{"train.max_iters=1", "train.epochs=1"}
		a := newPadCmd(bin, runs, append([]string{"name=a"}, quick...)...)
		b := newPadCmd(bin, runs, append([]string{"name=b", "model.nf=8", "model.nz=12"}, quick...)...)
		images := rgbFolder(t, filepath.Join(base, "rgb"))
		c := newPadCmd(bin, runs, append([]string{"name=c", "data.dataset=folder", "data.root=" + images, "data.train_limit=0", "data.test_limit=0"}, quick...)...)
		for _, p := range []padCmd{a, b, c} {
			if code, out := p.run(t, false); code != 0 {
				t.Fatalf("%s: exit %d\n%s", p.dir(), code, out)
			}
		}
		ckpt := filepath.Join(a.dir(), CheckpointName)
		original, err := os.ReadFile(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		torch := filepath.Join(base, "torch.safetensors")
		writeTorchFile(t, filepath.Join(b.dir(), CheckpointName), torch)
		for _, tc := range []struct {
			name, from  string
			want, avoid []string
		}{
			{"nf 8, nz 12", filepath.Join(b.dir(), CheckpointName),
				[]string{"does not fit this model (16 tensors)", "E.conv1.0.weight: checkpoint [8 1 4 4], model [4 1 4 4]", "E.conv4.0.weight", "E.dis.0.weight", "G.tconv1.0.weight", "G.tconv4.0.weight"},
				[]string{"G.tconv4.0.bias"}}, // [C]: fits
			{"3 channels", filepath.Join(c.dir(), CheckpointName),
				[]string{"does not fit this model (3 tensors)", "E.conv1.0.weight: checkpoint [4 3 4 4], model [4 1 4 4]", "G.tconv4.0.weight", "G.tconv4.0.bias"},
				[]string{"E.conv2.0.weight"}},
			{"PyTorch file", torch, []string{"not a pad checkpoint", `format = "pt"`}, nil},
		} {
			data, err := os.ReadFile(tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ckpt, data, 0o644); err != nil {
				t.Fatal(err)
			}
			w := &watcher{}
			cmd := exec.Command(bin, "eval", "linear", a.dir())
			cmd.Stdout, cmd.Stderr = w, w
			code := exitCodeOf(t, cmd.Run())
			out := w.text()
			if code != 1 || !strings.Contains(out, ckpt) {
				t.Errorf("%s: pad eval linear: exit %d, want 1 and an error naming %s\n%s", tc.name, code, ckpt, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("%s: pad eval linear does not say %q:\n%s", tc.name, want, out)
				}
			}
			for _, avoid := range tc.avoid {
				if strings.Contains(out, avoid) {
					t.Errorf("%s: pad eval linear lists %q, which fits:\n%s", tc.name, avoid, out)
				}
			}
			code, out = a.run(t, true)
			if code != 1 || !(strings.Contains(out, "different config") || strings.Contains(out, "not a pad checkpoint")) {
				t.Errorf("%s: pad train --resume: exit %d, want 1 and a clear refusal\n%s", tc.name, code, out)
			}
			if now, _ := os.ReadFile(ckpt); !bytes.Equal(now, data) {
				t.Errorf("%s: a refused --resume changed the checkpoint", tc.name)
			}
		}
		// Put back, the original checkpoint evaluates.
		if err := os.WriteFile(ckpt, original, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "eval", "linear", "--probe-epochs", "1", a.dir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pad eval linear on the original checkpoint: %v\n%s", err, out)
		}
	})
}

// rgbFolder writes a folder data set of 2 classes × 10 small RGB images.
func rgbFolder(t *testing.T, root string) string {
	t.Helper()
	for c, class := range []string{"red", "blue"} {
		if err := os.MkdirAll(filepath.Join(root, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			m := image.NewNRGBA(image.Rect(0, 0, 8, 8))
			for j := range m.Pix {
				m.Pix[j] = byte(j*7 + i*13 + c*101)
			}
			m.Set(0, 0, color.NRGBA{R: 255, A: 255})
			var buf bytes.Buffer
			if err := png.Encode(&buf, m); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, class, fmt.Sprintf("%d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// writeTorchFile writes the weights of the pad checkpoint src as PyTorch's
// safetensors.torch.save_file would write a state dict: the reference's
// tensor names without pad's prefixes, no pad metadata.
func writeTorchFile(t *testing.T, src, dst string) {
	t.Helper()
	f, err := safetensors.Read(src)
	if err != nil {
		t.Fatal(err)
	}
	w := safetensors.NewWriter()
	w.SetMetadata("format", "pt")
	for _, name := range f.Order {
		if !strings.HasPrefix(name, "E.") && !strings.HasPrefix(name, "G.") {
			continue
		}
		tt := *f.Tensors[name]
		tt.Name = name[2:]
		if strings.HasPrefix(name, "G.") {
			tt.Name = "netG." + tt.Name
		}
		if err := w.Add(&tt); err != nil {
			t.Fatal(err)
		}
	}
	if err := safetensors.WriteFileAtomic(dst, w); err != nil {
		t.Fatal(err)
	}
}
