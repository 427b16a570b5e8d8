package fs

import (
	"cmp"
	"slices"
	"strings"

	"github.com/swarmfs/swarmfs/metainfo"
)

// fileTable is the directory tree of one torrent's files, built once from
// Info.Files and never changed. It is compact: names are not copied (a
// directory's name is the string of one of its files' path components, a
// file's name the last component of its path), and each directory holds
// two lists of 4-byte references to its children. The mount builds nodes
// from it lazily, as the kernel looks names up, so a torrent of many files
// costs memory in proportion to what is being browsed, not to its size.
//
// A reference (ref) is a file index into Info.Files when >= 0, and ^i for
// directory i when < 0. Directory 0 is the torrent's top directory (the one
// named after the torrent, or the mount root for a single-file torrent).
type fileTable struct {
	info  *metainfo.Info
	dirs  []tableDir
	files int // files reachable in the tree (bad and colliding paths are left out)
}

// tableDir is one directory of the table.
type tableDir struct {
	name string // its path component; "" for directory 0
	// kids lists the children in torrent order (the order of their first
	// file), as readdir shows them; byName the same sorted by name, for
	// lookups (the same slice when kids is sorted already).
	kids, byName []int32
}

// maxTableNodes bounds files plus directories of one table, so that a
// node's number fits in the low inoIndexBits bits of an inode number. A
// .torrent of at most metainfo.MaxTorrentSize bytes cannot describe more.
const (
	inoIndexBits  = 26
	maxTableNodes = 1<<inoIndexBits - 2
)

// skipped describes a file the table left out, for a warning.
type skipped struct {
	file   int
	path   string
	reason string
}

// buildTable builds the table of info's files. Files whose path is not
// usable (bad components) or that collide with an earlier file or
// directory are left out and reported.
func buildTable(info *metainfo.Info) (*fileTable, []skipped) {
	t := &fileTable{info: info, dirs: []tableDir{{}}}
	var skips []skipped
	type dirKey struct {
		parent int32
		name   string
	}
	dirIndex := map[dirKey]int32{}
	var (
		prevPath []string // the path of the last file placed
		prevDirs []int32  // the directories of its components but the last
		// unsorted marks the directories whose children did not come in
		// strictly increasing name order: only those are sorted (and
		// checked for duplicate names) below.
		unsorted = []bool{false}
	)
	// add appends child r, called name, to directory d.
	add := func(d int32, r int32, name string) {
		dir := &t.dirs[d]
		if n := len(dir.kids); n > 0 && !unsorted[d] && t.name(dir.kids[n-1]) >= name {
			unsorted[d] = true
		}
		dir.kids = append(dir.kids, r)
	}
	// Files are nodes 0 to len-1 and directories follow them.
	dirRoom := maxTableNodes - len(info.Files)
	for i, f := range info.Files {
		// Files of one directory mostly follow each other: the previous
		// file's directories are reused while the path agrees with it,
		// and components already checked are not checked again.
		same := 0
		for same < len(prevDirs) && same < len(f.Path)-1 && f.Path[same] == prevPath[same] {
			same++
		}
		if len(f.Path) == 0 || !validComponents(f.Path[same:]) {
			skips = append(skips, skipped{i, f.DisplayPath(), "invalid path"})
			continue
		}
		if len(t.dirs)+len(f.Path)-1-same > dirRoom {
			skips = append(skips, skipped{i, f.DisplayPath(), "too many files and directories"})
			continue
		}
		prevDirs = prevDirs[:same]
		parent := int32(0)
		if same > 0 {
			parent = prevDirs[same-1]
		}
		for _, comp := range f.Path[same : len(f.Path)-1] {
			k := dirKey{parent, comp}
			d, ok := dirIndex[k]
			if !ok {
				d = int32(len(t.dirs))
				t.dirs = append(t.dirs, tableDir{name: comp})
				unsorted = append(unsorted, false)
				add(parent, ^d, comp)
				dirIndex[k] = d
			}
			parent = d
			prevDirs = append(prevDirs, d)
		}
		prevPath = f.Path
		add(parent, int32(i), f.Path[len(f.Path)-1])
	}
	// Sort each directory by name; of several children with one name the
	// first in torrent order stays, the others are left out. Torrents are
	// usually sorted: then byName is kids itself.
	dropped := false
	for d := range t.dirs {
		dir := &t.dirs[d]
		if !unsorted[d] {
			dir.kids = slices.Clip(dir.kids)
			dir.byName = dir.kids
			continue
		}
		dir.byName = slices.Clone(dir.kids)
		slices.SortStableFunc(dir.byName, func(a, b int32) int { return cmp.Compare(t.name(a), t.name(b)) })
		kept := dir.byName[:0]
		for i, r := range dir.byName {
			if i > 0 && t.name(r) == t.name(kept[len(kept)-1]) {
				dropped = true
				continue
			}
			kept = append(kept, r)
		}
		dir.byName = slices.Clip(kept)
	}
	if dropped {
		skips = t.dropCollisions(skips)
	}
	t.files = t.count(0)
	return t, skips
}

// dropCollisions removes from each directory's kids the children that
// sorting left out of byName, and reports the files lost with them.
func (t *fileTable) dropCollisions(skips []skipped) []skipped {
	for d := range t.dirs {
		dir := &t.dirs[d]
		if len(dir.kids) == len(dir.byName) {
			continue
		}
		var kept []int32
		for _, r := range dir.kids {
			if i, ok := t.find(int32(d), t.name(r)); ok && dir.byName[i] == r {
				kept = append(kept, r)
				continue
			}
			t.walkFiles(r, func(f int) {
				skips = append(skips, skipped{f, t.info.Files[f].DisplayPath(), "path collides with another"})
			})
		}
		dir.kids = kept
	}
	slices.SortFunc(skips, func(a, b skipped) int { return cmp.Compare(a.file, b.file) })
	return skips
}

// walkFiles calls f for every file at or below ref.
func (t *fileTable) walkFiles(ref int32, f func(int)) {
	if ref >= 0 {
		f(int(ref))
		return
	}
	for _, r := range t.dirs[^ref].kids {
		t.walkFiles(r, f)
	}
}

// count returns the number of files below directory d.
func (t *fileTable) count(d int32) int {
	n := 0
	for _, r := range t.dirs[d].kids {
		if r >= 0 {
			n++
		} else {
			n += t.count(^r)
		}
	}
	return n
}

// name returns the name of the child ref.
func (t *fileTable) name(ref int32) string {
	if ref < 0 {
		return t.dirs[^ref].name
	}
	p := t.info.Files[ref].Path
	return p[len(p)-1]
}

// find returns the position in byName of directory d's child called name.
func (t *fileTable) find(d int32, name string) (int, bool) {
	return slices.BinarySearchFunc(t.dirs[d].byName, name, func(r int32, name string) int {
		return strings.Compare(t.name(r), name)
	})
}

// lookup returns directory d's child called name.
func (t *fileTable) lookup(d int32, name string) (int32, bool) {
	i, ok := t.find(d, name)
	if !ok {
		return 0, false
	}
	return t.dirs[d].byName[i], true
}

// node returns the number of ref among the table's nodes: files first,
// then directories. Inode numbers are made from it.
func (t *fileTable) node(ref int32) uint64 {
	if ref >= 0 {
		return uint64(ref)
	}
	return uint64(len(t.info.Files)) + uint64(^ref)
}

// validComponents reports whether every path component is usable as a
// directory entry name.
func validComponents(path []string) bool {
	for _, c := range path {
		if c == "" || c == "." || c == ".." || strings.IndexByte(c, '/') >= 0 || strings.IndexByte(c, 0) >= 0 || len(c) > 255 {
			return false
		}
	}
	return true
}
