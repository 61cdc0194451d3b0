package sim_test

import (
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// newSharded prepares a sharded run of n authorities, each watching from
// the start what the clients watch (their clients' watches are then
// served from what the node holds already).
func newSharded(t testing.TB, cfg sim.Config, n int) *sim.Sim {
	t.Helper()
	s, err := sim.NewCluster(cfg, n, clusterNodes(t, n, sim.PlayersPrefix, sim.CountersPrefix, sim.SeenPrefix, "events/"), sim.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// shardedConfig draws a sharded run from the seed: 3 authorities, each of
// players/, counters/ and seen/ split into 3 ranges of 2 owners, a
// workload that also reads across ranges (look), any client profile.
func shardedConfig(seed uint64) sim.Config {
	cfg := clusterConfig(seed)
	cfg.Cluster.Ranges = 3
	cfg.Cluster.Replicas = 2
	cfg.Workload.Looks = 1
	return cfg
}

// TestShardedNoFaults: three authorities own different ranges; calls run
// on an owner of their shard key, relayed by the client's node; every
// client converges and the nodes agree on every path they both hold.
func TestShardedNoFaults(t *testing.T) {
	cfg := propertyConfig(3)
	cfg.Profile, _ = lagsim.Preset("broadband")
	cfg.Clients = 6
	cfg.Active = 8 * time.Second
	cfg.Cluster = sim.DefaultClusterConfig()
	cfg.Cluster.Ranges = 3
	cfg.Cluster.Replicas = 2
	cfg.Workload.Looks = 1
	s := newSharded(t, cfg, 3)
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	t.Logf("%+v", r)
	// Calls were relayed to other nodes, looks read ranges other nodes
	// own, and no run touched a range its node did not hold.
	if r.Forwarded == 0 || r.CrossRangeCalls == 0 || r.RunsOutside != 0 || r.Confirmed != r.Calls {
		t.Fatalf("forwarded %d, cross-range calls %d, runs outside %d, confirmed %d of %d: want >0, >0, 0, all",
			r.Forwarded, r.CrossRangeCalls, r.RunsOutside, r.Confirmed, r.Calls)
	}
}

// TestShardedProperties: sharded over three authorities (3 ranges of 2
// owners per prefix), with a node crash (and restart) and a node cut off
// in every run: after the faults heal, the nodes agree on every path they
// both hold, no confirmed call is lost or applied twice, every client
// converges (seen/ included: values written from a read of another
// range), and the lock invariant holds on every node.
//
// make test runs 200 seeds without the race detector (10 with it).
func TestShardedProperties(t *testing.T) {
	n := seedCount(200)
	if raceEnabled && *seeds == 0 {
		n = min(n, 10)
	}
	for i := range n {
		seed := *first + uint64(i)
		cfg := shardedConfig(seed)
		s := newSharded(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v\n%s(rerun: go test ./authority/sim -run TestShardedProperties -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, s.Faults(), seed)
		}
	}
}

// TestShardedDeterminism runs sharded seeds twice: the trace hash and
// the report must be identical.
func TestShardedDeterminism(t *testing.T) {
	n := seedCount(10)
	for i := range n {
		seed := *first + uint64(i)
		var reps [2]sim.Report
		for k := range reps {
			s := newSharded(t, shardedConfig(seed), 3)
			if err := s.Run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			reps[k] = s.Report()
		}
		if reps[0] != reps[1] {
			t.Fatalf("seed %d: two runs differ:\n%+v\n%+v", seed, reps[0], reps[1])
		}
	}
}

// TestShardedMoves: the sharded runs of TestShardedProperties with two
// live range moves each (a new owner joins a range, the old primary
// leaves it a second later, each map change reaching the nodes up to
// 50 ms apart) on top of the crash and the partition: the same
// properties hold, so no confirmed call is lost or run twice across a
// move.
//
// make test runs 100 seeds without the race detector (5 with it).
func TestShardedMoves(t *testing.T) {
	n := seedCount(100)
	if raceEnabled && *seeds == 0 {
		n = min(n, 5)
	}
	for i := range n {
		seed := *first + uint64(i)
		cfg := shardedConfig(seed)
		cfg.Cluster.Moves = 2
		s := newSharded(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v\n%s(rerun: go test ./authority/sim -run TestShardedMoves -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, s.Faults(), seed)
		}
	}
}

// TestShardedConfirmLatency measures, in virtual time, what relaying
// costs: the same runs (broadband clients, 1 ms links between three
// authorities, no faults) with every node owning every range (calls run
// where they arrive) and with three ranges of two owners (most calls
// relayed to an owner), logging each's confirmation latency. It checks
// only that both runs hold their properties; the figures are in
// docs/BENCHMARKS.md.
func TestShardedConfirmLatency(t *testing.T) {
	for _, replicas := range []int{3, 2} {
		cfg := propertyConfig(3)
		cfg.Profile, _ = lagsim.Preset("broadband")
		cfg.Clients = 6
		cfg.Active = 8 * time.Second
		cfg.Cluster = sim.DefaultClusterConfig()
		cfg.Cluster.Ranges = 3
		cfg.Cluster.Replicas = replicas
		cfg.Workload.Looks = 1
		s := newSharded(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		r := s.Report()
		t.Logf("owners per range %d: %d calls, %d forwarded, confirm p50 %v p99 %v (RTT %v)", replicas, r.Calls, r.Forwarded, r.ConfirmP50, r.ConfirmP99, r.RTT)
	}
}
