package fs

import (
	"context"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swarmfs/swarmfs/metainfo"
)

// entry is one mounted torrent: the torrent, its cleaned directory name and
// the table its files are served from.
type entry struct {
	t     Torrent
	hash  metainfo.Hash
	name  string    // cleaned, deduplicated directory name
	mtime time.Time // creation date, or the mount time
	// inoBase holds the high bits of every inode number of the torrent's
	// nodes; the low inoIndexBits bits are the node's number in the table.
	inoBase uint64
	// gen is the generation of the torrent's nodes: 0 for the torrents a
	// mount starts with, a new number for each AddTorrent, so a torrent
	// removed and added again gets new nodes.
	gen uint64
	// table is set once, when the torrent's info is known.
	table atomic.Pointer[fileTable]
	// gone is closed when the torrent is removed from the mount.
	gone chan struct{}
}

// removed reports whether the torrent was removed from the mount.
func (e *entry) removed() bool {
	select {
	case <-e.gone:
		return true
	default:
		return false
	}
}

// dirIno is the inode number of the torrent's directory.
func (e *entry) dirIno() uint64 { return e.inoBase | (1<<inoIndexBits - 1) }

// ino returns the inode number of the table node ref.
func (e *entry) ino(t *fileTable, ref int32) uint64 { return e.inoBase | (t.node(ref) + 1) }

// dirNode is a directory: the mount root, a torrent's directory or a
// directory inside a torrent. A directory of the torrent's file table
// (tdir >= 0) answers Lookup and Readdir from the table and makes child
// nodes as they are looked up, so only what the kernel holds is in memory.
// The root of several torrents, and the root above the directory of one
// (tdir < 0), answer from the mount's torrent set and make the torrents'
// directories as they are looked up.
type dirNode struct {
	fusefs.Inode
	m    *Server
	e    *entry // nil for the root of a mount of several torrents
	tdir int32  // directory in e's table; -1 for a root holding torrent directories
}

// fileNode is one file of a torrent. It is immutable.
type fileNode struct {
	fusefs.Inode
	m     *Server
	e     *entry
	index int // into Info.Files
	file  metainfo.File
	info  *metainfo.Info
}

var (
	_ fusefs.NodeLookuper    = (*dirNode)(nil)
	_ fusefs.NodeReaddirer   = (*dirNode)(nil)
	_ fusefs.NodeGetattrer   = (*dirNode)(nil)
	_ fusefs.NodeStatfser    = (*dirNode)(nil)
	_ fusefs.NodeGetxattrer  = (*dirNode)(nil)
	_ fusefs.NodeListxattrer = (*dirNode)(nil)

	_ fusefs.NodeOpener      = (*fileNode)(nil)
	_ fusefs.NodeGetattrer   = (*fileNode)(nil)
	_ fusefs.NodeStatfser    = (*fileNode)(nil)
	_ fusefs.NodeGetxattrer  = (*fileNode)(nil)
	_ fusefs.NodeListxattrer = (*fileNode)(nil)
)

const (
	dirMode  = 0o555
	fileMode = 0o444
	execMode = 0o555
	// attrBlksize is st_blksize of files: tools such as cat and cp size
	// their reads by it, and large reads are cheaper through FUSE.
	attrBlksize = 1 << 20
)

// layoutRoot decides the root's layout: in a mount that is not dynamic,
// one torrent with known single-file info puts its file at the root (the
// root is the table's directory 0); in any other case the root holds one
// directory per torrent. It builds the tables of the torrents whose info
// is known and returns the root node.
func (m *Server) layoutRoot() *dirNode {
	entries := m.set.Load().list
	for _, e := range entries {
		if info := e.t.Info(); info != nil {
			m.setTable(e, info)
		}
	}
	if len(entries) == 1 && !m.dynamic {
		e := entries[0]
		if t := e.table.Load(); t != nil && t.info.SingleFile {
			return &dirNode{m: m, e: e, tdir: 0}
		}
		return &dirNode{m: m, e: e, tdir: -1}
	}
	return &dirNode{m: m, tdir: -1}
}

// setTable builds the table of e's files and publishes it, once.
func (m *Server) setTable(e *entry, info *metainfo.Info) {
	if e.table.Load() != nil {
		return
	}
	t, skips := buildTable(info)
	for _, s := range skips {
		m.log.Warn("skipping file: "+s.reason, "torrent", e.name, "file", s.file, "path", s.path)
	}
	e.table.CompareAndSwap(nil, t)
}

// Lookup finds a child by name, making its node if the kernel does not
// hold it already.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if d.tdir < 0 {
		return d.lookupTorrent(ctx, name, out)
	}
	if d.e.removed() {
		return nil, syscall.ENOENT
	}
	if child := d.GetChild(name); child != nil {
		var a fuse.AttrOut
		child.Operations().(fusefs.NodeGetattrer).Getattr(ctx, nil, &a)
		out.Attr = a.Attr
		return child, 0
	}
	t := d.e.table.Load()
	if t == nil {
		return nil, syscall.ENOENT
	}
	ref, ok := t.lookup(d.tdir, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	var a fuse.AttrOut
	var child *fusefs.Inode
	if ref < 0 {
		n := &dirNode{m: d.m, e: d.e, tdir: ^ref}
		n.Getattr(ctx, nil, &a)
		child = d.NewInode(ctx, n, fusefs.StableAttr{Mode: fuse.S_IFDIR, Ino: d.e.ino(t, ref), Gen: d.e.gen})
	} else {
		n := &fileNode{m: d.m, e: d.e, index: int(ref), file: t.info.Files[ref], info: t.info}
		n.Getattr(ctx, nil, &a)
		child = d.NewInode(ctx, n, fusefs.StableAttr{Mode: fuse.S_IFREG, Ino: d.e.ino(t, ref), Gen: d.e.gen})
	}
	out.Attr = a.Attr
	return child, 0
}

// lookupTorrent finds a torrent's directory in a root that holds them
// (only its own torrent's, for the root above a single torrent).
func (d *dirNode) lookupTorrent(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	e := d.m.set.Load().byName[name]
	if e == nil || d.e != nil && d.e != e {
		return nil, syscall.ENOENT
	}
	n := &dirNode{m: d.m, e: e}
	var a fuse.AttrOut
	n.Getattr(ctx, nil, &a)
	out.Attr = a.Attr
	if d.m.dynamic {
		out.SetEntryTimeout(dynamicEntryTimeout)
	}
	return d.NewInode(ctx, n, fusefs.StableAttr{Mode: fuse.S_IFDIR, Ino: e.dirIno(), Gen: e.gen}), 0
}

// Readdir lists the directory: the torrents' directories in mount order,
// or the table's children in torrent order.
func (d *dirNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	if d.tdir < 0 {
		var list []fuse.DirEntry
		for _, e := range d.m.set.Load().list {
			if d.e == nil || d.e == e {
				list = append(list, fuse.DirEntry{Name: e.name, Mode: fuse.S_IFDIR, Ino: e.dirIno()})
			}
		}
		return fusefs.NewListDirStream(list), 0
	}
	t := d.e.table.Load()
	if t == nil {
		return fusefs.NewListDirStream(nil), 0
	}
	return &tableStream{e: d.e, t: t, kids: t.dirs[d.tdir].kids}, 0
}

// tableStream lists a table directory's children without copying them.
type tableStream struct {
	e    *entry
	t    *fileTable
	kids []int32
}

var _ fusefs.DirStream = (*tableStream)(nil)

func (s *tableStream) HasNext() bool { return len(s.kids) > 0 }

func (s *tableStream) Next() (fuse.DirEntry, syscall.Errno) {
	ref := s.kids[0]
	s.kids = s.kids[1:]
	mode := uint32(fuse.S_IFREG)
	if ref < 0 {
		mode = fuse.S_IFDIR
	}
	return fuse.DirEntry{Name: s.t.name(ref), Mode: mode, Ino: s.e.ino(s.t, ref)}, 0
}

func (s *tableStream) Close() {}

// cleanName turns a torrent name into a single path component.
func cleanName(name string, hash metainfo.Hash) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if len(name) > 200 {
		name = name[:200]
	}
	if name == "" || name == "." || name == ".." {
		return hash.String()
	}
	return name
}

// inoBase returns the high bits of the inode numbers of a torrent's nodes:
// a hash of the info hash, so the same torrent gets the same numbers on
// every mount, moved on past the bases in used (and the root's number) in
// the unlikely case of a collision.
func inoBase(hash metainfo.Hash, used map[uint64]bool) uint64 {
	h := fnv.New64a()
	h.Write(hash[:])
	// Below go-fuse's automatic range (2^63 and up).
	const bases = 1 << (63 - inoIndexBits)
	b := h.Sum64() % bases
	for b == 0 || used[b] {
		b = (b + 1) % bases
	}
	used[b] = true
	return b << inoIndexBits
}

// Getattr reports a read-only directory.
func (d *dirNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | dirMode
	out.Nlink = 1 // unknown subdirectory count: tools must not guess from it
	t := d.m.set.Load().changed
	if d.e != nil {
		t = d.e.mtime
	}
	out.SetTimes(&t, &t, &t)
	out.Blksize = 4096
	return 0
}

// Getattr reports the file's size, mode and the torrent's creation date.
func (f *fileNode) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	mode := uint32(fileMode)
	if f.file.Executable {
		mode = execMode
	}
	out.Mode = fuse.S_IFREG | mode
	out.Nlink = 1
	out.Size = uint64(f.file.Length)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = attrBlksize
	t := f.e.mtime
	out.SetTimes(&t, &t, &t)
	return 0
}

// Statfs reports the mount as a full, read-only filesystem whose size is
// the total size of its torrents.
func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.m.statfs(out)
	return 0
}

// Statfs is the same for every node.
func (f *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	f.m.statfs(out)
	return 0
}

func (m *Server) statfs(out *fuse.StatfsOut) {
	const bsize = 4096
	var total, files int64
	for _, e := range m.set.Load().list {
		if t := e.table.Load(); t != nil {
			total += t.info.TotalLength
			files += int64(t.files)
		}
	}
	*out = fuse.StatfsOut{}
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = uint64((total + bsize - 1) / bsize)
	out.Files = uint64(files)
	out.NameLen = 255
}

// Open gives the handle its own FileReader, kept until the handle is
// released. Writes are refused. OpenFile gets a context bounded like a
// read's: an open that cannot get its reader fails (EIO, EINTR when
// interrupted) instead of hanging.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.m.ctx.Err() != nil {
		return nil, 0, syscall.EIO
	}
	if f.e.removed() {
		return nil, 0, syscall.ENOENT
	}
	octx, done := f.m.boundCtx(ctx)
	defer done()
	r, err := f.e.t.OpenFile(octx, f.index)
	if err != nil {
		f.m.log.Warn("open failed", "torrent", f.e.name, "path", f.file.DisplayPath(), "err", err)
		return nil, 0, translate(octx, err)
	}
	fuseFlags := uint32(fuse.FOPEN_KEEP_CACHE)
	if f.m.direct == PageCacheNever || (f.m.direct == PageCacheAuto && !f.complete()) {
		fuseFlags = fuse.FOPEN_DIRECT_IO
	}
	return &handle{m: f.m, f: f, r: r}, fuseFlags, 0
}

// complete reports whether every byte of the file is verified.
func (f *fileNode) complete() bool { return f.e.t.FileComplete(f.index) }
