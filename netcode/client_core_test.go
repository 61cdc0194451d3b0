package netcode_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// vclock is a virtual local time source.
type vclock struct{ t *int64 }

func (v vclock) Nanos() int64 { return *v.t }

type inflight struct {
	at    int64
	frame []byte
}

// world is a minimal in-process harness: one node, clients with fixed
// one-way delays, ordered delivery, a 16 ms frame loop.
type world struct {
	t       *testing.T
	now     int64
	node    *authority.Node
	clients []*tclient
}

type tclient struct {
	core  *netcode.ClientCore
	id    authority.SessionID
	delay int64
	up    []inflight
	down  []inflight
	evs   []netcode.Event
}

func counterReg() *netcode.Registry {
	r := netcode.NewRegistry()
	r.Register("add", func(tx *netcode.Tx, args []byte) error {
		v, _ := tx.Read("total")
		var n uint64
		if len(v) == 8 {
			n = binary.LittleEndian.Uint64(v)
		}
		tx.Write("total", binary.LittleEndian.AppendUint64(nil, n+binary.LittleEndian.Uint64(args)))
		tx.Emit("events/add", args)
		return nil
	}, netcode.FuncOptions{})
	r.Register("lag", func(tx *netcode.Tx, _ []byte) error {
		d := tx.Time().Nanos - tx.ViewTime()
		tx.Write(fmt.Sprintf("lag/%d", tx.Caller()), binary.LittleEndian.AppendUint64(nil, uint64(d)))
		return nil
	}, netcode.FuncOptions{})
	// place X puts the caller at (X, 0) on the spatial layer players/.
	r.Register("place", func(tx *netcode.Tx, args []byte) error {
		tx.Write(fmt.Sprintf("players/%d/pos", tx.Caller()), args)
		return nil
	}, netcode.FuncOptions{})
	if err := r.Spatial(netcode.Layer{Prefix: "players/", Field: "pos", Pos: func(v []byte) (float64, float64, bool) {
		if len(v) != 8 {
			return 0, 0, false
		}
		return float64(binary.LittleEndian.Uint64(v)), 0, true
	}}); err != nil {
		panic(err)
	}
	return r
}

func newWorld(t *testing.T, delays ...time.Duration) *world {
	w := &world{t: t, now: int64(1000 * time.Second)}
	n, err := authority.NewNode(authority.DefaultConfig(counterReg()))
	if err != nil {
		t.Fatal(err)
	}
	w.node = n
	for _, d := range delays {
		local := new(int64)
		*local = w.now/3 + int64(len(w.clients))*7777 // far from the server's time
		clk, err := timesync.New(vclock{local}, timesync.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		core, err := netcode.NewClientCore(netcode.ClientOptions{Registry: counterReg(), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		id, err := n.Connect(w.now, "c")
		if err != nil {
			t.Fatal(err)
		}
		c := &tclient{core: core, id: id, delay: int64(d)}
		core.Connect()
		w.clients = append(w.clients, c)
		clocks = append(clocks, local)
	}
	return w
}

var clocks []*int64

// run advances the world in 1 ms steps for d.
func (w *world) run(d time.Duration) {
	end := w.now + int64(d)
	for w.now < end {
		w.now += int64(time.Millisecond)
		for i, c := range w.clients {
			*clocks[len(clocks)-len(w.clients)+i] += int64(time.Millisecond)
			for len(c.up) > 0 && c.up[0].at <= w.now {
				w.node.Step(w.now, c.id, c.up[0].frame)
				c.up = c.up[1:]
			}
		}
		if (w.now/int64(time.Millisecond))%16 == 0 {
			w.node.Tick(w.now)
		}
		for _, o := range w.node.Ready() {
			for _, c := range w.clients {
				if c.id == o.Session {
					for _, f := range o.Frames {
						c.down = append(c.down, inflight{w.now + c.delay, f})
					}
				}
			}
		}
		for i, c := range w.clients {
			local := *clocks[len(clocks)-len(w.clients)+i]
			for len(c.down) > 0 && c.down[0].at <= w.now {
				if err := c.core.Receive(c.down[0].frame, local); err != nil {
					w.t.Fatalf("client %d: %v", i, err)
				}
				c.down = c.down[1:]
			}
			if (w.now/int64(time.Millisecond))%16 == 0 {
				c.core.Tick()
				c.evs = append(c.evs, c.core.Events()...)
			}
			for _, f := range c.core.Outgoing() {
				c.up = append(c.up, inflight{w.now + c.delay, f})
			}
		}
	}
}

func u64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func total(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func TestClientCorePredictsAndConfirms(t *testing.T) {
	clocks = nil
	w := newWorld(t, 20*time.Millisecond, 60*time.Millisecond)
	a, b := w.clients[0], w.clients[1]
	w.run(2 * time.Second)
	for i, c := range w.clients {
		if !c.core.Connected() || !c.core.Clock().Synced() {
			t.Fatalf("client %d: connected %v synced %v", i, c.core.Connected(), c.core.Clock().Synced())
		}
		if off := c.core.Now() - w.now; off > int64(time.Millisecond) || off < -int64(time.Millisecond) {
			t.Fatalf("client %d clock off by %v", i, time.Duration(off))
		}
		if err := c.core.Watch("total", wire.WatchLatest, 0); err != nil {
			t.Fatal(err)
		}
		if err := c.core.Watch("events/", wire.WatchLatest, 0); err != nil {
			t.Fatal(err)
		}
	}
	// a calls: the prediction is visible at once.
	if _, err := a.core.Call("add", u64(5)); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.core.Read("total"); total(v) != 5 || !a.core.Predicted("total") {
		t.Fatalf("prediction not visible: %d predicted=%v", total(v), a.core.Predicted("total"))
	}
	w.run(500 * time.Millisecond)
	st := a.core.Stats()
	if st.Confirmed != 1 || st.Mispredictions != 0 || st.Pending != 0 {
		t.Fatalf("after confirmation: %+v", st)
	}
	// The prediction was the outcome: the authority answered with a
	// matched result (no outputs), and the value is confirmed anyway.
	if m := w.node.Stats().CallsMatched; m != 1 {
		t.Fatalf("CallsMatched = %d after one correctly predicted call, want 1", m)
	}
	if a.core.Predicted("total") {
		t.Fatal("total still predicted after a matched result")
	}
	for i, c := range w.clients {
		if v, _ := c.core.Read("total"); total(v) != 5 {
			t.Fatalf("client %d sees total %d", i, total(v))
		}
	}
	// b (farther away) and a call nearly at once: b's call is stamped
	// earlier but reaches the authority after a's, which runs first (5+1,
	// as a predicted) and is re-run when b's late call lands before it
	// (5+10+1): a correction explained by b's write.
	b.core.Call("add", u64(10))
	w.run(30 * time.Millisecond)
	a.core.Call("add", u64(1))
	w.run(time.Second)
	var corr *netcode.Correction
	emitted := map[string]int{}
	for _, e := range a.evs {
		if e.Kind == netcode.EventCorrection {
			corr = e.Correction
		}
		if e.Kind == netcode.EventEmitted {
			emitted[fmt.Sprint(e.Time.Nanos, e.Time.Creator)]++
		}
	}
	if corr == nil {
		t.Fatalf("no correction for a's mispredicted call; events %v", a.evs)
	}
	if total(corr.Predicted) != 6 || total(corr.Authoritative) != 16 || !corr.CauseKnown || corr.Cause.Creator != b.core.Creator() {
		t.Fatalf("correction: %v", corr)
	}
	for k, n := range emitted {
		if n != 1 {
			t.Fatalf("event %s reached a's game %d times", k, n)
		}
	}
	if len(emitted) != 3 {
		t.Fatalf("a's game saw %d events, want 3 (its two adds and b's)", len(emitted))
	}
	for i, c := range w.clients {
		if v, _ := c.core.Read("total"); total(v) != 16 {
			t.Fatalf("client %d converged to %d, want 16", i, total(v))
		}
		if c.core.Stats().Pending != 0 {
			t.Fatalf("client %d has pending calls", i)
		}
	}
	if err := w.node.Store().Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestClientCoreResimulates: a mispredicted call makes the client re-run
// its later pending calls that read what it wrote.
func TestClientCoreResimulates(t *testing.T) {
	clocks = nil
	w := newWorld(t, 10*time.Millisecond, 80*time.Millisecond)
	a, b := w.clients[0], w.clients[1]
	w.run(2 * time.Second)
	for _, c := range w.clients {
		c.core.Watch("total", wire.WatchLatest, 0)
	}
	w.run(100 * time.Millisecond)
	b.core.Call("add", u64(100)) // arrives at the authority after a's first call
	w.run(5 * time.Millisecond)
	a.core.Call("add", u64(1))
	w.run(5 * time.Millisecond)
	a.core.Call("add", u64(2))
	w.run(3 * time.Millisecond)
	a.core.Call("add", u64(3)) // pending while the correction of the first arrives? delays decide
	w.run(2 * time.Second)
	st := a.core.Stats()
	if st.Corrections == 0 || st.Reruns == 0 {
		t.Fatalf("expected corrections and re-runs: %+v", st)
	}
	for i, c := range w.clients {
		if v, _ := c.core.Read("total"); total(v) != 106 {
			t.Fatalf("client %d converged to %d, want 106", i, total(v))
		}
	}
}

func TestClientCoreLagCompensationToggle(t *testing.T) {
	clocks = nil
	w := newWorld(t, 30*time.Millisecond)
	a := w.clients[0]
	w.run(2 * time.Second)
	if !a.core.LagCompensation() {
		t.Fatal("lag compensation off by default")
	}
	a.core.Watch("lag/", wire.WatchLatest, 0)
	seen := func() int64 {
		v, ok := a.core.Read(fmt.Sprintf("lag/%d", a.core.Creator()))
		if !ok {
			t.Fatal("no lag value")
		}
		return int64(total(v))
	}
	// The authority's run sees W - ViewTime: the view delay the call carried.
	a.core.SetLagCompensation(false)
	a.core.Call("lag", nil)
	w.run(500 * time.Millisecond)
	if d := seen(); d != 0 {
		t.Fatalf("without lag compensation the authority read %v in the past", time.Duration(d))
	}
	a.core.SetLagCompensation(true)
	a.core.Call("lag", nil)
	w.run(500 * time.Millisecond)
	// The automatic view delay is at least the authority's send interval.
	if d := seen(); d < int64(16*time.Millisecond) {
		t.Fatalf("with lag compensation the authority read %v in the past", time.Duration(d))
	}
}

// TestClientCoreAppendEvents: AppendEvents hands out the same events as
// Events, batch by batch, and reusing its buffer does not alter a batch
// already handed out.
func TestClientCoreAppendEvents(t *testing.T) {
	newCore := func() (*netcode.ClientCore, *handAuthority) {
		local := int64(0)
		clk, _ := timesync.New(vclock{&local}, timesync.DefaultConfig())
		core, err := netcode.NewClientCore(netcode.ClientOptions{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return core, newHandSession(t, core)
	}
	a, ha := newCore()
	b, hb := newCore()
	var got []netcode.Event
	var batches [][]netcode.Event
	for i := range 5 {
		msgs := []wire.Message{values(val("things/a", int64(10+i), fmt.Sprint("a", i)), val(fmt.Sprint("things/", i), 10, "x"))}
		if i == 3 {
			msgs = append(msgs, wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: []wire.Value{{Path: "things/a", Time: wire.Time{Nanos: 13, Creator: 9}, State: wire.StateInvalid}}}})
		}
		ha.frame(msgs...)
		hb.frame(msgs...)
		want := a.Events()
		n := len(got)
		got = b.AppendEvents(got)
		if diff := cmp.Diff(want, got[n:], cmpopts.EquateErrors()); diff != "" {
			t.Errorf("batch %d (-Events +AppendEvents):\n%s", i, diff)
		}
		batches = append(batches, want)
	}
	var all []netcode.Event
	for _, bt := range batches {
		all = append(all, bt...)
	}
	if len(all) < 10 {
		t.Fatalf("%d events, want at least 10", len(all))
	}
	if diff := cmp.Diff(all, got, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("all batches (-Events +AppendEvents):\n%s", diff)
	}
}
