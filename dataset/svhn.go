package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// SVHN (cropped digits, format 2): train_32x32.mat and test_32x32.mat hold X,
// a uint8 array of 32×32×3×N (row, column, channel, image; column-major, so
// the row index varies fastest), and y, N labels 1…10 where 10 stands for
// the digit 0.

func loadSVHN(root string, train bool) (*Set, error) {
	name := "test_32x32.mat"
	if train {
		name = "train_32x32.mat"
	}
	p := filepath.Join(root, name)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("svhn", root, p)
	}
	s, err := ReadSVHN(p)
	if err != nil {
		return nil, fmt.Errorf("svhn: %w", err)
	}
	return s, nil
}

// ReadSVHN reads an SVHN MAT-file (variables X and y) into a 3×32×32 set.
func ReadSVHN(path string) (*Set, error) {
	vars, err := readMAT(path, "X", "y")
	if err != nil {
		return nil, err
	}
	return svhnSet(vars, path)
}

// svhnSet converts the variables X and y of an SVHN MAT-file to a set.
func svhnSet(vars map[string]*matArray, path string) (*Set, error) {
	x, y := vars["X"], vars["y"]
	if x == nil || y == nil {
		return nil, fmt.Errorf("%s: variables X and y are required (found X: %t, y: %t)", path, x != nil, y != nil)
	}
	// MATLAB drops trailing singleton dimensions: one image is 32×32×3.
	dims := x.Dims
	if len(dims) == 3 {
		dims = append(dims[:3:3], 1)
	}
	if len(dims) != 4 || dims[0] != Size || dims[1] != Size || dims[2] != 3 {
		return nil, fmt.Errorf("%s: X has dimensions %v, want 32×32×3×N", x.where, x.Dims)
	}
	n := dims[3]
	if y.Len() != n || len(y.Dims) != 2 || (y.Dims[0] != n && y.Dims[1] != n) {
		return nil, fmt.Errorf("%s: y has dimensions %v, want %d×1 to match X", y.where, y.Dims, n)
	}
	labels := make([]uint8, n)
	for i := range labels {
		v := y.Float(i)
		if !(v >= 0 && v <= 10) || v != math.Trunc(v) {
			return nil, fmt.Errorf("%s: y(%d) is %v, want an integer label 1…10", y.where, i+1, v)
		}
		labels[i] = uint8(int(v) % 10)
	}
	src, err := x.Uint8()
	if err != nil {
		return nil, err
	}
	x.Data = nil
	const plane = Size * Size
	img := make([]byte, n*3*plane)
	// X(i, j, k, m) is at i + 32j + 1024k + 3072m; ours at m·3072 + k·1024 + 32i + j.
	for m := 0; m < n; m++ {
		for k := 0; k < 3; k++ {
			s := src[(m*3+k)*plane : (m*3+k+1)*plane]
			d := img[(m*3+k)*plane : (m*3+k+1)*plane]
			for j := 0; j < Size; j++ {
				col := s[j*Size : (j+1)*Size]
				for i, v := range col {
					d[i*Size+j] = v
				}
			}
		}
	}
	return &Set{Name: "svhn", Images: img, N: n, C: 3, H: Size, W: Size, Labels: labels, Classes: digitClasses}, nil
}
