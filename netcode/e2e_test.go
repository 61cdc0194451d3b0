package netcode_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

var e2eSeed = flag.Uint64("e2e.seed", 1, "seed of TestEndToEnd (lag simulator and inputs)")

// e2eReg is the end-to-end game: "move" adds (dx, dy) to the dot of the
// player named in args ("dots/<n>"), "bump" adds one to the shared counter.
func e2eReg() *netcode.Registry {
	r := shellReg() // bump
	r.Register("move", func(tx *netcode.Tx, args []byte) error {
		if len(args) != 1+16 {
			return errors.New("move: want player byte and two floats")
		}
		d, err := netcode.Floats(args[1:])
		if err != nil {
			return err
		}
		path := fmt.Sprintf("dots/%d", args[0])
		pos := []float64{0, 0}
		if v, ok := tx.Read(path); ok {
			if pos, err = netcode.Floats(v); err != nil || len(pos) != 2 {
				return fmt.Errorf("move: bad position %x", v)
			}
		}
		tx.Write(path, netcode.AppendFloats(nil, pos[0]+d[0], pos[1]+d[1]))
		return nil
	}, netcode.FuncOptions{})
	return r
}

// e2ePlayer is one client of the end-to-end test and what it expects.
type e2ePlayer struct {
	c      *netcode.Client
	rng    *rand.Rand
	next   time.Time
	calls  map[netcode.CallID][]byte // args of each call; nil for bump
	result map[netcode.CallID]error  // latest answer per call
	interp int                       // frames where a remote dot interpolated
	stray  int                       // results for unknown call ids
	failed error                     // the first call error, for the log
}

// TestEndToEnd runs the real stack: an authority over loopback KCP behind
// the lag simulator's mobile profile (both ways at the authority: a 240 ms
// round trip, ±80 ms, 2 % loss each way) and 8 Clients, each calling at
// 30 Hz for 10 s (3 s with -short), alternating a move of its own dot and
// a bump of one shared counter, so predictions of the counter are wrong
// most of the time and re-runs happen on both sides. After a quiet phase
// every client must show what the authority holds: each dot the sum of its
// player's confirmed moves, the counter the number of confirmed bumps, and
// a fresh client's snapshot the same.
func TestEndToEnd(t *testing.T) {
	const (
		players  = 8
		rate     = 30 // calls per second per player
		preset   = "mobile"
		quietMax = 60 * time.Second // a bound against a hang; settling takes about a second
	)
	calling := 10 * time.Second
	if testing.Short() {
		calling = 3 * time.Second
	}
	seed := *e2eSeed
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with -e2e.seed=%d", seed)
		}
	})
	begin := time.Now()

	prof, err := lagsim.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	link, err := lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: seed, Out: prof, In: prof})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	// startAuthority's change window is a minute: a loaded machine cannot
	// make the players' calls late.
	srv := startAuthority(t, e2eReg(), link, nil)
	addr := srv.Addr().String()

	// Dial everyone at once: each waits for its Welcome and clock sync.
	ps := make([]*e2ePlayer, players)
	errs := make([]error, players)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c, err := netcode.Dial(ctx, addr, netcode.Options{Registry: e2eReg(), Transport: fastTransport()})
			if err != nil {
				errs[i] = err
				return
			}
			ps[i] = &e2ePlayer{c: c, rng: rand.New(rand.NewPCG(seed, uint64(i))),
				calls: map[netcode.CallID][]byte{}, result: map[netcode.CallID]error{}}
		}()
	}
	wg.Wait()
	clients := make([]*netcode.Client, 0, players)
	for i, p := range ps {
		if errs[i] != nil {
			t.Fatalf("player %d: %v", i, errs[i])
		}
		t.Cleanup(func() { p.c.Close() })
		clients = append(clients, p.c)
		if err := p.c.WatchHistory("dots/", 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := p.c.Watch("counters/"); err != nil {
			t.Fatal(err)
		}
	}
	dialled := time.Since(begin)

	on := func(i int, ev netcode.Event) {
		p := ps[i]
		switch ev.Kind {
		case netcode.EventResult:
			if _, ok := p.calls[ev.Call]; !ok {
				p.stray++
				return
			}
			p.result[ev.Call] = ev.Err
			if ev.Err != nil && p.failed == nil {
				p.failed = ev.Err
			}
		case netcode.EventDisconnected, netcode.EventError:
			t.Errorf("player %d: %v: %v", i, ev.Kind, ev.Err)
		}
	}
	start := time.Now()
	for i, p := range ps {
		p.next = start.Add(time.Duration(i) * 4 * time.Millisecond)
	}
	interval := time.Second / rate
	loop(t, calling+time.Minute, clients, on, func() bool { // the phase ends by the clock; the bound is against a hang
		now := time.Now()
		if now.Sub(start) >= calling {
			return true
		}
		for i, p := range ps {
			for !now.Before(p.next) {
				p.next = p.next.Add(interval)
				var args []byte
				name := "bump"
				if len(p.calls)%2 == 0 {
					name = "move"
					args = netcode.AppendFloats([]byte{byte(i)}, float64(p.rng.IntN(3)-1), float64(p.rng.IntN(3)-1))
				}
				id, err := p.c.Call(name, args)
				if err != nil {
					t.Fatalf("player %d: call %d: %v", i, len(p.calls), err)
				}
				p.calls[id] = args
			}
			// Draw someone else's dot the way a game would.
			if _, ok := p.c.InterpolateFloats(fmt.Sprintf("dots/%d", (i+1)%players)); ok {
				p.interp++
			}
		}
		return false
	})
	called := time.Since(start)

	// What the authority must hold: per dot the sum of its confirmed
	// moves (small integers, so float sums are exact in any order), and
	// the number of confirmed bumps.
	want := func() (dots [players][2]float64, total int64) {
		for i, p := range ps {
			for id, args := range p.calls {
				if err, ok := p.result[id]; !ok || err != nil {
					continue
				}
				if args == nil {
					total++
					continue
				}
				d, _ := netcode.Floats(args[1:])
				dots[i][0] += d[0]
				dots[i][1] += d[1]
			}
		}
		return dots, total
	}
	agrees := func(c *netcode.Client, dots [players][2]float64, total int64) error {
		if v, _ := c.Read("counters/total"); valueInt(v) != total {
			return fmt.Errorf("counters/total = %d, want %d", valueInt(v), total)
		}
		for j := range players {
			path := fmt.Sprintf("dots/%d", j)
			v, ok := c.Read(path)
			f, err := netcode.Floats(v)
			if !ok || err != nil || len(f) != 2 || f[0] != dots[j][0] || f[1] != dots[j][1] {
				return fmt.Errorf("%s = %v (present %v), want %v", path, f, ok, dots[j])
			}
		}
		return nil
	}
	quietStart := time.Now()
	var lastErr error
	loopWhy(t, quietMax, clients, on, func() bool {
		for i, p := range ps {
			if st := p.c.Stats(); st.Pending > 0 || len(p.result) < len(p.calls) {
				lastErr = fmt.Errorf("player %d: %d calls pending, %d of %d answered, connected %v, sessions %d, redials %d, backlogs %d",
					i, st.Pending, len(p.result), len(p.calls), st.Connected, st.Sessions, st.Redials, st.Backlogs)
				return false
			}
		}
		dots, total := want()
		for i, p := range ps {
			if lastErr = agrees(p.c, dots, total); lastErr != nil {
				lastErr = fmt.Errorf("player %d: %w", i, lastErr)
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(lastErr) })
	quiet := time.Since(quietStart)

	// A fresh client's snapshot is the authority's latest valid values.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	obs, err := netcode.Dial(ctx, addr, netcode.Options{Registry: e2eReg(), Transport: fastTransport()})
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	defer obs.Close()
	obs.Watch("dots/")
	obs.Watch("counters/")
	dots, total := want()
	loop(t, 5*time.Second, []*netcode.Client{obs}, nil, func() bool {
		lastErr = agrees(obs, dots, total)
		return lastErr == nil
	})

	var sum struct{ calls, confirmed, failed, mis, reruns, skips, corrections uint64 }
	for i, p := range ps {
		st := p.c.Stats()
		sum.calls += st.Calls
		sum.confirmed += st.Confirmed
		sum.failed += st.Failed
		sum.mis += st.Mispredictions
		sum.reruns += st.Reruns
		sum.skips += st.BudgetSkips
		sum.corrections += st.Corrections
		t.Logf("player %d: calls %d confirmed %d failed %d mispredicted %d reruns %d skips %d corrections %d; rtt %v (min %v, jitter %v) view delay %v clock bound %v; bytes in %d out %d (%.0f/%.0f B/s); interpolated %d frames",
			i, st.Calls, st.Confirmed, st.Failed, st.Mispredictions, st.Reruns, st.BudgetSkips, st.Corrections,
			st.RTT.Round(time.Millisecond), st.RTTMin.Round(time.Millisecond), st.Jitter.Round(time.Millisecond),
			st.ViewDelay.Round(time.Millisecond), st.ErrorBound.Round(time.Microsecond),
			st.BytesIn, st.BytesOut, st.BytesInPerSec, st.BytesOutPerSec, p.interp)
		if st.Calls != uint64(len(p.calls)) || st.Confirmed+st.Failed != st.Calls {
			t.Errorf("player %d: calls %d (made %d), confirmed %d + failed %d", i, st.Calls, len(p.calls), st.Confirmed, st.Failed)
		}
		if st.Failed > 0 {
			t.Logf("player %d: first failure: %v", i, p.failed)
		}
		if st.Failed > st.Calls/20 {
			t.Errorf("player %d: %d of %d calls failed", i, st.Failed, st.Calls)
		}
		if st.Mispredictions > st.Calls || st.BytesIn == 0 || st.BytesOut == 0 || st.Sessions != 1 || p.stray != 0 {
			t.Errorf("player %d: implausible counters %+v (stray results %d)", i, st, p.stray)
		}
		// The profile's round trip is 240 ms, each way 120 ± 40 ms. A
		// loaded machine only adds to it, so only the floor is checked.
		if st.RTTMin < 150*time.Millisecond || st.RTT < 200*time.Millisecond {
			t.Errorf("player %d: rtt %v, min %v; the %s profile's round trip is 240 ± 80 ms", i, st.RTT, st.RTTMin, preset)
		}
		if p.interp == 0 {
			t.Errorf("player %d: never interpolated a remote dot", i)
		}
	}
	n := srv.Stats().Node
	t.Logf("%d players × %v at %d Hz over %s (seed %d): dial %v, calling %v, quiet %v, total %v; calls %d confirmed %d failed %d mispredicted %d client reruns %d budget skips %d corrections %d; authority ran %d, rejected %d, reruns %d",
		players, calling, rate, preset, seed, dialled.Round(time.Millisecond), called.Round(time.Millisecond), quiet.Round(time.Millisecond),
		time.Since(begin).Round(time.Millisecond), sum.calls, sum.confirmed, sum.failed, sum.mis, sum.reruns, sum.skips, sum.corrections, n.Calls, n.CallsRejected, n.Reruns)
	if sum.mis == 0 {
		t.Errorf("no misprediction: %d players bumping one counter through a %s link must collide", players, preset)
	}
	if n.Calls < sum.confirmed {
		t.Errorf("authority ran %d calls (rejected %d), players had %d confirmed", n.Calls, n.CallsRejected, sum.confirmed)
	}
}

// TestE2ERegistry checks the end-to-end game's move on a plain store.
func TestE2ERegistry(t *testing.T) {
	reg := e2eReg()
	cfg := netcode.DefaultConfig()
	s, err := netcode.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := int64(10 * time.Second)
	for i, args := range [][]byte{
		netcode.AppendFloats([]byte{3}, 1, -1),
		netcode.AppendFloats([]byte{3}, 1, 0),
	} {
		out := reg.Run(s, &cfg, netcode.Call{ID: netcode.CallID{Creator: 1, Seq: uint64(i + 1)}, Name: "move", Args: args, Time: now + int64(i)}, 0)
		if _, err := s.Commit(now, &out); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := s.Latest("dots/3", netcode.Time{Nanos: now + 10})
	if f, _ := netcode.Floats(v.Value); len(f) != 2 || f[0] != 2 || f[1] != -1 {
		t.Errorf("dots/3 = %v, want [2 -1]", f)
	}
	bad := reg.Run(s, &cfg, netcode.Call{ID: netcode.CallID{Creator: 1, Seq: 9}, Name: "move", Args: []byte{1}, Time: now + 5}, 0)
	if bad.Err == nil {
		t.Error("move with short args succeeded")
	}
}
