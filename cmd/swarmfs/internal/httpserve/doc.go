// Package httpserve serves a library of torrents over HTTP: a plain HTML
// index, file streaming with Range requests, M3U playlists, Prometheus
// metrics and a JSON API to list, add and remove torrents.
//
// # Routes
//
//   - GET / : an HTML index of the torrents and their files (links, sizes,
//     progress). Names are HTML-escaped.
//   - GET, HEAD /files/INFOHASH/PATH : one file. Range requests get 206
//     (open ranges "bytes=N-", suffix ranges "bytes=-N"), a range past the
//     end gets 416. Multi-range requests are served as
//     multipart/byteranges by http.ServeContent (when the ranges add up to
//     more than the file, the whole file is sent with 200). ETag is
//     strong ("INFOHASH-FILEINDEX": torrent content never changes),
//     Last-Modified is the torrent's date, and Content-Type comes from the
//     extension (application/octet-stream when unknown: the body is never
//     sniffed, so HEAD never waits for data). PATH components are
//     percent-decoded one by one; empty, "." and ".." components, an
//     encoded "/" or NUL, and a malformed hash give 400; an unknown hash or
//     a path that is not a file of the torrent gives 404. A torrent whose
//     metadata is not known yet gives 503.
//   - GET /playlist/INFOHASH.m3u : an extended M3U playlist of the
//     torrent's audio and video files with absolute URLs built from the
//     request's Host.
//   - GET /metrics : Prometheus text format (version 0.0.4), written by
//     hand: per-torrent byte counters, rates, pieces, peers and verified
//     bytes held in the cache, plus a histogram of the latency of the file
//     reads made for HTTP clients.
//   - GET /api/torrents, GET /api/torrents/INFOHASH : JSON status.
//     POST /api/torrents (a JSON body {"magnet": "..."} or {"torrent":
//     "BASE64"}, or the raw .torrent or magnet text as the body) adds;
//     DELETE /api/torrents/INFOHASH[?purge=1] removes.
//   - GET /api/rates : the engine's rate limits, JSON {"up": N, "down": N}
//     in bytes per second (0: unlimited); PUT or POST /api/rates with such
//     a body changes them (a missing field keeps its limit). A library
//     that is not a library.RateLimiter gives 501.
//
// # Security
//
// POST, PUT and DELETE need Config.Token, given as "Authorization: Bearer
// TOKEN" or "X-Swarmfs-Token: TOKEN" (compared in constant time); with no
// token configured they are always refused. Cross-site requests to the API
// are refused with 403 by http.CrossOriginProtection (Sec-Fetch-Site, else
// Origin against Host), so a web page cannot drive the API from a
// visitor's browser. Which address to listen on is
// the caller's business (swarmfs serve binds loopback unless told); with
// Config.LoopbackOnly, requests whose Host header is not localhost or a
// loopback address get 403, so that a web page cannot reach a loopback
// server through DNS rebinding.
//
// # Reads
//
// Each file request opens one library.Reader and closes it when the
// request ends, so its reads get the same priorities and readahead as an
// open file of the mount. Reads run with the request's context (plus
// Config.ReadTimeout for each read): a client that disconnects cancels a
// read blocked on missing data and releases the reader at once. The first
// read after a seek asks for 64 KiB (a player probing a file waits for
// little more than it wants), each next one for twice as much, up to
// Config.BufferSize (1 MiB). From then on the next chunk is read on a
// goroutine while the current one is sent (not for multi-range requests),
// so the engine always has a read waiting, as the kernel's concurrent
// readahead gives a mount; a request holds at most two buffers, and its
// read ahead is cancelled and waited for before its reader is closed.
//
// # Concurrency
//
// Server is safe for concurrent use; its only shared state is the read
// latency histogram, guarded by its own mutex. Each file request runs on
// its handler goroutine plus at most one read-ahead goroutine, which ends
// before the handler returns.
//
// # Errors
//
// Errors become HTTP statuses in one place (statusOf): library.ErrNotFound
// 404, ErrExists 409, ErrBadSource 400, ErrNoInfo 503, anything else 500.
// API errors are JSON {"error": "..."}; others plain text.
package httpserve
