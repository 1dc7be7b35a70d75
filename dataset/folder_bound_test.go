package dataset

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pad-dreaming/pad/internal/testkit"
)

// Headers declaring more pixels than the file can hold are refused before
// the decoder allocates the image (an 81-byte PNG declaring 5000×5000 made
// png.Decode allocate 25 MB; a 16-bit RGBA one 8 bytes per pixel), while
// the most compressible real images — one colour, large — still load.
func TestFolderImageSizeBound(t *testing.T) {
	dir := t.TempDir()
	decode := func(name string, b []byte) error {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var rc resizerCache
		var planes []byte
		_, err := decodeFolderImage(path, make([]byte, 3*Size*Size), &rc, &planes)
		return err
	}
	var small bytes.Buffer
	if err := png.Encode(&small, grayImage(1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	for _, wh := range [][2]uint32{{5000, 5000}, {1 << 12, 1 << 12}, {1 << 20, 2}} {
		b := declaredPNG(small.Bytes(), wh[0], wh[1])
		var err error
		alloc := testkit.HeapAllocated(func() { err = decode("forged.png", b) })
		if err == nil || !strings.Contains(err.Error(), "more than a file of") {
			t.Errorf("%v declared in %d bytes: %v", wh, len(b), err)
		}
		if alloc > 1<<20 {
			t.Errorf("%v declared in %d bytes: %d bytes allocated", wh, len(b), alloc)
		}
	}
	solidGray := image.NewGray(image.Rect(0, 0, 3000, 2000))
	solidRGB := image.NewNRGBA(image.Rect(0, 0, 1500, 1500))
	for i := range solidRGB.Pix {
		solidRGB.Pix[i] = 255
	}
	for _, m := range []image.Image{solidGray, solidRGB} {
		var p, j bytes.Buffer
		if err := png.Encode(&p, m); err != nil {
			t.Fatal(err)
		}
		if err := jpeg.Encode(&j, m, &jpeg.Options{Quality: 1}); err != nil {
			t.Fatal(err)
		}
		if err := decode("solid.png", p.Bytes()); err != nil {
			t.Errorf("solid %v PNG of %d bytes: %v", m.Bounds().Size(), p.Len(), err)
		}
		if err := decode("solid.jpg", j.Bytes()); err != nil {
			t.Errorf("solid %v JPEG of %d bytes: %v", m.Bounds().Size(), j.Len(), err)
		}
	}
}
