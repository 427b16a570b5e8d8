// Package metainfo owns everything about describing torrent content: a strict
// bencode codec, .torrent and magnet parsing, the validated Info type with its
// piece/file geometry, and creating torrents from files.
//
// Loading: Load, LoadFile and ParseInfo (for BEP 9 metadata) accept BitTorrent
// v1 and hybrid v1+v2 torrents: single- and multi-file, BEP 12 announce tiers,
// BEP 19 url-list (a string or a list) and BEP 17 httpseeds, the BEP 27
// private flag, BEP 47 pad files and attributes. InfoBytes are kept exactly
// as found and InfoHash is their SHA-1, so re-encoding with Bytes never
// changes a torrent's identity. Every file path is validated component by
// component ("..", ".", empty, NUL, "/" and components over NAME_MAX, 255
// bytes, are rejected, as are paths whose Info.Name/File.Path is longer than
// PATH_MAX allows (MaxPathLength), duplicate paths and a file that is also
// another file's directory), so joining Info.Name and File.Path below a
// directory can never leave it, and every file can be created and opened.
// Pad files, BEP 47 symlinks and the legacy ".pad/" directory are left out
// of Info.Files; their bytes still count in offsets. Sizes are capped
// (MaxTorrentSize, MaxPieceLength, MaxFiles, MaxPathDepth, MaxPathLength,
// MaxDepth) before anything a hostile count controls is allocated.
//
// A .torrent is parsed in one pass: the outer and info dictionaries are
// walked in place and the file list is decoded where it is met, without
// an allocation per file (paths are cut from one shared arena), so a
// torrent of 200,000 files loads in tens of milliseconds.
//
// Magnets: ParseMagnet reads xt=urn:btih (hex or base32), dn, tr, x.pe, ws
// and xl; (*Magnet).String writes one back; (*MetaInfo).Magnet makes one.
//
// Creating: Create hashes a file or directory on all cores into a v1
// torrent, with AutoPieceLength choosing the piece size.
//
// It does no I/O beyond io.Reader (and reading the files given to LoadFile
// and Create) and imports no other swarmfs package. Parsed values are
// immutable and safe to share between goroutines; every function is safe
// for concurrent use. Loading a large torrent hashes its info dictionary
// on a goroutine of its own while the file list is parsed; it has ended
// when Load returns.
//
// Errors: malformed input wraps ErrInvalid (bencode syntax errors also wrap
// ErrBencode and carry a byte offset in *SyntaxError); valid input that
// swarmfs cannot use (v2-only torrents, v2-only magnets, unknown meta
// versions) wraps ErrUnsupported. Each error is one line.
package metainfo
