package eval

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// separatorColor (white) is the colour of the 1-pixel lines between (and
// around) the cells of Grid and Filters images, and of empty cells.
var separatorColor = color.RGBA{R: 255, G: 255, B: 255, A: 255}

// maxGridPixels bounds the size of a grid image (about 64 megapixels).
const maxGridPixels = 1 << 26

// gridCanvas allocates an image of rows×cols cells of size h×w separated
// (and surrounded) by 1-pixel lines, filled with separatorColor.
func gridCanvas(n, h, w, cols int) (*image.RGBA, int, error) {
	if n <= 0 || h <= 0 || w <= 0 || n > maxGridPixels || h > maxGridPixels || w > maxGridPixels {
		return nil, 0, fmt.Errorf("grid: %d cells of %d×%d pixels", n, h, w)
	}
	if cols <= 0 {
		return nil, 0, fmt.Errorf("grid: %d columns", cols)
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	width, height := cols*(w+1)+1, rows*(h+1)+1
	if width > maxGridPixels/height {
		return nil, 0, fmt.Errorf("grid: %d×%d pixels is too large", width, height)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = separatorColor.R, separatorColor.G, separatorColor.B, separatorColor.A
	}
	return img, cols, nil
}

// toByte maps v in [−1, 1] to 0..255 (−1 → 0, +1 → 255, rounding to
// nearest), clamping values outside the range; NaN maps to 0.
func toByte(v float32) uint8 {
	x := (float64(v) + 1) * 127.5
	if !(x > 0) { // also NaN
		return 0
	}
	if x >= 255 {
		return 255
	}
	return uint8(math.Floor(x + 0.5))
}

// Grid lays out n images (NCHW, values in [−1, 1], c = 1 for grayscale or
// 3 for RGB) in rows of cols cells (fewer when n < cols), with white
// 1-pixel separators between and around the cells. A value v becomes the
// byte round((v+1)·127.5): −1 → 0, 0 → 128, +1 → 255; values outside
// [−1, 1] are clamped and NaN becomes 0.
func Grid(images []float32, n, c, h, w, cols int) (*image.RGBA, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("grid: %d channels, want 1 or 3", c)
	}
	img, cols, err := gridCanvas(n, h, w, cols)
	if err != nil {
		return nil, err
	}
	if len(images) != n*c*h*w {
		return nil, fmt.Errorf("grid: %d values for %d×%d×%d×%d images", len(images), n, c, h, w)
	}
	plane := h * w
	for k := 0; k < n; k++ {
		x0, y0 := 1+(k%cols)*(w+1), 1+(k/cols)*(h+1)
		src := images[k*c*plane : (k+1)*c*plane]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var r, g, b uint8
				if c == 1 {
					r = toByte(src[y*w+x])
					g, b = r, r
				} else {
					r, g, b = toByte(src[y*w+x]), toByte(src[plane+y*w+x]), toByte(src[2*plane+y*w+x])
				}
				o := img.PixOffset(x0+x, y0+y)
				img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = r, g, b, 255
			}
		}
	}
	return img, nil
}

// FilterScale is the smallest edge, in pixels, a filter is enlarged to by
// Filters (4×4 filters are drawn 4 times larger).
const FilterScale = 16

// Filters draws the k first-layer filters of a convolution weight in
// PyTorch's [k, c, r, s] layout (c = 1 or 3 input channels, r×s kernels),
// each normalised to its own minimum..maximum (black..white; a constant
// filter is mid-gray) and enlarged by nearest-neighbour sampling by
// ⌈FilterScale / max(r, s)⌉, in rows of cols cells with 1-pixel separators.
func Filters(w []float32, k, c, r, s, cols int) (*image.RGBA, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("filters: %d input channels, want 1 or 3", c)
	}
	if k <= 0 || r <= 0 || s <= 0 || k > maxGridPixels || r > maxGridPixels || s > maxGridPixels {
		return nil, fmt.Errorf("filters: shape [%d, %d, %d, %d]", k, c, r, s)
	}
	if len(w) != k*c*r*s {
		return nil, fmt.Errorf("filters: %d values for shape [%d, %d, %d, %d]", len(w), k, c, r, s)
	}
	scale := max(1, (FilterScale+max(r, s)-1)/max(r, s))
	img, cols, err := gridCanvas(k, r*scale, s*scale, cols)
	if err != nil {
		return nil, err
	}
	size := c * r * s
	for f := 0; f < k; f++ {
		fw := w[f*size : (f+1)*size]
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range fw {
			if x := float64(v); !math.IsNaN(x) {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
		norm := func(v float32) uint8 {
			if !(hi > lo) || math.IsInf(hi-lo, 0) {
				return 128
			}
			x := (float64(v) - lo) / (hi - lo) * 255
			if !(x > 0) {
				return 0
			}
			return uint8(math.Min(255, math.Floor(x+0.5)))
		}
		x0, y0 := 1+(f%cols)*(s*scale+1), 1+(f/cols)*(r*scale+1)
		for y := 0; y < r*scale; y++ {
			for x := 0; x < s*scale; x++ {
				i := (y/scale)*s + x/scale
				var cr, cg, cb uint8
				if c == 1 {
					cr = norm(fw[i])
					cg, cb = cr, cr
				} else {
					cr, cg, cb = norm(fw[i]), norm(fw[r*s+i]), norm(fw[2*r*s+i])
				}
				o := img.PixOffset(x0+x, y0+y)
				img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = cr, cg, cb, 255
			}
		}
	}
	return img, nil
}

// SavePNG writes img to path as a PNG file.
func SavePNG(path string, img image.Image) error {
	if img == nil {
		return fmt.Errorf("png: no image for %s", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("png: %w", err)
	}
	bw := bufio.NewWriter(f)
	if err := png.Encode(bw, img); err != nil {
		f.Close()
		return fmt.Errorf("png: encoding %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("png: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("png: closing %s: %w", path, err)
	}
	return nil
}
