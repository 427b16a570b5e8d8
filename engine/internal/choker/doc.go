// Package choker decides which peers we upload to (unchoke).
//
// Choker implements the BitTorrent choking algorithm (BEP 3 and common
// practice). Every RechokeInterval the engine calls Rechoke with a snapshot
// of its peers and gets back the set to unchoke; every other peer is choked.
//
// While downloading, Slots-1 regular slots go to the interested peers that
// upload to us fastest (tit-for-tat; snubbed peers are left out), and peers
// that are not interested but upload to us faster than the slowest of those
// are unchoked too, so they are ready when they become interested. While
// seeding, regular slots go to the interested peers we upload to fastest.
// One more slot is an optimistic unchoke: a random interested peer outside
// the regular set, kept for OptimisticInterval, with newly connected peers
// three times as likely to be chosen. Ties between equal rates keep peers
// that are already unchoked, to avoid fibrillation.
//
// # Concurrency
//
// A Choker is not safe for concurrent use; one goroutine (the torrent
// goroutine) owns it. It starts no goroutines and never reads the clock: the
// caller passes the time. Randomness comes from the *rand.Rand given to New,
// so results are reproducible.
//
// # Errors
//
// The choker returns no errors.
package choker
