package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// IDX files (MNIST, Fashion-MNIST): a big-endian header, then the data.
//
//	images: magic 0x00000803 (unsigned bytes, 3 dimensions), n, rows, cols,
//	        then n·rows·cols pixels, row-major;
//	labels: magic 0x00000801 (unsigned bytes, 1 dimension), n, then n labels.
//
// A file is read raw or, when it starts with the gzip magic 0x1f 0x8b,
// through gzip.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
	idxMaxN        = 10_000_000
	idxMaxSide     = 4096
	idxMaxBytes    = 1 << 31
	// deflateMaxRatio bounds what a deflate stream can expand to per
	// compressed byte (the format's limit is about 1032:1).
	deflateMaxRatio = 1032
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// idxStream is an IDX file being read, raw or gzip, that tracks the offset
// it has read to (of the decompressed stream for gzip).
type idxStream struct {
	path string
	r    io.Reader
	gz   bool
	size int64 // file size
	off  int64
}

// newIDXStream reads the IDX file of size bytes in r; path names it in
// errors.
func newIDXStream(path string, r io.Reader, size int64) (*idxStream, error) {
	s := &idxStream{path: path, size: size}
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: offset 0: gzip header: %v", path, err)
		}
		s.r, s.gz = zr, true
	} else {
		s.r = br
	}
	return s, nil
}

// openIDX opens the IDX file at path; the caller closes the file.
func openIDX(path string) (*idxStream, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	s, err := newIDXStream(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return s, f, nil
}

// where names the current offset for error messages.
func (s *idxStream) where() string { return s.at(s.off) }

// at names offset off of the (decompressed) stream for error messages.
func (s *idxStream) at(off int64) string {
	if s.gz {
		return fmt.Sprintf("%s: decompressed offset %d", s.path, off)
	}
	return fmt.Sprintf("%s: offset %d", s.path, off)
}

// readFull reads exactly len(p) bytes, naming the offset where the data ran
// out.
func (s *idxStream) readFull(p []byte, what string) error {
	n, err := io.ReadFull(s.r, p)
	s.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: file ends in the %s (%d of %d bytes read)", s.where(), what, n, len(p))
		}
		return fmt.Errorf("%s: reading the %s: %v", s.where(), what, err)
	}
	return nil
}

// checkEnd fails unless the stream ends here.
func (s *idxStream) checkEnd() error {
	var b [1]byte
	n, err := io.ReadFull(s.r, b[:])
	if n > 0 {
		return fmt.Errorf("%s: unexpected data after the declared contents", s.where())
	}
	if errors.Is(err, gzip.ErrChecksum) {
		return fmt.Errorf("%s: gzip checksum mismatch: the file is corrupt", s.where())
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: trailing bytes after the declared contents (%v)", s.where(), err)
	}
	return nil
}

// checkPayload verifies that a declared payload of want bytes can be in the
// file before it is allocated.
func (s *idxStream) checkPayload(want int64, header int64) error {
	if s.gz {
		if want > idxMaxBytes {
			return fmt.Errorf("%s: header declares %d bytes of data (more than %d)", s.at(0), want, int64(idxMaxBytes))
		}
		if want > s.size*deflateMaxRatio+1024 {
			return fmt.Errorf("%s: header declares %d bytes of data, more than %d compressed bytes can hold", s.at(0), want, s.size)
		}
		return nil
	}
	if got := s.size - header; got != want {
		return fmt.Errorf("%s: header declares %d bytes of data, the file has %d", s.at(header), want, got)
	}
	return nil
}

// readIDXImages reads an IDX image file: n images of rows×cols bytes.
func readIDXImages(s *idxStream) (pix []byte, n, rows, cols int, err error) {
	var h [16]byte
	if err := s.readFull(h[:], "header"); err != nil {
		return nil, 0, 0, 0, err
	}
	if m := binary.BigEndian.Uint32(h[0:]); m != idxImagesMagic {
		return nil, 0, 0, 0, fmt.Errorf("%s: magic %#08x, want %#08x (IDX unsigned-byte images, 3 dimensions)", s.at(0), m, idxImagesMagic)
	}
	un, ur, uc := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	if un > idxMaxN {
		return nil, 0, 0, 0, fmt.Errorf("%s: %d images (at most %d)", s.at(4), un, idxMaxN)
	}
	if ur == 0 || ur > idxMaxSide || uc == 0 || uc > idxMaxSide {
		return nil, 0, 0, 0, fmt.Errorf("%s: image size %d×%d (want 1 to %d)", s.at(8), ur, uc, idxMaxSide)
	}
	n, rows, cols = int(un), int(ur), int(uc)
	want := int64(n) * int64(rows) * int64(cols)
	if err := s.checkPayload(want, 16); err != nil {
		return nil, 0, 0, 0, err
	}
	pix = make([]byte, want)
	if err := s.readFull(pix, "pixels"); err != nil {
		return nil, 0, 0, 0, err
	}
	if err := s.checkEnd(); err != nil {
		return nil, 0, 0, 0, err
	}
	return pix, n, rows, cols, nil
}

// readIDXLabels reads an IDX label file; every label must be below classes.
func readIDXLabels(s *idxStream, classes int) ([]uint8, error) {
	var h [8]byte
	if err := s.readFull(h[:], "header"); err != nil {
		return nil, err
	}
	if m := binary.BigEndian.Uint32(h[0:]); m != idxLabelsMagic {
		return nil, fmt.Errorf("%s: magic %#08x, want %#08x (IDX unsigned-byte labels, 1 dimension)", s.at(0), m, idxLabelsMagic)
	}
	un := binary.BigEndian.Uint32(h[4:])
	if un > idxMaxN {
		return nil, fmt.Errorf("%s: %d labels (at most %d)", s.at(4), un, idxMaxN)
	}
	if err := s.checkPayload(int64(un), 8); err != nil {
		return nil, err
	}
	labels := make([]uint8, un)
	if err := s.readFull(labels, "labels"); err != nil {
		return nil, err
	}
	for j, l := range labels {
		if int(l) >= classes {
			return nil, fmt.Errorf("%s: label %d (want below %d)", s.at(int64(8+j)), l, classes)
		}
	}
	if err := s.checkEnd(); err != nil {
		return nil, err
	}
	return labels, nil
}

// findIDX returns the path of root/base, raw or with .gz added.
func findIDX(set, root, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		p := filepath.Join(root, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %v", set, err)
		}
	}
	return "", notFound(set, root, fmt.Sprintf("%s (or %s) in %s", base+".gz", base, root))
}

// ReadIDX reads an IDX image file and its label file (raw or gzip) as they
// are, without resizing: n images of rows×cols pixels and n labels, each
// label below classes.
func ReadIDX(imagesPath, labelsPath string, classes int) (pix []byte, labels []uint8, n, rows, cols int, err error) {
	is, f, err := openIDX(imagesPath)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	defer f.Close()
	ls, g, err := openIDX(labelsPath)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	defer g.Close()
	return readIDXPair(is, ls, classes)
}

// readIDXPair reads an image and a label IDX stream that must agree.
func readIDXPair(is, ls *idxStream, classes int) (pix []byte, labels []uint8, n, rows, cols int, err error) {
	pix, n, rows, cols, err = readIDXImages(is)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	labels, err = readIDXLabels(ls, classes)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	if len(labels) != n {
		return nil, nil, 0, 0, 0, fmt.Errorf("%s: %d labels, but %s holds %d images", ls.at(4), len(labels), is.path, n)
	}
	return pix, labels, n, rows, cols, nil
}

// loadIDXSet loads the MNIST-style set name from root.
func loadIDXSet(name, root string, train bool, classes []string) (*Set, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	ip, err := findIDX(name, root, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lp, err := findIDX(name, root, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	pix, labels, n, rows, cols, err := ReadIDX(ip, lp, len(classes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return idxSet(name, pix, labels, n, rows, cols, classes)
}

// idxSet resizes single-channel images to 32×32 and wraps them in a Set.
func idxSet(name string, pix []byte, labels []uint8, n, rows, cols int, classes []string) (*Set, error) {
	img, err := resizeSet(pix, n, 1, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Set{Name: name, Images: img, N: n, C: 1, H: Size, W: Size, Labels: labels, Classes: classes}, nil
}
