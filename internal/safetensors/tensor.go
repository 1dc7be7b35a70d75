package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Tensor is one named tensor: its element type, its shape (row-major, an
// empty shape is a scalar) and its raw little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the number of elements the shape holds (1 for a
// scalar). It returns -1 if a dimension is negative or the product
// overflows an int.
func (t *Tensor) NumElements() int {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return n
}

// numElements returns the product of shape, and false if a dimension is
// negative or the product overflows.
func numElements(shape []int) (int, bool) {
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
	}
	n := 1
	for _, d := range shape {
		if n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// check verifies that the tensor's dtype is known and Data holds exactly
// the bytes its shape needs, and returns the element count.
func (t *Tensor) check() (int, error) {
	size := t.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", t.Name, string(t.DType))
	}
	n, ok := numElements(t.Shape)
	if !ok || n > math.MaxInt/size {
		return 0, fmt.Errorf("safetensors: tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if len(t.Data) != n*size {
		return 0, fmt.Errorf("safetensors: tensor %q: %d data bytes, shape %v %s needs %d",
			t.Name, len(t.Data), t.Shape, t.DType, n*size)
	}
	return n, nil
}

// F32 returns the elements as float32. F32 data is decoded directly, F64 is
// rounded to the nearest float32, F16 and BF16 are widened exactly; any
// other dtype is an error naming the tensor.
func (t *Tensor) F32() ([]float32, error) {
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	d := t.Data
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	case F16:
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not a float type", t.Name, t.DType)
	}
	return out, nil
}

// F64 returns the elements as float64. F64 data is decoded directly, F32,
// F16 and BF16 are widened exactly; any other dtype is an error naming the
// tensor.
func (t *Tensor) F64() ([]float64, error) {
	if t.DType != F64 {
		f, err := t.F32()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out, nil
	}
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// U8 returns a copy of the elements of a U8 or BOOL tensor; any other dtype
// is an error naming the tensor.
func (t *Tensor) U8() ([]byte, error) {
	if _, err := t.check(); err != nil {
		return nil, err
	}
	if t.DType != U8 && t.DType != BOOL {
		return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not U8", t.Name, t.DType)
	}
	return append([]byte(nil), t.Data...), nil
}

// I64 returns the elements as int64. I64 is decoded directly, and the
// narrower integer types (I32, I16, I8, U32, U16, U8, BOOL) are widened
// exactly; any other dtype (U64 included) is an error naming the tensor.
func (t *Tensor) I64() ([]int64, error) {
	n, err := t.check()
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	d := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(le.Uint64(d[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(d[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(le.Uint32(d[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(d[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(le.Uint16(d[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(d[i]))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(d[i])
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q: dtype %s is not an integer type that fits int64", t.Name, t.DType)
	}
	return out, nil
}

// halfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	default: // zero or subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}
