// Package shell quotes words for a POSIX shell: the commands pad prints
// for the user to run (pad data fetch --dir …) and writes into job scripts
// and logs (pad sweep). One rule everywhere, so a command pad shows can be
// pasted as it is.
package shell

import "strings"

// Quote returns s as one shell word: as it is when it holds only letters,
// digits and - _ . / = , : + @ %, else between single quotes, a quote
// inside becoming quote, backslash, quote, quote. The empty string becomes
// a pair of single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// Join quotes each argument (Quote) and joins them with spaces.
func Join(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
