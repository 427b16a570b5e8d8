// Package webseed fetches torrent pieces from web seeds: BEP 19
// (GetRight-style) HTTP servers that hold the torrent's files, listed in
// the torrent's url-list.
//
// # What a Seed is
//
// To the picker a web seed is a peer that has every piece, never chokes,
// and costs more (server bandwidth, latency per request). A Seed wraps one
// url-list URL of one torrent:
//
//   - URLs: for a single-file torrent a URL not ending in "/" is the file;
//     otherwise the torrent's name and, for a multi-file torrent, the
//     file's path are appended, each path element percent-encoded on its
//     own (url.PathEscape). Pad files (BEP 47) are never requested: their
//     bytes are zeros filled in locally.
//   - Requests: HTTP/1.1 GET with one Range per file a fetch touches (a
//     run of pieces is split only at file boundaries), keep-alive reuse
//     (bodies are read to their end, or closed when more than 64 KiB is
//     left), at most Config.MaxConns fetches and connections at once,
//     redirects followed up to Config.MaxRedirects and only to http and
//     https.
//   - Retries: 5xx, 429, connection resets, stalls and short bodies are
//     retried (Config.Retries, doubling Config.RetryDelay), resuming after
//     the bytes already received. Retry-After (seconds or HTTP-date) is
//     honoured, capped by Config.MaxRetryAfter; a wait longer than
//     Config.MaxRetryWait fails the fetch and puts the seed in backoff
//     until then. A fetch that fails with its retries spent backs the seed
//     off for Config.MinBackoff, doubled for each such fetch in a row, at
//     most Config.MaxBackoff.
//   - Hostile servers: a 200 answer to a Range request (the whole file) is
//     used only when the wanted part starts within Config.MaxDiscard bytes
//     (the skipped bytes count as Wasted), else ErrRangeIgnored; a
//     Content-Range that is malformed, starts elsewhere or disagrees with
//     Content-Length is ErrBadContentRange; a complete length (or 200
//     Content-Length) other than the file's, 404, 410, 416 and other 4xx
//     make the seed skip that file (ErrFileMissing; Usable is false for its
//     pieces, other files are still used); no byte for Config.IdleTimeout
//     is ErrStalled. Bytes are written only into the caller's buffer, so
//     memory never depends on what the server sends.
//   - Wrong bytes: the caller hashes each piece and calls Failed(piece) when
//     it is wrong. That piece is not asked from this seed again, and after
//     Config.MaxFaults faults (failed pieces, ignored Ranges, bad
//     Content-Ranges, bad redirects and responses) the seed is dropped.
//     Peers are never blamed for a web seed's bytes.
//
// # How the torrent loop drives it
//
// The loop makes one Seed per url-list entry (plus any given on the
// command line) with New, and keeps them next to its peers. Then:
//
//  1. When the picker wants pieces that peers cannot deliver in time (Now
//     pieces with no or slow peers, readahead windows that peers do not
//     keep up with, or everything for get and --prefetch), the loop asks
//     each seed with Free() > 0 for a run of consecutive missing pieces
//     that are all Usable, marks them in flight for that seed, and starts a
//     goroutine that calls FetchRun (or Fetch for one piece) with a buffer
//     of one piece. Free counts the slots left and is 0 while the seed
//     backs off or after it was dropped.
//  2. FetchRun calls deliver for each complete piece in order on that
//     goroutine; deliver writes the piece to the cache (which hashes it)
//     and posts the result to the loop. The loop calls Failed(piece) on a
//     hash failure, never blaming peers, and puts the piece back in the
//     picker for anyone.
//  3. When FetchRun returns an error, the pieces of the run not delivered
//     go back to the picker. ErrFileMissing, ErrBackoff and ErrDropped need
//     nothing more: Usable and Free already say what to avoid. Cancelling
//     the context (the reader went away, the piece came from a peer first)
//     stops the fetch at once and is not charged to the seed.
//  4. Status (State, Until, Cause, Downloaded: "bytes from web seeds")
//     feeds status lines, xattrs and logs; after a backoff the loop tries
//     again on its own tick once Status().Until has passed.
//
// Memory is the caller's buffers (one piece per fetch in flight, so at
// most MaxConns pieces per seed) plus net/http's per-connection buffers.
//
// # Concurrency
//
// A Seed is safe for concurrent use. It starts no goroutines of its own
// beyond those of net/http's Transport; every call that waits takes a
// context. Close drops the seed and closes its idle connections; fetches
// in flight end with their contexts.
//
// # Errors
//
// Errors wrap the package's sentinels (ErrDropped, ErrBackoff,
// ErrFileMissing, ErrServer, ErrConn, ErrStalled, ErrShortBody,
// ErrRangeIgnored, ErrBadContentRange, ErrBadResponse, ErrRedirect,
// ErrBadRange, ErrBadURL); request errors are *Error, which names the
// file's URL and the HTTP status. An error returned by the caller's deliver
// function and the context's error come back unchanged and are never
// charged to the seed.
package webseed
