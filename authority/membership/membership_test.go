package membership

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{NodeID: 7, Boot: 0xdeadbeef, ClientAddr: "127.0.0.1:7777", PeerAddr: "127.0.0.1:7800", MapVersion: 1 << 40}
	b := m.AppendBinary(nil)
	if len(b) > 512 {
		t.Fatalf("meta of %d bytes exceeds memberlist's 512", len(b))
	}
	long := Meta{ClientAddr: strings.Repeat("a", MaxAddrBytes), PeerAddr: strings.Repeat("b", MaxAddrBytes), MapVersion: 1<<64 - 1, Boot: 1<<64 - 1}
	if n := len(long.AppendBinary(nil)); n > 512 {
		t.Fatalf("the largest meta takes %d bytes, over memberlist's 512", n)
	}
	got, err := DecodeMeta(b)
	if err != nil || got != m {
		t.Fatalf("DecodeMeta = %+v, %v; want %+v", got, err, m)
	}
	for cut := range len(b) {
		if _, err := DecodeMeta(b[:cut]); !errors.Is(err, ErrMeta) {
			t.Fatalf("a %d-byte prefix decoded: %v", cut, err)
		}
	}
	if _, err := DecodeMeta(append(b, 0)); !errors.Is(err, ErrMeta) {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(Meta{NodeID: 1, Boot: 2, ClientAddr: "a:1", PeerAddr: "b:2", MapVersion: 3}.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if again, err := DecodeMeta(m.AppendBinary(nil)); err != nil || again != m {
			t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
		}
	})
}

// sharedText is a State for tests: a set of words, merged by union.
type sharedText struct {
	mu    sync.Mutex
	words map[string]bool
}

func (s *sharedText) Local() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var w []string
	for k := range s.words {
		w = append(w, k)
	}
	slices.Sort(w)
	return []byte(strings.Join(w, " "))
}

func (s *sharedText) Merge(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range strings.Fields(string(b)) {
		s.words[w] = true
	}
}

func (s *sharedText) has(w string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.words[w]
}

func start(t testing.TB, id uint8, join []string, st State) *Membership {
	t.Helper()
	m, err := Start(Config{
		Meta:     Meta{NodeID: id, ClientAddr: fmt.Sprintf("127.0.0.1:%d", 7000+int(id))},
		BindAddr: "127.0.0.1:0",
		Join:     join,
		State:    st,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls cond every 10 ms until it holds, failing after limit (a
// bound against a hang: the conditions hold within seconds).
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(begin)
}

// downSeen returns a condition that drains m's events and reports once a
// Down for node id has come.
func downSeen(m *Membership, id uint8) func() bool {
	seen := false
	return func() bool {
		for _, e := range m.Events() {
			if e.Kind == Down && e.Meta.NodeID == id {
				seen = true
			}
		}
		return seen
	}
}

// TestClusterOverLoopback: three members over loopback see each other
// with their metadata, share gossiped state (push-pull and broadcast), see
// a crashed member go Down, and see it come back Up under a new name (a
// new boot) with the same node id; a member that leaves is Down at once.
func TestClusterOverLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip over loopback")
	}
	st := []*sharedText{{words: map[string]bool{"a": true}}, {words: map[string]bool{"b": true}}, {words: map[string]bool{}}}
	m1 := start(t, 1, nil, st[0])
	defer m1.Shutdown()
	m2 := start(t, 2, []string{m1.Addr()}, st[1])
	defer m2.Shutdown()
	m3 := start(t, 3, []string{m1.Addr()}, st[2])
	const limit = time.Minute
	waitFor(t, limit, "three members", func() bool { return len(m1.Members()) == 3 && len(m2.Members()) == 3 && len(m3.Members()) == 3 })
	for _, e := range m2.Members() {
		if want := fmt.Sprintf("127.0.0.1:%d", 7000+int(e.Meta.NodeID)); e.Meta.ClientAddr != want {
			t.Errorf("member %s: client address %q, want %q", e.Name, e.Meta.ClientAddr, want)
		}
	}
	// Joining pushed and pulled state; a broadcast spreads a change.
	waitFor(t, limit, "state merged on join", func() bool { return st[2].has("a") && st[0].has("b") })
	m3.Broadcast([]byte("c"))
	waitFor(t, limit, "a broadcast", func() bool { return st[0].has("c") && st[1].has("c") })

	// A crash (no leave): the others declare it dead.
	m1.Events()
	m2.Events()
	m3.Shutdown()
	took := waitFor(t, limit, "crashed member declared down", downSeen(m1, 3))
	t.Logf("crash detected by node 1 after %v", took)
	waitFor(t, limit, "crashed member down on node 2", downSeen(m2, 3))

	// It restarts: a new boot, a new name, the same id.
	m3b := start(t, 3, []string{m2.Addr()}, &sharedText{words: map[string]bool{}})
	defer m3b.Shutdown()
	upAgain := func() bool {
		for _, e := range m1.Members() {
			if e.Meta.NodeID == 3 && e.Name == m3b.Name() {
				return true
			}
		}
		return false
	}
	waitFor(t, limit, "restarted member up", upAgain)
	if m3b.Name() == m3.Name() {
		t.Error("a restarted member reused its name")
	}

	// A leave is seen at once, not after a failure detection.
	m1.Events()
	if err := m2.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, limit, "left member down", downSeen(m1, 2))
}
