package authority

import (
	"strings"
	"testing"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
)

// shardedHarness is a harness whose node (id 0) owns nothing under
// clients/1/ and players/: node 2 owns them.
func shardedHarness(t *testing.T) *harness {
	h := newHarness(t)
	m := shardmap.New()
	for _, p := range []string{"clients/1/", "players/"} {
		if _, err := m.Set(shardmap.Whole(p), []shardmap.NodeID{2}, 2); err != nil {
			t.Fatal(err)
		}
	}
	h.n.SetShardMap(h.now, m)
	return h
}

// TestShardWriteRefusedNamesOwners: a raw write to a range another node
// owns is refused with an error naming the owners, and nothing is stored.
func TestShardWriteRefusedNamesOwners(t *testing.T) {
	h := shardedHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	out := h.exec("write a clients/1/x 1")
	if !strings.Contains(out, "clients/1/x: its range is owned by authorities [2], not this one") {
		t.Fatalf("write to another node's range: %s", out)
	}
	if _, ok := h.n.Store().Latest("clients/1/x", netcode.Time{Nanos: 1 << 62}); ok {
		t.Fatal("write to another node's range stored")
	}
}

// TestShardRunOutsideRefused: a call that reads a range this node neither
// owns nor watches stores nothing and fails with an error saying so, and
// the node watches that range from then on.
func TestShardRunOutsideRefused(t *testing.T) {
	h := shardedHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	out := h.exec("call a shoot 1")
	if !strings.Contains(out, "does not hold yet") {
		t.Fatalf("call reading another node's range: %s", out)
	}
	st := h.n.Stats()
	if st.RunsOutside != 1 || st.RangesWatched != 1 || !h.n.Holds("players/1/x") || h.n.Holds("clients/1/x") {
		t.Fatalf("runs outside %d, ranges watched %d, holds players/1/x %v, clients/1/x %v: want 1, 1, true, false",
			st.RunsOutside, st.RangesWatched, h.n.Holds("players/1/x"), h.n.Holds("clients/1/x"))
	}
	if _, ok := h.n.Store().Latest("hits/1", netcode.Time{Nanos: 1 << 62}); ok {
		t.Fatal("a refused run stored its output")
	}
}

// TestRangeCallsCounted: calls run here are counted by the range of their
// shard key (none without a key or outside every range), listed with the
// range in ClusterInfo, and a range gone from the map takes its count
// with it.
func TestRangeCallsCounted(t *testing.T) {
	h := newHarness(t)
	m := shardmap.New()
	for _, p := range []string{"a/", "b/"} {
		if _, err := m.Set(shardmap.Whole(p), []shardmap.NodeID{0, 2}, 2); err != nil {
			t.Fatal(err)
		}
	}
	h.n.SetShardMap(h.now, m)
	for _, key := range []string{"a/1", "b/1", "b/2", "", "c/1"} {
		h.n.countRangeCall(key)
	}
	calls := func() map[string]uint64 {
		got := map[string]uint64{}
		for _, r := range h.n.ClusterInfo().Ranges {
			got[r.Range] = r.Calls
		}
		return got
	}
	if got := calls(); got[`"a/"`] != 1 || got[`"b/"`] != 2 || len(got) != 2 {
		t.Fatalf("calls by range %v, want a/ 1, b/ 2", got)
	}
	m = m.Clone()
	if _, ok := m.Remove(shardmap.Whole("b/"), 2); !ok {
		t.Fatal("b/ not removed")
	}
	h.n.SetShardMap(h.now, m)
	if got := calls(); got[`"a/"`] != 1 || len(got) != 1 || len(h.n.rangeCalls) != 1 {
		t.Fatalf("after b/ left the map: calls by range %v (kept %d), want a/ 1 alone", got, len(h.n.rangeCalls))
	}
}
