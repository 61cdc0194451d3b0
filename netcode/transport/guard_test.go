package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// captureConn records what is written to it and never delivers anything.
type captureConn struct {
	mu      sync.Mutex
	written [][]byte
	done    chan struct{}
	once    sync.Once
}

func newCaptureConn() *captureConn { return &captureConn{done: make(chan struct{})} }

func (c *captureConn) ReadFrom(p []byte) (int, net.Addr, error) {
	<-c.done
	return 0, nil, net.ErrClosed
}

func (c *captureConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, append([]byte(nil), p...))
	c.mu.Unlock()
	return len(p), nil
}

func (c *captureConn) Close() error                     { c.once.Do(func() { close(c.done) }); return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// opening captures the first packet a real dialer with cfg sends.
func opening(t *testing.T, cfg Config) []byte {
	t.Helper()
	c := newCaptureConn()
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		DialConn(ctx, c, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}, cfg)
	}()
	defer func() { cancel(); <-done }()
	for range 500 {
		c.mu.Lock()
		if len(c.written) > 0 {
			p := c.written[0]
			c.mu.Unlock()
			return p
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the dialer sent nothing")
	return nil
}

func guardConfigs() map[string]Config {
	enc := LAN()
	enc.Secret = []byte("the guard test secret, 32 bytes!")
	fecEnc := Internet()
	fecEnc.Secret = enc.Secret
	return map[string]Config{"plain": LAN(), "fec": Internet(), "encrypted": enc, "fec+encrypted": fecEnc}
}

func host(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 4000)
}

// TestGuardAdmitsOnlyOpenings: what a real dialer sends first is admitted
// under every configuration; garbage, a conversation that sends only part
// of the hello record, a segment that is not the first, a packet under
// another secret are not, and cost no session.
func TestGuardAdmitsOnlyOpenings(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, cfg := range guardConfigs() {
		t.Run(name, func(t *testing.T) {
			open := opening(t, cfg)
			g, err := NewGuard(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !g.Admit(0, host(1), open) {
				t.Fatalf("a real dialer's opening (%d bytes) refused", len(open))
			}
			refused := [][]byte{nil, open[:len(open)-1], open[:10]}
			for range 100 {
				b := make([]byte, 24+rng.IntN(1400))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				refused = append(refused, b)
			}
			for i := range len(open) {
				b := append([]byte(nil), open...)
				b[i] ^= 0x40
				if cfg.Secret == nil && i < guardKCPHeader+(map[bool]int{true: guardFECHeader}[cfg.DataShards > 0]) {
					continue // conv, window, timestamp, FEC seqid: any value opens
				}
				refused = append(refused, b)
			}
			for i, b := range refused {
				if g.Admit(0, host(100+i), b) {
					t.Errorf("packet %d (%d bytes) admitted", i, len(b))
				}
			}
			if st := g.Stats(); st.Admitted != 1 || st.HostLimited+st.Limited != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	// Under another secret, the checksum fails.
	cfgs := guardConfigs()
	other := cfgs["encrypted"]
	other.Secret = []byte("another secret, also 32 bytes!!")
	g, _ := NewGuard(cfgs["encrypted"])
	if g.Admit(0, host(1), opening(t, other)) {
		t.Error("an opening under another secret admitted")
	}
}

// TestGuardPartialHello: a conversation whose first segment holds only the
// first bytes of the hello record (it would hold a handshake slot until
// the handshake timeout) is not an opening.
func TestGuardPartialHello(t *testing.T) {
	g, _ := NewGuard(LAN())
	for n := range len(helloRecord) {
		seg := make([]byte, guardKCPHeader, guardKCPHeader+n)
		binary.LittleEndian.PutUint32(seg, 77) // conv
		seg[4] = guardKCPPush
		binary.LittleEndian.PutUint16(seg[6:], 128) // window
		binary.LittleEndian.PutUint32(seg[20:], uint32(n))
		seg = append(seg, helloRecord[:n]...)
		if g.Admit(0, host(n), seg) {
			t.Errorf("a first segment with %d bytes of the hello record admitted", n)
		}
	}
}

// TestGuardRates: each host may open HandshakeRatePerHost sessions a
// second (burst: two seconds' worth), all hosts HandshakeRate (burst: one
// second's worth); the rates refill with time.
func TestGuardRates(t *testing.T) {
	cfg := LAN()
	cfg.HandshakeRatePerHost, cfg.HandshakeRate = 4, 20
	open := opening(t, cfg)
	g, _ := NewGuard(cfg)
	from := func(h, port int) netip.AddrPort { return netip.AddrPortFrom(host(h).Addr(), uint16(port)) }
	admitted := 0
	for port := range 20 { // one host, many ports
		if g.Admit(0, from(1, 1000+port), open) {
			admitted++
		}
	}
	if admitted != 8 {
		t.Errorf("one host opened %d sessions at once, want 8 (two seconds' worth)", admitted)
	}
	for h := 2; h < 40; h++ {
		if g.Admit(0, from(h, 1000), open) {
			admitted++
		}
	}
	if admitted != 20 {
		t.Errorf("%d sessions opened at once, want 20 (one second of HandshakeRate)", admitted)
	}
	if st := g.Stats(); st.HostLimited != 12 || st.Limited != 38-12 {
		t.Errorf("stats %+v", st)
	}
	// A second later the rates have refilled by a second's worth.
	sec := int64(time.Second)
	if !g.Admit(sec, from(1, 2000), open) {
		t.Error("host 1 refused after a second")
	}
	n := 1
	for h := 100; h < 200; h++ {
		if g.Admit(sec, from(h, 1000), open) {
			n++
		}
	}
	if n != 20 {
		t.Errorf("%d sessions opened in the next second, want 20", n)
	}
}

// TestGuardKnownAddresses: once the listener holds a session for an
// address, its packets pass unchecked until the session is closed; an
// admitted opening's resends pass until the session shows up or the
// admission expires.
func TestGuardKnownAddresses(t *testing.T) {
	cfg := LAN()
	cfg.HandshakeRatePerHost = 1
	open := opening(t, cfg)
	g, _ := NewGuard(cfg)
	a := host(1)
	junk := []byte("not a kcp packet at all, just bytes")
	if g.Admit(0, a, junk) {
		t.Fatal("junk from an unknown address admitted")
	}
	if !g.Admit(0, a, open) {
		t.Fatal("opening refused")
	}
	// The opening's resends, and the rest of its conversation, pass
	// (the host's rate would refuse a second opening).
	for range 5 {
		if !g.Admit(1, a, open) || !g.Admit(1, a, junk) {
			t.Fatal("a packet of an admitted conversation refused")
		}
	}
	g.Opened(a)
	g.Opened(a) // kcp-go replaced the session: two live until the first closes
	g.Closed(a)
	if !g.Admit(int64(time.Hour), a, junk) {
		t.Fatal("a packet of a live session refused")
	}
	g.Closed(a)
	if g.Admit(int64(time.Hour), a, junk) {
		t.Fatal("junk admitted after the session closed")
	}
	// An admission whose session never shows up expires.
	b := host(2)
	if !g.Admit(int64(2*time.Hour), b, open) {
		t.Fatal("opening from b refused")
	}
	if g.Admit(int64(2*time.Hour)+int64(cfg.HandshakeTimeout), b, junk) {
		t.Fatal("junk admitted after the admission expired")
	}
	if len(g.admitted) != 0 || len(g.live) != 0 {
		t.Errorf("guard still holds %d admissions and %d live addresses", len(g.admitted), len(g.live))
	}
}

// TestListenerGuardsHandshakes: over loopback, garbage from 256 source
// ports and 200 conversations that send 3 bytes of the hello record and
// stop reach no handshake slot (the listener's 128 would otherwise be
// held for the handshake timeout), so a real dial made meanwhile gets
// through, and the listener accepts nothing else.
func TestListenerGuardsHandshakes(t *testing.T) {
	cfg := LAN()
	cfg.AcceptQueue = 128
	cfg.HandshakeTimeout = 5 * time.Second
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dst := l.Addr().(*net.UDPAddr)
	var socks []*net.UDPConn
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	rng := rand.New(rand.NewPCG(3, 4))
	send := func(b []byte) {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, s)
		if _, err := s.WriteToUDP(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	for range 256 {
		b := make([]byte, 24+rng.IntN(1000))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		send(b)
	}
	for i := range 200 {
		seg := make([]byte, guardKCPHeader, guardKCPHeader+3)
		binary.LittleEndian.PutUint32(seg, uint32(1000+i))
		seg[4] = guardKCPPush
		binary.LittleEndian.PutUint16(seg[6:], 128)
		binary.LittleEndian.PutUint32(seg[20:], 3)
		send(append(seg, helloRecord[:3]...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dcfg := LAN()
	dcfg.HandshakeTimeout = 4 * time.Second // under the listener's: a slot held by garbage would fail it
	cli, err := Dial(ctx, l.Addr().String(), dcfg)
	if err != nil {
		t.Fatalf("a real dial during the flood: %v (guard %+v)", err, l.GuardStats())
	}
	defer cli.Close("test over")
	srv, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close("test over")
	if srv.RemoteAddr().(*net.UDPAddr).Port != cli.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("accepted %v, want the real dialer %v", srv.RemoteAddr(), cli.LocalAddr())
	}
	actx, acancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer acancel()
	if s, err := l.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the listener accepted another session (%v, %v)", s, err)
	}
	if st := l.GuardStats(); st.Admitted != 1 {
		t.Errorf("guard stats %+v, want only the real opening admitted", st)
	}
}
