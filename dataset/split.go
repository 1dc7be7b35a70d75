package dataset

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultTestFraction is the share of each class LoadFolderSplit holds out
// as the test set when a folder has no train/ and test/ sub-folders.
const DefaultTestFraction = 0.2

// LoadSplit reads the training and test sets of the set called name from
// root and says, in a few words, where the test set comes from. For every
// set but "folder" these are the set's own training and test files (see
// Load) and testFraction is ignored; for "folder" see LoadFolderSplit.
func LoadSplit(name, root string, testFraction float64) (train, test *Set, split string, err error) {
	if name == "folder" {
		return LoadFolderSplit(root, testFraction)
	}
	if train, err = Load(name, root, true); err != nil {
		return nil, nil, "", err
	}
	if test, err = Load(name, root, false); err != nil {
		return nil, nil, "", err
	}
	return train, test, "test set: the " + name + " test files", nil
}

// LoadFolderSplit reads a folder of labelled images as a training set and a
// disjoint test set.
//
// When root has both a train and a test sub-folder, each is a folder of
// labelled images (root/train/<class>/…, root/test/<class>/…, see
// LoadFolder); both must have the same classes. Otherwise root itself is
// the folder of labelled images and a stratified share testFraction of
// each class (0 < testFraction < 1; round(testFraction·n) of a class of n
// images, always leaving one for training) is held out as the test set and
// never trained on. The held-out images are those whose FNV-1a 64 hash of
// the path "<class>/<file name>" is smallest (ties broken by the path), so
// the split depends neither on the seed nor on the order in which the file
// system lists the files, and an image keeps its side when others are
// added or removed. Images keep the sorted order of LoadFolder in both
// sets. With few images per class the test set may be empty. Both sets
// have C = 1 only when every image of both is grayscale.
func LoadFolderSplit(root string, testFraction float64) (train, test *Set, split string, err error) {
	trainDir, testDir := filepath.Join(root, "train"), filepath.Join(root, "test")
	if dirExists(trainDir) && dirExists(testDir) {
		ftr, err := readFolder(trainDir)
		if err != nil {
			return nil, nil, "", err
		}
		fte, err := readFolder(testDir)
		if err != nil {
			return nil, nil, "", err
		}
		if !slices.Equal(ftr.classes, fte.classes) {
			return nil, nil, "", fmt.Errorf("folder: %s has the classes %s but %s has %s: both need the same class sub-folders",
				trainDir, listClasses(ftr.classes), testDir, listClasses(fte.classes))
		}
		gray := ftr.gray && fte.gray
		return ftr.subset(indices(len(ftr.paths)), gray), fte.subset(indices(len(fte.paths)), gray),
			fmt.Sprintf("test set: %s, training set: %s", testDir, trainDir), nil
	}
	if !(testFraction > 0 && testFraction < 1) {
		return nil, nil, "", fmt.Errorf("folder: data.test_fraction = %v: must be between 0 and 1 (exclusive) when %s has no train/ and test/ sub-folders", testFraction, root)
	}
	f, err := readFolder(root)
	if err != nil {
		return nil, nil, "", err
	}
	trIdx, teIdx := holdOut(f.paths, f.labels, len(f.classes), testFraction)
	return f.subset(trIdx, f.gray), f.subset(teIdx, f.gray),
		fmt.Sprintf("test set: %.4g%% of each class of %s held out (%d images, chosen by a hash of each file's path)", 100*testFraction, root, len(teIdx)), nil
}

// holdOut splits the images (paths "<class>/<file>", labels < classes)
// into training and test indices, each in increasing order: of a class of
// n images, the round(fraction·n) (at most n−1) with the smallest
// pathHash go to the test set.
func holdOut(paths []string, labels []uint8, classes int, fraction float64) (train, test []int) {
	byClass := make([][]int, classes)
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	hash := make([]uint64, len(paths))
	for i, p := range paths {
		hash[i] = pathHash(p)
	}
	isTest := make([]bool, len(paths))
	for _, idx := range byClass {
		n := len(idx)
		k := min(int(math.Round(fraction*float64(n))), n-1)
		if k <= 0 {
			continue
		}
		slices.SortFunc(idx, func(a, b int) int {
			return cmp.Or(cmp.Compare(hash[a], hash[b]), strings.Compare(paths[a], paths[b]))
		})
		for _, i := range idx[:k] {
			isTest[i] = true
		}
	}
	for i, t := range isTest {
		if t {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// pathHash is the FNV-1a 64 hash of a slash-separated relative path.
func pathHash(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

func indices(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func listClasses(c []string) string {
	if len(c) > 8 {
		return strings.Join(c[:8], ", ") + fmt.Sprintf(", … (%d)", len(c))
	}
	return strings.Join(c, ", ")
}
