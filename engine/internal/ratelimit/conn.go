package ratelimit

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a net.Conn whose writes are charged to an upload Limiter and
// whose reads to a download Limiter. Waits for tokens honour the
// deadlines set on the Conn and end when it is closed.
type Conn struct {
	net.Conn
	up, down *Limiter

	closed    chan struct{}
	closeOnce sync.Once
	rd, wd    deadline

	readClass, writeClass atomic.Uint32 // Class

	readMu   sync.Mutex // held across a Read; guards readDebt
	readDebt int64      // bytes read but not yet charged
	writeMu  sync.Mutex // held across a Write so that its chunks stay contiguous
}

// deadline is one direction's deadline, with a channel closed whenever it
// changes so that a wait in progress picks up the new value.
type deadline struct {
	mu      sync.Mutex // guards t and changed
	t       time.Time
	changed chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t = t
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
}

func (d *deadline) get() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.t, d.changed
}

// Wrap returns c with its writes charged to up and its reads to down;
// either may be nil (unlimited). Both classes start Normal.
func Wrap(c net.Conn, up, down *Limiter) *Conn {
	return &Conn{Conn: c, up: up, down: down, closed: make(chan struct{})}
}

// Unwrap returns the wrapped connection (for *net.TCPConn options); bytes
// moved on it directly are not charged.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// SetReadClass sets the class in which reads wait for download tokens:
// Urgent while the peer is sending bytes a reader is blocked on.
func (c *Conn) SetReadClass(cl Class) { c.readClass.Store(uint32(cl)) }

// SetWriteClass sets the class in which writes wait for upload tokens.
func (c *Conn) SetWriteClass(cl Class) { c.writeClass.Store(uint32(cl)) }

// Read reads at most one chunk. The bytes it returns are charged before
// the next Read touches the network, so the rate holds over time and an
// idle connection holds no tokens.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readDebt > 0 {
		if err := c.wait(c.down, c.readDebt, Class(c.readClass.Load()), &c.rd); err != nil {
			return 0, err
		}
		c.readDebt = 0
	}
	if !c.down.Limited() || len(p) == 0 {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p[:min(len(p), c.down.chunk())])
	c.readDebt = int64(n)
	return n, err
}

// Write writes p in chunks, each after its upload tokens are granted. On
// an error it returns the bytes written so far.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	total := 0
	for len(p) > 0 {
		if !c.up.Limited() {
			n, err := c.Conn.Write(p)
			return total + n, err
		}
		k := min(len(p), c.up.chunk())
		if err := c.wait(c.up, int64(k), Class(c.writeClass.Load()), &c.wd); err != nil {
			return total, err
		}
		n, err := c.Conn.Write(p[:k])
		total += n
		c.up.refund(int64(k - n))
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}

// wait takes n tokens from l, giving up on Close (net.ErrClosed) or when
// dl passes (os.ErrDeadlineExceeded).
func (c *Conn) wait(l *Limiter, n int64, cl Class, dl *deadline) error {
	if !l.Limited() {
		return nil
	}
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	r, err := l.Reserve(n, cl)
	if err != nil {
		return err
	}
	for {
		t, changed := dl.get()
		var expired chan struct{}
		var timer Timer
		if !t.IsZero() {
			d := t.Sub(l.clock.Now())
			if d <= 0 {
				r.Cancel()
				return os.ErrDeadlineExceeded
			}
			ch := make(chan struct{})
			expired = ch
			timer = l.clock.AfterFunc(d, func() { close(ch) })
		}
		select {
		case <-r.Ready():
			stopTimer(timer)
			return nil
		case <-c.closed:
			stopTimer(timer)
			r.Cancel()
			return net.ErrClosed
		case <-changed:
			stopTimer(timer)
		case <-expired:
			r.Cancel()
			return os.ErrDeadlineExceeded
		}
	}
}

func stopTimer(t Timer) {
	if t != nil {
		t.Stop()
	}
}

// Close closes the connection and ends waits for tokens.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// SetDeadline sets both deadlines, here and on the wrapped connection.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline, here and on the wrapped
// connection.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline, here and on the wrapped
// connection.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return c.Conn.SetWriteDeadline(t)
}
