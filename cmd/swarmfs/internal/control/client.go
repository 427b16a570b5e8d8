package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

// Client talks to a Server.
type Client struct {
	c  *net.UnixConn
	br *bufio.Reader
	bw *bufio.Writer
}

// Dial connects to the socket at path. A missing socket gives an error
// wrapping os.ErrNotExist.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("control: no control socket %s: %w", path, os.ErrNotExist)
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	uc := c.(*net.UnixConn)
	return &Client{c: uc, br: bufio.NewReader(uc), bw: bufio.NewWriter(uc)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// call sends one request and reads its response.
func (c *Client) call(ctx context.Context, req Request) (Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * opTimeout)
	}
	_ = c.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Now()) })
	defer stop()
	if err := writeLine(c.bw, req); err != nil {
		return Response{}, fmt.Errorf("control: %w", err)
	}
	line, err := readLine(c.br)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("control: %w", ctx.Err())
		}
		return Response{}, fmt.Errorf("control: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return resp, resp.err()
}

// Add adds one source (the bytes of a .torrent file or a magnet link;
// name says where it came from) and returns the torrent.
func (c *Client) Add(ctx context.Context, name string, source []byte) (library.Torrent, error) {
	resp, err := c.call(ctx, Request{Op: OpAdd, Name: name, Source: source})
	if err != nil {
		return library.Torrent{}, err
	}
	if resp.Torrent == nil {
		return library.Torrent{}, fmt.Errorf("%w: add answered without a torrent", ErrProtocol)
	}
	return *resp.Torrent, nil
}

// Remove removes the torrent named target (a name or hex info hash) and
// returns it as it was.
func (c *Client) Remove(ctx context.Context, target string, purge bool) (library.Torrent, error) {
	resp, err := c.call(ctx, Request{Op: OpRemove, Target: target, Purge: purge})
	if err != nil {
		return library.Torrent{}, err
	}
	if resp.Torrent == nil {
		return library.Torrent{}, fmt.Errorf("%w: remove answered without a torrent", ErrProtocol)
	}
	return *resp.Torrent, nil
}

// Status returns every torrent.
func (c *Client) Status(ctx context.Context) ([]library.Torrent, error) {
	resp, err := c.call(ctx, Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	return resp.Torrents, nil
}

// Rates sets the rate limits when set is not nil, and returns those in
// force.
func (c *Client) Rates(ctx context.Context, set *library.RateLimits) (library.RateLimits, error) {
	resp, err := c.call(ctx, Request{Op: OpRates, Rates: set})
	if err != nil {
		return library.RateLimits{}, err
	}
	if resp.Rates == nil {
		return library.RateLimits{}, fmt.Errorf("%w: rates answered without rates", ErrProtocol)
	}
	return *resp.Rates, nil
}
