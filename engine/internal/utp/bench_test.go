package utp

import (
	"io"
	"net"
	"testing"
)

// BenchmarkLoopback moves data over one connection on loopback: our uTP
// beside a real loopback TCP connection in the same run (the goal
// is uTP at 0.8x TCP). Compare the MB/s of the sub-benchmarks. utp is two
// of our sockets, whose path MTU discovery grows packets towards
// loopback's 64 KiB MTU; utp-1400 keeps them at 1400-byte datagrams, as
// with libtorrent or on an Ethernet path (UDP segmentation and receive
// offload batch those through the kernel).
func BenchmarkLoopback(b *testing.B) {
	b.Run("utp", func(b *testing.B) {
		sa, sb := socketPair(b, Config{}, nil)
		d, acc := connPair(b, sa, sb)
		benchStream(b, d, acc)
	})
	b.Run("utp-1400", func(b *testing.B) {
		sa, sb := socketPair(b, Config{MaxProbePayload: -1}, nil)
		d, acc := connPair(b, sa, sb)
		benchStream(b, d, acc)
	})
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}()
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		acc, ok := <-accepted
		if !ok {
			b.Fatal("accept failed")
		}
		defer acc.Close()
		benchStream(b, d, acc)
	})
}

// benchStream writes b.N chunks of 1 MiB on w (in 64 KiB writes, as the
// engine sends blocks) and reads them from r.
func benchStream(b *testing.B, w, r net.Conn) {
	const chunk = 1 << 20
	b.SetBytes(chunk)
	buf := make([]byte, 64<<10)
	errc := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for range b.N * (chunk / len(buf)) {
			if _, err := w.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	rbuf := make([]byte, 64<<10)
	if _, err := io.ReadFull(r, make([]byte, 0)); err != nil {
		b.Fatal(err)
	}
	for left := b.N * chunk; left > 0; {
		n, err := r.Read(rbuf[:min(len(rbuf), left)])
		if err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
