package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mustBytes encodes w or fails the test.
func mustBytes(t testing.TB, w *Writer) []byte {
	t.Helper()
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeBytes decodes an in-memory file.
func decodeBytes(b []byte, name string) (*File, error) {
	return Decode(bytes.NewReader(b), int64(len(b)), name)
}

// sameFiles reports how a and b differ, or "" if they hold the same
// tensors (names, dtypes, shapes, bytes, order) and metadata.
func sameFiles(a, b *File) string {
	if len(a.Metadata) != len(b.Metadata) || (len(a.Metadata) > 0 && !reflect.DeepEqual(a.Metadata, b.Metadata)) {
		return "metadata differs"
	}
	if !slices.Equal(a.Order, b.Order) {
		return "order differs"
	}
	if len(a.Tensors) != len(b.Tensors) {
		return "tensor count differs"
	}
	for name, ta := range a.Tensors {
		tb, ok := b.Tensors[name]
		switch {
		case !ok:
			return "missing " + name
		case ta.Name != tb.Name || ta.DType != tb.DType:
			return "dtype or name differs for " + name
		case !slices.Equal(ta.Shape, tb.Shape):
			return "shape differs for " + name
		case !bytes.Equal(ta.Data, tb.Data):
			return "data differs for " + name
		}
	}
	return ""
}

func TestRoundTripAllDTypes(t *testing.T) {
	w := NewWriter()
	w.SetMetadata("format", "pt")
	w.SetMetadata("note", `quotes " and <tags> & unicode é`)
	f32 := []float32{1.5, -2.25, float32(math.Inf(1)), math.SmallestNonzeroFloat32, 0, 3}
	f64 := []float64{math.Pi, -1e-300, math.MaxFloat64}
	u8 := []byte{0, 1, 254, 255}
	i64 := []int64{math.MinInt64, -1, 0, math.MaxInt64}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddF32("z/f32", []int{2, 3}, f32))
	must(w.AddF64("a/f64", []int{3}, f64))
	must(w.AddU8("u8", []int{2, 1, 2}, u8))
	must(w.AddI64("i64", []int{4}, i64))
	must(w.AddF32("scalar", []int{}, []float32{7}))
	must(w.AddF64("empty", []int{0, 5}, nil))
	// Every other dtype through Add with raw bytes (3 elements each).
	var raw []DType
	for dt := range dtypeSizes {
		if dt != F32 && dt != F64 && dt != U8 && dt != I64 {
			raw = append(raw, dt)
		}
	}
	slices.Sort(raw)
	for i, dt := range raw {
		data := make([]byte, 3*dt.Size())
		for j := range data {
			data[j] = byte(i*31 + j)
		}
		must(w.Add(&Tensor{Name: "raw/" + string(dt), DType: dt, Shape: []int{3}, Data: data}))
	}

	b := mustBytes(t, w)
	f, err := decodeBytes(b, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || f.Metadata["note"] != `quotes " and <tags> & unicode é` {
		t.Errorf("metadata = %q", f.Metadata)
	}
	wantOrder := []string{"z/f32", "a/f64", "u8", "i64", "scalar", "empty"}
	for _, dt := range raw {
		wantOrder = append(wantOrder, "raw/"+string(dt))
	}
	if !slices.Equal(f.Order, wantOrder) {
		t.Errorf("Order = %q, want insertion order %q", f.Order, wantOrder)
	}

	get := func(name string) *Tensor {
		t.Helper()
		tt, ok := f.Get(name)
		if !ok {
			t.Fatalf("tensor %q missing", name)
		}
		return tt
	}
	if got, err := get("z/f32").F32(); err != nil || !slices.Equal(got, f32) {
		t.Errorf("f32 = %v, %v", got, err)
	}
	if s := get("z/f32").Shape; !slices.Equal(s, []int{2, 3}) {
		t.Errorf("f32 shape = %v", s)
	}
	if got, err := get("a/f64").F64(); err != nil || !slices.Equal(got, f64) {
		t.Errorf("f64 = %v, %v", got, err)
	}
	if got, err := get("u8").U8(); err != nil || !slices.Equal(got, u8) {
		t.Errorf("u8 = %v, %v", got, err)
	}
	if got, err := get("i64").I64(); err != nil || !slices.Equal(got, i64) {
		t.Errorf("i64 = %v, %v", got, err)
	}
	if sc := get("scalar"); sc.NumElements() != 1 || len(sc.Shape) != 0 {
		t.Errorf("scalar: shape %v, %d elements", sc.Shape, sc.NumElements())
	}
	if e := get("empty"); e.NumElements() != 0 || len(e.Data) != 0 || !slices.Equal(e.Shape, []int{0, 5}) {
		t.Errorf("empty: shape %v, %d bytes", e.Shape, len(e.Data))
	}
	for i, dt := range raw {
		tt := get("raw/" + string(dt))
		if tt.DType != dt || len(tt.Data) != 3*dt.Size() || tt.Data[0] != byte(i*31) {
			t.Errorf("%s: dtype %s, %d bytes", tt.Name, tt.DType, len(tt.Data))
		}
	}

	// Re-encoding the decoded file in its order gives the same bytes.
	w2 := NewWriter()
	for k, v := range f.Metadata {
		w2.SetMetadata(k, v)
	}
	for _, name := range f.Order {
		must(w2.Add(f.Tensors[name]))
	}
	if b2 := mustBytes(t, w2); !bytes.Equal(b, b2) {
		t.Error("re-encoding a decoded file changed its bytes")
	}
}

func TestDeterministicBytes(t *testing.T) {
	build := func(metaFirst bool) []byte {
		w := NewWriter()
		if metaFirst {
			w.SetMetadata("b", "2")
			w.SetMetadata("a", "1")
		}
		if err := w.AddF32("w", []int{2}, []float32{1, 2}); err != nil {
			t.Fatal(err)
		}
		if err := w.AddU8("b", []int{1}, []byte{9}); err != nil {
			t.Fatal(err)
		}
		if !metaFirst {
			w.SetMetadata("a", "1")
			w.SetMetadata("b", "2")
		}
		return mustBytes(t, w)
	}
	a, b := build(true), build(false)
	if !bytes.Equal(a, b) {
		t.Fatal("identical content gave different bytes")
	}
	// The exact layout: compact JSON, metadata first, names sorted, data
	// in insertion order, header padded with spaces to a multiple of 8.
	hdr := `{"__metadata__":{"a":"1","b":"2"},"b":{"dtype":"U8","shape":[1],"data_offsets":[8,9]},` +
		`"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	want = append(want, hdr...)
	want = append(want, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 9)
	if !bytes.Equal(a, want) {
		t.Errorf("bytes:\n got %q\nwant %q", a, want)
	}
}

func TestEmptyFile(t *testing.T) {
	b := mustBytes(t, NewWriter())
	if string(b[8:]) != "{}      " {
		t.Errorf("empty file header = %q", b[8:])
	}
	f, err := decodeBytes(b, "empty")
	if err != nil || len(f.Tensors) != 0 || f.Metadata != nil {
		t.Errorf("decode empty: %v %+v", err, f)
	}
}

func TestConversions(t *testing.T) {
	w := NewWriter()
	if err := w.AddF64("d", []int{3}, []float64{0.1, 1 + 1e-12, -3}); err != nil {
		t.Fatal(err)
	}
	f, err := decodeBytes(mustBytes(t, w), "m")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Tensors["d"].F32()
	if err != nil || !slices.Equal(got, []float32{0.1, 1, -3}) {
		t.Errorf("F64 to F32 = %v, %v", got, err)
	}

	half := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x3555}
	hb := make([]byte, 2*len(half))
	for i, h := range half {
		binary.LittleEndian.PutUint16(hb[2*i:], h)
	}
	ht := &Tensor{Name: "h", DType: F16, Shape: []int{len(half)}, Data: hb}
	hv, err := ht.F64()
	want := []float64{1, -2, 65504, math.Ldexp(1, -24), math.Inf(1), 0, 0.333251953125}
	if err != nil || !slices.Equal(hv, want) || !math.Signbit(hv[5]) {
		t.Errorf("F16 = %v, %v; want %v", hv, err, want)
	}
	bt := &Tensor{Name: "bf", DType: BF16, Shape: []int{2}, Data: []byte{0x80, 0x3f, 0xc0, 0xc0}}
	if bv, err := bt.F32(); err != nil || !slices.Equal(bv, []float32{1, -6}) {
		t.Errorf("BF16 = %v, %v", bv, err)
	}
	it := &Tensor{Name: "i32", DType: I32, Shape: []int{2}, Data: []byte{0xff, 0xff, 0xff, 0xff, 5, 0, 0, 0}}
	if iv, err := it.I64(); err != nil || !slices.Equal(iv, []int64{-1, 5}) {
		t.Errorf("I32 to I64 = %v, %v", iv, err)
	}

	// Wrong dtypes and inconsistent tensors are errors naming the tensor.
	cases := []struct {
		t    *Tensor
		conv string
		want string
	}{
		{&Tensor{Name: "steps", DType: I64, Shape: []int{1}, Data: make([]byte, 8)}, "F32", `"steps": dtype I64 is not a float`},
		{&Tensor{Name: "img", DType: U8, Shape: []int{1}, Data: make([]byte, 1)}, "F64", `"img": dtype U8 is not a float`},
		{&Tensor{Name: "x", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}, "U8", `"x": dtype F32 is not U8`},
		{&Tensor{Name: "n", DType: U64, Shape: []int{1}, Data: make([]byte, 8)}, "I64", `"n": dtype U64`},
		{&Tensor{Name: "s", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}, "F32", `"s": 4 data bytes, shape [2] F32 needs 8`},
		{&Tensor{Name: "q", DType: "Q4"}, "F32", `"q": unknown dtype "Q4"`},
	}
	for _, c := range cases {
		var err error
		switch c.conv {
		case "F32":
			_, err = c.t.F32()
		case "F64":
			_, err = c.t.F64()
		case "U8":
			_, err = c.t.U8()
		case "I64":
			_, err = c.t.I64()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s of %s: err = %v, want it to contain %q", c.conv, c.t.Name, err, c.want)
		}
	}
	if n := (&Tensor{Shape: []int{2, -1}}).NumElements(); n != -1 {
		t.Errorf("NumElements of negative shape = %d", n)
	}
	if n := (&Tensor{Shape: []int{1 << 40, 1 << 40}}).NumElements(); n != -1 {
		t.Errorf("NumElements of overflowing shape = %d", n)
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter()
	if err := w.AddF32("a", []int{2}, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"duplicate", w.AddF32("a", []int{1}, []float32{1}), "added twice"},
		{"reserved", w.AddU8("__metadata__", []int{1}, []byte{1}), "reserved"},
		{"count", w.AddF64("b", []int{2, 2}, []float64{1, 2, 3}), "3 values, shape [2 2] needs 4"},
		{"negative", w.AddI64("c", []int{-1}, nil), "invalid shape [-1]"},
		{"overflow", w.AddF32("d", []int{1 << 62, 4}, nil), "invalid shape"},
		{"bad utf8", w.AddU8("\xff", []int{0}, nil), "not valid UTF-8"},
		{"raw size", w.Add(&Tensor{Name: "e", DType: I32, Shape: []int{3}, Data: make([]byte, 8)}), "8 data bytes, shape [3] I32 needs 12"},
		{"raw dtype", w.Add(&Tensor{Name: "f", DType: "C64", Shape: []int{1}, Data: make([]byte, 8)}), `unknown dtype "C64"`},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, c.err, c.want)
		}
	}
	w.SetMetadata("k", "\xfe")
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid metadata: err = %v", err)
	}
}

// file builds a safetensors file from a raw header string and data bytes.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestMalformed(t *testing.T) {
	ok := func(name, dtype, shape, offs string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	eight := make([]byte, 8)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty file", nil, "0 bytes, too short for the 8-byte header length"},
		{"truncated length", []byte{1, 0, 0}, "3 bytes, too short"},
		{"header beyond file", file(`{}`, nil)[:9], "header length 2 (file byte 0) runs past the end of the 9-byte file"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<62), "exceeds the 100000000-byte limit"},
		{"truncated header", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, nil)[:30], "runs past the end"},
		{"bad json", file(`{"a":`, nil), "not valid JSON"},
		{"bad json value", file(`{"a":{"dtype":}}`, nil), `not valid JSON (value of "a"`},
		{"not an object", file(`[1,2]`, nil), "not a JSON object"},
		{"trailing data", file(`{} {}`, nil), "trailing data after the header object"},
		{"invalid utf8", file("{\"a\xff\":1}", nil), "not valid UTF-8 (header byte 3)"},
		{"duplicate name", file(`{`+ok("a", "U8", "[1]", "[0,1]")+`,`+ok("a", "U8", "[1]", "[1,2]")+`}`, []byte{1, 2}), `key "a" appears twice`},
		{"entry not object", file(`{"a":5}`, nil), `tensor "a": entry is not a JSON object`},
		{"missing offsets", file(`{"a":{"dtype":"U8","shape":[1]}}`, []byte{1}), `tensor "a": entry has no "data_offsets"`},
		{"dtype not string", file(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,1]}}`, []byte{1}), `tensor "a": dtype 4 is not a string`},
		{"unknown dtype", file(`{`+ok("w", "F31", "[2]", "[0,8]")+`}`, eight), `tensor "w": unknown dtype "F31"`},
		{"shape not array", file(`{`+ok("w", "F32", "null", "[0,4]")+`}`, eight), `tensor "w": shape: null is not an array`},
		{"fractional dim", file(`{`+ok("w", "F32", "[2.0]", "[0,8]")+`}`, eight), `tensor "w": shape: element 0 (2.0) is not a 64-bit integer`},
		{"string dim", file(`{`+ok("w", "F32", `["2"]`, "[0,8]")+`}`, eight), `element 0 ("2") is not a 64-bit integer`},
		{"negative dim", file(`{`+ok("w", "F32", "[2,-1]", "[0,8]")+`}`, eight), `tensor "w": shape[1] = -1 is negative`},
		{"overflowing shape", file(`{`+ok("w", "F32", "[4294967296,4294967296,16]", "[0,8]")+`}`, eight), `tensor "w": shape [4294967296 4294967296 16] F32 needs more bytes than the 8-byte data section holds`},
		{"huge dim", file(`{`+ok("w", "F32", "[99999999999999999999]", "[0,8]")+`}`, eight), `is not a 64-bit integer`},
		{"shape size mismatch", file(`{`+ok("E.conv1.0.weight", "F32", "[8,1,4,4]", "[0,100]")+`}`, make([]byte, 600)), `tensor "E.conv1.0.weight": data_offsets [0, 100] hold 100 bytes, shape [8 1 4 4] F32 needs 512`},
		{"offsets out of range", file(`{`+ok("w", "F32", "[1]", "[8,12]")+`}`, eight), `tensor "w": data_offsets [8, 12] run past the 8-byte data section (file bytes 63 to 71)`},
		{"negative offset", file(`{`+ok("w", "F32", "[1]", "[-4,0]")+`}`, eight), `data_offsets [-4, 0] are negative`},
		{"reversed offsets", file(`{`+ok("w", "U8", "[1]", "[5,4]")+`}`, eight), `data_offsets [5, 4] end before they begin`},
		{"three offsets", file(`{`+ok("w", "U8", "[1]", "[0,1,2]")+`}`, eight), `data_offsets has 3 values, want 2`},
		{"offsets not array", file(`{`+ok("w", "U8", "[1]", `"0-1"`)+`}`, eight), `data_offsets: "0-1" is not an array`},
		{"overlapping", file(`{`+ok("a", "F32", "[1]", "[0,4]")+`,`+ok("b", "F32", "[1]", "[2,6]")+`}`, eight), `tensor "b": data_offsets [2, 6] overlap those of tensor "a" [0, 4]`},
		{"contained", file(`{`+ok("a", "F32", "[2]", "[0,8]")+`,`+ok("b", "U8", "[1]", "[7,8]")+`}`, eight), `tensor "b": data_offsets [7, 8] overlap those of tensor "a" [0, 8]`},
		{"metadata not strings", file(`{"__metadata__":{"epoch":3}}`, nil), `__metadata__ is not an object of strings`},
	}
	for _, c := range cases {
		f, err := decodeBytes(c.b, "run/ckpt.safetensors")
		if err == nil {
			t.Errorf("%s: decoded without error: %+v", c.name, f)
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not a *FormatError", c.name, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "safetensors: run/ckpt.safetensors: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s:\n got %s\nwant it to contain %q", c.name, msg, c.want)
		}
	}
}

func TestLenientLayouts(t *testing.T) {
	// Gaps between tensors, trailing bytes, zero-size tensors anywhere in
	// range, whitespace and unknown entry fields are accepted.
	h := `{ "b": {"dtype":"U8","shape":[2],"data_offsets":[4,6],"extra":true},` +
		` "z": {"dtype":"F64","shape":[0],"data_offsets":[5,5]},` +
		` "a": {"dtype":"U8","shape":[1],"data_offsets":[0,1]}, "__metadata__": null }`
	f, err := decodeBytes(file(h, []byte{1, 9, 9, 9, 2, 3, 7, 7}), "lenient")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Order, []string{"a", "b", "z"}) {
		t.Errorf("Order = %q", f.Order)
	}
	if !bytes.Equal(f.Tensors["b"].Data, []byte{2, 3}) || !bytes.Equal(f.Tensors["a"].Data, []byte{1}) {
		t.Errorf("data: a %v b %v", f.Tensors["a"].Data, f.Tensors["b"].Data)
	}
	// Tensor data slices do not share capacity: appending to one cannot
	// overwrite another.
	a := f.Tensors["a"]
	_ = append(a.Data, 0xee)
	if f.Tensors["b"].Data[0] != 2 {
		t.Error("tensor data slices share capacity")
	}
}

func TestShortReader(t *testing.T) {
	b := file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4})
	_, err := Decode(bytes.NewReader(b[:len(b)-2]), int64(len(b)), "short")
	if err == nil || !strings.Contains(err.Error(), `short: tensor "a": reading 4 bytes`) {
		t.Errorf("err = %v", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "missing.safetensors")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
	p := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(p, file(`{"x":1}`, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p+`: tensor "x"`) {
		t.Errorf("bad file: err = %v", err)
	}
}
