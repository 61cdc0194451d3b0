package authority_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
)

// clusterServers starts n authorities of one cluster on loopback.
func clusterServers(t *testing.T, n int) []*authority.Server {
	t.Helper()
	var srvs []*authority.Server
	for i := range n {
		cfg := serverConfig()
		cfg.Node.NodeID = uint8(i + 1)
		cfg.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run"), Size: n}
		cfg.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0"}
		if i > 0 {
			cfg.Cluster.Join = []string{srvs[0].GossipAddr()}
		}
		srvs = append(srvs, start(t, cfg))
	}
	return srvs
}

// TestClusterServers: three authorities over loopback replicate each
// other: a client's adds on one are seen by a client of another; when its
// authority leaves, the client fails over to the next address, resumes its
// session (same creator) and goes on adding, and no add is lost or counted
// twice.
func TestClusterServers(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities over loopback")
	}
	srvs := clusterServers(t, 3)
	opts := func(failover ...*authority.Server) netcode.Options {
		o := netcode.Options{Registry: counter.Registry(), Transport: testTransport(),
			Reconnect: netcode.Reconnect{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
		for _, s := range failover {
			o.Failover = append(o.Failover, s.Addr().String())
		}
		return o
	}
	dial := func(s *authority.Server, failover ...*authority.Server) *netcode.Client {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var c *netcode.Client
		var err error
		// A member serves once it has caught up with the others: until
		// then it refuses clients, so dial until it takes one.
		for {
			if c, err = netcode.Dial(ctx, s.Addr().String(), opts(failover...)); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	player := dial(srvs[0], srvs[1], srvs[2])
	watcher := dial(srvs[1])
	for _, c := range []*netcode.Client{player, watcher} {
		if err := c.Watch(counter.Prefix); err != nil {
			t.Fatal(err)
		}
	}
	const path = counter.Prefix + "shared"
	count := func(c *netcode.Client) int64 {
		v, _ := c.Read(path)
		n, _ := counter.Count(v)
		return n
	}
	results := 0
	var failed []error
	frames := func(limit time.Duration, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit) // a bound against a hang
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("not done within %v: player %d, watcher %d, %d results", limit, count(player), count(watcher), results)
			}
			for _, c := range []*netcode.Client{player, watcher} {
				for _, ev := range c.Update() {
					if c == player && ev.Kind == netcode.EventResult {
						results++
						if ev.Err != nil {
							failed = append(failed, ev.Err)
						}
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	add := func(k int) {
		for range k {
			for {
				if _, err := player.Call(counter.Add, counter.AddArgs("shared", 1)); err == nil {
					break
				}
				frames(time.Minute, func() bool { return player.Stats().Connected })
			}
			frames(time.Minute, func() bool { return player.Stats().Pending < 4 })
		}
	}
	frames(time.Minute, func() bool { return player.WatchReady(counter.Prefix) && watcher.WatchReady(counter.Prefix) })
	add(20)
	frames(time.Minute, func() bool { return player.Stats().Pending == 0 && count(watcher) == 20 })
	creator := player.Stats().Creator

	// The player's authority leaves; the player fails over.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srvs[0].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	add(20)
	frames(time.Minute, func() bool { return player.Stats().Pending == 0 && count(player) == 40 && count(watcher) == 40 })
	st := player.Stats()
	if st.Failovers != 1 || st.Creator != creator {
		t.Errorf("after failover: %d failovers (want 1), creator %x (want %x, resumed)", st.Failovers, st.Creator, creator)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d calls failed, the first: %v", len(failed), results, failed[0])
	}
}

// TestClusterShardMap: the shard map a member starts with and a range set
// later on another reach every member through gossip, which all converge
// on the same map.
func TestClusterShardMap(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities over loopback")
	}
	var srvs []*authority.Server
	for i := range 3 {
		cfg := serverConfig()
		cfg.Node.NodeID = uint8(i + 1)
		cfg.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run"), Size: 3}
		cfg.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0"}
		if i == 0 {
			cfg.Cluster.Ranges = []authority.RangeOwners{{Range: shardmap.Whole(""), Owners: []uint8{1, 2, 3}}}
		} else {
			cfg.Cluster.Join = []string{srvs[0].GossipAddr()}
		}
		srvs = append(srvs, start(t, cfg))
	}
	converged := func(want int) bool {
		d := srvs[0].ShardMap().Digest()
		for _, s := range srvs {
			if m := s.ShardMap(); m.Len() != want || m.Digest() != d {
				return false
			}
		}
		return true
	}
	waitUntil(t, time.Minute, "the starting map on every member", func() bool { return converged(1) })
	if err := srvs[1].SetRange(shardmap.Whole("players/"), []uint8{2, 3}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "a range set on one member on every member", func() bool { return converged(2) })
	if e, ok := srvs[2].ShardMap().Lookup("players/7/pos"); !ok || !slices.Equal(e.Owners, []uint8{2, 3}) {
		t.Errorf("players/7/pos → %+v, %v on member 3", e, ok)
	}
}

// waitUntil polls cond every 10 ms, failing after limit (a bound against
// a hang).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterRelay: over loopback, counters/ is owned by authorities 2
// and 3; a client of authority 1 adds to a counter: each call is relayed
// to an owner, runs there, and its answer comes back through authority 1;
// the client's watch (served by authority 1, which watches counters/ from
// the start) shows every add.
func TestClusterRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities over loopback")
	}
	f, _ := counter.Registry().Lookup(counter.Add)
	reg := netcode.NewRegistry()
	if err := reg.Register(counter.Add, f.Fn, netcode.FuncOptions{ShardKey: func(_ uint32, args []byte) string {
		if len(args) < 9 {
			return ""
		}
		return counter.Prefix + string(args[8:])
	}}); err != nil {
		t.Fatal(err)
	}
	var srvs []*authority.Server
	for i := range 3 {
		cfg := authority.DefaultServerConfig("127.0.0.1:0", reg)
		cfg.Transport = testTransport()
		cfg.Tick = 5 * time.Millisecond
		cfg.Node.NodeID = uint8(i + 1)
		cfg.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run"), Size: 3, Watch: []string{counter.Prefix}}
		cfg.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0"}
		if i == 0 {
			cfg.Cluster.Ranges = []authority.RangeOwners{{Range: shardmap.Whole(counter.Prefix), Owners: []uint8{2, 3}}}
		} else {
			cfg.Cluster.Join = []string{srvs[0].GossipAddr()}
		}
		srvs = append(srvs, start(t, cfg))
	}
	waitUntil(t, time.Minute, "the map on every member", func() bool {
		for _, s := range srvs {
			if s.ShardMap().Len() != 1 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *netcode.Client
	var err error
	for {
		if c, err = netcode.Dial(ctx, srvs[0].Addr().String(), netcode.Options{Registry: counter.Registry(), Transport: testTransport()}); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}
	const adds = 5
	confirmed := 0
	for i := range adds {
		if _, err := c.Call(counter.Add, counter.AddArgs("shared", 1)); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitUntil(t, time.Minute, "every add answered and shown", func() bool {
		for _, ev := range c.Update() {
			if ev.Kind == netcode.EventResult {
				if ev.Err != nil {
					t.Fatalf("add failed: %v", ev.Err)
				}
				confirmed++
			}
		}
		v, _ := c.Read(counter.Prefix + "shared")
		n, _ := counter.Count(v)
		return confirmed == adds && n == adds && !c.Predicted(counter.Prefix+"shared")
	})
	if st := srvs[0].Stats().Node; st.CallsForwarded < adds || st.Calls != 0 {
		t.Fatalf("authority 1 forwarded %d calls and ran %d: want %d and 0", st.CallsForwarded, st.Calls, adds)
	}
	if ran := srvs[1].Stats().Node.CallsRelayedIn + srvs[2].Stats().Node.CallsRelayedIn; ran != adds {
		t.Fatalf("owners ran %d relayed calls, want %d", ran, adds)
	}
}

// TestMoveRangeRefuses: MoveRange refuses, before changing anything, a
// server without a cluster, a range the map does not hold, a node that
// is not a member, and a move of a range to its own primary.
func TestMoveRangeRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("an authority with gossip over loopback")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	serving := func(s *authority.Server) {
		// Before the cleanup's Close: a Close before Serve began fails it.
		waitUntil(t, time.Minute, "serving", func() bool {
			st, err := s.Status(ctx, authority.StatusOptions{})
			return err == nil && st.Serving
		})
	}
	alone := start(t, serverConfig())
	serving(alone)
	if _, err := alone.MoveRange(ctx, shardmap.Whole("players/"), 2, authority.MoveOptions{}); !errors.Is(err, authority.ErrNoCluster) {
		t.Errorf("without a cluster: %v, want ErrNoCluster", err)
	}
	cfg := serverConfig()
	cfg.Node.NodeID = 1
	cfg.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run")}
	cfg.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0",
		Ranges: []authority.RangeOwners{{Range: shardmap.Whole("players/"), Owners: []uint8{1}}}}
	s := start(t, cfg)
	serving(s)
	before := s.ShardMap().Digest()
	for _, tc := range []struct {
		r    shardmap.Range
		to   uint8
		says string
	}{
		{shardmap.Whole("counters/"), 1, "no live range"},
		{shardmap.Whole("players/"), 2, "no such live member"},
		{shardmap.Whole("players/"), 1, "to itself"},
	} {
		if _, err := s.MoveRange(ctx, tc.r, tc.to, authority.MoveOptions{}); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("move %v to %d: %v, want an error saying %q", tc.r, tc.to, err, tc.says)
		}
	}
	if s.ShardMap().Digest() != before {
		t.Errorf("a refused move changed the map: %+v", s.ShardMap().Entries())
	}
}
