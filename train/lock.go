package train

import "strings"

func trimHolder(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" || len(s) > 64 {
		return "unknown pid"
	}
	return s
}
