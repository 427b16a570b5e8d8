// Package metadata assembles a torrent's info dictionary from the 16 KiB
// pieces of ut_metadata (BEP 9) and serves ours to other peers.
//
// An Assembler is created once the size of the info dictionary is known
// (from a peer's extension handshake "metadata_size") and decides which
// piece to ask which peer for: several peers are asked for different pieces
// in parallel, a piece is asked again of another peer after a reject, a
// timeout or the peer leaving, and a peer is not asked again for a piece it
// rejected until Timeout has passed. When every piece is present the bytes are checked against the
// info hash (SHA-1 of the info dictionary).
//
// Assembler is a plain type with no locking and no goroutines: it belongs
// to the torrent goroutine, which passes in the current time where timing
// matters. Peers are identified by any comparable key the engine chooses
// (a connection pointer, an address).
//
// Errors: New rejects a size of zero or over wire.MaxMetadataSize
// (ErrSize). Add rejects a piece index out of range or a piece of the wrong
// size (ErrPieceSize: drop that peer) and pieces not outstanding from that
// peer (ErrUnrequested: a late answer after a timeout or reset; ignore the
// message). A completed dictionary whose hash does not match gives a
// *HashMismatchError (wrapping ErrHashMismatch) naming every peer that
// contributed a piece. If one peer sent them all, it is Guilty: it is
// banned from the Assembler and the engine drops it. If several did, the
// liar is unknown, so the Assembler starts over fetching from one peer at a
// time; the next mismatch then names the liar alone. Piece serves a piece
// of our own info dictionary.
package metadata
