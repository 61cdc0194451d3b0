package hostile

import (
	"testing"
	"time"
)

// TestStallKeepsHelloInTime: a player connects, and the node goroutine
// stalls for 8 s (longer than the Hello timeout) just as its Hello arrives.
// When the node resumes, the Hello that arrived in time is handled before
// the tick that would otherwise find the session late, so the player is
// welcomed, not closed for a Hello it sent in time.
func TestStallKeepsHelloInTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Honest = 2
	cfg.World = 0
	cfg.Attack = 10 * time.Second
	joiner := &Attack{Name: "stall-at-join", NoLatencyBar: true, Start: func(r *Run) {
		c := r.newClient("joiner", false)
		c.Connect(true)
		// The connect reaches the node one link delay later; the stall
		// begins right after the node handled it.
		r.At(r.Now()+int64(cfg.Delay)+int64(cfg.Jitter)+int64(time.Millisecond), func() { r.Stall(8 * time.Second) })
		r.joiner = c
	}}
	r, err := New(cfg, joiner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(); err != nil {
		t.Fatal(err)
	}
	if j := r.joiner; j.welcomedAt < 0 || j.closedAt >= 0 {
		t.Fatalf("the joiner: welcomed at %d, closed at %d (%s)", j.welcomedAt, j.closedAt, j.reason)
	}
}
