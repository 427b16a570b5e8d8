package enginetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a goroutine locked to an OS thread that has entered the
// host's network namespace, and returns fn's error. Sockets fn creates
// belong to that namespace for their whole life and may then be used from
// any goroutine: that is how a test runs an in-process server or client
// "on" a simulated host.
//
// Caveats: only the calling thread is in the namespace. Goroutines fn starts
// run on other threads, in the test's own namespace, so every socket must
// be created by fn itself (net.Listen, net.Dial and net.ListenPacket create
// theirs in the calling goroutine). Name resolution other than IP literals
// may start goroutines: use addresses. After fn returns, the thread goes back
// to the original namespace; if that fails, the thread is left locked and
// the Go runtime discards it when the goroutine exits.
func (h *NetHost) Do(fn func() error) error {
	if err := inNetns(h.name, fn); err != nil {
		return fmt.Errorf("netsim: %w", err)
	}
	return nil
}

// inNetns runs fn on a goroutine locked to an OS thread that has entered
// the network namespace /run/netns/name (the caveats of NetHost.Do apply).
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", name, err)
			return
		}
		ferr := fn()
		if setns(orig) == nil {
			runtime.UnlockOSThread()
		} // else: stay locked, so the runtime drops the thread.
		errc <- ferr
	}()
	return <-errc
}

// setns moves the calling thread into the network namespace of f.
func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// Listen opens a listener inside the host's namespace (see Do).
func (h *NetHost) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the host's namespace (see Do).
// Its signature matches the ListenPacket hooks of the engine's packages.
func (h *NetHost) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() (err error) {
		var lc net.ListenConfig
		c, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	return c, err
}

// DialContext dials from inside the host's namespace (see Do). Its
// signature matches net.Dialer.DialContext and http.Transport.DialContext.
func (h *NetHost) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
