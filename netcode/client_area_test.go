package netcode_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// TestClientCoreWatchNear: client 0 watches the players within 100 of
// itself. Client 1 starts near (it enters: its values and EventEnter),
// moves away (EventLeave: its values are dropped from the view) and comes
// back (it enters again); client 2 stays far and is never seen.
func TestClientCoreWatchNear(t *testing.T) {
	clocks = nil
	w := newWorld(t, 5*time.Millisecond, 5*time.Millisecond, 5*time.Millisecond)
	w.run(2 * time.Second) // sync the clocks
	place := func(i int, x uint64) {
		t.Helper()
		if _, err := w.clients[i].core.Call("place", binary.LittleEndian.AppendUint64(nil, x)); err != nil {
			t.Fatal(err)
		}
	}
	me, near, far := w.clients[0], w.clients[1], w.clients[2]
	place(0, 1000)
	place(1, 1050)
	place(2, 5000)
	w.run(300 * time.Millisecond)
	self := fmt.Sprintf("players/%d/", me.core.Creator())
	other := fmt.Sprintf("players/%d/", near.core.Creator())
	farPath := fmt.Sprintf("players/%d/pos", far.core.Creator())
	if err := me.core.WatchNear("players/", self, 100); err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration) { w.run(d) }
	has := func(kind netcode.EventKind, path string) bool {
		for _, e := range me.evs {
			if e.Kind == kind && e.Path == path {
				return true
			}
		}
		return false
	}
	me.evs = nil
	step(300 * time.Millisecond)
	if !has(netcode.EventEnter, other) || !me.core.WatchReady("players/") {
		t.Fatalf("the near player did not enter (events %v)", me.evs)
	}
	if _, ok := me.core.Read(other + "pos"); !ok {
		t.Fatal("the near player's position is not in the view")
	}
	if _, ok := me.core.Read(farPath); ok {
		t.Fatal("the far player's position reached the view")
	}

	me.evs = nil
	place(1, 3000)
	step(400 * time.Millisecond)
	if !has(netcode.EventLeave, other) {
		t.Fatalf("the player that moved away did not leave (events %v)", me.evs)
	}
	if _, ok := me.core.Read(other + "pos"); ok {
		t.Fatal("a player that left is still in the view")
	}

	me.evs = nil
	place(1, 990)
	step(400 * time.Millisecond)
	if !has(netcode.EventEnter, other) {
		t.Fatalf("the player that came back did not enter again (events %v)", me.evs)
	}
	if v, ok := me.core.Read(other + "pos"); !ok || binary.LittleEndian.Uint64(v) != 990 {
		t.Fatalf("the player that came back reads %v, %v", v, ok)
	}
	if _, ok := me.core.Read(farPath); ok {
		t.Fatal("the far player's position reached the view")
	}
}
