package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHandshakeRoundTrip(t *testing.T) {
	var ih, id [20]byte
	for i := range ih {
		ih[i], id[i] = byte(i), byte(100+i)
	}
	h := NewHandshake(ih, id)
	if !h.SupportsFast() || !h.SupportsExtended() || h.SupportsDHT() {
		t.Fatalf("NewHandshake bits: % x", h.Reserved)
	}
	h.SetDHT(true)
	// Exact reserved bytes: extension protocol 0x10 in byte 5; fast 0x04 and
	// DHT 0x01 in byte 7.
	if want := [8]byte{0, 0, 0, 0, 0, 0x10, 0, 0x05}; h.Reserved != want {
		t.Fatalf("reserved % x, want % x", h.Reserved, want)
	}
	var b bytes.Buffer
	if err := WriteHandshake(&b, h); err != nil {
		t.Fatal(err)
	}
	if b.Len() != HandshakeLen || b.Bytes()[0] != 19 || string(b.Bytes()[1:20]) != Protocol {
		t.Fatalf("encoding: % x", b.Bytes())
	}
	wire := bytes.Clone(b.Bytes())
	got, err := ReadHandshake(&b)
	if err != nil || got != h {
		t.Fatalf("ReadHandshake: %+v, %v", got, err)
	}
	// Two steps, as a listener does.
	r := bytes.NewReader(wire)
	res, hash, err := ReadHandshakeStart(r)
	if err != nil || res != h.Reserved || hash != ih || r.Len() != 20 {
		t.Fatalf("ReadHandshakeStart: %v %v %v left %d", res, hash, err, r.Len())
	}
	pid, err := ReadPeerID(r)
	if err != nil || pid != id {
		t.Fatalf("ReadPeerID: %v %v", pid, err)
	}
	h.SetFast(false)
	h.SetExtended(false)
	h.SetDHT(false)
	if h.Reserved != [8]byte{} {
		t.Fatalf("clearing bits left % x", h.Reserved)
	}
}

func TestHandshakeErrors(t *testing.T) {
	good := AppendHandshake(nil, NewHandshake([20]byte{1}, [20]byte{2}))
	wrongStr := bytes.Clone(good)
	copy(wrongStr[1:], "BitTorrent protocoL")
	cases := []struct {
		name string
		in   []byte
		want string // substring of the error, or "" for io errors below
		err  error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), "protocol string length 71", ErrHandshake},
		{"encrypted", []byte{0xc3, 0x11, 0x22}, "protocol string length 195", ErrHandshake},
		{"wrong string", wrongStr, `protocol string "BitTorrent protocoL"`, ErrHandshake},
		{"empty", nil, "EOF", io.EOF},
		{"truncated start", good[:30], "unexpected EOF", io.ErrUnexpectedEOF},
		{"truncated peer id", good[:60], "unexpected EOF", io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		_, err := ReadHandshake(bytes.NewReader(c.in))
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.err, c.want)
		}
	}
}

// oneByteReader returns at most one byte per Read, and records how many
// bytes were consumed, to check that a bad length byte stops reading.
type oneByteReader struct {
	data []byte
	read int
}

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.read >= len(r.data) {
		return 0, io.EOF
	}
	p[0] = r.data[r.read]
	r.read++
	return 1, nil
}

func TestHandshakeStopsAtBadLength(t *testing.T) {
	r := &oneByteReader{data: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	if _, _, err := ReadHandshakeStart(r); !errors.Is(err, ErrHandshake) {
		t.Fatal(err)
	}
	if r.read != 1 {
		t.Errorf("read %d bytes before failing, want 1", r.read)
	}
}
