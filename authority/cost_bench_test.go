package authority

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// BenchmarkNodeCosts measures what one unit of each kind of work costs the
// node goroutine, the figures the hostile suite's cost model
// (authority/internal/hostile.DefaultCost) is calibrated from. Each
// sub-benchmark times the node only (frames are encoded beforehand, what
// the node sends is taken and dropped) and reports ns per unit:
//
//   - message: a Ping handled and its echo encoded (frames of 100);
//   - call: an add call run and committed, its result encoded (no
//     watchers);
//   - value: a value delivered to a watcher and encoded into its frame
//     (one write watched by 1,000 sessions);
//   - snapshot-value: a value of a watch snapshot gathered and encoded
//     (watches of a 1,000-path prefix), minus a delivered value's cost;
//   - connect: a session connected, welcomed and disconnected;
//   - tick: a tick of a node with 100 idle players;
//   - byte-in: a byte of a frame received (calls with 60 KiB of
//     arguments, refused by the rate limit before they run).
func BenchmarkNodeCosts(b *testing.B) {
	reg := netcode.NewRegistry()
	reg.Register("add", func(tx *netcode.Tx, args []byte) error {
		v, _ := tx.Read("counters/" + string(args))
		tx.Write("counters/"+string(args), append(v[:0:0], byte(len(v))))
		return nil
	}, netcode.FuncOptions{})
	reg.Register("world", func(tx *netcode.Tx, args []byte) error {
		for i := range 50 {
			tx.Write(fmt.Sprintf("world/%d/%d", args[0], i), []byte{1})
		}
		return nil
	}, netcode.FuncOptions{})
	cfg := DefaultConfig(reg)
	cfg.Limits.MaxSessions = 4000
	cfg.Limits.CallsPerSecond = 1e9
	cfg.Limits.MessagesPerSecond = 1e12
	cfg.Limits.SnapshotValuesPerSecond = 1e12
	cfg.Limits.BytesPerSecond = 1e12
	cfg.Limits.MaxPendingOutbound = 1 << 30
	newNode := func(b *testing.B, c Config) (*Node, int64) {
		n, err := NewNode(c)
		if err != nil {
			b.Fatal(err)
		}
		return n, int64(100 * time.Second)
	}
	join := func(b *testing.B, n *Node, now int64) *benchClient {
		c := &benchClient{}
		c.id, _ = n.Connect(now, "bench")
		c.enc, _ = wire.NewEncoder(cfg.Wire)
		c.dec, _ = wire.NewDecoder(cfg.Wire)
		c.send(b, n, now, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion}})
		return c
	}
	// welcome reads the Welcomes of the clients, every session of n in
	// the order they joined.
	welcome := func(b *testing.B, n *Node, cs []*benchClient) { deliver(b, n, cs) }
	perUnit := func(b *testing.B, units int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(units), "ns/unit")
	}

	b.Run("message", func(b *testing.B) {
		n, now := newNode(b, cfg)
		c := join(b, n, now)
		frame := c.enc.BeginFrame(nil)
		for i := range 100 {
			frame, _ = c.enc.AppendPing(frame, &wire.Ping{Seq: uint64(i)})
		}
		n.Ready()
		for b.Loop() {
			now++
			n.Step(now, c.id, frame)
			n.Ready()
		}
		perUnit(b, 100)
	})
	b.Run("call", func(b *testing.B) {
		n, now := newNode(b, cfg)
		c := join(b, n, now)
		welcome(b, n, []*benchClient{c})
		// 100 counters, a call every 100 µs of game time (10,000 a
		// second), a tick every 16 ms: finality keeps the history short.
		const step = int64(100 * time.Microsecond)
		frames := make([][]byte, 0, 1<<14)
		var seq uint64
		t := now
		next := func() []byte {
			seq++
			t += step
			f := c.enc.BeginFrame(nil)
			f, err := c.enc.AppendCall(f, &wire.Call{ID: wire.CallID{Creator: c.creator, Seq: seq}, Name: "add",
				Args: []byte(fmt.Sprint(seq % 100)), Time: wire.Time{Nanos: t, Creator: c.creator}})
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
		i := 0
		for b.Loop() {
			if i == len(frames) {
				b.StopTimer()
				frames = frames[:0]
				for range cap(frames) {
					frames = append(frames, next())
				}
				i = 0
				b.StartTimer()
			}
			now += step
			n.Step(now, c.id, frames[i])
			i++
			if i%160 == 0 {
				n.Tick(now)
			}
			n.Ready()
		}
		if st := n.Stats(); st.CallsRejected+st.CallErrors > 0 {
			b.Fatalf("calls refused: %+v", st)
		}
		perUnit(b, 1)
	})
	b.Run("value", func(b *testing.B) {
		n, now := newNode(b, cfg)
		var cs []*benchClient
		for range 1001 {
			cs = append(cs, join(b, n, now))
		}
		welcome(b, n, cs)
		for _, c := range cs[1:] {
			c.send(b, n, now, &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{"counters/"}}})
		}
		n.Ready()
		w := cs[0]
		var seq uint64
		for b.Loop() {
			b.StopTimer()
			seq++
			now += int64(time.Millisecond)
			f := w.enc.BeginFrame(nil)
			f, _ = w.enc.AppendCall(f, &wire.Call{ID: wire.CallID{Creator: w.creator, Seq: seq}, Name: "add",
				Args: []byte("x"), Time: wire.Time{Nanos: now, Creator: w.creator}})
			b.StartTimer()
			n.Step(now, w.id, f)
			n.Tick(now)
			n.Ready()
		}
		perUnit(b, 1000)
	})
	b.Run("snapshot-value", func(b *testing.B) {
		n, now := newNode(b, cfg)
		c := join(b, n, now)
		welcome(b, n, []*benchClient{c})
		for i := range 20 {
			now++
			c.send(b, n, now, &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: c.creator, Seq: uint64(i + 1)},
				Name: "world", Args: []byte{byte(i)}, Time: wire.Time{Nanos: now, Creator: c.creator}}})
		}
		n.Ready()
		watch := c.enc.BeginFrame(nil)
		watch, _ = c.enc.AppendWatch(watch, &wire.Watch{Prefixes: []string{"world/"}})
		sent := n.Stats().SnapshotValues
		for b.Loop() {
			n.Step(now, c.id, watch)
			n.Ready()
		}
		if got := (n.Stats().SnapshotValues - sent) / uint64(b.N); got != 1000 {
			b.Fatalf("%d snapshot values a watch, want 1000", got)
		}
		perUnit(b, 1000)
	})
	b.Run("connect", func(b *testing.B) {
		n, now := newNode(b, cfg)
		hello := func() []byte {
			e, _ := wire.NewEncoder(cfg.Wire)
			f, _ := e.AppendHello(e.BeginFrame(nil), &wire.Hello{Version: wire.ProtocolVersion})
			return f
		}()
		for b.Loop() {
			now++
			id, _ := n.Connect(now, "bench")
			n.Step(now, id, hello)
			n.Ready()
			n.Disconnect(now, id)
		}
		perUnit(b, 1)
	})
	b.Run("tick", func(b *testing.B) {
		n, now := newNode(b, cfg)
		for range 100 {
			join(b, n, now)
		}
		n.Ready()
		for b.Loop() {
			now += int64(16 * time.Millisecond)
			n.Tick(now)
			n.Ready()
		}
		perUnit(b, 1)
	})
	b.Run("byte-in", func(b *testing.B) {
		c2 := cfg
		c2.Limits.CallsPerSecond = 1
		n, now := newNode(b, c2)
		c := join(b, n, now)
		welcome(b, n, []*benchClient{c})
		args := bytes.Repeat([]byte{'x'}, 60<<10)
		f := c.enc.BeginFrame(nil)
		f, _ = c.enc.AppendCall(f, &wire.Call{ID: wire.CallID{Creator: c.creator, Seq: 1}, Name: "nope", Args: args,
			Time: wire.Time{Nanos: now, Creator: c.creator}})
		n.cfg.Limits.Strikes = 1 << 30 // refused without end
		for b.Loop() {
			n.Step(now, c.id, f)
			n.Ready()
		}
		perUnit(b, len(f))
	})
}
