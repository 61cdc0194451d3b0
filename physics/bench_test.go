package physics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/rtree"
)

// The benchmark world: n circles of radius 12 in a 4000×4000 square, each
// moving at up to 250 units/s in a direction that changes at every keyframe,
// one keyframe per 50 ms, over a 1 s history window (21 keyframes each).
// Queries ask about a random time in the window, as lag compensation does.
//
// Three implementations answer the same queries in the same run:
//
//   - grid: World.
//   - brute: every body tested exactly, no index.
//   - rtree: github.com/tidwall/rtree holding one box per keyframe piece —
//     the piece's swept bounds over its indexed interval, the boxes World
//     files (before its tiny padding and float32 rounding) — inserted on
//     upsert, deleted when the piece
//     leaves the window. A ray walks the tree in 64-unit steps (World's cell
//     size) so that it can stop at the first hit as the grid walk does; a
//     sweep searches its bounds once. Candidates are then tested with the
//     same exact narrowphase.
const (
	benchWorld  = 4000.0
	benchRadius = 12.0
	benchSpeed  = 250.0
	benchTick   = 50 * ms
	benchWindow = time.Second
	benchRayLen = 1000.0
)

var benchSizes = []int{100, 1000, 10000}

func benchConfig() Config {
	cfg := DefaultConfig()
	cfg.Window = benchWindow
	return cfg
}

type benchScene struct {
	bodies  []Body
	now     int64
	rays    []benchRay
	sweeps  []Sweep
	upserts []Vec2 // velocities for appended keyframes
}

type benchRay struct {
	r Ray
	t int64
}

var (
	benchMu     sync.Mutex
	benchScenes = map[int]*benchScene{}
)

func randVel(rng *rand.Rand) Vec2 {
	a := rng.Float64() * 2 * math.Pi
	s := 20 + rng.Float64()*(benchSpeed-20)
	return Vec2{math.Cos(a) * s, math.Sin(a) * s}
}

// bounce keeps a keyframe's motion inside the world for one tick.
func bounce(p, v Vec2) Vec2 {
	next := p.Add(v.Scale(float64(benchTick) / 1e9))
	if next.X < 0 || next.X > benchWorld {
		v.X = -v.X
	}
	if next.Y < 0 || next.Y > benchWorld {
		v.Y = -v.Y
	}
	return v
}

func sceneFor(n int) *benchScene {
	benchMu.Lock()
	defer benchMu.Unlock()
	if s, ok := benchScenes[n]; ok {
		return s
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	s := &benchScene{now: int64(benchWindow)}
	steps := int(int64(benchWindow)/benchTick) + 1
	for i := range n {
		p := Vec2{rng.Float64() * benchWorld, rng.Float64() * benchWorld}
		ks := make([]Keyframe, steps)
		for j := range ks {
			k := Keyframe{T: int64(j) * benchTick, Pos: p, Vel: bounce(p, randVel(rng))}
			ks[j] = k
			p = k.At(k.T + benchTick)
		}
		s.bodies = append(s.bodies, Body{Path: fmt.Sprintf("players/%d", i), Shape: Circle(benchRadius), Motion: ks})
	}
	for range 1024 {
		o := Vec2{rng.Float64() * benchWorld, rng.Float64() * benchWorld}
		a := rng.Float64() * 2 * math.Pi
		s.rays = append(s.rays, benchRay{Ray{Origin: o, Dir: Vec2{math.Cos(a), math.Sin(a)}.Unit(), MaxDist: benchRayLen}, rng.Int64N(s.now + 1)})
		t0 := rng.Int64N(s.now - benchTick + 1)
		s.sweeps = append(s.sweeps, Sweep{Radius: benchRadius, From: o, To: o.Add(randVel(rng).Scale(float64(benchTick) / 1e9)), T0: t0, T1: t0 + benchTick})
		s.upserts = append(s.upserts, randVel(rng))
	}
	benchScenes[n] = s
	return s
}

// benchIndex is what each implementation offers the benchmarks.
type benchIndex interface {
	raycast(r Ray, t int64) (string, float64, bool)
	sweep(q Sweep) (string, float64, bool)
	upsert(i int, path string, k Keyframe)
	advance(now int64)
}

// gridIndex is World.
type gridIndex struct{ w *World }

func newGrid(tb testing.TB, s *benchScene) *gridIndex {
	w, err := New(benchConfig())
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Seed(s.bodies); err != nil {
		tb.Fatal(err)
	}
	if err := w.Advance(s.now); err != nil {
		tb.Fatal(err)
	}
	return &gridIndex{w}
}

func (g *gridIndex) raycast(r Ray, t int64) (string, float64, bool) {
	h, ok, _ := g.w.Raycast(r, t, Filter{})
	return h.Path, h.Dist, ok
}

func (g *gridIndex) sweep(q Sweep) (string, float64, bool) {
	c, ok, _ := g.w.SweepCircle(q, Filter{})
	return c.Path, c.Frac, ok
}

func (g *gridIndex) upsert(_ int, path string, k Keyframe) {
	if err := g.w.Upsert(path, Circle(benchRadius), k); err != nil {
		panic(err)
	}
}

func (g *gridIndex) advance(now int64) { _ = g.w.Advance(now) }

// benchBody is a body of the baselines.
type benchBody struct {
	path  string
	shape Shape
	keys  []Keyframe
	seq0  uint32 // seq of keys[0] (rtree item identity)
	mark  uint64
}

// bruteIndex tests every body.
type bruteIndex struct {
	bodies  []benchBody
	horizon int64
	extrap  int64
}

func newBrute2(s *benchScene) *bruteIndex {
	cfg := benchConfig()
	b := &bruteIndex{extrap: int64(cfg.Extrapolate), horizon: s.now - int64(cfg.Window)}
	for _, body := range s.bodies {
		b.bodies = append(b.bodies, benchBody{path: body.Path, shape: body.Shape, keys: append([]Keyframe(nil), body.Motion...)})
	}
	return b
}

func (b *bruteIndex) raycast(r Ray, t int64) (string, float64, bool) {
	r.Dir = r.Dir.Unit() // as World does
	best, bi := math.Inf(1), -1
	for i := range b.bodies {
		p := &b.bodies[i]
		if h, ok := rayBody(p.shape, p.keys, b.extrap, t, r.Origin, r.Dir, r.MaxDist); ok && (h.s < best || h.s == best && p.path < b.bodies[bi].path) {
			best, bi = h.s, i
		}
	}
	if bi < 0 {
		return "", 0, false
	}
	return b.bodies[bi].path, best, true
}

func (b *bruteIndex) sweep(q Sweep) (string, float64, bool) {
	best, bi := math.Inf(1), -1
	for i := range b.bodies {
		p := &b.bodies[i]
		if toi, _, ok := sweepBody(p.shape, p.keys, b.extrap, q); ok && (toi < best || toi == best && p.path < b.bodies[bi].path) {
			best, bi = toi, i
		}
	}
	if bi < 0 {
		return "", 0, false
	}
	return b.bodies[bi].path, best / float64(q.T1-q.T0), true
}

// trimmed drops pieces that ended before the horizon, as World.Advance does,
// and returns how many it dropped.
func trimmed(p *benchBody, horizon int64) int {
	n := 0
	for n+1 < len(p.keys) && p.keys[n+1].T < horizon {
		n++
	}
	if n > 0 {
		m := copy(p.keys, p.keys[n:])
		p.keys = p.keys[:m]
		p.seq0 += uint32(n)
	}
	return n
}

func (b *bruteIndex) upsert(i int, _ string, k Keyframe) {
	p := &b.bodies[i]
	p.keys = append(p.keys[:countBefore(p.keys, k.T)], k)
	trimmed(p, b.horizon)
}

func (b *bruteIndex) advance(now int64) { b.horizon = now - int64(benchWindow) }

// rtreeIndex keeps one rtree box per keyframe piece.
type rtreeIndex struct {
	bruteIndex
	tr    rtree.RTreeGN[float64, uint64]
	stamp uint64
	found []int32
}

func rtreeItem(id int, seq uint32) uint64 { return uint64(id)<<32 | uint64(seq) }

// pieceBox is the box World indexes for piece j: swept bounds over
// [T, end], end being the next keyframe or T + Extrapolate.
func (r *rtreeIndex) pieceBox(p *benchBody, j int) (min, max [2]float64) {
	end := pieceEnd(p.keys, j, r.extrap)
	lb := p.shape.Bounds()
	k := p.keys[j]
	box := lb.Translate(k.Pos).Union(lb.Translate(k.At(end)))
	return [2]float64{box.Min.X, box.Min.Y}, [2]float64{box.Max.X, box.Max.Y}
}

func newRtree(s *benchScene) *rtreeIndex {
	r := &rtreeIndex{bruteIndex: *newBrute2(s)}
	for i := range r.bodies {
		p := &r.bodies[i]
		trimmed(p, r.horizon)
		for j := range p.keys {
			mn, mx := r.pieceBox(p, j)
			r.tr.Insert(mn, mx, rtreeItem(i, p.seq0+uint32(j)))
		}
	}
	return r
}

// visit tests the body of an rtree item once per query, if the item's
// piece holds at t.
func (r *rtreeIndex) visit(item uint64, t0, t1 int64) {
	id := int32(item >> 32)
	p := &r.bodies[id]
	j := int(uint32(item) - p.seq0)
	if j < 0 || j >= len(p.keys) || p.keys[j].T > t1 || pieceEnd(p.keys, j, r.extrap) < t0 || p.mark == r.stamp {
		return
	}
	p.mark = r.stamp
	r.found = append(r.found, id)
}

func (r *rtreeIndex) raycast(ray Ray, t int64) (string, float64, bool) {
	ray.Dir = ray.Dir.Unit() // as World does
	r.stamp++
	best, bi := math.Inf(1), int32(-1)
	const step = 64.0
	for s0 := 0.0; s0 < ray.MaxDist && s0 <= best; s0 += step {
		a, b := ray.Origin.Add(ray.Dir.Scale(s0)), ray.Origin.Add(ray.Dir.Scale(math.Min(s0+step, ray.MaxDist)))
		box := segBounds(a, b)
		r.found = r.found[:0]
		r.tr.Search([2]float64{box.Min.X, box.Min.Y}, [2]float64{box.Max.X, box.Max.Y}, func(_, _ [2]float64, item uint64) bool {
			r.visit(item, t, t)
			return true
		})
		for _, id := range r.found {
			p := &r.bodies[id]
			if h, ok := rayBody(p.shape, p.keys, r.extrap, t, ray.Origin, ray.Dir, ray.MaxDist); ok && (h.s < best || h.s == best && p.path < r.bodies[bi].path) {
				best, bi = h.s, id
			}
		}
	}
	if bi < 0 {
		return "", 0, false
	}
	return r.bodies[bi].path, best, true
}

func (r *rtreeIndex) sweep(q Sweep) (string, float64, bool) {
	r.stamp++
	r.found = r.found[:0]
	box := segBounds(q.From, q.To).Inflate(q.Radius)
	r.tr.Search([2]float64{box.Min.X, box.Min.Y}, [2]float64{box.Max.X, box.Max.Y}, func(_, _ [2]float64, item uint64) bool {
		r.visit(item, q.T0, q.T1)
		return true
	})
	best, bi := math.Inf(1), int32(-1)
	for _, id := range r.found {
		p := &r.bodies[id]
		if toi, _, ok := sweepBody(p.shape, p.keys, r.extrap, q); ok && (toi < best || toi == best && p.path < r.bodies[bi].path) {
			best, bi = toi, id
		}
	}
	if bi < 0 {
		return "", 0, false
	}
	return r.bodies[bi].path, best / float64(q.T1-q.T0), true
}

func (r *rtreeIndex) upsert(i int, _ string, k Keyframe) {
	p := &r.bodies[i]
	cut := countBefore(p.keys, k.T)
	for j := cut; j < len(p.keys); j++ {
		mn, mx := r.pieceBox(p, j)
		r.tr.Delete(mn, mx, rtreeItem(i, p.seq0+uint32(j)))
	}
	p.keys = append(p.keys[:cut], k)
	// The previous piece's box was computed to T + Extrapolate, which
	// still covers it (keyframes arrive every 50 ms < 100 ms), as in World.
	for j := 0; j+1 < len(p.keys) && p.keys[j+1].T < r.horizon; j++ {
		mn, mx := r.pieceBox(p, j)
		r.tr.Delete(mn, mx, rtreeItem(i, p.seq0+uint32(j)))
	}
	trimmed(p, r.horizon)
	mn, mx := r.pieceBox(p, len(p.keys)-1)
	r.tr.Insert(mn, mx, rtreeItem(i, p.seq0+uint32(len(p.keys)-1)))
}

func buildIndex(tb testing.TB, kind string, s *benchScene) benchIndex {
	switch kind {
	case "grid":
		return newGrid(tb, s)
	case "brute":
		return newBrute2(s)
	}
	return newRtree(s)
}

var benchKinds = []string{"grid", "brute", "rtree"}

// TestBenchAgree checks that the three benchmarked implementations give the
// same answers, so the benchmarks compare equal work.
func TestBenchAgree(t *testing.T) {
	s := sceneFor(1000)
	idx := []benchIndex{buildIndex(t, "grid", s), buildIndex(t, "brute", s), buildIndex(t, "rtree", s)}
	hits := 0
	for i := range 200 {
		r := s.rays[i]
		p0, d0, ok0 := idx[0].raycast(r.r, r.t)
		q := s.sweeps[i]
		c0, f0, cok0 := idx[0].sweep(q)
		for j, x := range idx[1:] {
			if p, d, ok := x.raycast(r.r, r.t); p != p0 || d != d0 || ok != ok0 {
				t.Fatalf("ray %d: %s got %q %v %v, grid %q %v %v", i, benchKinds[j+1], p, d, ok, p0, d0, ok0)
			}
			if c, f, ok := x.sweep(q); c != c0 || f != f0 || ok != cok0 {
				t.Fatalf("sweep %d: %s got %q %v %v, grid %q %v %v", i, benchKinds[j+1], c, f, ok, c0, f0, cok0)
			}
		}
		if ok0 {
			hits++
		}
	}
	if hits < 50 {
		t.Errorf("only %d of 200 rays hit: the benchmark scene is too sparse to exercise the narrowphase", hits)
	}
}

func BenchmarkRaycastPast(b *testing.B) {
	for _, n := range benchSizes {
		s := sceneFor(n)
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				x := buildIndex(b, kind, s)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					r := &s.rays[i&1023]
					x.raycast(r.r, r.t)
				}
			})
		}
	}
}

func BenchmarkSweepCircle(b *testing.B) {
	for _, n := range benchSizes {
		s := sceneFor(n)
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				x := buildIndex(b, kind, s)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					x.sweep(s.sweeps[i&1023])
				}
			})
		}
	}
}

// BenchmarkUpsert appends one keyframe per call, round-robin over the
// bodies, advancing the window by one tick after each round; the cost of
// Advance (and of the baselines' trimming) is included.
func BenchmarkUpsert(b *testing.B) {
	for _, n := range benchSizes {
		s := sceneFor(n)
		for _, kind := range benchKinds {
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				x := buildIndex(b, kind, s)
				last := make([]Keyframe, n)
				for i, body := range s.bodies {
					last[i] = body.Motion[len(body.Motion)-1]
				}
				now := s.now
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					j := i % n
					if j == 0 {
						now += benchTick
						x.advance(now)
					}
					k := Keyframe{T: last[j].T + benchTick, Pos: last[j].At(last[j].T + benchTick)}
					// A hashed index gives each body an uncorrelated
					// sequence of velocities; i&1023 would repeat a short
					// cycle per body whose drift piles bodies against the
					// walls as b.N grows.
					k.Vel = bounce(k.Pos, s.upserts[(uint64(i)*0x9e3779b97f4a7c15)>>54])
					last[j] = k
					x.upsert(j, s.bodies[j].Path, k)
				}
			})
		}
	}
}
