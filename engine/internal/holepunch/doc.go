// Package holepunch implements the BEP 55 holepunch extension
// (ut_holepunch): the message codec and the three decisions of a
// rendezvous, each a pure policy with no sockets and no goroutines.
//
// A peer that cannot reach another (both behind NAT, or the other behind
// a firewall) asks a third peer connected to both, the relay, for a
// rendezvous; the relay sends a connect message to each side naming the
// other, and both dial at once, so that each NAT sees outgoing packets
// before the other side's arrive.
//
//   - Parse and Msg.Append are the codec: msg_type, addr_type (0 IPv4, 1
//     IPv6), address, port, err_code. Parse validates everything and
//     accepts the error code's absence in rendezvous and connect messages,
//     as libtorrent sends them.
//   - Relay answers rendezvous messages from our connected peers: two
//     connect messages, or an error (NoSuchPeer, NotConnected, NoSupport,
//     NoSelf) to the initiator, within per-initiator, per-target and total
//     rate limits; over a limit it stays silent.
//   - Initiator remembers which relays (peers that support ut_holepunch)
//     named which peers in PEX, and when dialling such a peer fails sends
//     a rendezvous through the newest relay, with a cap per minute,
//     backoff, a limited number of attempts, and the outcome remembered
//     per peer (Outcome: pending, punched, failed, gave up).
//   - Target turns a connect message into a Dial: the address, uTP first
//     and TCP beside it, a few attempts; it ignores local addresses from
//     public relays, peers we are connected to or banned, repeats while
//     the last dial runs, and floods. Once told the dial ended (Done) it
//     remembers the hole for a while: Punched says whether a connection
//     with an address, coming in or going out, passes through a punch's
//     holes (the other side's dial often arrives before ours).
//
// # Wiring (done by the torrent loop)
//
// Announce ExtName in the BEP 10 handshake and set wire.PexHolepunch on
// PEX entries of peers that announced it. On a ut_holepunch message, Parse
// it (a malformed one drops the peer) and dispatch on its type:
// rendezvous to Relay.Rendezvous (send each returned Send on the
// connection to Send.To), connect to Target.Connect (then Initiator.
// OnConnect) and run the Dial, telling Target.Done when it ends, error to
// Initiator.OnError. Give the Relay each peer's Addr as the place to aim
// a uTP punch: a uTP connection's remote address, a TCP connection's
// remote IP with the peer's listen port. Feed the
// Initiator from PEX (Learned, for relays that announced ut_holepunch and
// entries flagged wire.PexHolepunch), from disconnects (RelayGone), from
// failed dials (DialFailed, sending what it returns) and from new
// connections (Connected); call Initiator.Tick now and then.
//
// # Concurrency and errors
//
// Tested: the codec by table and fuzzing; each policy by unit tests with
// a fake view of the torrent; against libtorrent as the relay
// (TestInteropLibtorrentRelay: its connect messages reach both sides and
// parse, its errors match our Relay's); and end to end in the engine's
// NetSim tests (TestHolepunch*): swarmfs and libtorrent behind two cone
// NATs connect through a libtorrent or swarmfs relay, either side asking.
//
// Every type is a plain value owned by one goroutine (the torrent loop);
// the current time is passed in. Memory is bounded by configuration:
// every map has a cap. Parse errors wrap ErrMalformed; the policies return
// no errors, only decisions.
package holepunch
