// Command fixtures32 makes the float32 copies of the PyTorch golden fixtures
// that pad's tests use on a clone without ../shared.
//
// It converts pad_step_c1.safetensors and pad_step_c3.safetensors (float64,
// computed by PyTorch autograd) to float32: every F64 tensor is rounded to
// the nearest float32, keeping its name and shape; tensors of other dtypes
// are copied as they are. Each converted file's __metadata__ records the
// source file's name, sha256 and dtype, and that file's entry of
// fixtures.json (sizes, optimiser settings, occlusion draws) as a JSON
// string under "fixture_info". input_pipeline_28to32.safetensors and
// fixtures.json are copied byte for byte.
//
// Usage, from the repository root:
//
//	go run ./tools/cmd/fixtures32 -src ../shared/fixtures -dst testdata/fixtures
//
// The output is deterministic: running it again on the same sources gives
// the same bytes.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/pad-dreaming/pad/internal/safetensors"
)

// maxConverted is the size limit for a converted file, in bytes.
const maxConverted = 3 << 20

var (
	converted = []string{"pad_step_c1.safetensors", "pad_step_c3.safetensors"}
	copied    = []string{"input_pipeline_28to32.safetensors", "fixtures.json"}
)

func main() {
	src := flag.String("src", "../shared/fixtures", "directory holding the PyTorch fixtures")
	dst := flag.String("dst", "testdata/fixtures", "directory to write the float32 fixtures to")
	flag.Parse()
	if err := run(*src, *dst); err != nil {
		fmt.Fprintln(os.Stderr, "fixtures32:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	infoJSON, err := os.ReadFile(filepath.Join(src, "fixtures.json"))
	if err != nil {
		return err
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(infoJSON, &info); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(src, "fixtures.json"), err)
	}
	for _, name := range converted {
		if err := convert(filepath.Join(src, name), filepath.Join(dst, name), info[name]); err != nil {
			return err
		}
	}
	for _, name := range copied {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: copied, %d bytes, sha256 %s\n", name, len(b), sum(b))
	}
	return nil
}

// convert writes the float32 version of the fixture at in to out.
func convert(in, out string, info json.RawMessage) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	f, err := safetensors.Decode(bytes.NewReader(raw), int64(len(raw)), in)
	if err != nil {
		return err
	}
	w := safetensors.NewWriter()
	for k, v := range f.Metadata {
		w.SetMetadata(k, v)
	}
	w.SetMetadata("source", filepath.Base(in))
	w.SetMetadata("source_sha256", sum(raw))
	w.SetMetadata("source_dtype", "F64")
	w.SetMetadata("converted_by", "tools/cmd/fixtures32: F64 tensors rounded to the nearest F32")
	if len(info) > 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, info); err != nil {
			return fmt.Errorf("fixtures.json entry for %s: %w", filepath.Base(in), err)
		}
		w.SetMetadata("fixture_info", compact.String())
	}

	var nconv int
	var maxRel float64
	for _, name := range f.Order {
		t := f.Tensors[name]
		if t.DType != safetensors.F64 {
			if err := w.Add(t); err != nil {
				return err
			}
			continue
		}
		v64, err := t.F64()
		if err != nil {
			return err
		}
		v32, err := t.F32()
		if err != nil {
			return err
		}
		for i, v := range v64 {
			if math.IsInf(float64(v32[i]), 0) && !math.IsInf(v, 0) {
				return fmt.Errorf("%s: tensor %q: element %d (%g) overflows float32", in, name, i, v)
			}
			if v != 0 {
				maxRel = math.Max(maxRel, math.Abs(float64(v32[i])-v)/math.Abs(v))
			}
		}
		if err := w.AddF32(name, t.Shape, v32); err != nil {
			return err
		}
		nconv++
	}
	if err := safetensors.WriteFileAtomic(out, w); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	if st.Size() >= maxConverted {
		return fmt.Errorf("%s: %d bytes, over the %d-byte limit for fixtures in the repository", out, st.Size(), maxConverted)
	}
	fmt.Printf("%s: %d tensors (%d converted F64 to F32, max relative rounding %.2g), %d bytes; source sha256 %s\n",
		filepath.Base(out), len(f.Order), nconv, maxRel, st.Size(), sum(raw))
	return nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
