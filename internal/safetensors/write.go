package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/pad-dreaming/pad/internal/atomicfile"
)

// Writer collects tensors and metadata and writes them as one safetensors
// file. Tensor data is laid out in the order the tensors were added; the
// header lists "__metadata__" first and then the tensors sorted by name, so
// identical content always gives identical bytes. A Writer copies the data
// it is given; the caller may reuse its slices after an Add call returns.
type Writer struct {
	tensors []*Tensor
	index   map[string]bool
	meta    map[string]string
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{index: make(map[string]bool)}
}

// SetMetadata sets the metadata entry k to v, replacing any earlier value.
// Keys and values must be valid UTF-8 (WriteTo reports them otherwise).
func (w *Writer) SetMetadata(k, v string) {
	if w.meta == nil {
		w.meta = make(map[string]string)
	}
	w.meta[k] = v
}

// Add adds a copy of t. The name must be unique, valid UTF-8 and not
// "__metadata__"; the dtype must be known and Data must hold exactly the
// bytes the shape needs.
func (w *Writer) Add(t *Tensor) error {
	if err := w.checkName(t.Name); err != nil {
		return err
	}
	if _, err := t.check(); err != nil {
		return err
	}
	w.add(t.Name, t.DType, t.Shape, append([]byte{}, t.Data...))
	return nil
}

// AddF32 adds a float32 tensor of the given shape.
func (w *Writer) AddF32(name string, shape []int, data []float32) error {
	if err := w.checkAdd(name, shape, len(data), F32); err != nil {
		return err
	}
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	w.add(name, F32, shape, b)
	return nil
}

// AddF64 adds a float64 tensor of the given shape.
func (w *Writer) AddF64(name string, shape []int, data []float64) error {
	if err := w.checkAdd(name, shape, len(data), F64); err != nil {
		return err
	}
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	w.add(name, F64, shape, b)
	return nil
}

// AddU8 adds a uint8 tensor of the given shape.
func (w *Writer) AddU8(name string, shape []int, data []byte) error {
	if err := w.checkAdd(name, shape, len(data), U8); err != nil {
		return err
	}
	w.add(name, U8, shape, append([]byte{}, data...))
	return nil
}

// AddI64 adds an int64 tensor of the given shape.
func (w *Writer) AddI64(name string, shape []int, data []int64) error {
	if err := w.checkAdd(name, shape, len(data), I64); err != nil {
		return err
	}
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	w.add(name, I64, shape, b)
	return nil
}

func (w *Writer) checkName(name string) error {
	switch {
	case name == metadataKey:
		return fmt.Errorf("safetensors: tensor name %q is reserved", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("safetensors: tensor name %q is not valid UTF-8", name)
	case w.index[name]:
		return fmt.Errorf("safetensors: tensor %q added twice", name)
	}
	return nil
}

func (w *Writer) checkAdd(name string, shape []int, n int, dt DType) error {
	if err := w.checkName(name); err != nil {
		return err
	}
	want, ok := numElements(shape)
	if !ok || want > math.MaxInt/dt.Size() {
		return fmt.Errorf("safetensors: tensor %q: invalid shape %v", name, shape)
	}
	if n != want {
		return fmt.Errorf("safetensors: tensor %q: %d values, shape %v needs %d", name, n, shape, want)
	}
	return nil
}

func (w *Writer) add(name string, dt DType, shape []int, data []byte) {
	w.tensors = append(w.tensors, &Tensor{Name: name, DType: dt, Shape: append([]int{}, shape...), Data: data})
	w.index[name] = true
}

// header builds the padded JSON header.
func (w *Writer) header() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if len(w.meta) > 0 {
		keys := make([]string, 0, len(w.meta))
		for k, v := range w.meta {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("safetensors: metadata %q: key or value is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		comma()
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, w.meta[k])
		}
		b.WriteByte('}')
	}

	offsets := make(map[string][2]int64, len(w.tensors))
	var off int64
	for _, t := range w.tensors {
		offsets[t.Name] = [2]int64{off, off + int64(len(t.Data))}
		off += int64(len(t.Data))
	}
	sorted := append([]*Tensor{}, w.tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, t := range sorted {
		comma()
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":`)
		writeJSONString(&b, string(t.DType))
		b.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		o := offsets[t.Name]
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, o[0], o[1])
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), nil
}

// writeJSONString writes s as a JSON string literal, leaving <, > and &
// unescaped.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // cannot fail for a string; writing to a bytes.Buffer cannot fail
	b.Truncate(b.Len() - 1) // drop the newline Encode appends
}

// WriteTo writes the file to out and returns the number of bytes written.
// A failure to write is returned as out reported it.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	hdr, err := w.header()
	if err != nil {
		return 0, err
	}
	return w.writeTo(out, hdr)
}

func (w *Writer) writeTo(out io.Writer, hdr []byte) (int64, error) {
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	var total int64
	write := func(p []byte) error {
		n, err := out.Write(p)
		total += int64(n)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		return err
	}
	if err := write(lenBuf[:]); err != nil {
		return total, err
	}
	if err := write(hdr); err != nil {
		return total, err
	}
	for _, t := range w.tensors {
		if err := write(t.Data); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Bytes returns the file as one byte slice.
func (w *Writer) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFileAtomic writes w to path so that path holds either the old file
// or the complete new one, never a mix (internal/atomicfile): it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. On error the temporary file is removed, and the file
// at path is untouched unless the rename succeeded and only the final
// directory sync failed. The new file keeps the permission bits of the file
// it replaces, or gets 0644 if there was none.
func WriteFileAtomic(path string, w *Writer) error {
	return WriteFileAtomicThrough(path, w, nil)
}

// WriteFileAtomicThrough is WriteFileAtomic with every write to the
// temporary file going through wrap(file) (nil: none), so that the tests of
// other packages can make a write fail midway, as a full disk does.
func WriteFileAtomicThrough(path string, w *Writer, wrap func(io.Writer) io.Writer) error {
	hdr, err := w.header()
	if err != nil {
		return err
	}
	err = atomicfile.Write(path, atomicfile.KeepMode, func(out io.Writer) error {
		if wrap != nil {
			out = wrap(out)
		}
		bw := bufio.NewWriterSize(out, 1<<20)
		if _, err := w.writeTo(bw, hdr); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
