package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Config configures a Mapper. The zero value of each field means the
// default written beside it.
type Config struct {
	// Gateway is the NAT-PMP/PCP server and the preferred SSDP answerer;
	// zero means the default gateway (DefaultGateway).
	Gateway netip.Addr
	// Lease is the lifetime asked for each mapping, renewed at half of what
	// was granted; zero means 1 hour.
	Lease time.Duration
	// Timeout bounds each attempt of one method (discovery and every
	// request), and the deletion of the mappings on Close; zero means 4 s.
	Timeout time.Duration
	// RetryAfter is the wait after every method failed; zero means 10
	// minutes.
	RetryAfter time.Duration
	// NoPMP leaves out PCP and NAT-PMP; NoUPnP leaves out UPnP IGD.
	NoPMP, NoUPnP bool
	// Description names our UPnP mappings; zero means "swarmfs".
	Description string
	// Dial opens the UDP sockets of PCP and NAT-PMP and the HTTP
	// connections of UPnP; nil means net.Dialer.DialContext.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ListenPacket opens the SSDP socket; nil means
	// net.ListenConfig.ListenPacket.
	ListenPacket func(ctx context.Context, network, address string) (net.PacketConn, error)
	// Logger receives one warning per method and kind of failure (later
	// ones at debug level) and an info line per success; nil means silent.
	Logger *slog.Logger
}

// Port is a local port to map.
type Port struct {
	Proto    Proto
	Internal uint16
}

// Mapping is a port mapped on the gateway.
type Mapping struct {
	Port
	// External is the port on the gateway's external address.
	External uint16
	// Expires is when the gateway drops the mapping unless renewed (the
	// Mapper renews at half-time); zero for a permanent UPnP mapping.
	Expires time.Time
}

// Method is how mappings were obtained.
type Method int

// Methods, in the order the Mapper tries them.
const (
	MethodNone Method = iota
	MethodPCP
	MethodNATPMP
	MethodUPnP
)

// String returns "none", "PCP", "NAT-PMP" or "UPnP".
func (m Method) String() string {
	switch m {
	case MethodNone:
		return "none"
	case MethodPCP:
		return "PCP"
	case MethodNATPMP:
		return "NAT-PMP"
	case MethodUPnP:
		return "UPnP"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Status is what the Mapper has achieved so far.
type Status struct {
	// Method is the method of the current mappings, MethodNone when none.
	Method Method
	// External is the gateway's external address, when known: the address
	// to announce (with the mapped ports) to trackers and the DHT.
	External netip.Addr
	// Mappings are the current mappings, one per requested Port.
	Mappings []Mapping
	// Err is the last failure (nil after a success).
	Err error
	// Attempts counts the rounds of trying every method.
	Attempts int
}

// ExternalPort returns the external port mapped for p, or 0.
func (s Status) ExternalPort(p Port) uint16 {
	for _, m := range s.Mappings {
		if m.Port == p {
			return m.External
		}
	}
	return 0
}

// Mapper obtains and renews port mappings on the home router for a set of
// ports, from one goroutine, until Close or the end of its context. Its
// methods may be called from any goroutine.
type Mapper struct {
	cfg    Config
	log    *slog.Logger
	ports  []Port
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}

	statusMu sync.Mutex // guards status
	status   Status
	changed  chan struct{}
}

// Start begins mapping ports in a goroutine and returns at once. The
// mappings are deleted when ctx ends or Close is called.
func Start(ctx context.Context, cfg Config, ports ...Port) *Mapper {
	if cfg.Lease <= 0 {
		cfg.Lease = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 10 * time.Minute
	}
	if cfg.Description == "" {
		cfg.Description = "swarmfs"
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.ListenPacket == nil {
		var lc net.ListenConfig
		cfg.ListenPacket = lc.ListenPacket
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Mapper{
		cfg: cfg, log: log, ports: slices.Clone(ports), cancel: cancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}, 1),
		client: &http.Client{
			Transport: &http.Transport{DialContext: cfg.Dial, DisableKeepAlives: true, MaxResponseHeaderBytes: 16 << 10},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("portmap: the IGD redirected")
			},
		},
	}
	go m.run(ctx)
	return m
}

// Status returns a copy of the current status.
func (m *Mapper) Status() Status {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	s := m.status
	s.Mappings = slices.Clone(s.Mappings)
	return s
}

// Changed receives a value after each change of Status (changes that
// happen while nobody reads are coalesced).
func (m *Mapper) Changed() <-chan struct{} { return m.changed }

// Close stops the Mapper: it lets the request in flight finish (within
// Config.Timeout), deletes the mappings (within Config.Timeout) and waits
// for the goroutine. It is safe to call more than once.
func (m *Mapper) Close() error {
	m.cancel()
	<-m.done
	return nil
}

func (m *Mapper) setStatus(f func(*Status)) {
	m.statusMu.Lock()
	f(&m.status)
	m.statusMu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// run is the Mapper's goroutine.
func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
	logged := map[string]bool{}
	var active method
	var maps []Mapping
	for {
		var wait time.Duration
		if active == nil {
			var err error
			var ext netip.Addr
			var kind Method
			active, kind, ext, maps, err = m.establish(ctx, logged)
			m.setStatus(func(s *Status) {
				s.Attempts++
				s.Method, s.External, s.Mappings, s.Err = kind, ext, slices.Clone(maps), err
			})
			wait = m.cfg.RetryAfter
			if err == nil {
				m.log.Info("portmap: ports mapped", "method", kind, "external", ext, "mappings", maps)
				wait = renewIn(maps, m.cfg.Lease)
			}
		} else {
			renewed, err := m.renew(ctx, active, maps)
			if err != nil {
				m.failed(logged, active.String()+" renewal", err)
				active, maps = nil, nil
				m.setStatus(func(s *Status) { s.Method, s.Mappings, s.Err = MethodNone, nil, err })
				wait = 0
			} else {
				maps = renewed
				m.setStatus(func(s *Status) { s.Mappings = slices.Clone(maps) })
				wait = renewIn(maps, m.cfg.Lease)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if active != nil {
				m.remove(active, maps)
			}
			m.setStatus(func(s *Status) { s.Method, s.Mappings, s.Err = MethodNone, nil, ErrClosed })
			return
		case <-t.C:
		}
	}
}

// renewIn is half the shortest lease of maps (half of lease for
// permanent ones, to notice a router that forgot them).
func renewIn(maps []Mapping, lease time.Duration) time.Duration {
	d := lease / 2
	now := time.Now()
	for _, mp := range maps {
		if !mp.Expires.IsZero() {
			d = min(d, mp.Expires.Sub(now)/2)
		}
	}
	return max(d, time.Second)
}

// failed logs err for what once as a warning, then at debug level.
func (m *Mapper) failed(logged map[string]bool, what string, err error) {
	key := what + ": " + errClass(err)
	if logged[key] {
		m.log.Debug("portmap: "+what+" failed", "err", err)
		return
	}
	logged[key] = true
	m.log.Warn("portmap: "+what+" failed", "err", err)
}

func errClass(err error) string {
	for _, e := range []error{ErrRefused, ErrUnsupported, ErrNoAnswer, ErrNoIGD, ErrMalformed, ErrNoGateway} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// establish tries PCP, NAT-PMP and UPnP in turn and returns the first that
// maps every port, or the last error.
func (m *Mapper) establish(ctx context.Context, logged map[string]bool) (method, Method, netip.Addr, []Mapping, error) {
	gw := m.cfg.Gateway
	var lastErr error
	if !gw.IsValid() {
		var err error
		if gw, err = DefaultGateway(); err != nil {
			lastErr = err
		}
	}
	if !m.cfg.NoPMP && gw.IsValid() {
		for _, c := range []struct {
			meth method
			kind Method
		}{{&pcp{gw: gw, dial: m.cfg.Dial}, MethodPCP}, {&natPMP{gw: gw, dial: m.cfg.Dial}, MethodNATPMP}} {
			if ctx.Err() != nil {
				break
			}
			ext, maps, err := m.mapAll(ctx, c.meth)
			if err == nil {
				return c.meth, c.kind, ext, maps, nil
			}
			m.failed(logged, c.meth.String(), err)
			lastErr = err
			if errors.Is(err, ErrNoAnswer) || ctx.Err() != nil {
				break // nobody on the port both use
			}
		}
	}
	if !m.cfg.NoUPnP && ctx.Err() == nil {
		actx, cancel := m.opContext(ctx)
		u, err := discoverUPnP(actx, &m.cfg, gw, m.client)
		cancel()
		if err == nil {
			var ext netip.Addr
			var maps []Mapping
			if ext, maps, err = m.mapAll(ctx, u); err == nil {
				return u, MethodUPnP, ext, maps, nil
			}
		}
		m.failed(logged, "UPnP", err)
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("portmap: every method is turned off")
	}
	if ctx.Err() != nil {
		lastErr = ErrClosed
	}
	return nil, MethodNone, netip.Addr{}, nil, lastErr
}

// mapAll asks meth for the external address and every port, asking for the
// same external port as the internal one (or, on a UPnP conflict, a few
// random ones). On failure it removes what it mapped.
func (m *Mapper) mapAll(ctx context.Context, meth method) (netip.Addr, []Mapping, error) {
	actx, cancel := m.opContext(ctx)
	defer cancel()
	ext, err := meth.externalAddr(actx)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	var maps []Mapping
	for _, p := range m.ports {
		if ctx.Err() != nil {
			m.remove(meth, maps)
			return netip.Addr{}, nil, ErrClosed
		}
		g, err := m.mapOne(actx, meth, p, p.Internal)
		if err != nil {
			m.remove(meth, maps)
			return netip.Addr{}, nil, err
		}
		if !ext.IsValid() && g.Addr.IsValid() && !g.Addr.IsUnspecified() {
			ext = g.Addr
		}
		maps = append(maps, mappingOf(p, g))
	}
	return ext, maps, nil
}

func (m *Mapper) mapOne(ctx context.Context, meth method, p Port, external uint16) (grant, error) {
	g, err := meth.mapPort(ctx, p.Proto, p.Internal, external, m.cfg.Lease)
	var ue *UPnPError
	for try := 0; try < 3 && errors.As(err, &ue) && ue.Code == upnpConflict; try++ {
		g, err = meth.mapPort(ctx, p.Proto, p.Internal, uint16(1024+rand.IntN(65535-1024)), m.cfg.Lease)
	}
	return g, err
}

func mappingOf(p Port, g grant) Mapping {
	mp := Mapping{Port: p, External: g.External}
	if g.Lease > 0 {
		mp.Expires = time.Now().Add(g.Lease)
	}
	return mp
}

// opContext bounds one attempt by Config.Timeout but does not end with
// ctx: a request in flight when the Mapper closes completes (or times out)
// before the deletions, so a router that handles requests concurrently
// cannot apply a late renewal after our delete.
func (m *Mapper) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), m.cfg.Timeout)
}

// renew asks again for every mapping, with the external port it has.
func (m *Mapper) renew(ctx context.Context, meth method, maps []Mapping) ([]Mapping, error) {
	actx, cancel := m.opContext(ctx)
	defer cancel()
	out := make([]Mapping, 0, len(maps))
	for _, mp := range maps {
		g, err := meth.mapPort(actx, mp.Proto, mp.Internal, mp.External, m.cfg.Lease)
		if err != nil {
			return nil, err
		}
		out = append(out, mappingOf(mp.Port, g))
	}
	return out, nil
}

// remove deletes maps, within Config.Timeout even when the Mapper's
// context has ended.
func (m *Mapper) remove(meth method, maps []Mapping) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	for _, mp := range maps {
		if err := meth.unmap(ctx, mp.Proto, mp.Internal, mp.External); err != nil {
			m.log.Debug("portmap: mapping not deleted", "method", meth, "mapping", mp, "err", err)
		}
	}
}
