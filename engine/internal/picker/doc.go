// Package picker decides which blocks to request from which peer.
//
// A Picker owns the download state of one torrent at block granularity:
// which pieces we have, which blocks are requested from which peer, which
// blocks arrived (and from whom), how many peers have each piece, and the
// priority of every piece. The torrent goroutine feeds it events (peer
// bitfields and haves, received, rejected and timed-out blocks, hash
// results, reader windows) and asks it for requests with Pick.
//
// # Priorities
//
// Every piece has an effective Priority: the maximum of the default priority
// (SetDefault) and of every owner's ranges (SetRanges; an owner is typically
// one open reader). Classes are None < Normal < HeadTail < Readahead < Now.
// A spent piece (SetSpent: one a capped cache evicted) gets its priority
// only from Readahead and Now ranges. Pieces at None are never requested.
// Pick serves the highest class first:
//   - Now and Readahead pieces go strictly in streaming order: by ascending
//     distance from the start of the range that gave them their priority
//     (so two readers progress together), then by piece index. With one
//     reader this is ascending piece index. A Readahead piece that another
//     peer is fetching (it requested a block last, and blocks are still
//     outstanding) is left to it and comes last: from one peer a piece
//     arrives in order, which lets the cache hash and buffer it as it
//     comes. Now pieces are shared at once.
//   - Split by shares: once SetShare gave peers weights (their rates), a
//     Now piece, and the first nearShared missing Readahead pieces (what
//     a reader reads next), are split among the peers that have them in
//     proportion to their weights: a peer takes only its share of the
//     piece's missing blocks, rounded up, whatever its pipeline, so that
//     the piece comes from all of them at once and one peer's queue does
//     not hold the reader up. A peer that delivered its share of a Now
//     piece, with a short queue (lateQueue), takes over the blocks still
//     outstanding at other peers once they are late there (dupDue), also
//     outside endgame: a rate-limited seeder that spent its quota sends
//     nothing until its next tick. Without weights nothing is split.
//   - HeadTail and Normal pieces go rarest first with a random tie-break,
//     pieces already started first (to keep few pieces half done), and in
//     random order while we have fewer than 4 pieces.
//
// Changing priorities is cheap (proportional to the pieces whose priority
// changes) and takes effect at the next Pick. After priorities drop, or after
// SetHave(piece, true), CancelUnwanted lists the outstanding requests that are
// no longer useful so the engine can send Cancel.
//
// # Requests and endgame
//
// Outside endgame a block is outstanding at one peer at most, but for the
// late blocks of a Now piece taken over by a peer done with its share
// (see above). Endgame starts
// when every missing block of every wanted piece that some peer has is
// requested (pieces nobody has do not hold it back); Pick may then
// request a block already outstanding at other peers, up to MaxDuplicates
// peers per block. When a block arrives, Received returns the duplicate
// requests held by other peers so the engine can cancel them. While some
// missing pieces are at None (readers' windows are all that is wanted),
// only Now pieces get duplicates, only for blocks outstanding longer
// than the time each peer holding them is expected to answer in (its
// SetDuplicateAfter, NowDuplicateAfter when not set, plus SetQueueTime for
// each request that was ahead of the block there), by the clock the
// caller gives SetClock, and only at a peer with fewer than lateQueue
// requests outstanding: a window all requested means the download is
// ahead of its reader, duplicating what is on its way in time would only
// fetch the same bytes twice, and a duplicate behind a deep queue comes no
// sooner. NextLate tells when the next such block becomes late, so that
// the caller picks again then rather than at its next event.
//
// PickAllowed is Pick restricted to a peer's BEP 6 allowed-fast pieces,
// for use while that peer chokes us.
//
// # Parole
//
// SetParole puts a peer on parole (it shared a piece that failed its hash
// check): it then only gets pieces no other peer has blocks of, and the
// pieces it starts are left to it alone, so that its next bad piece names
// it. Such a piece opens to every peer when its owner gives a block back
// (reject, time-out, choke, disconnect), when another peer delivers one
// of its blocks, or when the owner is taken off parole.
//
// Received accepts a block whether or not it was requested from that peer
// (Receipt.Expected says which): a block that arrives after a Cancel, a
// Choked or a TimedOut is still stored if we lack it. Deciding whether an
// unrequested block breaks the protocol is the engine's business.
//
// A piece whose blocks have all arrived waits for its hash check (Receipt
// PieceReady); the engine then calls PieceComplete or PieceFailed. Blocks are
// remembered with the peer that delivered them, so PieceFailed can name the
// peers to blame.
//
// # Concurrency
//
// A Picker is not safe for concurrent use. It is meant to be owned by a
// single goroutine (the torrent goroutine). It starts no goroutines, does no
// I/O and never reads the clock.
//
// # Errors
//
// The picker returns no errors. New panics on inconsistent geometry, which
// metainfo has already validated. Piece indices and requests that come from a
// remote peer (PeerHave, Received, Rejected, TimedOut) are checked: out of
// range values and requests that do not match the block geometry are
// ignored. The engine should still validate them itself to drop peers that
// break the protocol.
package picker
