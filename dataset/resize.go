package dataset

import (
	"fmt"
	"math"
)

// The resize is PIL's Image.resize(size, Image.BILINEAR) on 8-bit images
// (what torchvision's Resize does to a PIL image), reproduced from its
// documented behaviour so that the results agree to the last bit:
//
//   - separable: a horizontal pass, rounded to uint8, then a vertical pass;
//     a pass whose size does not change is skipped;
//   - output pixel i has its centre at (i + 0.5)·scale in the input, with
//     scale = in/out; the triangle filter is stretched by
//     filterscale = max(scale, 1), so downscaling averages over all the
//     input pixels the output pixel covers (support = filterscale);
//   - the taps run from int(centre − support + 0.5) to
//     int(centre + support + 0.5), clipped to the image; tap x weighs
//     triangle((x − centre + 0.5)/filterscale), and the weights are
//     normalised to sum 1;
//   - for 8-bit images the weights become fixed point with 22 fraction bits
//     (rounded half away from zero); each pass sums pixel·weight starting
//     from 2^21, shifts right by 22 and clips to 0…255.

const (
	precisionBits = 32 - 8 - 2
	maxResizeSide = 1 << 16
)

// resamplePass holds the fixed-point weights of one direction of a resize.
type resamplePass struct {
	in, out int
	ksize   int
	bounds  []int   // out pairs (first tap, number of taps)
	coefs   []int32 // out × ksize fixed-point weights
}

func triangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// newResamplePass computes the weights that map in samples to out samples.
func newResamplePass(in, out int) resamplePass {
	scale := float64(in) / float64(out)
	filterscale := max(scale, 1)
	support := 1.0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	p := resamplePass{in: in, out: out, ksize: ksize,
		bounds: make([]int, 2*out), coefs: make([]int32, out*ksize)}
	ss := 1 / filterscale
	w := make([]float64, ksize)
	for xx := 0; xx < out; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = triangle((float64(x+xmin) - center + 0.5) * ss)
			ww += w[x]
		}
		k := p.coefs[xx*ksize : (xx+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			f := float64(v * (1 << precisionBits))
			if v < 0 {
				k[x] = int32(f - 0.5)
			} else {
				k[x] = int32(f + 0.5)
			}
		}
		p.bounds[2*xx] = xmin
		p.bounds[2*xx+1] = max(xmax, 0)
		// Widen the window to exactly ksize taps where the input allows,
		// so the inner loops have a fixed length; the extra taps weigh 0
		// and change no sum.
		if in >= ksize {
			start := min(xmin, in-ksize)
			copy(k[xmin-start:], k[:xmax])
			clear(k[:xmin-start])
			p.bounds[2*xx], p.bounds[2*xx+1] = start, ksize
		}
	}
	return p
}

// clip8 turns a fixed-point sum into a pixel. The sums fit in int32: the
// weights add up to 1 in 22-bit fixed point and pixels are at most 255.
func clip8(v int32) byte {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return byte(v >> precisionBits)
}

// Resizer resizes images of one size to another with PIL's bilinear filter.
// It holds the precomputed weights and a scratch row buffer, so one Resizer
// must not be used by two goroutines at once.
type Resizer struct {
	h, w, oh, ow int
	horiz, vert  resamplePass
	tmp          []byte  // h × ow plane after the horizontal pass
	acc          []int32 // one output row of the vertical pass
}

// NewResizer prepares resizing h×w images to oh×ow.
func NewResizer(h, w, oh, ow int) (*Resizer, error) {
	for _, v := range []int{h, w, oh, ow} {
		if v <= 0 || v > maxResizeSide {
			return nil, fmt.Errorf("resize: size %d×%d → %d×%d out of range (1 to %d)", h, w, oh, ow, maxResizeSide)
		}
	}
	if h*ow > 1<<28 || w*h > 1<<28 || oh*ow > 1<<28 {
		return nil, fmt.Errorf("resize: size %d×%d → %d×%d too large", h, w, oh, ow)
	}
	r := &Resizer{h: h, w: w, oh: oh, ow: ow}
	if ow != w {
		r.horiz = newResamplePass(w, ow)
		if oh != h {
			r.tmp = make([]byte, h*ow)
		}
	}
	if oh != h {
		r.vert = newResamplePass(h, oh)
		r.acc = make([]int32, ow)
	}
	return r, nil
}

// Resize writes the resized c-channel CHW image src (c·h·w bytes) to dst
// (c·oh·ow bytes).
func (r *Resizer) Resize(dst, src []byte, c int) error {
	if c <= 0 || len(src) != c*r.h*r.w || len(dst) != c*r.oh*r.ow {
		return fmt.Errorf("resize: %d source and %d destination bytes for %d channels of %d×%d → %d×%d",
			len(src), len(dst), c, r.h, r.w, r.oh, r.ow)
	}
	inPlane, outPlane := r.h*r.w, r.oh*r.ow
	for ch := 0; ch < c; ch++ {
		s := src[ch*inPlane : (ch+1)*inPlane]
		d := dst[ch*outPlane : (ch+1)*outPlane]
		switch {
		case r.ow != r.w && r.oh != r.h:
			r.horizontal(r.tmp, s)
			r.vertical(d, r.tmp)
		case r.ow != r.w:
			r.horizontal(d, s)
		case r.oh != r.h:
			r.vertical(d, s)
		default:
			copy(d, s)
		}
	}
	return nil
}

// horizontal resizes the h rows of the h×w plane src into the h×ow plane dst.
func (r *Resizer) horizontal(dst, src []byte) {
	p := &r.horiz
	for y := 0; y < r.h; y++ {
		row := src[y*r.w : (y+1)*r.w]
		out := dst[y*r.ow : (y+1)*r.ow]
		if p.ksize == 3 && r.w >= 3 {
			// Upscaling and mild downscaling: three taps each.
			for xx := range out {
				x0 := p.bounds[2*xx]
				k := p.coefs[3*xx : 3*xx+3 : 3*xx+3]
				t := row[x0 : x0+3 : x0+3]
				out[xx] = clip8(1<<(precisionBits-1) + int32(t[0])*k[0] + int32(t[1])*k[1] + int32(t[2])*k[2])
			}
			continue
		}
		for xx := range out {
			xmin, n := p.bounds[2*xx], p.bounds[2*xx+1]
			k := p.coefs[xx*p.ksize : xx*p.ksize+n]
			taps := row[xmin : xmin+len(k)]
			ss := int32(1) << (precisionBits - 1)
			for x, c := range k {
				ss += int32(taps[x]) * c
			}
			out[xx] = clip8(ss)
		}
	}
}

// vertical resizes the columns of the h×ow plane src into the oh×ow plane
// dst, a whole output row at a time.
func (r *Resizer) vertical(dst, src []byte) {
	p := &r.vert
	w := r.ow
	acc := r.acc[:w]
	for yy := 0; yy < r.oh; yy++ {
		ymin, n := p.bounds[2*yy], p.bounds[2*yy+1]
		k := p.coefs[yy*p.ksize : yy*p.ksize+n]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		for y, c := range k {
			row := src[(ymin+y)*w : (ymin+y+1)*w]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * c
			}
		}
		out := dst[yy*w : (yy+1)*w]
		out = out[:len(acc)]
		for i, v := range acc {
			out[i] = clip8(v)
		}
	}
}

// ResizeBilinear returns the c-channel CHW image src of h×w pixels resized to
// oh×ow exactly as PIL's Image.resize((ow, oh), Image.BILINEAR) resizes each
// 8-bit band.
func ResizeBilinear(src []byte, c, h, w, oh, ow int) ([]byte, error) {
	r, err := NewResizer(h, w, oh, ow)
	if err != nil {
		return nil, err
	}
	if c <= 0 || c > 4 {
		return nil, fmt.Errorf("resize: %d channels (want 1 to 4)", c)
	}
	dst := make([]byte, c*oh*ow)
	if err := r.Resize(dst, src, c); err != nil {
		return nil, err
	}
	return dst, nil
}

// resizeSet resizes n consecutive c×h×w images in src to c×Size×Size, using
// every processor.
func resizeSet(src []byte, n, c, h, w int) ([]byte, error) {
	if h == Size && w == Size {
		return src, nil
	}
	d, od := c*h*w, c*Size*Size
	if len(src) != n*d {
		return nil, fmt.Errorf("resize: %d bytes for %d images of %d×%d×%d", len(src), n, c, h, w)
	}
	dst := make([]byte, n*od)
	workers := min(max(runtimeProcs(), 1), max(n/256, 1))
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		lo, hi := n*g/workers, n*(g+1)/workers
		go func() {
			r, err := NewResizer(h, w, Size, Size)
			if err != nil {
				errs <- err
				return
			}
			for i := lo; i < hi; i++ {
				if err := r.Resize(dst[i*od:(i+1)*od], src[i*d:(i+1)*d], c); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for g := 0; g < workers; g++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return dst, nil
}
