package sim_test

import (
	"testing"
	"time"
)

// Seed 269 (TestProperties) fails the final
// checks under the awful profile (300 ± 100 ms, 5 % loss) although the
// node and the client cores behave as specified: one packet of
// a client's down link is lost several times in a row, and the reliable,
// ordered link holds every later frame behind it for two to three
// seconds. The test below pins that explanation, so that it fails if the
// seed starts failing for another reason.

// Seed 1609 (TestReconnects) used to stall the same way: client 2's
// renewed watch snapshot waited on its down link behind a frame that
// arrived 0.3 s after the run's end. Since quiet clients send their
// time-sync requests alone only every timesync IdleInterval, its trace
// differs and the frame is no longer held back; TestSeedRegressions still
// runs it through the full checks.

// TestSeed269SyncedTooLate: client 4 is welcomed at +1.14 s. Under this
// jitter the estimate never reaches timesync's SyncPrecision (1 ms), so
// the first sync waits for Warmup (64) samples; the clock has 13 when a
// frame the node sends at +1.825 s loses one packet four times in a row
// and holds the down link until +5.06 s. The clock first syncs then,
// after the active phase (+2 s to +5 s). The simulator plays only synced
// clients: client 4 made no call at all, so none could be confirmed.
// Nothing was rejected.
func TestSeed269SyncedTooLate(t *testing.T) {
	cfg := propertyConfig(269)
	s := newSim(t, cfg)
	core := s.Clients()[4]
	activeStart := s.End() - int64(cfg.Quiet+cfg.Active)
	activeEnd := s.End() - int64(cfg.Quiet)
	for at := activeStart; at <= activeEnd; at += int64(cfg.Frame) {
		if err := s.RunUntil(at); err != nil {
			t.Fatalf("failed during the active phase: %v", err)
		}
		if core.Clock().Synced() {
			t.Fatalf("client 4 synced at +%v of the active phase: the stall explanation no longer holds", time.Duration(at-activeStart))
		}
	}
	if err := s.RunUntil(s.End()); err != nil {
		t.Fatal(err)
	}
	if !core.Clock().Synced() {
		t.Fatal("client 4 never synced")
	}
	if st := core.Stats(); st.Calls != 0 || st.Failed != 0 {
		t.Fatalf("client 4 made %d calls (%d failed), want none", st.Calls, st.Failed)
	}
	for i, c := range s.Clients() {
		if i != 4 && c.Stats().Confirmed == 0 {
			t.Errorf("client %d: no call confirmed", i)
		}
	}
	// The liveness check expects a confirmed call only of a client that
	// played (connected and synced in the active phase) for a second.
	if err := s.Check(); err != nil {
		t.Fatalf("Check = %v, want nil: client 4 never played", err)
	}
}

// TestSeedRegressions runs the two seeds through the full checks, which
// are phrased for links that stall: they run once the frames in flight at
// the end of the quiet phase have arrived (bounded), and "no call
// confirmed" applies only to a client that was connected and synced for at
// least a second of the active phase.
func TestSeedRegressions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seed       uint64
		reconnects float64
	}{
		{"reconnects/1609", 1609, 0.3},
		{"properties/269", 269, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := propertyConfig(tc.seed)
			cfg.Reconnects = tc.reconnects
			if err := newSim(t, cfg).Run(); err != nil {
				t.Fatalf("seed %d: %v", tc.seed, err)
			}
		})
	}
}
