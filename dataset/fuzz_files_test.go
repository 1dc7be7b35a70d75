package dataset

// Fuzz targets for the readers of files pad gets from outside, through the
// same paths `pad train` uses: CIFAR-10 batch files, single images of a
// folder set, a folder set holding one fuzzed image, and IDX files on disk.
// Besides never panicking, every reader must name the file in its errors
// and allocate no more than its input justifies: testkit.HeapAllocated measures
// the bytes allocated while it runs (large allocations are counted
// exactly, which is what matters here).

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// writeOrRemove writes b to path, or removes path when b is nil.
func writeOrRemove(t *testing.T, path string, b []byte) {
	t.Helper()
	if b == nil {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkAlloc fails when a reader allocated more than perByte bytes per
// input byte plus fixed (buffers, decoder state).
func checkAlloc(t *testing.T, what string, got uint64, inputLen int, perByte, fixed uint64) {
	t.Helper()
	if limit := perByte*uint64(inputLen) + fixed; got > limit {
		t.Fatalf("%s: %d bytes of input made the reader allocate %d bytes (limit %d)", what, inputLen, got, limit)
	}
}

// FuzzLoadCIFAR10 loads a CIFAR-10 test split whose batch file (and, when
// not empty, batches.meta.txt) holds fuzzed bytes.
func FuzzLoadCIFAR10(f *testing.F) {
	f.Add(cifarBytes(0, 1), []byte(nil))
	f.Add(cifarBytes(3, 2), []byte("plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"))
	bad := cifarBytes(1, 2)
	bad[cifarRecord] = 10
	f.Add(bad, []byte("a\nb\n"))
	f.Add(cifarBytes(2, 1)[:100], []byte(nil))
	f.Add([]byte{}, []byte("\n\n"))
	dir := testkit.ScratchDir(f)
	f.Fuzz(func(t *testing.T, batch, meta []byte) {
		batchPath := filepath.Join(dir, "test_batch.bin")
		writeOrRemove(t, batchPath, append([]byte{}, batch...))
		if len(meta) == 0 {
			meta = nil
		}
		writeOrRemove(t, filepath.Join(dir, cifarMeta), meta)
		var s *Set
		var err error
		alloc := testkit.HeapAllocated(func() { s, err = Load("cifar10", dir, false) })
		checkAlloc(t, "cifar10", alloc, len(batch)+len(meta), 2, 1<<20)
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), batchPath) && !strings.Contains(err.Error(), "offset") {
				t.Fatalf("error does not name the offset: %v", err)
			}
			return
		}
		if s.N*cifarRecord != len(batch) || s.C != 3 || len(s.Classes) != 10 {
			t.Fatalf("%d images of %d channels, %d classes from %d bytes", s.N, s.C, len(s.Classes), len(batch))
		}
		for i := 0; i < s.N; i++ {
			rec := batch[i*cifarRecord : (i+1)*cifarRecord]
			if s.Labels[i] != rec[0] || !bytes.Equal(s.Image(i), rec[1:]) {
				t.Fatalf("record %d read wrongly", i)
			}
		}
	})
}

// declaredPNG returns the PNG b with its header declaring w×h pixels (its
// data stays as it was: a decoder finds it too short).
func declaredPNG(b []byte, w, h uint32) []byte {
	p := bytes.Clone(b)
	// IHDR data starts at 16: width, height; its CRC covers bytes 12..29.
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// folderSeeds are small images of every kind the folder reader meets, and
// tiny files whose headers declare millions of pixels.
func folderSeeds(tb testing.TB) [][]byte {
	enc := func(m image.Image, jpg bool) []byte {
		var b bytes.Buffer
		var err error
		if jpg {
			err = jpeg.Encode(&b, m, &jpeg.Options{Quality: 75})
		} else {
			err = png.Encode(&b, m)
		}
		if err != nil {
			tb.Fatal(err)
		}
		return b.Bytes()
	}
	g16 := image.NewGray16(image.Rect(0, 0, 5, 3))
	for i := range g16.Pix {
		g16.Pix[i] = byte(i * 37)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 6, 6), color.Palette{color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = byte(i % 2)
	}
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 3, 4))
	for i := range rgba64.Pix {
		rgba64.Pix[i] = byte(i * 11)
	}
	gray := enc(grayImage(7, 5, 1), false)
	rgba := enc(rgba64, false)
	jpg := enc(rgbaImage(17, 9, 4), true)
	// A JPEG whose frame header (SOF0: marker, length, precision, then
	// height and width) declares 4000×4000.
	bigJPG := bytes.Clone(jpg)
	if i := bytes.Index(bigJPG, []byte{0xff, 0xc0}); i >= 0 {
		binary.BigEndian.PutUint16(bigJPG[i+5:], 4000)
		binary.BigEndian.PutUint16(bigJPG[i+7:], 4000)
	}
	return [][]byte{
		gray, enc(rgbaImage(9, 4, 2), false), enc(g16, false), enc(pal, false), rgba,
		enc(grayImage(16, 16, 3), true), jpg,
		declaredPNG(gray, 5000, 5000), declaredPNG(rgba, 4000, 4000), bigJPG,
	}
}

// FuzzDecodeFolderImage decodes one fuzzed file as the folder reader does.
func FuzzDecodeFolderImage(f *testing.F) {
	for _, b := range folderSeeds(f) {
		f.Add(b)
	}
	path := filepath.Join(testkit.ScratchDir(f), "img.png")
	f.Fuzz(func(t *testing.T, b []byte) {
		writeOrRemove(t, path, append([]byte{}, b...))
		dst := make([]byte, 3*Size*Size)
		var rc resizerCache
		var planes []byte
		var err error
		alloc := testkit.HeapAllocated(func() { _, err = decodeFolderImage(path, dst, &rc, &planes) })
		// A PNG stores at least 1 bit per pixel, deflated at most 1032:1;
		// a JPEG at least 1 bit per 8×8 block: at most 8256 pixels per
		// byte, and a decoded pixel takes at most 8 bytes (RGBA64), plus 3
		// in the planes.
		checkAlloc(t, "image", alloc, len(b), 8256*11, 1<<20)
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// FuzzLoadFolder loads a folder set of two classes: one good image, and
// one file of fuzzed bytes.
func FuzzLoadFolder(f *testing.F) {
	for _, b := range folderSeeds(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	var good bytes.Buffer
	if err := png.Encode(&good, grayImage(28, 28, 5)); err != nil {
		f.Fatal(err)
	}
	root := testkit.ScratchDir(f)
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "good.png"), good.Bytes(), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, jpg bool) {
		path, other := filepath.Join(root, "b", "fuzz.png"), filepath.Join(root, "b", "fuzz.jpg")
		if jpg {
			path, other = other, path
		}
		writeOrRemove(t, other, nil)
		writeOrRemove(t, path, append([]byte{}, b...))
		var s *Set
		var err error
		alloc := testkit.HeapAllocated(func() { s, err = LoadFolder(root) })
		checkAlloc(t, "folder", alloc, len(b)+good.Len(), 8256*11, 1<<20)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the fuzzed file: %v", err)
			}
			return
		}
		if s.N != 2 || s.Labels[0] != 0 || s.Labels[1] != 1 || (s.C != 1 && s.C != 3) || s.Validate() != nil {
			t.Fatalf("set of %d images, %d channels, labels %v", s.N, s.C, s.Labels)
		}
	})
}

// gunzipLen returns the length of the decompressed gzip data b (at most
// limit bytes are decompressed), or len(b) when b is not gzip.
func gunzipLen(b []byte, limit int64) int64 {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return int64(len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return 0
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, limit))
	return n
}

// FuzzLoadIDXFiles loads an MNIST-style training split from two files on
// disk (raw or gzip), as `pad train` does; FuzzReadIDX covers the streams
// in memory.
func FuzzLoadIDXFiles(f *testing.F) {
	img := idxBytes(2, 28, 28, make([]byte, 2*784))
	lab := idxBytes(2, 0, 0, []byte{3, 9})
	f.Add(img, lab)
	f.Add(gz(img), gz(lab))
	f.Add(idxBytes(3, 1, 1, []byte{1, 2, 3}), idxBytes(3, 0, 0, []byte{0, 1, 2}))
	f.Add(idxBytes(1<<20, 1, 1, nil), gz(idxBytes(1<<20, 0, 0, nil)))
	f.Add(gz(idxBytes(9000, 1, 1, make([]byte, 9000))), gz(idxBytes(9000, 0, 0, make([]byte, 9000))))
	dir := testkit.ScratchDir(f)
	f.Fuzz(func(t *testing.T, img, lab []byte) {
		writeOrRemove(t, filepath.Join(dir, "train-images-idx3-ubyte"), append([]byte{}, img...))
		writeOrRemove(t, filepath.Join(dir, "train-labels-idx1-ubyte"), append([]byte{}, lab...))
		var s *Set
		var err error
		alloc := testkit.HeapAllocated(func() { s, err = Load("mnist", dir, true) })
		// What is read may be allocated before it is read, up to what the
		// compressed size can hold (1032:1), and a 1×1 image becomes a
		// 32×32 one: 1024 bytes per byte of data.
		raw := gunzipLen(img, 1<<30) + gunzipLen(lab, 1<<30)
		checkAlloc(t, "idx", alloc, int(raw), 1100, 1032*uint64(len(img)+len(lab))+4<<20)
		if err != nil {
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("error does not name the file and offset: %v", err)
			}
			return
		}
		if s.N == 0 && len(img) > 0 && s.Validate() != nil {
			t.Fatal(s.Validate())
		}
		if s.Validate() != nil || s.C != 1 || len(s.Labels) != s.N {
			t.Fatalf("set of %d images, %d labels: %v", s.N, len(s.Labels), s.Validate())
		}
	})
}
