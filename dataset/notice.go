package dataset

import _ "embed"

// EmbeddedLicense is the licence of the embedded Fashion-MNIST sample
// (embedded/LICENSE, the MIT licence of Zalando Research's Fashion-MNIST),
// which must travel with every copy of the binary.
//
//go:embed embedded/LICENSE
var EmbeddedLicense string

// EmbeddedSource says what the embedded sample is and where it comes from,
// in lines of at most 76 characters.
const EmbeddedSource = "The built-in Fashion-MNIST sample (dataset \"embedded\": the first 8,000\n" +
	"training and 2,000 test images) comes from Zalando Research's\n" +
	"Fashion-MNIST, https://github.com/zalandoresearch/fashion-mnist (Han Xiao,\n" +
	"Kashif Rasul, Roland Vollgraf, arXiv:1708.07747), and is distributed\n" +
	"under its MIT licence"
