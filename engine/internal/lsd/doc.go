// Package lsd implements BEP 14 Local Service Discovery: it announces the
// client's torrents with BT-SEARCH messages on the multicast groups
// 239.192.152.143:6771 and [ff15::efc0:988f]:6771 of the local network, and
// reports the peers that other clients announce there.
//
// An LSD owns one multicast socket per interface and group. New opens them
// all in the calling goroutine (so a test may call it inside another
// network namespace) and starts one reader goroutine per socket and one
// loop goroutine that owns the schedule: each torrent is announced when it
// joins the set and then once per Config.Interval (5 minutes), and messages
// go out at least Config.Gap (1 minute) apart, each carrying every torrent
// due (up to 24 info hashes, within BEP 14's 1400 bytes). Private torrents are never
// announced. Received announces are parsed (ParseAnnounce, fuzzed), our own
// (same cookie) are ignored, and peers for torrents in the current set go
// to the Peers channel, which drops rather than blocks when full.
//
// The client feeds SetTorrents with its active torrents (the Private flag
// from the info dictionary) whenever the set changes, and hands Peers to
// the torrent with that info hash as a peer source. Close stops everything
// and closes Peers.
//
// Errors: ErrMalformed (wrapped by ParseAnnounce), ErrNoSocket (New found
// no interface to use), ErrClosed (SetTorrents after Close).
package lsd
