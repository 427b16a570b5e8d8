// Package engine is swarmfs's BitTorrent engine: it downloads the pieces
// readers ask for from the swarm, verifies them into the cache (package
// cache), and seeds everything the cache holds.
//
// # What it owns
//
//   - Client: one TCP listener (incoming handshakes, plain or under
//     Message Stream Encryption, are read up to the info hash, then handed
//     to that torrent), the peer id ("-SF0001-" and 12
//     random bytes), a per-client connection limit, the tracker client and
//     the DHT node shared by all torrents, and the cache Budget.
//   - Torrent: one goroutine (Torrent.run) owns all of a torrent's mutable
//     state in a loopState made of parts, each a type in its own file:
//     conns (connected peers), addrBook (known addresses with their
//     PeerSource, dial queue, strikes, bans; it knows no sockets),
//     diskPipe (blocks on their way to the cache, hashing, who sent each
//     piece; it returns outcomes the loop applies), prios (reader ranges),
//     rates, announce (trackers and DHT), metaFetch (BEP 9) and pexState;
//     choking and interest are in choke.go. Exported methods that change
//     the torrent send closures to the loop (Torrent.do) and wait, both
//     sides also selecting on the torrent's closing channel. Stats, Peers
//     and Banned read a snapshot the loop publishes through an atomic
//     pointer after each step that changed it (byte counters are atomics
//     the peers add to); Info, MetaInfo and Bitfield read the metainfo and
//     cache store, published once. None of them waits on the loop.
//   - Peer connections: a reader goroutine (messages in, posted to the
//     loop) and a writer goroutine (a queue filled by the loop without
//     blocking; it also reads served blocks from the cache) per peer. BEP 3
//     messages with timeouts on every read and write, keep-alives every two
//     minutes, peers dropped after three minutes of silence; BEP 6 fast
//     extension; BEP 10 extension handshake with ut_metadata (BEP 9) and
//     ut_pex (BEP 11).
//   - Disk work: a peer's reader reads each block into a pooled 16 KiB
//     buffer; a writer goroutine per piece writes the piece's blocks with
//     cache WriteBlock in arrival order (so the cache can hash them as they
//     come) and returns the buffers; pieces are verified with FinishPiece
//     in worker goroutines. They post results back to the loop; the loop
//     never touches the disk on the data path.
//   - Reader: ReadAt maps a file range to pieces, feeds the readahead
//     policy, leaves its Now/Readahead/HeadTail ranges in a mailbox the
//     loop drains (prioBox: one update per reader, never waiting for the
//     loop), pins the pieces it reads and waits for them with cache Wait.
//     At open a probe goroutine (prefetch.go, ended by Close) walks the
//     file's container (internal/container) through the cache, asking for
//     each range it reads as HeadTail, and then leaves the ranges a
//     demuxer reads at open (HeadTail) and at its first seek (Normal) in
//     the reader's ranges, in place of the guess of the last piece (at
//     most 4 probes run at once per torrent, bounding their buffers). Past
//     90% of the file the next file's head is asked for (Normal).
//     Torrent.Prefetch keeps up to 32 Normal ranges under an owner of its
//     own.
//
// An MSE connection costs one round trip more than a plain one (the key
// exchange): TCP's, Ya/Yb, then step 3 with our handshake and the peer's
// answer (TestMSEPreferRoundTrips).
//
// Connections may use Message Stream Encryption (internal/mse) as
// Config.Encryption says: by default outgoing connections try it first
// (offering RC4 and plaintext) and fall back to plain BitTorrent when the
// peer does not complete it, and the listener tells a plain handshake (19,
// "BitTorrent protocol") from an MSE one by its first 20 bytes and serves
// both. Our BitTorrent handshake travels as MSE's initial payload. Peer
// goroutines read and write through the resulting stream (streamConn),
// whose deadlines are those of the TCP connection.
//
// Decisions live in pure subpackages (internal/picker, choker, readahead);
// the wire codec in internal/wire, metadata assembly in internal/metadata,
// PEX state in internal/pex, trackers in internal/tracker and the DHT node
// in internal/dht.
//
// # Behaviour
//
// Messages and extensions we do not know are ignored where they are read.
// A peer whose send queue passes 4 MiB (it does not read what we send) is
// disconnected. Magnet metadata is assembled separately for each size that
// peers claim (the first each peer claims), so one liar cannot block it. Peers that break the protocol
// (a bad piece index, a block we did not request, a bitfield of the wrong
// length, fast-extension messages without the fast bit, oversized messages) are dropped with a logged reason.
// Blame is fair: a piece that fails the hash check and came from one IP
// costs that IP points (good pieces earn points back; an IP with too many
// points is banned and never dialed again). A failed piece that several
// IPs sent charges nobody: each of them goes on parole (the picker gives
// it whole pieces alone, so that its next bad piece names it, and a good
// one ends the parole), and the checksums of its blocks are kept; when the
// piece verifies later, an IP whose kept block differs from the verified
// one is banned.
//
// Slots cannot be squatted: one IP holds at most maxPeersPerIP peers of a
// torrent; when every slot is taken, a peer that has been useless for
// evictAfter (nothing moved either way, nothing we want or it chokes us)
// makes room for a peer that connects or an address waiting to be dialed.
// Incoming connections handshake within incomingHandshakeTimeout under a
// budget of their own (a tenth of Config.MaxConns), so that sockets that
// connect and say nothing cannot take the slots outgoing dials need; a
// dial that finds no slot is retried and logged once.
//
// A peer's reader charges large messages to it: extension handshakes are
// decoded there (at most 64 KiB, a burst of extHandshakeBurst and then one
// per extHandshakeEvery), bitfields likewise rate-limited, ut_metadata and
// ut_pex messages capped, all before anything is copied to the loop's
// queue; a peer over its share is dropped. Only the first metadata_size a
// peer claims counts.
// Requests are pipelined to each peer at the larger of one second of data
// at its smoothed rate and twice the bandwidth-delay product that its
// latest blocks show (pipeEst: the least request-to-block time and the rate
// over the last round trip), so a new peer's pipeline doubles every round
// trip until its bandwidth, not our depth, is the limit. A block of a piece
// a read waits on is duplicated at another peer once it is late for the
// peer holding it: twice that peer's round trip plus four blocks at its
// rate (picker.SetDuplicateAfter). Pieces whose priority
// falls to None (a reader seeked or closed) have their requests cancelled
// at once. Requests for pieces not in
// the cache (never had or evicted) are rejected (BEP 6) or ignored.
//
// Magnet torrents fetch the info dictionary from several peers with
// ut_metadata, verify it against the info hash, drop peers that lie, and
// save it in the cache directory as <infohash>.metadata so that adding the
// same magnet again is instant, even offline (a failed save is logged).
//
// # Concurrency
//
// Client, Torrent and Reader methods are safe for concurrent use. No
// callback runs under a lock; events leave through channels (InfoReady,
// Complete, Done). Every goroutine the engine starts ends when its torrent
// is removed or the client closed; Close waits for all of them.
//
// # Errors
//
// ErrClosed after Close or Remove, ErrExists for a torrent added twice,
// ErrNoInfo when an operation needs metadata a magnet does not have yet,
// ErrReaderClosed for reads after Reader.Close. A ReadAt whose context ends
// returns an error wrapping ctx.Err() that says why the data is missing
// (no peers, no connected peer has the piece, all peers choke us, ...).
// Cache errors come back wrapped.
package engine
