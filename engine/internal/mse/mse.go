package mse

import (
	"crypto/rc4"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// Method is a crypto method bit of crypto_provide and crypto_select.
type Method uint32

// The crypto methods of the specification.
const (
	// Plaintext leaves the payload after the handshake unencrypted.
	Plaintext Method = 0x01
	// RC4 encrypts the whole connection.
	RC4 Method = 0x02
)

// String returns "plaintext", "rc4", both joined with "+", or the bits in hex.
func (m Method) String() string {
	var parts []string
	if m&RC4 != 0 {
		parts = append(parts, "rc4")
	}
	if m&Plaintext != 0 {
		parts = append(parts, "plaintext")
	}
	if rest := m &^ (RC4 | Plaintext); rest != 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "+")
}

// Limits of the protocol.
const (
	// MaxPad is the longest PadA, PadB, PadC or PadD.
	MaxPad = 512
	// MaxInitialPayload is the longest IA (its length is 16 bits).
	MaxInitialPayload = 1<<16 - 1
	// KeyLen is the length of a public key and of the shared secret S.
	KeyLen = 96
)

// Errors of the package.
var (
	// ErrHandshake wraps every violation of the protocol by the peer.
	ErrHandshake = errors.New("mse: bad handshake")
	// ErrUnknownSKey is returned by ReceiveHandshake when the lookup found
	// no torrent for the initiator's SKEY hash.
	ErrUnknownSKey = errors.New("mse: no torrent for the peer's SKEY hash")
	// ErrNoMethod is returned when the peers have no crypto method in common.
	ErrNoMethod = errors.New("mse: no crypto method in common")
)

// The Diffie-Hellman group: the 768-bit prime P of the specification and
// generator 2. These values are never modified.
var (
	prime   = mustHex("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563")
	primeM1 = new(big.Int).Sub(prime, big.NewInt(1))
	gen     = big.NewInt(2)
	one     = big.NewInt(1)
)

func mustHex(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("mse: bad constant " + s)
	}
	return n
}

// vc is the verification constant: eight zero bytes.
var vc [8]byte

// keyPair is one side's Diffie-Hellman key pair.
type keyPair struct {
	x   *big.Int
	pub [KeyLen]byte
}

// newKeyPair draws a 160-bit private key from rnd.
func newKeyPair(rnd io.Reader) (keyPair, error) {
	var b [20]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return keyPair{}, fmt.Errorf("mse: random key: %w", err)
	}
	b[0] |= 0x80 // a full 160 bits, never zero
	k := keyPair{x: new(big.Int).SetBytes(b[:])}
	new(big.Int).Exp(gen, k.x, prime).FillBytes(k.pub[:])
	return k, nil
}

// secret computes S from the peer's public key, refusing keys that would
// make S trivial.
func (k keyPair) secret(peer []byte) ([KeyLen]byte, error) {
	var s [KeyLen]byte
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(one) <= 0 || y.Cmp(primeM1) >= 0 {
		return s, fmt.Errorf("%w: degenerate public key", ErrHandshake)
	}
	new(big.Int).Exp(y, k.x, prime).FillBytes(s[:])
	return s, nil
}

// hash is SHA-1 over the concatenation of parts.
func hash(parts ...[]byte) [20]byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [20]byte
	h.Sum(out[:0])
	return out
}

// SKeyHash returns HASH('req2', skey), the value the initiator hides in
// step 3 and that ReceiveHandshake passes to its lookup function. A
// receiver computes it once per torrent it serves.
func SKeyHash(skey [20]byte) [20]byte { return hash([]byte("req2"), skey[:]) }

// newCipher returns the RC4 cipher keyed with HASH(name, S, SKEY), its
// first 1024 bytes of keystream discarded.
func newCipher(name string, s *[KeyLen]byte, skey [20]byte) *rc4.Cipher {
	key := hash([]byte(name), s[:], skey[:])
	c, err := rc4.NewCipher(key[:])
	if err != nil {
		panic(err) // a 20-byte key is always valid
	}
	var discard [1024]byte
	c.XORKeyStream(discard[:], discard[:])
	return c
}

// maxChunk bounds the encryption buffer of a stream: longer writes are
// encrypted and written in pieces of this size.
const maxChunk = 64 << 10

// stream is the connection after the handshake.
type stream struct {
	r    io.Reader   // buffered connection: may hold bytes read past the handshake
	w    io.Writer   // the connection
	dec  *rc4.Cipher // nil for Plaintext
	enc  *rc4.Cipher // nil for Plaintext
	wbuf []byte
	werr error // sticky: the cipher is out of step after a failed write
}

// Read reads and, with RC4, decrypts.
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.dec != nil && n > 0 {
		s.dec.XORKeyStream(p[:n], p[:n])
	}
	return n, err
}

// Write encrypts with RC4 into its own buffer (p is left as it is) and
// writes.
func (s *stream) Write(p []byte) (int, error) {
	if s.enc == nil {
		return s.w.Write(p)
	}
	if s.werr != nil {
		return 0, s.werr
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxChunk)
		if cap(s.wbuf) < n {
			s.wbuf = make([]byte, n)
		}
		buf := s.wbuf[:n]
		s.enc.XORKeyStream(buf, p[:n])
		m, err := s.w.Write(buf)
		written += m
		if err == nil && m < n {
			err = io.ErrShortWrite
		}
		if err != nil {
			s.werr = fmt.Errorf("mse: stream unusable after a failed write: %w", err)
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
