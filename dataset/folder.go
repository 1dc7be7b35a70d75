package dataset

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	folderMaxClasses = 256
	folderMaxPixels  = 1 << 25 // per image, checked before decoding
	// folderMaxPixelsPerByte bounds the pixels a file can hold per byte:
	// a PNG stores at least 1 bit per pixel, deflated at most 1032:1, and
	// a JPEG at least 1 bit per 8×8 block. A header declaring more is
	// refused before the decoder allocates the image.
	folderMaxPixelsPerByte = 8 * 1032
)

// LoadFolder reads a folder of labelled images: root/<class>/<image>, where
// the classes are the sub-folders of root in sorted order (at most 256) and
// the images are .png, .jpg or .jpeg files, read in sorted order. Hidden
// files and folders (names starting with a dot) and plain files directly in
// root are ignored; anything else inside a class folder is an error, as is
// an image that does not decode (the error names its path) and a class
// folder without images.
//
// Images of any size are resized to 32×32 with PIL's bilinear filter
// (ResizeBilinear). The set has C = 1 when every image is grayscale and
// C = 3 (RGB, any alpha dropped) otherwise.
func LoadFolder(root string) (*Set, error) {
	f, err := readFolder(root)
	if err != nil {
		return nil, err
	}
	return f.subset(indices(len(f.paths)), f.gray), nil
}

// folderImages is a folder of labelled images decoded to 32×32 RGB.
type folderImages struct {
	rgb     []byte   // N·3·32·32
	labels  []uint8  // N
	paths   []string // "<class>/<file>", slash-separated, relative to the root
	classes []string
	gray    bool // every image is grayscale
}

// subset returns the images idx of f as a Set, with one channel when gray.
func (f *folderImages) subset(idx []int, gray bool) *Set {
	const plane = Size * Size
	c := 3
	if gray {
		c = 1
	}
	img := make([]byte, len(idx)*c*plane)
	labels := make([]uint8, len(idx))
	for j, i := range idx {
		copy(img[j*c*plane:(j+1)*c*plane], f.rgb[i*3*plane:])
		labels[j] = f.labels[i]
	}
	return &Set{Name: "folder", Images: img, N: len(idx), C: c, H: Size, W: Size, Labels: labels, Classes: f.classes}
}

// readFolder reads root/<class>/<image> as LoadFolder describes.
func readFolder(root string) (*folderImages, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	var classes []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if isDir(root, e) {
			classes = append(classes, e.Name())
		}
	}
	sort.Strings(classes)
	if len(classes) == 0 {
		return nil, fmt.Errorf("folder: %s has no class sub-folders (want %s/<class>/*.png|*.jpg|*.jpeg)", root, root)
	}
	if len(classes) > folderMaxClasses {
		return nil, fmt.Errorf("folder: %s has %d class sub-folders, at most %d are supported", root, len(classes), folderMaxClasses)
	}
	type item struct {
		path, rel string
		label     uint8
	}
	var items []item
	for ci, c := range classes {
		dir := filepath.Join(root, c)
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		n := 0
		for _, f := range files {
			name := f.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := filepath.Join(dir, name)
			switch strings.ToLower(filepath.Ext(name)) {
			case ".png", ".jpg", ".jpeg":
			default:
				return nil, fmt.Errorf("folder: %s: not a .png, .jpg or .jpeg image (move it out of the class folder, or hide it with a leading dot)", p)
			}
			if isDir(dir, f) {
				return nil, fmt.Errorf("folder: %s: a folder inside a class folder", p)
			}
			items = append(items, item{p, c + "/" + name, uint8(ci)})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("folder: class folder %s holds no .png, .jpg or .jpeg images", dir)
		}
	}
	// Decode every image to 32×32 RGB, noting whether all are grayscale.
	const plane = Size * Size
	f := &folderImages{
		rgb:     make([]byte, len(items)*3*plane),
		labels:  make([]uint8, len(items)),
		paths:   make([]string, len(items)),
		classes: classes,
		gray:    true,
	}
	var resizers resizerCache
	var planes []byte
	for i, it := range items {
		g, err := decodeFolderImage(it.path, f.rgb[i*3*plane:(i+1)*3*plane], &resizers, &planes)
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		f.gray = f.gray && g
		f.labels[i] = it.label
		f.paths[i] = it.rel
	}
	return f, nil
}

// isDir tells whether the entry e of dir is a folder, following symbolic
// links.
func isDir(dir string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink != 0 {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && st.IsDir()
	}
	return false
}

// resizerCache keeps the resizer of the last source size seen.
type resizerCache struct {
	h, w int
	r    *Resizer
}

func (c *resizerCache) get(h, w int) (*Resizer, error) {
	if c.r == nil || c.h != h || c.w != w {
		r, err := NewResizer(h, w, Size, Size)
		if err != nil {
			return nil, err
		}
		c.h, c.w, c.r = h, w, r
	}
	return c.r, nil
}

// decodeFolderImage decodes the image at path into dst as a 3×32×32 RGB
// image and tells whether it was grayscale. planes is scratch memory.
func decodeFolderImage(path string, dst []byte, rc *resizerCache, planes *[]byte) (gray bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return false, fmt.Errorf("%s: not a readable PNG or JPEG image: %v", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > folderMaxPixels {
		return false, fmt.Errorf("%s: image size %d×%d out of range (at most %d pixels)", path, cfg.Width, cfg.Height, folderMaxPixels)
	}
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > folderMaxPixelsPerByte*st.Size() {
		return false, fmt.Errorf("%s: not a readable PNG or JPEG image: its header declares %d×%d pixels, more than a file of %d bytes can hold",
			path, cfg.Width, cfg.Height, st.Size())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	var img image.Image
	switch format {
	case "png":
		img, err = png.Decode(f)
	case "jpeg":
		img, err = jpeg.Decode(f)
	default:
		err = fmt.Errorf("format %q", format)
	}
	if err != nil {
		return false, fmt.Errorf("%s: not a readable PNG or JPEG image: %v", path, err)
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if h != cfg.Height || w != cfg.Width || h <= 0 || w <= 0 {
		return false, fmt.Errorf("%s: decoded size %d×%d differs from the header's %d×%d", path, w, h, cfg.Width, cfg.Height)
	}
	gray = isGrayModel(img.ColorModel())
	n := h * w
	if cap(*planes) < 3*n {
		*planes = make([]byte, 3*n)
	}
	p := (*planes)[:3*n]
	toPlanes(p, img, gray)
	r, err := rc.get(h, w)
	if err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	if gray {
		if err := r.Resize(dst[:Size*Size], p[:n], 1); err != nil {
			return false, fmt.Errorf("%s: %v", path, err)
		}
		copy(dst[Size*Size:], dst[:Size*Size])
		copy(dst[2*Size*Size:], dst[:Size*Size])
		return true, nil
	}
	if err := r.Resize(dst, p, 3); err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	return false, nil
}

func isGrayModel(m color.Model) bool {
	return m == color.GrayModel || m == color.Gray16Model
}

// toPlanes writes img as planes: one plane of gray levels when gray, else
// the R, G and B planes (non-premultiplied, alpha dropped).
func toPlanes(p []byte, img image.Image, gray bool) {
	b := img.Bounds()
	w, n := b.Dx(), b.Dx()*b.Dy()
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < b.Dy(); y++ {
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			copy(p[y*w:(y+1)*w], m.Pix[o:o+w])
		}
		if !gray {
			copy(p[n:2*n], p[:n])
			copy(p[2*n:], p[:n])
		}
		return
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			row := m.Pix[o : o+4*w]
			for x := 0; x < w; x++ {
				p[y*w+x], p[n+y*w+x], p[2*n+y*w+x] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
		return
	case *image.YCbCr:
		if gray {
			break
		}
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				p[y*w+x], p[n+y*w+x], p[2*n+y*w+x] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
		return
	}
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < w; x++ {
			c := img.At(b.Min.X+x, b.Min.Y+y)
			if gray {
				p[y*w+x] = color.GrayModel.Convert(c).(color.Gray).Y
				continue
			}
			nc := color.NRGBAModel.Convert(c).(color.NRGBA)
			p[y*w+x], p[n+y*w+x], p[2*n+y*w+x] = nc.R, nc.G, nc.B
		}
	}
}
