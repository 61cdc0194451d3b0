package sim_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode"
)

// The comparison against one node holding everything.
//
// A sharded run's nodes log what they do as a durable node does
// (Config.Persist): every run of a call (the call, its version, its
// outcome) and every value that becomes final and valid. After the run,
// the cluster's valid values are those final values with, on the live
// nodes, the valid values still above the horizon. Each valid value
// names its call by its time (write time, version, creator; a creator's
// write times are strictly increasing, so write time and creator name one
// call). Those calls — the set the cluster accepted and kept — are run
// again in write-time order, at the version the cluster kept, into one
// fresh store: what a single node holding every range would have stored
// for the same calls. Every call must write there exactly what the
// cluster holds of it, and every path's latest valid value must be the
// same. A look's seen/ value is written from a read of another range, so
// a cross-shard read that saw anything but what one store gives shows up
// as a difference.

// loggedRun is one run a node logged.
type loggedRun struct {
	node    uint8
	call    netcode.Call
	version uint32
	locks   []netcode.ReadLock
}

// callKey names a call by its creator and write time.
type callKey struct {
	creator uint32
	w       int64
}

// valKey names a value.
type valKey struct {
	path string
	t    netcode.Time
}

// runLog collects what every node of a run (every incarnation) logged.
type runLog struct {
	calls    map[callKey]netcode.Call
	runs     []loggedRun // every run that stored values, with what it read
	valid    map[valKey]string
	conflict string                    // two nodes that finalised one value with different bytes
	nodes    map[uint8]*authority.Node // the latest incarnation of each id
}

func newRunLog() *runLog {
	return &runLog{calls: map[callKey]netcode.Call{}, valid: map[valKey]string{}, nodes: map[uint8]*authority.Node{}}
}

// addValid adds a valid value, noting a conflict with one added before.
func (l *runLog) addValid(v netcode.PathValue, node uint8) {
	if v.Flags&netcode.FlagEvent != 0 || !isWorkload(v.Path) {
		return
	}
	k := valKey{v.Path, v.Time}
	if old, ok := l.valid[k]; ok && old != string(v.Value) && l.conflict == "" {
		l.conflict = fmt.Sprintf("%s@%v is %x on one node and %x on node %d", v.Path, v.Time, old, v.Value, node)
	}
	l.valid[k] = string(v.Value)
}

// take files what node id handed out in p.
func (l *runLog) take(id uint8, p authority.Persist) {
	for i := range p.Entries {
		e := &p.Entries[i]
		if e.Kind != archive.EntryRun {
			continue
		}
		c := e.Call
		c.Args = slices.Clone(c.Args)
		l.calls[callKey{c.ID.Creator, c.Time}] = c
		if e.Err == "" {
			l.runs = append(l.runs, loggedRun{node: id, call: c, version: e.Version, locks: slices.Clone(e.Locks)})
		}
	}
	for _, v := range p.Final {
		l.addValid(v, id)
	}
}

func isWorkload(path string) bool {
	for _, p := range []string{sim.PlayersPrefix, sim.CountersPrefix, sim.SeenPrefix} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// loggedServer is a node whose shell takes what it logs before each
// Ready, as the durable shell does.
type loggedServer struct {
	sim.ShardServer
	id  uint8
	n   *authority.Node
	log *runLog
}

func (s loggedServer) Ready(emit func(id uint64, frames [][]byte, close bool, reason string)) {
	s.log.take(s.id, s.n.TakePersist())
	s.ShardServer.Ready(emit)
}

func (s loggedServer) ShardCounters() (forwarded, outside uint64) {
	st := s.n.Stats()
	return st.CallsForwarded, st.RunsOutside
}

// NeedsReset and QuorumCounters are the adapter's, which the simulator
// looks for (a wrapper must not hide them: a node that asks to be reset
// would serve on with a stale state).
func (s loggedServer) NeedsReset() bool { return s.n.NeedsReset() }

func (s loggedServer) QuorumCounters() (kept, adopted uint64) {
	return s.ShardServer.(interface{ QuorumCounters() (uint64, uint64) }).QuorumCounters()
}

func (s loggedServer) LateCounters() (late, failover, waited, abandoned uint64) {
	st := s.n.Stats()
	return st.Refusals[authority.CauseLate] + st.Refusals[authority.CauseStale], st.FailoverCalls, st.RerunsWaited, st.RerunsAbandoned
}

// loggedNodes is clusterNodes whose nodes log into l.
func loggedNodes(t testing.TB, n int, l *runLog, watch ...string) func(id uint8) sim.Server {
	reg := sim.Registry()
	return func(id uint8) sim.Server {
		cfg := nodeConfig(reg, id, n, watch...)
		cfg.Persist = true
		node, err := authority.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l.nodes[id] = node
		return loggedServer{ShardServer: sim.NodeServer(node).(sim.ShardServer), id: id, n: node, log: l}
	}
}

// replayed counts what compareSingle ran again.
type replayed struct{ calls, looks int }

// compareSingle replays the calls whose values the cluster kept into one
// store and compares; it returns the first difference, or "".
func compareSingle(l *runLog) (rp replayed, diff string) {
	if l.conflict != "" {
		return rp, "nodes finalised one value differently: " + l.conflict
	}
	// The live nodes' valid values above their horizons, and each path's
	// latest valid value on a node holding it.
	latest := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(l.nodes)) {
		n := l.nodes[id]
		for _, prefix := range []string{sim.PlayersPrefix, sim.CountersPrefix, sim.SeenPrefix} {
			n.Store().PathsUnder(prefix, func(path string) bool {
				if !n.Holds(path) {
					return true
				}
				var last *netcode.PathValue
				n.Store().History(path, func(v netcode.PathValue) bool {
					if v.State == netcode.Valid && v.Flags&netcode.FlagEvent == 0 {
						l.addValid(v, id)
						last = &v
					}
					return true
				})
				if last != nil {
					latest[path] = string(last.Value)
				}
				return true
			})
		}
	}
	if l.conflict != "" {
		return rp, "nodes hold one value differently: " + l.conflict
	}
	// What the cluster kept of each call.
	type kept struct {
		version uint32
		outs    map[string]string
	}
	calls := map[callKey]*kept{}
	for k, v := range l.valid {
		ck := callKey{k.t.Creator, k.t.Nanos}
		c := calls[ck]
		if c == nil {
			c = &kept{version: k.t.Version, outs: map[string]string{}}
			calls[ck] = c
		}
		if c.version != k.t.Version {
			return rp, fmt.Sprintf("call of creator %d at %d holds valid values of versions %d and %d", ck.creator, ck.w, c.version, k.t.Version)
		}
		c.outs[k.path] = v
	}
	keys := slices.Collect(maps.Keys(calls))
	slices.SortFunc(keys, func(a, b callKey) int {
		ta := netcode.Time{Nanos: a.w, Version: calls[a].version, Creator: a.creator}
		tb := netcode.Time{Nanos: b.w, Version: calls[b].version, Creator: b.creator}
		return ta.Compare(tb)
	})
	reg := sim.Registry()
	cfg := netcode.DefaultConfig()
	store, err := netcode.NewStore(cfg)
	if err != nil {
		return rp, err.Error()
	}
	single := map[string]string{}
	for _, k := range keys {
		c, ok := l.calls[k]
		if !ok {
			return rp, fmt.Sprintf("valid values of creator %d at %d, but no node logged a run of that call", k.creator, k.w)
		}
		kp := calls[k]
		out := reg.Run(store, &cfg, c, kp.version)
		if out.Err != nil {
			return rp, fmt.Sprintf("call %s%x of creator %d at %d v%d: the cluster kept %d values, one store fails it: %v", c.Name, c.Args, k.creator, k.w, kp.version, len(kp.outs), out.Err)
		}
		got := map[string]string{}
		for _, w := range out.Writes {
			if w.Flags&netcode.FlagEvent == 0 {
				got[w.Path] = string(w.Value)
			}
		}
		if !maps.Equal(got, kp.outs) {
			return rp, fmt.Sprintf("call %s%x of creator %d at %d v%d: one store writes %s, the cluster holds %s", c.Name, c.Args, k.creator, k.w, kp.version, fmtVals(got), fmtVals(kp.outs))
		}
		if _, err := store.Commit(c.Time, &out); err != nil {
			return rp, fmt.Sprintf("call %s of creator %d at %d: one store refuses it: %v", c.Name, k.creator, k.w, err)
		}
		maps.Copy(single, got)
		rp.calls++
		if c.Name == sim.FuncLook {
			rp.looks++
		}
		store.Tick(c.Time)
	}
	for _, path := range slices.Sorted(maps.Keys(latest)) {
		if g, ok := single[path]; !ok || g != latest[path] {
			return rp, fmt.Sprintf("%s: latest valid value %x in the cluster, %x in one store (present %v)", path, latest[path], g, ok)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(single)) {
		if _, ok := latest[path]; !ok {
			return rp, fmt.Sprintf("%s: %x in one store, nothing valid in the cluster", path, single[path])
		}
	}
	return rp, ""
}

func fmtVals(m map[string]string) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%x ", p, m[p])
	}
	return strings.TrimSpace(b.String())
}

// runSingle runs one sharded seed with logging nodes and compares it
// against one store; it returns the run's report and what was replayed.
func runSingle(t *testing.T, name string, cfg sim.Config) (sim.Report, replayed) {
	t.Helper()
	l := newRunLog()
	s, err := sim.NewCluster(cfg, 3, loggedNodes(t, 3, l, sim.PlayersPrefix, sim.CountersPrefix, sim.SeenPrefix, "events/"), sim.Registry())
	if err != nil {
		t.Fatal(err)
	}
	rerun := fmt.Sprintf("(rerun: go test ./authority/sim -run %s -sim.seed=%d -sim.seeds=1)", name, cfg.Seed)
	if err := s.Run(); err != nil {
		t.Fatalf("seed %d (%s, %d clients): %v\n%s%s", cfg.Seed, cfg.Profile.Name, cfg.Clients, err, s.Faults(), rerun)
	}
	rp, msg := compareSingle(l)
	if msg != "" {
		t.Fatalf("seed %d (%s, %d clients): the cluster differs from one store: %s\n%s%s", cfg.Seed, cfg.Profile.Name, cfg.Clients, msg, s.Faults(), rerun)
	}
	return s.Report(), rp
}

// TestShardedSingleStore: the sharded runs of TestShardedProperties
// compared against one store holding everything, without faults, with
// their faults (a crash and a partition) and with two live range moves
// on top: the calls whose values the cluster kept, run again in
// write-time order into one store, write exactly what the cluster holds
// of each, and every path of players/, counters/ and seen/ (written from
// a read of another range) ends with the same latest valid value.
//
// make test runs 50 seeds of each without the race detector (3 with it).
func TestShardedSingleStore(t *testing.T) {
	n := seedCount(50)
	if raceEnabled && *seeds == 0 {
		n = min(n, 3)
	}
	for _, mode := range []struct {
		name          string
		faults, moves int
	}{{"no faults", 0, 0}, {"crash and partition", 1, 0}, {"crash, partition and moves", 1, 2}} {
		var cross, calls uint64
		var rp replayed
		for i := range n {
			seed := *first + uint64(i)
			cfg := shardedConfig(seed)
			cfg.Cluster.Crashes, cfg.Cluster.Partitions = mode.faults, mode.faults
			cfg.Cluster.Moves = mode.moves
			r, p := runSingle(t, "TestShardedSingleStore", cfg)
			cross += r.CrossRangeCalls
			calls += r.Calls
			rp.calls += p.calls
			rp.looks += p.looks
		}
		t.Logf("%s: %d seeds, %d calls made, %d replayed into one store (%d looks; %d looks made read another node's range)", mode.name, n, calls, rp.calls, rp.looks, cross)
		if cross == 0 || rp.looks == 0 {
			t.Fatalf("%s: no look read another node's range: the comparison tested nothing across shards", mode.name)
		}
	}
}
