package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// listen opens a datagram socket that plays systemd's NOTIFY_SOCKET.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathAndAbstract(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@swarmfs-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		sock := listen(t, addr)
		t.Setenv("NOTIFY_SOCKET", addr)
		n, err := FromEnv()
		if err != nil || n == nil {
			t.Fatalf("FromEnv(%q) = %v, %v", addr, n, err)
		}
		if err := n.Ready("mounted 1 torrent\nat /mnt/t"); err != nil {
			t.Fatalf("%s: Ready: %v", addr, err)
		}
		if got, want := receive(t, sock), "READY=1\nSTATUS=mounted 1 torrent at /mnt/t"; got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
		if err := n.Status("50%"); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, sock); got != "STATUS=50%" {
			t.Errorf("status: got %q", got)
		}
		if err := n.Stopping("unmounting"); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, sock); got != "STOPPING=1\nSTATUS=unmounting" {
			t.Errorf("stopping: got %q", got)
		}
	}
}

func TestUnsetAndBad(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := FromEnv()
	if n != nil || err != nil {
		t.Fatalf("unset: %v, %v", n, err)
	}
	if err := n.Ready("x"); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
	for _, bad := range []string{"vsock:2:1234", "relative/path", "@"} {
		if _, err := New(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("New(%q) = %v, want ErrAddress", bad, err)
		}
	}
	gone, _ := New(filepath.Join(t.TempDir(), "nobody-listens"))
	if err := gone.Ready("x"); err == nil {
		t.Error("sending to a missing socket succeeded")
	}
}
