package cache

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that after a crash path holds
// either its old contents or data, never a mix: it writes a temporary file
// in the same directory, fsyncs it, gives it perm, renames it over path and
// fsyncs the directory, so that the rename itself is durable when
// WriteFileAtomic returns nil. On an error the temporary file is removed
// and path is unchanged, unless only the final directory fsync failed. The
// errors are those of package os, which name the file and the operation.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*"+tmpSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// tmpSuffix ends the names of WriteFileAtomic's temporary files, so that a
// store can remove those a crash left behind.
const tmpSuffix = ".tmp"

// syncDir makes the entries of dir (a rename, a new file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
