// Package ratelimit owns the token buckets that cap swarmfs's upload and
// download rates, and a net.Conn wrapper that charges every byte a peer
// connection reads or writes (payload and protocol bytes alike) to them.
//
// One pair of Limiters (upload, download) belongs to the engine's Client
// and is shared by all its torrents and by every transport (TCP, and uTP
// once it exists): whatever carries peer bytes is wrapped with Wrap.
//
// A Limiter is a token bucket: tokens accrue at Rate bytes per second up to
// Burst; a waiter for n bytes is served once the bucket holds n tokens
// (or is full, for n above Burst) and takes n, which may leave the bucket
// in debt. Waiters queue in two classes: every Urgent waiter is served
// before any Normal one, and each class is first come, first served. The
// engine marks a connection Urgent while it carries a reader's Now pieces,
// so those arrive first when the download cap is saturated. Rate 0 means
// unlimited: waits return at once and the Conn wrapper costs one atomic
// load per call. SetRate changes the rate (and a derived burst) at run
// time; waiters already queued are re-timed.
//
// Conn charges a write before sending it, in chunks no larger than the
// burst, and a read after it returned: the bytes read are a debt paid
// before the next read, so an idle connection holds no tokens. Waits
// honour the Conn's deadlines (os.ErrDeadlineExceeded) and Close
// (net.ErrClosed).
//
// # Concurrency
//
// Limiter, Reservation and Conn are safe for concurrent use. A Limiter
// starts no goroutine of its own: it arms one timer (Clock.AfterFunc) for
// the head of its queue and grants from that timer's callback, from Reserve,
// Cancel and SetRate. The Clock is injectable; FakeClock runs due timers
// synchronously inside Advance, so tests decide the time and see grants at
// once, without sleeping.
//
// # Errors
//
// ErrRate reports a negative rate or burst. Waits return the context's
// error, os.ErrDeadlineExceeded or net.ErrClosed.
package ratelimit
