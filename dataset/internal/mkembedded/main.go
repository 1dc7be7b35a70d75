// Command mkembedded writes the Fashion-MNIST sample that package dataset
// embeds: the first -train training and -test test images (and labels) of
// the original gzip IDX files, as gzip IDX files of the same layout.
//
// From the repository root:
//
//	go run ./dataset/internal/mkembedded -src ../shared/data/fashion-mnist -dst dataset/embedded
//
// The output depends only on the inputs and on Go's compress/flate at level
// 9, with an empty gzip header (no name, no time).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "../shared/data/fashion-mnist", "folder with the original gzip IDX files")
	dst := flag.String("dst", "dataset/embedded", "folder to write the sample to")
	ntrain := flag.Int("train", 8000, "training images to keep (the first ones)")
	ntest := flag.Int("test", 2000, "test images to keep (the first ones)")
	flag.Parse()
	jobs := []struct {
		name string
		n    int
	}{
		{"train-images-idx3-ubyte.gz", *ntrain},
		{"train-labels-idx1-ubyte.gz", *ntrain},
		{"t10k-images-idx3-ubyte.gz", *ntest},
		{"t10k-labels-idx1-ubyte.gz", *ntest},
	}
	for _, j := range jobs {
		if err := cut(filepath.Join(*src, j.name), filepath.Join(*dst, j.name), j.n); err != nil {
			fmt.Fprintln(os.Stderr, "mkembedded:", err)
			os.Exit(1)
		}
	}
}

// cut writes the first n items of the gzip IDX file in to out.
func cut(in, out string, n int) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	if len(data) < 8 {
		return fmt.Errorf("%s: too short for an IDX header", in)
	}
	magic := binary.BigEndian.Uint32(data)
	ndim := int(magic & 0xff)
	if magic>>8 != 0x08 || ndim < 1 || ndim > 3 || len(data) < 4+4*ndim {
		return fmt.Errorf("%s: magic %#08x is not an IDX unsigned-byte file", in, magic)
	}
	header := 4 + 4*ndim
	count := int(binary.BigEndian.Uint32(data[4:]))
	item := 1
	for d := 1; d < ndim; d++ {
		item *= int(binary.BigEndian.Uint32(data[4+4*d:]))
	}
	if len(data) != header+count*item {
		return fmt.Errorf("%s: %d bytes, the header declares %d", in, len(data), header+count*item)
	}
	if n < 0 || n > count {
		return fmt.Errorf("%s: holds %d items, %d requested", in, count, n)
	}
	kept := append([]byte(nil), data[:header+n*item]...)
	binary.BigEndian.PutUint32(kept[4:], uint32(n))
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(kept); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d of %d items, %d bytes (source sha256 %x; output sha256 %x)\n",
		out, n, count, buf.Len(), sha256.Sum256(raw), sha256.Sum256(buf.Bytes()))
	return nil
}
