package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"golang.org/x/sys/unix"
)

// Limits of a Server.
const (
	// MaxConns is the number of connections served at once; more wait in
	// the listen backlog.
	MaxConns = 8
	// idleTimeout closes a connection that sends no request for this long.
	idleTimeout = 2 * time.Minute
	// opTimeout bounds one operation on the library.
	opTimeout = time.Minute
	// maxSocketPath is the longest unix socket path Linux takes
	// (sun_path is 108 bytes with the terminating NUL).
	maxSocketPath = 107
)

// Server serves a library on a unix socket.
type Server struct {
	lib  library.Library
	ln   *net.UnixListener
	path string
	log  *slog.Logger
	uid  atomic.Int64 // the only user id served
	sem  chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	connsMu sync.Mutex // guards conns and closed
	conns   map[net.Conn]struct{}
	closed  bool
}

// Listen creates the socket at path (its directory mode 0700, the socket
// 0600) and serves lib on it until Close. A socket file left by a dead
// server is replaced; a live one gives ErrInUse. log may be nil.
func Listen(path string, lib library.Library, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control: socket path %s is longer than %d bytes (set XDG_RUNTIME_DIR, or use a shorter cache directory)", path, maxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: removing a stale socket: %w", err)
	}
	// The directory keeps others out while the socket is not yet 0600.
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	s := &Server{
		lib: lib, ln: ln, path: path, log: log,
		sem: make(chan struct{}, MaxConns), done: make(chan struct{}), conns: map[net.Conn]struct{}{},
	}
	s.uid.Store(int64(os.Getuid()))
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops the server, closes its connections, waits for their
// goroutines and removes the socket file.
func (s *Server) Close() error {
	s.connsMu.Lock()
	if s.closed {
		s.connsMu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.connsMu.Unlock()
	close(s.done)
	err := s.ln.Close() // also removes the socket file
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.done:
			return
		}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-s.sem
			select {
			case <-s.done:
				return
			default:
			}
			s.log.Warn("control socket accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.connsMu.Lock()
		if s.closed {
			s.connsMu.Unlock()
			c.Close()
			<-s.sem
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.connsMu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			defer func() {
				s.connsMu.Lock()
				delete(s.conns, c)
				s.connsMu.Unlock()
				c.Close()
			}()
			if err := s.checkPeer(c); err != nil {
				s.log.Warn("control socket", "err", err)
				return
			}
			s.serveConn(c)
		}()
	}
}

// checkPeer refuses a peer whose user id is not the server's.
func (s *Server) checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("control: SO_PEERCRED: %w", cerr)
	}
	if int64(cred.Uid) != s.uid.Load() {
		return fmt.Errorf("%w: uid %d, pid %d", ErrRefused, cred.Uid, cred.Pid)
	}
	return nil
}

// serveConn answers requests until the client hangs up or idles.
func (s *Server) serveConn(c *net.UnixConn) {
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				_ = writeLine(bw, Response{Error: err.Error()})
			}
			return
		}
		resp := s.handle(line)
		_ = c.SetWriteDeadline(time.Now().Add(idleTimeout))
		if err := writeLine(bw, resp); err != nil {
			return
		}
	}
}

// handle runs one request.
func (s *Server) handle(line []byte) Response {
	req, err := parseRequest(line)
	if err != nil {
		return Response{Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	switch req.Op {
	case OpAdd:
		src, err := library.ParseSource(req.Source)
		if err != nil {
			return errResponse(req.Name, err)
		}
		t, err := s.lib.Add(ctx, src)
		if err != nil {
			return errResponse(req.Name, err)
		}
		return Response{Torrent: &t}
	case OpRemove:
		t, err := library.Find(s.lib, req.Target)
		if err != nil {
			return errResponse("", err)
		}
		if err := s.lib.Remove(ctx, t.InfoHash, req.Purge); err != nil {
			return errResponse(t.Name, err)
		}
		return Response{Torrent: &t}
	case OpRates:
		rl, ok := s.lib.(library.RateLimiter)
		if !ok {
			return errResponse("", library.ErrNoRates)
		}
		if req.Rates != nil {
			if err := rl.SetRateLimits(*req.Rates); err != nil {
				return errResponse("", err)
			}
		}
		r := rl.RateLimits()
		return Response{Rates: &r}
	default: // OpStatus
		ts := s.lib.Torrents()
		if ts == nil {
			ts = []library.Torrent{}
		}
		return Response{Torrents: ts}
	}
}

func errResponse(what string, err error) Response {
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	return Response{Error: msg, Code: codeOf(err)}
}
