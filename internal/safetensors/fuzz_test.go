package safetensors

import (
	"testing"
)

// fuzzSeed is a small valid file with metadata, several dtypes, a scalar
// and an empty tensor.
func fuzzSeed(t testing.TB) []byte {
	w := NewWriter()
	w.SetMetadata("format", "pt")
	for _, err := range []error{
		w.AddF32("w", []int{2, 2}, []float32{1, -2, 3.5, 0}),
		w.AddU8("img", []int{3}, []byte{0, 128, 255}),
		w.AddI64("step", []int{}, []int64{42}),
		w.AddF64("none", []int{0}, nil),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return mustBytes(t, w)
}

func FuzzDecode(f *testing.F) {
	seed := fuzzSeed(f)
	for i := 0; i <= len(seed); i++ {
		f.Add(seed[:i])
	}
	f.Add(file(`{"a":{"dtype":"BF16","shape":[1,2],"data_offsets":[2,6]}}`, []byte{9, 9, 1, 2, 3, 4, 5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeBytes(b, "fuzz")
		if err != nil {
			return
		}
		// A file that decodes re-encodes, and decodes again to the same
		// tensors and metadata.
		w := NewWriter()
		for k, v := range got.Metadata {
			w.SetMetadata(k, v)
		}
		for _, name := range got.Order {
			if err := w.Add(got.Tensors[name]); err != nil {
				t.Fatalf("decoded tensor rejected by Writer: %v", err)
			}
		}
		b2, err := w.Bytes()
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := decodeBytes(b2, "fuzz2")
		if err != nil {
			t.Fatalf("decoding the re-encoded file: %v", err)
		}
		if d := sameFiles(got, again); d != "" {
			t.Fatalf("round trip changed the file: %s", d)
		}
		for _, name := range got.Order {
			tt := got.Tensors[name]
			if tt.NumElements()*tt.DType.Size() != len(tt.Data) {
				t.Fatalf("tensor %q: %d bytes for shape %v %s", name, len(tt.Data), tt.Shape, tt.DType)
			}
		}
	})
}
