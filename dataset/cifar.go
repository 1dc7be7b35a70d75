package dataset

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR-10 binary version: each file is a sequence of 3073-byte records, one
// label byte followed by 3072 pixels (the 1024 red, then green, then blue
// values of a 32×32 image, row-major), which is already CHW.
const (
	cifarRecord    = 1 + 3*Size*Size
	cifarSubfolder = "cifar-10-batches-bin"
	cifarMeta      = "batches.meta.txt"
	cifarMaxBytes  = 1 << 32
)

// cifarFiles lists the batch files of a split.
func cifarFiles(train bool) []string {
	if !train {
		return []string{"test_batch.bin"}
	}
	return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
}

// cifarDir returns the folder that holds the batch files: root itself or
// root/cifar-10-batches-bin.
func cifarDir(root string, files []string) (string, error) {
	for _, dir := range []string{root, filepath.Join(root, cifarSubfolder)} {
		if _, err := os.Stat(filepath.Join(dir, files[0])); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cifar10: %v", err)
		}
	}
	return "", notFound("cifar10", root, fmt.Sprintf("%s (in %s or %s)", files[0], root, filepath.Join(root, cifarSubfolder)))
}

func loadCIFAR10(root string, train bool) (*Set, error) {
	files := cifarFiles(train)
	dir, err := cifarDir(root, files)
	if err != nil {
		return nil, err
	}
	// Check every file's size before allocating.
	var total int64
	paths := make([]string, len(files))
	for i, name := range files {
		p := filepath.Join(dir, name)
		paths[i] = p
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound("cifar10", root, p)
		}
		if err != nil {
			return nil, fmt.Errorf("cifar10: %v", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("cifar10: %s: not a regular file", p)
		}
		if st.Size() == 0 || st.Size()%cifarRecord != 0 {
			return nil, fmt.Errorf("cifar10: %s: offset %d: file size %d is not a positive multiple of the %d-byte record",
				p, st.Size()-st.Size()%cifarRecord, st.Size(), cifarRecord)
		}
		total += st.Size()
	}
	if total > cifarMaxBytes {
		return nil, fmt.Errorf("cifar10: %s: %d bytes in the batch files, more than %d", dir, total, int64(cifarMaxBytes))
	}
	n := int(total / cifarRecord)
	const d = cifarRecord - 1
	s := &Set{Name: "cifar10", Images: make([]byte, n*d), N: n, C: 3, H: Size, W: Size,
		Labels: make([]uint8, n), Classes: cifarClasses}
	i := 0
	for _, p := range paths {
		if i, err = readCIFARFile(p, s, i); err != nil {
			return nil, fmt.Errorf("cifar10: %w", err)
		}
	}
	if i != n {
		return nil, fmt.Errorf("cifar10: %s: the batch files changed while being read", dir)
	}
	classes, err := readCIFARMeta(filepath.Join(dir, cifarMeta))
	if err != nil {
		return nil, fmt.Errorf("cifar10: %w", err)
	}
	if classes != nil {
		s.Classes = classes
	}
	return s, nil
}

// readCIFARFile reads the records of path into s from image i on, and
// returns the index after the last one read.
func readCIFARFile(path string, s *Set, i int) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return i, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	const d = cifarRecord - 1
	var off int64
	for ; ; i++ {
		var label [1]byte
		if _, err := io.ReadFull(r, label[:]); err == io.EOF {
			return i, nil
		} else if err != nil {
			return i, fmt.Errorf("%s: offset %d: %v", path, off, err)
		}
		if label[0] >= 10 {
			return i, fmt.Errorf("%s: offset %d: label %d (want 0 to 9)", path, off, label[0])
		}
		if i >= s.N {
			return i, fmt.Errorf("%s: offset %d: more records than the file size said", path, off)
		}
		s.Labels[i] = label[0]
		if n, err := io.ReadFull(r, s.Images[i*d:(i+1)*d]); err != nil {
			return i, fmt.Errorf("%s: offset %d: record cut short: %v", path, off+1+int64(n), err)
		}
		off += cifarRecord
	}
}

// readCIFARMeta reads the ten class names from batches.meta.txt; nil, nil
// when the file is absent.
func readCIFARMeta(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if len(names) != 10 {
		return nil, fmt.Errorf("%s: %d class names, want 10 (one per line)", path, len(names))
	}
	return names, nil
}
