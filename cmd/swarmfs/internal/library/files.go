package library

import (
	"encoding/json"
	"iter"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Files is the file list of a torrent's snapshot. A list made by InfoFiles
// builds nothing until it is read: a snapshot of a torrent of many files
// costs nothing more than one of a single file, which matters because
// front ends take snapshots of every torrent for every index page, status
// line and metrics scrape, and most of them never look at the files. The
// zero Files is empty. A Files is immutable and safe to share.
type Files struct {
	info *metainfo.Info // the files are info's when set
	list []File         // otherwise these
}

// InfoFiles returns the files of info (nil: none), read from it on demand.
func InfoFiles(info *metainfo.Info) Files { return Files{info: info} }

// FileList returns the files in list, which the caller must not modify
// afterwards.
func FileList(list []File) Files { return Files{list: list} }

// Len returns the number of files.
func (fs Files) Len() int {
	if fs.info != nil {
		return len(fs.info.Files)
	}
	return len(fs.list)
}

// At returns file i, 0 <= i < Len().
func (fs Files) At(i int) File {
	if fs.info != nil {
		f := &fs.info.Files[i]
		return File{Path: f.DisplayPath(), Size: f.Length, Offset: f.Offset}
	}
	return fs.list[i]
}

// All returns the index and the file of each file in order; templates
// range over it.
func (fs Files) All() iter.Seq2[int, File] {
	return func(yield func(int, File) bool) {
		for i := range fs.Len() {
			if !yield(i, fs.At(i)) {
				return
			}
		}
	}
}

// Index returns the index of the file at path p ("/"-separated, as
// File.Path), or -1. It builds no path string.
func (fs Files) Index(p string) int {
	if fs.info == nil {
		for i, f := range fs.list {
			if f.Path == p {
				return i
			}
		}
		return -1
	}
	for i := range fs.info.Files {
		if pathIs(fs.info.Files[i].Path, p) {
			return i
		}
	}
	return -1
}

// pathIs reports whether the components of path, joined with "/", are p.
func pathIs(path []string, p string) bool {
	for i, c := range path {
		if i > 0 {
			if p == "" || p[0] != '/' {
				return false
			}
			p = p[1:]
		}
		if len(p) < len(c) || p[:len(c)] != c {
			return false
		}
		p = p[len(c):]
	}
	return p == "" && len(path) > 0
}

// MarshalJSON writes the files as a JSON array (never null).
func (fs Files) MarshalJSON() ([]byte, error) {
	list := fs.list
	if fs.info != nil {
		list = make([]File, 0, fs.Len())
		for _, f := range fs.All() {
			list = append(list, f)
		}
	}
	if list == nil {
		list = []File{}
	}
	return json.Marshal(list)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (fs *Files) UnmarshalJSON(b []byte) error {
	var list []File
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*fs = Files{}
	if len(list) > 0 {
		*fs = FileList(list)
	}
	return nil
}
