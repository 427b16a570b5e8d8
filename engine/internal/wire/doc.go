// Package wire encodes and decodes the BitTorrent peer wire protocol: the
// BEP 3 handshake and messages, the BEP 6 fast extension (have all/none,
// reject, suggest, allowed fast and the allowed-fast set algorithm), the
// BEP 10 extension protocol handshake, and the payloads of the ut_metadata
// (BEP 9) and ut_pex (BEP 11) extension messages.
//
// The package does no network I/O of its own beyond the io.Reader and
// io.Writer it is given, keeps no state between calls, and is safe for
// concurrent use (each call owns its arguments). Piece bitmaps live in the
// subpackage bitfield.
//
// # Handshake
//
// NewHandshake builds our handshake with the fast extension and the
// extension protocol bits set (SetDHT adds the DHT bit). WriteHandshake sends
// it in one write. A listener that serves many torrents reads the first 48
// bytes with ReadHandshakeStart, picks the torrent by info hash, answers with
// its own handshake, then reads the peer id with ReadPeerID; an outgoing
// connection uses ReadHandshake. A wrong protocol string is an error wrapping
// ErrHandshake that says what was seen.
//
// # Messages
//
// ReadMessage reads one length-prefixed message into a caller-owned buffer
// and validates its exact length for its id (have 5 bytes, request 13, port
// 3, ...); Message.Data aliases the buffer and is valid until the next call.
// AppendMessage encodes a message into a byte slice without allocating when
// the slice has room; AppendPieceHeader writes only the 13-byte header of a
// piece message so the block itself can be written from where it lies
// (net.Buffers) without a copy.
//
// Messages with an id this package does not know are returned with their
// payload in Data and no error: BEP 3 says to ignore them, and the engine
// does so. Port messages are decoded but the engine may ignore them.
//
// # Errors
//
// A message that breaks the protocol (wrong length for its id, longer than
// the cap, a block over MaxBlockSize, a request of length zero) is reported
// as a *ProtocolError, which wraps ErrProtocol and names the message and the
// reason: the engine logs it and drops the peer. I/O errors are returned
// unchanged: io.EOF at a clean message boundary, io.ErrUnexpectedEOF when
// the stream ends inside a message, and the connection's own errors (for
// example a read deadline). Extension payloads that fail to parse give an
// error wrapping ErrExtension (ExtHandshake), ErrMetadataMsg (ut_metadata)
// or ErrPex (ut_pex).
//
// # Limits
//
// Every count a remote peer controls is capped before anything is
// allocated: the message length by the caller's maxLen (DefaultMaxMessageLen
// or MaxMessageLen for a torrent), blocks by MaxBlockSize, extension names
// by MaxExtensions and MaxExtNameLen, metadata sizes by MaxMetadataSize and
// PEX peers by MaxPexPeers per message.
package wire
