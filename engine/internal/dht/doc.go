// Package dht is swarmfs's own BitTorrent Mainline DHT node (BEP 5): the KRPC
// codec (ping, find_node, get_peers, announce_peer; compact IPv4 and IPv6
// node info and peer values), a k-bucket routing table, a server that answers
// other nodes' queries with a bounded peer store and rotating tokens, and
// iterative lookups (GetPeers, Announce, Bootstrap), and the IPv6 DHT of
// BEP 32 (Client).
//
// # Use
//
//	n, err := dht.New(dht.Config{Addr: ":6881"})
//	defer n.Close()
//	peers := n.GetPeers(ctx, infoHash) // batches of peers until the lookup ends
//	for batch := range peers { ... }
//	_, err = n.Announce(ctx, infoHash, tcpPort, false)
//
// New starts the node at once and bootstraps in the background (from the
// saved routing table and Config.Bootstrap). Host names in Config.Bootstrap
// are resolved lazily, with a timeout, when a bootstrap runs, so New never
// waits on DNS.
//
// # IPv4 and IPv6 (BEP 32)
//
// A Node serves one family (Config.Network "udp4" or "udp6", or the family
// of Config.Addr) with its own socket and routing table; a node on a
// dual-stack wildcard socket (":0") keeps both families in one table, as
// before BEP 32. A Client runs an IPv4 and an IPv6 Node with one node id.
// Answers to find_node and get_peers carry "nodes" (26-byte entries)
// and/or "nodes6" (38-byte entries): those the query's "want" list asks
// for ("n4", "n6"), or without a want those of the family the query came
// over; a family a node does not serve comes from its sibling's table (the
// sibling's loop finishes and sends such a reply). get_peers values are
// peers of the querier's family (6- or 18-byte compact). Our own queries
// carry want ["n4","n6"] on a dual-stack node, and on a Client's node
// while its sibling's table holds fewer than 16 nodes; the nodes of the
// sibling's family in the answers (at most 4 per answer) are handed to the
// sibling, which pings them, so either DHT can be joined through the other.
// Client.GetPeers and Client.Announce run on both nodes and merge their
// peers; Client.AddNode sends a PORT message's node to its family's node.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. One goroutine (the loop)
// owns the routing table, the peer store and the token secrets; it answers
// incoming queries and runs maintenance (bucket refresh, token rotation, peer
// expiry, periodic state saves). Other goroutines reach that state only by
// posting events or closures to the loop. One reader goroutine reads the UDP
// socket, applies the rate limits (it alone owns the limiter), parses, hands
// responses to the waiting query through the transaction table (the only
// mutex-protected structure) and posts queries to the loop. Each lookup runs
// in the caller's goroutine or its own, with at most alpha (3) queries in
// flight. Close stops every goroutine the node started and waits for them.
//
// # Memory
//
// Memory is bounded by configuration, never by what remote nodes send: the
// rate limits run before any parsing; datagrams over 8 KiB are rejected
// before decoding; a message carries at most 64 nodes and 256 peer values
// (the rest are ignored); the routing table holds at most 160 buckets of 8
// nodes plus 8 replacement candidates each, and at most Config.MaxNodes
// nodes in all; the peer store keeps at most MaxInfoHashes info hashes with
// at most MaxPeersPerHash peers each, expiring after PeerTTL; a lookup tracks
// at most 128 candidates and 4096 seen addresses; outstanding transactions
// are capped at 2048; the rate limiter tracks at most 8192 source addresses;
// the inbound queue to the loop holds 512 messages and drops the rest.
//
// # Errors
//
// ErrClosed is returned after Close. A query that gets no answer returns an
// error wrapping ErrTimeout; a KRPC error reply is an *Error. Lookups that
// reach no node at all wrap ErrNoNodes. Malformed messages wrap
// ErrBadMessage; they are counted and dropped, never returned to callers.
package dht
