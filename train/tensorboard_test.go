package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// tbPoint is one scalar point as TensorBoard keeps it.
type tbPoint struct {
	step  int64
	value float32
}

// pbFields splits a protobuf message into its fields: for each field
// number, the varint/fixed values (as uint64) and the bytes fields.
type pbField struct {
	num   int
	wire  int
	u     uint64
	bytes []byte
}

func pbParse(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("bad key")
		}
		b = b[n:]
		f := pbField{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("bad varint")
			}
			f.u, b = v, b[n:]
		case 1:
			if len(b) < 8 {
				return nil, fmt.Errorf("short fixed64")
			}
			f.u, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, fmt.Errorf("bad length")
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return nil, fmt.Errorf("short fixed32")
			}
			f.u, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

// tensorBoardScalars reads every event file of dir in name order, as
// TensorBoard's directory loader does, and applies its rule for restarts
// (purge_orphaned_data with file_version brain.Event:2): an event with
// session_log.status START at step s discards every point read so far
// whose step is s or more (when purge is set). It returns the points of
// each tag in the order they were read.
func tensorBoardScalars(t *testing.T, dir string, purge bool) map[string][]tbPoint {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files in %s (%v)", dir, err)
	}
	sort.Strings(files)
	series := map[string][]tbPoint{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			if len(data) < 12 {
				t.Fatalf("%s: truncated record", name)
			}
			n := int(binary.LittleEndian.Uint64(data))
			if len(data) < 16+n {
				t.Fatalf("%s: truncated record of %d bytes", name, n)
			}
			payload := data[12 : 12+n]
			data = data[16+n:]
			fields, err := pbParse(payload)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var step int64
			var summary []byte
			start := false
			for _, f := range fields {
				switch f.num {
				case 2:
					step = int64(f.u)
				case 5:
					summary = f.bytes
				case 6:
					log, err := pbParse(f.bytes)
					if err != nil {
						t.Fatalf("%s: session_log: %v", name, err)
					}
					for _, lf := range log {
						if lf.num == 1 && lf.u == 1 {
							start = true
						}
					}
				}
			}
			if start && purge {
				for tag, pts := range series {
					kept := pts[:0]
					for _, p := range pts {
						if p.step < step {
							kept = append(kept, p)
						}
					}
					series[tag] = kept
				}
			}
			values, err := pbParse(summary)
			if err != nil {
				t.Fatalf("%s: summary: %v", name, err)
			}
			for _, v := range values {
				vf, err := pbParse(v.bytes)
				if err != nil {
					t.Fatalf("%s: value: %v", name, err)
				}
				var tag string
				var val float32
				for _, f := range vf {
					switch f.num {
					case 1:
						tag = string(f.bytes)
					case 2:
						val = math.Float32frombits(uint32(f.u))
					}
				}
				series[tag] = append(series[tag], tbPoint{step, val})
			}
		}
	}
	return series
}

// A run that dies after its last checkpoint logged steps the resumed run
// logs again; TensorBoard, applying the START marker of the resumed run,
// shows each step once, with the uninterrupted run's values.
func TestTensorBoardAfterResume(t *testing.T) {
	cfg := func(maxIters int) []string {
		return []string{"train.epochs=1", "train.log_every=1", "train.checkpoint_every=4", fmt.Sprintf("train.max_iters=%d", maxIters)}
	}
	ref := t.TempDir()
	if _, err := run(t, tiny(t, cfg(9)...), ref, false, t.Context()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if _, err := run(t, tiny(t, cfg(4)...), dir, false, t.Context()); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, CheckpointName)
	at4, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // event files are named by the second
	if _, err := run(t, tiny(t, cfg(7)...), dir, true, t.Context()); err != nil {
		t.Fatal(err)
	}
	// The process "died" at iteration 7 with its last checkpoint at 4:
	// iterations 5 to 7 are in an event file and are trained again.
	if err := os.WriteFile(ckpt, at4, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := run(t, tiny(t, cfg(9)...), dir, true, t.Context()); err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if len(files) != 3 {
		t.Fatalf("%d event files, want 3", len(files))
	}
	want := tensorBoardScalars(t, ref, true)
	got := tensorBoardScalars(t, dir, true)
	for _, tag := range []string{"train/wake_rec", "train/kl", "train/nrem_rec", "train/d_loss"} {
		w, g := want[tag], got[tag]
		if len(w) != 9 {
			t.Fatalf("the uninterrupted run has %d points of %s, want 9", len(w), tag)
		}
		seen := map[int64]int{}
		for _, p := range g {
			seen[p.step]++
		}
		for step, n := range seen {
			if n != 1 {
				t.Errorf("%s: step %d shown %d times", tag, step, n)
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s: %d points, want %d", tag, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s point %d: %+v, want %+v", tag, i, g[i], w[i])
			}
		}
	}
	// Without the purge steps 5 to 7 are there twice: the scenario does
	// exercise the marker.
	if n := len(tensorBoardScalars(t, dir, false)["train/wake_rec"]); n != 12 {
		t.Errorf("without the purge: %d points of train/wake_rec, want 12", n)
	}
}
