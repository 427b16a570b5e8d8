package fs

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Extended attribute names served on every file and directory.
const (
	XattrInfoHash = "user.swarmfs.infohash"
	XattrProgress = "user.swarmfs.progress"
	XattrPieces   = "user.swarmfs.pieces"
	XattrStatus   = "user.swarmfs.status"
	// XattrPrefetch is set, never read: `setfattr -n user.swarmfs.prefetch
	// -v OFFSET[+LEN]|all FILE` fetches that range of FILE in the
	// background (see Prefetcher).
	XattrPrefetch = "user.swarmfs.prefetch"
)

var _ fusefs.NodeSetxattrer = (*fileNode)(nil)

// maxPieceMap is the longest user.swarmfs.pieces value, below the kernel's
// 64 KiB limit on an attribute.
const maxPieceMap = 60000

var xattrNames = []string{XattrInfoHash, XattrProgress, XattrPieces, XattrStatus}

// xattrList is the Listxattr reply: the names, each NUL-terminated.
var xattrList = func() string {
	var b strings.Builder
	for _, n := range xattrNames {
		b.WriteString(n)
		b.WriteByte(0)
	}
	return b.String()
}()

// Getxattr serves the swarmfs attributes of a directory: those of its
// torrent, or for the root of several torrents a summary of all of them.
func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.swarmfs.") {
		return 0, syscall.ENODATA
	}
	var v string
	var ok bool
	if d.e == nil {
		v, ok = d.m.rootXattr(attr)
	} else {
		v, ok = torrentXattr(d.e, attr)
	}
	return xattrReply(v, ok, dest)
}

// Listxattr lists the swarmfs attributes.
func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return xattrReply(xattrList, true, dest)
}

// Getxattr serves the swarmfs attributes of a file, computed over the pieces
// that hold the file.
func (f *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.swarmfs.") {
		return 0, syscall.ENODATA
	}
	v, ok := f.xattr(attr)
	return xattrReply(v, ok, dest)
}

// Listxattr lists the swarmfs attributes.
func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return xattrReply(xattrList, true, dest)
}

// xattrReply implements the getxattr size protocol: an empty dest asks for
// the size, a too small one gets ERANGE.
func xattrReply(v string, ok bool, dest []byte) (uint32, syscall.Errno) {
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func torrentXattr(e *entry, attr string) (string, bool) {
	switch attr {
	case XattrInfoHash:
		return e.hash.String(), true
	case XattrProgress:
		st := e.t.Status()
		return progress(st.Verified, st.Total), true
	case XattrPieces:
		st := e.t.Status()
		return pieceMap(st.Pieces, 0, len(st.Pieces)), true
	case XattrStatus:
		return e.t.Status().Text, true
	}
	return "", false
}

func (f *fileNode) xattr(attr string) (string, bool) {
	if attr == XattrInfoHash {
		return f.e.hash.String(), true
	}
	if attr != XattrProgress && attr != XattrPieces && attr != XattrStatus {
		return "", false
	}
	st := f.e.t.Status()
	first, end := f.info.FileSpan(f.file)
	switch attr {
	case XattrProgress:
		return progress(fileVerified(f.info, f.file, st.Pieces), f.file.Length), true
	case XattrPieces:
		return pieceMap(st.Pieces, first, end), true
	default:
		return st.Text, true
	}
}

// fileVerified returns how many bytes of file f lie in verified pieces.
func fileVerified(info *metainfo.Info, f metainfo.File, pieces []bool) int64 {
	first, end := info.FileSpan(f)
	fileEnd := f.Offset + f.Length
	var n int64
	for p := first; p < end && p < len(pieces); p++ {
		if !pieces[p] {
			continue
		}
		s := max(info.PieceOffset(p), f.Offset)
		e := min(info.PieceOffset(p)+info.PieceSize(p), fileEnd)
		if e > s {
			n += e - s
		}
	}
	return n
}

func (m *Server) rootXattr(attr string) (string, bool) {
	var parts []string
	entries := m.set.Load().list
	switch attr {
	case XattrInfoHash:
		for _, e := range entries {
			parts = append(parts, e.hash.String())
		}
		return strings.Join(parts, " "), true
	case XattrProgress:
		var v, t int64
		for _, e := range entries {
			st := e.t.Status()
			v += st.Verified
			t += st.Total
		}
		return progress(v, t), true
	case XattrStatus:
		for _, e := range entries {
			parts = append(parts, e.name+": "+e.t.Status().Text)
		}
		return strings.Join(parts, "\n"), true
	case XattrPieces:
		for _, e := range entries {
			st := e.t.Status()
			parts = append(parts, pieceMap(st.Pieces, 0, len(st.Pieces)))
		}
		v := strings.Join(parts, " ")
		if len(v) > maxPieceMap {
			v = v[:maxPieceMap]
		}
		return v, true
	}
	return "", false
}

func progress(verified, total int64) string {
	return strconv.FormatInt(verified, 10) + "/" + strconv.FormatInt(total, 10)
}

// pieceMap renders pieces [first, end) as one character per piece: '#'
// verified, '.' missing. When there are more than maxPieceMap pieces, each
// character stands for a run of g consecutive pieces (g the smallest that
// fits): '#' all verified, '.' none, '+' some. Pieces beyond len(pieces)
// count as missing.
func pieceMap(pieces []bool, first, end int) string {
	n := end - first
	if n <= 0 {
		return ""
	}
	g := (n + maxPieceMap - 1) / maxPieceMap
	b := make([]byte, 0, (n+g-1)/g)
	for s := first; s < end; s += g {
		have := 0
		e := min(s+g, end)
		for p := s; p < e; p++ {
			if p >= 0 && p < len(pieces) && pieces[p] {
				have++
			}
		}
		switch have {
		case e - s:
			b = append(b, '#')
		case 0:
			b = append(b, '.')
		default:
			b = append(b, '+')
		}
	}
	return string(b)
}

// Setxattr serves user.swarmfs.prefetch: it asks the torrent for the range
// the value names and returns at once. A malformed value or range gives
// EINVAL, a torrent removed from a dynamic mount ENOENT (as Open does);
// every other attribute is refused with EROFS, like any change to the
// mount (readonly.go).
func (f *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if attr != XattrPrefetch {
		return syscall.EROFS
	}
	if f.e.removed() {
		return syscall.ENOENT
	}
	p, ok := f.e.t.(Prefetcher)
	if !ok {
		return syscall.ENOTSUP
	}
	if err := p.Prefetch(f.index, data); err != nil {
		if errors.Is(err, ErrBadValue) {
			return syscall.EINVAL
		}
		f.m.log.Warn("prefetch failed", "torrent", f.e.name, "path", f.file.DisplayPath(), "err", err)
		return syscall.EIO
	}
	return 0
}
