// Package dataset reads the image sets pad trains and evaluates on (MNIST and
// Fashion-MNIST IDX files, CIFAR-10 binary batches, SVHN MAT-files, folders
// of PNG/JPEG images and an embedded Fashion-MNIST sample) into one in-memory
// form, and feeds them to training in shuffled, scaled mini-batches.
//
// Every image is 32×32 after loading (28×28 sources are resized with the same
// bilinear filter as PIL). Pixels stay uint8 in memory; the Loader scales
// them to float32 in [-1, 1] batch by batch.
//
// Every reader is defensive: sizes declared in a file are checked against the
// file before anything is allocated, and a bad file yields an error that
// names the file and the byte offset; no input makes this package panic.
package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pad-dreaming/pad/internal/shell"
)

// Size is the side of every loaded image: sets are N×C×Size×Size.
const Size = 32

// Set is an image set in memory: N images of C×H×W uint8 pixels stored one
// after the other, each in CHW order (the whole set is NCHW), with one label
// per image and the class names the labels index.
type Set struct {
	Name    string   // the name it was loaded under, e.g. "mnist"
	Images  []byte   // N·C·H·W pixels, NCHW
	N       int      // number of images
	C, H, W int      // channels (1 or 3), height, width
	Labels  []uint8  // N labels, each < len(Classes)
	Classes []string // class names, indexed by label
}

// ImageSize returns the number of bytes of one image, C·H·W.
func (s *Set) ImageSize() int { return s.C * s.H * s.W }

// Image returns the pixels of image i (C·H·W bytes in CHW order), sharing
// memory with the set; nil when i is out of range.
func (s *Set) Image(i int) []byte {
	d := s.ImageSize()
	if i < 0 || i >= s.N || d <= 0 || (i+1)*d > len(s.Images) {
		return nil
	}
	return s.Images[i*d : (i+1)*d : (i+1)*d]
}

// Subset returns a set holding the first n images of s (all of them when n
// exceeds N, none when n is negative). It shares memory with s.
func (s *Set) Subset(n int) *Set {
	n = max(0, min(n, s.N, len(s.Labels)))
	d := s.ImageSize()
	if d < 0 || n*d > len(s.Images) {
		n = 0
	}
	return &Set{
		Name:    s.Name,
		Images:  s.Images[: n*d : n*d],
		N:       n,
		C:       s.C,
		H:       s.H,
		W:       s.W,
		Labels:  s.Labels[:n:n],
		Classes: s.Classes,
	}
}

// Validate checks that the fields of s agree with one another: positive
// sizes, len(Images) = N·C·H·W, one label per image, between 1 and 256
// classes and every label naming one of them.
func (s *Set) Validate() error {
	if s == nil {
		return errors.New("dataset: nil set")
	}
	name := s.Name
	if name == "" {
		name = "dataset"
	}
	if s.N < 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return fmt.Errorf("%s: bad shape N=%d C=%d H=%d W=%d", name, s.N, s.C, s.H, s.W)
	}
	d := s.C * s.H * s.W
	if d/s.C/s.H != s.W || (s.N > 0 && d*s.N/s.N != d) {
		return fmt.Errorf("%s: shape N=%d C=%d H=%d W=%d overflows", name, s.N, s.C, s.H, s.W)
	}
	if len(s.Images) != s.N*d {
		return fmt.Errorf("%s: %d pixel bytes for %d images of %d×%d×%d (want %d)",
			name, len(s.Images), s.N, s.C, s.H, s.W, s.N*d)
	}
	if len(s.Labels) != s.N {
		return fmt.Errorf("%s: %d labels for %d images", name, len(s.Labels), s.N)
	}
	if len(s.Classes) == 0 || len(s.Classes) > 256 {
		return fmt.Errorf("%s: %d classes (want 1 to 256)", name, len(s.Classes))
	}
	for i, l := range s.Labels {
		if int(l) >= len(s.Classes) {
			return fmt.Errorf("%s: image %d has label %d, but there are only %d classes", name, i, l, len(s.Classes))
		}
	}
	return nil
}

// Class names of the sets pad knows.
var (
	digitClasses   = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	fashionClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
		"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	cifarClasses = []string{"airplane", "automobile", "bird", "cat", "deer",
		"dog", "frog", "horse", "ship", "truck"}
)

// loaders maps each set name Load knows to its reader.
var loaders = map[string]func(root string, train bool) (*Set, error){
	"mnist":    func(root string, train bool) (*Set, error) { return loadIDXSet("mnist", root, train, digitClasses) },
	"fashion":  func(root string, train bool) (*Set, error) { return loadIDXSet("fashion", root, train, fashionClasses) },
	"cifar10":  loadCIFAR10,
	"svhn":     loadSVHN,
	"folder":   loadFolderSide,
	"embedded": func(_ string, train bool) (*Set, error) { return loadEmbedded(train) },
}

// Names returns the set names Load accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(loaders))
	for n := range loaders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load reads the training (train = true) or test split of the set called
// name from the folder root and returns it with 32×32 images:
//
//   - "mnist", "fashion": root holds train-images-idx3-ubyte[.gz],
//     train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and
//     t10k-labels-idx1-ubyte[.gz] (Fashion-MNIST is "fashion"); C = 1.
//   - "cifar10": root holds data_batch_1.bin … data_batch_5.bin and
//     test_batch.bin, or holds the folder cifar-10-batches-bin with them; C = 3.
//   - "svhn": root holds train_32x32.mat and test_32x32.mat; C = 3.
//   - "folder": root/train/<class>/… and root/test/<class>/…, or
//     root/<class>/… with DefaultTestFraction of each class held out as the
//     test set; see LoadFolderSplit and LoadFolder.
//   - "embedded": the Fashion-MNIST sample built into the program (8,000
//     training and 2,000 test images); root is ignored.
//
// A missing file yields an error wrapping fs.ErrNotExist.
func Load(name, root string, train bool) (*Set, error) {
	load, ok := loaders[name]
	if !ok {
		return nil, fmt.Errorf("dataset: unknown set %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	s, err := load(root, train)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// missingError reports a file a set needs that is not there, in one
// sentence; it matches fs.ErrNotExist.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }
func (e *missingError) Unwrap() error { return fs.ErrNotExist }

// notFound is the error for the file a set read from root needs, described
// by what, that is not there. Its hint names the command that downloads
// the set into root: `pad data fetch SET` for the default folder
// data/SET, `pad data fetch SET --dir ROOT` for any other.
func notFound(set, root, what string) error {
	return &missingError{fmt.Sprintf("%s: %s not found; run `%s` to download it", set, what, FetchCommand(set, root))}
}

// FetchCommand returns the command line that downloads the set called name
// into root, where Load looks for it.
func FetchCommand(name, root string) string {
	cmd := "pad data fetch " + name
	if root != "" && filepath.Clean(root) != filepath.Join("data", name) {
		cmd += " --dir " + shell.Quote(root)
	}
	return cmd
}

// loadFolderSide returns one side of LoadFolderSplit with the default
// test fraction.
func loadFolderSide(root string, train bool) (*Set, error) {
	tr, te, _, err := LoadFolderSplit(root, DefaultTestFraction)
	if err != nil {
		return nil, err
	}
	if train {
		return tr, nil
	}
	return te, nil
}
