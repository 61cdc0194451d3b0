package physics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestGridTable checks the column table against a map through random
// creations and releases, so that backward-shift deletion never loses or
// duplicates a column however probe runs wrap and grow.
func TestGridTable(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 5))
			g := makeGrid()
			want := map[uint64]bool{}
			span := int32(8 + rng.IntN(60)) // a small span makes long probe runs
			for step := range 20000 {
				x, y := rng.Int32N(span)-span/2, rng.Int32N(span)-span/2
				key := packXY(x, y)
				if rng.IntN(3) == 0 {
					if c := g.find(x, y); c != nil {
						g.release(c.key)
						delete(want, key)
					}
				} else {
					c := g.column(x, y)
					if c.key != key || !c.used {
						t.Fatalf("step %d: column(%d, %d) = key %x used %v", step, x, y, c.key, c.used)
					}
					want[key] = true
				}
				if g.n != len(want) {
					t.Fatalf("step %d: %d columns, want %d", step, g.n, len(want))
				}
			}
			for x := -span; x <= span; x++ {
				for y := -span; y <= span; y++ {
					if got := g.find(x, y) != nil; got != want[packXY(x, y)] {
						t.Fatalf("find(%d, %d) = %v, want %v", x, y, got, !got)
					}
				}
			}
		})
	}
}

// TestBox32 checks that float32 bounds contain the float64 bounds they
// are made from.
func TestBox32(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, -0.1, 1e-40, -1e-40, math.SmallestNonzeroFloat64, 1 << 30, -(1 << 30), 16777217, -16777217, 1e39, -1e39, math.MaxFloat32, -math.MaxFloat32}
	for range 10000 {
		v := (rng.Float64() - 0.5) * math.Pow(2, float64(rng.IntN(80)-40))
		vals = append(vals, v)
	}
	for _, v := range vals {
		if lo := float64(down32(v)); !(lo <= v) {
			t.Errorf("down32(%v) = %v, above it", v, lo)
		}
		if hi := float64(up32(v)); !(hi >= v) {
			t.Errorf("up32(%v) = %v, below it", v, hi)
		}
	}
}

// TestArenaBounded rewrites one moving body thousands of times inside one
// bucket, between queries, so that layers run out of chunks and arenas fill
// with garbage: answers must stay exact and every arena within twice its
// live entries plus minArena.
func TestArenaBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bucket = time.Hour // every write lands in one bucket
	w, err := New(cfg)
	must(t, err)
	ref := newBrute(cfg)
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range 40 { // neighbours sharing the cells
		b := Body{Path: fmt.Sprintf("n/%d", i), Shape: Circle(5), Motion: []Keyframe{{Pos: V(rng.Float64()*200, rng.Float64()*200), Vel: V(1, 1)}}}
		must(t, w.Set(b))
		ref.seed([]Body{b})
	}
	for step := range 5000 {
		k := Keyframe{T: int64(rng.IntN(50)) * ms, Pos: V(rng.Float64()*200, rng.Float64()*200), Vel: V(rng.Float64()*100, 0)}
		must(t, w.Upsert("p", Circle(8), k))
		ref.upsert("p", Circle(8), k)
		if step%7 == 0 {
			ray := Ray{Origin: V(rng.Float64()*200, -10), Dir: V(0, 1), MaxDist: 400}
			tq := int64(rng.IntN(60)) * ms
			gh, gok, err := w.Raycast(ray, tq, Filter{})
			must(t, err)
			if wh, wok := ref.raycast(ray, tq, Filter{}); gok != wok || gh != wh {
				t.Fatalf("step %d: Raycast(%+v, %d) = %+v %v, want %+v %v", step, ray, tq, gh, gok, wh, wok)
			}
		}
	}
	for b, bk := range w.g.buckets {
		if len(bk.ents) > 2*bk.live+minArena {
			t.Errorf("bucket %d: arena of %d entries for %d live", b, len(bk.ents), bk.live)
		}
	}
}

// TestQueuedFiling writes ticks of many bodies, so that the filing queue
// is laid out by cell (or, spread too wide for that, filed piece by piece),
// with corrections and removals of queued pieces between, and checks every
// query against the brute-force reference.
func TestQueuedFiling(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spread float64
	}{{"dense", 1500}, {"sparse", 1 << 24}} {
		t.Run(tc.name, func(t *testing.T) {
			const n, seed = 800, 11
			rng := rand.New(rand.NewPCG(seed, 2))
			cfg := DefaultConfig()
			w, err := New(cfg)
			must(t, err)
			ref := newBrute(cfg)
			pos := make([]Vec2, n)
			for i := range pos {
				pos[i] = V(rng.Float64()*tc.spread, rng.Float64()*tc.spread)
			}
			vel := func() Vec2 { return V(rng.Float64()*400-200, rng.Float64()*400-200) }
			now := int64(0)
			for tick := range 12 {
				for i := range pos {
					p := fmt.Sprintf("b/%d", i)
					switch r := rng.IntN(40); {
					case r == 0:
						w.Remove(p)
						ref.remove(p)
						continue
					case r == 1 && tick > 0: // a correction of the piece just queued
						k := Keyframe{T: now - 20*ms, Pos: pos[i], Vel: vel()}
						must(t, w.Upsert(p, Circle(12), k))
						ref.upsert(p, Circle(12), k)
					}
					k := Keyframe{T: now, Pos: pos[i], Vel: vel()}
					must(t, w.Upsert(p, Circle(12), k))
					ref.upsert(p, Circle(12), k)
					pos[i] = k.At(now + 50*ms)
				}
				now += 50 * ms
				must(t, w.Advance(now))
				ref.advance(now)
				for q := range 40 {
					i := rng.IntN(n)
					tq := max(w.Horizon(), now-int64(rng.IntN(400))*ms)
					ray := Ray{Origin: pos[i].Add(V(30, 0)), Dir: V(rng.Float64()-0.5, rng.Float64()-0.5), MaxDist: 600}
					gh, gok, err := w.Raycast(ray, tq, Filter{})
					must(t, err)
					if wh, wok := ref.raycast(ray, tq, Filter{}); gok != wok || gh != wh {
						t.Fatalf("tick %d query %d: Raycast(%+v, %d) = %+v %v, want %+v %v", tick, q, ray, tq, gh, gok, wh, wok)
					}
					sw := Sweep{Radius: 10, From: pos[i].Add(V(-40, 5)), To: pos[i].Add(V(40, -5)), T0: tq, T1: min(tq+50*ms, now)}
					gc, gok, err := w.SweepCircle(sw, Filter{})
					must(t, err)
					if wc, wok := ref.sweep(sw, Filter{}); gok != wok || gc != wc {
						t.Fatalf("tick %d query %d: SweepCircle(%+v) = %+v %v, want %+v %v", tick, q, sw, gc, gok, wc, wok)
					}
					gn, err := w.Nearest(pos[i], 3, tq, 300, Filter{}, nil)
					must(t, err)
					if wn := ref.nearest(pos[i], 3, tq, 300, Filter{}); !slices.Equal(gn, wn) {
						t.Fatalf("tick %d query %d: Nearest = %v, want %v", tick, q, gn, wn)
					}
				}
			}
		})
	}
}

// TestUpsertAllocs holds the steady state of a write-heavy world to its
// allocation budget: once layers, columns and motions have reached their
// working sizes, a tick of upserts and an Advance reuse them.
func TestUpsertAllocs(t *testing.T) {
	const n = 400
	rng := rand.New(rand.NewPCG(4, 4))
	w := newWorld(t, nil)
	last := make([]Keyframe, n)
	for i := range last {
		last[i] = Keyframe{Pos: V(rng.Float64()*1500, rng.Float64()*1500)}
	}
	vels := make([]Vec2, 1024)
	for i := range vels {
		vels[i] = V(rng.Float64()*300-150, rng.Float64()*300-150)
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("p/%d", i)
	}
	now, r := int64(0), 0
	tick := func() {
		for i := range last {
			k := Keyframe{T: now, Pos: last[i].At(now), Vel: vels[(r*n+i)%1021]}
			if err := w.Upsert(paths[i], Circle(12), k); err != nil {
				t.Fatal(err)
			}
			last[i] = k
		}
		r++
		now += 50 * int64(time.Millisecond)
		if err := w.Advance(now); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 { // warm up: 50 s of ticks, until pooled slices have grown
		tick()
	}
	got := testing.AllocsPerRun(20, tick)
	if perWrite := got / n; perWrite > 0.01 {
		t.Errorf("%.1f allocations per tick of %d writes (%.4f per write), budget 0.01 per write", got, n, perWrite)
	}
}

// TestColumnsReleased moves bodies across thousands of cells: the columns
// and buckets they leave behind must be released as the window passes, so
// the table stays the size of what the window covers.
func TestColumnsReleased(t *testing.T) {
	w := newWorld(t, nil) // CellSize 64, Window 1 s, Bucket 100 ms
	const n, ticks = 20, 400
	for tick := range int64(ticks) {
		now := tick * 50 * ms
		for i := range n {
			// 1280 units/s: a cell per tick, 8000 cells in all.
			k := Keyframe{T: now, Pos: V(float64(now)*1280/1e9, float64(i)*200), Vel: V(1280, 0)}
			must(t, w.Upsert(fmt.Sprintf("b/%d", i), Circle(10), k))
		}
		must(t, w.Advance(now))
	}
	// Each body covers about 40 cells over the window and its extra
	// buckets (756 columns in all when written); without release it
	// would be every cell it ever crossed.
	if max := n * 100; w.g.n > max {
		t.Errorf("%d columns in use after %d ticks, want at most %d", w.g.n, ticks, max)
	}
	if len(w.g.buckets) > 16 {
		t.Errorf("%d buckets live, want at most 16", len(w.g.buckets))
	}
}
