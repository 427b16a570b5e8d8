package mse

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// BenchmarkStream measures the cost of RC4 on the data path: 16 KiB blocks
// written through a stream and read back through another, beside the same
// with the plaintext method (the reference: only the copies).
func BenchmarkStream(b *testing.B) {
	block := make([]byte, 16<<10)
	for _, m := range []Method{Plaintext, RC4} {
		b.Run(m.String(), func(b *testing.B) {
			var wire bytes.Buffer
			s := &[KeyLen]byte{1}
			w := &stream{w: &wire}
			r := &stream{r: &wire}
			if m == RC4 {
				w.enc = newCipher("keyA", s, testSKey)
				r.dec = newCipher("keyA", s, testSKey)
			}
			out := make([]byte, len(block))
			b.SetBytes(int64(len(block)))
			for b.Loop() {
				if _, err := w.Write(block); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, out); err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Equal(out, block) {
				b.Fatal("round trip changed the data")
			}
		})
	}
}

// BenchmarkHandshake measures a whole MSE handshake (two Diffie-Hellman
// key pairs and secrets) over net.Pipe, beside the reference of a plain
// 68-byte BitTorrent handshake exchange on the same pipe.
func BenchmarkHandshake(b *testing.B) {
	b.Run("plain-68-bytes", func(b *testing.B) {
		hs := make([]byte, 68)
		for b.Loop() {
			p1, p2 := net.Pipe()
			go func() {
				buf := make([]byte, 68)
				io.ReadFull(p2, buf)
				p2.Write(buf)
			}()
			buf := make([]byte, 68)
			p1.Write(hs)
			if _, err := io.ReadFull(p1, buf); err != nil {
				b.Fatal(err)
			}
			p1.Close()
			p2.Close()
		}
	})
	b.Run("mse", func(b *testing.B) {
		ia := make([]byte, 68)
		for b.Loop() {
			p1, p2 := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, _, _, _, err := ReceiveHandshake(p2, lookupOnly(testSKey), RC4|Plaintext, RC4)
				done <- err
			}()
			if _, _, err := InitiateHandshake(p1, testSKey, ia, RC4|Plaintext); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			p1.Close()
			p2.Close()
		}
	})
}
