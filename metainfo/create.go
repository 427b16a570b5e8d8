package metainfo

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Piece length bounds for AutoPieceLength and CreateOptions.PieceLength.
const (
	MinCreatePieceLength = 16 << 10
	MaxCreatePieceLength = 16 << 20
	// targetPieces is the most pieces AutoPieceLength aims for.
	targetPieces = 2000
)

// CreateOptions controls Create. The zero value makes a trackerless, public
// torrent with an automatic piece length, named after the path, dated now.
type CreateOptions struct {
	// PieceLength is the piece size in bytes, a power of two from 16 KiB to
	// 16 MiB; 0 chooses one with AutoPieceLength.
	PieceLength int64
	// Trackers are announce URL tiers (BEP 12); nil means no trackers.
	Trackers [][]string
	// WebSeeds are BEP 19 url-list URLs; nil means none.
	WebSeeds []string
	// Private sets the BEP 27 private flag.
	Private bool
	// Comment is stored in the torrent; "" stores none.
	Comment string
	// CreatedBy names the creating program; "" stores none.
	CreatedBy string
	// Name is the torrent's name; "" uses the base name of the path.
	Name string
	// NoDate leaves out the creation date (making the output reproducible).
	NoDate bool
	// Workers is the number of hashing goroutines; 0 means runtime.NumCPU().
	Workers int
}

// AutoPieceLength returns the piece length Create uses for total bytes of
// content: the smallest power of two from 16 KiB up to 16 MiB that keeps the
// piece count at or under 2000. This matches transmission-create's choices
// (for example 32 KiB under 50 MiB, 1 MiB for 1 GiB) closely.
func AutoPieceLength(total int64) int64 {
	pl := int64(MinCreatePieceLength)
	for pl < MaxCreatePieceLength && total/pl > targetPieces {
		pl *= 2
	}
	return pl
}

// sourceFile is one file found by Create.
type sourceFile struct {
	osPath string
	path   []string
	length int64
}

// Create hashes the file or directory at root and returns a torrent for it.
// A directory's regular files are included, sorted by path; symbolic links to
// regular files are followed, and any other special file (device, socket,
// FIFO, symlink to a directory or a dangling symlink) is an error rather than
// silently left out. Empty directories cannot be represented and do not
// appear. Hashing reads piece-sized chunks across file boundaries on
// opts.Workers goroutines.
func Create(root string, opts CreateOptions) (*MetaInfo, error) {
	return CreateContext(context.Background(), root, opts)
}

// CreateContext is Create that stops hashing and returns an error wrapping
// ctx.Err() when ctx ends.
func CreateContext(ctx context.Context, root string, opts CreateOptions) (*MetaInfo, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("metainfo: create: %w", err)
		}
		name = filepath.Base(abs)
	}
	if err := checkComponent(name); err != nil {
		return nil, fmt.Errorf("%w: torrent name: %w", ErrInvalid, err)
	}
	var files []sourceFile
	switch {
	case st.Mode().IsRegular():
		files = []sourceFile{{osPath: root, path: []string{name}, length: st.Size()}}
	case st.IsDir():
		if files, err = walkFiles(root); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("metainfo: create: %s is not a regular file or directory", root)
	}
	var total int64
	for _, f := range files {
		total += f.length
	}
	if total == 0 {
		return nil, fmt.Errorf("metainfo: create: %s has no content (all files empty)", root)
	}
	pl := opts.PieceLength
	if pl == 0 {
		pl = AutoPieceLength(total)
	}
	if pl < MinCreatePieceLength || pl > MaxCreatePieceLength || pl&(pl-1) != 0 {
		return nil, fmt.Errorf("metainfo: create: piece length %d is not a power of two from 16 KiB to 16 MiB", pl)
	}
	pieces, err := hashFiles(ctx, files, pl, total, opts.Workers)
	if err != nil {
		return nil, err
	}
	infoBytes, err := encodeInfo(name, pl, pieces, files, st.IsDir(), opts)
	if err != nil {
		return nil, err
	}
	mi := &MetaInfo{InfoBytes: infoBytes, Comment: opts.Comment, CreatedBy: opts.CreatedBy, WebSeeds: opts.WebSeeds}
	for _, tier := range opts.Trackers {
		if len(tier) > 0 {
			mi.AnnounceList = append(mi.AnnounceList, tier)
		}
	}
	if len(mi.AnnounceList) > 0 {
		mi.Announce = mi.AnnounceList[0][0]
	}
	if !opts.NoDate {
		mi.CreationDate = time.Now().UTC().Truncate(time.Second)
	}
	// Round trip through the loader so a created torrent is exactly what
	// Load would make of its bytes.
	b, err := mi.Bytes()
	if err != nil {
		return nil, err
	}
	return parseTorrent(b)
}

func walkFiles(root string) ([]sourceFile, error) {
	var files []sourceFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s); remove it or point create at a directory without it", p, st.Mode().Type())
		}
		comps := strings.Split(filepath.ToSlash(rel), "/")
		if err := checkPath(comps, 0); err != nil { // the name is checked with the whole torrent
			return fmt.Errorf("%s: %w", p, err)
		}
		files = append(files, sourceFile{osPath: p, path: comps, length: st.Size()})
		if len(files) > MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("metainfo: create: %s holds no files", root)
	}
	slices.SortFunc(files, func(a, b sourceFile) int { return slices.Compare(a.path, b.path) })
	return files, nil
}

// hashFiles computes the piece hashes of the files' concatenated content.
func hashFiles(ctx context.Context, files []sourceFile, pl, total int64, workers int) ([]byte, error) {
	geo := &Info{PieceLength: pl, TotalLength: total}
	var off int64
	for _, f := range files {
		geo.Files = append(geo.Files, File{Path: f.path, Length: f.length, Offset: off})
		off += f.length
	}
	n := int((total + pl - 1) / pl)
	geo.Pieces = make([]Hash, n)
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := pieceReader{files: files}
			defer r.close()
			buf := make([]byte, pl)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("hashing stopped: %w", err) })
					failed.Store(true)
					return
				}
				data := buf[:geo.PieceSize(i)]
				if err := r.read(geo, data, geo.PieceOffset(i)); err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				geo.Pieces[i] = sha1.Sum(data)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("metainfo: create: %w", firstErr)
	}
	out := make([]byte, 0, n*HashSize)
	for _, h := range geo.Pieces {
		out = append(out, h[:]...)
	}
	return out, nil
}

// pieceReader reads torrent byte ranges from the source files, keeping the
// last opened file open since consecutive pieces mostly hit the same file.
type pieceReader struct {
	files []sourceFile
	cur   int
	f     *os.File
}

func (r *pieceReader) read(geo *Info, data []byte, off int64) error {
	for _, part := range geo.FileParts(off, int64(len(data))) {
		if r.f == nil || r.cur != part.File {
			r.close()
			f, err := os.Open(r.files[part.File].osPath)
			if err != nil {
				return err
			}
			r.f, r.cur = f, part.File
		}
		dst := data[part.TorrentOff-off:][:part.Length]
		if _, err := r.f.ReadAt(dst, part.FileOffset); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s shrank while hashing", r.files[part.File].osPath)
			}
			return err
		}
	}
	return nil
}

func (r *pieceReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// encodeInfo builds the info dictionary's bytes.
func encodeInfo(name string, pl int64, pieces []byte, files []sourceFile, multi bool, opts CreateOptions) ([]byte, error) {
	type fileEntry struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	info := struct {
		Files       []fileEntry `bencode:"files,omitempty"`
		Length      *int64      `bencode:"length"`
		Name        string      `bencode:"name"`
		PieceLength int64       `bencode:"piece length"`
		Pieces      []byte      `bencode:"pieces"`
		Private     bool        `bencode:"private,omitempty"`
	}{Name: name, PieceLength: pl, Pieces: pieces, Private: opts.Private}
	if multi {
		for _, f := range files {
			info.Files = append(info.Files, fileEntry{Length: f.length, Path: f.path})
		}
	} else {
		info.Length = &files[0].length
	}
	return Marshal(info)
}
