package sim_test

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

var (
	seeds = flag.Int("sim.seeds", 0, "seeds per property test (0: the default for the mode)")
	first = flag.Uint64("sim.seed", 1, "first seed of the property tests")
)

// newSim builds a run of cfg against a real authority node.
func newSim(t testing.TB, cfg sim.Config) *sim.Sim {
	t.Helper()
	reg := sim.Registry()
	node, err := authority.NewNode(authority.DefaultConfig(reg))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(cfg, sim.NodeServer(node), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedCount is how many seeds a property test runs: def, or a fifth of it
// with -short, or what -sim.seeds says when set.
func seedCount(def int) int {
	switch {
	case *seeds > 0:
		return *seeds
	case testing.Short():
		return max(1, def/5)
	}
	return def
}

// verifyEvery is how often the property runs check the lock invariant:
// after every server step, or every 8th under the race detector, where
// the from-scratch check would dominate the suite's time.
func verifyEvery() int {
	if raceEnabled {
		return 8
	}
	return 1
}

var profiles = []string{"lan", "broadband", "wifi", "mobile", "awful"}

// propertyConfig draws a small, hostile run from the seed: any profile,
// 2 to 6 clients, a short busy active phase, the lock invariant checked
// after every server step.
func propertyConfig(seed uint64) sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Profile, _ = lagsim.Preset(profiles[seed%uint64(len(profiles))])
	cfg.Clients = 2 + int(seed/uint64(len(profiles))%5)
	cfg.Warmup = 2 * time.Second
	cfg.Active = 3 * time.Second
	cfg.Quiet = 4 * time.Second
	cfg.VerifyEvery = verifyEvery()
	cfg.Workload = sim.Workload{KeyChanges: 6, Bumps: 4, Shoves: 2, Counters: 2, WatchEvents: true}
	cfg.StrictEvents = true
	return cfg
}

func TestProperties(t *testing.T) {
	n := seedCount(200)
	for i := range n {
		seed := *first + uint64(i)
		cfg := propertyConfig(seed)
		s := newSim(t, cfg)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v (rerun: go test ./authority/sim -run TestProperties -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, seed)
		}
	}
}

// TestDeterminism runs each seed twice: the trace hash and the report
// must be identical.
func TestDeterminism(t *testing.T) {
	n := seedCount(25)
	for i := range n {
		seed := *first + uint64(i)
		cfg := propertyConfig(seed)
		cfg.Reconnects = 0.2
		var hashes [2]uint64
		var reports [2]sim.Report
		for k := range 2 {
			s := newSim(t, cfg)
			s.RunUntil(s.End())
			hashes[k], reports[k] = s.TraceHash(), s.Report()
		}
		if hashes[0] != hashes[1] {
			t.Fatalf("seed %d: trace hash %x then %x", seed, hashes[0], hashes[1])
		}
		if d := cmp.Diff(reports[0], reports[1]); d != "" {
			t.Fatalf("seed %d: reports differ (-first +second):\n%s", seed, d)
		}
	}
	// Different seeds must give different runs, or the hash proves nothing.
	a, b := newSim(t, propertyConfig(1)), newSim(t, propertyConfig(1+uint64(len(profiles))))
	a.RunUntil(a.End())
	b.RunUntil(b.End())
	if a.TraceHash() == b.TraceHash() {
		t.Fatalf("seeds 1 and %d share trace hash %x", 1+len(profiles), a.TraceHash())
	}
}

// TestReconnects drops sessions during play: every client reconnects on a
// new session and the views still converge.
func TestReconnects(t *testing.T) {
	n := seedCount(50)
	for i := range n {
		seed := *first + uint64(i)
		cfg := propertyConfig(seed)
		cfg.Reconnects = 0.3
		s := newSim(t, cfg)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients, reconnects): %v", seed, cfg.Profile.Name, cfg.Clients, err)
		}
	}
}

// FuzzSim runs the properties for seeds the fuzzer picks.
func FuzzSim(f *testing.F) {
	f.Add(uint64(1))
	f.Add(uint64(149))
	f.Fuzz(func(t *testing.T, seed uint64) {
		cfg := propertyConfig(seed)
		cfg.Reconnects = float64(seed%3) * 0.2
		if err := newSim(t, cfg).Run(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	})
}

// liar wraps a server and misreports it, to show the checks can fail.
type liar struct {
	sim.Server
	verify error
	value  bool
}

func (l liar) Verify() error {
	if l.verify != nil {
		return l.verify
	}
	return l.Server.Verify()
}

func (l liar) Latest(prefix string, fn func(string, []byte)) {
	l.Server.Latest(prefix, func(p string, v []byte) {
		if l.value && strings.HasPrefix(p, sim.CountersPrefix) {
			v = append([]byte{1}, v...)
		}
		fn(p, v)
	})
}

func TestChecksCanFail(t *testing.T) {
	broken := errors.New("broken lock")
	for _, tc := range []struct {
		name string
		l    liar
		want string
	}{
		{"lock invariant", liar{verify: broken}, "lock invariant"},
		{"convergence", liar{value: true}, "not converged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := sim.Registry()
			node, err := authority.NewNode(authority.DefaultConfig(reg))
			if err != nil {
				t.Fatal(err)
			}
			tc.l.Server = sim.NodeServer(node)
			s, err := sim.New(propertyConfig(2), tc.l, reg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Run()
			if !errors.Is(err, sim.ErrProperty) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "seed 2") {
				t.Fatalf("got %v, want a property error naming %q and the seed", err, tc.want)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*sim.Config)
	}{
		{"no clients", func(c *sim.Config) { c.Clients = 0 }},
		{"too many clients", func(c *sim.Config) { c.Clients = sim.MaxClients + 1 }},
		{"total loss", func(c *sim.Config) { c.Profile.Loss = 1 }},
		{"bad profile", func(c *sim.Config) { c.Profile.Jitter = -1 }},
		{"zero frame", func(c *sim.Config) { c.Frame = 0 }},
		{"too long", func(c *sim.Config) { c.Active = 2 * sim.MaxGameTime }},
		{"bad rate", func(c *sim.Config) { c.Workload.Bumps = -1 }},
		{"no counters", func(c *sim.Config) { c.Workload.Counters = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.DefaultConfig()
			tc.mod(&cfg)
			reg := sim.Registry()
			node, err := authority.NewNode(authority.DefaultConfig(reg))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sim.New(cfg, sim.NodeServer(node), reg); !errors.Is(err, sim.ErrBadConfig) {
				t.Fatalf("got %v, want ErrBadConfig", err)
			}
		})
	}
}

// TestClockSyncsOnAwfulLink is a regression test: on the awful profile
// (600 ms round trip, 5 % loss, so head-of-line blocking pushes replies
// past a second) a client core once never synced its clock with the
// timesync defaults: it sent a request every frame until the first sync,
// the clock remembered only the 64 newest, and every reply answered one it
// had already forgotten.
func TestClockSyncsOnAwfulLink(t *testing.T) {
	cfg := propertyConfig(4) // awful, 2 clients
	cfg.Clock = sim.DefaultConfig().Clock
	if err := newSim(t, cfg).Run(); err != nil {
		t.Fatal(err)
	}
}

// TestEventsOnceWhenLate is a regression test: the core once forgot a
// delivered event 2 × MaxChangeAge + 1 s after the event's time, which was
// also the call timeout, so an answer arriving just after its call timed
// out delivered the call's event to the game a second time.
func TestEventsOnceWhenLate(t *testing.T) {
	cfg := propertyConfig(149) // awful, 6 clients
	cfg.StrictEvents = true
	if err := newSim(t, cfg).Run(); err != nil {
		t.Fatal(err)
	}
}

// TestQualityReport prints the report for each preset with 32 clients.
func TestQualityReport(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("quality report: 3 × 32 clients × 40 s of game time (not with -short or -race)")
	}
	for _, name := range []string{"broadband", "mobile", "awful"} {
		cfg := qualityConfig(name)
		s := newSim(t, cfg)
		err := s.Run()
		r := s.Report()
		t.Logf("%s", formatReport(r))
		if err != nil {
			t.Fatal(err)
		}
		if r.Confirmed == 0 {
			t.Fatalf("%s: nothing confirmed", name)
		}
	}
}

// qualityConfig is the run of the quality report: 32 clients, 30 s of
// play with the default workload.
func qualityConfig(profile string) sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Profile, _ = lagsim.Preset(profile)
	cfg.Clients = 32
	cfg.Active = 30 * time.Second
	cfg.VerifyEvery = 256
	cfg.StrictEvents = true
	return cfg
}

func formatReport(r sim.Report) string {
	return fmt.Sprintf("%s clients=%d rtt=%v calls=%d confirmed=%d failed=%d (timeouts %d) mispredict=%.2f%% "+
		"correction p50=%.3f p99=%.3f units (n=%d) reruns/call server=%.4f client=%.3f budget_skips=%d "+
		"bytes/client/s up=%.0f down=%.0f confirm-rtt p50=%v p99=%v late_dup_events=%d trace=%016x",
		r.Profile, r.Clients, r.RTT, r.Calls, r.Confirmed, r.Failed, r.Timeouts, 100*r.MispredictionRate,
		r.CorrectionP50, r.CorrectionP99, r.Corrections, r.ServerRerunsPerCall, r.ClientRerunsPerCall, r.BudgetSkips,
		r.UpBytesPerClientSec, r.DownBytesPerClientSec, r.ConfirmP50, r.ConfirmP99, r.LateDuplicates, r.TraceHash)
}

// TestSimSpeed runs exactly 100 clients × 60 s of game time.
func TestSimSpeed(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("speed test: 100 clients × 60 s of game time (not with -short or -race)")
	}
	cfg := sim.DefaultConfig()
	cfg.Clients = 100
	cfg.Warmup = 2 * time.Second
	cfg.Active = 56 * time.Second
	cfg.Quiet = 2 * time.Second
	cfg.VerifyEvery = 0
	s := newSim(t, cfg)
	begin := time.Now()
	err := s.Run()
	wall := time.Since(begin)
	t.Logf("sim: clients=%d game_s=%d wall_s=%.2f", cfg.Clients, int((cfg.Warmup+cfg.Active+cfg.Quiet)/time.Second), wall.Seconds())
	if err != nil {
		t.Fatal(err)
	}
}
