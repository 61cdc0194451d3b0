package netcode_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// withNode replaces the world's node by one with cfg (before any frame
// reached the old one) and connects the clients to it.
func (w *world) withNode(cfg authority.Config) {
	n, err := authority.NewNode(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.node = n
	for _, c := range w.clients {
		if c.id, err = n.Connect(w.now, "c"); err != nil {
			w.t.Fatal(err)
		}
	}
}

var errLost = errors.New("session lost")

// lose drops c's session with whatever is in flight either way and
// reconnects it on a new one. nodeNoticed says whether the node learns
// that the old session is gone before the new Hello arrives.
func (w *world) lose(c *tclient, nodeNoticed bool) {
	c.up, c.down = nil, nil
	if nodeNoticed {
		w.node.Disconnect(w.now, c.id)
	}
	c.core.Disconnected(errLost)
	var err error
	if c.id, err = w.node.Connect(w.now, "c"); err != nil {
		w.t.Fatal(err)
	}
	if err := c.core.Connect(); err != nil {
		w.t.Fatal(err)
	}
}

// TestClientCoreResume: a session is lost while a call is in flight,
// either after the authority ran it (its result is lost) or before the
// call reached it. With resuming, the reconnected client keeps its
// creator, the call runs exactly once, its result arrives, and its
// emitted event reaches the game once. Without resuming, the client gets a
// new creator and re-sends the call under a new id: a call that never
// reached the authority still runs once.
func TestClientCoreResume(t *testing.T) {
	key := []byte("client resume test key, 32 bytes")
	tests := []struct {
		name        string
		key         []byte
		ranFirst    bool // the authority ran the call before the session was lost
		nodeNoticed bool
	}{
		{"result lost, old session still open", key, true, false},
		{"result lost, old session closed", key, true, true},
		{"call lost", key, false, false},
		{"call lost, no resuming", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clocks = nil
			const delay = 20 * time.Millisecond
			w := newWorld(t, delay)
			cfg := authority.DefaultConfig(counterReg())
			cfg.ResumeKey = tt.key
			w.withNode(cfg)
			a := w.clients[0]
			w.run(2 * time.Second)
			a.core.Watch("total", wire.WatchLatest, 0)
			a.core.Watch("events/", wire.WatchLatest, 0)
			w.run(200 * time.Millisecond)
			creator := a.core.Creator()
			a.evs = nil

			id, err := a.core.Call("add", u64(5))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ranFirst {
				// The call reaches the node after one delay; its result
				// would reach the client after another.
				w.run(delay + 5*time.Millisecond)
				if got := w.node.Stats().Calls; got != 1 {
					t.Fatalf("the node ran %d calls before the loss, want 1", got)
				}
				if st := a.core.Stats(); st.Pending != 1 || st.Confirmed != 0 {
					t.Fatalf("the result arrived before the loss: %+v", st)
				}
			}
			w.lose(a, tt.nodeNoticed)
			w.run(time.Second)

			st, ns := a.core.Stats(), w.node.Stats()
			if !st.Connected {
				t.Fatal("not reconnected")
			}
			resumed := tt.key != nil
			if got := a.core.Creator() == creator; got != resumed {
				t.Errorf("kept creator %d: %v, want %v (now %d)", creator, got, resumed, a.core.Creator())
			}
			if resumed && ns.Resumes != 1 {
				t.Errorf("node resumed %d sessions, want 1", ns.Resumes)
			}
			if ns.Calls != 1 {
				t.Errorf("the node ran the call %d times, want once", ns.Calls)
			}
			if v, _ := a.core.Read("total"); total(v) != 5 {
				t.Errorf("client reads total %d, want 5", total(v))
			}
			if st.Confirmed != 1 || st.Pending != 0 || st.Failed != 0 {
				t.Errorf("client stats after the loss: %+v", st)
			}
			results, emitted := 0, 0
			for _, e := range a.evs {
				switch e.Kind {
				case netcode.EventResult:
					if e.Call != id || e.Err != nil {
						t.Errorf("result for %v: %v (want %v, ok)", e.Call, e.Err, id)
					}
					results++
				case netcode.EventEmitted:
					if e.Path == "events/add" {
						emitted++
					}
				}
			}
			if results != 1 || emitted != 1 {
				t.Errorf("the game got %d results and %d emitted events, want 1 and 1; events %v", results, emitted, a.evs)
			}
			if err := w.node.Store().Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
