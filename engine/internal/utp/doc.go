// Package utp implements the uTorrent transport protocol (uTP, BEP 29):
// reliable, ordered byte streams over UDP whose LEDBAT congestion control
// (RFC 6817) yields to TCP on a shared bottleneck. Connections implement
// net.Conn, so MSE and the BitTorrent wire code run over them unchanged.
//
// # Use
//
//	s, err := utp.Listen("udp", ":6881", utp.Config{Logger: log})
//	dht.New(dht.Config{Conn: s.PacketConn(), ...}) // the DHT shares the socket
//	go acceptLoop(s.Listener())                      // a net.Listener
//	c, err := s.Dial(ctx, addrPort)                  // *Conn, a net.Conn
//	...
//	s.Close() // after the DHT and the listener's users are done
//
// NewSocket runs over a net.PacketConn the caller opened (normally a
// *net.UDPConn) and owns it from then on. Datagrams whose first byte is
// that of a uTP v1 packet (type<<4 | 1, type 0 to 4) are uTP; every other
// datagram (a KRPC message starts with 'd') is queued, up to
// Config.OtherQueue, for the net.PacketConn that PacketConn returns:
// ReadFrom gives those datagrams, WriteTo sends on the shared socket, a
// past read deadline stops a blocked reader, and Close closes only the
// view. DialContext has net.Dialer's signature. Listener().Close stops
// accepting (SYNs are answered by RESET) without closing the socket.
//
// # Protocol
//
// A connection has a receive id and a send id (the dialer's SYN carries
// its receive id; its send id is one more), sequence and ack numbers that
// wrap at 16 bits, selective acks (any bitmask length is accepted, as
// libtorrent sends them unpadded), fast retransmit after three duplicate
// acks or three selectively acked later packets (a resent packet again
// once something sent after it arrives), RFC 6298 retransmission timeouts
// with exponential backoff, a receive window advertised in every packet
// and the peer's window respected (a closed window is probed). LEDBAT
// measures one-way delay from the timestamp differences, keeps a
// ten-minute base delay history, targets 100 ms of queuing delay, grows
// by at most Config.Gain bytes per round trip below the target and
// shrinks multiplicatively above it (as LEDBAT++ does: BEP 29's linear
// decrease gives a large window back too slowly), with slow start until
// half the target and halving on loss. Writes are sent at once (no Nagle)
// in packets of Config.MaxPayload bytes (1380 by default: a 1400-byte
// datagram, safe on IPv4 and IPv6 paths). With a peer whose handshake
// says it reads longer datagrams (a private extension that other
// implementations skip; libtorrent reads at most 1500 bytes, so it never
// gets more), path MTU discovery probes for larger packets up to the
// route's MTU and Config.MaxProbePayload: an acknowledged probe grows the
// packets, a lost one lowers the ceiling (see mtu.go). Between two
// swarmfs on loopback packets grow to about 64 KiB.
// Acknowledgements of in-order data wait until the UDP socket is drained
// (one per burst) or the next tick. On Linux the datagrams of one burst
// leave in one sendmsg with UDP segmentation offload, and arrive glued
// together through UDP receive offload, when the kernel allows it (on the
// wire they are ordinary datagrams).
//
// FIN ends a direction (CloseWrite sends it and keeps reading); RESET
// aborts. Close returns at once: written data and the FIN go on in the
// background for at most Config.Linger, then the connection is reset;
// unread data, or data arriving after Close, resets it at once, as TCP
// does. Idle connections send keep-alive acks every Config.KeepAlive and
// end after Config.IdleTimeout without a packet; a peer that stops
// answering ends the connection after Config.MaxTimeouts timeouts in a
// row.
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
// the lock order is Conn.mu then Socket.mu. A Conn's Read and Write may
// run on two goroutines at once; blocking calls wake through channels and
// honour the net.Conn deadlines. Data goes out from Write, and from the
// read goroutine as acknowledgements open the window, except while a
// Write waits for send buffer room: then the read goroutine wakes it to
// send, so that sending and receiving run on two goroutines. All Socket methods are safe for
// concurrent use.
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
