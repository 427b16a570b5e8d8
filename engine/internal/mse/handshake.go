package mse

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
)

// readBufSize is the read buffer of a handshake; it also holds step 1 or 2
// whole (at most 608 bytes), so that a peer writing it in one call on a
// synchronous pipe is never left waiting.
const readBufSize = 4096

// known is the set of methods this package implements.
const known = Plaintext | RC4

// InitiateHandshake runs side A of the handshake on rw for the torrent whose
// info hash is skey. ia, at most MaxInitialPayload bytes, travels encrypted
// in step 3 (our BitTorrent handshake, usually); provide is the set of
// methods we accept. It returns the stream for the rest of the connection
// and the method the peer selected. The caller bounds the handshake with
// deadlines on the connection.
func InitiateHandshake(rw io.ReadWriter, skey [20]byte, ia []byte, provide Method) (io.ReadWriter, Method, error) {
	return initiate(rw, skey, ia, provide, rand.Reader)
}

// ReceiveHandshake runs side B of the handshake on rw. lookup gets
// HASH('req2', SKEY) (see SKeyHash) and returns the info hash of the torrent
// it belongs to. accept is the set of methods we allow; of those the
// initiator offers, prefer is selected when it is one of them, else the
// other. It returns the stream for the rest of the connection (starting
// after IA), the info hash, the selected method and the initiator's initial
// payload IA (often its BitTorrent handshake; possibly empty). The caller
// bounds the handshake with deadlines on the connection.
func ReceiveHandshake(rw io.ReadWriter, lookup func(req2 [20]byte) (skey [20]byte, ok bool), accept, prefer Method) (io.ReadWriter, [20]byte, Method, []byte, error) {
	return receive(rw, lookup, accept, prefer, rand.Reader)
}

func checkMethods(m Method) error {
	if m&known == 0 || m&^known != 0 {
		return fmt.Errorf("mse: method set %v: want plaintext, rc4 or both", m)
	}
	return nil
}

// initiate is InitiateHandshake with the randomness from rnd.
func initiate(rw io.ReadWriter, skey [20]byte, ia []byte, provide Method, rnd io.Reader) (io.ReadWriter, Method, error) {
	if err := checkMethods(provide); err != nil {
		return nil, 0, err
	}
	if len(ia) > MaxInitialPayload {
		return nil, 0, fmt.Errorf("mse: initial payload of %d bytes, at most %d", len(ia), MaxInitialPayload)
	}
	kp, err := newKeyPair(rnd)
	if err != nil {
		return nil, 0, err
	}
	// Step 1: Ya, PadA.
	out, err := appendPad(kp.pub[:], rnd)
	if err != nil {
		return nil, 0, err
	}
	if _, err := rw.Write(out); err != nil {
		return nil, 0, fmt.Errorf("mse: send public key: %w", err)
	}
	// Step 2: Yb (PadB is skipped while synchronising on VC).
	br := bufio.NewReaderSize(rw, readBufSize)
	var yb [KeyLen]byte
	if _, err := io.ReadFull(br, yb[:]); err != nil {
		return nil, 0, fmt.Errorf("mse: read public key: %w", noEOF(err))
	}
	s, err := kp.secret(yb[:])
	if err != nil {
		return nil, 0, err
	}
	enc := newCipher("keyA", &s, skey)
	dec := newCipher("keyB", &s, skey)

	// Step 3.
	req1 := hash([]byte("req1"), s[:])
	req2 := SKeyHash(skey)
	req3 := hash([]byte("req3"), s[:])
	msg := make([]byte, 0, 2*20+len(vc)+4+2+2+len(ia))
	msg = append(msg, req1[:]...)
	for i := range req2 {
		msg = append(msg, req2[i]^req3[i])
	}
	start := len(msg)
	msg = append(msg, vc[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(provide))
	msg = binary.BigEndian.AppendUint16(msg, 0) // len(PadC)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(ia)))
	msg = append(msg, ia...)
	enc.XORKeyStream(msg[start:], msg[start:])
	if _, err := rw.Write(msg); err != nil {
		return nil, 0, fmt.Errorf("mse: send step 3: %w", err)
	}

	// Step 4: find ENCRYPT(VC) after PadB, then crypto_select, PadD.
	var encVC [len(vc)]byte
	dec.XORKeyStream(encVC[:], vc[:])
	if err := syncOn(br, encVC[:], MaxPad+len(encVC), "encrypted VC"); err != nil {
		return nil, 0, err
	}
	var hdr [6]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("mse: read crypto_select: %w", noEOF(err))
	}
	dec.XORKeyStream(hdr[:], hdr[:])
	sel := Method(binary.BigEndian.Uint32(hdr[:4]))
	if err := skipPad(br, dec, int(binary.BigEndian.Uint16(hdr[4:])), "PadD"); err != nil {
		return nil, 0, err
	}
	if (sel != RC4 && sel != Plaintext) || sel&provide == 0 {
		return nil, 0, fmt.Errorf("%w: peer selected %v, we provided %v", ErrHandshake, sel, provide)
	}
	st := &stream{r: br, w: rw}
	if sel == RC4 {
		st.enc, st.dec = enc, dec
	}
	return st, sel, nil
}

// receive is ReceiveHandshake with the randomness from rnd.
func receive(rw io.ReadWriter, lookup func([20]byte) ([20]byte, bool), accept, prefer Method, rnd io.Reader) (io.ReadWriter, [20]byte, Method, []byte, error) {
	var skey [20]byte
	if err := checkMethods(accept); err != nil {
		return nil, skey, 0, nil, err
	}
	if prefer != RC4 && prefer != Plaintext {
		return nil, skey, 0, nil, fmt.Errorf("mse: preferred method %v: want plaintext or rc4", prefer)
	}
	// Step 1: Ya (PadA is skipped while synchronising on req1).
	br := bufio.NewReaderSize(rw, readBufSize)
	var ya [KeyLen]byte
	if _, err := io.ReadFull(br, ya[:]); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: read public key: %w", noEOF(err))
	}
	kp, err := newKeyPair(rnd)
	if err != nil {
		return nil, skey, 0, nil, err
	}
	s, err := kp.secret(ya[:])
	if err != nil {
		return nil, skey, 0, nil, err
	}
	// Step 2: Yb, PadB.
	out, err := appendPad(kp.pub[:], rnd)
	if err != nil {
		return nil, skey, 0, nil, err
	}
	if _, err := rw.Write(out); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: send public key: %w", err)
	}

	// Step 3: HASH('req1', S) after PadA, then the SKEY hash.
	req1 := hash([]byte("req1"), s[:])
	if err := syncOn(br, req1[:], MaxPad+len(req1), "req1 hash"); err != nil {
		return nil, skey, 0, nil, err
	}
	var req2 [20]byte
	if _, err := io.ReadFull(br, req2[:]); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: read SKEY hash: %w", noEOF(err))
	}
	req3 := hash([]byte("req3"), s[:])
	for i := range req2 {
		req2[i] ^= req3[i]
	}
	skey, ok := lookup(req2)
	if !ok {
		return nil, skey, 0, nil, ErrUnknownSKey
	}
	dec := newCipher("keyA", &s, skey)
	enc := newCipher("keyB", &s, skey)
	var hdr [len(vc) + 4 + 2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: read crypto_provide: %w", noEOF(err))
	}
	dec.XORKeyStream(hdr[:], hdr[:])
	if !bytes.Equal(hdr[:len(vc)], vc[:]) {
		return nil, skey, 0, nil, fmt.Errorf("%w: bad verification constant", ErrHandshake)
	}
	provide := Method(binary.BigEndian.Uint32(hdr[len(vc):]))
	if err := skipPad(br, dec, int(binary.BigEndian.Uint16(hdr[len(vc)+4:])), "PadC"); err != nil {
		return nil, skey, 0, nil, err
	}
	var lenIA [2]byte
	if _, err := io.ReadFull(br, lenIA[:]); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: read len(IA): %w", noEOF(err))
	}
	dec.XORKeyStream(lenIA[:], lenIA[:])
	ia := make([]byte, binary.BigEndian.Uint16(lenIA[:])) // at most MaxInitialPayload
	if _, err := io.ReadFull(br, ia); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: read IA: %w", noEOF(err))
	}
	dec.XORKeyStream(ia, ia)
	var sel Method
	switch common := provide & accept; {
	case common&prefer != 0:
		sel = prefer
	case common&RC4 != 0:
		sel = RC4
	case common&Plaintext != 0:
		sel = Plaintext
	default:
		return nil, skey, 0, nil, fmt.Errorf("%w: peer provides %v, we accept %v", ErrNoMethod, provide, accept)
	}

	// Step 4: ENCRYPT(VC, crypto_select, len(PadD) = 0).
	msg := make([]byte, 0, len(vc)+4+2)
	msg = append(msg, vc[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(sel))
	msg = binary.BigEndian.AppendUint16(msg, 0)
	enc.XORKeyStream(msg, msg)
	if _, err := rw.Write(msg); err != nil {
		return nil, skey, 0, nil, fmt.Errorf("mse: send crypto_select: %w", err)
	}
	st := &stream{r: br, w: rw}
	if sel == RC4 {
		st.enc, st.dec = enc, dec
	}
	return st, skey, sel, ia, nil
}

// appendPad appends 0 to MaxPad random bytes to b.
func appendPad(b []byte, rnd io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(rnd, n[:]); err != nil {
		return nil, fmt.Errorf("mse: random padding: %w", err)
	}
	l := int(binary.BigEndian.Uint16(n[:])) % (MaxPad + 1)
	out := make([]byte, len(b)+l)
	copy(out, b)
	if _, err := io.ReadFull(rnd, out[len(b):]); err != nil {
		return nil, fmt.Errorf("mse: random padding: %w", err)
	}
	return out, nil
}

// syncOn reads from br until it has read pattern, failing when pattern has
// not ended within limit bytes.
func syncOn(br *bufio.Reader, pattern []byte, limit int, what string) error {
	seen := make([]byte, 0, limit)
	for len(seen) < limit {
		c, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("mse: looking for the %s: %w", what, noEOF(err))
		}
		seen = append(seen, c)
		if bytes.HasSuffix(seen, pattern) {
			return nil
		}
	}
	return fmt.Errorf("%w: no %s within %d bytes", ErrHandshake, what, limit)
}

// skipPad reads and decrypts n bytes of padding, at most MaxPad.
func skipPad(br *bufio.Reader, dec interface{ XORKeyStream(dst, src []byte) }, n int, what string) error {
	if n > MaxPad {
		return fmt.Errorf("%w: %s of %d bytes, at most %d", ErrHandshake, what, n, MaxPad)
	}
	var pad [MaxPad]byte
	if _, err := io.ReadFull(br, pad[:n]); err != nil {
		return fmt.Errorf("mse: read %s: %w", what, noEOF(err))
	}
	dec.XORKeyStream(pad[:n], pad[:n])
	return nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: the peer hung up inside the
// handshake.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
