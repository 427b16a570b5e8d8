package utp

import (
	"log/slog"
	"time"
)

// Config configures a Socket. The zero value is valid; each field says
// what zero means.
type Config struct {
	// Logger receives debug records about dropped packets and ended
	// connections; nil means silent.
	Logger *slog.Logger
	// MaxConns caps the connections of the socket, dialed and accepted
	// together (including ones lingering after Close); 0 means 512.
	MaxConns int
	// AcceptBacklog caps the accepted connections waiting for Accept; 0
	// means 64. A SYN that finds the backlog full is answered by RESET.
	AcceptBacklog int
	// SendBuffer caps the bytes of one connection written and not yet
	// acknowledged; Write blocks beyond it. 0 means 1 MiB.
	SendBuffer int
	// RecvBuffer caps the bytes of one connection received and not yet
	// read, in order or not; it is the window we advertise. 0 means 1 MiB.
	RecvBuffer int
	// MaxPayload is the largest payload of a data packet; 0 means 1380,
	// which keeps the UDP datagram at 1400 bytes, within any common path
	// MTU for IPv4 and IPv6. Values are clamped to [300, 60000].
	MaxPayload int
	// MaxProbePayload is the largest payload path MTU discovery may grow
	// data packets to, with peers that say they read such datagrams and
	// over routes whose MTU carries them (loopback, jumbo frames); 0 means
	// 65000, negative turns discovery off (packets stay at MaxPayload).
	MaxProbePayload int
	// TargetDelay is LEDBAT's target queuing delay; 0 means 100 ms.
	TargetDelay time.Duration
	// Gain is the most bytes the congestion window grows by per round trip
	// outside slow start; 0 means 3000 (BEP 29).
	Gain int
	// MinRTO is the smallest retransmission timeout; 0 means 500 ms.
	MinRTO time.Duration
	// MaxTimeouts is how many retransmission timeouts in a row end a
	// connection (with backoff); 0 means 7. A dial gives up after 4
	// unanswered SYNs (1+2+4+8 s) or when its context ends.
	MaxTimeouts int
	// Linger bounds how long a closed connection keeps sending its
	// remaining data and FIN; after it the connection is reset. 0 means
	// 10 s.
	Linger time.Duration
	// KeepAlive is how long a connection may send nothing before it sends
	// an acknowledgement to keep NAT mappings open; 0 means 29 s.
	KeepAlive time.Duration
	// IdleTimeout ends a connection that received nothing for this long;
	// 0 means 5 minutes (peers such as libtorrent send no keep-alives of
	// their own; the BitTorrent layer sends one every 2 minutes).
	IdleTimeout time.Duration
	// ResetRate caps the RESETs per second sent in answer to packets for
	// unknown connections (burst twice that); 0 means 20.
	ResetRate float64
	// OtherQueue caps the non-uTP datagrams (DHT) waiting to be read from
	// PacketConn; more are dropped. 0 means 256.
	OtherQueue int
	// SocketBuffer is the kernel receive and send buffer size asked for
	// the UDP socket (the kernel may cap it: net.core.rmem_max); 0 means
	// 4 MiB, negative leaves the kernel's default.
	SocketBuffer int
	// Tick is the resolution of the socket's timer: delayed acks,
	// retransmission timeouts, keep-alives. 0 means 10 ms.
	Tick time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConns, 512)
	def(&c.AcceptBacklog, 64)
	def(&c.SendBuffer, 1<<20)
	def(&c.RecvBuffer, 1<<20)
	def(&c.MaxPayload, 1380)
	c.MaxPayload = min(max(c.MaxPayload, 300), 60000)
	switch {
	case c.MaxProbePayload == 0:
		c.MaxProbePayload = 65000
	case c.MaxProbePayload < c.MaxPayload:
		c.MaxProbePayload = c.MaxPayload
	}
	c.MaxProbePayload = min(c.MaxProbePayload, maxUDPPayload-headerLen)
	def(&c.Gain, 3000)
	def(&c.MaxTimeouts, 7)
	def(&c.OtherQueue, 256)
	if c.SocketBuffer == 0 {
		c.SocketBuffer = 4 << 20
	}
	defDur(&c.TargetDelay, 100*time.Millisecond)
	defDur(&c.MinRTO, 500*time.Millisecond)
	defDur(&c.Linger, 10*time.Second)
	defDur(&c.KeepAlive, 29*time.Second)
	defDur(&c.IdleTimeout, 5*time.Minute)
	defDur(&c.Tick, 10*time.Millisecond)
	if c.ResetRate <= 0 {
		c.ResetRate = 20
	}
	return c
}

const (
	synRetries     = 4
	initialRTO     = time.Second
	maxRTO         = 30 * time.Second
	maxOutPackets  = 4096 // packets in flight per connection, far below half the sequence space
	maxDatagramLen = 65536
)
