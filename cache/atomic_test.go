package cache

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

// temps returns the temporary files WriteFileAtomic left in dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*"+tmpSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for i, data := range [][]byte{[]byte("first"), []byte("second, longer"), nil} {
		perm := []os.FileMode{0o600, 0o644, 0o640}[i]
		if err := WriteFileAtomic(path, data, perm); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("write %d: read back %q, %v; want %q", i, got, err, data)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != perm {
			t.Fatalf("write %d: mode %v, %v; want %v", i, fi.Mode().Perm(), err, perm)
		}
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}

	// A rename that fails (the target is a non-empty directory) leaves
	// the target alone and no temporary file.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(sub, []byte("x"), 0o600); err == nil {
		t.Fatal("WriteFileAtomic over a directory succeeded")
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("target changed: %v, %v", fi, err)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left after a failed rename: %v", m)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("write into a missing directory: %v, want ErrNotExist", err)
	}
}

func TestMetadata(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache") // created by SaveMetadata
	info := []byte("d4:name3:abc12:piece lengthi16384ee")
	ih := metainfo.Hash(sha1.Sum(info))
	if _, err := LoadMetadata(root, ih, 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadMetadata before saving: %v, want ErrNotExist", err)
	}
	if err := SaveMetadata(root, ih, info[1:]); !errors.Is(err, ErrBadMetadata) {
		t.Fatalf("SaveMetadata of bytes with another hash: %v, want ErrBadMetadata", err)
	}
	if err := SaveMetadata(root, ih, info); err != nil {
		t.Fatal(err)
	}
	// The same place and format as before the cache owned the file, so
	// existing caches keep working.
	raw, err := os.ReadFile(filepath.Join(root, ih.String()+".metadata"))
	if err != nil || !bytes.Equal(raw, info) {
		t.Fatalf("saved file holds %q, %v", raw, err)
	}
	got, err := LoadMetadata(root, ih, 1<<20)
	if err != nil || !bytes.Equal(got, info) {
		t.Fatalf("LoadMetadata = %q, %v", got, err)
	}
	if _, err := LoadMetadata(root, ih, len(info)-1); !errors.Is(err, ErrBadMetadata) {
		t.Fatalf("LoadMetadata over maxSize: %v, want ErrBadMetadata", err)
	}
	if err := os.WriteFile(MetadataPath(root, ih), append(raw, 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMetadata(root, ih, 1<<20); !errors.Is(err, ErrBadMetadata) {
		t.Fatalf("LoadMetadata of a changed file: %v, want ErrBadMetadata", err)
	}
	if m := temps(t, root); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}
