package sim_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/sim"
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
	s, err := sim.New(cfg, authority.SimServer(node), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedCount is how many seeds a property test runs: hundreds normally,
// fewer under the race detector or -short, what -sim.seeds says when set.
func seedCount() int {
	switch {
	case *seeds > 0:
		return *seeds
	case raceEnabled || testing.Short():
		return 40
	}
	return 200
}

// syncOutstanding lets a client's clock sync over links whose round trip,
// head-of-line blocking included, exceeds a second: with the timesync
// default (64) and a request every frame until the first sync, every
// reply on such a link answers a request already forgotten, and the
// clock never syncs (see TestClockSyncsOnAwfulLink).
const syncOutstanding = 512

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
	cfg.VerifyEvery = 1
	cfg.Workload = sim.Workload{KeyChanges: 6, Bumps: 4, Shoves: 2, Counters: 2, WatchEvents: true}
	cfg.Clock.MaxOutstanding = syncOutstanding
	return cfg
}

func TestProperties(t *testing.T) {
	n := seedCount()
	for i := range n {
		seed := *first + uint64(i)
		cfg := propertyConfig(seed)
		s := newSim(t, cfg)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v (rerun: go test ./netcode/sim -run TestProperties -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, seed)
		}
	}
}

func TestOneRun(t *testing.T) {
	cfg := propertyConfig(*first)
	s := newSim(t, cfg)
	err := s.Run()
	r := s.Report()
	t.Logf("%+v", r)
	if err != nil {
		t.Fatal(err)
	}
	_ = fmt.Sprint
	_ = cmp.Diff
}

func TestQualityReport(t *testing.T) {
	for _, name := range []string{"broadband", "mobile", "awful"} {
		cfg := sim.DefaultConfig()
		cfg.Profile, _ = lagsim.Preset(name)
		cfg.Clients = 32
		cfg.Active = 30 * time.Second
		cfg.VerifyEvery = 0
		s := newSim(t, cfg)
		err := s.Run()
		t.Logf("%+v", s.Report())
		if err != nil {
			t.Fatal(err)
		}
	}
}
