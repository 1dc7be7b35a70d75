package dataset

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
)

// A test-only writer of MAT-file level 5 bytes, written from the format's
// documentation independently of the reader (it shares only the type
// numbers), to make fixtures Octave cannot: big-endian files, narrowed
// storage types, small real parts and broken files.

// matFile assembles a MAT-file.
type matFile struct {
	order binary.ByteOrder
	app   binary.AppendByteOrder
	buf   bytes.Buffer
}

func newMATFile(order binary.ByteOrder) *matFile {
	m := &matFile{order: order, app: order.(binary.AppendByteOrder)}
	text := []byte("MATLAB 5.0 MAT-file, written by pad's tests")
	for len(text) < 116 {
		text = append(text, ' ')
	}
	m.buf.Write(text)
	m.buf.Write(make([]byte, 8)) // subsystem data offset: none
	var v [4]byte
	order.PutUint16(v[0:], 0x0100)
	order.PutUint16(v[2:], 'M'<<8|'I')
	m.buf.Write(v[:])
	return m
}

// elem encodes one data element; small elements are used where allowed and
// the data fits in 4 bytes.
func (m *matFile) elem(typ uint32, data []byte, allowSmall bool) []byte {
	var b bytes.Buffer
	var w [4]byte
	if allowSmall && len(data) <= 4 && len(data) > 0 {
		m.order.PutUint32(w[:], uint32(len(data))<<16|typ)
		b.Write(w[:])
		b.Write(data)
		b.Write(make([]byte, 4-len(data)))
		return b.Bytes()
	}
	m.order.PutUint32(w[:], typ)
	b.Write(w[:])
	m.order.PutUint32(w[:], uint32(len(data)))
	b.Write(w[:])
	b.Write(data)
	b.Write(make([]byte, (8-len(data)%8)%8))
	return b.Bytes()
}

// encode writes vals as the MAT data type typ.
func (m *matFile) encode(typ uint32, vals []float64) []byte {
	var b []byte
	for _, v := range vals {
		switch typ {
		case miINT8:
			b = append(b, byte(int8(v)))
		case miUINT8:
			b = append(b, byte(v))
		case miINT16, miUINT16:
			b = m.app.AppendUint16(b, uint16(int64(v)))
		case miINT32, miUINT32:
			b = m.app.AppendUint32(b, uint32(int64(v)))
		case miSINGLE:
			b = m.app.AppendUint32(b, math.Float32bits(float32(v)))
		case miDOUBLE:
			b = m.app.AppendUint64(b, math.Float64bits(v))
		case miINT64, miUINT64:
			b = m.app.AppendUint64(b, uint64(int64(v)))
		}
	}
	return b
}

// matrix encodes an miMATRIX element (tag included) of a numeric variable.
func (m *matFile) matrix(name string, class uint8, flags uint32, dims []int, realType uint32, real []byte) []byte {
	var body bytes.Buffer
	f := make([]byte, 8)
	m.order.PutUint32(f, flags|uint32(class))
	body.Write(m.elem(miUINT32, f, false))
	d := make([]byte, 4*len(dims))
	for i, v := range dims {
		m.order.PutUint32(d[4*i:], uint32(int32(v)))
	}
	body.Write(m.elem(miINT32, d, false))
	body.Write(m.elem(miINT8, []byte(name), true))
	body.Write(m.elem(realType, real, true))
	return m.elem(miMATRIX, body.Bytes(), false)
}

// add appends an element, raw or wrapped in miCOMPRESSED (no padding after
// compressed data, as MATLAB writes it).
func (m *matFile) add(elem []byte, compress bool) {
	if !compress {
		m.buf.Write(elem)
		return
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(elem)
	zw.Close()
	m.addCompressed(z.Bytes())
}

// addCompressed appends an miCOMPRESSED element holding the zlib stream z.
func (m *matFile) addCompressed(z []byte) {
	var w [4]byte
	m.order.PutUint32(w[:], miCOMPRESSED)
	m.buf.Write(w[:])
	m.order.PutUint32(w[:], uint32(len(z)))
	m.buf.Write(w[:])
	m.buf.Write(z)
}

func (m *matFile) bytes() []byte { return m.buf.Bytes() }
