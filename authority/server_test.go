package authority_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// testTransport is the LAN preset with a short close linger, so a test
// that closes sessions nobody acknowledges stays quick.
func testTransport() transport.Config {
	c := transport.LAN()
	c.CloseLinger = 300 * time.Millisecond
	return c
}

func serverConfig() authority.ServerConfig {
	cfg := authority.DefaultServerConfig("127.0.0.1:0", counter.Registry())
	cfg.Transport = testTransport()
	cfg.Tick = 5 * time.Millisecond
	return cfg
}

// start serves cfg in the background. Cleanup closes the server and fails
// the test if Serve returned an error.
func start(t *testing.T, cfg authority.ServerConfig) *authority.Server {
	t.Helper()
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

func dial(t *testing.T, ctx context.Context, srv *authority.Server, conn net.PacketConn) *testclient.Client {
	t.Helper()
	c, err := testclient.Dial(ctx, srv.Addr().String(), testclient.Config{Transport: testTransport(), Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close("test over") })
	return c
}

// await reads messages until one of kind arrives, handing every message
// read (including that one) to seen, if set.
func await(t *testing.T, ctx context.Context, c *testclient.Client, kind wire.Kind, seen func(*wire.Message)) *wire.Message {
	t.Helper()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", kind, err)
		}
		if seen != nil {
			seen(m)
		}
		if m.Kind == kind {
			return m
		}
	}
}

func TestServerCallWatchAndStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := start(t, serverConfig())
	a := dial(t, ctx, srv, nil)
	b := dial(t, ctx, srv, nil)
	if a.Creator() == b.Creator() {
		t.Fatalf("both sessions got creator %d", a.Creator())
	}
	if err := a.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}
	const calls = 5
	for i := range calls {
		id, err := b.Call("add", counter.AddArgs("x", 2), b.ServerNow(), 0)
		if err != nil {
			t.Fatal(err)
		}
		res := await(t, ctx, b, wire.KindCallResult, nil).CallResult
		if res.ID != id || res.Status != wire.CallOK || len(res.Outputs) != 1 {
			t.Fatalf("call %d: result %+v", i, res)
		}
	}
	// The watcher converges on 2*calls.
	view := testclient.NewView()
	for {
		m := await(t, ctx, a, wire.KindValues, view.Apply)
		_ = m
		v, _ := view.Latest(counter.Prefix + "x")
		if n, _ := counter.Count(v); n == 2*calls {
			break
		}
	}
	if err := b.TimeSync(42); err != nil {
		t.Fatal(err)
	}
	rep := await(t, ctx, b, wire.KindTimeSyncReply, nil).TimeSyncReply
	if rep.ClientSend != 42 || rep.ServerRecv <= 0 || rep.ServerSend < rep.ServerRecv {
		t.Fatalf("time sync reply %+v", rep)
	}

	st := srv.Stats()
	if st.Node.Calls != calls || st.Node.Sessions != 2 || st.Node.ValuesSent < 1 {
		t.Errorf("node stats %+v", st.Node)
	}
	if st.Funcs["add"].Calls != calls {
		t.Errorf("func stats %+v", st.Funcs)
	}
	tr := st.Transport
	if tr.Open != 2 || tr.Accepted != 2 || tr.FramesReceived < calls+2 || tr.FramesSent < calls+2 || tr.SendDropped != 0 {
		t.Errorf("transport stats %+v", tr)
	}
}

// offsetSource is a system clock that starts at 30 minutes: with
// FlushEvery an hour, the node then never flushes on a tick, so watch
// deliveries stay queued until the shutdown flushes them.
type offsetSource struct{ start time.Time }

func (s offsetSource) Nanos() int64 { return int64(30*time.Minute) + int64(time.Since(s.start)) }

func TestServerShutdownFlushes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := serverConfig()
	cfg.Node.FlushEvery = time.Hour
	clock, err := timesync.New(offsetSource{time.Now()}, timesync.ReferenceConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clock = clock
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()

	watcher := dial(t, ctx, srv, nil)
	caller := dial(t, ctx, srv, nil)
	if err := watcher.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}
	// A ping answered proves the watch was handled before the call.
	if err := watcher.Send(&wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	await(t, ctx, watcher, wire.KindPing, nil)
	if _, err := caller.Call("add", counter.AddArgs("held", 7), caller.ServerNow(), 0); err != nil {
		t.Fatal(err)
	}
	if res := await(t, ctx, caller, wire.KindCallResult, nil).CallResult; res.Status != wire.CallOK {
		t.Fatalf("result %+v", res)
	}
	if st := srv.Stats(); st.Node.ValuesSent != 0 {
		t.Fatalf("values sent before the shutdown: %d (the test needs them held)", st.Node.ValuesSent)
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The watcher gets the held value, then the shutdown Error, then the
	// transport close, in that order.
	var kinds []wire.Kind
	view := testclient.NewView()
	for {
		m, err := watcher.Next(ctx)
		if err != nil {
			if !errors.Is(err, transport.ErrPeerClosed) {
				t.Fatalf("after %v: %v, want the peer's close", kinds, err)
			}
			break
		}
		kinds = append(kinds, m.Kind)
		view.Apply(m)
		if m.Kind == wire.KindError && m.Error.Code != authority.CodeShutdown {
			t.Fatalf("error %+v, want code %d", m.Error, authority.CodeShutdown)
		}
	}
	if len(kinds) != 2 || kinds[0] != wire.KindValues || kinds[1] != wire.KindError {
		t.Fatalf("watcher received %v, want [Values Error]", kinds)
	}
	if v, _ := view.Latest(counter.Prefix + "held"); len(v) != 8 || v[0] != 7 {
		t.Fatalf("held value %v, want 7", v)
	}
	if st := srv.Stats(); st.Node.ValuesSent != 1 || st.Transport.Open != 0 {
		t.Fatalf("after shutdown: node %+v transport %+v", st.Node, st.Transport)
	}
}

// TestServerSlowPeerDoesNotStallOthers: a watcher that stops acknowledging
// is closed as too slow before its transport send queue would drop a frame,
// whether the queue's frame limit or its byte limit is reached first.
func TestServerSlowPeerDoesNotStallOthers(t *testing.T) {
	t.Run("frames", func(t *testing.T) {
		cfg := serverConfig()
		cfg.Transport.SendQueueFrames = 8
		testSlowPeer(t, cfg)
	})
	t.Run("bytes", func(t *testing.T) {
		cfg := serverConfig()
		cfg.Transport.MaxFrame = 16 << 10
		cfg.Transport.RecvQueueBytes = 16 << 10
		cfg.Transport.SendQueueBytes = 16 << 10
		cfg.Node.Wire.MaxFrameBytes = 16 << 10
		testSlowPeer(t, cfg)
	})
}

func testSlowPeer(t *testing.T, cfg authority.ServerConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	// A small KCP window and send queue make a silent peer show up fast.
	cfg.Transport.SendWindow = 4
	cfg.Node.Limits.CallsPerSecond = 100000
	cfg.Node.Limits.MessagesPerSecond = 100000
	srv := start(t, cfg)

	link, err := lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	slow := dial(t, ctx, srv, link)
	fast := dial(t, ctx, srv, nil)
	if err := slow.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(&wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	await(t, ctx, slow, wire.KindPing, nil)
	// From now on the slow peer hears nothing: it never acknowledges, so
	// the server's window to it fills, then its send queue.
	if err := link.SetProfile(lagsim.Profile{}, lagsim.Profile{Loss: 1}); err != nil {
		t.Fatal(err)
	}

	const maxCalls = 2000
	const maxRoundTrip = 30 * time.Second // a bound against a hang, not a latency figure
	var worst time.Duration
	for i := range maxCalls {
		sent := time.Now()
		if _, err := fast.Call("add", counter.AddArgs("n", 1), fast.ServerNow(), 0); err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithTimeout(ctx, maxRoundTrip)
		res := await(t, cctx, fast, wire.KindCallResult, nil).CallResult
		ccancel()
		if res.Status != wire.CallOK {
			t.Fatalf("call %d: %+v", i, res)
		}
		worst = max(worst, time.Since(sent))
		if st := srv.Stats(); st.Transport.TooSlow > 0 {
			if st.Transport.SendDropped != 0 {
				t.Errorf("%d frames dropped: the slow peer's stream was corrupted before it was closed", st.Transport.SendDropped)
			}
			if st.Node.Sessions != 1 {
				t.Errorf("node still has %d sessions", st.Node.Sessions)
			}
			t.Logf("slow peer closed after %d calls; worst call round trip %v", i+1, worst)
			return
		}
	}
	t.Fatalf("slow peer still open after %d calls", maxCalls)
}

func TestServerCloseIdempotent(t *testing.T) {
	t.Run("never served", func(t *testing.T) {
		srv, err := authority.NewServer(serverConfig())
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(context.Background()); !errors.Is(err, authority.ErrServerClosed) {
			t.Fatalf("Serve after Close: %v", err)
		}
		// The port is free again.
		pc, err := net.ListenPacket("udp", srv.Addr().String())
		if err != nil {
			t.Fatalf("address still bound: %v", err)
		}
		pc.Close()
	})
	t.Run("serving", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv, err := authority.NewServer(serverConfig())
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
		c := dial(t, ctx, srv, nil)
		for range 3 {
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if err := srv.Serve(ctx); !errors.Is(err, authority.ErrServerClosed) {
			t.Fatalf("second Serve: %v", err)
		}
		// The client learns the session is gone.
		for {
			if _, err := c.Next(ctx); err != nil {
				if !errors.Is(err, transport.ErrClosed) {
					t.Fatalf("client: %v", err)
				}
				break
			}
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv, err := authority.NewServer(serverConfig())
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(sctx) }()
		c := dial(t, ctx, srv, nil)
		stop()
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		m := await(t, ctx, c, wire.KindError, nil)
		if m.Error.Code != authority.CodeShutdown {
			t.Fatalf("error %+v", m.Error)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestServerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*authority.ServerConfig)
	}{
		{"no address", func(c *authority.ServerConfig) { c.Addr = "" }},
		{"tick too short", func(c *authority.ServerConfig) { c.Tick = time.Microsecond }},
		{"tick too long", func(c *authority.ServerConfig) { c.Tick = time.Minute }},
		{"negative event queue", func(c *authority.ServerConfig) { c.EventQueue = -1 }},
		{"frame too small for the node", func(c *authority.ServerConfig) { c.Transport.MaxFrame = 1024 }},
		{"bad transport", func(c *authority.ServerConfig) { c.Transport.MTU = 10 }},
		{"bad node", func(c *authority.ServerConfig) { c.Node.Limits.MaxSessions = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverConfig()
			tc.mutate(&cfg)
			if _, err := authority.NewServer(cfg); !errors.Is(err, authority.ErrBadConfig) {
				t.Fatalf("NewServer: %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestServerBusyPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := serverConfig()
	cfg.Addr = pc.LocalAddr().String()
	if srv, err := authority.NewServer(cfg); err == nil {
		srv.Close()
		t.Fatal("NewServer on a busy port succeeded")
	}
}

func TestServerRefusesBeyondMaxSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := serverConfig()
	cfg.Node.Limits.MaxSessions = 1
	srv := start(t, cfg)
	dial(t, ctx, srv, nil)
	// The player cap is checked at Hello, so the second player hears why.
	_, err := testclient.Dial(ctx, srv.Addr().String(), testclient.Config{Transport: testTransport()})
	if !errors.Is(err, testclient.ErrRefused) || !strings.Contains(err.Error(), "authority full") {
		t.Fatalf("second session: %v, want refused as full", err)
	}
	for {
		st := srv.Stats()
		if st.Node.Full == 1 && st.Node.Sessions == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stats: node %+v transport %+v", st.Node, st.Transport)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
