// Package fetch downloads the datasets pad reads (MNIST, Fashion-MNIST,
// CIFAR-10, SVHN) from their canonical sources and checks them.
//
// A download goes to <file>.part next to its final name, resumes with an
// HTTP Range request after an interruption, is hashed while it streams, and
// is renamed to its final name only once its checksum matches: a file under
// its final name is always one that was verified (or, for an entry with no
// known checksum, one that was downloaded completely). Transient failures are
// retried with backoff, and the mirrors of an entry are tried in order.
// CIFAR-10's archive is unpacked defensively after it is verified.
//
// The catalogue is data (a Catalogue of Entry values): tests and other
// callers pass their own entries to Fetch and Catalogue.Verify.
package fetch

import (
	"fmt"
	"sort"
	"strings"
)

// Version is one known-good byte sequence of a file: every field that is
// set must match for a file to be this version. A file may have more than
// one (Fashion-MNIST, see Default).
type Version struct {
	Size   int64  // bytes; 0 when unknown
	SHA256 string // lower-case hex; "" when unknown
	MD5    string // lower-case hex; "" when unknown
	Source string // where the sums are documented
}

// hasSum reports whether v names a checksum (a size alone verifies nothing).
func (v Version) hasSum() bool { return v.SHA256 != "" || v.MD5 != "" }

// Entry is one file of a dataset and where to get it.
type Entry struct {
	Dataset string // the name dataset.Load knows, e.g. "mnist"
	// File is the file's name in the dataset folder as the reader expects
	// it; for an archive, the archive's name.
	File string
	// URLs are tried in order: the primary source first, then mirrors.
	URLs []string
	// Versions lists the known-good versions of the file. None: the file
	// cannot be verified and Fetch says so.
	Versions []Version
	// Alternates are other names the reader accepts for this file (an
	// uncompressed IDX file); Verify reports them as unverified.
	Alternates []string
	// Archive, when set, says which members of the (tar.gz) file to
	// extract once it is verified.
	Archive *Archive
}

// Size returns the file's size when every version agrees on one, else 0.
func (e Entry) Size() int64 {
	var n int64
	for i, v := range e.Versions {
		if v.Size <= 0 || (i > 0 && v.Size != n) {
			return 0
		}
		n = v.Size
	}
	return n
}

// maxSize is the largest size a download of e may reach: the largest known
// size when every version has one, else limit.
func (e Entry) maxSize(limit int64) int64 {
	var n int64
	for _, v := range e.Versions {
		if v.Size <= 0 {
			return limit
		}
		n = max(n, v.Size)
	}
	if n == 0 {
		return limit
	}
	return n
}

// Verifiable reports whether e has a known checksum.
func (e Entry) Verifiable() bool {
	for _, v := range e.Versions {
		if v.hasSum() {
			return true
		}
	}
	return false
}

// SumKind describes the checksums e is verified with: "sha256+md5",
// "sha256", "md5" or "none", with the number of versions when more than one.
func (e Entry) SumKind() string {
	var sha, md bool
	count := 0
	for _, v := range e.Versions {
		if v.hasSum() {
			count++
		}
		sha = sha || v.SHA256 != ""
		md = md || v.MD5 != ""
	}
	var s string
	switch {
	case sha && md:
		s = "sha256+md5"
	case sha:
		s = "sha256"
	case md:
		s = "md5"
	default:
		return "none"
	}
	if count > 1 {
		s += fmt.Sprintf(" (%d versions)", count)
	}
	return s
}

// Archive lists the members to extract from a tar.gz entry.
type Archive struct {
	// Dir is the folder, relative to the dataset folder, the members are
	// written to.
	Dir string
	// Members are the archive members to extract; each must be present,
	// once, as a regular file. Other regular files and folders in the
	// archive are skipped; links, devices and unsafe paths reject it.
	Members []Member
	// MaxTotal bounds the uncompressed bytes read from the archive; 0
	// means the members' limits plus 64 MiB.
	MaxTotal int64
}

// Member is one file of an archive to extract.
type Member struct {
	Name string // path in the archive, e.g. "cifar-10-batches-bin/test_batch.bin"
	Size int64  // exact size; 0 when unknown
	Max  int64  // upper bound on the size when Size is 0
}

// Out returns the member's file name in Archive.Dir (the last element of
// its name).
func (m Member) Out() string {
	if i := strings.LastIndexByte(m.Name, '/'); i >= 0 {
		return m.Name[i+1:]
	}
	return m.Name
}

func (m Member) limit() int64 {
	if m.Size > 0 {
		return m.Size
	}
	return m.Max
}

func (a *Archive) maxTotal() int64 {
	if a.MaxTotal > 0 {
		return a.MaxTotal
	}
	n := int64(64 << 20)
	for _, m := range a.Members {
		n += m.limit()
	}
	return n
}

// Catalogue is a list of entries, several per dataset.
type Catalogue []Entry

// Datasets returns the dataset names c has entries for, sorted.
func (c Catalogue) Datasets() []string {
	seen := map[string]bool{}
	var names []string
	for _, e := range c {
		if !seen[e.Dataset] {
			seen[e.Dataset] = true
			names = append(names, e.Dataset)
		}
	}
	sort.Strings(names)
	return names
}

// Entries returns the entries of the dataset name, in catalogue order, or
// an error naming the known datasets.
func (c Catalogue) Entries(name string) ([]Entry, error) {
	var es []Entry
	for _, e := range c {
		if e.Dataset == name {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("no dataset %q to fetch (known: %s)", name, strings.Join(c.Datasets(), ", "))
	}
	return es, nil
}

// DefaultDir is the folder a dataset is read from when data.root is not
// set: data/<name>, as configs.Data.Dir says.
func DefaultDir(name string) string { return "data/" + name }

// NotFetchable says why the dataset name, which dataset.Load knows, has
// nothing to download, or returns "" when it is not one of those.
func NotFetchable(name string) string {
	switch name {
	case "embedded":
		return "the embedded set is built into pad; there is nothing to download"
	case "folder":
		return "the folder set reads your own images from data.root (root/<class>/*.png|*.jpg); there is nothing to download"
	}
	return ""
}

// Default returns the built-in catalogue (a fresh copy each call).
//
// Sources and checksums, per dataset (every entry lists its URLs in the
// order they are tried; all fields of a Version must match):
//
//   - mnist: SHA-256 + MD5 + size. SHA-256 from the project's
//     shared/data/SHA256SUMS (the originals), which equal the sums and sizes
//     TensorFlow Datasets records for these files
//     (tensorflow/datasets: tensorflow_datasets/url_checksums/mnist.txt);
//     MD5 from torchvision (pytorch/vision: torchvision/datasets/mnist.py,
//     MNIST.resources). URLs: torchvision's mirror
//     https://ossci-datasets.s3.amazonaws.com/mnist/ (MNIST.mirrors), the
//     mirror TFDS uses, https://storage.googleapis.com/cvdf-datasets/mnist/,
//     and last the original http://yann.lecun.com/exdb/mnist/, which is
//     known to refuse or fail downloads (hence not first).
//   - fashion: SHA-256 + MD5 + size, two versions. The canonical files
//     (served by both URLs): MD5 from the Fashion-MNIST README
//     (zalandoresearch/fashion-mnist: README.md, "Get the Data"; the same
//     in torchvision's FashionMNIST.resources), SHA-256 and size from TFDS
//     (tensorflow_datasets/url_checksums/fashion_mnist.txt). The copies in
//     shared/data/fashion-mnist are not byte-identical to those: they are
//     re-wrapped gzip files (no file name in the gzip header, another
//     mtime; 23 or 24 bytes shorter, same compressed data), so their
//     SHA-256 from shared/data/SHA256SUMS is accepted as a second version.
//     URLs: http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/
//     (README, torchvision), then the repository's own copy under data/fashion
//     (README: "the dataset appears under data/fashion") via
//     raw.githubusercontent.com.
//   - cifar10: SHA-256 + MD5 + size of the binary version,
//     cifar-10-binary.tar.gz. URL and MD5 from the dataset's page,
//     https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version
//     (suitable for C programs)"); SHA-256 and size from TFDS
//     (tensorflow_datasets/url_checksums/cifar10.txt). No mirror of the
//     binary version is documented. After verification the six batch files
//     and batches.meta.txt are extracted to cifar-10-batches-bin/, a folder
//     dataset.Load("cifar10", root, …) looks in; each batch is 10,000
//     records of 3,073 bytes (the page's format), so exactly 30,730,000
//     bytes.
//   - svhn: SHA-256 + MD5 + size of the cropped-digits files. URLs from the
//     dataset's page, http://ufldl.stanford.edu/housenumbers/ (format 2);
//     MD5 from torchvision (torchvision/datasets/svhn.py,
//     SVHN.split_list); SHA-256 and size from TFDS
//     (tensorflow_datasets/url_checksums/svhn_cropped.txt).
func Default() Catalogue {
	const (
		tfdsMNIST   = "shared/data/SHA256SUMS = TFDS url_checksums/mnist.txt; md5: torchvision MNIST.resources"
		tfdsFashion = "md5: Fashion-MNIST README; sha256, size: TFDS url_checksums/fashion_mnist.txt"
		sharedFash  = "re-wrapped copy in shared/data/fashion-mnist; sha256: shared/data/SHA256SUMS"
		tfdsCIFAR   = "md5: www.cs.toronto.edu/~kriz/cifar.html; sha256, size: TFDS url_checksums/cifar10.txt"
		tfdsSVHN    = "md5: torchvision SVHN.split_list; sha256, size: TFDS url_checksums/svhn_cropped.txt"
	)
	mnistURLs := func(f string) []string {
		return []string{
			"https://ossci-datasets.s3.amazonaws.com/mnist/" + f,
			"https://storage.googleapis.com/cvdf-datasets/mnist/" + f,
			"http://yann.lecun.com/exdb/mnist/" + f,
		}
	}
	fashionURLs := func(f string) []string {
		return []string{
			"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" + f,
			"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/" + f,
		}
	}
	idx := func(set, f string, urls []string, vs ...Version) Entry {
		return Entry{Dataset: set, File: f, URLs: urls, Versions: vs, Alternates: []string{strings.TrimSuffix(f, ".gz")}}
	}
	const batch = 10000 * 3073
	cifarMember := func(f string) Member { return Member{Name: "cifar-10-batches-bin/" + f, Size: batch} }

	return Catalogue{
		idx("mnist", "train-images-idx3-ubyte.gz", mnistURLs("train-images-idx3-ubyte.gz"),
			Version{9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "f68b3c2dcbeaaa9fbdd348bbdeb94873", tfdsMNIST}),
		idx("mnist", "train-labels-idx1-ubyte.gz", mnistURLs("train-labels-idx1-ubyte.gz"),
			Version{28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "d53e105ee54ea40749a09fcbcd1e9432", tfdsMNIST}),
		idx("mnist", "t10k-images-idx3-ubyte.gz", mnistURLs("t10k-images-idx3-ubyte.gz"),
			Version{1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "9fb629c4189551a2d022fa330f9573f3", tfdsMNIST}),
		idx("mnist", "t10k-labels-idx1-ubyte.gz", mnistURLs("t10k-labels-idx1-ubyte.gz"),
			Version{4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "ec29112dd5afa0611ce80d1b7f02629c", tfdsMNIST}),

		idx("fashion", "train-images-idx3-ubyte.gz", fashionURLs("train-images-idx3-ubyte.gz"),
			Version{26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", tfdsFashion},
			Version{26421856, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", "", sharedFash}),
		idx("fashion", "train-labels-idx1-ubyte.gz", fashionURLs("train-labels-idx1-ubyte.gz"),
			Version{29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", "25c81989df183df01b3e8a0aad5dffbe", tfdsFashion},
			Version{29491, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", "", sharedFash}),
		idx("fashion", "t10k-images-idx3-ubyte.gz", fashionURLs("t10k-images-idx3-ubyte.gz"),
			Version{4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", "bef4ecab320f06d8554ea6380940ec79", tfdsFashion},
			Version{4422079, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", "", sharedFash}),
		idx("fashion", "t10k-labels-idx1-ubyte.gz", fashionURLs("t10k-labels-idx1-ubyte.gz"),
			Version{5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", "bb300cfdad3c16e7a12a480ee83cd310", tfdsFashion},
			Version{5125, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", "", sharedFash}),

		{
			Dataset: "cifar10",
			File:    "cifar-10-binary.tar.gz",
			URLs:    []string{"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
			Versions: []Version{{170052171, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
				"c32a1d4ab5d03f1284b67883e8d87530", tfdsCIFAR}},
			Archive: &Archive{
				Dir: "cifar-10-batches-bin",
				Members: []Member{
					cifarMember("data_batch_1.bin"), cifarMember("data_batch_2.bin"), cifarMember("data_batch_3.bin"),
					cifarMember("data_batch_4.bin"), cifarMember("data_batch_5.bin"), cifarMember("test_batch.bin"),
					{Name: "cifar-10-batches-bin/batches.meta.txt", Max: 4096},
				},
			},
		},

		{
			Dataset: "svhn",
			File:    "train_32x32.mat",
			URLs:    []string{"http://ufldl.stanford.edu/housenumbers/train_32x32.mat"},
			Versions: []Version{{182040794, "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
				"e26dedcc434d2e4c54c9b2d4a06d8373", tfdsSVHN}},
		},
		{
			Dataset: "svhn",
			File:    "test_32x32.mat",
			URLs:    []string{"http://ufldl.stanford.edu/housenumbers/test_32x32.mat"},
			Versions: []Version{{64275384, "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
				"eb5a983be6a315427106f1b164d9cef3", tfdsSVHN}},
		},
	}
}
