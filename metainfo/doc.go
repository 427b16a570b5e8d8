// Package metainfo owns everything about describing torrent content: a strict
// bencode codec, .torrent and magnet parsing, the validated Info type with its
// piece/file geometry, and creating torrents from files.
//
// It does no I/O beyond io.Reader/io.Writer (and reading the files given to
// Create) and imports no other swarmfs package. Parsed values are immutable
// and safe to share between goroutines.
//
// Errors: malformed input wraps ErrInvalid (bencode syntax errors also wrap
// ErrBencode and carry a byte offset in *SyntaxError); valid input that
// swarmfs cannot use (v2-only torrents) wraps ErrUnsupported.
package metainfo
