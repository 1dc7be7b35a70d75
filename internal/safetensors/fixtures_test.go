package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const (
	sharedFixtures = "../../../shared/fixtures" // PyTorch originals, beside the repository
	repoFixtures   = "../../testdata/fixtures"  // float32 copies made by tools/cmd/fixtures32
)

// sharedDir returns the directory of the PyTorch fixtures, skipping the
// test on a clone that has no ../shared.
func sharedDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedFixtures, "fixtures.json")); err != nil {
		t.Skipf("PyTorch fixtures not available: %v", err)
	}
	return sharedFixtures
}

func expectTensor(t *testing.T, f *File, name string, dt DType, shape ...int) *Tensor {
	t.Helper()
	tt, ok := f.Get(name)
	if !ok {
		t.Fatalf("tensor %q missing", name)
	}
	if tt.DType != dt || !slices.Equal(tt.Shape, shape) {
		t.Fatalf("tensor %q: %s %v, want %s %v", name, tt.DType, tt.Shape, dt, shape)
	}
	return tt
}

// TestPyTorchFiles reads the files PyTorch's safetensors wrote and checks
// that writing their content back gives the very same bytes: our layout is
// the reference's, byte for byte.
func TestPyTorchFiles(t *testing.T) {
	dir := sharedDir(t)
	for _, name := range []string{"pad_step_c1.safetensors", "pad_step_c3.safetensors", "input_pipeline_28to32.safetensors"} {
		path := filepath.Join(dir, name)
		f, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWriter()
		for k, v := range f.Metadata {
			w.SetMetadata(k, v)
		}
		for _, n := range f.Order {
			if err := w.Add(f.Tensors[n]); err != nil {
				t.Fatal(err)
			}
		}
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if again := mustBytes(t, w); !bytes.Equal(again, orig) {
			t.Errorf("%s: re-encoding differs from the PyTorch-written bytes", name)
		}
	}

	c1, err := Read(filepath.Join(dir, "pad_step_c1.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c1.Tensors) != 226 || c1.Metadata != nil {
		t.Errorf("pad_step_c1: %d tensors, metadata %v", len(c1.Tensors), c1.Metadata)
	}
	expectTensor(t, c1, "init/E.conv1.0.weight", F64, 8, 1, 4, 4)
	expectTensor(t, c1, "it0/x", F64, 8, 1, 32, 32)
	expectTensor(t, c1, "it0/wake/loss_rec", F64, 1)
	c3, err := Read(filepath.Join(dir, "pad_step_c3.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	expectTensor(t, c3, "init/E.conv1.0.weight", F64, 8, 3, 4, 4)

	in, err := Read(filepath.Join(dir, "input_pipeline_28to32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	checkInputPipeline(t, in)
}

func checkInputPipeline(t *testing.T, in *File) {
	t.Helper()
	norm, err := expectTensor(t, in, "normalized_32", F32, 16, 1, 32, 32).F32()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range norm {
		if !(v >= -1 && v <= 1) {
			t.Fatalf("normalized_32[%d] = %g, outside [-1, 1]", i, v)
		}
	}
	raw, err := expectTensor(t, in, "raw_uint8", U8, 16, 28, 28).U8()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Max(raw) == 0 {
		t.Error("raw_uint8 is all zero")
	}
}

// TestRepoFixtures checks the float32 fixtures in testdata: they exist on
// every clone, hold only F32 tensors with the reference names and shapes,
// and, where ../shared is present, are exactly the float64 originals
// rounded to float32 (so a changed original shows up as stale fixtures).
func TestRepoFixtures(t *testing.T) {
	for _, name := range []string{"pad_step_c1.safetensors", "pad_step_c3.safetensors"} {
		path := filepath.Join(repoFixtures, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() >= 3<<20 {
			t.Errorf("%s: %d bytes, want < 3 MiB", name, st.Size())
		}
		f, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Tensors) != 226 {
			t.Errorf("%s: %d tensors", name, len(f.Tensors))
		}
		for _, n := range f.Order {
			if dt := f.Tensors[n].DType; dt != F32 {
				t.Errorf("%s: tensor %q is %s", name, n, dt)
			}
		}
		var info struct {
			Channels  int `json:"channels"`
			Batch     int `json:"batch"`
			Occlusion []struct {
				Iteration int     `json:"iteration"`
				P         float64 `json:"p"`
				Tile      int     `json:"tile"`
			} `json:"occlusion"`
		}
		if err := json.Unmarshal([]byte(f.Metadata["fixture_info"]), &info); err != nil {
			t.Fatalf("%s: fixture_info: %v", name, err)
		}
		if info.Batch != 8 || len(info.Occlusion) != 2 {
			t.Errorf("%s: fixture_info = %+v", name, info)
		}
		expectTensor(t, f, "init/E.conv1.0.weight", F32, 8, info.Channels, 4, 4)

		if _, err := os.Stat(filepath.Join(sharedFixtures, name)); err != nil {
			continue // a clone without ../shared: nothing to compare against
		}
		origBytes, err := os.ReadFile(filepath.Join(sharedFixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(origBytes)
		if got := f.Metadata["source_sha256"]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: made from a source with sha256 %s, ../shared has %x: regenerate with tools/cmd/fixtures32", name, got, sum)
		}
		orig, err := decodeBytes(origBytes, name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(orig.Order, f.Order) {
			t.Errorf("%s: tensor order differs from the original", name)
		}
		for _, n := range orig.Order {
			want, err := orig.Tensors[n].F32()
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Tensors[n].F32()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) || !slices.Equal(f.Tensors[n].Shape, orig.Tensors[n].Shape) {
				t.Errorf("%s: tensor %q is not the original rounded to float32", name, n)
			}
		}
	}

	in, err := Read(filepath.Join(repoFixtures, "input_pipeline_28to32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	checkInputPipeline(t, in)
	for _, name := range []string{"input_pipeline_28to32.safetensors", "fixtures.json"} {
		orig, err := os.ReadFile(filepath.Join(sharedFixtures, name))
		if err != nil {
			continue
		}
		if dup, err := os.ReadFile(filepath.Join(repoFixtures, name)); err != nil || !bytes.Equal(dup, orig) {
			t.Errorf("%s: testdata copy differs from ../shared (%v)", name, err)
		}
	}
}
