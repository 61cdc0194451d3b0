package authority

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/authority/shardmap"
)

// TestNodeStatusLateCall: a late call re-runs a later one; the node counts
// the late write and the invalidation, and explains the re-run by the value
// that arrived late and the output it changed.
func TestNodeStatusLateCall(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) {
		c.RunClock = func() int64 { return 0 } // runs take no time: every run in the first bucket
	})
	for _, line := range []string{"connect a", "hello a", "connect b", "hello b",
		"call a add 1 at=9000", "call b add 10 at=9200", "tick", "call a add 100 at=9100", "tick"} {
		h.exec(line)
	}
	st := h.n.Stats()
	if st.Reruns != 1 || st.LateWrites != 1 || st.Store.Invalidation == 0 {
		t.Fatalf("reruns %d, late writes %d, invalidations %d: want 1, 1, >0", st.Reruns, st.LateWrites, st.Store.Invalidation)
	}
	fs := h.n.FuncStats()["add"]
	if fs.Calls != 3 || fs.Reruns != 1 || fs.Runs[0] != 4 {
		t.Fatalf("add: %+v, want 3 calls, 1 re-run, 4 runs in the first bucket", fs)
	}
	rr := h.n.Reruns()
	if len(rr) != 1 {
		t.Fatalf("reruns %+v", rr)
	}
	r := rr[0]
	a := h.clients["a"].creator
	if r.Function != "add" || r.Version != 1 || !r.CauseKnown || r.CausePath != "total" ||
		r.Cause.Nanos != 9100*ms || r.Cause.Creator != a || !cmp.Equal(r.Changed, []string{"total"}) {
		t.Fatalf("re-run %+v", r)
	}
	if ex := r.Explain(); !strings.Contains(ex, "read total written 100ms before the call by creator 1") || !strings.Contains(ex, "changed total") {
		t.Fatalf("explanation %q", ex)
	}
	infos, total := h.n.Sessions(-1)
	if total != 2 || len(infos) != 2 || infos[0].State != "player" || infos[0].Calls != 2 || infos[1].Calls != 1 {
		t.Fatalf("sessions %d %+v", total, infos)
	}
}

// TestNodeStatusRingKeepsLatest: the re-run log keeps the newest
// maxReruns, newest first.
func TestNodeStatusRingKeepsLatest(t *testing.T) {
	h := newHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	for i := range maxReruns + 5 {
		h.n.fileRerun(Rerun{Version: uint32(i)})
		got := h.n.Reruns()
		if len(got) != min(i+1, maxReruns) || got[0].Version != uint32(i) {
			t.Fatalf("after %d: %d re-runs, newest v%d", i+1, len(got), got[0].Version)
		}
	}
	got := h.n.Reruns()
	for k := range got {
		if got[k].Version != uint32(maxReruns+4-k) {
			t.Fatalf("re-run %d is v%d, want v%d", k, got[k].Version, maxReruns+4-k)
		}
	}
}

// TestNodeNotes: refusals and closes are counted by cause and noted with
// the session, player and reason; the notes are bounded.
func TestNodeNotes(t *testing.T) {
	h := newHarness(t)
	for _, line := range []string{"connect a", "hello a", "timesync a",
		"call a nosuch",          // unknown function: a refusal and a strike
		"call a add 1 at=1000",   // older than the change window
		"watch a p/ q/ r/ s/ t/", // the fifth watch is over the limit
	} {
		h.exec(line)
	}
	st := h.n.Stats()
	want := map[Cause]uint64{CauseUnknownFunction: 1, CauseLate: 1, CauseLimit: 1}
	for c := range NumCauses {
		if st.Refusals[c] != want[c] {
			t.Errorf("refusals[%v] = %d, want %d", c, st.Refusals[c], want[c])
		}
	}
	if st.StrikesBy[CauseUnknownFunction] != 1 || st.StrikesBy[CauseLate] != 1 || st.StrikesBy[CauseLimit] != 1 {
		t.Errorf("strikes by cause %v", st.StrikesBy)
	}
	notes := h.n.TakeNotes()
	if len(notes) != 3 || notes[0].Cause != CauseUnknownFunction || notes[0].Closed || notes[0].Session != h.clients["a"].id ||
		!strings.Contains(notes[0].Reason, `unknown function "nosuch"`) || notes[0].Peer != -1 {
		t.Fatalf("notes %+v", notes)
	}
	if len(h.n.TakeNotes()) != 0 {
		t.Fatal("notes taken twice")
	}
	infos, _ := h.n.Sessions(1)
	if off, ok := infos[0].ClockOffset(0); !ok || off != time.Duration(h.now-42) {
		t.Fatalf("clock offset %v %v (sync sent %d, arrived %d)", off, ok, infos[0].SyncSent, infos[0].SyncArrived)
	}
	// Strikes up to the limit close the session.
	for range 3 {
		h.exec("call a nosuch")
	}
	st = h.n.Stats()
	if st.Closes[CauseStrikes] != 1 {
		t.Fatalf("closes %v", st.Closes)
	}
	notes = h.n.TakeNotes()
	last := notes[len(notes)-1]
	if !last.Closed || last.Cause != CauseStrikes || !strings.Contains(last.Reason, "strikes") {
		t.Fatalf("last note %+v", last)
	}
	// A transport gone is counted once, under the shell's cause.
	h.exec("connect b")
	h.exec("hello b")
	h.n.DisconnectFor(h.now, h.clients["b"].id, CauseSendQueue, "queue full")
	h.n.DisconnectFor(h.now, h.clients["b"].id, CauseTransport, "again")
	if st := h.n.Stats(); st.Closes[CauseSendQueue] != 1 || st.Closes[CauseTransport] != 0 {
		t.Fatalf("closes %v", st.Closes)
	}
	// Bounded: notes beyond maxNotes are counted, not kept.
	h.n.TakeNotes()
	h.exec("connect c")
	h.exec("hello c")
	c := h.n.sessions[h.clients["c"].id]
	for range maxNotes + 10 {
		h.n.noteRefusal(c, CauseRefused, "x")
	}
	if got := len(h.n.TakeNotes()); got != maxNotes || h.n.Stats().NotesDropped != 10 {
		t.Fatalf("%d notes kept, %d dropped", got, h.n.Stats().NotesDropped)
	}
}

func TestCauseNames(t *testing.T) {
	seen := map[string]bool{}
	for c := range NumCauses {
		n := c.String()
		if n == "" || seen[n] || strings.ContainsAny(n, " -") {
			t.Fatalf("cause %d named %q", c, n)
		}
		seen[n] = true
	}
}

// TestClusterInfoBoundsRanges: a shard map of more ranges than
// MaxRangeInfo is counted whole and listed in part.
func TestClusterInfoBoundsRanges(t *testing.T) {
	h := newHarness(t)
	m := shardmap.New()
	const n = MaxRangeInfo + 44
	for i := range n {
		owners := []shardmap.NodeID{2}
		if i%4 == 0 {
			owners = []shardmap.NodeID{0, 2} // this node's id is 0
		}
		if _, err := m.Set(shardmap.Whole(fmt.Sprintf("r%d/", i)), owners, 2); err != nil {
			t.Fatal(err)
		}
	}
	h.n.SetShardMap(0, m)
	ci := h.n.ClusterInfo()
	if len(ci.Ranges) != MaxRangeInfo || ci.RangesTotal != n || ci.RangesOwned != n/4 {
		t.Fatalf("%d ranges listed, %d counted, %d owned; want %d, %d, %d", len(ci.Ranges), ci.RangesTotal, ci.RangesOwned, MaxRangeInfo, n, n/4)
	}
}
