package utp

import (
	"io"
	"net"
	"testing"
)

// BenchmarkLoopback moves data over one connection on loopback: our uTP
// beside a real loopback TCP connection in the same run (the goal
// is uTP at 0.8x TCP). Compare the MB/s of the sub-benchmarks. uTP sends
// 1400-byte datagrams where loopback TCP moves 64 KiB segments; UDP
// segmentation and receive offload batch them through the kernel, and
// utp-jumbo shows the rate with datagrams near loopback's 64 KiB MTU.
func BenchmarkLoopback(b *testing.B) {
	b.Run("utp", func(b *testing.B) {
		sa, sb := socketPair(b, Config{}, nil)
		d, acc := connPair(b, sa, sb)
		benchStream(b, d, acc)
	})
	// With datagrams near loopback's 64 KiB MTU (not for the internet, and
	// libtorrent reads at most 1500 bytes): how fast the protocol runs
	// when the per-datagram cost of the kernel is taken away.
	b.Run("utp-jumbo", func(b *testing.B) {
		sa, sb := socketPair(b, Config{MaxPayload: 60000, SendBuffer: 4 << 20, RecvBuffer: 4 << 20}, nil)
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
