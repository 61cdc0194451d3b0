package sim_test

import (
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// clusterNodes makes the authorities of a clustered run: node id of n,
// sharing the cluster key and the resume key.
func clusterNodes(t testing.TB, n int, watch ...string) func(id uint8) sim.Server {
	reg := sim.Registry()
	return func(id uint8) sim.Server {
		cfg := authority.DefaultConfig(reg)
		cfg.NodeID = id
		cfg.ResumeKey = []byte("a resume key shared by the cluster")
		cfg.Cluster = authority.ClusterConfig{Key: []byte("a cluster key of sixteen bytes+"), Size: n, Watch: watch}
		node, err := authority.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return sim.NodeServer(node)
	}
}

func newCluster(t testing.TB, cfg sim.Config, n int) *sim.Sim {
	t.Helper()
	s, err := sim.NewCluster(cfg, n, clusterNodes(t, n), sim.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clusterConfig draws a clustered run from the seed: 3 authorities, any
// client profile, 3 to 7 clients, a busy active phase with a crash and a
// partition.
func clusterConfig(seed uint64) sim.Config {
	cfg := propertyConfig(seed)
	cfg.Clients = 3 + int(seed%5)
	cfg.Active = 8 * time.Second
	cfg.Quiet = 6 * time.Second
	cfg.Cluster = sim.DefaultClusterConfig()
	cfg.Cluster.Crashes = 1
	cfg.Cluster.Partitions = 1
	// The lock invariant is checked on every node every 32 steps and at
	// the end: a check after every step of three nodes would dominate.
	cfg.VerifyEvery = 32
	return cfg
}

// TestClusterNoFaults: three authorities replicate each other; every
// client, whichever node it plays on, converges, and the nodes agree.
func TestClusterNoFaults(t *testing.T) {
	cfg := propertyConfig(3)
	cfg.Profile, _ = lagsim.Preset("broadband")
	cfg.Clients = 6
	cfg.Cluster = sim.DefaultClusterConfig()
	s := newCluster(t, cfg, 3)
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", s.Report())
}

// TestClusterProperties: with a node crash (and restart) and a node cut
// off from the others in every run, after the faults heal every node
// holds the same valid values, no confirmed call is lost or applied twice,
// every client converges, and the lock invariant holds on every node.
//
// make test runs 500 seeds without the race detector (20 with it, which
// slows the simulator several times); make fuzz runs 2,000.
func TestClusterProperties(t *testing.T) {
	n := seedCount(500)
	if raceEnabled && *seeds == 0 {
		n = min(n, 20)
	}
	for i := range n {
		seed := *first + uint64(i)
		cfg := clusterConfig(seed)
		s := newCluster(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v (rerun: go test ./authority/sim -run TestClusterProperties -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, seed)
		}
	}
}
