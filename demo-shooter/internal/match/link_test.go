package match

import (
	"errors"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

func TestLink(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	st := func(frames uint64, creator uint32) netcode.Stats {
		return netcode.Stats{ClientStats: netcode.ClientStats{FramesIn: frames, Creator: creator, Connected: true}}
	}
	var l Link
	l.Observe(at(0), nil, st(10, 7))
	if got := l.State(at(500 * time.Millisecond)); got != LinkUp {
		t.Fatalf("fresh link: state %v, want up", got)
	}
	// Frames keep arriving: up; none for SilentAfter: silent.
	l.Observe(at(900*time.Millisecond), nil, st(11, 7))
	if got := l.State(at(900*time.Millisecond + SilentAfter - 1)); got != LinkUp {
		t.Errorf("heard %v ago: state %v, want up", SilentAfter-1, got)
	}
	if got := l.State(at(900*time.Millisecond + SilentAfter)); got != LinkSilent {
		t.Errorf("nothing heard for %v: state %v, want silent", SilentAfter, got)
	}
	// The session ends.
	lost, back := l.Observe(at(5*time.Second), []netcode.Event{{Kind: netcode.EventDisconnected, Err: errors.New("idle")}}, st(11, 7))
	if !lost || back || l.State(at(5*time.Second)) != LinkLost || l.Why != "idle" || l.Losses != 1 {
		t.Fatalf("after a disconnect: lost %v back %v state %v why %q losses %d", lost, back, l.State(at(5*time.Second)), l.Why, l.Losses)
	}
	// A second disconnect event while lost (a failed redial) changes nothing.
	if lost, _ := l.Observe(at(6*time.Second), []netcode.Event{{Kind: netcode.EventDisconnected}}, st(11, 7)); lost || l.Losses != 1 {
		t.Errorf("second disconnect while lost: lost %v losses %d", lost, l.Losses)
	}
	// Welcomed again under the same creator.
	_, back = l.Observe(at(8*time.Second), []netcode.Event{{Kind: netcode.EventConnected}}, st(12, 7))
	if !back || l.State(at(8*time.Second)) != LinkRecovered || l.Again() != "as creator 7, as before" {
		t.Fatalf("after the reconnection: back %v state %v again %q", back, l.State(at(8*time.Second)), l.Again())
	}
	l.Observe(at(8*time.Second+RecoveredFor), nil, st(13, 7))
	if got := l.State(at(8*time.Second + RecoveredFor)); got != LinkUp {
		t.Errorf("%v after the reconnection: state %v, want up", RecoveredFor, got)
	}
	// Lost again, back as another creator.
	l.Observe(at(20*time.Second), []netcode.Event{{Kind: netcode.EventDisconnected}}, st(13, 7))
	l.Observe(at(21*time.Second), []netcode.Event{{Kind: netcode.EventConnected}}, st(14, 9))
	if l.Again() != "as creator 9, a new player (was 7)" || l.Losses != 2 {
		t.Errorf("new creator: again %q losses %d", l.Again(), l.Losses)
	}
}

func TestLagCut(t *testing.T) {
	mobile, _ := lagsim.Preset("mobile")
	l, err := NewLag("127.0.0.1:0", mobile, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	loss := func(c any) float64 {
		out, in := c.(*lagConn).Conn.Profile()
		if out.Loss != in.Loss {
			t.Fatalf("loss %v out, %v in", out.Loss, in.Loss)
		}
		return out.Loss
	}
	if err := l.SetCut(true); err != nil {
		t.Fatal(err)
	}
	b, err := l.PacketConn() // made while cut
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !l.Cut() || loss(a) != 1 || loss(b) != 1 {
		t.Errorf("cut: Cut %v, loss %v and %v, want every packet lost", l.Cut(), loss(a), loss(b))
	}
	if l.Profile().Name != "mobile" {
		t.Errorf("cut: profile in force %q, want mobile", l.Profile().Name)
	}
	// A profile switch while cut takes effect when the cut ends.
	awful, _ := lagsim.Preset("awful")
	if err := l.Set(awful); err != nil {
		t.Fatal(err)
	}
	if loss(a) != 1 {
		t.Errorf("a profile switch restored the cut link (loss %v)", loss(a))
	}
	if err := l.SetCut(false); err != nil {
		t.Fatal(err)
	}
	if l.Cut() || loss(a) != awful.Loss || loss(b) != awful.Loss {
		t.Errorf("restored: Cut %v, loss %v and %v, want awful's %v", l.Cut(), loss(a), loss(b), awful.Loss)
	}
}
