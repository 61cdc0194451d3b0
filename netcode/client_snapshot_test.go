package netcode_test

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// put stores v in the world's node directly, as another authority's
// forwarded write would: no watcher is told, so the test uses it only
// while its client has no session (and before it watches).
func (w *world) put(v netcode.PathValue) {
	w.t.Helper()
	if _, err := w.node.Store().Insert(w.now, v); err != nil {
		w.t.Fatalf("put %s: %v", v.Path, err)
	}
}

// valueEvents returns the EventValue events of evs for path, as the value
// each reported ("<deleted>" for a deletion).
func valueEvents(evs []netcode.Event, path string) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == netcode.EventValue && e.Path == path {
			if e.Value == nil {
				out = append(out, "<deleted>")
			} else {
				out = append(out, string(e.Value))
			}
		}
	}
	return out
}

// TestClientCoreSnapshotDropsStale: a client watches things/ and holds its
// values; it loses its session, and while it is away a path is deleted
// (things/a), a path's latest value is invalidated with nothing newer
// written (things/b: its value read src, and a late write of src lands
// inside that read), and a path gets a newer value (things/c). After it
// reconnects, its view is the authority's: things/a is gone (with a
// deletion event), things/b shows its older valid value (with an event),
// things/c the new one, and the history older than the snapshot stays
// readable.
func TestClientCoreSnapshotDropsStale(t *testing.T) {
	clocks = nil
	w := newWorld(t, 10*time.Millisecond)
	a := w.clients[0]
	w.run(2 * time.Second) // sync the clock
	ms := int64(time.Millisecond)
	n0 := w.now
	const other = 99 // creator of the writes the test makes
	at := func(d int64) netcode.Time { return netcode.Time{Nanos: n0 + d*ms, Creator: other} }
	src0, b1, b2 := at(-400), at(-300), at(-100)
	w.put(netcode.PathValue{Path: "src", Time: src0, Value: []byte("s0")})
	w.put(netcode.PathValue{Path: "things/a", Time: at(-300), Value: []byte("a1")})
	w.put(netcode.PathValue{Path: "things/b", Time: b1, Value: []byte("b1")})
	w.put(netcode.PathValue{Path: "things/b", Time: b2, Value: []byte("b2"),
		Locks: []netcode.ReadLock{{Path: "src", Start: src0, End: b2}}})
	c1 := at(-300)
	w.put(netcode.PathValue{Path: "things/c", Time: c1, Value: []byte("c1")})

	if err := a.core.Watch("things/", wire.WatchLatest, 0); err != nil {
		t.Fatal(err)
	}
	w.run(200 * time.Millisecond)
	for path, want := range map[string]string{"things/a": "a1", "things/b": "b2", "things/c": "c1"} {
		if v, ok := a.core.Read(path); !ok || string(v) != want {
			t.Fatalf("before the loss, %s reads %q (%v), want %q", path, v, ok, want)
		}
	}

	// The session is lost; the node notices. While the client is away:
	w.lose(a, true)
	a.evs = nil
	w.put(netcode.PathValue{Path: "things/a", Time: netcode.Time{Nanos: w.now - 10*ms, Creator: other}}) // (a) deleted
	w.put(netcode.PathValue{Path: "src", Time: at(-200), Value: []byte("s1")})                           // (b) b2 read src over (src0, b2): invalid now
	c2 := netcode.Time{Nanos: w.now - 10*ms, Creator: other}                                             //
	w.put(netcode.PathValue{Path: "things/c", Time: c2, Value: []byte("c2")})                            // (c) a newer value
	if v, ok := w.node.Store().Latest("things/b", netcode.Time{Nanos: w.now}); !ok || string(v.Value) != "b1" {
		t.Fatalf("setup: the node's things/b is %q (%v), want b1", v.Value, ok)
	}
	w.run(300 * time.Millisecond)
	if !a.core.Connected() {
		t.Fatal("not reconnected")
	}

	if v, ok := a.core.Read("things/a"); ok {
		t.Errorf("things/a reads %q after its deletion, want absent", v)
	}
	if v, ok := a.core.Read("things/b"); !ok || string(v) != "b1" {
		t.Errorf("things/b reads %q (%v), want b1 (b2 was invalidated)", v, ok)
	}
	if v, ok := a.core.Read("things/c"); !ok || string(v) != "c2" {
		t.Errorf("things/c reads %q (%v), want c2", v, ok)
	}
	for path, want := range map[string][]string{
		"things/a": {"<deleted>"},
		"things/b": {"b1"},
		"things/c": {"c2"},
	} {
		if diff := cmp.Diff(want, valueEvents(a.evs, path)); diff != "" {
			t.Errorf("value events of %s after reconnecting (-want +got):\n%s", path, diff)
		}
	}
	// History the snapshot does not resend stays.
	if v, ok := a.core.ReadAt("things/c", c2.Nanos); !ok || string(v) != "c1" {
		t.Errorf("things/c just before c2 reads %q (%v), want c1", v, ok)
	}
	var hist []string
	for _, v := range a.core.History("things/c") {
		hist = append(hist, string(v.Value))
	}
	if diff := cmp.Diff([]string{"c1", "c2"}, hist); diff != "" {
		t.Errorf("things/c history (-want +got):\n%s", diff)
	}
	if hb := a.core.History("things/b"); len(hb) != 1 || !bytes.Equal(hb[0].Value, []byte("b1")) {
		t.Errorf("things/b history %v, want b1 alone", hb)
	}
}

// TestClientCoreSnapshotKeepsCurrent: a first watch and a reconnect with
// nothing changed drop nothing and report nothing twice; a watch on one
// path (no '/') drops that path when it was deleted; a history watch's
// snapshot keeps the history it resends.
func TestClientCoreSnapshotKeepsCurrent(t *testing.T) {
	clocks = nil
	w := newWorld(t, 10*time.Millisecond)
	a := w.clients[0]
	w.run(2 * time.Second)
	ms := int64(time.Millisecond)
	const other = 99
	at := func(d int64) netcode.Time { return netcode.Time{Nanos: w.now + d*ms, Creator: other} }
	w.put(netcode.PathValue{Path: "things/x", Time: at(-300), Value: []byte("x1")})
	w.put(netcode.PathValue{Path: "things/x", Time: at(-200), Value: []byte("x2")})
	w.put(netcode.PathValue{Path: "things/y", Time: at(-300), Value: []byte("y1")})
	w.put(netcode.PathValue{Path: "total", Time: at(-300), Value: []byte("t1")})
	a.core.Watch("things/", wire.WatchHistory, time.Second)
	a.core.Watch("total", wire.WatchLatest, 0)
	w.run(200 * time.Millisecond)
	want := map[string][]string{"things/x": {"x1", "x2"}, "things/y": {"y1"}, "total": {"t1"}}
	for path, wv := range want {
		if diff := cmp.Diff(wv, valueEvents(a.evs, path)); diff != "" {
			t.Errorf("first watch: value events of %s (-want +got):\n%s", path, diff)
		}
	}
	a.evs = nil

	// A reconnect with nothing changed: no event, all history kept.
	w.lose(a, true)
	w.run(300 * time.Millisecond)
	for path := range want {
		if got := valueEvents(a.evs, path); len(got) > 0 {
			t.Errorf("reconnect with nothing changed: value events of %s: %v", path, got)
		}
	}
	if got := len(a.core.History("things/x")); got != 2 {
		t.Errorf("things/x keeps %d values, want 2", got)
	}

	// Away: total is deleted, things/y deleted too. Only the watch that
	// covers a path decides for it.
	w.lose(a, true)
	a.evs = nil
	w.put(netcode.PathValue{Path: "total", Time: at(-5)})
	w.put(netcode.PathValue{Path: "things/y", Time: at(-5)})
	w.run(300 * time.Millisecond)
	if v, ok := a.core.Read("total"); ok {
		t.Errorf("total reads %q after its deletion", v)
	}
	// A history watch sends the deletion itself: things/y ends deleted
	// either way, with its older value kept as history.
	if v, ok := a.core.Read("things/y"); ok {
		t.Errorf("things/y reads %q after its deletion", v)
	}
	if diff := cmp.Diff([]string{"<deleted>"}, valueEvents(a.evs, "total")); diff != "" {
		t.Errorf("total's value events (-want +got):\n%s", diff)
	}
	if v, ok := a.core.Read("things/x"); !ok || string(v) != "x2" {
		t.Errorf("things/x reads %q (%v), want x2", v, ok)
	}
}

// handAuthority plays the authority's side of one session by hand, so a
// test chooses exactly what reaches the client core and in which frames.
type handAuthority struct {
	t    *testing.T
	core *netcode.ClientCore
	enc  *wire.Encoder
	dec  *wire.Decoder
}

// session starts a new session of core and welcomes it.
func newHandSession(t *testing.T, core *netcode.ClientCore) *handAuthority {
	t.Helper()
	if err := core.Connect(); err != nil {
		t.Fatal(err)
	}
	enc, err := wire.NewEncoder(wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := wire.NewDecoder(wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := &handAuthority{t: t, core: core, enc: enc, dec: dec}
	h.sent() // the Hello and time-sync request
	h.frame(wire.Message{Kind: wire.KindWelcome, Welcome: wire.Welcome{Creator: 5, MaxChangeAge: time.Second, MaxRewind: time.Second}})
	return h
}

// frame delivers msgs to the core in one frame.
func (h *handAuthority) frame(msgs ...wire.Message) {
	h.t.Helper()
	f := h.enc.BeginFrame(nil)
	for i := range msgs {
		var err error
		if f, err = h.enc.Append(f, &msgs[i]); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := h.core.Receive(f, 0); err != nil {
		h.t.Fatal(err)
	}
}

// sent returns the Watches the core sent since the last call.
func (h *handAuthority) sent() []wire.Watch {
	h.t.Helper()
	var out []wire.Watch
	for _, f := range h.core.Outgoing() {
		if err := h.dec.Start(f); err != nil {
			h.t.Fatal(err)
		}
		for {
			var m wire.Message
			if err := h.dec.Next(&m); err != nil {
				break
			}
			if m.Kind == wire.KindWatch {
				out = append(out, m.Watch)
			}
		}
	}
	return out
}

func values(vs ...wire.Value) wire.Message {
	return wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: vs}}
}

func val(path string, nanos int64, v string) wire.Value {
	return wire.Value{Path: path, Time: wire.Time{Nanos: nanos, Creator: 9}, Value: []byte(v)}
}

func done(prefix string) wire.Message {
	return wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: prefix}}
}

// view returns what the core reads for each path.
func view(core *netcode.ClientCore, paths ...string) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		if v, ok := core.Read(p); ok {
			out[p] = string(v)
		}
	}
	return out
}

// TestClientCoreSnapshotEnds drives the client's side of snapshot ends
// frame by frame: what arrives between a Watch and its WatchDone is kept
// (the snapshot, or changes newer than it); two Watches of one prefix in
// flight end in order; an Unwatch does not take a later Watch's end for
// an earlier one's; and without a WatchDone (an older authority) nothing is
// dropped.
func TestClientCoreSnapshotEnds(t *testing.T) {
	local := int64(0)
	clk, err := timesync.New(vclock{&local}, timesync.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	core, err := netcode.NewClientCore(netcode.ClientOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"things/a", "things/b", "things/c", "things/d"}
	h := newHandSession(t, core)
	core.Watch("things/", wire.WatchLatest, 0)
	if w := h.sent(); len(w) != 1 || !w[0].Done {
		t.Fatalf("the core sent %+v, want one Watch asking for its end", w)
	}
	h.frame(values(val("things/a", 10, "a1"), val("things/b", 10, "b1"), val("things/c", 10, "c1"), val("things/d", 10, "d1")), done("things/"))
	want := map[string]string{"things/a": "a1", "things/b": "b1", "things/c": "c1", "things/d": "d1"}
	if diff := cmp.Diff(want, view(core, paths...)); diff != "" {
		t.Fatalf("first snapshot (-want +got):\n%s", diff)
	}

	// A new session: the snapshot (a, c) comes in two frames with a newer
	// change of d between them, then its end. b is gone; d's new value,
	// though no snapshot carried it, stays.
	h = newHandSession(t, core)
	if w := h.sent(); len(w) != 1 || !w[0].Done || w[0].Prefixes[0] != "things/" {
		t.Fatalf("the renewed watch is %+v", w)
	}
	h.frame(values(val("things/a", 10, "a1")))
	h.frame(values(val("things/d", 20, "d2")))
	h.frame(values(val("things/c", 10, "c1")), done("things/"))
	want = map[string]string{"things/a": "a1", "things/c": "c1", "things/d": "d2"}
	if diff := cmp.Diff(want, view(core, paths...)); diff != "" {
		t.Errorf("after the second snapshot (-want +got):\n%s", diff)
	}

	// Two Watches of things/ in flight, with an Unwatch between them. The
	// first snapshot arrives in part before the second Watch is sent; its
	// end must not be taken for the second's (a would be dropped), and
	// the second's end then drops c, which it lacks.
	core.Watch("things/", wire.WatchLatest, 0)
	h.frame(values(val("things/a", 10, "a1")))
	core.Unwatch("things/")
	core.Watch("things/", wire.WatchLatest, 0)
	h.frame(values(val("things/c", 10, "c1"), val("things/d", 20, "d2")), done("things/"))
	want = map[string]string{"things/a": "a1", "things/c": "c1", "things/d": "d2"}
	if diff := cmp.Diff(want, view(core, paths...)); diff != "" {
		t.Errorf("after the first of two snapshots (-want +got):\n%s", diff)
	}
	h.frame(values(val("things/a", 10, "a1"), val("things/d", 20, "d2")), done("things/"))
	want = map[string]string{"things/a": "a1", "things/d": "d2"}
	if diff := cmp.Diff(want, view(core, paths...)); diff != "" {
		t.Errorf("after the second of two snapshots (-want +got):\n%s", diff)
	}

	// A WatchDone nobody awaits changes nothing; an authority that sends
	// none leaves the view as its snapshot made it.
	h.frame(done("things/"), done("other/"))
	h = newHandSession(t, core)
	h.frame(values(val("things/a", 10, "a1")))
	if diff := cmp.Diff(want, view(core, paths...)); diff != "" {
		t.Errorf("without a WatchDone (-want +got):\n%s", diff)
	}
}

// BenchmarkSnapshotEnd measures a fresh watch of things/ answered with a
// 1000-path snapshot in one frame, with its WatchDone (end) and, as the
// baseline, without it (as from an authority that predates it), on a core
// that already holds 1000 confirmed paths under another prefix.
func BenchmarkSnapshotEnd(b *testing.B) {
	const n = 1000
	var snap, others []wire.Value
	for i := range n {
		snap = append(snap, val("things/"+strconv.Itoa(i), 10, "v"))
		others = append(others, val("world/"+strconv.Itoa(i), 10, "w"))
	}
	for _, withEnd := range []bool{false, true} {
		b.Run("end="+strconv.FormatBool(withEnd), func(b *testing.B) {
			t := &testing.T{}
			for b.Loop() {
				b.StopTimer()
				local := int64(0)
				clk, _ := timesync.New(vclock{&local}, timesync.DefaultConfig())
				core, _ := netcode.NewClientCore(netcode.ClientOptions{Clock: clk})
				h := newHandSession(t, core)
				core.Watch("world/", wire.WatchLatest, 0)
				h.frame(values(others...), done("world/"))
				core.Watch("things/", wire.WatchLatest, 0)
				h.sent()
				msgs := []wire.Message{values(snap...)}
				if withEnd {
					msgs = append(msgs, done("things/"))
				}
				b.StartTimer()
				h.frame(msgs...)
			}
		})
	}
}

// readyEvents returns the paths of the EventWatchReady events of evs.
func readyEvents(evs []netcode.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == netcode.EventWatchReady {
			out = append(out, e.Path)
		}
	}
	return out
}

// TestClientCoreWatchReady: a watch is ready (EventWatchReady, once, and
// WatchReady) when its snapshot has arrived whole, after the snapshot's
// values; not before, not again for the same snapshot; again after a
// reconnect renews it; and no longer once unwatched. Two Watches of one
// prefix in flight are ready at the second's end.
func TestClientCoreWatchReady(t *testing.T) {
	clocks = nil
	w := newWorld(t, 10*time.Millisecond)
	a := w.clients[0]
	w.run(2 * time.Second) // sync the clock
	const other = 99
	w.put(netcode.PathValue{Path: "things/a", Time: netcode.Time{Nanos: w.now - int64(time.Millisecond), Creator: other}, Value: []byte("a1")})
	a.evs = nil

	if err := a.core.Watch("things/", wire.WatchLatest, 0); err != nil {
		t.Fatal(err)
	}
	if a.core.WatchReady("things/") {
		t.Fatal("ready before the Watch was answered")
	}
	w.run(200 * time.Millisecond)
	if !a.core.WatchReady("things/") {
		t.Fatal("not ready after the snapshot")
	}
	if diff := cmp.Diff([]string{"things/"}, readyEvents(a.evs)); diff != "" {
		t.Errorf("ready events (-want +got):\n%s", diff)
	}
	iv := slices.IndexFunc(a.evs, func(e netcode.Event) bool { return e.Kind == netcode.EventValue && e.Path == "things/a" })
	ir := slices.IndexFunc(a.evs, func(e netcode.Event) bool { return e.Kind == netcode.EventWatchReady })
	if iv < 0 || iv > ir {
		t.Errorf("the snapshot's value (event %d) must come before the ready event (%d)", iv, ir)
	}
	if a.core.WatchReady("other/") {
		t.Error("an unwatched prefix reports ready")
	}

	// A reconnect renews the watch: not ready until its new snapshot ends.
	a.evs = nil
	w.lose(a, true)
	if a.core.WatchReady("things/") {
		t.Error("still ready on a lost session")
	}
	w.run(300 * time.Millisecond)
	if !a.core.Connected() || !a.core.WatchReady("things/") {
		t.Fatalf("after reconnecting: connected %v, ready %v", a.core.Connected(), a.core.WatchReady("things/"))
	}
	if diff := cmp.Diff([]string{"things/"}, readyEvents(a.evs)); diff != "" {
		t.Errorf("ready events after the reconnect (-want +got):\n%s", diff)
	}

	// Two Watches in flight: ready only when the later one's snapshot ends.
	a.evs = nil
	for range 2 {
		if err := a.core.Watch("more/", wire.WatchLatest, 0); err != nil {
			t.Fatal(err)
		}
	}
	w.run(200 * time.Millisecond)
	if !a.core.WatchReady("more/") {
		t.Error("more/ not ready after both snapshots")
	}
	if diff := cmp.Diff([]string{"more/"}, readyEvents(a.evs)); diff != "" {
		t.Errorf("ready events for two Watches (-want +got):\n%s", diff)
	}

	a.core.Unwatch("things/")
	if a.core.WatchReady("things/") {
		t.Error("ready after Unwatch")
	}
}
