package game

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// botMatch plays n bots against one store for d of game time at 60 Hz
// and returns the trace hash, the shots that hit and the kills.
func botMatch(t *testing.T, seed uint64, n int, d time.Duration) (hash string, hits, kills, gravities int) {
	h := newHarness(t)
	bots := make([]*Bot, n)
	for i := range bots {
		bots[i] = NewBot(seed*1000 + uint64(i))
		bots[i].ViewDelay = 100 * time.Millisecond
	}
	frame := int64(time.Second / 60)
	for now := t0; now < t0+int64(d); now += frame {
		for i, b := range bots {
			me := uint32(i + 1)
			at := now + int64(i) // each bot its own write time
			for _, a := range b.Think(h, me, at) {
				err := h.call(me, at, b.ViewDelay, a.Name, a.Args)
				if err != nil {
					t.Fatalf("seed %d: bot %d %s at %d: %v", seed, me, a.Name, at, err)
				}
				if a.Name == FuncGravity {
					gravities++
				}
			}
		}
	}
	for _, s := range h.shots {
		if s.Target != 0 {
			hits++
		}
		if s.Killed {
			kills++
		}
	}
	return fmt.Sprintf("%x", sha256.Sum256(h.trace)), hits, kills, gravities
}

// TestBots: bots driving calls against a store hit, kill and use gravity,
// and a seed reproduces their game; their calls never fail (they respect
// the cooldowns and their own death).
func TestBots(t *testing.T) {
	const n, d = 8, 20 * time.Second
	for _, seed := range []uint64{1, 2} {
		a, hits, kills, grav := botMatch(t, seed, n, d)
		b, _, _, _ := botMatch(t, seed, n, d)
		if a != b {
			t.Fatalf("seed %d: two runs differ: %s %s", seed, a, b)
		}
		t.Logf("seed %d: %d hits, %d kills, %d gravity uses", seed, hits, kills, grav)
		if hits == 0 || kills == 0 || grav == 0 {
			t.Fatalf("seed %d: %d hits, %d kills, %d gravity uses: want some of each", seed, hits, kills, grav)
		}
	}
	if a, _, _, _ := botMatch(t, 1, n, 2*time.Second); a == func() string { s, _, _, _ := botMatch(t, 2, n, 2*time.Second); return s }() {
		t.Fatal("different seeds play the same game")
	}
}
