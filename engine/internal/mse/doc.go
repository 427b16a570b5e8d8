// Package mse implements BitTorrent Message Stream Encryption, also called
// Protocol Encryption (MSE/PE): the obfuscated handshake that libtorrent,
// Transmission, aria2, Vuze and µTorrent speak before the BitTorrent
// handshake, and the RC4 stream that may follow it.
//
// # What it owns
//
// The protocol only, over an io.ReadWriter (in practice a TCP connection):
//
//	1 A->B: Diffie-Hellman Ya, PadA
//	2 B->A: Diffie-Hellman Yb, PadB
//	3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//	        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//	4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//	5 A->B: ENCRYPT2(payload)
//
// The Diffie-Hellman group is the 768-bit prime of the specification with
// generator 2 and 160-bit private keys; S is the 96-byte shared secret and
// SKEY the torrent's info hash. ENCRYPT is RC4 keyed with
// HASH('keyA', S, SKEY) for data from A and HASH('keyB', S, SKEY) for data
// from B, the first 1024 bytes of each keystream discarded; VC is eight zero
// bytes. ENCRYPT2 is the method B selected: RC4 (the same keystreams go on)
// or Plaintext (the bytes after step 4 travel in the clear).
//
// InitiateHandshake runs side A: IA, the initial payload, is normally our
// BitTorrent handshake. ReceiveHandshake runs side B: it finds the torrent
// from HASH('req2', SKEY) through a lookup function (build the keys with
// SKeyHash), selects among the methods the initiator offers and the
// caller accepts the one the caller prefers, and returns the initiator's IA. Both
// return an io.ReadWriter that carries the rest of the connection: reads
// start right after the handshake (after IA on side B) and writes are
// encrypted when RC4 was selected. PadA and PadB are 0 to 512 random bytes;
// we send PadC and PadD empty and accept up to 512 bytes of them.
//
// # Hostile input
//
// Every length the peer controls is capped: the search for the
// synchronisation points reads at most 512+20 (side B) or 512+8 (side A)
// bytes past the public key, pads are at most 512 bytes and IA at most
// 65535 (its 16-bit length). Degenerate public keys (0, 1, P-1 and beyond)
// are refused. The package sets no deadlines: the caller bounds the whole
// handshake with deadlines on the connection.
//
// # Concurrency
//
// A handshake runs on the caller's goroutine and uses the connection alone.
// The returned stream may be read by one goroutine while another writes to
// it (each direction has its own cipher), but neither direction may be used
// by two goroutines at once. After a failed or short Write the stream's
// cipher no longer matches the peer's, so every later Write fails.
//
// # Errors
//
// ErrHandshake wraps protocol violations (no synchronisation point, bad
// verification constant, oversized pads, degenerate keys, an unsupported
// selection); ErrUnknownSKey says no torrent matched the SKEY hash;
// ErrNoMethod says the peers share no crypto method. I/O errors come back
// wrapped, with io.EOF inside a handshake turned into io.ErrUnexpectedEOF.
package mse
