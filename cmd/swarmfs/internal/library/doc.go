// Package library defines the set of torrents that the living-mount
// front ends (the HTTP server, the control socket and the watch directory)
// list, read, add and remove, without importing the engine.
//
// # What it owns
//
// The Library interface, the snapshot types it returns (Torrent, File,
// Stats), the Reader it opens, Source (a torrent or magnet to add) with
// ParseSource for untrusted bytes, and Find, which resolves a name or info
// hash given by a person. cmd implements Library over engine.Client; tests
// implement it with in-memory fakes.
//
// # Concurrency
//
// Implementations must be safe for concurrent use. Every method except
// Reader.ReadAt must return promptly: front ends call Torrents for every
// index page, status line and metrics scrape. A snapshot's Files are read
// from the torrent's parsed info only when walked (InfoFiles), so that
// snapshots of a torrent of many files cost nothing per file.
//
// # Errors
//
// ErrNotFound for an unknown torrent or file, ErrExists for a torrent
// added twice, ErrNoInfo when a file is opened before a magnet's metadata
// is known, ErrBadSource for bytes that are neither a torrent nor a magnet
// link, ErrAmbiguous when a name matches several torrents.
package library
