package authority

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rewindnet/rewind/netcode/wire"
)

// TestErrorTextsAreWireSafe: the texts the node sends (a function's error,
// a write rule's refusal) are cut to the wire's text limit and made valid
// UTF-8, so a game function's odd error never closes its caller's session
// with an encoding failure.
func TestErrorTextsAreWireSafe(t *testing.T) {
	h := newHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	got := h.exec("call a junk")
	if !strings.Contains(got, "CallResult seq=1 failed") || strings.Contains(got, "closed") {
		t.Fatalf("a failing call with a junk error text:\n%s", got)
	}
	line := got[strings.Index(got, "failed"):]
	if !strings.Contains(line, "bin\uFFFD ") {
		t.Errorf("the text's bad bytes are not replaced: %.80s", line)
	}
	// "bin", the replacement rune, a space, then as many 2-byte runes as
	// fit in the wire's text limit.
	if n, want := strings.Count(line, "é"), (h.n.cfg.Wire.MaxTextBytes-7)/2; n != want {
		t.Errorf("%d runes of the text kept, want %d", n, want)
	}
	// The call still answers with a text within the limit, and the
	// session goes on.
	if got := h.exec("ping a"); !strings.Contains(got, "Ping 7") {
		t.Fatalf("session unusable after the junk error:\n%s", got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("transcript not UTF-8")
	}
}

// TestRepliesSplitToFrameLimits: two frames of 600 Pings handled before the
// node's output is sent make 1,200 replies; they must leave in frames the
// client can read (at most Wire.MaxMessages messages each), and an Error
// closing the session after them must be readable too.
func TestRepliesSplitToFrameLimits(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) { c.Limits.MessagesPerSecond = 2000 })
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	pings := func() []byte {
		f := c.enc.BeginFrame(nil)
		for i := range 600 {
			var err error
			if f, err = c.enc.AppendPing(f, &wire.Ping{Seq: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	h.n.Step(h.now, c.id, pings())
	h.n.Step(h.now, c.id, pings())
	h.n.Step(h.now, c.id, []byte{0xff}) // a bad frame: an Error, then the close
	got := h.drain()                    // fails the test on a frame the client cannot decode
	if n := strings.Count(got, "a <- Ping"); n != 1200 {
		t.Errorf("%d Pings echoed, want 1200", n)
	}
	if !strings.Contains(got, "a <- Error code=1") || !strings.Contains(got, "a closed") {
		t.Errorf("no readable Error before the close:\n%s", got[max(0, len(got)-300):])
	}
}

// callFrame encodes one Call of client c at write time w.
func (h *harness) callFrame(c *tclient, seq uint64, w int64) []byte {
	f := c.enc.BeginFrame(nil)
	f, err := c.enc.AppendCall(f, &wire.Call{ID: wire.CallID{Creator: c.creator, Seq: seq}, Name: "add",
		Args: u64(1), Time: wire.Time{Nanos: w, Creator: c.creator}})
	if err != nil {
		h.t.Fatal(err)
	}
	return f
}

// TestStallKicksNoHonestClient: the node's goroutine stalls for 8 s while
// an honest client keeps calling at 4 a second, within its limits (5 calls
// and 1,000 bytes a second). When the node gets to the 32 frames, each is
// charged to the limits at the time it arrived, not all at once: none is
// rate limited, the calls that went stale during the stall (the change
// window is 3 s here) are rejected as too old without a strike, the fresh
// ones run, and the client stays connected.
func TestStallKicksNoHonestClient(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) {
		c.Store.MaxChangeAge = 3 * time.Second
		c.Limits.BytesPerSecond = 1000
	})
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	start := h.now
	type pending struct {
		at    int64
		frame []byte
	}
	var backlog []pending
	bytes := 0
	for i := range 32 {
		at := start + int64(i)*250*ms
		f := h.callFrame(c, uint64(i+1), at)
		bytes += len(f)
		backlog = append(backlog, pending{at, f})
	}
	if bytes/8 > 1000 || bytes < 1000 {
		t.Fatalf("%d bytes in 8 s: the test wants a rate within the limit and a backlog over it", bytes)
	}
	h.now = start + 8*1000*ms
	for _, p := range backlog {
		h.n.StepArrived(h.now, p.at, c.id, p.frame)
	}
	got := h.drain()
	if strings.Contains(got, "closed") || strings.Contains(got, "rate limited") || strings.Contains(got, "Error") {
		t.Fatalf("an honest client after a stall:\n%s", got)
	}
	// Calls written more than MaxChangeAge before the node got to them
	// are stale: those of the first 5 s.
	if ok, old := strings.Count(got, " ok "), strings.Count(got, "older than the change window"); ok != 12 || old != 20 {
		t.Errorf("%d calls ran and %d were too old, want 12 and 20:\n%s", ok, old, got)
	}
	if st := h.n.Stats(); st.Strikes != 0 {
		t.Errorf("%d strikes", st.Strikes)
	}
}

// TestStaleCallsUseNoAllowance: calls that became too old while waiting for
// a busy node are rejected before the rate limit is charged, so they do not
// use up the allowance of the fresh calls behind them.
func TestStaleCallsUseNoAllowance(t *testing.T) {
	h := newHarness(t) // 5 calls per second, burst 5
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	t0 := h.now
	var seq uint64
	handle := t0 + 200*ms
	// Five calls 900 ms old when they arrive at t0: in the window then,
	// stale by the time the node handles them 200 ms later.
	for range 5 {
		seq++
		h.n.StepArrived(handle, t0, c.id, h.callFrame(c, seq, t0-900*ms+int64(seq)))
	}
	// Five fresh calls arriving 100 ms later.
	for range 5 {
		seq++
		h.n.StepArrived(handle, t0+100*ms, c.id, h.callFrame(c, seq, t0+100*ms+int64(seq)))
	}
	got := h.drain()
	if ok, old := strings.Count(got, " ok "), strings.Count(got, "older than the change window"); ok != 5 || old != 5 {
		t.Errorf("%d calls ran and %d were too old, want 5 and 5:\n%s", ok, old, got)
	}
}

// fill writes n values under clients/<creator>/ from client c.
func (h *harness) fill(c *tclient, n int) {
	var items []wire.Value
	for i := range n {
		items = append(items, wire.Value{Path: fmt.Sprintf("clients/%d/v%d", c.creator, i),
			Time: wire.Time{Nanos: h.now, Creator: c.creator}, Value: u64(uint64(i))})
	}
	h.send(c.name, &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: items}})
	if got := h.drain(); got != "" {
		h.t.Fatalf("fill: %s", got)
	}
}

// TestSnapshotAmplification: one frame of Watch messages repeating a prefix
// the session already watches asked for a full snapshot per copy: 1,024
// copies of a 100-value prefix queued 102,400 values. Snapshots are charged
// to Limits.SnapshotValuesPerSecond before they are sent, a watch whose
// snapshot does not fit is refused as a strike, so the frame's work stays
// within the budget and the session is cut off.
func TestSnapshotAmplification(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) {
		c.Limits.SnapshotValuesPerSecond = 1000
		c.Limits.WritesPerSecond = 1000
	})
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	h.fill(c, 100)
	prefix := fmt.Sprintf("clients/%d/", c.creator)
	h.send("a", &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{prefix}}})
	if got := h.drain(); strings.Count(got, prefix) != 100 {
		t.Fatalf("first snapshot:\n%.300s", got)
	}
	f := c.enc.BeginFrame(nil)
	dup := slices.Repeat([]string{prefix}, 256)
	for range 4 {
		var err error
		if f, err = c.enc.AppendWatch(f, &wire.Watch{Prefixes: dup}); err != nil {
			t.Fatal(err)
		}
	}
	before := h.n.Stats().ValuesSent
	h.n.Step(h.now, c.id, f)
	got := h.drain()
	sent := h.n.Stats().ValuesSent - before
	if sent > 1000 {
		t.Errorf("one frame made the node send %d snapshot values; the budget is 1000 a second", sent)
	}
	if !strings.Contains(got, "a closed") {
		t.Errorf("the session is not cut off (%d values sent)", sent)
	}
}

// TestMessageBudget: a frame's messages are charged to
// Limits.MessagesPerSecond before each is handled; a message over the
// budget is refused as a strike, so a frame of 1,024 Pings gets at most a
// second's worth of answers and its sender is cut off.
func TestMessageBudget(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) { c.Limits.MessagesPerSecond = 100 })
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	f := c.enc.BeginFrame(nil)
	for i := range 1024 {
		var err error
		if f, err = c.enc.AppendPing(f, &wire.Ping{Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	h.n.Step(h.now, c.id, f)
	got := h.drain()
	if n := strings.Count(got, "a <- Ping"); n > 100 {
		t.Errorf("%d Pings answered from one frame; the budget is 100 a second", n)
	}
	if !strings.Contains(got, "a closed") {
		t.Errorf("the session is not cut off")
	}
	// An honest rate is never refused: 50 messages a second for 10 s.
	h.exec("connect b")
	h.exec("hello b")
	for range 100 {
		h.now += 100 * ms
		for range 5 {
			h.exec("ping b")
		}
	}
	if st := h.n.Stats(); st.Kicked != 1 {
		t.Errorf("%d sessions kicked, want 1", st.Kicked)
	}
}

// TestInboundDictionaryBounded: a client's path definitions are memory the
// node holds for it (up to 4096 paths of 1 KiB each by the wire limits);
// beyond Limits.MaxInboundPathBytes the session is closed.
func TestInboundDictionaryBounded(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) {
		c.Limits.MaxInboundPathBytes = 64 << 10
		c.Limits.WritesPerSecond = 1e6
		c.Limits.BytesPerSecond = 1e9
	})
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	long := strings.Repeat("x", 900)
	var got string
	defined := 0
	for i := range 100 {
		p := fmt.Sprintf("clients/%d/%s%d", c.creator, long, i)
		defined += len(p)
		h.send("a", &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: []wire.Value{{
			Path: p, Time: wire.Time{Nanos: h.now, Creator: c.creator}, Value: []byte{1}}}}})
		if got = h.drain(); got != "" {
			if defined <= 64<<10 {
				t.Fatalf("closed after %d paths of %d bytes: %s", i+1, defined, got)
			}
			break
		}
	}
	if !strings.Contains(got, "a closed") || !strings.Contains(got, "path") {
		t.Fatalf("not closed after 100 paths of 900 bytes (got %q)", got)
	}
}
