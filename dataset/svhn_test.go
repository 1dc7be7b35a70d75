package dataset

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureX is the pixel value the Octave fixtures hold at 0-based row i,
// column j, channel k of image n (see testdata/svhn_fixture.m).
func fixtureX(i, j, k, n int) byte { return byte((3*(i+1) + 7*(j+1) + 50*(k+1) + 11*(n+1)) % 256) }

func checkFixtureSet(t *testing.T, s *Set, images []int, labels []uint8) {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.N != len(images) || s.C != 3 || s.H != 32 || s.W != 32 || !bytes.Equal(s.Labels, labels) {
		t.Fatalf("N=%d C=%d %d×%d labels %v; want N=%d labels %v", s.N, s.C, s.H, s.W, s.Labels, len(images), labels)
	}
	for m, n := range images {
		img := s.Image(m)
		for k := 0; k < 3; k++ {
			for i := 0; i < 32; i++ {
				for j := 0; j < 32; j++ {
					if got, want := img[k*1024+i*32+j], fixtureX(i, j, k, n); got != want {
						t.Fatalf("image %d channel %d row %d column %d: got %d, want %d", m, k, i, j, got, want)
					}
				}
			}
		}
	}
}

func TestReadSVHNOctaveFixtures(t *testing.T) {
	for _, name := range []string{"svhn_v6.mat", "svhn_v7.mat"} {
		s, err := ReadSVHN(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkFixtureSet(t, s, []int{0, 1, 2}, []uint8{0, 1, 5})
	}
	s, err := ReadSVHN("testdata/svhn_one_v7.mat")
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureSet(t, s, []int{1}, []uint8{1})
}

func TestLoadSVHN(t *testing.T) {
	dir := t.TempDir()
	for _, c := range [][2]string{{"svhn_v7.mat", "train_32x32.mat"}, {"svhn_one_v7.mat", "test_32x32.mat"}} {
		b, err := os.ReadFile(filepath.Join("testdata", c[0]))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, c[1]), b)
	}
	s, err := Load("svhn", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 3 || s.Name != "svhn" || len(s.Classes) != 10 {
		t.Fatalf("train: %+v", s)
	}
	if s, err = Load("svhn", dir, false); err != nil || s.N != 1 {
		t.Fatalf("test: %v", err)
	}
}

// goSVHN builds an SVHN-style file with the test writer: n images with
// fixtureX's pixels stored as xType, labels stored as yType in class yClass.
func goSVHN(order binary.ByteOrder, compress bool, n int, xType uint32, xClass uint8, yType uint32, yClass uint8, labels []float64) []byte {
	m := newMATFile(order)
	xs := make([]float64, 0, n*3072)
	for nn := 0; nn < n; nn++ {
		for k := 0; k < 3; k++ {
			for j := 0; j < 32; j++ {
				for i := 0; i < 32; i++ {
					xs = append(xs, float64(fixtureX(i, j, k, nn)))
				}
			}
		}
	}
	// An unrelated variable first.
	m.add(m.matrix("other", 6, 0, []int{1, 2}, miDOUBLE, m.encode(miDOUBLE, []float64{3.5, -1})), compress)
	m.add(m.matrix("y", yClass, 0, []int{len(labels), 1}, yType, m.encode(yType, labels)), compress)
	m.add(m.matrix("X", xClass, 0, []int{32, 32, 3, n}, xType, m.encode(xType, xs)), compress)
	return m.bytes()
}

func parseSVHNBytes(b []byte) (*Set, error) {
	vars, err := parseMAT(bytes.NewReader(b), int64(len(b)), "test.mat", "X", "y")
	if err != nil {
		return nil, err
	}
	return svhnSet(vars, "test.mat")
}

func TestReadSVHNGoWritten(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, compress := range []bool{false, true} {
			for _, tc := range []struct {
				xType  uint32
				xClass uint8
				yType  uint32
				yClass uint8
				labels []float64
			}{
				{miUINT8, 9, miDOUBLE, 6, []float64{10, 3}},
				{miUINT8, 9, miUINT8, 6, []float64{10, 3}},   // doubles narrowed to uint8
				{miUINT8, 6, miUINT16, 6, []float64{10, 3}},  // X class double stored as uint8
				{miDOUBLE, 6, miINT32, 12, []float64{10, 3}}, // X as doubles
				{miINT16, 10, miSINGLE, 7, []float64{10, 3}},
				{miUINT8, 9, miUINT8, 9, []float64{7}},  // one label: a small real part
				{miUINT8, 9, miINT64, 14, []float64{7}}, // 8 bytes: not small
			} {
				n := len(tc.labels)
				b := goSVHN(order, compress, n, tc.xType, tc.xClass, tc.yType, tc.yClass, tc.labels)
				s, err := parseSVHNBytes(b)
				if err != nil {
					t.Fatalf("%v compress=%v %+v: %v", order, compress, tc, err)
				}
				want := make([]uint8, n)
				images := make([]int, n)
				for i, l := range tc.labels {
					want[i], images[i] = uint8(int(l)%10), i
				}
				checkFixtureSet(t, s, images, want)
			}
		}
	}
}

func TestReadSVHNBadVariables(t *testing.T) {
	le := binary.LittleEndian
	cases := map[string][]byte{
		"label 11":        goSVHN(le, false, 2, miUINT8, 9, miDOUBLE, 6, []float64{11, 3}),
		"label 2.5":       goSVHN(le, true, 2, miUINT8, 9, miDOUBLE, 6, []float64{2.5, 3}),
		"label -1":        goSVHN(le, false, 2, miUINT8, 9, miINT8, 8, []float64{-1, 3}),
		"label count":     goSVHN(le, false, 2, miUINT8, 9, miDOUBLE, 6, []float64{1, 2, 3})[:0],
		"pixel 300":       goSVHNPixel(le, 300),
		"pixel -2":        goSVHNPixel(le, -2),
		"wrong dims":      oneVar(le, "X", 9, 0, []int{32, 31, 3, 1}, miUINT8, make([]byte, 32*31*3)),
		"complex X":       oneVar(le, "X", 9, matComplexFlag, []int{32, 32, 3, 1}, miUINT8, make([]byte, 3072)),
		"char X":          oneVar(le, "X", 4, 0, []int{32, 32, 3, 1}, miUINT8, make([]byte, 3072)),
		"data size":       oneVar(le, "X", 9, 0, []int{32, 32, 3, 2}, miUINT8, make([]byte, 3072)),
		"negative dim":    oneVar(le, "X", 9, 0, []int{32, -32, 3, 1}, miUINT8, make([]byte, 3072)),
		"no variables":    newMATFile(le).bytes(),
		"huge dims":       oneVar(le, "X", 9, 0, []int{1 << 30, 1 << 30, 1 << 30, 8}, miUINT8, nil),
		"bad real type":   oneVar(le, "X", 9, 0, []int{32, 32, 3, 1}, miMATRIX, make([]byte, 3072)),
		"bad version":     withBytes(goSVHN(le, false, 1, miUINT8, 9, miDOUBLE, 6, []float64{1}), 124, 0x02, 0x03),
		"v7.3":            withBytes(goSVHN(le, false, 1, miUINT8, 9, miDOUBLE, 6, []float64{1}), 124, 0x00, 0x02),
		"bad endian":      withBytes(goSVHN(le, false, 1, miUINT8, 9, miDOUBLE, 6, []float64{1}), 126, 'X', 'Y'),
		"short header":    []byte("MATLAB 5.0"),
		"stray tail":      append(goSVHN(le, false, 1, miUINT8, 9, miDOUBLE, 6, []float64{1}), 1, 2, 3),
		"duplicate y":     dupY(le),
		"y class cell":    oneVarPlusX(le, "y", 1),
		"compressed junk": compressedRaw(le, []byte("not zlib at all")),
	}
	// "label count": y has 3 labels for 2 images.
	{
		m := newMATFile(le)
		m.add(m.matrix("y", 6, 0, []int{3, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1, 2, 3})), false)
		m.add(m.matrix("X", 9, 0, []int{32, 32, 3, 2}, miUINT8, make([]byte, 6144)), false)
		cases["label count"] = m.bytes()
	}
	for name, b := range cases {
		_, err := parseSVHNBytes(b)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), "test.mat") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func withBytes(b []byte, off int, v ...byte) []byte {
	b = append([]byte(nil), b...)
	copy(b[off:], v)
	return b
}

func goSVHNPixel(order binary.ByteOrder, v float64) []byte {
	m := newMATFile(order)
	xs := make([]float64, 3072)
	xs[100] = v
	m.add(m.matrix("X", 6, 0, []int{32, 32, 3, 1}, miINT16, m.encode(miINT16, xs)), false)
	m.add(m.matrix("y", 6, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1})), false)
	return m.bytes()
}

func oneVar(order binary.ByteOrder, name string, class uint8, flags uint32, dims []int, typ uint32, data []byte) []byte {
	m := newMATFile(order)
	m.add(m.matrix(name, class, flags, dims, typ, data), false)
	m.add(m.matrix("y", 6, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1})), false)
	return m.bytes()
}

func oneVarPlusX(order binary.ByteOrder, name string, class uint8) []byte {
	m := newMATFile(order)
	m.add(m.matrix(name, class, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1})), false)
	m.add(m.matrix("X", 9, 0, []int{32, 32, 3, 1}, miUINT8, make([]byte, 3072)), false)
	return m.bytes()
}

func dupY(order binary.ByteOrder) []byte {
	m := newMATFile(order)
	m.add(m.matrix("y", 6, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1})), true)
	m.add(m.matrix("y", 6, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{1})), false)
	m.add(m.matrix("X", 9, 0, []int{32, 32, 3, 1}, miUINT8, make([]byte, 3072)), true)
	return m.bytes()
}

func compressedRaw(order binary.ByteOrder, z []byte) []byte {
	m := newMATFile(order)
	m.addCompressed(z)
	return m.bytes()
}

// TestReadMATZipBomb: compressed elements that declare far more than they
// hold, or hold far more than they declare, fail without decompressing or
// allocating past the declaration.
func TestReadMATZipBomb(t *testing.T) {
	le := binary.LittleEndian
	m := newMATFile(le)
	// A matrix tag that declares 16 GB inside a tiny zlib stream.
	inner := make([]byte, 8)
	le.PutUint32(inner[0:], miMATRIX)
	le.PutUint32(inner[4:], 0xfffffff0)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(inner)
	zw.Close()
	m.addCompressed(z.Bytes())
	if _, err := parseSVHNBytes(m.bytes()); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("declared 4 GB in %d bytes: %v", z.Len(), err)
	}

	// X declared as 1 image but the stream goes on with 16 MB of zeros
	// after the matrix: only the declared part is decompressed.
	m = newMATFile(le)
	elem := m.matrix("X", 9, 0, []int{32, 32, 3, 1}, miUINT8, make([]byte, 3072))
	z.Reset()
	zw = zlib.NewWriter(&z)
	zw.Write(elem)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 16; i++ {
		zw.Write(zeros)
	}
	zw.Close()
	m.addCompressed(z.Bytes())
	m.add(m.matrix("y", 6, 0, []int{1, 1}, miDOUBLE, m.encode(miDOUBLE, []float64{4})), false)
	s, err := parseSVHNBytes(m.bytes())
	if err != nil || s.N != 1 || s.Labels[0] != 4 {
		t.Errorf("padded stream: %v", err)
	}

	// A matrix whose real part declares 1 GB with dims to match, in a
	// stream of a few KB: refused before allocating.
	m = newMATFile(le)
	var body bytes.Buffer
	f := make([]byte, 8)
	le.PutUint32(f, 9)
	body.Write(m.elem(miUINT32, f, false))
	d := make([]byte, 16)
	for i, v := range []uint32{32, 32, 3, 1 << 15} {
		le.PutUint32(d[4*i:], v)
	}
	body.Write(m.elem(miINT32, d, false))
	body.Write(m.elem(miINT8, []byte("X"), true))
	tag := make([]byte, 8)
	le.PutUint32(tag[0:], miUINT8)
	le.PutUint32(tag[4:], 3072<<15)
	body.Write(tag)
	hdr := make([]byte, 8)
	le.PutUint32(hdr[0:], miMATRIX)
	le.PutUint32(hdr[4:], uint32(body.Len()+3072<<15))
	z.Reset()
	zw = zlib.NewWriter(&z)
	zw.Write(hdr)
	zw.Write(body.Bytes())
	zw.Write(make([]byte, 4096))
	zw.Close()
	m.addCompressed(z.Bytes())
	if _, err := parseSVHNBytes(m.bytes()); err == nil {
		t.Error("1 GB declared in a small stream: no error")
	} else {
		t.Log(err)
	}
}

// TestReadMATCorruptFixtures cuts and flips the real fixtures: every result
// must be an error or a valid set, never a panic.
func TestReadMATCorruptFixtures(t *testing.T) {
	for _, name := range []string{"svhn_v6.mat", "svhn_v7.mat"} {
		orig, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		step := 1
		if len(orig) > 4000 {
			step = 7
		}
		for n := 0; n < len(orig); n += step {
			if _, err := parseSVHNBytes(orig[:n]); err == nil {
				t.Fatalf("%s cut to %d bytes: no error", name, n)
			}
		}
		b := make([]byte, len(orig))
		x := uint32(12345)
		for trial := 0; trial < 1500; trial++ {
			copy(b, orig)
			for k := 0; k < 1+trial%4; k++ {
				x = x*1664525 + 1013904223
				pos := int(x>>8) % len(b)
				if trial%2 == 0 && len(b) > 600 {
					pos = 128 + int(x>>8)%480 // mostly the tags and headers
				}
				x = x*1664525 + 1013904223
				b[pos] ^= byte(x >> 24)
			}
			if s, err := parseSVHNBytes(b); err == nil {
				if err := s.Validate(); err != nil {
					t.Fatalf("%s trial %d: invalid set without error: %v", name, trial, err)
				}
			}
		}
	}
}

func FuzzReadSVHN(f *testing.F) {
	for _, name := range []string{"svhn_v6.mat", "svhn_v7.mat", "svhn_one_v7.mat"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(goSVHN(binary.BigEndian, true, 1, miUINT8, 9, miUINT8, 6, []float64{10}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseSVHNBytes(b); err == nil {
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
