package wire

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// pieceStream returns n piece messages of BlockSize bytes each.
func pieceStream(n int) []byte {
	block := bytes.Repeat([]byte{0x5a}, BlockSize)
	var s []byte
	for i := range n {
		s = AppendMessage(s, Message{ID: Piece, Index: uint32(i / 16), Begin: uint32(i%16) * BlockSize, Data: block})
	}
	return s
}

// BenchmarkReadMessagePiece decodes a stream of 16 KiB piece messages
// through a bufio.Reader into one reusable buffer; the "ref" sub-benchmark
// moves the same bytes with io.Copy out of the same kind of reader (one
// copy per byte, as ReadMessage does; the wrappers stop io.Copy from
// skipping the copy through WriterTo/ReaderFrom), as the ceiling.
func BenchmarkReadMessagePiece(b *testing.B) {
	stream := pieceStream(256)
	b.Run("ReadMessage", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		rd := bytes.NewReader(stream)
		br := bufio.NewReaderSize(rd, 64<<10)
		buf := make([]byte, 0, BlockSize+PieceHeaderLen)
		for b.Loop() {
			rd.Reset(stream)
			br.Reset(rd)
			for {
				if _, err := ReadMessage(br, 0, buf); err != nil {
					if err == io.EOF {
						break
					}
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ref-io.Copy", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		rd := bytes.NewReader(stream)
		br := bufio.NewReaderSize(rd, 64<<10)
		for b.Loop() {
			rd.Reset(stream)
			br.Reset(rd)
			if _, err := io.Copy(onlyWriter{io.Discard}, onlyReader{br}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendMessagePiece encodes 16 KiB piece messages into a reused
// slice (one copy of the block), beside AppendPieceHeader (header only, the
// block sent from where it lies) and a plain copy of the same bytes.
func BenchmarkAppendMessagePiece(b *testing.B) {
	block := bytes.Repeat([]byte{0x5a}, BlockSize)
	out := make([]byte, 0, BlockSize+PieceHeaderLen)
	b.Run("AppendMessage", func(b *testing.B) {
		b.SetBytes(BlockSize + PieceHeaderLen)
		b.ReportAllocs()
		for b.Loop() {
			out = AppendMessage(out[:0], Message{ID: Piece, Index: 1, Begin: 2, Data: block})
		}
	})
	b.Run("AppendPieceHeader", func(b *testing.B) {
		b.SetBytes(BlockSize + PieceHeaderLen)
		b.ReportAllocs()
		var hdr [PieceHeaderLen]byte
		for b.Loop() {
			_ = AppendPieceHeader(hdr[:0], 1, 2, len(block))
		}
	})
	b.Run("ref-copy", func(b *testing.B) {
		b.SetBytes(BlockSize + PieceHeaderLen)
		for b.Loop() {
			out = append(out[:0], block...)
		}
	})
}

type onlyReader struct{ io.Reader }

type onlyWriter struct{ io.Writer }
