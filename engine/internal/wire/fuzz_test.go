package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// Seeds live in testdata/fuzz/<FuzzName>/ (go's corpus format); f.Add adds
// a few more built with the encoders.

func FuzzReadMessage(f *testing.F) {
	for _, m := range roundTripMessages() {
		f.Add(AppendMessage(nil, m), uint32(0))
	}
	f.Add([]byte{0, 0, 0, 5, 4, 0, 0}, uint32(9))
	f.Fuzz(func(t *testing.T, data []byte, maxLen uint32) {
		maxLen %= 1 << 18 // keep allocations small; 0 is the default cap
		r := bufio.NewReader(bytes.NewReader(data))
		buf := make([]byte, 0, 64)
		for range 1000 {
			m, err := ReadMessage(r, maxLen, buf)
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if m.Keepalive {
				continue
			}
			limit := maxLen
			if limit == 0 {
				limit = DefaultMaxMessageLen
			}
			if uint32(len(m.Data)) >= limit {
				t.Fatalf("data of %d bytes under a cap of %d", len(m.Data), limit)
			}
			if (m.ID == Piece || m.ID == Request) && (m.Length == 0 || m.Length > MaxBlockSize) {
				t.Fatalf("%v passed with length %d", m, m.Length)
			}
			// Re-encoding and re-reading gives the same message.
			enc := AppendMessage(nil, m)
			m2, err := ReadMessage(bytes.NewReader(enc), 0, nil)
			if err != nil {
				t.Fatalf("re-read %v: %v", m, err)
			}
			if m2.Data == nil && len(m.Data) == 0 {
				m2.Data = m.Data
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip: %+v != %+v", m, m2)
			}
		}
	})
}

func FuzzExtHandshake(f *testing.F) {
	f.Add([]byte("d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31337e1:pi6881e4:reqqi250e1:v7:swarmfs6:yourip4:\x7f\x00\x03\x01e"))
	f.Add([]byte("d1:md6:ut_pexi0ee1:v3:abce"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseExtHandshake(data)
		if err == nil && len(data) > MaxExtHandshakeLen {
			t.Fatalf("a handshake of %d bytes passed the cap of %d", len(data), MaxExtHandshakeLen)
		}
		if err != nil {
			if !errors.Is(err, ErrExtension) {
				t.Fatalf("error does not wrap ErrExtension: %v", err)
			}
			return
		}
		if len(h.M) > MaxExtensions || len(h.V) > MaxClientNameLen || h.MetadataSize > MaxMetadataSize {
			t.Fatalf("caps exceeded: %+v", h)
		}
		enc, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ParseExtHandshake(enc)
		if err != nil {
			t.Fatalf("re-parse %q: %v", enc, err)
		}
		if h.M == nil {
			h.M = map[string]int{}
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip: %+v != %+v", h, h2)
		}
	})
}

func FuzzMetadataMsg(f *testing.F) {
	f.Add([]byte("d8:msg_typei0e5:piecei0ee"))
	f.Add([]byte("d8:msg_typei2e5:piecei3ee"))
	f.Add(AppendMetadataMsg(nil, MetadataMsg{Type: MetadataData, Piece: 1, TotalSize: 20000, Data: make([]byte, 20000-MetadataPieceSize)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadataMsg(data)
		if err == nil && len(data) > MaxMetadataMsgLen {
			t.Fatalf("a message of %d bytes passed the cap of %d", len(data), MaxMetadataMsgLen)
		}
		if err != nil {
			if !errors.Is(err, ErrMetadataMsg) {
				t.Fatalf("error does not wrap ErrMetadataMsg: %v", err)
			}
			return
		}
		if len(m.Data) > MetadataPieceSize || m.TotalSize > MaxMetadataSize {
			t.Fatalf("caps exceeded: %d %d", len(m.Data), m.TotalSize)
		}
		m2, err := ParseMetadataMsg(AppendMetadataMsg(nil, m))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if m.Type != m2.Type || m.Piece != m2.Piece || m.TotalSize != m2.TotalSize || !bytes.Equal(m.Data, m2.Data) {
			t.Fatalf("round trip: %+v != %+v", m, m2)
		}
	})
}

func FuzzPex(f *testing.F) {
	f.Add([]byte("d5:added6:\x01\x02\x03\x04\x01\x027:added.f1:\x027:dropped0:e"))
	f.Add([]byte("d6:added618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\xc8\xd58:added6.f1:\x048:dropped60:e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParsePex(data)
		if err != nil {
			if !errors.Is(err, ErrPex) {
				t.Fatalf("error does not wrap ErrPex: %v", err)
			}
			return
		}
		if len(m.Added) > MaxPexPeers || len(m.Dropped) > MaxPexPeers {
			t.Fatalf("caps exceeded: %d %d", len(m.Added), len(m.Dropped))
		}
		m2, err := ParsePex(AppendPex(nil, m))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v != %+v", m, m2)
		}
	})
}

// FuzzReadMessageInto reads the same bytes with ReadMessage and with
// ReadMessageInto (whose block func sometimes declines): both must return
// the same messages and errors of the same kind.
func FuzzReadMessageInto(f *testing.F) {
	for _, m := range roundTripMessages() {
		f.Add(AppendMessage(nil, m), uint32(0), uint8(0))
	}
	f.Add(AppendMessage(nil, Message{ID: Piece, Index: 1, Begin: 2, Data: make([]byte, 100)}), uint32(0), uint8(1))
	f.Add([]byte{0, 0, 0, 9, 7, 0, 0, 0, 1, 0, 0, 0, 2}, uint32(0), uint8(0))
	f.Add([]byte{0, 0, 0, 12, 7, 0, 0}, uint32(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, maxLen uint32, decline uint8) {
		maxLen %= 1 << 18
		ra := bufio.NewReader(bytes.NewReader(data))
		rb := bufio.NewReader(bytes.NewReader(data))
		bufA, bufB := make([]byte, 0, 64), make([]byte, 0, int(decline)%32)
		calls := 0
		block := func(n int) []byte {
			calls++
			if n < 1 || n > MaxBlockSize {
				t.Fatalf("block asked for %d bytes", n)
			}
			if decline&(1<<(calls%8)) != 0 {
				return nil
			}
			return make([]byte, n)
		}
		for range 1000 {
			ma, errA := ReadMessage(ra, maxLen, bufA)
			mb, errB := ReadMessageInto(rb, maxLen, bufB, block)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("ReadMessage: %v; ReadMessageInto: %v", errA, errB)
			}
			if errA != nil {
				var pa, pb *ProtocolError
				if errors.As(errA, &pa) != errors.As(errB, &pb) || (errA == io.EOF) != (errB == io.EOF) {
					t.Fatalf("ReadMessage: %v; ReadMessageInto: %v", errA, errB)
				}
				return
			}
			if len(ma.Data) == 0 && len(mb.Data) == 0 {
				ma.Data, mb.Data = nil, nil
			}
			if !reflect.DeepEqual(ma, mb) {
				t.Fatalf("ReadMessage %+v, ReadMessageInto %+v", ma, mb)
			}
		}
	})
}
