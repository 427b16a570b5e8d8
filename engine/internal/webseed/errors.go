package webseed

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error a Seed returns wraps one of them (or the
// caller's context error, or the error its deliver function returned), so
// callers decide with errors.Is and never by matching text.
var (
	// ErrBadURL: the web seed URL is not an absolute http or https URL.
	ErrBadURL = errors.New("webseed: bad URL")
	// ErrBadRange: FetchRun was given pieces outside the torrent or a
	// buffer too small for them (a caller bug, not the server's fault).
	ErrBadRange = errors.New("webseed: bad piece range or buffer")
	// ErrDropped: the seed was dropped (too many faults, no usable file,
	// or Close) and is never used again; Status().Cause says why.
	ErrDropped = errors.New("webseed: seed dropped")
	// ErrBackoff: the seed is backing off until Status().Until.
	ErrBackoff = errors.New("webseed: seed backing off")
	// ErrFileMissing: the server does not have one of the torrent's files
	// (404, 410, 403 or another 4xx, or a file of the wrong size). That file
	// is skipped by this seed from then on: Usable is false for its pieces.
	ErrFileMissing = errors.New("webseed: file not available from this seed")
	// ErrServer: the server answered 5xx or 429 (retried, then backoff).
	ErrServer = errors.New("webseed: server error")
	// ErrConn: the connection failed (refused, reset, closed before a
	// response, dial or TLS timeout); retried, then backoff.
	ErrConn = errors.New("webseed: connection failed")
	// ErrStalled: no byte arrived for Config.IdleTimeout (while waiting for
	// the response or mid-body); retried, then backoff.
	ErrStalled = errors.New("webseed: transfer stalled")
	// ErrShortBody: the body ended before the promised bytes, or a 206
	// covered less than was asked; retried from where it stopped.
	ErrShortBody = errors.New("webseed: body ended early")
	// ErrRangeIgnored: the server answered a Range request with the whole
	// file (200) and the wanted part starts beyond Config.MaxDiscard.
	// A fault: counts towards dropping the seed.
	ErrRangeIgnored = errors.New("webseed: server ignored Range")
	// ErrBadContentRange: a 206 whose Content-Range is missing, malformed,
	// starts elsewhere than asked, or disagrees with Content-Length. A fault.
	ErrBadContentRange = errors.New("webseed: bad Content-Range")
	// ErrBadResponse: a response swarmfs cannot use (encoded body, 3xx
	// without a usable Location, an unexpected status). A fault.
	ErrBadResponse = errors.New("webseed: unusable response")
	// ErrRedirect: too many redirects, or one to a scheme other than
	// http and https. A fault.
	ErrRedirect = errors.New("webseed: bad redirect")
	// ErrBadData: the seed was dropped after pieces from it failed their
	// hash check (Failed) Config.MaxFaults times with other faults.
	ErrBadData = errors.New("webseed: pieces failed their hash check")
	// ErrNoFiles: the seed was dropped because no file of the torrent is
	// available from it.
	ErrNoFiles = errors.New("webseed: no file of the torrent is available")
	// ErrClosed: the seed was closed.
	ErrClosed = errors.New("webseed: seed closed")
)

// Error describes a failed request for one file. Err wraps one of the
// sentinel errors above; Unwrap returns it.
type Error struct {
	URL    string // the file's URL
	File   int    // index into Info.Files
	Status int    // HTTP status, 0 when no response arrived
	// RetryAfter is the server's Retry-After, capped by
	// Config.MaxRetryAfter; 0 when it sent none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("GET %s: HTTP %d: %v", e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("GET %s: %v", e.URL, e.Err)
}

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// retryable reports whether a request that failed with err may succeed if
// sent again soon.
func retryable(err error) bool {
	return errors.Is(err, ErrServer) || errors.Is(err, ErrConn) ||
		errors.Is(err, ErrStalled) || errors.Is(err, ErrShortBody)
}

// isFault reports whether err shows a misbehaving server: faults count
// towards dropping the seed (Config.MaxFaults).
func isFault(err error) bool {
	return errors.Is(err, ErrRangeIgnored) || errors.Is(err, ErrBadContentRange) ||
		errors.Is(err, ErrBadResponse) || errors.Is(err, ErrRedirect)
}

// errPartialRange: a 206 that covered less than was asked, all of it
// received. The fetch asks for the rest at once, without counting a retry.
var errPartialRange = fmt.Errorf("%w: partial range", ErrShortBody)

// deliverError carries an error returned by the caller's deliver function
// through the fetch code, so that it is returned unchanged and never
// charged to the seed.
type deliverError struct{ err error }

func (e *deliverError) Error() string { return e.err.Error() }
func (e *deliverError) Unwrap() error { return e.err }
