package physics

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// floats decodes the fuzzer's bytes as a stream of float64s, any bit
// pattern included (NaN, Inf, subnormals).
type floats struct{ b []byte }

func (f *floats) next() float64 {
	if len(f.b) < 8 {
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(f.b))
	f.b = f.b[8:]
	return v
}

func (f *floats) vec() Vec2 { return Vec2{f.next(), f.next()} }

func (f *floats) int() int64 {
	if len(f.b) < 8 {
		return 0
	}
	v := int64(binary.LittleEndian.Uint64(f.b))
	f.b = f.b[8:]
	return v
}

func (f *floats) shape() Shape {
	k := Kind(1 + uint8(f.int())%5)
	s := Shape{Kind: k, A: f.vec(), B: f.vec()}
	if k == KindCircle || k == KindCapsule {
		s.Radius = f.next()
	}
	if k == KindBox {
		s.A, s.B = Vec2{math.Min(s.A.X, s.B.X), math.Min(s.A.Y, s.B.Y)}, Vec2{math.Max(s.A.X, s.B.X), math.Max(s.A.Y, s.B.Y)}
	}
	return s
}

func le(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func checkFinite(t *testing.T, what string, vs ...float64) {
	t.Helper()
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("%s: non-finite result %v", what, vs)
		}
	}
}

// FuzzNarrowphase casts rays and tests overlaps between arbitrary valid
// shapes: no panic, and no NaN or Inf in any result.
func FuzzNarrowphase(f *testing.F) {
	f.Add(le(2, 0, 0, 0, 0, 1, -5, 0, 1, 0, 100, 0))
	f.Add(le(3, 0, 0, 10, 0, 0, -5, 0, 1, 0, 100, 0))
	f.Add(le(5, 0, 0, 2, 2, 1, -1, -1, 1, 1, 10, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := &floats{b}
		sh := in.shape()
		o, d, maxS, extra := in.vec(), in.vec(), in.next(), in.next()
		other, at := in.shape(), in.vec()
		if sh.Validate() != nil || !o.within(MaxCoord) || !d.within(4*MaxCoord) || math.IsNaN(maxS) || maxS < 0 ||
			math.IsNaN(extra) || extra < 0 || extra > MaxCoord {
			return
		}
		maxS = clampLen(maxS)
		if h, ok := rayShape(sh, extra, o, d, maxS); ok {
			checkFinite(t, "ray", h.s, h.n.X, h.n.Y)
			if h.s < 0 || h.s > maxS {
				t.Fatalf("ray parameter %v outside [0, %v]", h.s, maxS)
			}
		}
		if other.Validate() == nil && at.within(MaxCoord) {
			overlap(sh, o, other, at)
			checkFinite(t, "distance", distance(at, sh, o), coreDistSq(sh, o, other, at))
		}
	})
}

// FuzzWorld drives a small World with arbitrary writes and queries: bad
// input must come back as an error, never a panic, and every answer must be
// finite.
func FuzzWorld(f *testing.F) {
	f.Add(le(1, 0, 0, 0, 10, 0, 5, 1e8, 2, 3, 4, 1, 0, 100))
	f.Add(le(4, 1, 1, 1, 0, 0, 0, 0, -1e9, 7, 9, 1e300, 0, 1, math.NaN()))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := DefaultConfig()
		cfg.MaxBodies, cfg.MaxKeyframes, cfg.MaxEntryCells = 8, 8, 16
		cfg.Bucket = 50 * time.Millisecond
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		in := &floats{b}
		paths := []string{"a", "b", "c", "players/1"}
		for len(in.b) >= 8 {
			op := in.int()
			path := paths[uint64(op>>8)%uint64(len(paths))]
			tm := in.int() % (1 << 40)
			switch uint64(op) % 8 {
			case 0, 1, 2:
				_ = w.Upsert(path, in.shape(), Keyframe{T: tm, Pos: in.vec(), Vel: in.vec()})
			case 3:
				w.Remove(path)
			case 4:
				_ = w.Advance(tm)
			case 5:
				if h, ok, err := w.Raycast(Ray{Origin: in.vec(), Dir: in.vec(), MaxDist: in.next()}, tm, Filter{}); err == nil && ok {
					checkFinite(t, "raycast", h.Dist, h.Point.X, h.Point.Y, h.Normal.X, h.Normal.Y)
				}
			case 6:
				q := Sweep{Radius: in.next(), From: in.vec(), To: in.vec(), T0: tm, T1: tm + in.int()%(1<<32)}
				if c, ok, err := w.SweepCircle(q, Filter{}); err == nil && ok {
					checkFinite(t, "sweep", c.Frac, c.Center.X, c.Center.Y, c.Point.X, c.Point.Y, c.Normal.X, c.Normal.Y)
					if c.Time < q.T0 || c.Time > q.T1 {
						t.Fatalf("contact time %d outside [%d, %d]", c.Time, q.T0, q.T1)
					}
				}
			case 7:
				p := in.vec()
				ns, err := w.Nearest(p, 3, tm, in.next(), Filter{}, nil)
				if err == nil {
					for _, n := range ns {
						checkFinite(t, "nearest", n.Dist)
					}
				}
				_, _ = w.Overlaps(in.shape(), p, tm, Filter{}, nil)
				_, _ = w.Candidates(in.shape(), p, tm, tm+in.int()%(1<<32), Filter{}, nil)
			}
		}
	})
}
