// Package atomicfile replaces files so that a reader, or the file system
// after a crash, sees either the old file or the complete new one, never a
// mix and never an empty file.
//
// Every write goes the same way: a temporary file in the destination's
// folder (named "."+base+".tmp-" and a random suffix, so a folder's stale
// temporaries can be found by the pattern "."+base+".tmp*"), the content,
// the permission bits, fsync of the file, rename over the destination, and
// fsync of the folder so that the rename itself survives a power cut. On
// any error before the rename the temporary file is removed and the old
// file is untouched; only a failing fsync of the folder after a successful
// rename leaves the new file in place while still reporting the error.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// KeepMode, as the perm of Write or WriteFile, gives the new file the
// permission bits of the regular file it replaces, or 0644 when there is
// none.
const KeepMode os.FileMode = 1 << 31 // os.ModeDir's bit; never a permission

// DefaultPerm is the permission of a new file written with KeepMode.
const DefaultPerm os.FileMode = 0o644

// The file operations, replaceable by the tests to inject failures.
var (
	syncFile = (*os.File).Sync
	rename   = os.Rename
	syncDir  = syncFolder
)

// WriteFile writes data to path atomically. perm is the new file's
// permission bits, or KeepMode.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes what fill writes to path atomically. perm is the new file's
// permission bits, or KeepMode. fill writes to the temporary file (wrap w
// with a bufio.Writer and flush it when writing in small pieces); its
// error, or any later one, leaves the old file as it was. The errors name
// path.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("atomicfile: %q names no file", path)
	}
	mode := perm.Perm()
	if perm == KeepMode {
		mode = DefaultPerm
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			mode = st.Mode().Perm()
		}
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if err == nil {
			return
		}
		if !renamed {
			tmp.Close() // may already be closed; that error is irrelevant
			os.Remove(tmp.Name())
		}
		err = fmt.Errorf("writing %s: %w", path, err)
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	// Chmod, not the umask-filtered mode of a created file: the mode asked
	// for (or kept) is the mode the file gets.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

// syncFolder fsyncs a folder so that a rename in it is durable.
func syncFolder(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && errors.Is(err, os.ErrInvalid) {
		return nil // some platforms and file systems cannot sync folders
	}
	return err
}
