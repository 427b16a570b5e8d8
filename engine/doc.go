// Package engine is swarmfs's BitTorrent engine: it downloads the pieces
// readers ask for from the swarm, verifies them into the cache (package
// cache), and seeds everything the cache holds.
//
// # What it owns
//
//   - Client: its sockets on one port (listen.go): a TCP listener and one
//     UDP socket per family, each a uTP socket (internal/utp) whose other
//     datagrams feed the DHT node of that family; incoming connections
//     over either transport (handshakes, plain or under Message Stream
//     Encryption, are read up to the info hash, then handed to that
//     torrent); the dialer (transport.go: uTP first, TCP joining after
//     utpHeadStart or when uTP fails, the first connection established
//     wins, a peer's working transport is remembered in the addrBook and
//     tried first next time; Config.Transports restricts both); local
//     service discovery (lsd.go: one LSD on the listen port whose set
//     follows the torrents, private ones left out, its peers handed to
//     their torrents as SourceLSD); port mapping (portmap.go: one Mapper
//     for the TCP and UDP port, whose external port and address are what
//     announces carry; a change restarts the trackers' announcers); both
//     off on a loopback listen address; the peer id ("-SF0001-" and 12
//     random bytes), the connection limits (Config.MaxConns for the
//     client, Config.MaxConnsPerTorrent for each torrent, by default a
//     quarter of the client's), the upload and download rate limiters
//     (internal/ratelimit, see below; every connection of either transport
//     is wrapped in them before its first handshake byte), the tracker
//     client and the DHT nodes shared by all torrents, and the cache
//     Budget.
//   - Torrent: one goroutine (Torrent.run) owns all of a torrent's mutable
//     state in a loopState made of parts, each a type in its own file:
//     conns (connected peers), addrBook (known addresses with their
//     PeerSource, dial queue, strikes, bans; it knows no sockets),
//     diskPipe (blocks on their way to the cache, hashing, who sent each
//     piece; it returns outcomes the loop applies), prios (reader ranges),
//     rates, announce (trackers, one announcer per IP family the client
//     listens on, BEP 7, their peers merged; and the DHT), metaFetch (BEP
//     9), pexState (IPv4 and IPv6 peers alike) and webSeeds (BEP 19);
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
// whose deadlines are those of the TCP or uTP connection.
//
// Rate limits: the Client's two token buckets (Config.MaxUploadRate,
// MaxDownloadRate; Client.SetRateLimits changes them at run time) are
// shared by every torrent. Each peer connection is wrapped
// (ratelimit.Wrap) right after dial and accept, before MSE and the
// BitTorrent handshake, so protocol bytes are charged like payload; code
// that needs the *net.TCPConn must go through ratelimit.Conn.Unwrap. Web
// seeds' HTTP connections are charged to the same buckets.
// Within the download cap a connection reads in the Urgent class while
// its peer owes us blocks of Now pieces (a reader waits on them), and in
// the Normal class otherwise; within the upload cap writes that carry no
// served block (our requests, haves, keep-alives) are Urgent, so a read
// is not starved by seeding.
//
// Seeding: everything in the cache is seeded. Config.NoUpload chokes every
// peer, grants no allowed-fast piece and rejects every request: no piece
// byte leaves. Private torrents (BEP 27) are never made known beyond their
// trackers: no DHT announce or lookup, no PEX, and (when it is wired) no
// LSD; discoverable() in announce.go is the one rule.
//
// Decisions live in pure subpackages (internal/picker, choker, readahead);
// the wire codec in internal/wire, metadata assembly in internal/metadata,
// PEX state in internal/pex, trackers in internal/tracker and the DHT
// (a BEP 32 client: an IPv4 and an IPv6 node) in internal/dht.
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
// trip until its bandwidth, not our depth, is the limit; before any rate
// is known, and until its blocks show a rate over a round trip, it is at
// least initialPipeline (16) requests. A piece a read waits on,
// and the next two of its window, are split among the peers that have
// them by their rates (setShares, picker.SetShare). A block of a piece
// a read waits on is duplicated at another peer once it is late for the
// peer holding it: that peer's least request-to-block time plus one block
// at its rate, plus one block at its rate for each request queued before
// it there (setLateTimes, picker.SetDuplicateAfter and SetQueueTime); a
// peer that has sent nothing yet gets twice the least round trip of the
// others. A timer (lateTimer) wakes the loop when the next such block
// becomes late, so the takeover does not wait for the next block or tick.
// We stay interested in a peer for
// interestLinger (20 s) after we last wanted something from it: a peer
// told we are not interested chokes us, and the next reader would wait
// for its unchoke. Pieces whose priority
// falls to None (a reader seeked or closed) have their requests cancelled
// at once. Requests for pieces not in
// the cache (never had or evicted) are rejected (BEP 6) or ignored.
//
// Disk errors are outcomes, not retries (diskfault.go): when the cache
// cannot store a block or piece (a *cache.DiskError: a full disk, EIO),
// the torrent cancels its requests, stops requesting, logs the error once
// (until a piece is stored again) and publishes it (Torrent.Err). Readers
// waiting for a piece that is not in the cache then fail at once with
// ErrCacheWrite. Requests resume after a backoff (2 s, doubling up to a
// minute), or when a read comes a second or more after the error; the
// error clears when a piece is stored.
//
// With a cache cap (Config.CacheSize) the engine keeps within it
// (capfit.go, prefetchgate.go): the default readahead window is an eighth of
// the cap, and a torrent whose window (twice MaxReadahead, as it reaches
// behind the reader too) and 4 pieces do not fit is refused with
// ErrCacheTooSmall. Evicted pieces are spent (picker.SetSpent): only a
// reader's Now and Readahead ranges want them again, never prefetch or
// head and tail priorities. (Pieces a data directory's store drops because
// a file changed behind its back are not spent: no cap applies there. The
// store re-verifies them in another round of background verification, a
// new VerifyDone that the loop syncs with, and a Reader that finds its
// piece gone after waiting for it waits again.) Prefetch stops while cache WouldEvict says
// that one more piece, beyond the blocks requested, would evict a piece no
// reader has read yet (or one in a reader's window, or another torrent's,
// or could not stay), and resumes when only read pieces would go.
//
// Web seeds (BEP 19, internal/webseed): one per url-list entry plus
// AddOptions.WebSeeds and a magnet's ws= URLs, none with AddOptions.NoWebSeeds. To the picker a
// web seed is a peer that has everything and costs more, so it gets only
// pieces that peers do not deliver in time: pieces a reader waits on (Now)
// that no unchoked peer has, or that waited longer than about two
// pieces' time at the peers' rate (250 ms to 3 s); readahead and
// head/tail pieces that no unchoked peer has, or that peers did not start
// within four such waits; and, while the whole torrent is wanted
// (AddOptions.Prefetch: get, --prefetch), pieces peers have not started.
// A torrent with no reader and no prefetch fetches nothing from them. The
// loop hands each seed runs of consecutive pieces (at most 8 MiB,
// Config.WebSeedConns at once); a goroutine fetches a run and writes each
// piece with cache WritePiece, which stores it only when its SHA-1
// matches, and posts the result. A hash failure charges the seed (which is
// dropped after a few) and never a peer. A run stops when peers deliver
// its next piece first, when nobody wants its next piece any more, or to
// make room for a piece a reader waits on. Stats.WebSeedBytes counts the
// bytes from web seeds (Downloaded counts peers only).
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
// ErrCacheWrite (wrapping the cache's disk error in its message, not its
// chain, so that a mount answers EIO) for reads of pieces that cannot be
// stored and from Torrent.Err; ErrCacheTooSmall from adding a torrent a
// capped cache cannot hold (for a magnet, in Torrent.Err once its metadata
// arrived; the torrent is then paused).
// ErrClosed after Close or Remove, ErrExists for a torrent added twice,
// ErrNoInfo when an operation needs metadata a magnet does not have yet,
// ErrReaderClosed for reads after Reader.Close. A ReadAt whose context ends
// returns an error wrapping ctx.Err() that says why the data is missing
// (no peers, no connected peer has the piece, all peers choke us, ...).
// Cache errors come back wrapped.
package engine
