package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/control"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/httpserve"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/watch"
)

// livingFlags are the flags of the front ends of a library that changes
// while it runs: the HTTP server and the watch directory.
type livingFlags struct {
	httpAddr    string
	httpToken   string
	watchDir    string
	readTimeout time.Duration
}

// register adds the flags; httpDefault is the default of --http ("" means
// no HTTP server unless asked).
func (f *livingFlags) register(fs *flag.FlagSet, httpDefault string) {
	fs.StringVar(&f.httpAddr, "http", httpDefault, "serve HTTP on `ADDR` (host:port; an empty host means 127.0.0.1: name another address to serve other machines)")
	fs.StringVar(&f.httpToken, "http-token", "", "`TOKEN` the HTTP API needs to add and remove torrents (default: a random one, written to a file beside the control socket)")
	fs.StringVar(&f.watchDir, "watch", "", "add the .torrent and .magnet files that appear in `DIR`, remove them when their files go")
	fs.DurationVar(&f.readTimeout, "http-read-timeout", httpserve.DefaultReadTimeout, "fail an HTTP response when its data has not arrived after `DURATION` (the download goes on)")
}

// check validates the flags.
func (f *livingFlags) check() error {
	if f.readTimeout <= 0 {
		return usageError("--http-read-timeout must be positive")
	}
	if f.httpAddr != "" {
		addr, err := loopbackDefault(f.httpAddr)
		if err != nil {
			return err
		}
		f.httpAddr = addr
	}
	if f.watchDir != "" {
		if fi, err := os.Stat(f.watchDir); err != nil || !fi.IsDir() {
			return usageError("--watch %s is not a directory", f.watchDir)
		}
	}
	return nil
}

// loopbackDefault fills in 127.0.0.1 when addr names no host.
func loopbackDefault(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError("--http %q: want host:port or :port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// frontEnds are the control socket and, when asked, the HTTP server and
// the watcher of one library.
type frontEnds struct {
	// URL is the HTTP server's base URL ("" without one), Socket the
	// control socket's path, TokenFile the generated API token's file
	// ("" when given by flag or without HTTP).
	URL, Socket, TokenFile string

	ctl       *control.Server
	srv       *http.Server
	stopWatch context.CancelFunc
	wg        sync.WaitGroup
	srvErr    chan error
}

// startFrontEnds starts the front ends of lib. key names the control
// socket (control.Key of a mountpoint); "" means the HTTP server's URL,
// for serve. cacheDir is the engine's cache directory.
func startFrontEnds(ctx context.Context, f livingFlags, lib library.Library, key, cacheDir string, log *slog.Logger) (_ *frontEnds, err error) {
	fe := &frontEnds{srvErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			fe.Close()
		}
	}()
	var ln net.Listener
	if f.httpAddr != "" {
		if ln, err = net.Listen("tcp", f.httpAddr); err != nil {
			return nil, fmt.Errorf("--http: %w", err)
		}
		fe.URL = "http://" + ln.Addr().String()
		if key == "" {
			key = fe.URL
		}
	}
	dir := control.Dir(cacheDir)
	token := f.httpToken
	if ln != nil && token == "" {
		if token, fe.TokenFile, err = writeToken(dir, key); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if fe.ctl, err = control.Listen(control.SocketPath(dir, key), lib, log); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	fe.Socket = fe.ctl.Path()
	if ln != nil {
		fe.srv = &http.Server{
			Handler: httpserve.New(httpserve.Config{
				Library: lib, Token: token, ReadTimeout: f.readTimeout, Logger: log,
				LoopbackOnly: ln.Addr().(*net.TCPAddr).IP.IsLoopback(),
			}),
			// Header reads are bounded; bodies stream for as long as they need.
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		fe.wg.Go(func() { fe.srvErr <- fe.srv.Serve(ln) })
	}
	if f.watchDir != "" {
		var wctx context.Context
		wctx, fe.stopWatch = context.WithCancel(ctx)
		fe.wg.Go(func() {
			if err := watch.Run(wctx, watch.Config{Dir: f.watchDir, Library: lib, Logger: log}); err != nil {
				log.Error("watch", "err", err)
			}
		})
	}
	return fe, nil
}

// describe says where the front ends are, for the start message.
func (fe *frontEnds) describe() string {
	s := "control socket " + fe.Socket
	if fe.URL != "" {
		s += "; HTTP at " + fe.URL + "/"
	}
	if fe.TokenFile != "" {
		s += "; API token in " + fe.TokenFile
	}
	return s
}

// Err returns a channel that receives the HTTP server's error if it
// stops by itself.
func (fe *frontEnds) Err() <-chan error { return fe.srvErr }

// Close stops the watcher and the HTTP server (cutting streams still
// running after 5 s), closes the control socket and removes the token file.
func (fe *frontEnds) Close() {
	if fe.stopWatch != nil {
		fe.stopWatch()
	}
	if fe.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if fe.srv.Shutdown(ctx) != nil {
			fe.srv.Close()
		}
		cancel()
	}
	fe.wg.Wait()
	if fe.ctl != nil {
		fe.ctl.Close()
	}
	if fe.TokenFile != "" {
		os.Remove(fe.TokenFile)
	}
}

// writeToken writes a random API token, mode 0600, to the token file of key.
func writeToken(dir, key string) (token, path string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	path = control.TokenPath(dir, key)
	if err := cache.WriteFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	return token, path, nil
}

// isServerClosed reports whether err is the HTTP server's normal end.
func isServerClosed(err error) bool { return errors.Is(err, http.ErrServerClosed) }
