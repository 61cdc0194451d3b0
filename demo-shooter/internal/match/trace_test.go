package match

import (
	"errors"
	"testing"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
)

const ms = int64(time.Millisecond)

// traceStore runs the traced game's calls against one store, as the
// authority does (Registry.Run, then Store.Commit).
type traceStore struct {
	t   *testing.T
	s   *netcode.Store
	cfg netcode.Config
	reg *netcode.Registry
}

func newTraceStore(t *testing.T) *traceStore {
	s, err := netcode.NewStore(netcode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &traceStore{t: t, s: s, cfg: s.Config(), reg: TracedRegistry(game.Registry)()}
}

// run runs call (id, at, version) of name with args and commits it at
// now; it returns the function's error.
func (ts *traceStore) run(id netcode.CallID, at int64, version uint32, name string, args []byte, now int64) error {
	ts.t.Helper()
	out := ts.reg.Run(ts.s, &ts.cfg, netcode.Call{ID: id, Name: name, Args: args, Time: at}, version)
	if out.Err != nil {
		return out.Err
	}
	if _, err := ts.s.Commit(now, &out); err != nil {
		ts.t.Fatalf("commit %s at %d: %v", name, at, err)
	}
	return nil
}

// count reads the latest readable count of trace (bot, seq), 0 if none.
func (ts *traceStore) count(bot, seq uint32) uint32 {
	ts.t.Helper()
	v, ok := ts.s.Latest(TracePath(bot, seq), netcode.Time{Nanos: 1 << 62})
	if !ok || v.Value == nil {
		return 0
	}
	n, err := TraceCount(v.Value)
	if err != nil {
		ts.t.Fatal(err)
	}
	return n
}

// TestTracedRegistry: a traced call that succeeds leaves its count, one
// that the game refuses leaves nothing, an untagged one is refused; the
// same call applied again later counts 2, and so does one applied again
// at an earlier time arriving late, once the first is re-run (the
// validity rule invalidates the first's read).
func TestTracedRegistry(t *testing.T) {
	ts := newTraceStore(t)
	t0 := int64(10 * time.Second)
	join := traceArgs(game.JoinArgs("a"), 0, 1)
	if err := ts.run(netcode.CallID{Creator: 1, Seq: 1}, t0, 0, game.FuncJoin, join, t0); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(0, 1); n != 1 {
		t.Fatalf("after one join: count %d, want 1", n)
	}
	// Creator 2: the same client welcomed afresh, a new player to the game.
	if err := ts.run(netcode.CallID{Creator: 2, Seq: 1}, t0+5*ms, 0, game.FuncJoin, traceArgs(game.JoinArgs("a"), 1, 1), t0+5*ms); err != nil {
		t.Fatal(err)
	}
	// A respawn of a living player fails: no trace.
	if err := ts.run(netcode.CallID{Creator: 1, Seq: 2}, t0+10*ms, 0, game.FuncRespawn, traceArgs(nil, 0, 2), t0+10*ms); !errors.Is(err, game.ErrAlive) {
		t.Fatalf("respawn of a living player: %v", err)
	}
	if n := ts.count(0, 2); n != 0 {
		t.Fatalf("a failed call left count %d", n)
	}
	if err := ts.run(netcode.CallID{Creator: 1, Seq: 3}, t0+20*ms, 0, game.FuncAim, game.AimArgs(1), t0+20*ms); err == nil {
		// AimArgs is 8 bytes, read as a tag: the game gets no arguments.
		t.Fatal("a call without its tag succeeded")
	}
	if err := ts.run(netcode.CallID{Creator: 1, Seq: 4}, t0+30*ms, 0, game.FuncAim, []byte{1}, t0+30*ms); !errors.Is(err, ErrTrace) {
		t.Fatalf("a call shorter than a tag: %v, want ErrTrace", err)
	}
	// The same aim (bot 0, seq 5) applied twice, the second time later
	// under another id (a client welcomed afresh): counted twice.
	aim := traceArgs(game.AimArgs(1), 0, 5)
	for i, at := range []int64{t0 + 40*ms, t0 + 60*ms} {
		if err := ts.run(netcode.CallID{Creator: 1 + uint32(i), Seq: 5}, at, 0, game.FuncAim, aim, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.count(0, 5); n != 2 {
		t.Fatalf("an aim applied twice: count %d, want 2", n)
	}
	// Applied at t0+100ms, then again at t0+90ms, arriving after it: the
	// first's read of the trace is invalid, its re-run counts 2.
	aim = traceArgs(game.AimArgs(2), 0, 6)
	first := netcode.CallID{Creator: 1, Seq: 6}
	if err := ts.run(first, t0+100*ms, 0, game.FuncAim, aim, t0+100*ms); err != nil {
		t.Fatal(err)
	}
	if err := ts.run(netcode.CallID{Creator: 2, Seq: 6}, t0+90*ms, 0, game.FuncAim, aim, t0+110*ms); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(0, 6); n != 1 {
		t.Fatalf("before the re-run: count %d, want 1 (the late one's, the first invalid)", n)
	}
	if err := ts.run(first, t0+100*ms, 1, game.FuncAim, aim, t0+120*ms); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(0, 6); n != 2 {
		t.Fatalf("after the re-run: count %d, want 2", n)
	}
	// A re-run of a call replaces its earlier version: still 1.
	aim = traceArgs(game.AimArgs(3), 0, 7)
	again := netcode.CallID{Creator: 1, Seq: 7}
	if err := ts.run(again, t0+200*ms, 0, game.FuncAim, aim, t0+200*ms); err != nil {
		t.Fatal(err)
	}
	// A late key change before it invalidates the aim's read of the motion.
	if err := ts.run(netcode.CallID{Creator: 1, Seq: 8}, t0+150*ms, 0, game.FuncSetKeys, traceArgs(game.SetKeysArgs(game.KeyLeft), 0, 8), t0+210*ms); err != nil {
		t.Fatal(err)
	}
	if err := ts.run(again, t0+200*ms, 1, game.FuncAim, aim, t0+220*ms); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(0, 7); n != 1 {
		t.Fatalf("a re-run: count %d, want 1", n)
	}
}

// TestCheckTraces: lost, duplicate, unconfirmed and stray traces are each
// counted, and divergence counts the paths that differ.
func TestCheckTraces(t *testing.T) {
	one, two := []byte{1, 0, 0, 0}, []byte{2, 0, 0, 0}
	a, b := NewTrace(0), NewTrace(1)
	for i, tr := range []*Trace{a, b} {
		for k := range 4 {
			seq, err := tr.next()
			if err != nil {
				t.Fatal(err)
			}
			tr.made(netcode.CallID{Creator: uint32(i + 1), Seq: uint64(k)}, seq)
		}
	}
	// Bot 0: 1 and 2 confirmed, 3 failed, 4 never answered. Bot 1: all
	// confirmed, then 4 failed when re-run.
	a.result(netcode.CallID{Creator: 1, Seq: 0}, nil)
	a.result(netcode.CallID{Creator: 1, Seq: 1}, nil)
	a.result(netcode.CallID{Creator: 1, Seq: 2}, errors.New("dead"))
	for k := range 4 {
		b.result(netcode.CallID{Creator: 2, Seq: uint64(k)}, nil)
	}
	b.result(netcode.CallID{Creator: 2, Seq: 3}, errors.New("failed when re-run"))
	b.result(netcode.CallID{Creator: 9, Seq: 9}, nil) // unknown: ignored

	s1 := map[string][]byte{
		TracePath(0, 1): one, TracePath(0, 2): one, TracePath(0, 4): one, // 4 ran, unanswered
		TracePath(1, 1): one, TracePath(1, 2): two, TracePath(1, 3): one,
		TracePath(7, 1):  one, // no such bot
		"players/1/name": []byte("a"),
	}
	s2 := map[string][]byte{
		TracePath(0, 1): one, TracePath(0, 2): one, TracePath(0, 4): one,
		TracePath(1, 1): one, TracePath(1, 2): one, // 1/3 missing here
		"players/1/name": []byte("b"),
	}
	got := CheckTraces([]*Trace{a, b}, []map[string][]byte{s1, s2})
	want := TraceCheck{Confirmed: 5, Lost: 1, Duplicate: 1, Unconfirmed: 1, Stray: 1}
	if got != want {
		t.Errorf("CheckTraces = %+v, want %+v", got, want)
	}
	// Differ: 1/2 (bytes), 1/3 and 7/1 (held by one), players/1/name.
	if div, n := Divergence([]map[string][]byte{s1, s2}); div != 4 || n != 8 {
		t.Errorf("Divergence = %d of %d, want 4 of 8", div, n)
	}
	if div, _ := Divergence([]map[string][]byte{s2, s2}); div != 0 {
		t.Errorf("Divergence of equal states = %d", div)
	}
}
