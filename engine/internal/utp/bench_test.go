package utp

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
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
	b.Run("utp-blocks", func(b *testing.B) {
		sa, sb := socketPair(b, Config{}, nil)
		d, acc := connPair(b, sa, sb)
		benchBlocks(b, d, acc)
	})
	b.Run("tcp-blocks", func(b *testing.B) {
		d, acc := tcpPair(b)
		benchBlocks(b, d, acc)
	})
	b.Run("tcp", func(b *testing.B) {
		d, acc := tcpPair(b)
		benchStream(b, d, acc)
	})
}

// tcpPair returns the two ends of a loopback TCP connection, closed in
// b.Cleanup.
func tcpPair(b *testing.B) (dialed, accepted net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	acc, ok := <-ch
	if !ok {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { d.Close(); acc.Close() })
	return d, acc
}

// cpuTime is the CPU time this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchBlocks moves b.N MiB as the engine does: a write per 16 KiB block
// message (4-byte length, 9 bytes of header, the block), each with a
// write deadline, read through a 64 KiB bufio.Reader, header then block,
// each with a read deadline. It reports the CPU time per GB of both ends.
func benchBlocks(b *testing.B, w, r net.Conn) {
	const block = 16 << 10
	b.SetBytes(1 << 20)
	msg := make([]byte, 13+block)
	binary.BigEndian.PutUint32(msg, 9+block)
	n := b.N * (1 << 20) / block
	errc := make(chan error, 1)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	go func() {
		for range n {
			w.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := w.Write(msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	br := bufio.NewReaderSize(r, 64<<10)
	hdr := make([]byte, 13)
	data := make([]byte, block)
	for range n {
		r.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadFull(br, hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, data); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/(float64(b.N)*(1<<20)/1e9), "cpu-s/GB")
}

// benchStream writes b.N chunks of 1 MiB on w (in 64 KiB writes, as the
// engine sends blocks) and reads them from r.
func benchStream(b *testing.B, w, r net.Conn) {
	const chunk = 1 << 20
	b.SetBytes(chunk)
	buf := make([]byte, 64<<10)
	errc := make(chan error, 1)
	b.ResetTimer()
	cpu0 := cpuTime(b)
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
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/(float64(b.N)*chunk/1e9), "cpu-s/GB")
}
