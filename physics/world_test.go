package physics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ms = int64(time.Millisecond)

func newWorld(t *testing.T, mod func(*Config)) *World {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestMotion(t *testing.T) {
	w := newWorld(t, nil) // Extrapolate 100 ms
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 0, Pos: V(0, 0), Vel: V(10, 0)}))
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 1000 * ms, Pos: V(10, 0), Vel: V(0, 20)}))
	must(t, w.Upsert("wall", Segment(V(0, 0), V(0, 100)), Keyframe{T: 0, Pos: V(50, 0)}))
	tests := []struct {
		path string
		t    int64
		want Vec2
		ok   bool
	}{
		{"a", -1, Vec2{}, false},
		{"a", 0, V(0, 0), true},
		{"a", 500 * ms, V(5, 0), true},
		{"a", 1000 * ms, V(10, 0), true},
		{"a", 1050 * ms, V(10, 1), true},
		{"a", 1100 * ms, V(10, 2), true},
		{"a", 1100*ms + 1, Vec2{}, false}, // past the extrapolation limit
		{"wall", 1 << 60, V(50, 0), true}, // at rest: holds for ever
		{"nobody", 0, Vec2{}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.path, tt.t), func(t *testing.T) {
			got, ok := w.Position(tt.path, tt.t)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Position = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}

	// A correction rewrites history from its time on.
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 500 * ms, Pos: V(0, 5), Vel: V(0, 0)}))
	if got := w.Motion("a", nil); len(got) != 2 || got[1].T != 500*ms {
		t.Fatalf("after correction motion = %+v", got)
	}
	if got, _ := w.Position("a", 2000*ms); got != V(0, 5) {
		t.Errorf("corrected position = %v, want (0, 5)", got)
	}
	h, ok, err := w.Raycast(Ray{Origin: V(0, 100), Dir: V(0, -1), MaxDist: 1000}, 1500*ms, Filter{})
	if err != nil || !ok || h.Path != "a" || h.Dist != 94 {
		t.Errorf("raycast after correction = %+v %v %v", h, ok, err)
	}
}

func TestAdvanceTrimsHistory(t *testing.T) {
	w := newWorld(t, nil) // Window 1 s
	for i := range int64(50) {
		must(t, w.Upsert("p", Circle(1), Keyframe{T: i * 100 * ms, Pos: V(float64(i), 0), Vel: V(10, 0)}))
	}
	must(t, w.Advance(4900*ms))
	ks := w.Motion("p", nil)
	if ks[0].T != 3800*ms || len(ks) != 12 {
		t.Errorf("kept %d keyframes from %d, want 12 from 3.8 s (the piece holding at the horizon)", len(ks), ks[0].T)
	}
	if _, _, err := w.Raycast(Ray{Dir: V(1, 0)}, 3899*ms, Filter{}); !errors.Is(err, ErrTooOld) {
		t.Errorf("query before horizon: err = %v, want ErrTooOld", err)
	}
	if err := w.Upsert("p", Circle(1), Keyframe{T: 3800 * ms}); !errors.Is(err, ErrTooOld) {
		t.Errorf("write before horizon: err = %v, want ErrTooOld", err)
	}
	if got, ok := w.Position("p", 3900*ms); !ok || got != V(39, 0) {
		t.Errorf("Position at horizon = %v %v", got, ok)
	}
	// The index holds only buckets from the one before the horizon's on.
	for ci := range w.g.cols {
		c := &w.g.cols[ci]
		for i := range c.nlayers() {
			if b := c.at(i).b; b < floorDiv(w.Horizon(), w.bucket)-1 {
				t.Fatalf("column %d bucket %d survived Advance", ci, b)
			}
		}
	}
	for b := range w.g.buckets {
		if b < floorDiv(w.Horizon(), w.bucket)-1 {
			t.Fatalf("bucket %d still listed after Advance", b)
		}
	}
	must(t, w.Advance(0)) // backwards: ignored
	if w.Horizon() != 3900*ms {
		t.Errorf("horizon moved back to %d", w.Horizon())
	}
}

func TestLimits(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.MaxBodies = 2; c.MaxKeyframes = 3 })
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 0}))
	must(t, w.Upsert("b", Circle(1), Keyframe{T: 0}))
	if err := w.Upsert("c", Circle(1), Keyframe{T: 0}); !errors.Is(err, ErrTooManyBodies) {
		t.Errorf("third body: %v", err)
	}
	if err := w.Seed([]Body{{Path: "c", Shape: Circle(1), Motion: []Keyframe{{}}}}); !errors.Is(err, ErrTooManyBodies) {
		t.Errorf("third body by Seed: %v", err)
	}
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 1}))
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 2}))
	if err := w.Upsert("a", Circle(1), Keyframe{T: 3}); !errors.Is(err, ErrHistoryFull) {
		t.Errorf("fourth keyframe: %v", err)
	}
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 2, Pos: V(1, 1)})) // replacing the last is fine
	if !w.Remove("a") || w.Remove("a") || w.Len() != 1 {
		t.Errorf("Remove twice: Len %d", w.Len())
	}
	must(t, w.Upsert("c", Circle(1), Keyframe{T: 0}))
}

func TestBadInput(t *testing.T) {
	w := newWorld(t, nil)
	must(t, w.Upsert("a", Circle(1), Keyframe{}))
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"empty path", w.Upsert("", Circle(1), Keyframe{}), ErrPath},
		{"NaN radius", w.Upsert("x", Circle(nan), Keyframe{}), ErrShape},
		{"negative radius", w.Upsert("x", Circle(-1), Keyframe{}), ErrShape},
		{"segment radius", w.Upsert("x", Shape{Kind: KindSegment, Radius: 1}, Keyframe{}), ErrShape},
		{"inverted box", w.Upsert("x", Box(V(1, 1), V(0, 0)), Keyframe{}), ErrShape},
		{"unknown kind", w.Upsert("x", Shape{Kind: 99}, Keyframe{}), ErrShape},
		{"Inf position", w.Upsert("x", Circle(1), Keyframe{Pos: V(inf, 0)}), ErrMotion},
		{"huge velocity", w.Upsert("x", Circle(1), Keyframe{Vel: V(0, 1e300)}), ErrMotion},
		{"time out of range", w.Upsert("x", Circle(1), Keyframe{T: math.MaxInt64}), ErrTime},
		{"unordered motion", w.Set(Body{Path: "x", Shape: Circle(1), Motion: []Keyframe{{T: 2}, {T: 1}}}), ErrMotion},
		{"empty motion", w.Set(Body{Path: "x", Shape: Circle(1)}), ErrMotion},
		{"duplicate in seed", w.Seed([]Body{{Path: "x", Shape: Circle(1), Motion: []Keyframe{{}}}, {Path: "x", Shape: Circle(1), Motion: []Keyframe{{}}}}), ErrDuplicate},
		{"zero ray", second(w.Raycast(Ray{MaxDist: 1}, 0, Filter{})), ErrQuery},
		{"NaN ray", second(w.Raycast(Ray{Dir: V(nan, 1), MaxDist: 1}, 0, Filter{})), ErrQuery},
		{"negative ray", second(w.Raycast(Ray{Dir: V(1, 0), MaxDist: -1}, 0, Filter{})), ErrQuery},
		{"inverted sweep", second(w.SweepCircle(Sweep{T0: 2, T1: 1}, Filter{})), ErrQuery},
		{"NaN sweep radius", second(w.SweepCircle(Sweep{Radius: nan}, Filter{})), ErrQuery},
		{"nearest negative k", func() error { _, err := w.Nearest(Vec2{}, -1, 0, 1, Filter{}, nil); return err }(), ErrQuery},
		{"overlap bad shape", func() error { _, err := w.Overlaps(Circle(nan), Vec2{}, 0, Filter{}, nil); return err }(), ErrShape},
		{"query time out of range", second(w.Raycast(Ray{Dir: V(1, 0)}, math.MinInt64, Filter{})), ErrTime},
		{"config", func() error { _, err := New(Config{}); return err }(), ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
	if w.Len() != 1 {
		t.Errorf("failed writes changed the world: Len = %d", w.Len())
	}
}

func second[A, B any](_ A, _ B, err error) error { return err }

func TestSweepCircle(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Extrapolate = 10 * time.Second })
	must(t, w.Seed([]Body{
		{Path: "rock", Shape: Circle(1), Motion: []Keyframe{{Pos: V(10, 0)}}},
		{Path: "wall", Shape: Segment(V(0, -5), V(0, 5)), Motion: []Keyframe{{Pos: V(30, 0)}}},
		{Path: "runner", Shape: Circle(1), Motion: []Keyframe{{Pos: V(0, 50), Vel: V(0, -10)}}},
	}))
	s := int64(time.Second)
	tests := []struct {
		name string
		q    Sweep
		f    Filter
		want Contact
		ok   bool
	}{
		{"into a resting circle", Sweep{Radius: 1, From: V(0, 0), To: V(20, 0), T0: 0, T1: s}, Filter{},
			Contact{Path: "rock", Time: 400 * ms, Frac: 0.4, Center: V(8, 0), Point: V(9, 0), Normal: V(-1, 0)}, true},
		{"into a wall", Sweep{Radius: 1, From: V(20, 0), To: V(40, 0), T0: 0, T1: s}, Filter{},
			Contact{Path: "wall", Time: 450 * ms, Frac: 0.45, Center: V(29, 0), Point: V(30, 0), Normal: V(-1, 0)}, true},
		{"a moving body reaches a still circle", Sweep{Radius: 1, From: V(0, 0), To: V(0, 0), T0: 0, T1: 5 * s}, Filter{Exclude: "rock"},
			Contact{Path: "runner", Time: 4800 * ms, Frac: 0.96, Center: V(0, 0), Point: V(0, 1), Normal: V(0, -1)}, true},
		{"starting overlapped", Sweep{Radius: 1, From: V(10.5, 0), To: V(20, 0), T0: 100 * ms, T1: s}, Filter{},
			Contact{Path: "rock", Time: 100 * ms, Center: V(10.5, 0), Point: V(9.5, 0), Normal: V(1, 0)}, true},
		{"tangent graze", Sweep{Radius: 1, From: V(0, 2), To: V(20, 2), T0: 0, T1: s}, Filter{Exclude: "runner"},
			Contact{Path: "rock", Time: 500 * ms, Frac: 0.5, Center: V(10, 2), Point: V(10, 1), Normal: V(0, 1)}, true},
		{"zero velocity apart", Sweep{Radius: 1, From: V(0, -20), To: V(0, -20), T0: 0, T1: s}, Filter{}, Contact{}, false},
		{"instant sweep", Sweep{Radius: 1, From: V(0, -20), To: V(0, -20), T0: s, T1: s}, Filter{}, Contact{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := w.SweepCircle(tt.q, tt.f)
			must(t, err)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// TestOrderIndependence builds the same world from bodies in different
// orders and with different slot histories; every answer must be
// bit-identical, so no insertion or map order leaks into results.
func TestOrderIndependence(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, 1))
	bodies := make([]Body, 200)
	for i := range bodies {
		// A grid of equal circles makes equal distances, so ties happen.
		bodies[i] = Body{Path: fmt.Sprintf("p/%03d", i), Shape: Circle(5),
			Motion: []Keyframe{{Pos: V(float64(i%20)*20, float64(i/20)*20), Vel: V(float64(i%3), 0)}}}
	}
	answers := func(w *World) string {
		var out []byte
		for i := range 100 {
			o := V(float64(i%10)*40-7, float64(i/10)*20)
			h, ok, err := w.Raycast(Ray{Origin: o, Dir: V(1, 0), MaxDist: math.Inf(1)}, 50*ms, Filter{})
			must(t, err)
			n, err := w.Nearest(o, 4, 50*ms, math.Inf(1), Filter{}, nil)
			must(t, err)
			ov, err := w.Overlaps(Circle(15), o, 50*ms, Filter{}, nil)
			must(t, err)
			c, cok, err := w.SweepCircle(Sweep{Radius: 3, From: o, To: o.Add(V(30, 30)), T0: 0, T1: 100 * ms}, Filter{})
			must(t, err)
			out = fmt.Appendf(out, "%v %v %v %v %v %v\n", h, ok, n, ov, c, cok)
		}
		return string(out)
	}
	w := newWorld(t, nil)
	must(t, w.Seed(bodies))
	want := answers(w)
	for range 3 {
		rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
		w := newWorld(t, nil)
		must(t, w.Seed(bodies[:100]))
		for _, b := range bodies[:50] { // churn the free list
			w.Remove(b.Path)
		}
		for _, b := range bodies[100:] {
			must(t, w.Upsert(b.Path, b.Shape, b.Motion[0]))
		}
		must(t, w.Seed(bodies[:100]))
		if diff := cmp.Diff(want, answers(w)); diff != "" {
			t.Fatalf("seed %d: answers depend on insertion order:\n%s", seed, diff)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestQueryStartingAtKeyframe: a piece holds on its closed interval
// [Tᵢ, Tᵢ₊₁], so a query whose range starts exactly at Tᵢ₊₁ still meets the
// piece that ends there, as one ending exactly at Tᵢ₊₁ meets the next.
func TestQueryStartingAtKeyframe(t *testing.T) {
	s := int64(time.Second)
	w := newWorld(t, nil)
	must(t, w.Upsert("a", Circle(1), Keyframe{T: 0, Pos: V(0, 0)}))
	must(t, w.Upsert("a", Circle(1), Keyframe{T: s, Pos: V(100, 0)}))

	c, ok, err := w.SweepCircle(Sweep{Radius: 1, From: V(0, 0), To: V(0, 50), T0: s, T1: 2 * s}, Filter{})
	must(t, err)
	if !ok || c.Path != "a" || c.Time != s || c.Frac != 0 {
		t.Errorf("sweep from the keyframe's time: %+v, %v; want contact with a at T0", c, ok)
	}
	got, err := w.Candidates(Circle(1), V(0, 0), s, 2*s, Filter{}, nil)
	must(t, err)
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("Candidates from the keyframe's time = %v, want [a]", got)
	}
	// The mirror cases, ending at the keyframe, meet the piece before.
	c, ok, err = w.SweepCircle(Sweep{Radius: 1, From: V(0, 50), To: V(0, 0), T0: 0, T1: s}, Filter{})
	must(t, err)
	if !ok || c.Path != "a" {
		t.Errorf("sweep ending at the keyframe's time: %+v, %v; want contact with a", c, ok)
	}
	got, err = w.Candidates(Circle(1), V(100, 0), 0, s, Filter{}, nil)
	must(t, err)
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("Candidates ending at the keyframe's time = %v, want [a]", got)
	}
}

// TestRaycastUnboundedSparse: an unbounded ray across a sparse world of
// far-apart bodies costs what the bodies cost, not every cell between
// them: the walk over 2³¹ units of empty cells would take seconds.
func TestRaycastUnboundedSparse(t *testing.T) {
	w := newWorld(t, nil)
	must(t, w.Upsert("far", Circle(1), Keyframe{T: 0, Pos: V(MaxCoord, MaxCoord)}))
	must(t, w.Upsert("near", Circle(1), Keyframe{T: 0, Pos: V(-MaxCoord, -MaxCoord)}))
	w.cellProbes = 0
	h, ok, err := w.Raycast(Ray{Origin: V(-MaxCoord+10, -MaxCoord+10), Dir: V(1, 1), MaxDist: math.Inf(1)}, 0, Filter{})
	must(t, err)
	if !ok || h.Path != "far" {
		t.Fatalf("hit %+v, %v; want far", h, ok)
	}
	if w.cellProbes > 64 {
		t.Errorf("the ray probed %d cells for two bodies", w.cellProbes)
	}
}
