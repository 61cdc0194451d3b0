package netcode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/timesync"
)

// frame is the game loop's period in these tests.
const frame = 16 * time.Millisecond

// shellReg is a small game: "bump" adds one to the shared counter
// "counters/total".
func shellReg() *netcode.Registry {
	r := netcode.NewRegistry()
	r.Register("bump", func(tx *netcode.Tx, _ []byte) error {
		n := readInt(tx, "counters/total")
		tx.Write("counters/total", binary.LittleEndian.AppendUint64(nil, uint64(n+1)))
		return nil
	}, netcode.FuncOptions{})
	return r
}

func readInt(tx *netcode.Tx, path string) int64 {
	v, _ := tx.Read(path)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v))
}

func valueInt(v []byte) int64 {
	if len(v) != 8 {
		return -1
	}
	return int64(binary.LittleEndian.Uint64(v))
}

// fastTransport is the Internet preset with short closing, for tests.
func fastTransport() transport.Config {
	c := transport.Internet()
	c.CloseLinger = 200 * time.Millisecond
	return c
}

// startAuthority serves reg on loopback (or on conn) until the test ends.
func startAuthority(t *testing.T, reg *netcode.Registry, conn net.PacketConn, mod func(*authority.ServerConfig)) *authority.Server {
	t.Helper()
	cfg := authority.DefaultServerConfig("127.0.0.1:0", reg)
	cfg.Transport = fastTransport()
	cfg.Conn = conn
	// A loaded machine delays calls by any amount; with the default change
	// window (1 s) some would be refused as too old, which says nothing of
	// what these tests check. A minute's window keeps every refusal the
	// test's own doing.
	cfg.Node.Store.MaxChangeAge = time.Minute
	if mod != nil {
		mod(&cfg)
	}
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

func dial(t *testing.T, addr string, opts netcode.Options) *netcode.Client {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = shellReg()
	}
	if opts.Transport.MaxFrame == 0 {
		opts.Transport = fastTransport()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netcode.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loop runs the game loop: every frame, Update on each client (events to
// on), until done reports true; it fails the test after limit.
func loop(t *testing.T, limit time.Duration, clients []*netcode.Client, on func(i int, ev netcode.Event), done func() bool) {
	t.Helper()
	loopWhy(t, limit, clients, on, done, nil)
}

// loopWhy is loop whose failure says why, as why tells (nil: nothing more).
func loopWhy(t *testing.T, limit time.Duration, clients []*netcode.Client, on func(i int, ev netcode.Event), done func() bool, why func() string) {
	t.Helper()
	tick := time.NewTicker(frame)
	defer tick.Stop()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		for i, c := range clients {
			for _, ev := range c.Update() {
				if on != nil {
					on(i, ev)
				}
			}
		}
		if done() {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			msg := ""
			if why != nil {
				msg = ": " + why()
			}
			t.Fatalf("not done after %v%s", limit, msg)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	badTransport := fastTransport()
	badTransport.MTU = 10
	small := fastTransport()
	small.MaxFrame = 1024
	ref := timesync.DefaultConfig()
	ref.Reference = true
	for _, tc := range []struct {
		name string
		opts netcode.Options
	}{
		{"transport", netcode.Options{Transport: badTransport}},
		{"frame larger than transport", netcode.Options{Transport: small}},
		{"negative queue", netcode.Options{RecvQueue: -1}},
		{"huge queue", netcode.Options{RecvQueue: 1 << 30}},
		{"backoff", netcode.Options{Reconnect: netcode.Reconnect{Min: time.Second, Max: time.Millisecond}}},
		{"reference clock", netcode.Options{TimeSync: ref}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := netcode.Dial(context.Background(), "127.0.0.1:1", tc.opts)
			if !errors.Is(err, netcode.ErrBadConfig) {
				t.Errorf("err = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestDialFails(t *testing.T) {
	t.Run("nobody there", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close() // a silent port
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err = netcode.Dial(ctx, pc.LocalAddr().String(), netcode.Options{Registry: shellReg()})
		if !errors.Is(err, transport.ErrHandshake) {
			t.Errorf("err = %v, want a handshake failure", err)
		}
	})
	t.Run("refused token", func(t *testing.T) {
		secret := []byte("0123456789abcdef0123456789abcdef")
		srv := startAuthority(t, shellReg(), nil, func(c *authority.ServerConfig) {
			auth, err := authority.NewHMACAuth(secret, 0)
			if err != nil {
				t.Fatal(err)
			}
			c.Node.Auth = auth
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := netcode.Dial(ctx, srv.Addr().String(), netcode.Options{Registry: shellReg(), Transport: fastTransport(), Token: []byte("forged")})
		if err == nil || ctx.Err() != nil {
			t.Fatalf("err = %v (ctx %v), want a refusal before the deadline", err, ctx.Err())
		}
		t.Logf("refused: %v", err)
	})
}

// TestClientCallsAndCounts: Dial returns ready to call; a call is
// predicted at once and confirmed; the counters move.
func TestClientCallsAndCounts(t *testing.T) {
	srv := startAuthority(t, shellReg(), nil, nil)
	c := dial(t, srv.Addr().String(), netcode.Options{})
	if !c.Connected() || c.Now() == 0 || c.Creator() == 0 {
		t.Fatalf("after Dial: connected %v, now %d, creator %d", c.Connected(), c.Now(), c.Creator())
	}
	if err := c.Watch("counters/"); err != nil {
		t.Fatal(err)
	}
	var ids []netcode.CallID
	for range 3 {
		id, err := c.Call("bump", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if v, _ := c.Read("counters/total"); valueInt(v) != 3 || !c.Predicted("counters/total") {
		t.Fatalf("prediction: total %d, predicted %v; want 3, true", valueInt(v), c.Predicted("counters/total"))
	}
	results := map[netcode.CallID]error{}
	connected := 0
	loop(t, 5*time.Second, []*netcode.Client{c}, func(_ int, ev netcode.Event) {
		switch ev.Kind {
		case netcode.EventResult:
			results[ev.Call] = ev.Err
		case netcode.EventConnected:
			connected++
		}
	}, func() bool { return len(results) == len(ids) })
	for _, id := range ids {
		if err, ok := results[id]; !ok || err != nil {
			t.Errorf("call %v: answered %v, err %v", id, ok, err)
		}
	}
	if connected != 1 {
		t.Errorf("EventConnected seen %d times, want once (from Dial)", connected)
	}
	if v, ok := c.Read("counters/total"); !ok || valueInt(v) != 3 || c.Predicted("counters/total") {
		t.Errorf("confirmed total %d (ok %v, predicted %v), want 3", valueInt(v), ok, c.Predicted("counters/total"))
	}
	st := c.Stats()
	if st.Calls != 3 || st.Confirmed != 3 || st.Failed != 0 || st.Pending != 0 {
		t.Errorf("call counters %+v", st.ClientStats)
	}
	if st.BytesIn == 0 || st.BytesOut == 0 || st.Transport.BytesReceived == 0 || st.Sessions != 1 || !st.Synced {
		t.Errorf("stats %+v", st)
	}
	if st.RTT <= 0 {
		t.Errorf("RTT %v on loopback", st.RTT)
	}
}

// TestClientReconnects kills the client's socket under a live session: the
// network goroutine redials over a fresh socket from the factory, the game
// sees Disconnected then Connected, and calls made before and after reach
// the authority.
func TestClientReconnects(t *testing.T) {
	srv := startAuthority(t, shellReg(), nil, nil)
	var mu sync.Mutex
	var conns []net.PacketConn
	opts := netcode.Options{
		PacketConn: func() (net.PacketConn, error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err == nil {
				mu.Lock()
				conns = append(conns, pc)
				mu.Unlock()
			}
			return pc, err
		},
		Reconnect: netcode.Reconnect{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	c := dial(t, srv.Addr().String(), opts)
	if err := c.Watch("counters/"); err != nil {
		t.Fatal(err)
	}
	first := c.Creator()
	if _, err := c.Call("bump", nil); err != nil {
		t.Fatal(err)
	}
	var kinds []netcode.EventKind
	confirmed := 0
	on := func(_ int, ev netcode.Event) {
		switch ev.Kind {
		case netcode.EventConnected, netcode.EventDisconnected:
			kinds = append(kinds, ev.Kind)
		case netcode.EventResult:
			if ev.Err == nil {
				confirmed++
			}
		}
	}
	loop(t, 5*time.Second, []*netcode.Client{c}, on, func() bool { return confirmed == 1 })

	mu.Lock()
	conns[0].Close() // the session's socket dies under it
	mu.Unlock()
	loop(t, 10*time.Second, []*netcode.Client{c}, on, func() bool { return len(kinds) >= 3 })
	if want := []netcode.EventKind{netcode.EventConnected, netcode.EventDisconnected, netcode.EventConnected}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	// The server resumes sessions by default: the client keeps its creator.
	if c.Creator() != first || !c.Connected() {
		t.Errorf("after reconnect: creator %d (was %d), connected %v", c.Creator(), first, c.Connected())
	}
	if _, err := c.Call("bump", nil); err != nil {
		t.Fatal(err)
	}
	loop(t, 5*time.Second, []*netcode.Client{c}, on, func() bool {
		v, _ := c.Read("counters/total")
		return confirmed == 2 && valueInt(v) == 2 && !c.Predicted("counters/total")
	})
	st := c.Stats()
	if st.Sessions != 2 || st.Redials < 1 {
		t.Errorf("sessions %d, redials %d; want 2, >= 1", st.Sessions, st.Redials)
	}
}

// TestClientBacklog: a game that stops calling Update gets its session
// closed once RecvQueue frames wait, not an ever-growing queue; once it
// calls Update again it learns of the loss, reconnects and catches up.
func TestClientBacklog(t *testing.T) {
	srv := startAuthority(t, shellReg(), nil, nil)
	writer := dial(t, srv.Addr().String(), netcode.Options{})
	idle := dial(t, srv.Addr().String(), netcode.Options{
		RecvQueue: 4,
		Reconnect: netcode.Reconnect{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err := idle.Watch("counters/"); err != nil {
		t.Fatal(err)
	}
	var kinds []netcode.EventKind
	for _, ev := range idle.Update() { // sends the Watch; from now on idle's game "hangs"
		kinds = append(kinds, ev.Kind)
	}
	calls := 0
	loop(t, 10*time.Second, []*netcode.Client{writer}, nil, func() bool {
		if idle.Stats().Backlogs == 1 {
			return true
		}
		if calls < 100 { // one value change per authority tick reaches idle
			if _, err := writer.Call("bump", nil); err != nil {
				t.Fatal(err)
			}
			calls++
		}
		return false
	})
	// The authority's answers to the writer may still be in flight.
	loop(t, 5*time.Second, []*netcode.Client{writer}, nil, func() bool { return writer.Stats().Pending == 0 })
	want := int64(writer.Stats().Confirmed)

	loop(t, 10*time.Second, []*netcode.Client{idle}, func(_ int, ev netcode.Event) {
		if ev.Kind == netcode.EventConnected || ev.Kind == netcode.EventDisconnected {
			kinds = append(kinds, ev.Kind)
			if ev.Kind == netcode.EventDisconnected && !errors.Is(ev.Err, netcode.ErrBacklog) {
				t.Errorf("disconnected by %v, want ErrBacklog", ev.Err)
			}
		}
	}, func() bool {
		v, _ := idle.Read("counters/total")
		return len(kinds) >= 3 && valueInt(v) == want
	})
	if want := []netcode.EventKind{netcode.EventConnected, netcode.EventDisconnected, netcode.EventConnected}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if st := idle.Stats(); st.Backlogs != 1 || st.Sessions != 2 {
		t.Errorf("backlogs %d, sessions %d; want 1, 2", st.Backlogs, st.Sessions)
	}
}

// TestClientCloseFromAnotherGoroutine closes the client while the game
// loop runs and other goroutines read Now and Stats (run it with -race).
func TestClientCloseFromAnotherGoroutine(t *testing.T) {
	srv := startAuthority(t, shellReg(), nil, nil)
	c := dial(t, srv.Addr().String(), netcode.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c.Now() == 0 {
					t.Error("Now went back to 0")
					return
				}
				_ = c.Stats()
			}
		}()
	}
	closed := make(chan struct{})
	frames := 0
	var gone error
	loop(t, 5*time.Second, []*netcode.Client{c}, func(_ int, ev netcode.Event) {
		if ev.Kind == netcode.EventDisconnected {
			gone = ev.Err
		}
	}, func() bool {
		frames++
		if frames == 5 {
			go func() { c.Close(); close(closed) }()
		}
		if frames < 5 {
			if _, err := c.Call("bump", nil); err != nil {
				t.Fatal(err)
			}
		}
		return gone != nil
	})
	<-closed
	close(stop)
	wg.Wait()
	if !errors.Is(gone, netcode.ErrClientClosed) {
		t.Errorf("disconnected by %v, want ErrClientClosed", gone)
	}
	if _, err := c.Call("bump", nil); !errors.Is(err, netcode.ErrClientClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if err := c.Watch("x/"); !errors.Is(err, netcode.ErrClientClosed) {
		t.Errorf("Watch after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestClientReconnectKeepsCalls makes a call whose frame never leaves (the
// socket dies first), so the call is re-sent on the next session. The
// game must get exactly one EventEmitted for it, and its result under the
// id Call returned.
func TestClientReconnectKeepsCalls(t *testing.T) {
	reg := shellReg()
	reg.Register("shout", func(tx *netcode.Tx, args []byte) error {
		tx.Emit("shouts", args)
		return nil
	}, netcode.FuncOptions{})
	srv := startAuthority(t, reg, nil, nil)
	var mu sync.Mutex
	var conns []net.PacketConn
	c := dial(t, srv.Addr().String(), netcode.Options{
		Registry: reg,
		PacketConn: func() (net.PacketConn, error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err == nil {
				mu.Lock()
				conns = append(conns, pc)
				mu.Unlock()
			}
			return pc, err
		},
		Reconnect: netcode.Reconnect{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err := c.Watch("shouts"); err != nil {
		t.Fatal(err)
	}
	id, err := c.Call("shout", []byte("hey"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	conns[0].Close() // before Update sends the call
	mu.Unlock()
	emitted := 0
	var results []netcode.CallID
	reconnected := false
	loop(t, 10*time.Second, []*netcode.Client{c}, func(_ int, ev netcode.Event) {
		switch ev.Kind {
		case netcode.EventEmitted:
			emitted++
		case netcode.EventResult:
			results = append(results, ev.Call)
		case netcode.EventConnected:
			reconnected = true
		}
	}, func() bool { return reconnected && len(results) > 0 && c.Stats().Pending == 0 })
	if emitted != 1 {
		t.Errorf("EventEmitted %d times, want once", emitted)
	}
	if !slices.Equal(results, []netcode.CallID{id}) {
		t.Errorf("results for %v, want one for %v (the id Call returned)", results, id)
	}
}

// TestFailover: a client given a second authority's address moves there
// when its authority goes away: EventDisconnected, then EventConnected at
// the other address, and calls go on there. (Two unrelated authorities:
// the session is not resumed, so this checks the client's part only.)
func TestFailover(t *testing.T) {
	a := startAuthority(t, shellReg(), nil, nil)
	b := startAuthority(t, shellReg(), nil, nil)
	c := dial(t, a.Addr().String(), netcode.Options{
		Failover:  []string{b.Addr().String()},
		Reconnect: netcode.Reconnect{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if st := c.Stats(); st.Addr != a.Addr().String() || st.Failovers != 0 {
		t.Fatalf("after Dial: addr %s, failovers %d", st.Addr, st.Failovers)
	}
	c.Update() // Dial's EventConnected
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var kinds []netcode.EventKind
	called, answered := false, false
	loop(t, time.Minute, []*netcode.Client{c}, func(_ int, ev netcode.Event) {
		switch ev.Kind {
		case netcode.EventDisconnected, netcode.EventConnected:
			kinds = append(kinds, ev.Kind)
		case netcode.EventResult:
			if ev.Err != nil {
				t.Errorf("call on the failover authority: %v", ev.Err)
			}
			answered = true
		}
	}, func() bool {
		if !called && c.Stats().Connected {
			if _, err := c.Call("bump", nil); err == nil {
				called = true
			}
		}
		return answered
	})
	if want := []netcode.EventKind{netcode.EventDisconnected, netcode.EventConnected}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if st := c.Stats(); st.Addr != b.Addr().String() || st.Failovers != 1 {
		t.Errorf("after failover: addr %s (want %s), failovers %d (want 1)", st.Addr, b.Addr(), st.Failovers)
	}
}
