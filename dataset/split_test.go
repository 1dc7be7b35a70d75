package dataset

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// makeClasses writes n grayscale PNGs per class under root/<class>, image
// k (img<k>.png) of the class at position c with seed 100c+k, writing the
// images of a class in reverse order when reverse is set.
func makeClasses(t *testing.T, root string, classes []string, n int, reverse bool) {
	t.Helper()
	for ci, c := range classes {
		for j := 0; j < n; j++ {
			k := j
			if reverse {
				k = n - 1 - j
			}
			encodePNG(t, filepath.Join(root, c, fmt.Sprintf("img%02d.png", k)), grayImage(8, 8, 100*ci+k))
		}
	}
}

func imageKeys(s *Set) map[string]uint8 {
	m := make(map[string]uint8, s.N)
	for i := 0; i < s.N; i++ {
		m[string(s.Image(i))] = s.Labels[i]
	}
	return m
}

// Without train/ and test/, a stratified share of each class is held out,
// chosen by the hash of the file's path: the same whatever the order the
// files were written in, disjoint from the training set, and together with
// it the whole folder.
func TestFolderSplitHoldsOut(t *testing.T) {
	classes := []string{"cat", "dog", "eel"}
	root := t.TempDir()
	makeClasses(t, root, classes, 10, false)
	train, test, split, err := LoadFolderSplit(root, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 24 || test.N != 6 || train.C != 1 || test.C != 1 {
		t.Fatalf("train %d images (C=%d), test %d (C=%d); want 24 and 6", train.N, train.C, test.N, test.C)
	}
	if !strings.Contains(split, "20% of each class") || !strings.Contains(split, "hash") {
		t.Errorf("split description %q", split)
	}
	perClass := make([]int, len(classes))
	for _, l := range test.Labels {
		perClass[l]++
	}
	for c, n := range perClass {
		if n != 2 {
			t.Errorf("class %s: %d test images, want 2", classes[c], n)
		}
	}
	all, err := LoadFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	trk, tek, allk := imageKeys(train), imageKeys(test), imageKeys(all)
	if len(allk) != 30 {
		t.Fatalf("the fixture's images are not distinct (%d of 30)", len(allk))
	}
	for k := range tek {
		if _, ok := trk[k]; ok {
			t.Fatal("a held-out image is in the training set")
		}
	}
	for k, l := range allk {
		lt, inTrain := trk[k]
		le, inTest := tek[k]
		if !inTrain && !inTest || inTrain && lt != l || inTest && le != l {
			t.Fatal("the two sets do not add up to the folder with its labels")
		}
	}
	// The held-out images are the two of each class whose path hashes
	// lowest.
	for ci, c := range classes {
		var names []string
		for k := 0; k < 10; k++ {
			names = append(names, fmt.Sprintf("%s/img%02d.png", c, k))
		}
		sort.Slice(names, func(a, b int) bool { return pathHash(names[a]) < pathHash(names[b]) })
		for _, name := range names[:2] {
			var k int
			fmt.Sscanf(name[len(c)+1:], "img%02d.png", &k)
			want, _ := ResizeBilinear(grayImage(8, 8, 100*ci+k).Pix, 1, 8, 8, 32, 32)
			if _, ok := tek[string(want)]; !ok {
				t.Errorf("%s is not held out", name)
			}
		}
	}

	// Written in the opposite order: the same split, image for image.
	root2 := t.TempDir()
	makeClasses(t, root2, classes, 10, true)
	train2, test2, _, err := LoadFolderSplit(root2, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if string(train2.Images) != string(train.Images) || string(test2.Images) != string(test.Images) ||
		string(train2.Labels) != string(train.Labels) || string(test2.Labels) != string(test.Labels) {
		t.Error("the split depends on the order the files were written in")
	}

	// Another fraction; Load's sides use the default.
	if tr, te, _, err := LoadFolderSplit(root, 0.5); err != nil || tr.N != 15 || te.N != 15 {
		t.Errorf("fraction 0.5: %v, %v, %v", tr, te, err)
	}
	if s, err := Load("folder", root, false); err != nil || string(s.Images) != string(test.Images) {
		t.Errorf("Load(folder, test) is not the default split: %v", err)
	}
	for _, f := range []float64{0, 1, -0.5, 2} {
		if _, _, _, err := LoadFolderSplit(root, f); err == nil || !strings.Contains(err.Error(), "data.test_fraction") {
			t.Errorf("fraction %v: %v", f, err)
		}
	}
}

// A class of one image stays in training; tiny classes hold out nothing.
func TestHoldOutSmallClasses(t *testing.T) {
	paths := []string{"a/1.png", "b/1.png", "b/2.png", "c/1.png", "c/2.png", "c/3.png"}
	labels := []uint8{0, 1, 1, 2, 2, 2}
	train, test := holdOut(paths, labels, 3, 0.5)
	// a: 0 of 1; b: round(1) = 1 of 2; c: round(1.5) = 2 of 3.
	if len(test) != 3 || len(train) != 3 {
		t.Fatalf("train %v, test %v", train, test)
	}
	if _, test := holdOut(paths, labels, 3, 0.99); len(test) != 3 {
		t.Errorf("at 0.99 every class keeps one training image: test %v", test)
	}
}

// root/train and root/test are used as they are; their classes must
// agree, and a grayscale side joins a colour side in RGB.
func TestFolderSplitTrainTestFolders(t *testing.T) {
	root := t.TempDir()
	makeClasses(t, filepath.Join(root, "train"), []string{"a", "b"}, 3, false)
	encodePNG(t, filepath.Join(root, "test", "a", "x.png"), rgbaImage(8, 8, 1))
	encodePNG(t, filepath.Join(root, "test", "b", "y.png"), grayImage(8, 8, 2))
	train, test, split, err := LoadFolderSplit(root, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 6 || test.N != 2 || train.C != 3 || test.C != 3 {
		t.Fatalf("train %d (C=%d), test %d (C=%d)", train.N, train.C, test.N, test.C)
	}
	if !strings.Contains(split, filepath.Join(root, "test")) {
		t.Errorf("split description %q does not name the test folder", split)
	}
	encodePNG(t, filepath.Join(root, "test", "c", "z.png"), grayImage(8, 8, 3))
	if _, _, _, err := LoadFolderSplit(root, 0.2); err == nil || !strings.Contains(err.Error(), "same class") {
		t.Errorf("different classes: %v", err)
	}
}
