package backend

import "github.com/pad-dreaming/pad/internal/rng"

// Occlusion describes occlusion masks (pad-reference "Occlusion mask Ω"):
// for each mask, a drop probability p and a tile size t; the image is cut
// into a grid of t×t tiles from the top-left corner (edge tiles are cut by
// the border) and each tile is zeroed independently with probability p.
//
// Random numbers, from the stream Key, mask m using the Philox blocks
// m·BlocksPerMask ... (m+1)·BlocksPerMask − 1:
//   - block 0, word 0: p = rng.UniformFromWord(word), unless P ≥ 0 is given;
//   - block 0, word 1: t = 1 + ⌊word·MaxTile / 2³²⌋, unless Tile > 0 is given;
//   - tile j (row-major over the grid) uses word j of blocks 1, 2, …: the
//     tile is dropped iff rng.UniformFromWord(word) < p.
//
// Both comparisons are exact in float32, so every backend draws the same
// masks bit for bit.
type Occlusion struct {
	H, W    int
	Masks   int     // number of mask planes: 1 per mini-batch, or one per image
	P       float64 // drop probability; negative: drawn per mask from U(0, 1)
	Tile    int     // tile size; 0: drawn per mask uniformly from 1..MaxTile
	MaxTile int     // largest drawn tile size (the reference uses 8)
	Key     rng.Key
}

// BlocksPerMask is the number of Philox blocks mask planes are apart.
func (o Occlusion) BlocksPerMask() int { return 1 + (o.H*o.W+3)/4 }

// Params returns the drop probability and tile size of mask m.
func (o Occlusion) Params(m int) (p float32, tile int) {
	w := o.Key.Block(uint32(m * o.BlocksPerMask()))
	p = rng.UniformFromWord(w[0])
	if o.P >= 0 {
		p = float32(o.P)
	}
	tile = o.Tile
	if tile <= 0 {
		tile = 1 + int((uint64(w[1])*uint64(o.MaxTile))>>32)
	}
	return p, tile
}

// Mask writes the o.Masks planes of o.H·o.W values (1 kept, 0 dropped) to
// dst. It is the reference every backend's OcclusionMask must reproduce.
func (o Occlusion) Mask(dst []float32) {
	bpm := o.BlocksPerMask()
	for m := 0; m < o.Masks; m++ {
		p, t := o.Params(m)
		gw := (o.W + t - 1) / t
		plane := dst[m*o.H*o.W : (m+1)*o.H*o.W]
		for y := 0; y < o.H; y++ {
			for x := 0; x < o.W; x++ {
				j := (y/t)*gw + x/t
				w := o.Key.Block(uint32(m*bpm + 1 + j/4))[j%4]
				v := float32(1)
				if rng.UniformFromWord(w) < p {
					v = 0
				}
				plane[y*o.W+x] = v
			}
		}
	}
}

// Validate reports an occlusion description no mask follows from.
func (o Occlusion) Validate() error {
	switch {
	case o.H <= 0 || o.W <= 0 || o.Masks <= 0:
		return errorf("occlusion: mask size %dx%d, %d masks: must be positive", o.H, o.W, o.Masks)
	case o.Tile < 0 || (o.Tile == 0 && o.MaxTile <= 0):
		return errorf("occlusion: tile %d, max tile %d: need a tile size or a positive maximum", o.Tile, o.MaxTile)
	case o.P > 1:
		return errorf("occlusion: drop probability %v above 1", o.P)
	}
	return nil
}
