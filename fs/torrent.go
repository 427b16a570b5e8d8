package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Torrent is what the mount needs from one torrent. cmd adapts
// engine.Torrent to it; tests use an in-memory fake.
//
// Every method except FileReader.ReadAt must return promptly: the mount calls
// Name, InfoHash, Info, CreationDate and InfoReady while building its tree and
// Status for extended attributes, and `ls -lR` must never wait on the network.
type Torrent interface {
	// Name is the torrent's directory name. Before metadata is known (a
	// magnet) it is the magnet's dn or the hex info hash. The mount cleans
	// it into a single path component and deduplicates it.
	Name() string
	// InfoHash is the v1 info hash.
	InfoHash() metainfo.Hash
	// Info returns the validated info dictionary, or nil until metadata is
	// known. Once non-nil it never changes.
	Info() *metainfo.Info
	// InfoReady returns a channel that is closed when Info becomes
	// non-nil (already closed when it is known from the start).
	InfoReady() <-chan struct{}
	// CreationDate is the torrent's creation date; the zero time means
	// unknown, and the mount then uses the time it was mounted.
	CreationDate() time.Time
	// OpenFile returns a reader of file index file of Info().Files. The
	// mount calls it once per open file handle and closes the reader when
	// the handle is released.
	OpenFile(ctx context.Context, file int) (FileReader, error)
	// Status returns a snapshot of the download progress.
	Status() Status
	// FileComplete reports whether every byte of file index file of
	// Info().Files is verified.
	FileComplete(file int) bool
}

// FileReader reads one file of a torrent. ReadAt must be safe for concurrent
// use: the kernel issues several reads on one handle at once (readahead).
type FileReader interface {
	// ReadAt reads len(p) bytes at offset off of the file. It blocks until
	// the bytes are verified or ctx ends; then it returns an error that
	// wraps ctx.Err() (and may say why, e.g. "no peers"). At the end of
	// the file it returns io.EOF with the bytes before it.
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	// Close releases the reader (and its piece priorities).
	Close() error
}

// SpliceReader is a FileReader that can also hand out file data without
// copying it: ReadSpan waits like ReadAt for up to n bytes at off (fewer at
// the end of the file; io.EOF at or past it) and returns where they lie in
// an open file, held until Release. The mount then splices the reply to the
// kernel from that file, saving a copy through user space.
type SpliceReader interface {
	ReadSpan(ctx context.Context, off int64, n int) (Span, error)
}

// Span is file data held for a zero-copy reply: Len bytes of the open file
// Fd at offset Offset, valid until Release.
type Span interface {
	Fd() uintptr
	Offset() int64
	Len() int
	Release()
}

// Prefetcher is a Torrent that can fetch part of a file in the
// background: the mount serves `setfattr -n user.swarmfs.prefetch -v
// VALUE FILE` with it. Prefetch parses value for file index file of
// Info().Files ("all", OFFSET or OFFSET+LEN), starts fetching and returns
// at once; an error that wraps ErrBadValue makes setxattr fail with EINVAL,
// any other with EIO.
type Prefetcher interface {
	Prefetch(file int, value []byte) error
}

// ErrBadValue is wrapped by a Prefetcher's error for a malformed value.
var ErrBadValue = errors.New("fs: bad attribute value")

// Status is a snapshot of a torrent's progress.
type Status struct {
	// Verified is the number of verified bytes held; Total the torrent's
	// size (0 while metadata is unknown).
	Verified, Total int64
	// Pieces has one entry per piece, true when the piece is verified
	// (nil while metadata is unknown).
	Pieces []bool
	// Text is a short human state, e.g. "downloading" or
	// "fetching metadata (3 peers)".
	Text string
}

// Default values used for zero Options fields.
const (
	// DefaultReadTimeout bounds a read waiting for data that does not come.
	DefaultReadTimeout = 60 * time.Second
	// DefaultReadAheadKB is the kernel readahead set on the mount's bdi.
	DefaultReadAheadKB = 2048
	// maxRead is the largest read request: 1016 KiB, the most that go-fuse
	// can splice through a 1 MiB pipe together with the reply header.
	maxRead = 1016 << 10
	// maxBackground is the kernel's limit of concurrent background
	// (readahead) requests; its default is 12. Each request in flight
	// holds a buffer of up to maxRead bytes in go-fuse, so this also caps
	// that memory (32 MiB).
	maxBackground = 32
)

// PageCacheMode says which open files go through the kernel page cache.
type PageCacheMode int

const (
	// PageCacheAuto keeps files that are complete when opened in the page
	// cache (FOPEN_KEEP_CACHE: verified data never changes, so it stays
	// cached across opens) and opens files still downloading with
	// FOPEN_DIRECT_IO. Streaming a file as it downloads then costs one
	// copy less (the bytes are spliced from the cache file straight into
	// the reader's buffer instead of through the mount's page cache), and
	// a blocked read is interruptible: Ctrl-C gives EINTR at once even in
	// a process that catches SIGINT. mmap still works on such files where
	// the kernel allows it (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6); on
	// older kernels every file uses the page cache.
	PageCacheAuto PageCacheMode = iota
	// PageCacheAlways opens every file with FOPEN_KEEP_CACHE.
	PageCacheAlways
	// PageCacheNever opens every file with FOPEN_DIRECT_IO.
	PageCacheNever
)

// String returns the mode's flag value: auto, always or never.
func (m PageCacheMode) String() string {
	switch m {
	case PageCacheAlways:
		return "always"
	case PageCacheNever:
		return "never"
	default:
		return "auto"
	}
}

// ParsePageCacheMode parses auto, always or never.
func ParsePageCacheMode(s string) (PageCacheMode, error) {
	for _, m := range []PageCacheMode{PageCacheAuto, PageCacheAlways, PageCacheNever} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("page cache mode %q: want auto, always or never", s)
}

// Options configures a mount. The zero value is valid.
type Options struct {
	// ReadTimeout bounds each read request: a read whose data has not
	// arrived by then fails with EIO (and the reason is logged) while the
	// download goes on. Zero means DefaultReadTimeout (60 s). If the
	// kernel's fs.fuse.max_request_timeout or default_request_timeout is
	// set, the timeout is lowered below it, since the kernel aborts the
	// whole mount when a request outlives it.
	ReadTimeout time.Duration
	// ReadAheadKB is written to the mount's /sys/class/bdi/*/read_ahead_kb
	// (root only; failures are logged at debug level). Zero means
	// DefaultReadAheadKB; negative leaves the kernel's default (128).
	ReadAheadKB int
	// PageCache says which open files go through the kernel page cache;
	// the zero value is PageCacheAuto.
	PageCache PageCacheMode
	// AllowOther lets users other than the mounting one access the mount
	// (needs user_allow_other in /etc/fuse.conf unless root).
	AllowOther bool
	// Debug logs every FUSE request at debug level on Logger.
	Debug bool
	// Logger receives diagnostics; nil means silent.
	Logger *slog.Logger
	// Dynamic makes a mount whose torrents can change: the root always
	// holds one directory per torrent (even for a single single-file
	// torrent, so the layout never changes), Mount accepts no torrents at
	// all, and Server.AddTorrent and RemoveTorrent work.
	Dynamic bool
	// FSName is the "Filesystem" column of df and mount; "" means "swarmfs".
	FSName string
}
