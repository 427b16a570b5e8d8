// Package fs serves torrents as a read-only FUSE filesystem (go-fuse v2).
//
// It owns the tree of directories and files, the read path from a kernel
// read request to a torrent reader, extended attributes, and mounting and
// unmounting (including replacing a stale mount left by a crash). It does not
// import the engine: it reads torrents through the small Torrent and
// FileReader interfaces, which cmd implements over engine.Torrent and tests
// implement with in-memory fakes.
//
// # Layout
//
// One torrent whose info is known and that is a single file: the file is at
// the mount root. Any other single torrent (multi-file, or a magnet whose
// info is not known yet): the root holds one directory named Torrent.Name
// with the torrent's files (Info.Files paths) inside. Several torrents: one
// directory per torrent, named Torrent.Name, cleaned into one path component
// ("/" becomes "_") and deduplicated with " (2)", " (3)", ...; a single-file
// torrent's directory holds its one file. A magnet's directory exists (empty)
// from the start and fills when InfoReady closes; listing it never blocks.
//
// A dynamic mount (Options.Dynamic) always has one directory per torrent,
// even for one single-file torrent, so the layout does not change when
// torrents come and go; it may start with no torrent at all.
// Server.AddTorrent adds a torrent's directory and Server.RemoveTorrent
// removes one; each tells the kernel (an entry notification on the root),
// so the change is visible when the call returns. The mount's list of
// torrents is an immutable set replaced whole on each change, so handlers
// read it without a lock. Files of a removed torrent that are open keep
// their readers and work until they are closed; lookups and opens inside
// its directory (through a process's working directory, say) fail with
// ENOENT. A torrent added again gets the same inode numbers with a new
// generation, so nodes the kernel still holds from before stay apart.
// The kernel may keep a torrent directory's entry for 1 s in a dynamic
// mount (an hour otherwise), which bounds the rare lookup that races a
// remove.
//
// Each torrent's tree is a compact file table built once from its info (at
// mount, or when a magnet's info arrives) and never changed: per directory,
// 4-byte references to its children in torrent order and sorted by name,
// with names shared with the info's paths. Lookup and Readdir answer from
// it and nodes are made as the kernel looks names up (and dropped when it
// forgets them), so memory follows what is being browsed, not the number
// of files: mounting a 200,000-file torrent and listing its top directory
// makes a few hundred nodes (BenchmarkManyFiles). Readdir lists children in
// torrent order (a directory where its first file is); of two entries with
// one name the first wins and the other is skipped with a warning.
// Directories are 0555, files 0444 (0555 when the torrent marks them
// executable), owned by the mounting user; sizes come from the info and all
// times are the torrent's creation date (the mount time when unknown).
// Inode numbers are a hash of the info hash (high bits) and the node's
// number in the table (low 26 bits), so they are the same on every mount.
// Torrents' directories and the nodes inside them are made as the kernel
// looks them up; none is kept for its own sake.
// Statfs reports the total size of the torrents as used and nothing free.
// Getattr, Lookup, Readdir and Statfs never call the torrent, so `ls -lR`
// and `find` never wait on the network.
//
// # Read-only
//
// The filesystem is read-only, but the kernel mount is not "ro": on a
// read-only mount the kernel refuses every setxattr (user.swarmfs.prefetch
// included) with EROFS before asking the filesystem. So the filesystem
// refuses every change itself, with EROFS as a read-only filesystem does
// (readonly.go): open for writing or with O_TRUNC, create, O_TMPFILE,
// mknod, mkdir, unlink, rmdir, rename, link, symlink, setattr (chmod,
// chown, truncate, utimes), setxattr of any other attribute, removexattr,
// write, fallocate, copy_file_range into the mount and chattr; access(2)
// with W_OK gives EROFS too. The kernel answers some calls before asking
// (EEXIST for mkdir of an existing name, EXDEV for a rename from another
// filesystem, EBADF for a write through a descriptor open for reading),
// as it does on a "ro" mount; TestReadOnlyLikeRoMount checks each answer
// against a read-only bind mount. One differs: unlink or rmdir of a name
// that does not exist gives ENOENT, where a "ro" mount says EROFS. fsync
// and lsattr succeed.
// The mount is also made without "default_permissions": with it the
// kernel would check the write permission of setxattr against the 0444
// mode and refuse the attribute to everyone but root. Access answers
// access(2) and chdir instead (reading for all, executing a file only if
// the torrent marks it executable), and every mode is readable by all, so
// reads are allowed as before. Two things show the difference from a "ro"
// mount: mount(8), findmnt and /proc/self/mountinfo list the mount as
// "rw", and statfs(2) has no ST_RDONLY (the kernel takes those flags from
// the mount, not from the filesystem's statfs reply).
//
// # Reads
//
// Open gives each file handle its own FileReader (Torrent.OpenFile), closed
// on release, so the engine's readahead follows that handle; OpenFile gets
// a context bounded as a read's is (below), so an open cannot hang. Read calls
// FileReader.ReadAt with a context that ends when the kernel interrupts the
// request (Ctrl-C in the reader), when Options.ReadTimeout passes (default
// 60 s, lowered below the kernel's fs.fuse request timeouts when set), or
// when the mount is unmounted. Read fills the whole request or fails: a
// short reply would make the kernel believe the file ends there. Reads at or
// past the end return 0 bytes. When the FileReader is also a SpliceReader
// (the engine's is), Read asks it for a Span instead: the bytes held in an
// open file, which go-fuse splices into the reply without copying them
// through user space; the span is released when the reply is sent.
//
// Options.PageCache says which files go through the kernel page cache. By
// default (PageCacheAuto) a file that is complete when opened is kept there
// (FOPEN_KEEP_CACHE: verified data never changes), and a file still
// downloading is opened with FOPEN_DIRECT_IO:
//   - Streaming costs one copy less: the reply is spliced from the cache's
//     data file into the reader's buffer, not through the mount's page
//     cache. The reading process then spends about 0.1 instead of 0.45
//     CPU-seconds per GiB; throughput (BenchmarkStream in cmd/swarmfs) is
//     about the same or a little higher, within this machine's noise.
//   - A blocked read is the reader's own request, so Ctrl-C interrupts it
//     at once (EINTR) even in a process that catches SIGINT. In a
//     page-cache read the kernel waits for readahead pages killably only:
//     a process that dies (cat, cp, dd) stops at once, one that catches
//     SIGINT waits until the read is served or times out.
//   - Such reads are not background requests, so they do not hold the 32
//     background slots (below) while they wait.
//   - Requests have the reader's size (up to 1016 KiB); the engine's
//     readahead window fetches ahead, not the kernel's.
//
// mmap of a direct_io file needs FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6),
// which the mount asks for; on kernels without it auto keeps every file in
// the page cache.
//
// Page-cache requests are up to 1016 KiB (max_read; the largest that
// go-fuse can splice through a 1 MiB pipe). After mounting, the mount's
// /sys/class/bdi/*/read_ahead_kb is raised to Options.ReadAheadKB (default
// 2048, root only) so the kernel's readahead asks for large windows.
// Page-cache reads reach the server as background requests, at most 32 at
// once; reads blocked on missing pieces (possible in a complete file whose
// pieces were evicted since) hold their slot until served, timed out or
// unmounted, so more than 32 blocked reads make the others wait too.
//
// # Mounting and unmounting
//
// Mount returns a *Server. Server.Unmount first fails every blocked read
// (EIO), then unmounts, detaching lazily if open files keep the mount busy.
// Server.Done closes when the kernel connection ends, including after an
// unmount from outside: the package functions Unmount (fusermount3 -u, then
// umount(2) as root) and UnmountLazy (MNT_DETACH / fusermount3 -uz) serve
// `swarmfs unmount` in another shell. A mountpoint whose statfs fails with
// ENOTCONN is a mount whose process died: Mount detaches it, mounts again,
// logs a warning and reports it through Server.StaleReplaced.
//
// # Extended attributes
//
// Every file and directory has, readable with getfattr -d:
//   - user.swarmfs.infohash: the 40 hex digits of the info hash (the root of
//     several torrents: all of them, separated by spaces);
//   - user.swarmfs.progress: "VERIFIED/TOTAL" in bytes; for a file, the
//     bytes of the file that lie in verified pieces, over its length;
//   - user.swarmfs.pieces: one character per piece, '#' verified and '.'
//     missing (for a file, its pieces; for a directory, the torrent's). Above
//     60000 pieces each character stands for a run of consecutive pieces and
//     is '#' (all), '.' (none) or '+' (some);
//   - user.swarmfs.status: Status.Text, e.g. "fetching metadata (3 peers)".
//
// Files also take user.swarmfs.prefetch, set and never read (Setxattr):
// `setfattr -n user.swarmfs.prefetch -v OFFSET[+LEN]|all FILE` asks a
// Torrent that is a Prefetcher for that range in the background and
// returns at once (EINVAL for a bad value, ENOENT once the torrent left a
// dynamic mount, ENOTSUP when the Torrent is no Prefetcher). Any user who
// can read the file may set it. On a directory it gives EISDIR; other
// attributes cannot be set or removed (EROFS).
//
// # Concurrency
//
// Every exported method of Server is safe for concurrent use. The read path
// takes no lock of this package: nodes, file tables and the torrent set are
// immutable (tables and the set are published through atomic pointers) and
// a handle only holds its reader, which must be safe for concurrent ReadAt
// calls. AddTorrent and RemoveTorrent are serialized by one mutex that no
// handler takes; they must not be called from a handler. Each mount runs
// go-fuse's server goroutines plus one goroutine per magnet waiting for its
// info (ended when it is removed); Unmount ends them all. Torrent methods
// other than FileReader.ReadAt must not block.
//
// # Errors
//
// One function, translate, turns errors into errnos: an interrupted request
// gives EINTR; a read that timed out (cause ErrReadTimeout) or that was
// released by unmounting (cause ErrUnmounted) gives EIO, logged with the
// reason the reader gave; a syscall.Errno in the chain is passed on;
// anything else is EIO. AddTorrent fails with ErrExists for a torrent
// already mounted and RemoveTorrent with ErrNotFound for one that is not;
// both fail with ErrFixed on a mount that is not dynamic. Mount fails with
// ErrNoTorrents when given none (and not dynamic) and with ErrMounted when a
// live swarmfs mount is already at the mountpoint. Server.Unmount returns
// ErrConnectionLingers when the mount is gone from this namespace but a copy
// in another mount namespace (a process that ran unshare -m while it was up)
// keeps the kernel connection: it does not wait for that namespace, whose
// copy stops working when this process exits. The package function Unmount
// returns ErrNotMounted for a path that is not a mountpoint and an error
// wrapping syscall.EBUSY when open files keep the mount busy.
package fs
