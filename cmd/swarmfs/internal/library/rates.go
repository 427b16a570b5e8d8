package library

import "errors"

// ErrNoRates is returned when a library's rate limits cannot be read or
// changed (it does not implement RateLimiter).
var ErrNoRates = errors.New("library: rate limits cannot be changed here")

// RateLimits are the upload and download caps of a library's engine in
// bytes per second; 0 means unlimited.
type RateLimits struct {
	Up   int64 `json:"up"`
	Down int64 `json:"down"`
}

// RateLimiter is implemented by libraries whose rate limits change at run
// time; front ends (control socket, HTTP API) find it by type assertion.
type RateLimiter interface {
	RateLimits() RateLimits
	SetRateLimits(RateLimits) error
}
