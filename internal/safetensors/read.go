package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header Decode accepts, in bytes (the
// reference implementation's limit).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string-to-string
// metadata; no tensor may have this name.
const metadataKey = "__metadata__"

// File is the content of one safetensors file.
type File struct {
	// Metadata is the header's "__metadata__" object; nil if absent.
	Metadata map[string]string
	// Tensors maps each tensor name to its tensor.
	Tensors map[string]*Tensor
	// Order lists the tensor names in data-offset order.
	Order []string
}

// Get returns the tensor called name and whether it exists.
func (f *File) Get(name string) (*Tensor, bool) {
	t, ok := f.Tensors[name]
	return t, ok
}

// FormatError reports a malformed file: what is wrong, and where.
type FormatError struct {
	// File is the path given to Read or the name given to Decode.
	File string
	// Tensor is the name of the tensor at fault; empty when the fault is
	// not in a single tensor's entry (Msg says where it is then).
	Tensor string
	// Msg says what is wrong, naming the tensor, field or byte offset.
	Msg string
}

// Error implements error.
func (e *FormatError) Error() string {
	return "safetensors: " + e.File + ": " + e.Msg
}

// Read reads and validates the safetensors file at path.
func Read(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	return Decode(f, st.Size(), path)
}

// entry is one tensor's header entry after validation.
type entry struct {
	name       string
	dtype      DType
	shape      []int
	begin, end int64
}

// decoder carries the state of one Decode call.
type decoder struct {
	name string
}

func (d *decoder) errf(format string, args ...any) error {
	return &FormatError{File: d.name, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) tensorErrf(tensor, format string, args ...any) error {
	return &FormatError{File: d.name, Tensor: tensor,
		Msg: fmt.Sprintf("tensor %q: ", tensor) + fmt.Sprintf(format, args...)}
}

// Decode reads and validates a safetensors file of size bytes from r. name
// identifies the file in error messages. Every length and offset in the
// header is checked against size before any tensor data is allocated; a
// reader that holds fewer than size bytes yields an I/O error.
func Decode(r io.ReaderAt, size int64, name string) (*File, error) {
	d := &decoder{name: name}
	if size < 8 {
		return nil, d.errf("file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFullAt(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading header length: %w", name, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > MaxHeaderSize {
		return nil, d.errf("header length %d (file byte 0) exceeds the %d-byte limit", hlen, MaxHeaderSize)
	}
	if hlen > uint64(size-8) {
		return nil, d.errf("header length %d (file byte 0) runs past the end of the %d-byte file", hlen, size)
	}
	hdr := make([]byte, hlen)
	if err := readFullAt(r, hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors: %s: reading %d-byte header: %w", name, hlen, err)
	}
	dataStart := 8 + int64(hlen)
	dataLen := size - dataStart

	meta, entries, err := d.parseHeader(hdr, dataStart, dataLen)
	if err != nil {
		return nil, err
	}

	// Order by data offset (zero-length tensors first at equal offsets)
	// and reject overlaps.
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	var total, maxEnd int64
	owner := -1
	for i, e := range entries {
		if e.end == e.begin {
			continue
		}
		if owner >= 0 && e.begin < maxEnd {
			o := entries[owner]
			return nil, d.tensorErrf(e.name, "data_offsets [%d, %d] overlap those of tensor %q [%d, %d]",
				e.begin, e.end, o.name, o.begin, o.end)
		}
		maxEnd, owner = e.end, i
		total += e.end - e.begin
	}

	// All sizes are now known to lie within the file: allocate once and
	// read each tensor into its own slice of the buffer.
	buf := make([]byte, total)
	f := &File{Metadata: meta, Tensors: make(map[string]*Tensor, len(entries)), Order: make([]string, 0, len(entries))}
	var off int64
	for _, e := range entries {
		n := e.end - e.begin
		data := buf[off : off+n : off+n]
		off += n
		if err := readFullAt(r, data, dataStart+e.begin); err != nil {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: reading %d bytes at file byte %d: %w",
				name, e.name, n, dataStart+e.begin, err)
		}
		f.Tensors[e.name] = &Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: data}
		f.Order = append(f.Order, e.name)
	}
	return f, nil
}

// parseHeader validates the JSON header and returns the metadata and the
// tensor entries in header order.
func (d *decoder) parseHeader(hdr []byte, dataStart, dataLen int64) (map[string]string, []entry, error) {
	if !utf8.Valid(hdr) {
		i := 0
		for i < len(hdr) {
			r, n := utf8.DecodeRune(hdr[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, nil, d.errf("header is not valid UTF-8 (header byte %d)", i)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, d.errf("header is not valid JSON (header byte %d): %v", dec.InputOffset(), err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, nil, d.errf("header is not a JSON object")
	}
	var (
		meta    map[string]string
		entries []entry
		seen    = make(map[string]bool)
	)
	for dec.More() {
		at := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, d.errf("header is not valid JSON (header byte %d): %v", at, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, d.errf("header is not valid JSON (header byte %d): expected a key", at)
		}
		if seen[key] {
			return nil, nil, d.errf("header key %q appears twice (header byte %d)", key, at)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, d.errf("header is not valid JSON (value of %q near header byte %d): %v", key, dec.InputOffset(), err)
		}
		if key == metadataKey {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, d.errf("%s is not an object of strings: %v", metadataKey, err)
			}
			continue
		}
		e, err := d.parseEntry(key, raw, dataStart, dataLen)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, d.errf("header is not valid JSON (header byte %d): %v", dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, d.errf("trailing data after the header object (header byte %d)", dec.InputOffset())
	}
	return meta, entries, nil
}

// parseEntry validates one tensor's header entry.
func (d *decoder) parseEntry(name string, raw json.RawMessage, dataStart, dataLen int64) (entry, error) {
	e := entry{name: name}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return e, d.tensorErrf(name, "entry is not a JSON object")
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := fields[f]; !ok {
			return e, d.tensorErrf(name, "entry has no %q", f)
		}
	}
	var ds string
	if err := json.Unmarshal(fields["dtype"], &ds); err != nil {
		return e, d.tensorErrf(name, "dtype %s is not a string", fields["dtype"])
	}
	e.dtype = DType(ds)
	size := e.dtype.Size()
	if size == 0 {
		return e, d.tensorErrf(name, "unknown dtype %q", ds)
	}

	dims, err := parseIntArray(fields["shape"])
	if err != nil {
		return e, d.tensorErrf(name, "shape: %v", err)
	}
	e.shape = make([]int, len(dims))
	for i, v := range dims {
		if v < 0 {
			return e, d.tensorErrf(name, "shape[%d] = %d is negative", i, v)
		}
		if uint64(v) > math.MaxInt {
			return e, d.tensorErrf(name, "shape[%d] = %d is too large", i, v)
		}
		e.shape[i] = int(v)
	}
	n, ok := numElements(e.shape)
	if !ok || n > math.MaxInt/size || int64(n*size) > dataLen {
		return e, d.tensorErrf(name, "shape %v %s needs more bytes than the %d-byte data section holds",
			e.shape, e.dtype, dataLen)
	}
	nbytes := int64(n * size)

	offs, err := parseIntArray(fields["data_offsets"])
	if err != nil {
		return e, d.tensorErrf(name, "data_offsets: %v", err)
	}
	if len(offs) != 2 {
		return e, d.tensorErrf(name, "data_offsets has %d values, want 2 ([begin, end])", len(offs))
	}
	e.begin, e.end = offs[0], offs[1]
	switch {
	case e.begin < 0 || e.end < 0:
		return e, d.tensorErrf(name, "data_offsets [%d, %d] are negative", e.begin, e.end)
	case e.end < e.begin:
		return e, d.tensorErrf(name, "data_offsets [%d, %d] end before they begin", e.begin, e.end)
	case e.end > dataLen:
		return e, d.tensorErrf(name, "data_offsets [%d, %d] run past the %d-byte data section (file bytes %d to %d)",
			e.begin, e.end, dataLen, dataStart, dataStart+dataLen)
	case e.end-e.begin != nbytes:
		return e, d.tensorErrf(name, "data_offsets [%d, %d] hold %d bytes, shape %v %s needs %d",
			e.begin, e.end, e.end-e.begin, e.shape, e.dtype, nbytes)
	}
	return e, nil
}

// parseIntArray parses a JSON array of integer literals (no fractions, no
// exponents, no strings, no null).
func parseIntArray(raw json.RawMessage) ([]int64, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, fmt.Errorf("%s is not an array", trimmed)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, err
	}
	out := make([]int64, len(elems))
	for i, el := range elems {
		v, err := strconv.ParseInt(string(bytes.TrimSpace(el)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d (%s) is not a 64-bit integer", i, el)
		}
		out[i] = v
	}
	return out, nil
}

// readFullAt fills p from r at off; an io.EOF that arrives together with
// the last byte is not an error.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
