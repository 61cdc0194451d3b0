package authority

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rewindnet/rewind/authority/internal/field"
	"github.com/rewindnet/rewind/netcode/wire"
)

var areaSeed = flag.Uint64("area.seed", 0, "seed of TestAreaIncremental (0: a fixed set)")

// TestAreaIncremental plays random moves of players watching the players
// near them on two nodes, one bringing its watches up to date from the
// changes since the last refresh (refreshNear), the other querying the
// index for every watch (areaFull), and wants the same deliveries from
// both after every command: the same entities enter and leave, in the
// same order. A small MaxAreaEntities makes some areas full, where the
// incremental path must fall back to a query.
func TestAreaIncremental(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	if *areaSeed != 0 {
		seeds = []uint64{*areaSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { areaIncremental(t, seed) })
	}
}

func areaIncremental(t *testing.T, seed uint64) {
	const players = 24
	tweak := func(c *Config) {
		c.Limits.MaxSessions = players + 4
		c.Limits.MaxPendingSessions = players + 4
		c.Limits.CallsPerSecond = 1000
		c.Limits.MaxAreaEntities = 6
	}
	inc, full := newHarnessWith(t, tweak), newHarnessWith(t, tweak)
	full.n.areaFull = true
	rng := rand.New(rand.NewPCG(seed, 0xa4ea))
	both := func(line string) {
		t.Helper()
		a, b := inc.exec(line), full.exec(line)
		if a != b {
			t.Fatalf("seed %d: %q:\nincremental:\n%s\nfull:\n%s", seed, line, a, b)
		}
	}
	names := make([]string, players)
	for i := range players {
		names[i] = fmt.Sprintf("p%d", i+1)
		both("connect " + names[i])
		both("hello " + names[i])
		both(fmt.Sprintf("call %s move %d", names[i], rng.IntN(1000)))
	}
	now := int64(10_000)
	both(fmt.Sprintf("tick %d", now))
	for i := range players {
		both(fmt.Sprintf("near %s players/ players/%d/ %d", names[i], i+1, 50+rng.IntN(200)))
	}
	for range 300 {
		now += 25 + int64(rng.IntN(50))
		for range rng.IntN(6) {
			i := rng.IntN(players)
			switch r := rng.IntN(20); {
			case r == 0: // a new radius: the watch is replaced
				both(fmt.Sprintf("near %s players/ players/%d/ %d", names[i], i+1, 50+rng.IntN(200)))
			default: // a step, or now and then a jump across the field
				both(fmt.Sprintf("call %s move %d at=%d", names[i], rng.IntN(1000), now))
			}
		}
		both(fmt.Sprintf("tick %d", now))
	}
	if inc.n.areaQueries >= full.n.areaQueries {
		t.Fatalf("seed %d: %d queries brought the areas up to date, %d in full: the changes were not used", seed, inc.n.areaQueries, full.n.areaQueries)
	}
	t.Logf("seed %d: %d queries against %d", seed, inc.n.areaQueries, full.n.areaQueries)
	if inc.n.stats.AreaEnters == 0 || inc.n.stats.AreaLeaves == 0 {
		t.Fatalf("seed %d: %d enters, %d leaves: the run tested nothing", seed, inc.n.stats.AreaEnters, inc.n.stats.AreaLeaves)
	}
}

// BenchmarkAreaRefresh: 1,000 players of the field game (rewind-load's)
// each watching the players within 300 units (about 20), a twentieth of
// them turning every 100 ms (a turn every two seconds each); an op is one
// InterestEvery: the turns and the tick that brings the areas up to date.
// "changes" brings each area up to date from the changes near it, "full"
// queries the index for every area (the node before refreshNear).
func BenchmarkAreaRefresh(b *testing.B) {
	for _, mode := range []string{"changes", "full"} {
		b.Run(mode, func(b *testing.B) { benchAreaRefresh(b, mode == "full") })
	}
}

func benchAreaRefresh(b *testing.B, full bool) {
	const players, radius = 1000, 300.0
	side := math.Sqrt(players * math.Pi * radius * radius / 20)
	cfg := DefaultConfig(field.Registry())
	cfg.Limits.MaxSessions = players + 8
	cfg.Limits.MaxPendingSessions = players + 8
	cfg.Limits.SnapshotValuesPerSecond = 1e9
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	n.areaFull = full
	h := &harness{t: b, n: n, now: 10_000 * ms, clients: map[string]*tclient{}, seqs: map[string]uint64{}}
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, players)
	move := func(i int, x, y float64) {
		c := h.clients[names[i]]
		h.seqs[names[i]]++
		vx, vy := int16(rng.IntN(400)-200), int16(rng.IntN(400)-200)
		h.send(names[i], &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: c.creator, Seq: h.seqs[names[i]]},
			Name: field.FuncMove, Args: field.MoveArgs(vx, vy, x, y), Time: wire.Time{Nanos: h.now, Creator: c.creator}}})
	}
	for i := range players {
		names[i] = fmt.Sprintf("p%d", i)
		h.exec("connect " + names[i])
		h.exec("hello " + names[i])
		move(i, rng.Float64()*side, rng.Float64()*side)
	}
	h.exec("tick")
	for i := range players {
		h.exec(fmt.Sprintf("near %s %s %s %v", names[i], field.Prefix, field.Entity(h.clients[names[i]].creator), radius))
	}
	step := func() {
		h.now += int64(DefaultInterestEvery)
		for range players / 20 {
			move(rng.IntN(players), 0, 0)
		}
		h.n.Tick(h.now)
		h.n.Ready() // the frames are not decoded: the node's work is measured
	}
	for range 20 {
		step()
	}
	q := n.areaQueries
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(n.areaQueries-q)/float64(b.N), "queries/op")
	// CPU time, not only wall time: a loaded machine inflates the latter.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
