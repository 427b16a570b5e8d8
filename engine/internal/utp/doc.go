// Package utp implements the uTorrent transport protocol (uTP, BEP 29):
// reliable, ordered byte streams over UDP whose LEDBAT congestion control
// (RFC 6817) yields to TCP on a shared bottleneck. Connections implement
// net.Conn, so MSE and the BitTorrent wire code run over them unchanged.
//
// # What it owns
//
// A Socket owns one UDP socket (NewSocket over a net.PacketConn, or
// Listen). It may be shared with the DHT: datagrams whose first byte is
// that of a uTP v1 packet (type<<4 | 1, type 0 to 4) are uTP; every other
// datagram (a KRPC message starts with 'd') is queued, up to
// Config.OtherQueue, for the net.PacketConn that PacketConn returns, which
// the DHT reads and writes as if it were the socket (dht.Config.Conn).
//
// Dial opens a connection, Accept (or the net.Listener from Listener)
// returns incoming ones. A connection has a receive id and a send id (the
// dialer's SYN carries its receive id; the send id is one more), sequence
// and ack numbers that wrap at 16 bits, selective acks, fast retransmit
// after three duplicate acks or three selectively acked later packets,
// RFC 6298 retransmission timeouts with exponential backoff, a receive
// window advertised in every packet and the peer's window respected, and
// LEDBAT with a 100 ms target, a ten-minute base delay history, slow start
// until the delay reaches half the target, and halving on loss. Writes are
// sent at once (no Nagle) in packets of at most Config.MaxPayload bytes
// (1380 by default: a 1400-byte datagram, safe on IPv4 and IPv6 paths; no
// path MTU discovery). FIN ends a direction, RESET aborts; Close returns
// at once and lingers in the background for at most Config.Linger to
// deliver what was written. Idle connections send keep-alive acks and end
// after Config.IdleTimeout without a packet.
//
// # Limits
//
// Memory is bounded by Config: SendBuffer and RecvBuffer bytes per
// connection (out-of-order packets count against RecvBuffer, and at most
// RecvBuffer/1000 of them are held), MaxConns connections, AcceptBacklog
// waiting ones, OtherQueue DHT datagrams. Packets for unknown connections
// are answered by RESET at most ResetRate times a second.
//
// # Concurrency
//
// Each Socket runs two goroutines: one reads the UDP socket and handles
// every packet, one runs the timers of all connections every Config.Tick
// while there are connections. Both end in Close, which waits for them.
// Socket.mu guards the connection table; each Conn's mu guards its state;
// the lock order is Conn.mu then Socket.mu. Read and Write may run on two
// goroutines at once; blocking calls wake through channels and honour the
// net.Conn deadlines.
//
// # Errors
//
// ErrReset (peer sent RESET), ErrRefused (RESET answered our SYN),
// ErrTimedOut (the peer stopped answering), ErrTooManyConns, and
// ErrSocketClosed and ErrConnClosed, which wrap net.ErrClosed. Deadlines
// give os.ErrDeadlineExceeded; a peer's FIN gives io.EOF after the last
// byte. ErrPacket is wrapped by the packet parser's errors, which only
// drop the packet.
package utp
