// Package pad holds what belongs to the whole repository rather than to one
// of its packages: its licence, built into the binary so that `pad info
// --licenses` can print it.
package pad

import _ "embed"

// License is the text of the repository's LICENSE file (MIT).
//
//go:embed LICENSE
var License string
