package dataset

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// tensor is one tensor of a safetensors file, raw little-endian bytes.
type tensor struct {
	dtype string
	shape []int
	data  []byte
}

// readSafetensors is a small test-only reader: an 8-byte little-endian
// header length, a JSON header of name → {dtype, shape, data_offsets}, then
// the data.
func readSafetensors(t *testing.T, path string) map[string]tensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 {
		t.Fatalf("%s: too short", path)
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > uint64(len(b)-8) {
		t.Fatalf("%s: header length %d", path, hl)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &hdr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	body := b[8+hl:]
	out := map[string]tensor{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		if e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > len(body) {
			t.Fatalf("%s: %s: offsets %v", path, name, e.Offsets)
		}
		out[name] = tensor{e.Dtype, e.Shape, body[e.Offsets[0]:e.Offsets[1]]}
	}
	return out
}

func (x tensor) float32s() []float32 {
	f := make([]float32, len(x.data)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(x.data[4*i:]))
	}
	return f
}

// pipelineFixture returns the 16 raw 28×28 images and the reference's
// normalised 32×32 result.
func pipelineFixture(t *testing.T) (raw []byte, norm []float32) {
	ts := readSafetensors(t, "testdata/input_pipeline_28to32.safetensors")
	r, n := ts["raw_uint8"], ts["normalized_32"]
	if r.dtype != "U8" || fmt.Sprint(r.shape) != "[16 28 28]" || n.dtype != "F32" || fmt.Sprint(n.shape) != "[16 1 32 32]" {
		t.Fatalf("fixture tensors: raw %s %v, normalized %s %v", r.dtype, r.shape, n.dtype, n.shape)
	}
	return r.data, n.float32s()
}

func TestResizeMatchesFixture(t *testing.T) {
	raw, norm := pipelineFixture(t)
	for i := 0; i < 16; i++ {
		got, err := ResizeBilinear(raw[i*784:(i+1)*784], 1, 28, 28, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		for p, v := range got {
			f := float64(norm[i*1024+p])
			want := math.Round((f*0.5 + 0.5) * 255)
			if float64(v) != want {
				t.Fatalf("image %d pixel (%d,%d): got %d, want %v", i, p/32, p%32, v, want)
			}
		}
	}
}

func TestResizeSetMatchesFixture(t *testing.T) {
	raw, norm := pipelineFixture(t)
	img, err := resizeSet(raw, 16, 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	// And the scaling to [-1, 1] must be bit-identical to PyTorch's.
	got := make([]float32, len(img))
	Scale(got, img)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(norm[i]) {
			t.Fatalf("element %d: got %v (%#x), want %v (%#x)", i, got[i], math.Float32bits(got[i]), norm[i], math.Float32bits(norm[i]))
		}
	}
}

func TestResizeMatchesPIL(t *testing.T) {
	b, err := os.ReadFile("testdata/pil_resize.bin")
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:4]) != "PILR" {
		t.Fatal("bad magic")
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	b = b[8:]
	for k := 0; k < n; k++ {
		var d [5]int
		for j := range d {
			d[j] = int(binary.LittleEndian.Uint16(b[2*j:]))
		}
		b = b[10:]
		c, h, w, oh, ow := d[0], d[1], d[2], d[3], d[4]
		src, want := b[:c*h*w], b[c*h*w:c*h*w+c*oh*ow]
		b = b[c*h*w+c*oh*ow:]
		got, err := ResizeBilinear(src, c, h, w, oh, ow)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i := range got {
			if got[i] != want[i] {
				if bad == 0 {
					t.Errorf("%d×%d×%d → %d×%d: first difference at %d: got %d, want %d", c, h, w, oh, ow, i, got[i], want[i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d×%d×%d → %d×%d: %d of %d pixels differ", c, h, w, oh, ow, bad, len(got))
		}
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left over", len(b))
	}
}

func TestResizeBadInput(t *testing.T) {
	for _, tc := range []struct{ n, c, h, w, oh, ow int }{
		{10, 1, 28, 28, 32, 32},
		{784, 0, 28, 28, 32, 32},
		{784, 1, 0, 28, 32, 32},
		{784, 1, 28, 28, -1, 32},
		{784, 1, 28, 28, 32, 1 << 20},
		{784, 5, 28, 28, 32, 32},
	} {
		if _, err := ResizeBilinear(make([]byte, tc.n), tc.c, tc.h, tc.w, tc.oh, tc.ow); err == nil {
			t.Errorf("%+v: no error", tc)
		}
	}
	r, err := NewResizer(28, 28, 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Resize(make([]byte, 10), make([]byte, 784), 1); err == nil {
		t.Error("short destination: no error")
	}
}

func TestResizeIdentityAndConstant(t *testing.T) {
	src := make([]byte, 3*32*32)
	for i := range src {
		src[i] = byte(i * 7)
	}
	got, err := ResizeBilinear(src, 3, 32, 32, 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(src) {
		t.Error("same-size resize changed the image")
	}
	// A constant image stays constant at any scale.
	for _, sz := range [][2]int{{28, 28}, {7, 300}, {200, 45}} {
		c := make([]byte, sz[0]*sz[1])
		for i := range c {
			c[i] = 201
		}
		got, err := ResizeBilinear(c, 1, sz[0], sz[1], 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != 201 {
				t.Fatalf("%v: pixel %d is %d", sz, i, v)
			}
		}
	}
}

// BenchmarkResize28To32: one MNIST-sized image through the resize.
func BenchmarkResize28To32(b *testing.B) {
	r, err := NewResizer(28, 28, 32, 32)
	if err != nil {
		b.Fatal(err)
	}
	src, dst := make([]byte, 784), make([]byte, 1024)
	for i := range src {
		src[i] = byte(i * 7)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := r.Resize(dst, src, 1); err != nil {
			b.Fatal(err)
		}
	}
}
