package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// ErrCacheWrite is wrapped by the errors of reads that wait for a piece the
// torrent cannot store because writing to the cache failed (a full disk,
// an I/O error), and by Torrent.Err. It does not wrap the system error, so
// that a mount fails such reads with EIO rather than ENOSPC; the message
// carries the cache's error, which names the directory.
var ErrCacheWrite = errors.New("engine: cannot store pieces in the cache")

// Backoff of downloads after a disk error: requests stop at the first
// error and resume after faultBackoffMin, doubling up to faultBackoffMax
// while the errors go on; a read that arrives faultReadRetry or more
// after the error makes them resume at once.
const (
	faultBackoffMin = 2 * time.Second
	faultBackoffMax = time.Minute
	faultReadRetry  = time.Second
)

// diskFault is the loop's state after a cache write failed with a disk
// error: downloads are held back until a backoff ends, so that a full disk
// costs neither a retry loop nor a warning per block. Used from the loop
// goroutine only; readers see it through faultBox.
type diskFault struct {
	active  bool          // requests are held back
	retryAt time.Time     // when they resume
	backoff time.Duration // the next backoff
	logged  bool          // the fault was logged; reset when a piece verifies
}

// faultBox publishes the torrent's disk fault to readers and commands: the
// error (nil when healthy), when it happened, and a channel closed at each
// new fault so that readers waiting for a piece fail at once.
type faultBox struct {
	mu  sync.Mutex // guards the fields below
	err error
	at  time.Time
	gen chan struct{}
	// retry is set by a read that wants downloads to resume early.
	retry bool
}

func newFaultBox() *faultBox { return &faultBox{gen: make(chan struct{})} }

// set records a new fault and wakes the readers waiting on the last one.
func (b *faultBox) set(err error, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err, b.at = err, now
	close(b.gen)
	b.gen = make(chan struct{})
}

// clear records that pieces are stored again.
func (b *faultBox) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = nil
}

// faultState is what faultBox.state returns.
type faultState struct {
	err  error           // the current fault, nil when healthy
	at   time.Time       // when it happened
	next <-chan struct{} // closed at the next fault
}

// state returns the current fault.
func (b *faultBox) state() faultState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return faultState{b.err, b.at, b.gen}
}

// askRetry asks the loop to resume downloads held back by a fault.
func (b *faultBox) askRetry() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retry = b.err != nil
}

// takeRetry reports and clears a read's wish to resume downloads.
func (b *faultBox) takeRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.retry
	b.retry = false
	return r
}

// Err returns the error that keeps the torrent from storing pieces (a
// disk error of the cache, wrapped in ErrCacheWrite), or nil. It stays
// set until a piece is stored again; downloads retry after a backoff, or
// sooner when a reader asks for a missing piece.
func (t *Torrent) Err() error {
	return t.fault.state().err
}

// isDiskFault reports whether err from the cache is a disk error (a full
// disk, an I/O error) rather than a problem of one piece.
func isDiskFault(err error) bool {
	var de *cache.DiskError
	return errors.As(err, &de)
}

// onDiskFault holds downloads back after a disk error: it logs the first
// error since a piece was last stored, cancels the requests in flight
// (what they bring could not be stored either), and tells waiting readers.
func (ls *loopState) onDiskFault(err error, now time.Time) {
	f := &ls.fault
	if f.backoff == 0 {
		f.backoff = faultBackoffMin
	}
	if !f.active {
		f.retryAt = now.Add(f.backoff)
		f.backoff = min(2*f.backoff, faultBackoffMax)
	}
	f.active = true
	if !f.logged {
		f.logged = true
		ls.t.log.Error("cannot store pieces in the cache; downloads paused, retrying after a backoff", "err", err)
	}
	ls.t.fault.set(fmt.Errorf("%w: %v", ErrCacheWrite, err), now)
	if ls.pk != nil {
		for p := range ls.conns.peers {
			for _, r := range ls.pk.Choked(p.id) {
				ls.sendCancel(picker.PeerRequest{Peer: p.id, Request: r})
			}
		}
	}
	ls.dirty = true
}

// faultStored records that a piece was stored: the disk works again.
func (ls *loopState) faultStored() {
	f := &ls.fault
	if f.logged {
		ls.t.log.Info("pieces are stored in the cache again")
	}
	*f = diskFault{}
	ls.t.fault.clear()
}

// faultHolds reports whether a disk fault holds requests back at now;
// when its backoff ended, or a reader asked for a piece long enough
// after the error, downloads resume (the fault stays visible until a
// piece is stored).
func (ls *loopState) faultHolds(now time.Time) bool {
	f := &ls.fault
	if !f.active {
		return false
	}
	at := ls.t.fault.state().at
	if !now.Before(f.retryAt) || (ls.t.fault.takeRetry() && now.Sub(at) >= faultReadRetry) {
		f.active = false
		ls.conns.refillAll = true
		return false
	}
	return true
}

// waitPiece waits until piece i is verified, like the store's Wait, but
// fails with the torrent's disk fault when one happens meanwhile: the
// piece could not be stored. A read that finds a fault older than
// faultReadRetry asks the loop to try again and waits; a younger one
// fails at once.
func (r *Reader) waitPiece(ctx context.Context, i int) error {
	if r.store.Has(i) {
		return nil
	}
	fs := r.t.fault.state()
	if fs.err != nil {
		if time.Since(fs.at) < faultReadRetry {
			return fs.err
		}
		r.t.fault.askRetry()
		select {
		case r.t.prio.wake <- struct{}{}:
		default:
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-fs.next:
			cancel(r.t.fault.state().err)
		case <-stop:
		}
	}()
	err := r.store.Wait(wctx, i)
	if err != nil && ctx.Err() == nil {
		if c := context.Cause(wctx); errors.Is(c, ErrCacheWrite) {
			return c
		}
	}
	return err
}
