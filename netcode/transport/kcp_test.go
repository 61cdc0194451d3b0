package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode/lagsim"
)

// loopback starts a listener on 127.0.0.1 and dials it, returning both ends.
func loopback(t *testing.T, srvCfg, cliCfg Config) (srv, cli *Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Listen("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cli, err = Dial(ctx, l.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close("test over") })
	srv, err = l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close("test over") })
	return srv, cli
}

func echo(t *testing.T, s *Session) {
	go func() {
		for {
			f, err := s.Recv(context.Background())
			if err != nil {
				return
			}
			if s.Send(f, Data) != nil {
				return
			}
		}
	}()
}

// exchange sends frames from cli, has srv echo them, and checks they come
// back intact and in order.
func exchange(t *testing.T, srv, cli *Session, frames [][]byte) {
	t.Helper()
	echo(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		for _, f := range frames {
			if err := cli.Send(f, Data); err != nil {
				return
			}
		}
	}()
	for i, want := range frames {
		got, err := cli.Recv(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
}

func testFrames(n, maxSize int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		size := (i * 7919) % (maxSize + 1)
		frames[i] = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2+1)[:size]
	}
	return frames
}

func TestKCPRoundTrip(t *testing.T) {
	secret := []byte("correct horse battery staple")
	tests := []struct {
		name string
		cfg  func() Config
	}{
		{"lan", LAN},
		{"internet with FEC", Internet},
		{"encrypted", func() Config { c := LAN(); c.Secret = secret; return c }},
		{"encrypted with FEC", func() Config { c := Internet(); c.Secret = secret; return c }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg()
			srv, cli := loopback(t, cfg, cfg)
			frames := append(testFrames(300, 3000), make([]byte, cfg.MaxFrame)) // up to a full-size frame
			exchange(t, srv, cli, frames)
			st := cli.Stats()
			if st.FramesSent != uint64(len(frames)) || st.FramesReceived != uint64(len(frames)) || st.BytesSent != st.BytesReceived {
				t.Errorf("client stats %+v", st)
			}
			if st.RTO == 0 {
				t.Errorf("RTO not reported: %+v", st)
			}
		})
	}
}

func TestKCPWrongSecret(t *testing.T) {
	srvCfg, cliCfg := LAN(), LAN()
	srvCfg.Secret = []byte("the server's secret, 32 bytes ok")
	cliCfg.Secret = []byte("a different secret entirely!!!!!")
	cliCfg.HandshakeTimeout = 300 * time.Millisecond
	l, err := Listen("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Dial(context.Background(), l.Addr().String(), cliCfg)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial with another secret = %v, want ErrHandshake", err)
	}
	// The listener's guard drops the foreign packets (their checksum
	// fails under its key) before kcp-go makes a session for them.
	if st := l.GuardStats(); st.NotOpening == 0 || st.Admitted != 0 {
		t.Errorf("guard stats %+v, want the foreign packets dropped", st)
	}
}

func TestKCPDialContext(t *testing.T) {
	// Nobody listens there: Dial ends when the context does. The
	// handshake timeout is far longer than the context, so a Dial that
	// returns at all with the context's error honoured the context.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := LAN()
	cfg.HandshakeTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, pc.LocalAddr().String(), cfg)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want ErrHandshake wrapping the deadline", err)
	}
}

func TestKCPCloseReason(t *testing.T) {
	// The server lingers for an hour unless the peer acknowledges the
	// close: Close returning at all shows the acknowledgement arrived.
	srvCfg := LAN()
	srvCfg.CloseLinger = time.Hour
	srv, cli := loopback(t, srvCfg, LAN())
	if err := srv.Send([]byte("last words"), Data); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close("server restarting")
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close still lingering after a minute: the peer's acknowledgement never arrived")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f, err := cli.Recv(ctx); err != nil || string(f) != "last words" {
		t.Fatalf("Recv = %q, %v", f, err)
	}
	_, err := cli.Recv(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || !ce.Remote || ce.Reason != "server restarting" {
		t.Fatalf("client Recv = %v, want the server's reason", err)
	}
	var sce *CloseError
	if !errors.As(srv.Err(), &sce) || sce.Remote {
		t.Fatalf("server Err = %v", srv.Err())
	}
}

func TestKCPListenerClose(t *testing.T) {
	l, err := Listen("127.0.0.1:0", LAN())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept(context.Background())
		errc <- err
	}()
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrListenerClosed) {
			t.Fatalf("Accept after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release Accept")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"interval", func(c *Config) { c.Interval = time.Millisecond }},
		{"window", func(c *Config) { c.SendWindow = 0 }},
		{"mtu", func(c *Config) { c.MTU = 9000 }},
		{"half FEC", func(c *Config) { c.DataShards = 3 }},
		{"short secret", func(c *Config) { c.Secret = []byte("short") }},
		{"max frame", func(c *Config) { c.MaxFrame = MaxFrameLimit + 1 }},
		{"idle under keepalive", func(c *Config) { c.IdleTimeout = c.KeepAlive }},
		{"send queue under a frame", func(c *Config) { c.SendQueueBytes = c.MaxFrame - 1 }},
		{"recv queue", func(c *Config) { c.RecvQueueFrames = 0 }},
		{"accept queue", func(c *Config) { c.AcceptQueue = 0 }},
		{"coalesce", func(c *Config) { c.Coalesce = time.Second }},
		{"negative socket buffer", func(c *Config) { c.SocketBuffer = -1 }},
		{"socket buffer", func(c *Config) { c.SocketBuffer = maxSocketBuffer + 1 }},
	}
	for _, preset := range []func() Config{LAN, Internet} {
		c := preset()
		if err := c.Validate(); err != nil {
			t.Fatalf("preset invalid: %v", err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := LAN()
			tt.change(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, err := Listen("127.0.0.1:0", c); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Listen accepted an invalid config: %v", err)
			}
		})
	}
}

// TestListenSocketBuffer: Listen asks the kernel for SocketBuffer bytes
// of receive buffer (Linux reports twice what was asked, for its own
// bookkeeping); 64 KiB is under every Linux default, so no cap applies.
func TestListenSocketBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads SO_RCVBUF as Linux reports it")
	}
	c := LAN()
	c.SocketBuffer = 64 << 10
	l, err := Listen("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rc, err := l.conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if gerr != nil || got != 2*c.SocketBuffer {
		t.Fatalf("SO_RCVBUF = %d, %v; want %d", got, gerr, 2*c.SocketBuffer)
	}
}

func TestDeriveKey(t *testing.T) {
	a, err := deriveKey([]byte("shared secret of some length"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := deriveKey([]byte("shared secret of some length"))
	c, _ := deriveKey([]byte("shared secret of some lengtH"))
	if len(a) != keySize || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("keys: %x %x %x", a, b, c)
	}
}

// lagPair runs a session over two lag-simulated sockets on loopback.
func lagPair(t *testing.T, cfg Config, p lagsim.Profile, seed uint64) (srv, cli *Session, a, b *lagsim.Conn) {
	t.Helper()
	wrap := func(seed uint64) *lagsim.Conn {
		c, err := lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: seed, Out: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b = wrap(seed), wrap(seed+1)
	l, err := Serve(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err = DialConn(ctx, a, b.LocalAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close("test over") })
	srv, err = l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close("test over") })
	return srv, cli, a, b
}

// TestKCPLagRTT: 50 ms each way through the lag simulator gives a kcp SRTT
// of at least 100 ms, as the session's Stats report it. A busy machine only
// adds delay, so the bounds are one-sided: a frame cannot come back faster
// than the link's round trip, and kcp's estimate cannot fall below it. How
// close they stay above it depends on the machine's load, so the test logs
// it and asserts nothing there; the exact delays the link applies are held
// on virtual time by the lag simulator's own tests (lagsim.Link).
func TestKCPLagRTT(t *testing.T) {
	const oneWay = 50 * time.Millisecond
	srv, cli, _, _ := lagPair(t, LAN(), lagsim.Profile{Delay: oneWay}, 42)
	echo(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rtts, srtts []time.Duration
	for i := range 40 {
		start := time.Now()
		if err := cli.Send([]byte("ping"), Control); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Recv(ctx); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
		if i >= 10 { // let SRTT converge from its first samples
			srtts = append(srtts, cli.Stats().SRTT)
		}
	}
	slices.Sort(rtts)
	slices.Sort(srtts)
	t.Logf("frame round trip min %v median %v; kcp SRTT min %v median %v", rtts[0], rtts[len(rtts)/2], srtts[0], srtts[len(srtts)/2])
	if rtts[0] < 2*oneWay {
		t.Errorf("a frame came back after %v, faster than the %v link round trip", rtts[0], 2*oneWay)
	}
	if m := srtts[len(srtts)/2]; m < 95*time.Millisecond {
		t.Errorf("median kcp SRTT %v, below the link's 100ms round trip", m)
	}
}

// TestKCPLossyLink: frames arrive intact and in order over a lossy,
// jittery, duplicating link, with FEC repairing part of the loss.
func TestKCPLossyLink(t *testing.T) {
	p := lagsim.Profile{Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.1, Duplicate: 0.02}
	before := globalStats()
	srv, cli, a, _ := lagPair(t, Internet(), p, 7)
	exchange(t, srv, cli, testFrames(400, 2000))
	after := globalStats()
	t.Logf("link %+v; retransmits +%d, FEC recovered +%d", a.Stats().Out,
		after.Retransmits-before.Retransmits, after.FECRecovered-before.FECRecovered)
	if a.Stats().Out.Lost == 0 {
		t.Fatal("the simulator lost nothing; the test proves nothing")
	}
	if after.FECRecovered == before.FECRecovered {
		t.Error("FEC recovered nothing on a 10 % loss link")
	}
}
