package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The kernel mount is made without "ro" so that setxattr of
// user.swarmfs.prefetch reaches Setxattr (the kernel refuses every
// setxattr on a read-only mount before asking the filesystem). The
// filesystem itself is read-only: every request that would change it is
// answered here with EROFS, the errno programs expect from a read-only
// filesystem. Without these methods go-fuse would answer ENOTSUP or
// ENOATTR for most of them, and success for unlink and rmdir (dropping
// the entry from its own tree).

var (
	_ fusefs.NodeAccesser      = (*dirNode)(nil)
	_ fusefs.NodeSetattrer     = (*dirNode)(nil)
	_ fusefs.NodeSetxattrer    = (*dirNode)(nil)
	_ fusefs.NodeRemovexattrer = (*dirNode)(nil)
	_ fusefs.NodeCreater       = (*dirNode)(nil)
	_ fusefs.NodeTmpfiler      = (*dirNode)(nil)
	_ fusefs.NodeMkdirer       = (*dirNode)(nil)
	_ fusefs.NodeMknoder       = (*dirNode)(nil)
	_ fusefs.NodeSymlinker     = (*dirNode)(nil)
	_ fusefs.NodeLinker        = (*dirNode)(nil)
	_ fusefs.NodeUnlinker      = (*dirNode)(nil)
	_ fusefs.NodeRmdirer       = (*dirNode)(nil)
	_ fusefs.NodeRenamer       = (*dirNode)(nil)
	_ fusefs.NodeFsyncer       = (*dirNode)(nil)
	_ fusefs.NodeIoctler       = (*dirNode)(nil)

	_ fusefs.NodeAccesser       = (*fileNode)(nil)
	_ fusefs.NodeSetattrer      = (*fileNode)(nil)
	_ fusefs.NodeRemovexattrer  = (*fileNode)(nil)
	_ fusefs.NodeWriter         = (*fileNode)(nil)
	_ fusefs.NodeAllocater      = (*fileNode)(nil)
	_ fusefs.NodeCopyFileRanger = (*fileNode)(nil)
	_ fusefs.NodeFsyncer        = (*fileNode)(nil)
	_ fusefs.NodeIoctler        = (*fileNode)(nil)
)

// access mask bits (access(2)).
const (
	accessWrite = 2 // W_OK
	accessExec  = 1 // X_OK
)

// Access answers access(2) and chdir: any write is refused with EROFS (as
// access(W_OK) on a read-only filesystem is); reading and searching a
// directory are allowed to everyone who can reach the mount, as its 0555
// mode says.
func (d *dirNode) Access(ctx context.Context, mask uint32) syscall.Errno {
	if mask&accessWrite != 0 {
		return syscall.EROFS
	}
	return 0
}

// Access refuses writes with EROFS and execution of a file the torrent
// does not mark executable with EACCES; reading is allowed to everyone who
// can reach the mount (mode 0444 or 0555).
func (f *fileNode) Access(ctx context.Context, mask uint32) syscall.Errno {
	if mask&accessWrite != 0 {
		return syscall.EROFS
	}
	if mask&accessExec != 0 && !f.file.Executable {
		return syscall.EACCES
	}
	return 0
}

// Setattr refuses chmod, chown, truncate and utimes.
func (d *dirNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Setattr refuses chmod, chown, truncate and utimes.
func (f *fileNode) Setattr(ctx context.Context, fh fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Setxattr refuses every attribute of a directory. user.swarmfs.prefetch
// names a range of a file, so on a directory it gives EISDIR.
func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if attr == XattrPrefetch {
		return syscall.EISDIR
	}
	return syscall.EROFS
}

// Removexattr refuses to remove attributes.
func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EROFS
}

// Removexattr refuses to remove attributes.
func (f *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EROFS
}

// Create refuses to create a file (open with O_CREAT of a new name).
func (d *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

// Tmpfile refuses open with O_TMPFILE.
func (d *dirNode) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

// Mkdir refuses to make a directory.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Mknod refuses to make a node (mkfifo, mknod).
func (d *dirNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Symlink refuses to make a symbolic link.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Link refuses to make a hard link.
func (d *dirNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// Unlink refuses to remove a file.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return syscall.EROFS
}

// Rmdir refuses to remove a directory.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return syscall.EROFS
}

// Rename refuses to rename or exchange entries.
func (d *dirNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

// Write refuses to write. Open gives no handle that can write, so the
// kernel has no reason to send one; this is the answer if it does.
func (f *fileNode) Write(ctx context.Context, fh fusefs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

// Allocate refuses fallocate (like Write, the kernel sends it only for a
// handle open for writing, which Open never gives).
func (f *fileNode) Allocate(ctx context.Context, fh fusefs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EROFS
}

// CopyFileRange refuses copy_file_range between two files of the mount
// (the destination would need a handle open for writing). A copy out of
// the mount into another filesystem does not come here: the kernel reads
// the source.
func (f *fileNode) CopyFileRange(ctx context.Context, fhIn fusefs.FileHandle, offIn uint64, out *fusefs.Inode, fhOut fusefs.FileHandle, offOut, n, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

// Fsync succeeds: there is nothing to write back. (go-fuse would answer
// ENOTSUP, and fsync or `sync FILE` of a file opened for reading works on
// any read-only filesystem.)
func (d *dirNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

// Fsync succeeds: there is nothing to write back.
func (f *fileNode) Fsync(ctx context.Context, fh fusefs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

// Ioctl answers the inode flag ioctls (lsattr, chattr): there are no
// flags to read, and setting them gives EROFS. Other ioctls get ENOTTY,
// as go-fuse answers them.
func (d *dirNode) Ioctl(ctx context.Context, fh fusefs.FileHandle, cmd uint32, arg uint64, input, output []byte) (int32, syscall.Errno) {
	return 0, flagsIoctl(cmd, output)
}

// Ioctl is the same for files.
func (f *fileNode) Ioctl(ctx context.Context, fh fusefs.FileHandle, cmd uint32, arg uint64, input, output []byte) (int32, syscall.Errno) {
	return 0, flagsIoctl(cmd, output)
}

// flagsIoctl answers an ioctl by its type and number (the low 16 bits;
// direction and size are encoded differently on some architectures). The
// kernel reads the flags before it sets them, so chattr reaches the set.
func flagsIoctl(cmd uint32, output []byte) syscall.Errno {
	switch cmd & 0xffff {
	case 'f'<<8 | 1, 'X'<<8 | 31: // FS_IOC_GETFLAGS, FS_IOC_FSGETXATTR
		clear(output) // no flags, no project, no extent size hint
		return 0
	case 'f'<<8 | 2, 'X'<<8 | 32: // FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR
		return syscall.EROFS
	}
	return syscall.ENOTTY
}
