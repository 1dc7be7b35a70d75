package fetch

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// errTooMuch is returned when an archive holds more data than allowed.
var errTooMuch = errors.New("more uncompressed data than allowed")

// capReader reads at most n bytes from r, then fails with errTooMuch.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooMuch
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// safeName returns the cleaned form of a tar member's name, or false when
// the name is absolute, climbs out with "..", or is empty.
func safeName(name string) (string, bool) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || strings.ContainsRune(name, 0) {
		return "", false
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", false
		}
	}
	clean := path.Clean(strings.TrimSuffix(name, "/"))
	if clean == "." {
		return clean, true // the archive's root folder
	}
	return clean, filepath.IsLocal(filepath.FromSlash(clean))
}

// typeName names a tar entry type for an error message.
func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry of type %q", t)
}

// extract unpacks the members a lists from the tar.gz file at archive into
// dir/a.Dir and returns the paths written. It rejects the archive (writing
// nothing under a final name) when any entry has an unsafe path or is
// neither a regular file nor a folder, when a member is missing, doubled,
// or not of its size, or when the archive holds more than a.maxTotal()
// bytes. Regular files not listed are skipped.
func extract(archive, dir string, a *Archive) (paths []string, err error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip file: %w", archive, err)
	}
	defer gz.Close()
	tr := tar.NewReader(&capReader{r: gz, n: a.maxTotal()})

	outDir := filepath.Join(dir, filepath.FromSlash(a.Dir))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	want := make(map[string]Member, len(a.Members))
	for _, m := range a.Members {
		want[m.Name] = m
	}
	temps := map[string]string{} // member name → its .part file
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()

	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errTooMuch) {
			return nil, fmt.Errorf("%s: %w (limit %d bytes)", archive, err, a.maxTotal())
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		name, ok := safeName(hdr.Name)
		if !ok {
			return nil, fmt.Errorf("%s: member %q: unsafe path (absolute or with \"..\"); archive rejected", archive, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("%s: member %q is a %s, not a regular file; archive rejected", archive, hdr.Name, typeName(hdr.Typeflag))
		}
		m, ok := want[name]
		if !ok {
			continue // not needed; tar skips its data
		}
		if _, dup := temps[name]; dup {
			return nil, fmt.Errorf("%s: member %q appears twice; archive rejected", archive, hdr.Name)
		}
		switch {
		case m.Size > 0 && hdr.Size != m.Size:
			return nil, fmt.Errorf("%s: member %q is %d bytes, want %d; archive rejected", archive, hdr.Name, hdr.Size, m.Size)
		case hdr.Size < 0 || hdr.Size > m.limit():
			return nil, fmt.Errorf("%s: member %q is %d bytes, more than the %d allowed; archive rejected", archive, hdr.Name, hdr.Size, m.limit())
		}
		tmp := filepath.Join(outDir, m.Out()+".part")
		temps[name] = tmp
		if err := writeMember(tmp, tr, hdr.Size); err != nil {
			if errors.Is(err, errTooMuch) {
				return nil, fmt.Errorf("%s: member %q: %w (limit %d bytes)", archive, hdr.Name, err, a.maxTotal())
			}
			return nil, fmt.Errorf("%s: member %q: %w", archive, hdr.Name, err)
		}
	}
	for _, m := range a.Members {
		if _, ok := temps[m.Name]; !ok {
			return nil, fmt.Errorf("%s: member %q is not in the archive", archive, m.Name)
		}
	}
	for _, m := range a.Members {
		out := filepath.Join(outDir, m.Out())
		if err := os.Rename(temps[m.Name], out); err != nil {
			return nil, err
		}
		delete(temps, m.Name)
		paths = append(paths, out)
	}
	return paths, nil
}

// writeMember copies size bytes from r into a new file at path.
func writeMember(path string, r io.Reader, size int64) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
