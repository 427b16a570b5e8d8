package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/mse"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// cryptoLog is a slog handler that records the "crypto" attribute of every
// "peer connected" log record.
type cryptoLog struct {
	mu   sync.Mutex
	seen []string
}

func (c *cryptoLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *cryptoLog) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *cryptoLog) WithGroup(string) slog.Handler            { return c }
func (c *cryptoLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "peer connected" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "crypto" {
			c.mu.Lock()
			c.seen = append(c.seen, a.Value.String())
			c.mu.Unlock()
		}
		return true
	})
	return nil
}

func (c *cryptoLog) connections() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// expectCrypto fails t unless at least one connection was logged and all
// used want.
func expectCrypto(t *testing.T, log *cryptoLog, want string) {
	t.Helper()
	got := log.connections()
	if len(got) == 0 {
		t.Fatal("no peer connection was logged")
	}
	for _, g := range got {
		if g != want {
			t.Fatalf("connections used %q, want all %q", got, want)
		}
	}
}

// TestMSEDownloadFromForcedLibtorrent downloads from libtorrent seeders that
// accept only encrypted connections.
func TestMSEDownloadFromForcedLibtorrent(t *testing.T) {
	for i, tc := range []struct {
		name   string
		level  string // the seeder's allowed_enc_level
		policy EncryptionPolicy
		want   string
	}{
		{"prefer/seeder-rc4", "rc4", "", "mse rc4"},
		// libtorrent selects plaintext when offered both (prefer_rc4 off).
		{"prefer/seeder-both", "both", EncryptionPrefer, "mse plaintext"},
		{"require/seeder-both", "both", EncryptionRequire, "mse rc4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := makeFixture(t, "forced", 32<<10, nil, 2<<20, 300001)
			ip := []string{"127.0.10.20", "127.0.10.21", "127.0.10.22"}[i]
			seeder := enginetest.StartLibtorrentEncrypted(t,
				enginetest.LTOptions{IP: ip, Torrent: f.torrent, SavePath: f.dir},
				enginetest.LTEncryption{Out: "forced", In: "forced", Level: tc.level})
			seeder.WaitSeeding(t, time.Minute)
			log := &cryptoLog{}
			c := newTestClient(t, "127.0.10.1", Config{Encryption: tc.policy, Logger: slog.New(log)})
			tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			waitClosed(t, ctx, tor.Complete(), "download", tor)
			checkFiles(t, ctx, tor, f)
			expectCrypto(t, log, tc.want)
		})
	}
}

// TestMSESeedToForcedLibtorrent seeds to libtorrent leechers that connect
// to us only encrypted.
func TestMSESeedToForcedLibtorrent(t *testing.T) {
	for i, tc := range []struct {
		name   string
		level  string // the leecher's allowed_enc_level: what it offers
		policy EncryptionPolicy
		want   string
	}{
		{"prefer/leecher-rc4", "rc4", "", "mse rc4"},
		{"prefer/leecher-both", "both", "", "mse plaintext"},
		{"require/leecher-both", "both", EncryptionRequire, "mse rc4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := makeFixture(t, "forcedleech", 32<<10, nil, 2<<20, 123457)
			log := &cryptoLog{}
			c := newTestClient(t, "127.0.10.2", Config{Encryption: tc.policy, Logger: slog.New(log)})
			tor := seedFixture(t, c, f)
			dst := t.TempDir()
			lt := enginetest.StartLibtorrentEncrypted(t,
				enginetest.LTOptions{IP: []string{"127.0.10.30", "127.0.10.31", "127.0.10.32"}[i], Torrent: f.torrent, SavePath: dst, Peers: []string{c.Addr().String()}, ExitWhenDone: true},
				enginetest.LTEncryption{Out: "forced", In: "forced", Level: tc.level})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, _, err := lt.WaitDone(ctx); err != nil {
				t.Fatalf("%v; our stats %+v", err, tor.Stats())
			}
			checkDir(t, dst, f)
			expectCrypto(t, log, tc.want)
		})
	}
}

// TestMSEOffAgainstForcedLibtorrent checks that with encryption off a
// seeder that forces it gives nothing, and that reads fail at their
// deadline instead of hanging.
func TestMSEOffAgainstForcedLibtorrent(t *testing.T) {
	f := makeFixture(t, "refused", 32<<10, nil, 1<<20)
	seeder := enginetest.StartLibtorrentEncrypted(t,
		enginetest.LTOptions{IP: "127.0.10.24", Torrent: f.torrent, SavePath: f.dir},
		enginetest.LTEncryption{Out: "forced", In: "forced", Level: "both"})
	seeder.WaitSeeding(t, time.Minute)
	log := &cryptoLog{}
	c := newTestClient(t, "127.0.10.3", Config{Encryption: EncryptionOff, Logger: slog.New(log)})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	buf := make([]byte, 1000)
	if n, err := r.ReadAt(ctx, buf, 0); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read from a seeder that refuses plain connections: n=%d err=%v", n, err)
	}
	if got := log.connections(); len(got) != 0 {
		t.Fatalf("connected although encryption is off: %q", got)
	}
	if st := tor.Stats(); st.PiecesHave != 0 || st.Peers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMSEPolicies has our own clients with every pair of policies download
// from each other.
func TestMSEPolicies(t *testing.T) {
	for i, tc := range []struct {
		seed, leech EncryptionPolicy
		want        string // "" = no connection
	}{
		{EncryptionPrefer, EncryptionPrefer, "mse plaintext"},
		{EncryptionOff, EncryptionPrefer, "none"}, // MSE refused, plain retry
		{EncryptionRequire, EncryptionPrefer, "mse rc4"},
		{EncryptionPrefer, EncryptionRequire, "mse rc4"},
		{EncryptionPrefer, EncryptionOff, "none"},
		{EncryptionRequire, EncryptionOff, ""},
		{EncryptionOff, EncryptionRequire, ""},
	} {
		t.Run(string(tc.seed)+"-seeds-to-"+string(tc.leech), func(t *testing.T) {
			t.Parallel()
			f := makeFixture(t, "policies", 16<<10, nil, 300000)
			seedIP := netip.AddrFrom4([4]byte{127, 0, 10, byte(100 + 2*i)})
			leechIP := seedIP.Next()
			seedLog, leechLog := &cryptoLog{}, &cryptoLog{}
			seed := newTestClient(t, seedIP.String(), Config{Encryption: tc.seed, Logger: slog.New(seedLog)})
			seedFixture(t, seed, f)
			leech := newTestClient(t, leechIP.String(), Config{Encryption: tc.leech, Logger: slog.New(leechLog)})
			tor, err := leech.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{seed.Addr()}, Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				select {
				case <-tor.Complete():
					t.Fatal("downloaded although the policies exclude each other")
				case <-time.After(3 * time.Second):
				}
				if got := append(seedLog.connections(), leechLog.connections()...); len(got) != 0 {
					t.Fatalf("connected: %q", got)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			waitClosed(t, ctx, tor.Complete(), "download", tor)
			checkFiles(t, ctx, tor, f)
			expectCrypto(t, leechLog, tc.want)
			expectCrypto(t, seedLog, tc.want)
		})
	}
}

// TestMSEIncomingMismatch checks that an incoming MSE connection is dropped
// when its SKEY names no torrent of ours, or when the BitTorrent handshake
// inside names another torrent than the SKEY.
func TestMSEIncomingMismatch(t *testing.T) {
	a := makeFixture(t, "mse-a", 16<<10, nil, 50000)
	b := makeFixture(t, "mse-b", 16<<10, nil, 60000)
	c := newTestClient(t, "127.0.10.4", Config{})
	if _, err := c.AddTorrent(a.mi, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTorrent(b.mi, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	var id [20]byte
	copy(id[:], "-XX0001-mse-mismatch")
	for _, tc := range []struct {
		name     string
		skey, bt [20]byte
		ok       bool
	}{
		{"control", a.mi.InfoHash, a.mi.InfoHash, true},
		{"unknown skey", [20]byte{9, 9, 9}, a.mi.InfoHash, false},
		{"other torrent inside", a.mi.InfoHash, b.mi.InfoHash, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", c.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			ia := wire.AppendHandshake(nil, wire.NewHandshake(tc.bt, id))
			rw, m, err := mse.InitiateHandshake(conn, tc.skey, ia, mse.RC4)
			if err == nil {
				if m != mse.RC4 {
					t.Fatalf("selected %v", m)
				}
				var h wire.Handshake
				h, err = wire.ReadHandshake(rw)
				if err == nil && h.InfoHash != tc.bt {
					t.Fatalf("answered for %x", h.InfoHash)
				}
			}
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("handshake accepted")
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("not dropped, timed out: %v", err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
}

func TestEncryptionPolicyInvalid(t *testing.T) {
	_, err := New(Config{ListenAddr: "127.0.10.5:0", CacheDir: t.TempDir(), NoDHT: true, Encryption: "always"})
	if err == nil || !strings.Contains(err.Error(), "always") {
		t.Fatalf("New with encryption %q: %v", "always", err)
	}
}

// BenchmarkMSETransfer downloads 128 MiB from one of our seeders to one of
// our leechers in this process with encryption off (the reference),
// preferred (an MSE handshake, then plaintext) and required (RC4 both
// ways), to measure what MSE costs on the data path. Run it with
// -benchtime=1x.
func BenchmarkMSETransfer(b *testing.B) {
	size := int64(128 << 20)
	dir := b.TempDir()
	writeRandomFile(b, filepath.Join(dir, "mse.bin"), size)
	mi, err := metainfo.Create(filepath.Join(dir, "mse.bin"), metainfo.CreateOptions{NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	for i, policy := range []EncryptionPolicy{EncryptionOff, EncryptionPrefer, EncryptionRequire} {
		b.Run(string(policy), func(b *testing.B) {
			seed, err := New(Config{ListenAddr: fmt.Sprintf("127.0.10.%d:0", 200+2*i), CacheDir: b.TempDir(), NoDHT: true, Encryption: policy})
			if err != nil {
				b.Fatal(err)
			}
			defer seed.Close()
			st, err := seed.AddTorrent(mi, AddOptions{Import: dir})
			if err != nil {
				b.Fatal(err)
			}
			select {
			case <-st.Complete():
			case <-time.After(2 * time.Minute):
				b.Fatal("import too slow")
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				c, err := New(Config{ListenAddr: fmt.Sprintf("127.0.10.%d:0", 201+2*i), CacheDir: b.TempDir(), NoDHT: true, Encryption: policy})
				if err != nil {
					b.Fatal(err)
				}
				tor, err := c.AddTorrent(mi, AddOptions{Peers: []netip.AddrPort{seed.Addr()}, Prefetch: true})
				if err != nil {
					b.Fatal(err)
				}
				select {
				case <-tor.Complete():
				case <-time.After(5 * time.Minute):
					b.Fatalf("download: %+v", tor.Stats())
				}
				b.StopTimer()
				c.Close()
				os.RemoveAll(c.cfg.CacheDir)
				b.StartTimer()
			}
		})
	}
}
