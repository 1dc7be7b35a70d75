package train

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/eval"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// SampleFiles are the image grids written per epoch into runs/<name>/samples.
var SampleFiles = []string{"recon", "nrem", "rem", "filters"}

// writeSamples saves the epoch's image grids: test images beside their
// reconstructions, the last NREM and REM dreams, and conv1's filters.
func (t *Trainer) writeSamples(epoch int) error {
	dir := filepath.Join(t.opt.Dir, "samples")
	files, err := WriteSamples(dir, fmt.Sprintf("epoch%03d-", epoch), t.Model, t.Test)
	if err != nil {
		return err
	}
	t.Samples = files
	return nil
}

// WriteSamples writes the grids of SampleFiles into dir, each name
// prefixed with prefix, and returns their paths. It uses the dreams the
// model's last iteration left behind, so it must run between iterations:
// the REM dreams first, before the reconstruction overwrites G's output.
func WriteSamples(dir, prefix string, p *phases.PAD, test *dataset.Set) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b := p.Backend()
	s := p.Spec
	img := s.C * model.ImageSize * model.ImageSize
	n := min(s.Batch, 32)
	var files []string
	save := func(name string, images []float32, count, cols int) error {
		g, err := eval.Grid(images, count, s.C, model.ImageSize, model.ImageSize, cols)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, prefix+name+".png")
		if err := eval.SavePNG(path, g); err != nil {
			return err
		}
		files = append(files, path)
		return nil
	}
	host := func(x backend.Buf) ([]float32, error) {
		v := make([]float32, x.Len())
		b.Download(v, x)
		return v, b.Sync()
	}

	rem, err := host(p.G.Out)
	if err != nil {
		return nil, err
	}
	nrem, err := host(p.Dream)
	if err != nil {
		return nil, err
	}
	// Reconstructions of the first test images: x, G(E(x)) side by side.
	x := make([]float32, s.Batch*img)
	for i := 0; i < s.Batch; i++ {
		dataset.Scale(x[i*img:(i+1)*img], test.Image(i%test.N))
	}
	xb, err := b.Alloc(len(x))
	if err != nil {
		return nil, err
	}
	defer b.Free(xb)
	b.Upload(xb, x)
	p.E.Forward(xb, model.Latent)
	p.G.Forward(p.E.Z)
	rec, err := host(p.G.Out)
	if err != nil {
		return nil, err
	}
	pairs := make([]float32, 0, 2*n*img)
	for i := 0; i < n; i++ {
		pairs = append(pairs, x[i*img:(i+1)*img]...)
		pairs = append(pairs, rec[i*img:(i+1)*img]...)
	}
	if err := save("recon", pairs, 2*n, 16); err != nil {
		return nil, err
	}
	if err := save("nrem", nrem[:n*img], n, 8); err != nil {
		return nil, err
	}
	if err := save("rem", rem[:n*img], n, 8); err != nil {
		return nil, err
	}
	w, err := host(p.E.Param(p.E.Index("conv1.0.weight")))
	if err != nil {
		return nil, err
	}
	fg, err := eval.Filters(w, s.NF, s.C, 4, 4, 8)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, prefix+"filters.png")
	if err := eval.SavePNG(path, fg); err != nil {
		return nil, err
	}
	return append(files, path), nil
}
