package physics

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	diffSeeds = flag.Int("physics.seeds", 5000, "random scenes in TestDifferential")
	diffSeed  = flag.Uint64("physics.seed", 0, "run only this TestDifferential seed (0: all)")
)

// scene draws random worlds small enough to check many of them: a few
// dozen bodies of every kind in a 400×400 area, coarse and fine cells,
// short buckets and windows, and tiny MaxEntryCells so the oversize list
// is used too. Coordinates are often whole numbers so that ties, tangent
// contacts and axis-parallel rays happen.
type scene struct {
	rng  *rand.Rand
	cfg  Config
	now  int64
	next int
}

func newScene(seed uint64) *scene {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cfg := Config{
		CellSize:      []float64{4, 16, 50, 128}[rng.IntN(4)],
		Bucket:        []time.Duration{7 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond}[rng.IntN(3)],
		Window:        []time.Duration{0, 100 * time.Millisecond, time.Second}[rng.IntN(3)],
		Extrapolate:   []time.Duration{0, 40 * time.Millisecond, 150 * time.Millisecond}[rng.IntN(3)],
		MaxBodies:     1000,
		MaxKeyframes:  1 << 20,
		MaxEntryCells: []int{1, 6, 64}[rng.IntN(3)],
	}
	return &scene{rng: rng, cfg: cfg, now: int64(rng.IntN(3)-1) * int64(time.Hour)}
}

func (s *scene) coord() float64 {
	if s.rng.IntN(3) == 0 {
		return float64(s.rng.IntN(41)*10 - 200)
	}
	return s.rng.Float64()*400 - 200
}

func (s *scene) vec() Vec2 { return Vec2{s.coord(), s.coord()} }

func (s *scene) small() float64 {
	if s.rng.IntN(3) == 0 {
		return float64(s.rng.IntN(4) * 5)
	}
	return s.rng.Float64() * 30
}

func (s *scene) shape() Shape {
	off := func() Vec2 {
		if s.rng.IntN(2) == 0 {
			return Vec2{}
		}
		return Vec2{s.small() - 15, s.small() - 15}
	}
	switch s.rng.IntN(5) {
	case 0:
		return Point(off())
	case 1:
		return Shape{Kind: KindCircle, A: off(), Radius: s.small()}
	case 2:
		return Segment(off(), off())
	case 3:
		return Capsule(off(), off(), s.small())
	}
	a, b := off(), off()
	return Box(Vec2{math.Min(a.X, b.X), math.Min(a.Y, b.Y)}, Vec2{math.Max(a.X, b.X), math.Max(a.Y, b.Y)})
}

func (s *scene) vel() Vec2 {
	if s.rng.IntN(4) == 0 {
		return Vec2{}
	}
	if s.rng.IntN(3) == 0 {
		return Vec2{float64(s.rng.IntN(7)*50 - 150), float64(s.rng.IntN(7)*50 - 150)}
	}
	return Vec2{s.rng.Float64()*600 - 300, s.rng.Float64()*600 - 300}
}

func (s *scene) dt() int64 {
	return int64(1+s.rng.IntN(120)) * int64(time.Millisecond) / int64(1+s.rng.IntN(3))
}

func (s *scene) path() string {
	if s.next > 0 && s.rng.IntN(3) == 0 {
		return fmt.Sprintf("b/%d", s.rng.IntN(s.next))
	}
	s.next++
	return fmt.Sprintf("b/%d", s.next-1)
}

func (s *scene) motion(from int64) []Keyframe {
	n := 1 + s.rng.IntN(5)
	ks := make([]Keyframe, n)
	t := from
	for i := range ks {
		ks[i] = Keyframe{T: t, Pos: s.vec(), Vel: s.vel()}
		t += s.dt()
	}
	return ks
}

// queryTime is a time a query may ask about: within the window, often on
// a keyframe boundary, sometimes ahead of the newest keyframe.
func (s *scene) queryTime(w *World) int64 {
	lo := max(w.Horizon(), s.now-int64(time.Second))
	return lo + s.rng.Int64N(s.now-lo+int64(300*time.Millisecond)+1)
}

func (s *scene) filter() Filter {
	var f Filter
	if s.rng.IntN(4) == 0 {
		f.Layers = uint32(1 + s.rng.IntN(3))
	}
	if s.rng.IntN(4) == 0 && s.next > 0 {
		f.Exclude = fmt.Sprintf("b/%d", s.rng.IntN(s.next))
	}
	return f
}

func TestDifferential(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*diffSeeds); seed++ {
		if *diffSeed != 0 && seed != *diffSeed {
			continue
		}
		if err := runDifferential(seed, 15); err != nil {
			t.Fatalf("seed %d (rerun with -physics.seed=%d): %v", seed, seed, err)
		}
	}
}

// runDifferential drives a World and the brute-force reference through the
// same random writes and compares every query answer exactly.
func runDifferential(seed uint64, steps int) error {
	s := newScene(seed)
	w, err := New(s.cfg)
	if err != nil {
		return err
	}
	ref := newBrute(s.cfg)
	var bodies []Body
	for range s.rng.IntN(25) {
		b := Body{Path: s.path(), Shape: s.shape(), Layers: uint32(s.rng.IntN(4)), Motion: s.motion(s.now - s.dt())}
		dup := false
		for _, o := range bodies {
			dup = dup || o.Path == b.Path
		}
		if !dup {
			bodies = append(bodies, b)
		}
	}
	if err := w.Seed(bodies); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	ref.seed(bodies)
	for step := range steps {
		switch op := s.rng.IntN(10); {
		case op < 6:
			p := s.path()
			sh := s.shape()
			if b, ok := ref.bodies[p]; ok && s.rng.IntN(8) != 0 {
				sh = b.Shape
			}
			k := Keyframe{T: s.now + s.dt() - int64(60*time.Millisecond), Pos: s.vec(), Vel: s.vel()}
			k.T = max(k.T, w.Horizon())
			if err := w.Upsert(p, sh, k); err != nil {
				return fmt.Errorf("step %d: upsert %q %+v: %w", step, p, k, err)
			}
			ref.upsert(p, sh, k)
		case op == 6:
			p := s.path()
			_, had := ref.bodies[p]
			if got := w.Remove(p); got != had {
				return fmt.Errorf("step %d: Remove(%q) = %v, want %v", step, p, got, had)
			}
			ref.remove(p)
		case op == 7:
			b := Body{Path: s.path(), Shape: s.shape(), Layers: uint32(s.rng.IntN(4)), Motion: s.motion(max(w.Horizon(), s.now-s.dt()))}
			if err := w.Set(b); err != nil {
				return fmt.Errorf("step %d: set: %w", step, err)
			}
			ref.seed([]Body{b})
		default:
			s.now += s.dt()
			if err := w.Advance(s.now); err != nil {
				return err
			}
			ref.advance(s.now)
		}
		if w.Len() != len(ref.bodies) {
			return fmt.Errorf("step %d: Len = %d, want %d", step, w.Len(), len(ref.bodies))
		}
		for range 2 {
			if err := s.compareQueries(w, ref); err != nil {
				return fmt.Errorf("step %d: %w", step, err)
			}
		}
	}
	return nil
}

func (s *scene) compareQueries(w *World, ref *brute) error {
	t := s.queryTime(w)
	f := s.filter()
	dir := Vec2{s.rng.Float64()*2 - 1, s.rng.Float64()*2 - 1}
	if s.rng.IntN(3) == 0 {
		dir = []Vec2{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}}[s.rng.IntN(5)]
	}
	if dir == (Vec2{}) {
		dir = Vec2{1, 0}
	}
	ray := Ray{Origin: s.vec(), Dir: dir, MaxDist: []float64{50, 500, math.Inf(1)}[s.rng.IntN(3)]}
	gh, gok, err := w.Raycast(ray, t, f)
	if err != nil {
		return fmt.Errorf("raycast: %w", err)
	}
	wh, wok := ref.raycast(ray, t, f)
	if gok != wok || gh != wh {
		diff := cmp.Diff(wh, gh)
		return fmt.Errorf("Raycast(%+v, %d, %+v) ok %v want %v, -want +got:\n%s", ray, t, f, gok, wok, diff)
	}

	t1 := t + s.rng.Int64N(int64(100*time.Millisecond))
	q := Sweep{Radius: s.small(), From: s.vec(), T0: t, T1: t1}
	q.To = q.From.Add(Vec2{s.coord() / 2, s.coord() / 2})
	gc, gok, err := w.SweepCircle(q, f)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	wc, wok := ref.sweep(q, f)
	if gok != wok || gc != wc {
		diff := cmp.Diff(wc, gc)
		return fmt.Errorf("SweepCircle(%+v, %+v) ok %v want %v, -want +got:\n%s", q, f, gok, wok, diff)
	}

	sh, at := s.shape(), s.vec()
	gs, err := w.Overlaps(sh, at, t, f, nil)
	if err != nil {
		return fmt.Errorf("overlaps: %w", err)
	}
	if want := ref.overlaps(sh, at, t, f); !slices.Equal(want, gs) {
		diff := cmp.Diff(want, gs, cmpopts.EquateEmpty())
		return fmt.Errorf("Overlaps(%+v, %v, %d) -want +got:\n%s", sh, at, t, diff)
	}

	gs, err = w.Candidates(sh, at, t, t1, f, nil)
	if err != nil {
		return fmt.Errorf("candidates: %w", err)
	}
	if want := ref.candidates(sh, at, t, t1, f); !slices.Equal(want, gs) {
		diff := cmp.Diff(want, gs, cmpopts.EquateEmpty())
		return fmt.Errorf("Candidates(%+v, %v, %d, %d) -want +got:\n%s", sh, at, t, t1, diff)
	}

	k := s.rng.IntN(6)
	maxDist := []float64{20, 200, math.Inf(1)}[s.rng.IntN(3)]
	p := s.vec()
	if s.rng.IntN(10) == 0 {
		p = p.Scale(40) // far outside the occupied cells
	}
	gn, err := w.Nearest(p, k, t, maxDist, f, nil)
	if err != nil {
		return fmt.Errorf("nearest: %w", err)
	}
	if want := ref.nearest(p, k, t, maxDist, f); !slices.Equal(want, gn) {
		diff := cmp.Diff(want, gn, cmpopts.EquateEmpty())
		return fmt.Errorf("Nearest(%v, %d, %d, %v) -want +got:\n%s", p, k, t, maxDist, diff)
	}
	return nil
}
