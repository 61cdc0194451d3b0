package sim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority/sim"
)

// Seeds 1609 (TestReconnects) and 269 (TestProperties) fail the final
// checks under the awful profile (300 ± 100 ms, 5 % loss) although the
// node and the client cores behave as specified: in both, one packet of
// a client's down link is lost several times in a row, and the reliable,
// ordered link holds every later frame behind it for two to three
// seconds. The tests below pin that explanation, so that they fail if a
// seed starts failing for another reason.

// TestSeed1609StalledSnapshot: client 2's session drops at +4.94 s and
// its new session is welcomed at +6.8 s; the node answers its renewed
// watch at +7.13 s, but that snapshot waits on the down link behind a
// frame sent at +6.73 s that arrives only at +9.29 s, after the run's end
// (+9 s). Once it arrives the views converge.
func TestSeed1609StalledSnapshot(t *testing.T) {
	cfg := propertyConfig(1609)
	cfg.Reconnects = 0.3
	s := newSim(t, cfg)
	if err := s.RunUntil(s.End()); err != nil {
		t.Fatalf("failed before the end: %v", err)
	}
	arrive := s.DownArrival(2)
	if arrive <= s.End() {
		t.Fatalf("client 2's down link has nothing in flight at the end (last arrival %v before it)", time.Duration(s.End()-arrive))
	}
	if err := s.Check(); !errors.Is(err, sim.ErrProperty) || !strings.Contains(err.Error(), "client 2: not converged") {
		t.Fatalf("Check at the end = %v, want client 2 not converged", err)
	}

	s = newSim(t, cfg)
	if err := s.RunUntil(arrive + int64(2*cfg.Frame)); err != nil {
		t.Fatalf("failed before the stalled frame arrived: %v", err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check once the stalled frame arrived: %v", err)
	}
}

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
