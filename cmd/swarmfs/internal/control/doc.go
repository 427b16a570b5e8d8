// Package control is the control socket of a running swarmfs mount or
// server: a unix socket over which `swarmfs add`, `remove` and `status`
// change and inspect its library of torrents.
//
// # Where
//
// Sockets live in Dir: $XDG_RUNTIME_DIR/swarmfs when XDG_RUNTIME_DIR is
// set, else the directory "run" inside the cache directory. The directory
// is created mode 0700 and each socket is chmod 0600. A socket's name is
// derived from a key by SocketPath: the first 16 hex digits of the SHA-256
// of the key, so the path stays short. The key of a mount is the absolute
// path of its mountpoint (Key), the key of `swarmfs serve` its HTTP URL
// ("http://127.0.0.1:8080"). TokenPath names a file beside the socket for
// the HTTP API token.
//
// # Protocol
//
// Line-delimited JSON: the client writes one Request per line, the server
// answers each with one Response line, in order, on the same connection.
// A line is at most MaxLine bytes (a base64 .torrent of the largest size
// metainfo accepts, with room to spare). Operations: "add" (one Source:
// the raw bytes of a .torrent file or a magnet link), "remove" (Target: a
// name or hex info hash; Purge), "status", "rates" (reads the engine's
// upload and download caps in bytes per second, and sets them first when
// Rates is given; a library that is not a library.RateLimiter answers
// with the code "no_rates").
//
// # Security
//
// Besides the file modes, the server reads each connection's SO_PEERCRED
// and closes connections from any other user id than its own.
//
// # Concurrency
//
// Server serves each connection on its own goroutine, at most
// MaxConns at once; Close stops the listener, closes the open connections
// and waits for their goroutines. A Client is used by one goroutine at a
// time.
//
// # Errors
//
// ErrInUse when Listen finds a live server on the socket, ErrRefused for
// a peer of another user, ErrProtocol for a malformed request or
// response. Errors of the library travel as a code and a message and come
// back to the client wrapping the same library sentinel errors.
package control
