package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func roundTripMessages() []Message {
	return []Message{
		{Keepalive: true},
		{ID: Choke}, {ID: Unchoke}, {ID: Interested}, {ID: NotInterested},
		{ID: HaveAll}, {ID: HaveNone},
		{ID: Have, Index: 7}, {ID: Suggest, Index: 1 << 31}, {ID: AllowedFast, Index: 0},
		{ID: Request, Index: 3, Begin: 16384, Length: BlockSize},
		{ID: Cancel, Index: 3, Begin: 0, Length: 1},
		{ID: Reject, Index: 9, Begin: 32768, Length: MaxBlockSize},
		{ID: Piece, Index: 2, Begin: 16384, Length: 5, Data: []byte("hello")},
		{ID: Piece, Index: 0, Begin: 0, Length: MaxBlockSize, Data: bytes.Repeat([]byte{0xab}, MaxBlockSize)},
		{ID: Bitfield, Data: []byte{0xff, 0x80}},
		{ID: Bitfield, Data: []byte{}},
		{ID: Port, Port: 6881},
		{ID: Extended, ExtID: 0, Data: []byte("d1:md6:ut_pexi1eee")},
		{ID: Extended, ExtID: 3, Data: []byte{}},
		{ID: ID(21), Data: []byte{1, 2, 3}}, // unknown ids keep their payload
	}
}

func TestMessageRoundTrip(t *testing.T) {
	var stream []byte
	msgs := roundTripMessages()
	for _, m := range msgs {
		stream = AppendMessage(stream, m)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	buf := make([]byte, 0, 64)
	for i, want := range msgs {
		got, err := ReadMessage(r, 0, buf)
		if err != nil {
			t.Fatalf("message %d (%v): %v", i, want, err)
		}
		if want.Data == nil && !want.Keepalive && got.Data != nil && len(got.Data) == 0 {
			got.Data = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d: got %+v, want %+v", i, got, want)
		}
		// And through ParseMessage of the same bytes.
		enc := AppendMessage(nil, want)
		got2, err := ParseMessage(enc[4:])
		if err != nil || got2.ID != want.ID || got2.Index != want.Index || !bytes.Equal(got2.Data, want.Data) {
			t.Errorf("ParseMessage %d: got %+v, %v", i, got2, err)
		}
	}
	if _, err := ReadMessage(r, 0, buf); err != io.EOF {
		t.Fatalf("after last message: %v, want io.EOF", err)
	}
}

func TestMessageEncoding(t *testing.T) {
	// Exact bytes for a few messages, from BEP 3 and BEP 6.
	cases := []struct {
		m    Message
		want []byte
	}{
		{Message{Keepalive: true}, []byte{0, 0, 0, 0}},
		{Message{ID: Interested}, []byte{0, 0, 0, 1, 2}},
		{Message{ID: Have, Index: 0x01020304}, []byte{0, 0, 0, 5, 4, 1, 2, 3, 4}},
		{Message{ID: Request, Index: 1, Begin: 2, Length: 3}, []byte{0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}},
		{Message{ID: Piece, Index: 1, Begin: 2, Data: []byte{9}}, []byte{0, 0, 0, 10, 7, 0, 0, 0, 1, 0, 0, 0, 2, 9}},
		{Message{ID: Port, Port: 0x1ae1}, []byte{0, 0, 0, 3, 9, 0x1a, 0xe1}},
		{Message{ID: HaveAll}, []byte{0, 0, 0, 1, 14}},
		{Message{ID: Extended, ExtID: 2, Data: []byte("x")}, []byte{0, 0, 0, 3, 20, 2, 'x'}},
	}
	for _, c := range cases {
		if got := AppendMessage(nil, c.m); !bytes.Equal(got, c.want) {
			t.Errorf("%v: % x, want % x", c.m, got, c.want)
		}
	}
	hdr := AppendPieceHeader(nil, 1, 2, 1)
	if len(hdr) != PieceHeaderLen || !bytes.Equal(append(hdr, 9), cases[4].want) {
		t.Errorf("AppendPieceHeader: % x", hdr)
	}
}

func frame(payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

func TestReadMessageMalformed(t *testing.T) {
	big := make([]byte, 4+1+8+MaxBlockSize+1)
	copy(big, frame(7))
	n := 1 + 8 + MaxBlockSize + 1
	big[0], big[1], big[2], big[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	big[4] = 7
	cases := []struct {
		name   string
		in     []byte
		maxLen uint32
		reason string
	}{
		{"choke with payload", frame(0, 1), 0, "length 2, want 1"},
		{"have too short", frame(4, 0, 0, 1), 0, "length 4, want 5"},
		{"have too long", frame(4, 0, 0, 0, 1, 0), 0, "length 6, want 5"},
		{"request short", frame(6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64), 0, "length 12, want 13"},
		{"request zero length", frame(6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), 0, "block length 0"},
		{"request oversized", frame(6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1), 0, "block length 131073 over the cap"},
		{"cancel long", frame(8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64, 0, 0), 0, "length 14, want 13"},
		{"reject oversized", frame(16, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0, 0, 0), 0, "over the cap"},
		{"piece without header", frame(7, 0, 0, 0, 1), 0, "shorter than the 9-byte header"},
		{"piece empty block", frame(7, 0, 0, 0, 1, 0, 0, 0, 0), 0, "empty block"},
		{"piece oversized block", big, 1 << 20, "over the cap of 131072"},
		{"port short", frame(9, 0x1a), 0, "length 2, want 3"},
		{"have all with payload", frame(14, 0), 0, "length 2, want 1"},
		{"allowed fast short", frame(17, 0, 0), 0, "length 3, want 5"},
		{"extended without id", frame(20), 0, "no extended message id"},
		{"over maxLen", frame(5, 0, 0, 0, 0, 0), 5, "message length 6 over the cap of 5"},
		{"over default maxLen", []byte{0, 0x10, 0, 1, 5}, 0, "over the cap of 1048576"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(c.in), c.maxLen, nil)
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want a *ProtocolError", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %q does not say %q", err, c.reason)
			}
		})
	}
}

func TestReadMessageTruncated(t *testing.T) {
	full := AppendMessage(nil, Message{ID: Request, Index: 1, Begin: 2, Length: 3})
	for cut := 1; cut < len(full); cut++ {
		_, err := ReadMessage(bytes.NewReader(full[:cut]), 0, nil)
		if err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	if _, err := ReadMessage(bytes.NewReader(nil), 0, nil); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

func TestReadMessageBuffer(t *testing.T) {
	block := bytes.Repeat([]byte{1}, BlockSize)
	stream := AppendMessage(nil, Message{ID: Piece, Index: 1, Data: block})
	buf := make([]byte, 0, BlockSize+PieceHeaderLen)
	m, err := ReadMessage(bytes.NewReader(stream), 0, buf)
	if err != nil {
		t.Fatal(err)
	}
	if &m.Data[0] != &buf[:cap(buf)][9] {
		t.Error("piece data does not alias the caller's buffer")
	}
	// A message larger than the buffer gets its own allocation.
	small := make([]byte, 0, 16)
	m, err = ReadMessage(bytes.NewReader(stream), 0, small)
	if err != nil || !bytes.Equal(m.Data, block) {
		t.Fatalf("large message into small buffer: %v", err)
	}
}

func TestReadAppendNoAlloc(t *testing.T) {
	block := bytes.Repeat([]byte{1}, BlockSize)
	stream := AppendMessage(nil, Message{ID: Piece, Index: 1, Data: block})
	stream = AppendMessage(stream, Message{ID: Have, Index: 5})
	rd := bytes.NewReader(stream)
	buf := make([]byte, 0, 32<<10)
	out := make([]byte, 0, 32<<10)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(stream)
		for range 2 {
			m, err := ReadMessage(rd, 0, buf)
			if err != nil {
				panic(err)
			}
			out = AppendMessage(out[:0], m)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read+append, want 0", allocs)
	}
}

func TestIDString(t *testing.T) {
	if Piece.String() != "piece" || ID(99).String() != "unknown(99)" || ID(99).Known() || !Extended.Known() {
		t.Error("ID names wrong")
	}
	m := Message{ID: Request, Index: 1, Begin: 2, Length: 3}
	if m.String() != "request 1+2/3" {
		t.Errorf("String() = %q", m.String())
	}
}

func TestMaxMessageLen(t *testing.T) {
	if MaxMessageLen(1000) != DefaultMaxMessageLen {
		t.Error("small torrent should use the default cap")
	}
	n := 10_000_000
	if got := MaxMessageLen(n); got != uint32(1+(n+7)/8) {
		t.Errorf("MaxMessageLen(%d) = %d", n, got)
	}
}

func TestReadMessageLarge(t *testing.T) {
	// A bitfield of 300 KiB: read past the 64 KiB first chunk, growing.
	bits := make([]byte, 300<<10)
	for i := range bits {
		bits[i] = byte(i * 7)
	}
	stream := AppendMessage(nil, Message{ID: Bitfield, Data: bits})
	m, err := ReadMessage(bufio.NewReader(bytes.NewReader(stream)), 0, make([]byte, 0, 1024))
	if err != nil || m.ID != Bitfield || !bytes.Equal(m.Data, bits) {
		t.Fatalf("large bitfield: %v", err)
	}
	// The same message cut anywhere ends with io.ErrUnexpectedEOF.
	for _, cut := range []int{5, 64 << 10, 64<<10 + 5, 200 << 10, len(stream) - 1} {
		if _, err := ReadMessage(bytes.NewReader(stream[:cut]), 0, nil); err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
}
