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
// data directory. Files are opened on first use and stay open until close,
// or until found replaced (a held Span's descriptor stays valid until it is
// released); a file is created, with its directories, by the first write
// into it, and grows as pieces are written (never preallocated). Bytes of
// pad files are zeros that are never stored: reads fill them in, writes
// skip them. Each file's slot (files_stamp.go) knows the file as the store
// last wrote or verified it, so that reads and writes notice changes made
// behind the store's back.
type fileStore struct {
	dir   string // absolute directory that holds everything created
	info  *metainfo.Info
	paths []string     // where each of info.Files lives
	lock  *os.File     // flock'ed lock file in the store directory
	read  atomic.Int64 // bytes read from the files, for tests
	syncs atomic.Int64 // files fdatasync'ed, for tests
	slots []fileSlot   // one per file: its stamp as the store knows it
	// onChange is called, with no lock of the fileStore held, when a file
	// was found changed behind the store's back (beginChange succeeded);
	// it must call endChange. Set by the store before any I/O.
	onChange func(file int)

	// fileMu guards the table of open files and what awaits a sync.
	fileMu  sync.Mutex
	open    []*handle
	dirty   map[int]struct{}    // files written since the last sync
	newDirs map[string]struct{} // directories that gained files since the last sync
}

// handle is one open file of the store. The table holds it until it is
// found replaced (retired); its descriptor is closed once retired and no
// longer in use.
type handle struct {
	f       *os.File
	refs    int         // fileMu: users (reads, writes, held spans)
	retired atomic.Bool // set under fileMu: no longer in the table
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
		open:    make([]*handle, len(info.Files)),
		slots:   make([]fileSlot, len(info.Files)),
		dirty:   make(map[int]struct{}),
		newDirs: make(map[string]struct{}),
	}
}

// createEmpty creates the torrent's zero-length files, which no piece
// ever writes.
func (fl *fileStore) createEmpty() error {
	for i, f := range fl.info.Files {
		if f.Length == 0 {
			h, err := fl.acquire(i, true)
			if err != nil {
				return err
			}
			fl.release(h)
		}
	}
	return nil
}

// acquire returns file i open, creating it (and its directories) when
// create is set, and counts a user of it until release. A file the user
// may not write is opened read-only: it can still be verified and served.
func (fl *fileStore) acquire(i int, create bool) (*handle, error) {
	fl.fileMu.Lock()
	if h := fl.open[i]; h != nil {
		h.refs++
		fl.fileMu.Unlock()
		return h, nil
	}
	fl.fileMu.Unlock()
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
		f, created, err = fl.create(i, perm)
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
	if h := fl.open[i]; h != nil { // another goroutine was first
		f.Close()
		h.refs++
		return h, nil
	}
	h := &handle{f: f, refs: 1}
	fl.open[i] = h
	return h, nil
}

// release ends a use of h begun by acquire.
func (fl *fileStore) release(h *handle) {
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	h.refs--
	if h.refs == 0 && h.retired.Load() {
		h.f.Close()
	}
}

// retire takes file i's handle out of the table (the file at its path was
// replaced or removed): the next use opens the path again, and the old
// descriptor is closed once no one uses it.
func (fl *fileStore) retire(i int) {
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	h := fl.open[i]
	if h == nil {
		return
	}
	fl.open[i] = nil
	h.retired.Store(true)
	delete(fl.dirty, i) // its writes are not the path's any more
	if h.refs == 0 {
		h.f.Close()
	}
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
		h, err := fl.acquire(pt.File, false)
		if errors.Is(err, os.ErrNotExist) {
			fl.check(pt.File, nil)
			return int(cur - off), errShort
		}
		if err != nil {
			return int(cur - off), err
		}
		dst := p[pt.TorrentOff-off:][:pt.Length]
		m, err := h.f.ReadAt(dst, pt.FileOffset)
		fl.read.Add(int64(m))
		// After the read: a change made before or during it shows.
		fl.check(pt.File, h)
		fl.release(h)
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
		if err := fl.writeStamped(pt.File, p[pt.TorrentOff-off:][:pt.Length], pt.FileOffset); err != nil {
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
		h, err := fl.acquire(pt.File, false)
		if err != nil {
			return false
		}
		fi, err := h.f.Stat()
		fl.release(h)
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
		h, err := fl.acquire(pt.File, false)
		if err != nil {
			return false
		}
		fi, err := h.f.Stat()
		if err != nil || fi.Size() < pt.FileOffset+pt.Length {
			fl.release(h)
			return false
		}
		data, err := unix.Seek(int(h.f.Fd()), pt.FileOffset, unix.SEEK_DATA)
		fl.release(h)
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
	files := make([]*handle, 0, len(fl.dirty))
	idx := make([]int, 0, len(fl.dirty))
	for i := range fl.dirty {
		if h := fl.open[i]; h != nil {
			h.refs++
			files, idx = append(files, h), append(idx, i)
		}
	}
	dirs := make([]string, 0, len(fl.newDirs))
	for d := range fl.newDirs {
		dirs = append(dirs, d)
	}
	clear(fl.dirty)
	clear(fl.newDirs)
	fl.fileMu.Unlock()
	defer func() {
		for _, h := range files {
			fl.release(h)
		}
	}()
	var err error
	for k, h := range files {
		if err = unix.Fdatasync(int(h.f.Fd())); err != nil {
			fl.redirty(idx[k:], dirs)
			return &fs.PathError{Op: "fdatasync", Path: h.f.Name(), Err: err}
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

// current returns every file's size and times as they are at its path
// now, and records them as what the store knows of the files; a missing
// file has size -1. It runs in Open, before anything else uses the files.
func (fl *fileStore) current() ([]stamp, error) {
	out := make([]stamp, len(fl.paths))
	for i, p := range fl.paths {
		sp, id, err := statPath(p)
		if err != nil {
			return nil, err
		}
		out[i] = sp
		fl.slots[i].known, fl.slots[i].id = sp, id
	}
	return out, nil
}

func (fl *fileStore) span(off int64, n int) (spanned, error) {
	parts := fl.info.FileParts(off, 1)
	if len(parts) == 0 || parts[0].TorrentOff != off {
		return spanned{}, nil
	}
	pt := parts[0]
	h, err := fl.acquire(pt.File, false)
	if err != nil {
		return spanned{}, err
	}
	fl.check(pt.File, h) // the caller checks its pieces afterwards
	m := min(int64(n), fl.info.Files[pt.File].Length-pt.FileOffset)
	return spanned{fd: h.f.Fd(), off: pt.FileOffset, n: int(m), ok: true, done: func() { fl.release(h) }}, nil
}

func (fl *fileStore) close() error {
	fl.fileMu.Lock()
	defer fl.fileMu.Unlock()
	var first error
	for i, h := range fl.open {
		if h != nil {
			if err := h.f.Close(); err != nil && first == nil {
				first = err
			}
			fl.open[i] = nil
		}
	}
	unix.Flock(int(fl.lock.Fd()), unix.LOCK_UN)
	fl.lock.Close()
	return first
}
