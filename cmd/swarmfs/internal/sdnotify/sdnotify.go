package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ErrAddress reports a NOTIFY_SOCKET that is not a path or abstract name.
var ErrAddress = errors.New("sdnotify: NOTIFY_SOCKET is not a unix socket path or @abstract name")

// sendTimeout bounds one Send: a datagram socket does not block for long,
// but a full receive queue on systemd's side must not hang the caller.
const sendTimeout = 5 * time.Second

// Notifier sends state changes to one notification socket. A nil
// *Notifier sends nothing.
type Notifier struct {
	addr string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil when it is unset
// or empty.
func FromEnv() (*Notifier, error) {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns a Notifier for addr (a path starting with '/' or an abstract
// name starting with '@'), or nil when addr is empty.
func New(addr string) (*Notifier, error) {
	switch {
	case addr == "":
		return nil, nil
	case strings.HasPrefix(addr, "/"), strings.HasPrefix(addr, "@") && len(addr) > 1:
		return &Notifier{addr: addr}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrAddress, addr)
}

// Send sends the given KEY=VALUE assignments in one datagram.
func (n *Notifier) Send(assignments ...string) error {
	if n == nil || len(assignments) == 0 {
		return nil
	}
	// Go maps a leading '@' to the abstract namespace's leading NUL.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := c.Write([]byte(strings.Join(assignments, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready tells systemd that start-up is complete (READY=1), with a status
// line to show in systemctl status.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", "STATUS="+oneLine(status))
}

// Status updates the free-form status line (STATUS=...).
func (n *Notifier) Status(status string) error {
	return n.Send("STATUS=" + oneLine(status))
}

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1", "STATUS="+oneLine(status))
}

// oneLine keeps a status from adding assignments of its own.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}
