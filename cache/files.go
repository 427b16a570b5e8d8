package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// fileStore is the Files layout's storage: the torrent's own files under a
// data directory. Files are opened on first use and stay open until close
// (a held Span's descriptor must stay valid); a file is created, with its
// directories, by the first write into it, and grows as pieces are written
// (never preallocated). Bytes of pad files are zeros that are never
// stored: reads fill them in, writes skip them.
type fileStore struct {
	dir   string // absolute directory that holds everything created
	info  *metainfo.Info
	paths []string     // where each of info.Files lives
	lock  *os.File     // flock'ed lock file in the store directory
	read  atomic.Int64 // bytes read from the files, for tests
	syncs atomic.Int64 // files fdatasync'ed, for tests

	// fileMu guards the table of open files and what awaits a sync.
	fileMu  sync.Mutex
	open    []*os.File
	dirty   map[int]struct{}    // files written since the last sync
	newDirs map[string]struct{} // directories that gained files since the last sync
}

// filesKey names the state and lock files of a Files store in the store
// directory: the data directory's absolute path, hashed.
func filesKey(absDir string) string {
	sum := sha256.Sum256([]byte(absDir))
	return "files-" + hex.EncodeToString(sum[:8])
}

// filePaths returns where each of info.Files lives: under dir as other
// clients lay them out, or with content set, at content itself (a single
// file) or below it (a multi-file torrent's top directory).
func filePaths(dir, content string, info *metainfo.Info) []string {
	paths := make([]string, len(info.Files))
	for i, f := range info.Files {
		switch {
		case content != "" && info.SingleFile:
			paths[i] = content
		case content != "":
			paths[i] = filepath.Join(append([]string{content}, f.Path...)...)
		case info.SingleFile:
			paths[i] = filepath.Join(append([]string{dir}, f.Path...)...)
		default:
			paths[i] = filepath.Join(append([]string{dir, info.Name}, f.Path...)...)
		}
	}
	return paths
}

// newFileStore makes the storage of info's files at paths, creating
// directories as needed below dir.
func newFileStore(dir string, paths []string, info *metainfo.Info, lock *os.File) *fileStore {
	return &fileStore{
		dir:     dir,
		info:    info,
		paths:   paths,
		lock:    lock,
		open:    make([]*os.File, len(info.Files)),
		dirty:   make(map[int]struct{}),
		newDirs: make(map[string]struct{}),
	}
}

// createEmpty creates the torrent's zero-length files, which no piece
// ever writes.
func (fl *fileStore) createEmpty() error {
	for i, f := range fl.info.Files {
		if f.Length == 0 {
			if _, err := fl.file(i, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// file returns file i open, creating it (and its directories) when create
// is set. A file the user may not write is opened read-only: it can still
// be verified and served.
func (fl *fileStore) file(i int, create bool) (*os.File, error) {
	fl.fileMu.Lock()
	f := fl.open[i]
	fl.fileMu.Unlock()
	if f != nil {
		return f, nil
	}
	path := fl.paths[i]
	perm := os.FileMode(0o666)
	if fl.info.Files[i].Executable {
		perm = 0o777
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) {
		f, err = os.Open(path)
	}
	created := false
	if errors.Is(err, os.ErrNotExist) && create {
		if err = os.MkdirAll(filepath.Dir(path), 0o777); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
			created = err == nil
		}
	}
	if err != nil {
		return nil, err
	}
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	if created { // whoever installs the file, its entry must become durable
		for d := filepath.Dir(path); len(d) >= len(fl.dir); d = filepath.Dir(d) {
			fl.newDirs[d] = struct{}{}
			if d == fl.dir || d == filepath.Dir(d) {
				break
			}
		}
	}
	if fl.open[i] != nil { // another goroutine was first
		f.Close()
		return fl.open[i], nil
	}
	fl.open[i] = f
	return f, nil
}

func (fl *fileStore) readAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	var eof error
	if off+n > fl.info.TotalLength {
		n, eof = max(fl.info.TotalLength-off, 0), io.EOF
	}
	cur := off
	for _, pt := range fl.info.FileParts(off, n) {
		clear(p[cur-off : pt.TorrentOff-off]) // pad bytes
		f, err := fl.file(pt.File, false)
		if errors.Is(err, os.ErrNotExist) {
			return int(cur - off), errShort
		}
		if err != nil {
			return int(cur - off), err
		}
		dst := p[pt.TorrentOff-off:][:pt.Length]
		m, err := f.ReadAt(dst, pt.FileOffset)
		fl.read.Add(int64(m))
		if err == io.EOF && int64(m) < pt.Length {
			return int(pt.TorrentOff-off) + m, errShort
		}
		if err != nil && err != io.EOF {
			return int(pt.TorrentOff-off) + m, err
		}
		cur = pt.TorrentOff + pt.Length
	}
	clear(p[cur-off : n])
	return int(n), eof
}

func (fl *fileStore) writeAt(p []byte, off int64) error {
	for _, pt := range fl.info.FileParts(off, int64(len(p))) {
		f, err := fl.file(pt.File, true)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(p[pt.TorrentOff-off:][:pt.Length], pt.FileOffset); err != nil {
			return err
		}
		fl.fileMu.Lock()
		fl.dirty[pt.File] = struct{}{}
		fl.fileMu.Unlock()
	}
	return nil
}

// holds reports whether the files are long enough to hold the torrent
// bytes [off, off+n).
func (fl *fileStore) holds(off, n int64) bool {
	for _, pt := range fl.info.FileParts(off, n) {
		f, err := fl.file(pt.File, false)
		if err != nil {
			return false
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() < pt.FileOffset+pt.Length {
			return false
		}
	}
	return true
}

// punch does nothing: the user's files never lose bytes to the store.
func (fl *fileStore) punch(off, n int64) error { return nil }

// isHole reports whether every file part of [off, off+n) lies within its
// file and in a hole (a sparse file another client created at full size),
// so that verifying it needs no read. A missing or short file is not a
// hole: its bytes are not there at all.
func (fl *fileStore) isHole(off, n int64) bool {
	for _, pt := range fl.info.FileParts(off, n) {
		f, err := fl.file(pt.File, false)
		if err != nil {
			return false
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() < pt.FileOffset+pt.Length {
			return false
		}
		data, err := unix.Seek(int(f.Fd()), pt.FileOffset, unix.SEEK_DATA)
		if !errors.Is(err, unix.ENXIO) && (err != nil || data < pt.FileOffset+pt.Length) {
			return false
		}
	}
	return true
}

// sync fdatasyncs every file written since the last sync and fsyncs the
// directories that gained files, so that a state claiming their pieces
// finds them after a crash.
func (fl *fileStore) sync() error {
	fl.fileMu.Lock()
	files := make([]*os.File, 0, len(fl.dirty))
	idx := make([]int, 0, len(fl.dirty))
	for i := range fl.dirty {
		files, idx = append(files, fl.open[i]), append(idx, i)
	}
	dirs := make([]string, 0, len(fl.newDirs))
	for d := range fl.newDirs {
		dirs = append(dirs, d)
	}
	clear(fl.dirty)
	clear(fl.newDirs)
	fl.fileMu.Unlock()
	var err error
	for k, f := range files {
		if err = unix.Fdatasync(int(f.Fd())); err != nil {
			fl.redirty(idx[k:], dirs)
			return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
		fl.syncs.Add(1)
	}
	for k, d := range dirs {
		if err = syncDir(d); err != nil {
			fl.redirty(nil, dirs[k:])
			return err
		}
	}
	return nil
}

// redirty puts back what a failed sync did not make durable.
func (fl *fileStore) redirty(idx []int, dirs []string) {
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	for _, i := range idx {
		fl.dirty[i] = struct{}{}
	}
	for _, d := range dirs {
		fl.newDirs[d] = struct{}{}
	}
}

// stamps returns every file's size and times; a missing file has size -1.
func (fl *fileStore) stamps() ([]stamp, error) {
	out := make([]stamp, len(fl.paths))
	for i, p := range fl.paths {
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		switch {
		case errors.Is(err, unix.ENOENT):
			out[i] = stamp{size: -1}
		case err != nil:
			return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
		default:
			out[i] = stampOf(&st)
		}
	}
	return out, nil
}

func (fl *fileStore) span(off int64, n int) (uintptr, int64, int, bool, error) {
	parts := fl.info.FileParts(off, 1)
	if len(parts) == 0 || parts[0].TorrentOff != off {
		return 0, 0, 0, false, nil
	}
	pt := parts[0]
	f, err := fl.file(pt.File, false)
	if err != nil {
		return 0, 0, 0, false, err
	}
	m := min(int64(n), fl.info.Files[pt.File].Length-pt.FileOffset)
	return f.Fd(), pt.FileOffset, int(m), true, nil
}

func (fl *fileStore) close() error {
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	var first error
	for i, f := range fl.open {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
			fl.open[i] = nil
		}
	}
	unix.Flock(int(fl.lock.Fd()), unix.LOCK_UN)
	fl.lock.Close()
	return first
}
