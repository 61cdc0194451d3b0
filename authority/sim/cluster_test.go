package sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// nodeConfig is the configuration of node id of a cluster of n in the
// tests: the cluster key and the resume key shared, watching watch.
func nodeConfig(reg *netcode.Registry, id uint8, n int, watch ...string) authority.Config {
	cfg := authority.DefaultConfig(reg)
	cfg.NodeID = id
	cfg.ResumeKey = []byte("a resume key shared by the cluster")
	cfg.Cluster = authority.ClusterConfig{Key: []byte("a cluster key of sixteen bytes+"), Size: n, Watch: watch}
	return cfg
}

// clusterNodes makes the authorities of a clustered run: node id of n,
// sharing the cluster key and the resume key.
func clusterNodes(t testing.TB, n int, watch ...string) func(id uint8) sim.Server {
	reg := sim.Registry()
	return func(id uint8) sim.Server {
		cfg := nodeConfig(reg, id, n, watch...)
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

// failoverNodes is clusterNodes with Limits.FailoverCalls set to calls.
func failoverNodes(t testing.TB, n, calls int) func(id uint8) sim.Server {
	reg := sim.Registry()
	return func(id uint8) sim.Server {
		cfg := nodeConfig(reg, id, n)
		cfg.Limits.FailoverCalls = calls
		node, err := authority.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return sim.NodeServer(node)
	}
}

// failoverConfig draws a run of TestFailoverCallsAccepted from the seed:
// three authorities on broadband, 6 clients, one crash.
func failoverConfig(seed uint64) sim.Config {
	cfg := propertyConfig(seed)
	cfg.Profile, _ = lagsim.Preset("broadband")
	cfg.Clients = 6
	cfg.Active = 8 * time.Second
	cfg.Quiet = 6 * time.Second
	cfg.Cluster = sim.DefaultClusterConfig()
	cfg.Cluster.Crashes = 1
	// As the demo's cluster match: membership declares the node down in
	// about 1.4 s, its clients notice in 1 s.
	cfg.Cluster.Detect, cfg.Cluster.ClientDetect = 1400*time.Millisecond, time.Second
	cfg.VerifyEvery = 32
	return cfg
}

// TestClusterSeedRegressions runs, through the full checks, the seeds that
// lost a confirmed bump once failover calls were accepted
// (Limits.FailoverCalls, on by default):
//
//   - TestClusterProperties seed 248: node 1 crashes and its calls are
//     taken over by node 2; a failover call of a resumed client, 2 s back,
//     then invalidated a taken-over bump, whose outputs had come from node
//     1's stream without the call's record: node 2 never re-ran it.
//   - TestFailoverCallsAccepted seed 110 (allowance 2): failover calls 1.6
//     s back under the bumps of two nodes' clients on one counter set off a
//     cascade crossing between the nodes, which re-ran the last bump once
//     per crossing until it was given up after 16 versions. Re-runs now
//     wait for a peer's (Stats.RerunsWaited): the run must wait at least
//     once and give nothing up.
//   - TestClusterProperties seed 1067 (lost on main before failover
//     calls too): node 1 restarts, node 2 is cut off before it hears so,
//     but node 1's new stream reached it, which marked node 1 up; once
//     node 2 declared node 3 down it still saw a quorum, with no stream
//     to wait for, and confirmed calls alone that were lost with it.
//     Only membership says a peer is up now.
//
// and the seeds that lost one once a node that regained its quorum kept
// its state unless a peer had taken it over:
//
//   - TestClusterProperties seed 219: node 2, cut off, re-ran two of its
//     bumps while cut off; back 1 ms after detection, it kept its state,
//     and the others' catch-ups, carrying the bumps' first versions,
//     stacked those after the re-runs' in its records, so the next re-run
//     reused a version that was already there, invalid. A peer's version
//     older than the record's latest is ignored now.
//   - TestClusterSplit seed 13: a node without a quorum dropped the
//     re-runs that fell due (a peer's late value invalidating its own
//     bumps); keeping its state at the heal, it never ran them again.
//     They wait until it serves again now.
//   - TestClusterSplit seed 69: a split of 4.3 s, longer than
//     MaxClosedLag: each node's finality passed the others' values from
//     the split's first moments, which their catch-ups then brought too
//     late, and the nodes diverged. A node without a quorum holds its
//     closed time and finality now (Node.lagNow).
//   - TestClusterRejoinRace seed 21: node 1 back before node 3 completed
//     its takeover (node 2 had), heard node 3 first (not yet completed)
//     and kept its state. A node giving a takeover up names the failed
//     node to it in HandedOver until it knows nobody completed it.
//   - TestClusterRejoinRace seed 24: one survivor completed a takeover the
//     other gave up, leaving the calls with two runners. One giving a
//     takeover up completes it when another says it did (TakenOver on the
//     acknowledgements).
//
// and the seeds that lost confirmed bumps with no fault at all, the links
// between authorities taking 80 ms (delayConfig), as the kill runs did at
// load 20-25: seeds 4, 9, 14, 24 and 29. A node's closed time moved with its
// clock alone, so a peer's values came below it and so did the re-runs of
// a cascade crossing between the nodes, one slow hop at a time: the calls
// they invalidated here were never re-run (Stats.RerunsTooLate), their
// confirmed outputs lost. The closed time now stays back by the streams'
// measured lag (Node.lagMargin) and below the calls that a peer is still
// to re-run (Node.peerDueBound), including a peer's call whose output
// arrives invalid here (seeds 9 and 24 lost one and two bumps without
// that).
func TestClusterSeedRegressions(t *testing.T) {
	for _, seed := range []uint64{219, 248, 1067} {
		t.Run(fmt.Sprintf("properties/%d", seed), func(t *testing.T) {
			cfg := clusterConfig(seed)
			if err := newCluster(t, cfg, 3).Run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
	}
	for _, seed := range []uint64{13, 69} {
		t.Run(fmt.Sprintf("split/%d", seed), func(t *testing.T) {
			if err := newCluster(t, splitConfig(seed), 3).Run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
	}
	for _, seed := range []uint64{21, 24} {
		t.Run(fmt.Sprintf("rejoin/%d", seed), func(t *testing.T) {
			if err := newCluster(t, rejoinConfig(seed), 3).Run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
	}
	for _, seed := range []uint64{4, 9, 14, 24, 29} {
		t.Run(fmt.Sprintf("delay/%d", seed), func(t *testing.T) {
			if err := newCluster(t, delayConfig(seed), 3).Run(); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
	}
	t.Run("failover/110", func(t *testing.T) {
		cfg := failoverConfig(110)
		s, err := sim.NewCluster(cfg, 3, failoverNodes(t, 3, 2), sim.Registry())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(); err != nil {
			t.Fatalf("seed 110: %v", err)
		}
		r := s.Report()
		t.Logf("%d failover calls, %d re-runs waited, %d given up", r.FailoverCalls, r.RerunsWaited, r.RerunsAbandoned)
		if r.FailoverCalls == 0 || r.RerunsWaited == 0 || r.RerunsAbandoned != 0 {
			t.Fatalf("seed 110: %d failover calls, %d re-runs waited, %d given up; want some, some, none",
				r.FailoverCalls, r.RerunsWaited, r.RerunsAbandoned)
		}
	})
}

// TestFailoverCallsAccepted: a node crashes and its clients fail over
// after ClientDetect (1.5 s, longer than the 1 s change window), resume
// their creators on a survivor and send their unanswered calls again.
// With Limits.FailoverCalls the survivors run those calls (above their
// closed time) instead of refusing them as late, and every property
// still holds: no confirmed call lost or applied twice, the replicas
// agree. Without it (0) the same seeds refuse them, which shows the test
// sees the difference; with a bound of 2, no creator gets more.
func TestFailoverCallsAccepted(t *testing.T) {
	n := seedCount(20)
	var with, without, two sim.Report
	for i := range n {
		seed := *first + uint64(i)
		for _, calls := range []int{0, 2, authority.DefaultLimits().FailoverCalls} {
			cfg := failoverConfig(seed)
			s, err := sim.NewCluster(cfg, 3, failoverNodes(t, 3, calls), sim.Registry())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(); err != nil {
				t.Fatalf("seed %d, FailoverCalls %d: %v (rerun: go test ./authority/sim -run TestFailoverCallsAccepted -sim.seed=%d -sim.seeds=1)",
					seed, calls, err, seed)
			}
			r := s.Report()
			sum := &with
			switch calls {
			case 0:
				sum = &without
			case 2:
				// The bound holds: at most 2 per resumed creator (one
				// crash, so each client fails over at most once).
				if r.FailoverCalls > uint64(2*cfg.Clients) {
					t.Fatalf("seed %d: %d calls accepted after failover with FailoverCalls 2 and %d clients", seed, r.FailoverCalls, cfg.Clients)
				}
				sum = &two
			}
			sum.RejectedLate += r.RejectedLate
			sum.FailoverCalls += r.FailoverCalls
			sum.RerunsWaited += r.RerunsWaited
			sum.RerunsAbandoned += r.RerunsAbandoned
			sum.Failed += r.Failed
		}
	}
	t.Logf("%d seeds: without: %d refused late, %d failed; with: %d refused late, %d accepted after failover, %d failed, %d re-runs waited, %d given up",
		n, without.RejectedLate, without.Failed, with.RejectedLate, with.FailoverCalls, with.Failed, with.RerunsWaited, with.RerunsAbandoned)
	if without.FailoverCalls != 0 || without.RejectedLate == 0 {
		t.Fatalf("without FailoverCalls: %d accepted, %d refused late; want none accepted and some refused (first seed %d)",
			without.FailoverCalls, without.RejectedLate, *first)
	}
	if two.RejectedLate == 0 || two.FailoverCalls == 0 {
		t.Fatalf("with FailoverCalls 2: %d accepted, %d refused late; want both (first seed %d)", two.FailoverCalls, two.RejectedLate, *first)
	}
	if with.FailoverCalls == 0 || 10*with.RejectedLate > without.RejectedLate {
		t.Fatalf("with FailoverCalls: %d accepted, %d refused late (without: %d); want most accepted (first seed %d)",
			with.FailoverCalls, with.RejectedLate, without.RejectedLate, *first)
	}
}

// TestNoLateFailoverRefused: the runs of TestFailoverCallsAccepted with
// the default allowance, on nodes whose functions all set
// netcode.FuncOptions.NoLateFailover: no call older than the change
// window runs after the failover (each is refused late, as without the
// allowance), and every property holds.
func TestNoLateFailoverRefused(t *testing.T) {
	n := seedCount(5)
	var sum sim.Report
	for i := range n {
		seed := *first + uint64(i)
		reg := sim.Registry()
		for _, name := range reg.Names() {
			f, _ := reg.Lookup(name)
			f.Options.NoLateFailover = true
		}
		s, err := sim.NewCluster(failoverConfig(seed), 3, func(id uint8) sim.Server {
			node, err := authority.NewNode(nodeConfig(reg, id, 3))
			if err != nil {
				t.Fatal(err)
			}
			return sim.NodeServer(node)
		}, sim.Registry())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d: %v (rerun: go test ./authority/sim -run TestNoLateFailoverRefused -sim.seed=%d -sim.seeds=1)", seed, err, seed)
		}
		r := s.Report()
		sum.FailoverCalls += r.FailoverCalls
		sum.RejectedLate += r.RejectedLate
	}
	t.Logf("%d seeds: %d refused late, %d accepted after failover", n, sum.RejectedLate, sum.FailoverCalls)
	if sum.FailoverCalls != 0 || sum.RejectedLate == 0 {
		t.Fatalf("%d calls accepted after failover, %d refused late: want none accepted and some refused (first seed %d)", sum.FailoverCalls, sum.RejectedLate, *first)
	}
}

// delayConfig draws a run without faults whose links between authorities
// take 80 ms each way, as the streams of starved processes on a loaded
// machine do (a kill run at load 20-25 lost confirmed calls with no node
// reset): the clients' bumps of shared counters set off re-runs that cross
// between the nodes one slow hop at a time.
func delayConfig(seed uint64) sim.Config {
	cfg := clusterConfig(seed)
	cfg.Cluster.Crashes, cfg.Cluster.Partitions = 0, 0
	cfg.Cluster.Link.Delay = 80 * time.Millisecond
	return cfg
}

// splitConfig draws a run of TestClusterSplit from the seed: three
// authorities, as clusterConfig, with one split instead of a crash and a
// partition: every node cut off from every other for longer than
// detection, then healed.
func splitConfig(seed uint64) sim.Config {
	cfg := clusterConfig(seed)
	cfg.Cluster.Crashes, cfg.Cluster.Partitions, cfg.Cluster.Splits = 0, 0, 1
	return cfg
}

// TestClusterSplit: every node loses its quorum at once (each cut off
// from every other past Detect, as when CPU starvation makes every member
// suspect every other) and regains it at the heal. Nobody had a quorum,
// so nobody took anything over: no node may start afresh (it would catch
// up from others that did too, and the calls a majority confirmed before
// the split would be gone). Every property holds after the heal.
func TestClusterSplit(t *testing.T) {
	n := seedCount(40)
	if raceEnabled && *seeds == 0 {
		n = min(n, 5)
	}
	for i := range n {
		seed := *first + uint64(i)
		cfg := splitConfig(seed)
		s := newCluster(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v (rerun: go test ./authority/sim -run TestClusterSplit -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, seed)
		}
		if r := s.Report(); r.Resets != 0 {
			t.Fatalf("seed %d: %d nodes started afresh after a split, which nobody took over (rerun: go test ./authority/sim -run TestClusterSplit -sim.seed=%d -sim.seeds=1)",
				seed, r.Resets, seed)
		}
	}
}

// rejoinConfig draws a run of TestClusterRejoinRace from the seed: three
// authorities, as clusterConfig, with two partitions and no crash; each
// partition outlasts detection by at most 5 ms, and the others hear the
// node is back up to 10 ms apart.
func rejoinConfig(seed uint64) sim.Config {
	cfg := clusterConfig(seed)
	cfg.Cluster.Crashes, cfg.Cluster.Partitions = 0, 2
	cfg.Cluster.RejoinMax = 5 * time.Millisecond
	cfg.Cluster.MemberJitter = 10 * time.Millisecond
	return cfg
}

// TestClusterRejoinRace: a node cut off from the others comes back just
// after they declared it failed, while they are taking it over, and each
// hears so at its own time: one may complete the takeover while another
// abandons it. Either every node ends up with the takeover (and the node
// starts afresh) or none (and it serves on with its state), never a mix:
// no confirmed call lost or run twice, the nodes agree. Over the seeds,
// some runs must keep the node's state, some reset it, and some complete
// a takeover another node completed after abandoning it.
func TestClusterRejoinRace(t *testing.T) {
	n := seedCount(60)
	if raceEnabled && *seeds == 0 {
		n = min(n, 5)
	}
	var sum sim.Report
	for i := range n {
		seed := *first + uint64(i)
		cfg := rejoinConfig(seed)
		s := newCluster(t, cfg, 3)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v (rerun: go test ./authority/sim -run TestClusterRejoinRace -sim.seed=%d -sim.seeds=1)",
				seed, cfg.Profile.Name, cfg.Clients, err, seed)
		}
		r := s.Report()
		sum.Resets += r.Resets
		sum.QuorumKept += r.QuorumKept
		sum.TakeoversAdopted += r.TakeoversAdopted
	}
	t.Logf("%d seeds: %d resets, %d quorums kept, %d takeovers adopted", n, sum.Resets, sum.QuorumKept, sum.TakeoversAdopted)
	if n >= 60 && (sum.Resets == 0 || sum.QuorumKept == 0 || sum.TakeoversAdopted == 0) {
		t.Errorf("the race was not exercised: %d resets, %d quorums kept, %d takeovers adopted; want some of each",
			sum.Resets, sum.QuorumKept, sum.TakeoversAdopted)
	}
}
