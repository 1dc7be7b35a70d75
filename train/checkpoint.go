package train

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/internal/safetensors"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// CheckpointFormat names the layout of pad's checkpoints; it is stored in
// the safetensors metadata under "format".
const CheckpointFormat = "pad.checkpoint.v1"

// CheckpointName is the file a run keeps its latest checkpoint in.
const CheckpointName = "checkpoint.safetensors"

// A checkpoint is one safetensors file:
//
//	E.conv1.0.weight … E.dis.0.bias      the encoder, reference names and shapes
//	G.tconv1.0.weight … G.tconv4.0.bias  the generator
//	adam.E.<name>.exp_avg, .exp_avg_sq   Adam's moments per tensor
//	adam.E.step, adam.G.step             Adam's step count per tensor (I64)
//	memory.z, memory.z_old               the episodic memories [batch, nz]
//
// and the metadata format, config (the resolved TOML), config_hash, epoch,
// index (the next batch of that epoch), iter (iterations done), has_old.
// PyTorch reads the weights with safetensors.torch.load_file and a prefix
// filter (see the README).

// Position says where in the run a checkpoint was taken.
type Position struct {
	Epoch int // the epoch in progress (or about to start)
	Index int // the next batch index within Epoch
	Iter  int // iterations done so far
}

// State is everything a checkpoint holds besides the tensors.
type State struct {
	Position
	Config     string // the resolved config, TOML
	ConfigHash string
	HasOld     bool // the older memory belongs to the current epoch

	// The running sums of the per-iteration numbers since the last log
	// line and since the start of the epoch, so that a resumed run logs
	// the same means as an uninterrupted one. Checkpoints without them
	// (older versions) resume with empty sums.
	win, ep window
}

// windowKeys are the metadata keys of State.win and State.ep.
const (
	logWindowKey   = "log_window"
	epochWindowKey = "epoch_window"
)

// encodeWindow writes w as "n sum0 sum1 …", exactly.
func encodeWindow(w window) string {
	b := []byte(strconv.Itoa(w.n))
	for _, v := range w.sum {
		b = append(b, ' ')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return string(b)
}

// decodeWindow reads what encodeWindow writes.
func decodeWindow(s string) (window, error) {
	var w window
	f := strings.Fields(s)
	if len(f) != 1+len(w.sum) {
		return w, fmt.Errorf("%d fields, want %d", len(f), 1+len(w.sum))
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return w, fmt.Errorf("count %q is not a non-negative integer", f[0])
	}
	w.n = n
	for i := range w.sum {
		if w.sum[i], err = strconv.ParseFloat(f[1+i], 64); err != nil {
			return w, fmt.Errorf("sum %q is not a number", f[1+i])
		}
	}
	return w, nil
}

// SaveCheckpoint writes the model, the optimiser state and the memories of
// p with st to path, atomically: the previous file survives any failure.
func SaveCheckpoint(path string, b backend.Backend, p *phases.PAD, st State) error {
	w := safetensors.NewWriter()
	for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
		vals := download(b, n.Values, n.Size)
		ms := download(b, n.M, n.Size)
		vs := download(b, n.V, n.Size)
		if err := b.Sync(); err != nil {
			return fmt.Errorf("checkpoint %s: reading %s from the device: %w", path, n.Prefix, err)
		}
		steps := make([]int64, len(n.Tensors))
		for i, t := range n.Tensors {
			name := n.Prefix + "." + t.Name
			if err := w.AddF32(name, t.Shape, vals[t.Off:t.Off+t.Len]); err != nil {
				return err
			}
			if err := w.AddF32("adam."+name+".exp_avg", t.Shape, ms[t.Off:t.Off+t.Len]); err != nil {
				return err
			}
			if err := w.AddF32("adam."+name+".exp_avg_sq", t.Shape, vs[t.Off:t.Off+t.Len]); err != nil {
				return err
			}
			steps[i] = int64(n.AdamSteps[i])
		}
		if err := w.AddI64("adam."+n.Prefix+".step", []int{len(steps)}, steps); err != nil {
			return err
		}
	}
	lat := []int{p.Spec.Batch, p.Spec.NZ}
	z := download(b, p.Memory, p.Memory.Len())
	zOld := download(b, p.MemoryOld, p.MemoryOld.Len())
	if err := b.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: reading the memories: %w", path, err)
	}
	if err := w.AddF32("memory.z", lat, z); err != nil {
		return err
	}
	if err := w.AddF32("memory.z_old", lat, zOld); err != nil {
		return err
	}
	w.SetMetadata("format", CheckpointFormat)
	w.SetMetadata("config", st.Config)
	w.SetMetadata("config_hash", st.ConfigHash)
	w.SetMetadata("epoch", strconv.Itoa(st.Epoch))
	w.SetMetadata("index", strconv.Itoa(st.Index))
	w.SetMetadata("iter", strconv.Itoa(st.Iter))
	w.SetMetadata("has_old", strconv.FormatBool(st.HasOld))
	w.SetMetadata(logWindowKey, encodeWindow(st.win))
	w.SetMetadata(epochWindowKey, encodeWindow(st.ep))
	w.SetMetadata("spec", specString(p.Spec))
	if err := safetensors.WriteFileAtomicThrough(path, w, wrapCheckpointFile); err != nil {
		return fmt.Errorf("checkpoint %s: %w (the previous checkpoint is unchanged)", path, err)
	}
	return nil
}

// wrapCheckpointFile, when set, wraps the writes of SaveCheckpoint to its
// temporary file: tests use it to make a write fail midway.
var wrapCheckpointFile func(io.Writer) io.Writer

func specString(s model.Spec) string {
	return fmt.Sprintf("channels=%d nf=%d nz=%d batch=%d", s.C, s.NF, s.NZ, s.Batch)
}

func download(b backend.Backend, x backend.Buf, n int) []float32 {
	v := make([]float32, n)
	b.Download(v, x)
	return v
}

// Checkpoint is a checkpoint file read and checked for format.
type Checkpoint struct {
	Path  string
	State State
	file  *safetensors.File
}

// ErrNotCheckpoint is returned for safetensors files pad did not write.
var ErrNotCheckpoint = errors.New("not a pad checkpoint")

// ReadCheckpoint reads path and its metadata.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	md := f.Metadata
	if md["format"] != CheckpointFormat {
		return nil, fmt.Errorf("%s: %w (metadata format = %q, want %q)", path, ErrNotCheckpoint, md["format"], CheckpointFormat)
	}
	c := &Checkpoint{Path: path, file: f}
	c.State.Config = md["config"]
	c.State.ConfigHash = md["config_hash"]
	for _, kv := range []struct {
		key string
		dst *int
	}{{"epoch", &c.State.Epoch}, {"index", &c.State.Index}, {"iter", &c.State.Iter}} {
		v, err := strconv.Atoi(md[kv.key])
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s: metadata %s = %q: want a non-negative integer", path, kv.key, md[kv.key])
		}
		*kv.dst = v
	}
	c.State.HasOld = md["has_old"] == "true"
	for _, kv := range []struct {
		key string
		dst *window
	}{{logWindowKey, &c.State.win}, {epochWindowKey, &c.State.ep}} {
		v, ok := md[kv.key]
		if !ok {
			continue
		}
		w, err := decodeWindow(v)
		if err != nil {
			return nil, fmt.Errorf("%s: metadata %s = %q: %v", path, kv.key, v, err)
		}
		*kv.dst = w
	}
	return c, nil
}

// tensor returns the named F32 tensor after checking its shape.
func (c *Checkpoint) tensor(name string, shape []int) ([]float32, error) {
	t, ok := c.file.Get(name)
	if !ok {
		return nil, fmt.Errorf("%s: missing", name)
	}
	if !sameShape(t.Shape, shape) {
		return nil, fmt.Errorf("%s: checkpoint %v, model %v", name, t.Shape, shape)
	}
	return t.F32()
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mismatchError lists every tensor that does not fit.
func mismatchError(path string, problems []string) error {
	sort.Strings(problems)
	return fmt.Errorf("%s does not fit this model (%d tensors):\n  %s", path, len(problems), strings.Join(problems, "\n  "))
}

// LoadWeights copies the networks' weights from the checkpoint into p. Every
// tensor of E and G must be present with the model's shape; otherwise the
// error lists all mismatched tensors and p is left unchanged.
func (c *Checkpoint) LoadWeights(b backend.Backend, p *phases.PAD) error {
	type upload struct {
		dst backend.Buf
		v   []float32
	}
	var ups []upload
	var problems []string
	known := map[string]bool{}
	for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
		for i, t := range n.Tensors {
			name := n.Prefix + "." + t.Name
			known[name] = true
			v, err := c.tensor(name, t.Shape)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			ups = append(ups, upload{n.Param(i), v})
		}
	}
	for name := range c.file.Tensors {
		if (strings.HasPrefix(name, "E.") || strings.HasPrefix(name, "G.")) && !known[name] {
			problems = append(problems, name+": not a tensor of this model")
		}
	}
	if len(problems) > 0 {
		return mismatchError(c.Path, problems)
	}
	for _, u := range ups {
		b.Upload(u.dst, u.v)
	}
	return b.Sync()
}

// LoadState restores everything — weights, Adam moments and steps, and the
// memories — into p, after checking it all fits. The config hash is checked
// by the caller, who knows whether a different config is acceptable.
func (c *Checkpoint) LoadState(b backend.Backend, p *phases.PAD) error {
	var problems []string
	type upload struct {
		dst backend.Buf
		v   []float32
	}
	var ups []upload
	steps := map[*model.Net][]int64{}
	for _, n := range []*model.Net{&p.E.Net, &p.G.Net} {
		for _, suffix := range []string{"", ".exp_avg", ".exp_avg_sq"} {
			for i, t := range n.Tensors {
				name := n.Prefix + "." + t.Name + suffix
				dst := n.Param(i)
				switch suffix {
				case ".exp_avg":
					name, dst = "adam."+name, n.M.Slice(t.Off, t.Len)
				case ".exp_avg_sq":
					name, dst = "adam."+name, n.V.Slice(t.Off, t.Len)
				}
				v, err := c.tensor(name, t.Shape)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				ups = append(ups, upload{dst, v})
			}
		}
		st, ok := c.file.Get("adam." + n.Prefix + ".step")
		if !ok {
			problems = append(problems, "adam."+n.Prefix+".step: missing")
			continue
		}
		s, err := st.I64()
		if err != nil || len(s) != len(n.Tensors) {
			problems = append(problems, fmt.Sprintf("adam.%s.step: %d counts, model has %d tensors", n.Prefix, len(s), len(n.Tensors)))
			continue
		}
		for _, v := range s {
			if v < 0 || v > 1<<40 {
				problems = append(problems, fmt.Sprintf("adam.%s.step: count %d out of range", n.Prefix, v))
			}
		}
		steps[n] = s
	}
	lat := []int{p.Spec.Batch, p.Spec.NZ}
	for _, m := range []struct {
		name string
		dst  backend.Buf
	}{{"memory.z", p.Memory}, {"memory.z_old", p.MemoryOld}} {
		v, err := c.tensor(m.name, lat)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		ups = append(ups, upload{m.dst, v})
	}
	if len(problems) > 0 {
		return mismatchError(c.Path, problems)
	}
	for _, u := range ups {
		b.Upload(u.dst, u.v)
	}
	for n, s := range steps {
		for i, v := range s {
			n.AdamSteps[i] = int(v)
		}
	}
	p.SetHasOld(c.State.HasOld)
	return b.Sync()
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
