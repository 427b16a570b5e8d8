// Package cache owns swarmfs's verified on-disk piece store: one Store per
// torrent, its resume state, and LRU eviction under a byte cap shared by all
// stores (Budget). It knows nothing of peers or priorities.
//
// # Layouts
//
// A store lives in root/<40-hex info hash>/ (never a name taken from the
// torrent). Where the torrent's bytes are is its layout (Config.Layout);
// everything else (the Store API, verification, the state's rules, disk
// errors) is the same for both. Below the layouts, a small storage
// interface (storage.go) addresses bytes by torrent offset.
//
// DataFile (the default) keeps two files in the store's directory:
//
//   - data: a sparse file addressed by torrent offset, TotalLength bytes
//     long, pad bytes included. Absent and evicted pieces are holes.
//   - state: which pieces are verified and on disk: a header (magic,
//     version, info hash, piece count and length, data file size, the data
//     file's mtime and ctime at the last clean Close), a bitmap and a
//     CRC-32C. It is replaced with WriteFileAtomic (temp file, fsync,
//     rename, fsync of the directory); Open removes temp files a crash
//     left behind.
//
// Files{Dir} keeps the torrent's own files under Dir as other clients lay
// them out: Dir/<name>/<path...> for a multi-file torrent, Dir/<name> for a
// single-file one (Files{Content} names the content itself instead, for
// data whose name differs from the torrent's); names were validated by
// metainfo. Pieces that span files are split across them; pad files
// (BEP 47) are never created, their bytes are zeros known without I/O;
// files are created, with their directories, by the first write into them
// and grow as pieces are written (never preallocated); zero-length files
// are created at Open. Files are opened on first use and stay open until
// Close, so a store holds one descriptor per file it touched. The state
// lives in the store's directory as files-<hash of the absolute data
// directory>.state (with a lock file beside it), in the same format with a
// files flag, the directory, and in a clean state one stamp (size, mtime,
// ctime) per file. A Files store is never charged to a Budget and never
// evicts or punches: the user's files keep every byte. Unverified bytes (a
// piece that failed its hash, blocks of an interrupted download) stay in
// the files under pieces that are not present, as in the data file, until
// good bytes replace them.
//
// Beside the stores, root/<40-hex info hash>.metadata holds the info
// dictionary of a torrent added by magnet link (SaveMetadata, LoadMetadata),
// so that adding it again needs no peer. WriteFileAtomic is also the one
// atomic file writer of the rest of swarmfs.
//
// In the code, a store's per-piece state (piece.go) has named parts: the
// piece's lifecycle (eviction, pins, readers), busy flags that serialize
// whole-piece operations, the staged blocks (blockSet), the hash of the
// blocks received in order, and the write buffer. Writing is in write.go
// (WriteBlock as plan under the lock, I/O without it, commit under it),
// buffers in wbuf.go, verification in verify.go, eviction in evict.go and
// budget.go, the state file in persist.go, the layouts in storage.go,
// files.go and files_open.go.
//
// # Writing and verifying
//
// WriteBlock stages a block of a piece, unverified; blocks may come in any
// order, more than once, from many goroutines. Blocks that continue the piece
// in order are hashed on arrival and, while one of the store's
// Config.WriteBuffers is free, gathered in a 256 KiB memory buffer that goes
// to the data file in one write (one write per block costs more than the
// copy); the others go to their place in the data file at once. When none is
// free, the buffer of the idle piece fed least recently is reclaimed (idle:
// none of its blocks arrived in order while the store received
// 2 × WriteBuffers), so that pieces abandoned half-way, which the engine
// leaves behind whenever a reader seeks, cannot hold them all; pieces still
// being fed keep theirs. The idle piece's buffered bytes go to the data file
// first, where they stay staged like blocks written directly, and its hash on
// arrival carries on. FinishPiece verifies the piece with SHA-1 (what was not
// hashed on arrival is read back) and only then writes the rest of its buffer
// and makes it present. A mismatch returns *HashError{Piece} wrapping
// ErrHashMismatch and discards the blocks (their space is punched out).
// WritePiece hashes a whole piece and writes it 256 KiB at a time right after
// hashing each part, while the bytes are still in the CPU cache; the last
// part is written only on a match, and on a mismatch what was written is
// punched out (a piece with staged blocks is verified before anything is
// written). Unverified bytes may thus sit in the data file, but only under
// pieces that are not present: they are never returned by ReadAt, ReadBlock,
// ReadPiece or HoldSpan, and verified bytes are never overwritten: writes to
// a present piece are ignored.
//
// # Resume and crash safety
//
// The present set is persisted in the background, at most every
// Config.SyncInterval (500 ms) or after Config.SyncPieces (64) changes, by
// Sync, and by Close. The promise: the state on disk never claims a piece
// whose bytes may have changed since it was verified. Three rules keep it:
//
//   - The data file is fdatasync'ed before a state that claims a piece for
//     the first time since it became present is written.
//   - A piece that a state on disk (or one being written) may claim is
//     marked claimed. When such a piece is evicted, its hole is punched
//     only after a state that no longer claims it is on disk.
//   - Before anything rewrites the bytes of a claimed piece that is no
//     longer present (WriteBlock of an evicted piece fetched again,
//     WritePiece, and through them the punch of a hash failure), the
//     writer first writes a state without the piece (retractLocked: it
//     claims only pieces already synced, so it waits for no fdatasync)
//     and waits for it. If that state cannot be written, the write fails
//     with the *DiskError and the bytes stay as they were.
//
// So after a kill -9 a reopen trusts only pieces that were verified and
// durable, byte for byte (TestCrashEvictRefetch kills a writer that evicts,
// refetches and discards pieces 40 times, TestCrashFilesLayout one that
// writes the Files layout); at most the pieces verified since the last
// persist are downloaded again. Background verification persists the state
// as soon as it ends, before VerifyDone closes (TestCrashAfterVerify kills
// a store right after it verified a data directory: nothing is hashed
// again), and a state written while pieces still await verification
// carries the verify flag: the next Open verifies every piece it does not
// claim whose bytes may exist, instead of taking them as absent
// (TestCrashDuringVerify). The data is not fdatasync'ed per piece, so
// after a power loss the same holds only as far as the filesystem keeps the
// order of fdatasync and rename. With the Files layout "the data file"
// above means every file written since the last persist (each
// fdatasync'ed once) and the directories that gained files.
//
// Open trusts a matching state at once, without re-hashing. It distrusts it,
// and re-verifies the data file in the background (Verifying, VerifyDone),
// when the state is missing or corrupt, the data file is missing or has the
// wrong size, or the state was written by a clean Close and the data file's
// mtime or ctime changed since: the file was modified behind our back. While
// a store is open its state is marked unclean, so after a crash only the
// size check guards against outside changes.
//
// The Files layout judges each file on its own: a missing file's pieces are
// absent at once (nothing is read); a file whose size, mtime or ctime
// differ from a clean state's stamp has every piece it touches
// re-verified, one that (after a crash) is shorter than the pieces claimed
// in it need has the claimed pieces it touches re-verified; the others are
// trusted. Before that, Open writes a
// state that no longer claims the pieces it re-verifies. Without a usable
// state (none, another directory, a torrent's data made by another
// program), every piece of the files that exist is verified.
//
// The stamps a clean state records are the files as the store last wrote
// or verified them, not as they are at Close: a file changed behind its
// back while it was open, and not noticed then, keeps its old stamp, so the
// next Open re-verifies it (every piece of it, claimed or not). While the
// store is open (files_stamp.go), each file has a slot with that stamp and
// the file's identity (device, inode), taken at Open and right after each
// of the store's own writes into it. Every read from a file (ReadAt,
// ReadBlock, HoldSpan, the read-back of verification) compares the open
// file with its slot right after reading (one fstat), and the file at its
// path at most once a second (a file replaced by rename: the open
// descriptor still reads the old file, whose verified bytes did not
// change, so serving those meanwhile is right); a write compares before
// writing, so that the stamp it takes afterwards absorbs no one else's
// change. A mismatch is handled once: the file's present pieces are
// dropped like evicted ones (Evictions, TakeEvicted), a state without them
// is written at once, the slot takes the file as it now is (a replaced
// file is reopened; the old descriptor is closed once no read or held Span
// uses it), and after a second (a write sets the mtime before it copies
// its bytes) every piece of the file is re-verified in another round of
// background verification: VerifyDone then returns a new channel. A read
// that overlapped the drop returns an error wrapping ErrNotPresent, never
// the bytes it read (heldIntact); a verification that overlapped it hashes
// the piece again. A file cut short is also reported as before: the read
// that finds it fails with a *DiskError. What this cannot see: a change
// made within the same clock tick as the store's own last write or stamp
// (file times are as coarse as a tick on filesystems without fine-grained
// timestamps) or between a write and the fstat right after it; a change
// racing FinishPiece or WritePiece of a piece of the same file (its hash
// comes from the bytes received, not from the file); and bytes a Span
// hands to splice after a check that found the file unchanged.
//
// Re-verification hashes on Config.VerifyWorkers goroutines (GOMAXPROCS by
// default), each reading 1 MiB at a time, taking pieces in order so that
// reads stay mostly sequential; memory is bounded by the worker count.
// VerifyProgress reports the pieces and bytes given and checked and the
// pieces found good, for a progress line (summed over rounds); VerifyDone
// closes at the end of a round.
//
// # Eviction
//
// The Files layout has no cap: its pieces are never evicted and its store
// ignores Config.Budget. With the DataFile layout and a Budget, verified
// pieces of all its stores are kept in one LRU list
// (reads touch, new pieces are most recent). When usage exceeds the cap, the
// least recently used pieces that are not pinned (Pin, and pieces being read)
// are evicted one by one: the bit is cleared at once, the piece is reported
// through Evictions and TakeEvicted, and its space is returned with
// fallocate(PUNCH_HOLE) after the next persist. Usage exceeds the cap only by
// pinned bytes beyond it, or transiently by one piece per concurrent writer
// (eviction runs right after a piece is added). When everything else is
// pinned, a new unpinned piece is itself the victim, so callers should pin
// the pieces they wait for.
//
// Staged, unverified blocks are charged to the budget too (Budget.Staged).
// When verified and staged bytes together exceed the cap, the staged blocks
// of abandoned pieces (no WriteBlock for them during 256 WriteBlock calls of
// all the budget's stores, none in flight, not pinned, not being verified)
// are discarded and punched out; FinishPiece of such a piece then reports
// ErrIncomplete. Staged blocks never evict verified pieces. With the
// DataFile layout Open punches holes under every piece that is not present
// (staged blocks of a store closed or killed are never resumed), and
// re-verification punches pieces that fail. So the data file's allocated bytes stay within the cap plus
// pinned pieces, the staged blocks of pieces written within the last 256
// WriteBlock calls, and evicted pieces waiting for the next persist
// (TestStagedBudget measures stat's Blocks), and nothing is orphaned across
// restarts.
//
// # Respecting the cap (for the engine)
//
// Budget.Limit is the cap, Budget.Used the verified bytes and
// Budget.Staged the staged ones. Store.WouldEvict(size) forecasts, without
// evicting, which pieces storing size more bytes would evict (this store's,
// least recently used first, and how many of other stores) and how much
// could not be freed because the rest is pinned. The engine is meant to:
//
//   - refuse at start a cap smaller than the pieces it must hold at once
//     (a reader's piece window, all pinned while they are awaited): they
//     could not stay;
//   - for get with a cap smaller than the torrent, write verified pieces
//     out as they arrive and unpin them, or fail at once;
//   - stop prefetching when WouldEvict(PieceSize) returns Short > 0 or
//     names a piece it still wants (ahead of a reader and not read yet):
//     the cap holds pieces prefetch would only evict again.
//
// A full disk is not a reason to retry: WriteBlock, WritePiece and
// FinishPiece return a *DiskError matching ErrNoSpace, naming the store's
// directory (the data directory with the Files layout; a file below it
// stays named in the cause), which get reports as such and a mount turns into EIO for the
// affected reads. The store keeps working, and writes succeed again once
// space is freed. Even on a full disk the state can be rewritten (in place
// when there is no room for a new file), so eviction still returns space.
//
// # Concurrency
//
// Every method of Store and Budget is safe for concurrent use. A Store's
// mutex guards only in-memory state: reads, writes, hashing, fsync and hole
// punching run outside it, so readers of other pieces never wait for disk
// I/O. Per-piece flags serialize the few operations on one piece that must
// not overlap (a write during a hash or a hole punch waits for it, and a
// write over buffered bytes waits until they are in the file). Write buffers
// are taken from a per-store count under the mutex; their bytes are touched
// outside it only by the one goroutine the piece's flags let in. A buffer
// reclaimed from an idle piece (none of its blocks being added, flushed or
// verified) passes under the mutex to the piece that wants it, whose
// WriteBlock writes the idle piece's bytes out (outside the mutex) before
// using it; until then the idle piece's writes and FinishPiece wait. The
// Files layout's table of open files has its own mutex (fileMu), held only
// to look up or install entries, never across I/O; each file's slot has a
// read-write mutex held across a write into the file and the fstat before
// and after it (buffered writes to one file are serialized by the kernel
// anyway), and for reading across the fstat of a check. A change found is
// handled by the goroutine that found it, holding none of these; others
// that find it meanwhile wait for that to end. Lock order: a slot's mutex
// before fileMu; neither is held while taking the Store's. Background
// re-verification runs on its own goroutines, which end before Close
// returns. Lock order: Store before Budget; the Budget never calls a Store while holding
// its own lock. A Store's persist mutex is taken before its main mutex and is
// held only by the persister, Sync, Close, and a writer retracting the claim
// on an evicted piece (which releases the main mutex first). Wait selects
// on the caller's context and on Close; no goroutine outlives Close.
//
// # Errors
//
// ErrNotPresent (reads of pieces not verified or evicted, wrapped with the
// piece), ErrClosed, ErrHashMismatch (via *HashError), ErrIncomplete
// (FinishPiece with blocks missing), ErrRange (bad piece index, block offset
// or length; a span starting in pad bytes with the Files layout), ErrLocked (store already open, here or in another process),
// ErrBadMetadata (saved metadata that does not match its info hash).
// Disk errors (ENOSPC, EIO) are returned as *DiskError naming the
// operation, the store's directory and the piece; it wraps the system error,
// so errors.Is(err, syscall.ENOSPC) works, and errors.Is(err, ErrNoSpace)
// holds for a full filesystem. They never affect pieces
// already present, and the store stays usable. A WriteBlock error may also
// cost blocks of the same piece that earlier calls buffered (they are no
// longer staged), and FinishPiece returns a disk error, discarding the piece,
// when the end of a verified piece cannot be written. When the bytes of a
// reclaimed buffer cannot be written out, the blocks they held are no longer
// staged, so that their piece's FinishPiece reports ErrIncomplete until they
// come again; the error is logged with that piece (Config.Logger), not
// returned to the WriteBlock of another piece that took the buffer, whose
// block is accepted.
package cache
