package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/metainfo"
)

// importResult reports one piece verified from existing data, or the end
// of the import (done).
type importResult struct {
	piece int
	ok    bool
	done  bool
	err   error
	good  int // pieces imported, with done
}

// startImport verifies the data in dir into the cache in a worker.
func (ls *loopState) startImport(dir string) {
	t, st, info := ls.t, ls.store(), ls.info()
	ls.importing = true
	have := st.Bitfield()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		post := func(r importResult) bool {
			select {
			case t.events <- r:
				return true
			case <-t.closing:
				return false
			}
		}
		good, err := importData(dir, info, st, have, func(i int) bool { return post(importResult{piece: i, ok: true}) }, t.closing)
		post(importResult{done: true, err: err, good: good})
	}()
}

func (ls *loopState) onImport(r importResult) {
	if r.done {
		ls.importing = false
		ls.publish() // Stats no longer says "verifying" once ImportDone is closed
		ls.t.endImport()
		if r.err != nil {
			ls.t.log.Warn("import of existing data", "dir", ls.t.opt.Import, "err", r.err)
		} else {
			ls.t.log.Info("imported existing data", "dir", ls.t.opt.Import, "pieces", r.good)
		}
		return
	}
	if r.ok && !ls.pk.Have(r.piece) {
		ls.pk.SetHave(r.piece, true)
		ls.announceHave(r.piece)
		ls.checkComplete()
		ls.cancelUnwanted()
		ls.dirty = true
	}
}

// importData reads each piece of info that have lacks from the files under
// dir and stores it with WritePiece, which verifies it. Pieces that do not
// verify or whose files are missing are skipped. It returns the number of
// pieces stored; the error reports a problem with dir as a whole.
func importData(dir string, info *metainfo.Info, st *cache.Store, have []bool, stored func(int) bool, stop <-chan struct{}) (int, error) {
	root, err := importRoot(dir, info)
	if err != nil {
		return 0, err
	}
	files := make(map[int]*os.File)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(i int) (*os.File, error) {
		if f, ok := files[i]; ok {
			return f, nil
		}
		var path string
		if info.SingleFile {
			path = root
		} else {
			path = filepath.Join(append([]string{root}, info.Files[i].Path...)...)
		}
		f, err := os.Open(path)
		if err != nil {
			files[i] = nil
			return nil, err
		}
		files[i] = f
		return f, nil
	}
	buf := make([]byte, info.PieceLength)
	good := 0
	for i := 0; i < info.NumPieces(); i++ {
		select {
		case <-stop:
			return good, errors.New("engine: import stopped")
		default:
		}
		if i < len(have) && have[i] {
			continue
		}
		size := info.PieceSize(i)
		data := buf[:size]
		clear(data) // pad files read as zeros
		ok := true
		for _, part := range info.FileParts(info.PieceOffset(i), size) {
			f, err := open(part.File)
			if f == nil || err != nil {
				ok = false
				break
			}
			at := part.TorrentOff - info.PieceOffset(i)
			if _, err := f.ReadAt(data[at:at+part.Length], part.FileOffset); err != nil {
				ok = false // missing or short file: the piece cannot verify
				break
			}
		}
		if !ok {
			continue
		}
		if err := st.WritePiece(i, data); err != nil {
			if errors.Is(err, cache.ErrHashMismatch) {
				continue
			}
			return good, fmt.Errorf("engine: import piece %d: %w", i, err)
		}
		good++
		if !stored(i) {
			return good, errors.New("engine: import stopped")
		}
	}
	return good, nil
}

// importRoot finds where the torrent's content lies under dir: DIR/NAME
// (a file for single-file torrents, a directory otherwise), or DIR itself
// when it is the file or holds the files directly.
func importRoot(dir string, info *metainfo.Info) (string, error) {
	cand := filepath.Join(dir, info.Name)
	if fi, err := os.Stat(cand); err == nil && fi.IsDir() != info.SingleFile {
		return cand, nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("engine: import: %w", err)
	}
	if fi.IsDir() != info.SingleFile {
		return dir, nil
	}
	return "", fmt.Errorf("engine: import: %s holds no %q", dir, info.Name)
}
