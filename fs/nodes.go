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
// the directory inode its files go into.
type entry struct {
	t     Torrent
	hash  metainfo.Hash
	name  string    // cleaned, deduplicated directory name
	mtime time.Time // creation date, or the mount time
	// info is set once, when the files have been added to the tree.
	info atomic.Pointer[metainfo.Info]
}

// dirNode is a directory: the mount root, a torrent's directory or a
// directory inside a torrent. Its children are added when the torrent's info
// is known and never change afterwards.
type dirNode struct {
	fusefs.Inode
	m *Server
	e *entry // nil for the root of a mount of several torrents
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
	_ fusefs.NodeOnAdder     = (*dirNode)(nil)
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

// OnAdd builds the tree of the root directory: it runs once, when the root
// is attached to the server, before any request is served.
func (d *dirNode) OnAdd(ctx context.Context) {
	if !d.IsRoot() {
		return
	}
	d.m.buildRoot(ctx, &d.Inode)
}

// buildRoot lays out the torrents under the root: one torrent with known
// single-file info puts its file at the root, one torrent otherwise gets its
// directory at the root, several torrents get one directory each.
func (m *Server) buildRoot(ctx context.Context, root *fusefs.Inode) {
	if len(m.entries) == 1 {
		e := m.entries[0]
		if info := e.t.Info(); info != nil && info.SingleFile {
			m.addFiles(ctx, root, e, info)
			return
		}
	}
	for _, e := range m.entries {
		dir := root.NewPersistentInode(ctx, &dirNode{m: m, e: e},
			fusefs.StableAttr{Mode: fuse.S_IFDIR, Ino: m.ino(e.hash, nil)})
		root.AddChild(e.name, dir, false)
		if info := e.t.Info(); info != nil {
			m.addFiles(ctx, dir, e, info)
		} else {
			m.pending = append(m.pending, pendingDir{e: e, dir: dir})
		}
	}
}

// pendingDir is a torrent directory waiting for its info (a magnet).
type pendingDir struct {
	e   *entry
	dir *fusefs.Inode
}

// addFiles adds every file of info below dir, creating the intermediate
// directories. It runs once per torrent.
func (m *Server) addFiles(ctx context.Context, dir *fusefs.Inode, e *entry, info *metainfo.Info) {
	if !e.info.CompareAndSwap(nil, info) {
		return
	}
	for i, f := range info.Files {
		if len(f.Path) == 0 || !validComponents(f.Path) {
			m.log.Warn("skipping file with an invalid path", "torrent", e.name, "file", i, "path", f.DisplayPath())
			continue
		}
		parent := dir
		ok := true
		for k, comp := range f.Path[:len(f.Path)-1] {
			child := parent.GetChild(comp)
			if child == nil {
				child = parent.NewPersistentInode(ctx, &dirNode{m: m, e: e},
					fusefs.StableAttr{Mode: fuse.S_IFDIR, Ino: m.ino(e.hash, f.Path[:k+1])})
				parent.AddChild(comp, child, false)
			} else if !child.IsDir() {
				ok = false
				break
			}
			parent = child
		}
		name := f.Path[len(f.Path)-1]
		if !ok || parent.GetChild(name) != nil {
			m.log.Warn("skipping file whose path collides with another", "torrent", e.name, "path", f.DisplayPath())
			continue
		}
		fn := &fileNode{m: m, e: e, index: i, file: f, info: info}
		child := parent.NewPersistentInode(ctx, fn, fusefs.StableAttr{Mode: fuse.S_IFREG, Ino: m.ino(e.hash, f.Path)})
		parent.AddChild(name, child, false)
		m.nodes.Add(1)
	}
}

// validComponents reports whether every path component is usable as a
// directory entry name.
func validComponents(path []string) bool {
	for _, c := range path {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\x00") || len(c) > 255 {
			return false
		}
	}
	return true
}

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

// ino returns a stable inode number for the path below a torrent: a hash of
// the info hash and the path, probed forward on the (unlikely) collision, so
// the same torrent gets the same numbers on every mount.
func (m *Server) ino(hash metainfo.Hash, path []string) uint64 {
	h := fnv.New64a()
	h.Write(hash[:])
	for _, c := range path {
		h.Write([]byte{'/'})
		h.Write([]byte(c))
	}
	n := h.Sum64() >> 1 // below go-fuse's automatic range (2^63 and up)
	m.inoMu.Lock()
	defer m.inoMu.Unlock()
	for n < 2 || m.inos[n] {
		n = (n + 1) & (1<<63 - 1)
	}
	m.inos[n] = true
	return n
}

// Getattr reports a read-only directory.
func (d *dirNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | dirMode
	out.Nlink = 1 // unknown subdirectory count: tools must not guess from it
	t := d.m.mountTime
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
	var total int64
	for _, e := range m.entries {
		if info := e.info.Load(); info != nil {
			total += info.TotalLength
		}
	}
	*out = fuse.StatfsOut{}
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = uint64((total + bsize - 1) / bsize)
	out.Files = uint64(m.nodes.Load())
	out.NameLen = 255
}

// Open gives the handle its own FileReader, kept until the handle is
// released. Writes are refused.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.m.ctx.Err() != nil {
		return nil, 0, syscall.EIO
	}
	r, err := f.e.t.OpenFile(ctx, f.index)
	if err != nil {
		f.m.log.Warn("open failed", "torrent", f.e.name, "path", f.file.DisplayPath(), "err", err)
		return nil, 0, translate(ctx, err)
	}
	fuseFlags := uint32(fuse.FOPEN_KEEP_CACHE)
	if f.m.direct == PageCacheNever || (f.m.direct == PageCacheAuto && !f.complete()) {
		fuseFlags = fuse.FOPEN_DIRECT_IO
	}
	return &handle{m: f.m, f: f, r: r}, fuseFlags, 0
}

// complete reports whether every byte of the file is verified.
func (f *fileNode) complete() bool { return f.e.t.FileComplete(f.index) }
