// Package bitfield is the BitTorrent piece bitmap of BEP 3: one bit per
// piece, packed most significant bit first, spare bits at the end zero.
//
// A Bitfield is a plain value with no locking: it belongs to one goroutine
// (the torrent loop) at a time. Methods with a piece index out of range
// panic, as slice indexing does; indexes that come from the network must be
// checked with Len first. Parse and Validate return errors wrapping
// ErrInvalid for bitmaps received from peers that have the wrong length or
// set spare bits.
package bitfield
