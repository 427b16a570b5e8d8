// Package pex keeps the peer exchange (ut_pex, BEP 11) state of a torrent:
// which connected peers are worth telling others about, what each remote
// peer has already been told, and what it has told us.
//
// Swarm is the torrent's set of advertisable peers (connected, and either
// reached by an outgoing connection or with a known listen port), each with
// its wire.PexFlags. Each connection that negotiated ut_pex gets a Sender,
// which turns the difference between the Swarm and what that peer was last
// told into at most one message per Interval, with at most wire.MaxPexSend
// added and wire.MaxPexSend dropped entries (the rest wait for the next
// message), never naming the peer to itself; and a Receiver, which parses
// incoming messages, refuses them when a peer floods (more than
// FloodBurst within FloodWindow), caps how many addresses one peer may feed us, and
// skips private or loopback addresses offered by a public peer. IPv4 peers
// travel in "added"/"added.f"/"dropped", IPv6 peers in "added6"/"added6.f"/
// "dropped6" (BEP 11; the caps count both together); IPv6 link-local
// addresses are never taken.
//
// All types are plain values with no locking and no goroutines, owned by
// the torrent goroutine; the current time is passed in. Errors: Receive
// returns ErrTooFrequent for flooding (ignore the message or drop the
// peer) and wire's ErrPex errors for malformed payloads (drop the peer).
package pex
