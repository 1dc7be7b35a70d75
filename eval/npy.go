package eval

import (
	"bufio"
	"fmt"
	"os"

	"gorgonia.org/tensor"
)

// SaveNpy writes data as a NumPy .npy file (little-endian float32, C
// order) of the given shape, e.g. SaveNpy("z.npy", f.X, f.N, f.D).
func SaveNpy(path string, data []float32, shape ...int) error {
	return saveNpy(path, data, len(data), shape)
}

// SaveNpyUint8 writes data as a NumPy .npy file of dtype uint8.
func SaveNpyUint8(path string, data []uint8, shape ...int) error {
	return saveNpy(path, data, len(data), shape)
}

// SaveNpyInt64 writes data as a NumPy .npy file of dtype int64.
func SaveNpyInt64(path string, data []int64, shape ...int) error {
	return saveNpy(path, data, len(data), shape)
}

// SaveLabelsNpy writes class labels as a 1-D int64 .npy file, the dtype
// PyTorch's losses expect for class indices.
func SaveLabelsNpy(path string, labels []uint8) error {
	wide := make([]int64, len(labels))
	for i, l := range labels {
		wide[i] = int64(l)
	}
	return saveNpy(path, wide, len(wide), []int{len(wide)})
}

// saveNpy checks the shape against the number of values and writes the
// file with gorgonia's tensor.Dense.WriteNpy.
func saveNpy(path string, backing any, n int, shape []int) (err error) {
	if len(shape) == 0 {
		return fmt.Errorf("npy: %s: no shape given", path)
	}
	size := 1
	for _, d := range shape {
		if d <= 0 {
			return fmt.Errorf("npy: %s: invalid shape %v", path, shape)
		}
		if size > n/d {
			return fmt.Errorf("npy: %s: shape %v does not match %d values", path, shape, n)
		}
		size *= d
	}
	if size != n {
		return fmt.Errorf("npy: %s: shape %v holds %d values, have %d", path, shape, size, n)
	}
	// tensor.New panics on inconsistent options; the checks above rule
	// that out, but keep a bad value from crashing the program anyway.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("npy: %s: %v", path, r)
		}
	}()
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := t.WriteNpy(bw); err != nil {
		f.Close()
		return fmt.Errorf("npy: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("npy: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("npy: closing %s: %w", path, err)
	}
	return nil
}
