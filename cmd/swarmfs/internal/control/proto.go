package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/metainfo"
)

// MaxLine caps one request or response line: a base64 .torrent of
// metainfo.MaxTorrentSize bytes and room for the rest.
const MaxLine = metainfo.MaxTorrentSize/3*4 + 64<<10

// Errors of this package.
var (
	ErrInUse    = errors.New("control: another server is listening on the socket")
	ErrRefused  = errors.New("control: connection from another user refused")
	ErrProtocol = errors.New("control: protocol error")
)

// Operations of a Request.
const (
	OpAdd    = "add"
	OpRemove = "remove"
	OpStatus = "status"
	OpRates  = "rates"
)

// Request is one line from the client.
type Request struct {
	Op string `json:"op"`
	// Source is the raw bytes of a .torrent file or a magnet link (add);
	// Name says where it came from, for messages.
	Source []byte `json:"source,omitempty"`
	Name   string `json:"name,omitempty"`
	// Target is a torrent name or hex info hash (remove).
	Target string `json:"target,omitempty"`
	Purge  bool   `json:"purge,omitempty"`
	// Rates, when set, are the new rate limits (rates); without it rates
	// only reads them.
	Rates *library.RateLimits `json:"rates,omitempty"`
}

// Response is one line from the server.
type Response struct {
	// Error is empty on success; Code then names the library error.
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
	// Torrent is the torrent added or removed.
	Torrent *library.Torrent `json:"torrent,omitempty"`
	// Torrents is the status: every torrent.
	Torrents []library.Torrent `json:"torrents,omitempty"`
	// Rates are the rate limits in force (rates).
	Rates *library.RateLimits `json:"rates,omitempty"`
}

// codes maps library errors to wire codes and back.
var codes = []struct {
	code string
	err  error
}{
	{"not_found", library.ErrNotFound},
	{"exists", library.ErrExists},
	{"no_info", library.ErrNoInfo},
	{"bad_source", library.ErrBadSource},
	{"ambiguous", library.ErrAmbiguous},
	{"no_rates", library.ErrNoRates},
}

func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// remoteError is an error the server reported.
type remoteError struct {
	msg  string
	base error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.base }

// err returns the response's error, wrapping the library sentinel its
// code names.
func (r *Response) err() error {
	if r.Error == "" {
		return nil
	}
	for _, c := range codes {
		if c.code == r.Code {
			return &remoteError{msg: r.Error, base: c.err}
		}
	}
	return &remoteError{msg: r.Error}
}

// parseRequest decodes and validates one request line.
func parseRequest(line []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data after the request", ErrProtocol)
	}
	switch req.Op {
	case OpAdd:
		if len(req.Source) == 0 {
			return Request{}, fmt.Errorf("%w: add without a source", ErrProtocol)
		}
	case OpRemove:
		if req.Target == "" {
			return Request{}, fmt.Errorf("%w: remove without a target", ErrProtocol)
		}
	case OpStatus:
	case OpRates:
		if r := req.Rates; r != nil && (r.Up < 0 || r.Down < 0) {
			return Request{}, fmt.Errorf("%w: negative rate limit", ErrProtocol)
		}
	default:
		return Request{}, fmt.Errorf("%w: unknown operation %q", ErrProtocol, req.Op)
	}
	return req, nil
}

// readLine reads one line of at most MaxLine bytes, without the newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLine)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// writeLine writes v as one JSON line.
func writeLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}
