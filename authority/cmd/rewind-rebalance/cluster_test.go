package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/ops"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// TestRebalanceCluster: three authorities over loopback in this process,
// each with its operator endpoint (admin on), counters/ in two hash
// ranges, each owned by 1 and 2, and held by all. A client of authority 1
// adds to counters of both ranges without pause, so 1 runs every call,
// half in each range. One period of rewind-rebalance moves one of the
// two from 1 to 3 (2 owns it already; moving both, or a range with all
// of 1's calls, would only move the imbalance), live: the map says [3 2]
// for it and [1 2] for the other on every member, and every confirmed
// add is there once.
func TestRebalanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities over loopback")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound against a hang
	defer cancel()
	halves := [2]shardmap.Range{{Prefix: counter.Prefix, Lo: 0, Hi: 1<<31 - 1}, {Prefix: counter.Prefix, Lo: 1 << 31, Hi: 1<<32 - 1}}
	var srvs []*authority.Server
	var pages []string
	for i := range 3 {
		cfg := authority.DefaultServerConfig("127.0.0.1:0", counter.Registry())
		cfg.Transport = transport.LAN()
		cfg.Tick = 5 * time.Millisecond
		cfg.Node.NodeID = uint8(i + 1)
		cfg.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run"), Size: 3, Watch: []string{counter.Prefix}}
		cfg.Node.Limits.CallsPerSecond = 100000
		cfg.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0"}
		if i == 0 {
			cfg.Cluster.Ranges = []authority.RangeOwners{
				{Range: halves[0], Owners: []uint8{1, 2}},
				{Range: halves[1], Owners: []uint8{1, 2}},
			}
		} else {
			cfg.Cluster.Join = []string{srvs[0].GossipAddr()}
		}
		srv, err := authority.NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
		t.Cleanup(func() {
			srv.Close()
			<-served
		})
		ep, err := ops.Start(ops.Config{Addr: "127.0.0.1:0", Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Shutdown(context.Background()) })
		ep.Attach(srv)
		srvs = append(srvs, srv)
		pages = append(pages, "http://"+ep.Addr().String())
	}
	var c *netcode.Client
	for {
		var err error
		if c, err = netcode.Dial(ctx, srvs[0].Addr().String(), netcode.Options{Registry: counter.Registry(), Transport: transport.LAN()}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // a member refuses clients until it has caught up
	}
	defer c.Close()
	if err := c.Watch(counter.Prefix); err != nil {
		t.Fatal(err)
	}

	var out, errs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-nodes", strings.Join(pages, ","), "-every", "1s", "-min-rate", "2", "-once"}, &out, &errs)
	}()
	calls := map[netcode.CallID]string{}
	confirmed := map[string]bool{}
	next := 0
	frame := func() {
		for _, ev := range c.Update() {
			if name, ok := calls[ev.Call]; ok && ev.Kind == netcode.EventResult {
				delete(calls, ev.Call)
				if ev.Err == nil {
					confirmed[name] = true
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("rebalance: %v\n%s\n%s", err, out.String(), errs.String())
			}
			running = false
		case <-ctx.Done():
			t.Fatal("the rebalance did not end in time")
		default:
		}
		if len(calls) < 8 {
			next++
			name := fmt.Sprintf("k%d", next)
			if id, err := c.Call(counter.Add, counter.AddArgs(name, 1)); err == nil {
				calls[id] = name
			}
		}
		frame()
	}
	t.Logf("rewind-rebalance said:\n%s%s", out.String(), errs.String())
	moved := -1
	for h, r := range halves {
		if strings.Contains(out.String(), fmt.Sprintf("moved %s to node 3: owners [1 2] → [3 2]", r)) {
			moved = h
		}
	}
	if moved < 0 {
		t.Fatalf("no move of a half of counters/ from 1 to 3:\n%s\n%s", out.String(), errs.String())
	}
	for i, s := range srvs {
		for h, r := range halves {
			want := []uint8{1, 2}
			if h == moved {
				want = []uint8{3, 2}
			}
			if e, ok := s.ShardMap().Lookup(counter.Prefix + keyIn(r)); !ok || e.Range != r || !slices.Equal(e.Owners, want) {
				t.Errorf("authority %d: %s owned by %v, want %v", i+1, r, e.Owners, want)
			}
		}
	}
	for len(calls) > 0 && ctx.Err() == nil {
		frame()
	}
	for name := range confirmed {
		for !c.WatchReady(counter.Prefix) || c.Predicted(counter.Prefix+name) {
			if ctx.Err() != nil {
				t.Fatalf("counter %s still predicted", name)
			}
			frame()
		}
		v, _ := c.Read(counter.Prefix + name)
		if n, _ := counter.Count(v); n != 1 {
			t.Errorf("counter %s is %d, want 1", name, n)
		}
	}
	if len(confirmed) == 0 {
		t.Error("no add confirmed")
	}
}

// keyIn returns a counter name whose path falls in r.
func keyIn(r shardmap.Range) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("probe%d", i)
		if h := shardmap.SegmentHash(k); h >= r.Lo && h <= r.Hi {
			return k
		}
	}
}
