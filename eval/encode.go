package eval

import (
	"context"
	"fmt"

	"github.com/pad-dreaming/pad/backend"
	"github.com/pad-dreaming/pad/dataset"
	"github.com/pad-dreaming/pad/internal/rng"
	"github.com/pad-dreaming/pad/model"
	"github.com/pad-dreaming/pad/phases"
)

// FrozenEncoder runs a model's frozen E over datasets, batch by batch on
// the model's backend, for evaluation. It uses E's activation buffers, so it
// must not run while a training iteration is in progress.
type FrozenEncoder struct {
	p    *phases.PAD
	b    backend.Backend
	x    backend.Buf // one batch of images
	mask backend.Buf // per-image occlusion masks
	host []float32
	z    []float32
}

// Occlusion asks Encode to occlude every image before encoding it: each
// image gets its own mask of tiles of size Tile, dropped with probability
// P, drawn from the evaluation stream of Seed.
type Occlusion struct {
	P    float64
	Tile int
	Seed uint64
}

// NewFrozenEncoder prepares to encode with p's E.
func NewFrozenEncoder(p *phases.PAD) (*FrozenEncoder, error) {
	b := p.Backend()
	s := p.Spec
	x, err := b.Alloc(s.Batch * s.C * model.ImageSize * model.ImageSize)
	if err != nil {
		return nil, err
	}
	mask, err := b.Alloc(s.Batch * model.ImageSize * model.ImageSize)
	if err != nil {
		return nil, err
	}
	return &FrozenEncoder{p: p, b: b, x: x, mask: mask, host: make([]float32, x.Len()), z: make([]float32, s.Batch*s.NZ)}, nil
}

// Close releases the encoder's device buffers.
func (e *FrozenEncoder) Close() {
	e.b.Free(e.x)
	e.b.Free(e.mask)
}

// Encode returns z = E_z(x) for every image of set (occluded first if occ
// is not nil), with the set's labels. The last batch is padded with copies
// of its first image; their latents are dropped.
func (e *FrozenEncoder) Encode(set *dataset.Set, occ *Occlusion) (Features, error) {
	return e.EncodeContext(context.Background(), set, occ)
}

// EncodeContext is Encode that stops with ctx's error, between two
// batches, once ctx is done.
func (e *FrozenEncoder) EncodeContext(ctx context.Context, set *dataset.Set, occ *Occlusion) (Features, error) {
	s := e.p.Spec
	if set.C != s.C || set.H != model.ImageSize || set.W != model.ImageSize {
		return Features{}, fmt.Errorf("encode %s: images are %dx%dx%d, the model takes %dx%dx%d", set.Name, set.C, set.H, set.W, s.C, model.ImageSize, model.ImageSize)
	}
	f := Features{X: make([]float32, set.N*s.NZ), N: set.N, D: s.NZ, Labels: append([]uint8(nil), set.Labels...)}
	img := set.ImageSize()
	hw := model.ImageSize * model.ImageSize
	for start := 0; start < set.N; start += s.Batch {
		if err := ctx.Err(); err != nil {
			return Features{}, err
		}
		n := min(s.Batch, set.N-start)
		for i := 0; i < s.Batch; i++ {
			src := start + i
			if i >= n {
				src = start
			}
			dataset.Scale(e.host[i*img:(i+1)*img], set.Image(src))
		}
		e.b.Upload(e.x, e.host)
		if occ != nil {
			e.b.OcclusionMask(e.mask, backend.Occlusion{
				H: model.ImageSize, W: model.ImageSize, Masks: s.Batch, P: occ.P, Tile: occ.Tile,
				// One sequence per batch and probability, so every image
				// and every p gets its own masks, reproducibly.
				Key: rng.Key{Seed: occ.Seed, Stream: rng.StreamEval, Seq: uint64(start)<<16 | uint64(occ.P*1000)},
			})
			e.b.ApplyMask(e.x, e.mask, s.Batch, s.C, hw, true)
		}
		e.p.E.Forward(e.x, model.Latent)
		e.b.Download(e.z, e.p.E.Z)
		if err := e.b.Sync(); err != nil {
			return Features{}, fmt.Errorf("encode %s: %w", set.Name, err)
		}
		copy(f.X[start*s.NZ:], e.z[:n*s.NZ])
	}
	return f, nil
}
