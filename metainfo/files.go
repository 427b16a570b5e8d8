package metainfo

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
)

// A torrent may list a million files, so the file list is parsed without an
// allocation per file or per path component: every kept path's components
// are appended to one byte arena, and each File.Path is a slice of one
// shared []string whose elements are substrings of it. Each entry is decoded by hand (no reflection) in the same pass that
// finds where it ends; only an entry the fast decoder declines goes
// through Unmarshal. That keeps loading fast and the garbage it leaves
// small; the result is the same as decoding each entry on its own.

// fileFields are the keys of one file list entry that swarmfs uses. Byte
// slices point into the info dictionary's bytes.
type fileFields struct {
	length    int64
	hasLength bool
	attr      []byte
	path      [][]byte
	pathUTF8  [][]byte
	hasUTF8   bool
}

func (f *fileFields) reset() {
	*f = fileFields{path: f.path[:0], pathUTF8: f.pathUTF8[:0]}
}

// decodeFileFast decodes the file entry at the start of r, depth levels
// deep, whose keys are
// sorted and whose values have the expected types, into f, and returns the
// entry's length in bytes. It returns false for anything else (unsorted or
// duplicate keys, other types, malformed bencode); the caller then decodes
// the entry with Unmarshal, which accepts or rejects it exactly as it
// always has.
func decodeFileFast(r []byte, f *fileFields, depth int) (int, bool) {
	f.reset()
	if n, ok := decodeFileCanonical(r, f); ok {
		return n, true
	}
	f.reset()
	if len(r) == 0 || r[0] != 'd' {
		return 0, false
	}
	d := decoder{data: r, pos: 1}
	var prev []byte
	for {
		if d.pos >= len(r) {
			return 0, false
		}
		if r[d.pos] == 'e' {
			return d.pos + 1, true
		}
		if c := r[d.pos]; c < '0' || c > '9' {
			return 0, false
		}
		key, err := d.str()
		if err != nil || (prev != nil && bytes.Compare(prev, key) >= 0) {
			return 0, false
		}
		prev = key
		if d.pos >= len(r) {
			return 0, false
		}
		switch string(key) {
		case "length":
			if r[d.pos] != 'i' {
				return 0, false
			}
			n, err := d.integer()
			if err != nil {
				return 0, false
			}
			f.length, f.hasLength = n, true
		case "attr":
			if c := r[d.pos]; c < '0' || c > '9' {
				return 0, false
			}
			if f.attr, err = d.str(); err != nil {
				return 0, false
			}
		case "path":
			if f.path, err = d.strList(f.path); err != nil {
				return 0, false
			}
		case "path.utf-8":
			if f.pathUTF8, err = d.strList(f.pathUTF8); err != nil {
				return 0, false
			}
			f.hasUTF8 = true
		default:
			if d.skipNested(depth+1) != nil {
				return 0, false
			}
		}
	}
}

// decodeFileCanonical decodes the entry at the start of r when it has the
// commonest shape, exactly "d6:lengthi<n>e4:pathl<strings>ee", as
// decodeFileFast would, and reports whether it had.
func decodeFileCanonical(r []byte, f *fileFields) (int, bool) {
	const head, mid = "d6:lengthi", "4:pathl"
	if len(r) < len(head) || string(r[:len(head)]) != head {
		return 0, false
	}
	d := decoder{data: r, pos: len(head) - 1}
	n, err := d.integer()
	if err != nil || len(r)-d.pos < len(mid) || string(r[d.pos:d.pos+len(mid)]) != mid {
		return 0, false
	}
	d.pos += len(mid) - 1 // at the 'l'
	if f.path, err = d.strList(f.path); err != nil || d.pos >= len(r) || r[d.pos] != 'e' {
		return 0, false
	}
	f.length, f.hasLength = n, true
	return d.pos + 1, true
}

// strList decodes a list of byte strings, appending them to dst.
func (d *decoder) strList(dst [][]byte) ([][]byte, error) {
	if d.data[d.pos] != 'l' {
		return dst, d.errf("not a list")
	}
	d.pos++
	for {
		if d.pos >= len(d.data) {
			return dst, d.errf("unterminated list")
		}
		if d.data[d.pos] == 'e' {
			d.pos++
			return dst, nil
		}
		if c := d.data[d.pos]; c < '0' || c > '9' {
			return dst, d.errf("not a string")
		}
		s, err := d.str()
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
}

// decodeFileSlow decodes a file entry with Unmarshal into f.
func decodeFileSlow(r []byte, f *fileFields) error {
	var rf rawFile
	if err := Unmarshal(r, &rf); err != nil {
		return err
	}
	f.reset()
	if rf.Length != nil {
		f.length, f.hasLength = *rf.Length, true
	}
	f.attr = []byte(rawString(rf.Attr))
	for _, c := range rf.Path {
		f.path = append(f.path, []byte(c))
	}
	if len(rf.PathUTF8) > 0 {
		var p []string
		if err := Unmarshal(rf.PathUTF8, &p); err != nil {
			return fmt.Errorf("path.utf-8: %w", err)
		}
		for _, c := range p {
			f.pathUTF8 = append(f.pathUTF8, []byte(c))
		}
		f.hasUTF8 = true
	}
	return nil
}

// fileList is a parsed file list: the files listed (pad files and BEP 47
// symlinks omitted) and the total length, pad files included. The length
// of the paths below the torrent's directory is checked by checkLength
// once the torrent's name is known: in a sorted info dictionary "name"
// comes after "files".
type fileList struct {
	total int64
	files []File
	// longest is the index in the bencoded list of the file with the
	// longest path (the first of them), longestLen that path's length
	// with its components joined by "/".
	longest, longestLen int
}

// checkLength refuses a path longer than PATH_MAX allows below the
// torrent's directory, whose name is nameLen bytes long.
func (l *fileList) checkLength(nameLen int) error {
	if n := nameLen + 1 + l.longestLen; n > MaxPathLength {
		return invalidf("file %d: path of %d bytes with the torrent's name, more than %d (PATH_MAX)", l.longest, n, MaxPathLength)
	}
	return nil
}

// parseFileList parses the file list whose 'l' is at d.pos, depth levels
// deep (at most MaxFiles entries), validates every path but its length
// (see checkLength), and leaves d.pos after the list. Each entry is read
// once: the fast decoder finds where it ends as it decodes it.
func parseFileList(d *decoder, depth int) (*fileList, error) {
	data := d.data
	d.pos++ // 'l'
	var (
		l = &fileList{longest: -1}
		// arena holds the kept paths' components back to back, parts
		// their strings; both are sized from the first entry so that
		// they rarely grow. Substrings of what the arena holds stay
		// valid when it grows (they keep the old buffer), and so do
		// sub-slices of parts: a low guess costs memory, not
		// correctness. Room reserved and never written costs address
		// space, not memory.
		arena strings.Builder
		parts []string
		f     fileFields
	)
	if depth+1 > MaxDepth {
		return nil, fmt.Errorf("%w: info files: %w", ErrInvalid, d.errf("nesting deeper than %d", MaxDepth))
	}
	for i := 0; ; i++ {
		if d.pos >= len(data) {
			return nil, invalidf("info files: unterminated list")
		}
		if data[d.pos] == 'e' {
			d.pos++
			break
		}
		if i == MaxFiles {
			return nil, invalidf("more than %d files", MaxFiles)
		}
		start := d.pos
		n, ok := decodeFileFast(data[start:], &f, depth+1)
		if ok {
			d.pos += n
		} else {
			if err := d.skip(depth + 1); err != nil {
				return nil, fmt.Errorf("%w: info files: %w", ErrInvalid, err)
			}
			if err := decodeFileSlow(data[start:d.pos:d.pos], &f); err != nil {
				return nil, fmt.Errorf("%w: file %d: %w", ErrInvalid, i, err)
			}
		}
		if d.hash != nil {
			d.hash.progress(d.pos)
		}
		if l.files == nil {
			// Entries of one torrent are alike: guess the count from the
			// first one's size and what is left (what follows the list,
			// mostly the pieces, makes it a guess high; the files are
			// trimmed below).
			guess := min((len(data)-start)/(d.pos-start)+16, MaxFiles)
			l.files = make([]File, 0, guess)
			parts = make([]string, 0, guess*max(len(f.path), len(f.pathUTF8), 1))
			arena.Grow((len(data) - start) / 2) // paths are about half of a typical file list
		}
		if !f.hasLength || f.length < 0 {
			return nil, invalidf("file %d: missing or negative length", i)
		}
		if l.total > math.MaxInt64-f.length {
			return nil, invalidf("file %d: total length overflows", i)
		}
		offset := l.total
		l.total += f.length
		if bytes.IndexByte(f.attr, 'p') >= 0 || isLegacyPad(f.path) {
			continue // pad file: bytes count, never shown
		}
		if bytes.IndexByte(f.attr, 'l') >= 0 {
			if f.length != 0 {
				return nil, invalidf("file %d: symlink with length %d", i, f.length)
			}
			continue // BEP 47 symlink: not materialized
		}
		path := f.path
		if f.hasUTF8 {
			path = f.pathUTF8 // the utf-8 variant wins when present
		}
		if err := checkComponents(path); err != nil {
			return nil, fmt.Errorf("%w: file %d: %w", ErrInvalid, i, err)
		}
		from, first, joined := arena.Len(), len(parts), len(path)-1
		for _, c := range path {
			arena.Write(c)
			joined += len(c)
		}
		all := arena.String()
		for _, c := range path {
			parts = append(parts, all[from:from+len(c)])
			from += len(c)
		}
		l.files = append(l.files, File{Path: parts[first:len(parts):len(parts)], Length: f.length, Offset: offset,
			Executable: bytes.IndexByte(f.attr, 'x') >= 0, Hidden: bytes.IndexByte(f.attr, 'h') >= 0})
		if joined > l.longestLen {
			l.longest, l.longestLen = i, joined
		}
	}
	if len(l.files) == 0 {
		return nil, invalidf("file list has no files besides padding")
	}
	l.trim(&arena, parts)
	if err := checkCollisions(l.files); err != nil {
		return nil, err
	}
	return l, nil
}

// trim gives back the room that guessing the list's size from its first
// entry left unused in the files, their path parts (parts) and the arena
// that holds the paths' bytes. A list followed by a long pieces string
// makes the guesses far too high.
func (l *fileList) trim(arena *strings.Builder, parts []string) {
	if cap(l.files) > len(l.files)+len(l.files)/8+16 {
		l.files = slices.Clone(l.files)
	}
	if cap(parts) <= len(parts)+len(parts)/8+16 && arena.Cap() <= 2*arena.Len()+4096 {
		return
	}
	all := arena.String()
	if arena.Cap() > 2*len(all)+4096 {
		all = strings.Clone(all)
	}
	// The parts lie back to back in the arena, in order.
	exact := make([]string, len(parts))
	off := 0
	for k, c := range parts {
		exact[k] = all[off : off+len(c)]
		off += len(c)
	}
	k := 0
	for i := range l.files {
		n := len(l.files[i].Path)
		l.files[i].Path = exact[k : k+n : k+n]
		k += n
	}
}

// checkCollisions rejects two files with the same path and a file whose
// path is also a directory of another file (a/b and a/b/c). In the order
// of paths compared component by component, a file's descendants come
// right after it, so comparing neighbours finds both; lists are usually in
// that order already (then one pass over neighbours does it all), and are
// sorted (by index, without touching files) only when not.
func checkCollisions(files []File) error {
	for i := 1; i < len(files); i++ {
		c, err := neighbours(files[i-1].Path, files[i].Path)
		if err != nil {
			return err
		}
		if c > 0 {
			return checkCollisionsSorted(files)
		}
	}
	return nil
}

// checkCollisionsSorted is checkCollisions for files not in order.
func checkCollisionsSorted(files []File) error {
	order := make([]int32, len(files))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return comparePaths(files[a].Path, files[b].Path) })
	for i := 1; i < len(order); i++ {
		if _, err := neighbours(files[order[i-1]].Path, files[order[i]].Path); err != nil {
			return err
		}
	}
	return nil
}

// neighbours compares paths p and q as comparePaths does and, when p does
// not sort after q, reports a collision between them: the same path, or p
// a directory of q.
func neighbours(p, q []string) (int, error) {
	n := min(len(p), len(q))
	for i := range n {
		if c := strings.Compare(p[i], q[i]); c != 0 {
			return c, nil
		}
	}
	switch {
	case len(p) == len(q):
		return 0, fmt.Errorf("%w: duplicate file path %q", ErrInvalid, strings.Join(p, "/"))
	case len(p) < len(q):
		return -1, fmt.Errorf("%w: %q is both a file and a directory", ErrInvalid, strings.Join(p, "/"))
	}
	return 1, nil
}

// comparePaths compares two paths component by component; a path sorts
// before the paths below it.
func comparePaths(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
