package metrics

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// ReadFile reads every record of a metrics.jsonl file. A last line that
// is incomplete (no final newline and not a whole record, as a crash in the
// middle of a write leaves it) is skipped without error; skipped is 1 then,
// 0 otherwise, so that callers can warn. Any other line that is not a
// record is an error naming the file and the line. Blank lines are ignored.
func ReadFile(path string) (recs []Record, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	return Read(f, path)
}

// Read reads records from r as ReadFile does; name is used in errors.
func Read(r io.Reader, name string) (recs []Record, skipped int, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("metrics: reading %s: %w", name, err)
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		complete := true
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data, complete = data, nil, false
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := rec.UnmarshalJSON(line); err != nil {
			if !complete {
				return recs, 1, nil
			}
			return nil, 0, fmt.Errorf("metrics: %s:%d: %w", name, lineNo, err)
		}
		recs = append(recs, rec)
	}
	return recs, 0, nil
}
