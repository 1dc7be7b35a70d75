package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func grayImage(w, h, seed int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i*7 + seed*31)
	}
	return m
}

func rgbaImage(w, h, seed int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i*5 + seed*13)
	}
	return m
}

func encodePNG(t *testing.T, path string, m image.Image) {
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func encodeJPEG(t *testing.T, path string, m image.Image) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func TestLoadFolderGray(t *testing.T) {
	root := t.TempDir()
	encodePNG(t, filepath.Join(root, "b", "1.png"), grayImage(28, 28, 1))
	encodePNG(t, filepath.Join(root, "b", "0.PNG"), grayImage(40, 20, 2))
	encodeJPEG(t, filepath.Join(root, "a", "x.jpg"), grayImage(32, 32, 3))
	encodePNG(t, filepath.Join(root, "a", ".hidden.png"), rgbaImage(5, 5, 0))
	writeFile(t, filepath.Join(root, "a", ".DS_Store"), []byte("junk"))
	writeFile(t, filepath.Join(root, ".git", "config"), []byte("junk"))
	writeFile(t, filepath.Join(root, "README.txt"), []byte("files in root are ignored"))
	s, err := Load("folder", root, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 3 || s.C != 1 || s.H != 32 || s.W != 32 || strings.Join(s.Classes, ",") != "a,b" || !bytes.Equal(s.Labels, []uint8{0, 1, 1}) {
		t.Fatalf("N=%d C=%d classes %v labels %v", s.N, s.C, s.Classes, s.Labels)
	}
	// b/0.PNG (40×20) is image 1.
	want, _ := ResizeBilinear(grayImage(40, 20, 2).Pix, 1, 20, 40, 32, 32)
	if !bytes.Equal(s.Image(1), want) {
		t.Error("image 1 differs from its resize")
	}
	want, _ = ResizeBilinear(grayImage(28, 28, 1).Pix, 1, 28, 28, 32, 32)
	if !bytes.Equal(s.Image(2), want) {
		t.Error("image 2 differs from its resize")
	}
}

func TestLoadFolderRGB(t *testing.T) {
	root := t.TempDir()
	src := rgbaImage(50, 30, 4)
	encodePNG(t, filepath.Join(root, "cat", "c.png"), src)
	encodePNG(t, filepath.Join(root, "dog", "d.png"), grayImage(10, 10, 5))
	encodeJPEG(t, filepath.Join(root, "dog", "e.jpeg"), rgbaImage(64, 64, 6))
	s, err := Load("folder", root, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 3 || s.C != 3 || !bytes.Equal(s.Labels, []uint8{0, 1, 1}) {
		t.Fatalf("N=%d C=%d labels %v", s.N, s.C, s.Labels)
	}
	// The RGBA image: planes of R, G, B with alpha dropped, then resized.
	planes := make([]byte, 3*50*30)
	for p := 0; p < 50*30; p++ {
		for k := 0; k < 3; k++ {
			planes[k*50*30+p] = src.Pix[4*p+k]
		}
	}
	want, _ := ResizeBilinear(planes, 3, 30, 50, 32, 32)
	if !bytes.Equal(s.Image(0), want) {
		t.Error("RGB image differs from its resize")
	}
	// The grayscale image in a colour set: three equal planes.
	g, _ := ResizeBilinear(grayImage(10, 10, 5).Pix, 1, 10, 10, 32, 32)
	if img := s.Image(1); !bytes.Equal(img[:1024], g) || !bytes.Equal(img[1024:2048], g) || !bytes.Equal(img[2048:], g) {
		t.Error("gray image in an RGB set differs")
	}
}

// TestLoadFolderPaletted: a paletted PNG with transparency becomes the
// palette's RGB with the alpha dropped, as PIL's convert("RGB") does.
func TestLoadFolderPaletted(t *testing.T) {
	root := t.TempDir()
	pal := color.Palette{color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 128}, color.NRGBA{0, 255, 0, 0}}
	m := image.NewPaletted(image.Rect(0, 0, 16, 16), pal)
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 3)
	}
	encodePNG(t, filepath.Join(root, "p", "p.png"), m)
	s, err := LoadFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	planes := make([]byte, 3*256)
	for p := 0; p < 256; p++ {
		c := pal[m.Pix[p]].(color.NRGBA)
		planes[p], planes[256+p], planes[512+p] = c.R, c.G, c.B
	}
	want, _ := ResizeBilinear(planes, 3, 16, 16, 32, 32)
	if s.C != 3 || !bytes.Equal(s.Image(0), want) {
		t.Error("paletted image: colours must be the palette's, alpha dropped")
	}
}

func TestLoadFolderErrors(t *testing.T) {
	cases := map[string]struct {
		setup func(root string)
		want  string
	}{
		"no classes": {func(root string) {
			writeFile(t, filepath.Join(root, "x.png"), nil)
		}, "no class sub-folders"},
		"missing root": {func(root string) { os.RemoveAll(root) }, "no such file"},
		"empty class": {func(root string) {
			encodePNG(t, filepath.Join(root, "a", "1.png"), grayImage(4, 4, 0))
			os.MkdirAll(filepath.Join(root, "b"), 0o755)
			writeFile(t, filepath.Join(root, "b", ".keep"), nil)
		}, "b holds no"},
		"text file": {func(root string) {
			encodePNG(t, filepath.Join(root, "a", "1.png"), grayImage(4, 4, 0))
			writeFile(t, filepath.Join(root, "a", "notes.txt"), []byte("hi"))
		}, filepath.Join("a", "notes.txt") + ": not a .png"},
		"corrupt png": {func(root string) {
			writeFile(t, filepath.Join(root, "a", "1.png"), []byte("\x89PNG\r\n\x1a\nnonsense"))
		}, filepath.Join("a", "1.png") + ": not a readable"},
		"truncated png": {func(root string) {
			var b bytes.Buffer
			png.Encode(&b, rgbaImage(30, 30, 1))
			writeFile(t, filepath.Join(root, "a", "1.png"), b.Bytes()[:b.Len()/2])
		}, filepath.Join("a", "1.png") + ": not a readable"},
		"png as jpg": {func(root string) {
			writeFile(t, filepath.Join(root, "a", "1.jpg"), []byte("GIF89a"))
		}, filepath.Join("a", "1.jpg")},
		"huge png": {func(root string) {
			writeFile(t, filepath.Join(root, "a", "big.png"), hugePNG(t, 100000, 100000))
		}, "100000×100000 out of range"},
		"folder in class": {func(root string) {
			encodePNG(t, filepath.Join(root, "a", "1.png"), grayImage(4, 4, 0))
			os.MkdirAll(filepath.Join(root, "a", "sub.png"), 0o755)
		}, "a folder inside a class folder"},
	}
	for name, tc := range cases {
		root := t.TempDir()
		tc.setup(root)
		_, err := Load("folder", root, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	root := t.TempDir()
	for i := 0; i < 257; i++ {
		encodePNG(t, filepath.Join(root, fmt.Sprintf("c%03d", i), "1.png"), grayImage(2, 2, i))
	}
	if _, err := LoadFolder(root); err == nil || !strings.Contains(err.Error(), "257 class") {
		t.Errorf("257 classes: %v", err)
	}
}

// hugePNG returns a tiny PNG whose header declares w×h pixels.
func hugePNG(t *testing.T, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, grayImage(1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	// IHDR data starts at 16: width, height; its CRC covers bytes 12..29.
	binary.BigEndian.PutUint32(p[16:], uint32(w))
	binary.BigEndian.PutUint32(p[20:], uint32(h))
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// TestToPlanesFastPaths: the fast paths for decoded JPEG (YCbCr) and PNG
// (NRGBA, Gray) images agree with the generic colour conversion.
func TestToPlanesFastPaths(t *testing.T) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, rgbaImage(37, 21, 3), nil); err != nil {
		t.Fatal(err)
	}
	ycc, err := jpeg.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ycc.(*image.YCbCr); !ok {
		t.Fatalf("JPEG decoded to %T", ycc)
	}
	for _, img := range []image.Image{ycc, rgbaImage(37, 21, 4), grayImage(37, 21, 5)} {
		const n = 37 * 21
		got, want := make([]byte, 3*n), make([]byte, 3*n)
		toPlanes(got, img, false)
		for y := 0; y < 21; y++ {
			for x := 0; x < 37; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				want[y*37+x], want[n+y*37+x], want[2*n+y*37+x] = c.R, c.G, c.B
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%T: planes differ from the generic conversion", img)
		}
	}
}
