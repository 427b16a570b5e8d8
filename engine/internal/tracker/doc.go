// Package tracker owns BitTorrent tracker announces: HTTP and HTTPS trackers
// (BEP 3, compact peer lists from BEP 23, IPv6 "peers6" from BEP 7, with
// dictionary peer lists too), UDP trackers (BEP 15), announce-list tiers
// (BEP 12) and the per-torrent Announcer that keeps announcing on the
// tracker's schedule and delivers peers on a channel.
//
// # Pieces
//
//   - Client is shared by every torrent of an engine. Client.Announce sends one
//     announce to one tracker URL and dispatches on the scheme (http, https,
//     udp). The UDP side uses one socket per Client, opened lazily on the
//     first UDP announce, and caches BEP 15 connection ids per tracker
//     address for one minute, so torrents share them.
//   - Tiers is a pure type (no goroutines, no I/O) holding the BEP 12 order:
//     shuffled within each tier once, tried in order, a tracker that answers
//     moves to the front of its tier.
//   - Announcer runs one torrent's announce loop: "started" first, re-announce
//     at the tracker's interval, an early announce when NeedPeers is called
//     (never sooner than the min interval), "completed" once after Completed,
//     "stopped" with a short timeout when Run's context ends. Peers come out
//     on Peers(); if the reader is slow, batches are merged into one bounded
//     pending batch rather than blocking the loop.
//
// # IPv6 (BEP 7)
//
// HTTP answers give IPv4 peers in "peers" (6-byte entries or dictionaries)
// and IPv6 peers in "peers6" (18-byte entries); UDP answers carry 18-byte
// entries when the tracker was reached over IPv6 (BEP 15). The caps
// (Config.MaxPeers, MaxResponseBytes) count both families together.
// AnnounceRequest.Family picks the family an announce travels over: a
// dual-stack client runs one Announcer per family (AnnouncerConfig.Family),
// so that the tracker sees each of its addresses as a source, and may name
// its address of the other family with AnnounceRequest.IPv4/IPv6 (sent as
// "ipv4="/"ipv6=" on HTTP). A tracker with no address of the requested
// family gives ErrNoAddress. The Client's own HTTP transport keeps one
// connection pool per family; an injected Config.HTTPClient dials as it
// likes.
//
// # Announce schedule
//
// After a successful announce the next one is due after the tracker's
// interval (AnnouncerConfig.DefaultInterval, 30 min, when it gives none),
// never sooner than the floor max(AnnouncerConfig.MinInterval (30 s), the
// tracker's "min interval"). NeedPeers and Completed bring the next
// announce forward to the end of that floor, counted from the start of the
// last round, or to now if it is already over. A round in which every
// tracker failed is retried after RetryInterval (1 min), doubling per failed
// round up to DefaultInterval. Intervals from trackers are clamped to
// [0, 24 h]. UDP requests are retransmitted after UDPRetryBase*2^n (15 s by
// default, as in BEP 15), at most UDPMaxRetries (8) times per Announce.
//
// # Concurrency
//
// Client is safe for concurrent use; Announce may be called from many
// goroutines at once. Tiers is not safe for concurrent use (one owner).
// Announcer's methods are safe to call from any goroutine; Run must not be
// called twice at the same time. Every network wait is bounded by the
// caller's context and by Config.Timeout.
//
// # Errors
//
// A tracker that answers with a "failure reason" (HTTP) or the error action
// (UDP) produces a *FailureError carrying the tracker's text; it wraps
// ErrFailure. Undecodable or truncated answers wrap ErrBadResponse, HTTP
// status errors wrap ErrHTTPStatus, a UDP tracker that never answers within
// the retry budget gives ErrNoResponse, unknown URL schemes give
// ErrUnsupportedScheme, a tracker without an address of the requested
// family gives ErrNoAddress, and announcing on a closed Client gives
// ErrClosed.
// Context cancellation comes back wrapping ctx.Err().
package tracker
