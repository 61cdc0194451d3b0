package sim_test

import (
	"fmt"
	"testing"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode"
)

// eventsServer gives its node the run's map with events/ as one more
// range, owned by nodes 1 to 3: node 4 then holds no bump event, whose
// locks name counters/ paths (see handoffNodes).
type eventsServer struct{ loggedServer }

func (s eventsServer) SetShardMap(now int64, m *shardmap.Map) {
	m = m.Clone()
	if _, err := m.Apply(shardmap.Entry{Range: shardmap.Whole("events/"), Owners: []uint8{1, 2, 3}, Version: 1, Writer: 254}); err != nil {
		panic(err) // a fixed, valid entry
	}
	s.loggedServer.SetShardMap(now, m)
}

// handoffNodes makes the authorities of TestShardedHandoff: nodes 1 to 3
// watch the workload's prefixes from the start, node 4 (no client plays
// on it) only players/, which look and shove read, so it holds nothing of
// counters/ and seen/ but the ranges it owns, and (eventsServer) no
// event. A node must hold the paths that the locks of the values it
// holds name (docs/DESIGN.md, "Known limits"): bump's event locks its
// counter, look's value the player it read. Every incarnation is kept in *all, and logs
// into l.
func handoffNodes(t testing.TB, n int, l *runLog, all *[]*authority.Node) func(id uint8) sim.Server {
	reg := sim.Registry()
	return func(id uint8) sim.Server {
		cfg := nodeConfig(reg, id, n, sim.PlayersPrefix) // what the functions read
		if int(id) < n {
			cfg.Cluster.Watch = append(cfg.Cluster.Watch, sim.CountersPrefix, sim.SeenPrefix, "events/")
		}
		cfg.Persist = true
		node, err := authority.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l.nodes[id] = node
		*all = append(*all, node)
		return eventsServer{loggedServer{ShardServer: sim.NodeServer(node).(sim.ShardServer), id: id, n: node, log: l}}
	}
}

// handoffConfig draws a run of TestShardedHandoff from the seed: the
// sharded runs' clients, workload and faults over four authorities, the
// clients on the first three only, and three ranges handed over to node
// 4 in one map change each (node 4 primary at once, the old primary
// gone). A node that leaves a range must still hold it for the re-runs of
// the calls it ran there (docs/DESIGN.md, "Known limits"): the old
// primaries here watch everything.
func handoffConfig(seed uint64) sim.Config {
	cfg := shardedConfig(seed)
	cfg.Cluster.ClientNodes = 3
	cfg.Cluster.Moves = 3
	cfg.Cluster.MoveDirect = true
	cfg.Cluster.MoveTo = 4
	return cfg
}

// TestShardedHandoff: ranges move in one map change to a node that may
// hold nothing of them (node 4 watches players/ only; the others watch
// everything), while calls keep coming and a node crashes and another is
// cut off. A new owner runs nothing on a range before every live peer's
// catch-up of it is in: calls reaching it meanwhile go to another owner.
// The sharded properties hold (no confirmed call lost or run twice, the
// nodes agree, the clients converge), and the run matches one store
// holding everything (TestShardedSingleStore's comparison), and no run
// read an empty range (blindRun). Over the seeds, node 4 must have caught
// up on a range and routed calls away while it did.
//
// make test runs 50 seeds without the race detector (3 with it).
func TestShardedHandoff(t *testing.T) {
	n := seedCount(50)
	if raceEnabled && *seeds == 0 {
		n = min(n, 3)
	}
	var catchUps, routed, calls, cross uint64
	for i := range n {
		seed := *first + uint64(i)
		cfg := handoffConfig(seed)
		l := newRunLog()
		var all []*authority.Node
		s, err := sim.NewCluster(cfg, 4, handoffNodes(t, 4, l, &all), sim.Registry())
		if err != nil {
			t.Fatal(err)
		}
		rerun := fmt.Sprintf("(rerun: go test ./authority/sim -run TestShardedHandoff -sim.seed=%d -sim.seeds=1)", seed)
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d (%s, %d clients): %v\n%s%s", seed, cfg.Profile.Name, cfg.Clients, err, s.Faults(), rerun)
		}
		if _, msg := compareSingle(l); msg != "" {
			t.Fatalf("seed %d (%s, %d clients): the cluster differs from one store: %s\n%s%s", seed, cfg.Profile.Name, cfg.Clients, msg, s.Faults(), rerun)
		}
		if msg := blindRun(l); msg != "" {
			t.Fatalf("seed %d (%s, %d clients): %s\n%s%s", seed, cfg.Profile.Name, cfg.Clients, msg, s.Faults(), rerun)
		}
		for _, nd := range all {
			st := nd.Stats()
			catchUps += st.RangeCatchUps
			routed += st.CatchUpRouted
		}
		r := s.Report()
		calls += r.Calls
		cross += r.CrossRangeCalls
	}
	t.Logf("%d seeds: %d calls, %d looks across ranges, %d ranges caught up on, %d calls routed to another owner meanwhile", n, calls, cross, catchUps, routed)
	if catchUps == 0 || (n >= 10 && routed == 0) {
		t.Fatalf("%d ranges caught up on, %d calls routed away meanwhile: the moves never reached a node that held nothing", catchUps, routed)
	}
}

// blindRun returns a run that read nothing on a path that held a valid
// value more than MaxClosedLag (4 × MaxChangeAge) before the call's write
// time, "" when none did. Every node holding the path had that value by
// then: a value is accepted within MaxChangeAge of its time, or, after a
// failover, within MaxClosedLag (failover calls), and replicated at once.
// A new owner that ran calls before its catch-up of the range was in
// would read so: an empty range.
func blindRun(l *runLog) string {
	cfg := netcode.DefaultConfig()
	lag := 4 * int64(cfg.MaxChangeAge)
	first := map[string]int64{} // each path's first valid value
	for k := range l.valid {
		if t, ok := first[k.path]; !ok || k.t.Nanos < t {
			first[k.path] = k.t.Nanos
		}
	}
	for _, r := range l.runs {
		for _, lk := range r.locks {
			t, ok := first[lk.Path]
			if lk.Start.IsZero() && ok && t < r.call.Time-lag {
				return fmt.Sprintf("node %d ran %s of creator %d at %d (v%d) reading nothing on %s, which held a value from %.3f s before", r.node, r.call.Name, r.call.ID.Creator, r.call.Time, r.version, lk.Path, float64(r.call.Time-t)/1e9)
			}
		}
	}
	return ""
}
