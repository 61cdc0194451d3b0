package physics

import "math"

// Vec2 is a point or a displacement in world units.
type Vec2 struct{ X, Y float64 }

// V returns the vector (x, y).
func V(x, y float64) Vec2 { return Vec2{x, y} }

// Add returns a+b.
func (a Vec2) Add(b Vec2) Vec2 { return Vec2{a.X + b.X, a.Y + b.Y} }

// Sub returns a-b.
func (a Vec2) Sub(b Vec2) Vec2 { return Vec2{a.X - b.X, a.Y - b.Y} }

// Scale returns a*k.
func (a Vec2) Scale(k float64) Vec2 { return Vec2{a.X * k, a.Y * k} }

// Dot returns the dot product a·b.
func (a Vec2) Dot(b Vec2) float64 { return a.X*b.X + a.Y*b.Y }

// Cross returns the z component of the cross product a×b.
func (a Vec2) Cross(b Vec2) float64 { return a.X*b.Y - a.Y*b.X }

// Len2 returns the squared length of a.
func (a Vec2) Len2() float64 { return a.X*a.X + a.Y*a.Y }

// Len returns the length of a.
func (a Vec2) Len() float64 { return math.Hypot(a.X, a.Y) }

// Perp returns a rotated a quarter turn counter-clockwise.
func (a Vec2) Perp() Vec2 { return Vec2{-a.Y, a.X} }

// Unit returns a scaled to length 1, or the zero vector when a is zero.
func (a Vec2) Unit() Vec2 {
	l := a.Len()
	if l == 0 {
		return Vec2{}
	}
	return Vec2{a.X / l, a.Y / l}
}

// Lerp returns the point a fraction f of the way from a to b.
func (a Vec2) Lerp(b Vec2, f float64) Vec2 {
	return Vec2{a.X + (b.X-a.X)*f, a.Y + (b.Y-a.Y)*f}
}

func (a Vec2) finite() bool {
	return !math.IsNaN(a.X) && !math.IsNaN(a.Y) && !math.IsInf(a.X, 0) && !math.IsInf(a.Y, 0)
}

// within reports whether both coordinates are finite and no larger than lim
// in magnitude.
func (a Vec2) within(lim float64) bool {
	return math.Abs(a.X) <= lim && math.Abs(a.Y) <= lim // false for NaN
}

// AABB is an axis-aligned box, Min ≤ Max on both axes. Its edges belong to it.
type AABB struct{ Min, Max Vec2 }

// Overlaps reports whether b and c share at least one point.
func (b AABB) Overlaps(c AABB) bool {
	return b.Min.X <= c.Max.X && c.Min.X <= b.Max.X && b.Min.Y <= c.Max.Y && c.Min.Y <= b.Max.Y
}

// Union returns the smallest box holding b and c.
func (b AABB) Union(c AABB) AABB {
	return AABB{
		Min: Vec2{math.Min(b.Min.X, c.Min.X), math.Min(b.Min.Y, c.Min.Y)},
		Max: Vec2{math.Max(b.Max.X, c.Max.X), math.Max(b.Max.Y, c.Max.Y)},
	}
}

// Translate returns b moved by d.
func (b AABB) Translate(d Vec2) AABB { return AABB{b.Min.Add(d), b.Max.Add(d)} }

// Inflate returns b grown by r on every side.
func (b AABB) Inflate(r float64) AABB {
	return AABB{Vec2{b.Min.X - r, b.Min.Y - r}, Vec2{b.Max.X + r, b.Max.Y + r}}
}

func segBounds(a, b Vec2) AABB {
	return AABB{
		Min: Vec2{math.Min(a.X, b.X), math.Min(a.Y, b.Y)},
		Max: Vec2{math.Max(a.X, b.X), math.Max(a.Y, b.Y)},
	}
}
