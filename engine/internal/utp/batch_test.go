package utp

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestWriteBatchKeepsDatagrams sends runs of equal and shorter datagrams
// in batches (with segmentation offload where the kernel has it, and
// without) and checks each arrives whole and in order.
func TestWriteBatchKeepsDatagrams(t *testing.T) {
	for _, offload := range []bool{true, false} {
		s, _ := socketPair(t, Config{}, nil)
		s.noGSO.Store(!offload)
		rx, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		sizes := []int{1400, 1400, 1400, 700, 1400, 1400, 300, 300, 1400}
		for range 70 { // more than one call's worth of segments
			sizes = append(sizes, 1000)
		}
		var bufs [][]byte
		for i, n := range sizes {
			bufs = append(bufs, bytes.Repeat([]byte{byte(i)}, n))
		}
		s.writeBatch(bufs, rx.LocalAddr().(*net.UDPAddr))
		buf := make([]byte, 2000)
		for i, want := range bufs {
			rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				t.Fatalf("offload %v: datagram %d: %v", offload, i, err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("offload %v: datagram %d is %d bytes of %d, want %d of %d", offload, i, n, buf[0], len(want), want[0])
			}
		}
		if offload && gsoSupported && s.noGSO.Load() {
			t.Log("the kernel refused UDP segmentation offload; datagrams went one by one")
		}
	}
}
