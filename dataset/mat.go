package dataset

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// A reader for what pad needs of MATLAB level 5 MAT-files (as written by
// MATLAB with -v6 or -v7, and by Octave): numeric arrays, uncompressed or
// in zlib-compressed elements.
//
// Layout (from the MAT-file format documentation):
//
//	header, 128 bytes: 116 bytes of text, 8 bytes subsystem data offset,
//	  2 bytes version (0x0100), 2 bytes endian indicator: the characters
//	  'M','I' written as one 16-bit value, so a little-endian file holds
//	  "IM" and a big-endian one "MI";
//	then data elements, each an 8-byte tag (uint32 type, uint32 byte count)
//	  followed by the data. A tag whose upper 16 bits of the type word are
//	  not zero is a "small" element: type in the low 16 bits, byte count
//	  (at most 4) in the high 16 bits, data in the next 4 bytes. Inside an
//	  array, every element's data is padded to a multiple of 8 bytes.
//
// A variable is an miMATRIX element holding, in order: array flags
// (miUINT32 ×2: class in the low byte, complex flag 0x800), dimensions
// (miINT32 ×n), array name (miINT8), the real part and, when complex, the
// imaginary part. The stored type of the real part may be narrower than the
// class (MATLAB stores integer-valued doubles as miUINT8, for instance). An
// miCOMPRESSED element is a zlib stream holding one miMATRIX element.

const (
	matHeaderSize = 128

	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15

	mxDOUBLE = 6
	mxUINT64 = 15

	matComplexFlag = 0x800
	matMaxDims     = 32
	matMaxName     = 1 << 12
	matMaxBytes    = 1 << 34
)

// matTypeSize is the byte size of the numeric MAT data types.
func matTypeSize(t uint32) int {
	switch t {
	case miINT8, miUINT8:
		return 1
	case miINT16, miUINT16:
		return 2
	case miINT32, miUINT32, miSINGLE:
		return 4
	case miDOUBLE, miINT64, miUINT64:
		return 8
	}
	return 0
}

// matArray is one numeric variable: its real part as stored in the file.
type matArray struct {
	Name  string
	Class uint8
	Dims  []int
	Type  uint32 // stored data type of Data
	Data  []byte // real part, in the file's byte order
	order binary.ByteOrder
	where string // the file and offset of the data, for errors
}

// Len returns the number of elements.
func (a *matArray) Len() int {
	if s := matTypeSize(a.Type); s > 0 {
		return len(a.Data) / s
	}
	return 0
}

// Float returns element i (column-major) as a float64.
func (a *matArray) Float(i int) float64 {
	d, o := a.Data, a.order
	switch a.Type {
	case miINT8:
		return float64(int8(d[i]))
	case miUINT8:
		return float64(d[i])
	case miINT16:
		return float64(int16(o.Uint16(d[2*i:])))
	case miUINT16:
		return float64(o.Uint16(d[2*i:]))
	case miINT32:
		return float64(int32(o.Uint32(d[4*i:])))
	case miUINT32:
		return float64(o.Uint32(d[4*i:]))
	case miSINGLE:
		return float64(math.Float32frombits(o.Uint32(d[4*i:])))
	case miDOUBLE:
		return math.Float64frombits(o.Uint64(d[8*i:]))
	case miINT64:
		return float64(int64(o.Uint64(d[8*i:])))
	case miUINT64:
		return float64(o.Uint64(d[8*i:]))
	}
	return math.NaN()
}

// Uint8 returns the elements as bytes; every one must be an integer in
// 0…255.
func (a *matArray) Uint8() ([]byte, error) {
	if a.Type == miUINT8 {
		return a.Data, nil
	}
	out := make([]byte, a.Len())
	for i := range out {
		v := a.Float(i)
		if !(v >= 0 && v <= 255) || v != math.Trunc(v) {
			return nil, fmt.Errorf("%s: element %d of %s is %v, not an integer in 0…255", a.where, i, a.Name, v)
		}
		out[i] = byte(v)
	}
	return out, nil
}

// matStream reads a bounded stream of MAT data elements: the file, or the
// decompressed contents of an miCOMPRESSED element.
type matStream struct {
	r      io.Reader
	order  binary.ByteOrder
	off    int64 // bytes read so far
	remain int64 // bytes that may still be read
	path   string
	zoff   int64 // file offset of the compressed element; -1 when not compressed
	base   int64 // offset of the stream's first byte (in the file or the decompressed data)
}

// at names offset off of the stream for error messages.
func (s *matStream) at(off int64) string {
	if s.zoff >= 0 {
		return fmt.Sprintf("%s: compressed element at offset %d: decompressed offset %d", s.path, s.zoff, s.base+off)
	}
	return fmt.Sprintf("%s: offset %d", s.path, s.base+off)
}

// read reads exactly len(p) bytes.
func (s *matStream) read(p []byte, what string) error {
	if int64(len(p)) > s.remain {
		return fmt.Errorf("%s: %s of %d bytes runs past the end of its element (%d bytes left)", s.at(s.off), what, len(p), s.remain)
	}
	n, err := io.ReadFull(s.r, p)
	start := s.off
	s.off += int64(n)
	s.remain -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: data ends in the %s (%d of %d bytes)", s.at(start), what, n, len(p))
		}
		return fmt.Errorf("%s: reading the %s: %v", s.at(start), what, err)
	}
	return nil
}

// skip discards n bytes.
func (s *matStream) skip(n int64, what string) error {
	if n > s.remain {
		return fmt.Errorf("%s: %s of %d bytes runs past the end of its element (%d bytes left)", s.at(s.off), what, n, s.remain)
	}
	got, err := io.CopyN(io.Discard, s.r, n)
	start := s.off
	s.off += got
	s.remain -= got
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: data ends in the %s (%d of %d bytes)", s.at(start), what, got, n)
		}
		return fmt.Errorf("%s: reading the %s: %v", s.at(start), what, err)
	}
	return nil
}

// matElement is a data element's tag, and its data when small.
type matElement struct {
	typ   uint32
	n     int64
	small bool
	data  [4]byte // the data of a small element
	off   int64   // stream offset of the tag
}

// tag reads an element tag.
func (s *matStream) tag(what string) (matElement, error) {
	e := matElement{off: s.off}
	var b [8]byte
	if err := s.read(b[:], what+" tag"); err != nil {
		return e, err
	}
	w := s.order.Uint32(b[0:])
	if w>>16 != 0 {
		e.typ, e.n, e.small = w&0xffff, int64(w>>16), true
		if e.n > 4 {
			return e, fmt.Errorf("%s: small %s element declares %d bytes (at most 4)", s.at(e.off), what, e.n)
		}
		copy(e.data[:], b[4:])
		return e, nil
	}
	e.typ, e.n = w, int64(s.order.Uint32(b[4:]))
	if e.n > s.remain {
		return e, fmt.Errorf("%s: %s element of %d bytes runs past the end of its enclosing element (%d bytes left)", s.at(e.off), what, e.n, s.remain)
	}
	return e, nil
}

// data reads the data of a sub-element of an array (and skips its padding).
func (s *matStream) data(e matElement, what string) ([]byte, error) {
	if e.small {
		return e.data[:e.n], nil
	}
	p := make([]byte, e.n)
	if err := s.read(p, what); err != nil {
		return nil, err
	}
	return p, s.pad(e)
}

// pad skips the padding after the data of e, up to the 8-byte boundary.
// Padding cut short by the end of the enclosing element is accepted.
func (s *matStream) pad(e matElement) error {
	if e.small {
		return nil
	}
	return s.skip(min((8-e.n%8)%8, s.remain), "padding")
}

// matrix reads the miMATRIX element whose data the stream holds and returns
// it when want accepts its name; nil, nil for a variable skipped.
func (s *matStream) matrix(want func(string) bool) (*matArray, error) {
	// Array flags.
	e, err := s.tag("array flags")
	if err != nil {
		return nil, err
	}
	flags, err := s.data(e, "array flags")
	if err != nil {
		return nil, err
	}
	if e.typ != miUINT32 || len(flags) != 8 {
		return nil, fmt.Errorf("%s: array flags are type %d with %d bytes, want miUINT32 (6) with 8", s.at(e.off), e.typ, len(flags))
	}
	fw := s.order.Uint32(flags)
	class := uint8(fw)
	// Dimensions.
	e, err = s.tag("dimensions")
	if err != nil {
		return nil, err
	}
	if e.typ != miINT32 || e.n%4 != 0 || e.n < 8 || e.n > 4*matMaxDims {
		return nil, fmt.Errorf("%s: dimensions are type %d with %d bytes, want miINT32 (5) with 8 to %d", s.at(e.off), e.typ, e.n, 4*matMaxDims)
	}
	db, err := s.data(e, "dimensions")
	if err != nil {
		return nil, err
	}
	dims := make([]int, len(db)/4)
	numel := int64(1)
	for i := range dims {
		d := int32(s.order.Uint32(db[4*i:]))
		if d < 0 {
			return nil, fmt.Errorf("%s: dimension %d is %d", s.at(e.off), i+1, d)
		}
		dims[i] = int(d)
		if d > 0 && numel > matMaxBytes/int64(d) {
			return nil, fmt.Errorf("%s: dimensions %v hold more than %d elements", s.at(e.off), dims[:i+1], int64(matMaxBytes))
		}
		numel *= int64(d)
	}
	// Array name.
	e, err = s.tag("array name")
	if err != nil {
		return nil, err
	}
	if e.typ != miINT8 || e.n > matMaxName {
		return nil, fmt.Errorf("%s: array name is type %d with %d bytes, want miINT8 (1) with at most %d", s.at(e.off), e.typ, e.n, matMaxName)
	}
	nb, err := s.data(e, "array name")
	if err != nil {
		return nil, err
	}
	name := string(nb)
	if !want(name) {
		return nil, nil
	}
	if class < mxDOUBLE || class > mxUINT64 {
		return nil, fmt.Errorf("%s: variable %q has class %d, not a numeric array", s.at(0), name, class)
	}
	if fw&matComplexFlag != 0 {
		return nil, fmt.Errorf("%s: variable %q is complex", s.at(0), name)
	}
	// Real part.
	e, err = s.tag("real part")
	if err != nil {
		return nil, err
	}
	size := int64(matTypeSize(e.typ))
	if size == 0 {
		return nil, fmt.Errorf("%s: real part of %q has data type %d, not a numeric type", s.at(e.off), name, e.typ)
	}
	if e.n != numel*size {
		return nil, fmt.Errorf("%s: real part of %q has %d bytes, its dimensions %v need %d", s.at(e.off), name, e.n, dims, numel*size)
	}
	where := s.at(e.off)
	data, err := s.data(e, "real part of "+name)
	if err != nil {
		return nil, err
	}
	return &matArray{Name: name, Class: class, Dims: dims, Type: e.typ, Data: data, order: s.order, where: where}, nil
}

// readMAT reads the numeric variables called names from the MAT-file at
// path. A variable absent from the file is absent from the result.
func readMAT(path string, names ...string) (map[string]*matArray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return parseMAT(f, st.Size(), path, names...)
}

// parseMAT reads the variables called names from the MAT-file of size bytes
// in r; path names it in errors.
func parseMAT(r io.ReaderAt, size int64, path string, names ...string) (map[string]*matArray, error) {
	if size < matHeaderSize {
		return nil, fmt.Errorf("%s: offset 0: %d bytes, shorter than the %d-byte MAT-file header", path, size, matHeaderSize)
	}
	var h [matHeaderSize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("%s: offset 0: reading the header: %v", path, err)
	}
	var order binary.ByteOrder
	switch string(h[126:128]) {
	case "IM":
		order = binary.LittleEndian
	case "MI":
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s: offset 126: endian indicator %q, want \"IM\" or \"MI\" (not a MAT-file, level 5)", path, h[126:128])
	}
	switch v := order.Uint16(h[124:]); v {
	case 0x0100:
	case 0x0200:
		return nil, fmt.Errorf("%s: offset 124: MAT-file version 7.3 (HDF5) is not supported; save it with -v7 or -v6", path)
	default:
		return nil, fmt.Errorf("%s: offset 124: MAT-file version %#04x, want 0x0100", path, v)
	}
	if bytes.HasPrefix(h[:], []byte("MATLAB 7.3")) {
		return nil, fmt.Errorf("%s: offset 0: MAT-file version 7.3 (HDF5) is not supported; save it with -v7 or -v6", path)
	}
	wanted := make(map[string]bool, len(names))
	for _, n := range names {
		wanted[n] = true
	}
	out := make(map[string]*matArray, len(names))
	want := func(n string) bool { return wanted[n] }
	for pos := int64(matHeaderSize); pos < size; {
		if size-pos < 8 {
			rest := make([]byte, size-pos)
			if _, err := r.ReadAt(rest, pos); err != nil {
				return nil, fmt.Errorf("%s: offset %d: %v", path, pos, err)
			}
			if bytes.Count(rest, []byte{0}) == len(rest) {
				break // zero padding at the end
			}
			return nil, fmt.Errorf("%s: offset %d: %d stray bytes where a data element tag should start", path, pos, size-pos)
		}
		var tb [8]byte
		if _, err := r.ReadAt(tb[:], pos); err != nil {
			return nil, fmt.Errorf("%s: offset %d: reading a tag: %v", path, pos, err)
		}
		typ, n := order.Uint32(tb[0:]), int64(order.Uint32(tb[4:]))
		if typ>>16 != 0 {
			return nil, fmt.Errorf("%s: offset %d: small data element at the top level", path, pos)
		}
		if n > size-pos-8 {
			return nil, fmt.Errorf("%s: offset %d: element of %d bytes runs past the end of the file (%d bytes left)", path, pos, n, size-pos-8)
		}
		var a *matArray
		var err error
		switch typ {
		case miMATRIX:
			s := &matStream{r: bufio.NewReaderSize(io.NewSectionReader(r, pos+8, n), bufSize(n)),
				order: order, remain: n, path: path, zoff: -1, base: pos + 8}
			a, err = s.matrix(want)
		case miCOMPRESSED:
			a, err = compressedMatrix(r, pos, n, order, path, want)
		}
		if err != nil {
			return nil, err
		}
		if a != nil {
			if out[a.Name] != nil {
				return nil, fmt.Errorf("%s: offset %d: variable %q appears twice", path, pos, a.Name)
			}
			out[a.Name] = a
		}
		pos += 8 + n
	}
	return out, nil
}

// bufSize is the read buffer size for an element of n bytes.
func bufSize(n int64) int { return int(max(min(n, 1<<16), 16)) }

// compressedMatrix reads the miMATRIX element inside the miCOMPRESSED
// element of n bytes whose tag is at file offset pos. It decompresses no more
// than the matrix tag declares, and that is bounded by what n compressed
// bytes can expand to.
func compressedMatrix(r io.ReaderAt, pos, n int64, order binary.ByteOrder, path string, want func(string) bool) (*matArray, error) {
	zr, err := zlib.NewReader(bufio.NewReaderSize(io.NewSectionReader(r, pos+8, n), bufSize(n)))
	if err != nil {
		return nil, fmt.Errorf("%s: offset %d: compressed element: %v", path, pos+8, err)
	}
	defer zr.Close()
	limit := n*deflateMaxRatio + 1024
	s := &matStream{r: zr, order: order, remain: 8 + limit, path: path, zoff: pos}
	e, err := s.tag("compressed matrix")
	if err != nil {
		return nil, err
	}
	if e.small || e.typ != miMATRIX {
		return nil, fmt.Errorf("%s: compressed element holds data type %d, want miMATRIX (14)", s.at(0), e.typ)
	}
	if e.n > limit || e.n > matMaxBytes {
		return nil, fmt.Errorf("%s: compressed matrix declares %d bytes, more than %d compressed bytes can hold", s.at(0), e.n, n)
	}
	s.remain = e.n
	return s.matrix(want)
}
