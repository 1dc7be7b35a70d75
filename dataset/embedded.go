package dataset

import (
	"bytes"
	"embed"
	"fmt"
)

// embeddedFS holds the Fashion-MNIST sample (see embedded/README.md): the
// first 8,000 training and first 2,000 test images of Fashion-MNIST, gzip
// IDX files as in the original distribution.
//
//go:embed embedded/*.gz
var embeddedFS embed.FS

// loadEmbedded returns the embedded sample's training or test split, resized
// to 32×32.
func loadEmbedded(train bool) (*Set, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	var streams [2]*idxStream
	for i, name := range []string{prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz"} {
		data, err := embeddedFS.ReadFile("embedded/" + name)
		if err != nil {
			return nil, fmt.Errorf("embedded: %v", err)
		}
		if streams[i], err = newIDXStream("embedded/"+name, bytes.NewReader(data), int64(len(data))); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	pix, labels, n, rows, cols, err := readIDXPair(streams[0], streams[1], len(fashionClasses))
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return idxSet("embedded", pix, labels, n, rows, cols, fashionClasses)
}
