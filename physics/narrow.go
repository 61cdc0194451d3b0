package physics

import "math"

// This file holds the exact narrowphase. Every test reduces to a core (point,
// segment or box) thickened by a radius:
//
//   - a ray, or a circle swept relative to a body, against a body is a ray
//     against the body's core thickened by the body's radius plus the moving
//     circle's radius (the Minkowski sum);
//   - two shapes overlap when the distance between their cores is at most the
//     sum of their radii.
//
// Ray parameters are solved in closed form in float64 with no epsilon:
// contact is inclusive (touching counts), and the circle quadratic uses the
// cancellation-free root s = c / (-b + √(b²-ac)) with the discriminant taken
// from the line's nearest point to the centre. Results are exact up to
// float64 rounding, so a contact that is tangent to within a few ulps of the
// coordinates may be reported either way — always the same way for the same
// inputs.

// hit is a narrowphase ray result: parameter s along the direction d and the
// outward surface normal at the hit point.
type hit struct {
	s float64
	n Vec2
}

// fallbackNormal is the normal reported when a query starts inside a shape at
// a point where the surface direction is undefined: against the motion.
func fallbackNormal(d Vec2) Vec2 { return d.Scale(-1).Unit() }

// rayShape casts o + s·d, s ∈ [0, maxS], against sh thickened by extra (sh in
// its local frame, o relative to it). It returns the smallest s at which the
// point is within the thickened shape.
func rayShape(sh Shape, extra float64, o, d Vec2, maxS float64) (hit, bool) {
	r := sh.Radius + extra
	switch sh.core() {
	case coreBox:
		return rayBox(o, d, sh.A, sh.B, r, maxS)
	case coreSeg:
		return rayCapsule(o, d, sh.A, sh.B, r, maxS)
	default:
		return rayCapsule(o, d, sh.A, sh.A, r, maxS)
	}
}

// rayCircle returns the entry parameter of o + s·d into the circle of radius
// r centred at the origin, for o outside it.
func rayCircle(o, d Vec2, r float64) (float64, bool) {
	a := d.Len2()
	if a == 0 {
		return 0, false
	}
	b := o.Dot(d)
	c := o.Len2() - r*r
	if c <= 0 {
		return 0, true
	}
	if b >= 0 {
		return 0, false
	}
	// The discriminant b² - ac equals a·(r² - |q|²) with q the point of the
	// line nearest the centre; computed that way it keeps its precision
	// when the line passes far from r² (no difference of two large squares).
	q := o.Sub(d.Scale(b / a))
	h := r*r - q.Len2()
	if h < 0 {
		return 0, false
	}
	return c / (-b + math.Sqrt(a*h)), true
}

// rayCapsule casts against the segment a–b thickened by r (a circle when
// a == b).
func rayCapsule(o, d, a, b Vec2, r, maxS float64) (hit, bool) {
	if q := closestOnSeg(o, a, b); o.Sub(q).Len2() <= r*r {
		return hit{0, insideNormal(o.Sub(q), d)}, true
	}
	return rayCapsuleOutside(o, d, a, b, r, maxS)
}

// rayCapsuleOutside is rayCapsule for o known to be outside the capsule.
func rayCapsuleOutside(o, d, a, b Vec2, r, maxS float64) (hit, bool) {
	best := hit{s: math.Inf(1)}
	ab := b.Sub(a)
	if l2 := ab.Len2(); l2 > 0 {
		l := math.Sqrt(l2)
		u := ab.Scale(1 / l)
		n := u.Perp()
		oa := o.Sub(a)
		oy, dy := oa.Dot(n), d.Dot(n)
		var s float64
		var side Vec2
		switch {
		case oy > r && dy < 0:
			s, side = (r-oy)/dy, n
		case oy < -r && dy > 0:
			s, side = (-r-oy)/dy, n.Scale(-1)
		default:
			s = math.Inf(1)
		}
		if s <= maxS {
			if x := oa.Add(d.Scale(s)).Dot(u); x >= 0 && x <= l {
				best = hit{s, side}
			}
		}
		if h, ok := rayCap(o, d, b, r); ok && h.s < best.s {
			best = h
		}
	}
	if h, ok := rayCap(o, d, a, r); ok && h.s < best.s {
		best = h
	}
	return best, best.s <= maxS
}

// rayCap casts against the circle of radius r at c and computes the normal.
func rayCap(o, d, c Vec2, r float64) (hit, bool) {
	oc := o.Sub(c)
	s, ok := rayCircle(oc, d, r)
	if !ok {
		return hit{}, false
	}
	n := oc.Add(d.Scale(s)).Unit()
	if n == (Vec2{}) {
		n = fallbackNormal(d)
	}
	return hit{s, n}, true
}

// rayBox casts against the box [min, max] thickened by r: for a start
// outside, the first contact with the rounded box is the first contact with
// the union of its four edges thickened by r.
func rayBox(o, d, min, max Vec2, r, maxS float64) (hit, bool) {
	q := clampBox(o, min, max)
	if o.Sub(q).Len2() <= r*r {
		return hit{0, insideNormal(o.Sub(q), d)}, true
	}
	corners := [4]Vec2{min, {max.X, min.Y}, max, {min.X, max.Y}}
	best := hit{s: math.Inf(1)}
	for i := range corners {
		if h, ok := rayCapsuleOutside(o, d, corners[i], corners[(i+1)%4], r, maxS); ok && h.s < best.s {
			best = h
		}
	}
	return best, best.s <= maxS
}

// insideNormal is the normal reported for a query that starts inside: away
// from the nearest core point, or against the motion when the start is on
// the core.
func insideNormal(away, d Vec2) Vec2 {
	if n := away.Unit(); n != (Vec2{}) {
		return n
	}
	return fallbackNormal(d)
}

func closestOnSeg(p, a, b Vec2) Vec2 {
	ab := b.Sub(a)
	l2 := ab.Len2()
	if l2 == 0 {
		return a
	}
	t := p.Sub(a).Dot(ab) / l2
	switch {
	case t <= 0:
		return a
	case t >= 1:
		return b
	}
	return a.Add(ab.Scale(t))
}

func clampBox(p, min, max Vec2) Vec2 {
	return Vec2{math.Min(math.Max(p.X, min.X), max.X), math.Min(math.Max(p.Y, min.Y), max.Y)}
}

func distSqPointSeg(p, a, b Vec2) float64 { return p.Sub(closestOnSeg(p, a, b)).Len2() }

func distSqPointBox(p, min, max Vec2) float64 { return p.Sub(clampBox(p, min, max)).Len2() }

func distSqSegSeg(a, b, c, d Vec2) float64 {
	ab, cd := b.Sub(a), d.Sub(c)
	o1, o2 := ab.Cross(c.Sub(a)), ab.Cross(d.Sub(a))
	o3, o4 := cd.Cross(a.Sub(c)), cd.Cross(b.Sub(c))
	if (o1 > 0 && o2 < 0 || o1 < 0 && o2 > 0) && (o3 > 0 && o4 < 0 || o3 < 0 && o4 > 0) {
		return 0
	}
	return math.Min(
		math.Min(distSqPointSeg(a, c, d), distSqPointSeg(b, c, d)),
		math.Min(distSqPointSeg(c, a, b), distSqPointSeg(d, a, b)))
}

func distSqSegBox(a, b, min, max Vec2) float64 {
	if distSqPointBox(a, min, max) == 0 || distSqPointBox(b, min, max) == 0 {
		return 0
	}
	corners := [4]Vec2{min, {max.X, min.Y}, max, {min.X, max.Y}}
	best := math.Inf(1)
	for i := range corners {
		best = math.Min(best, distSqSegSeg(a, b, corners[i], corners[(i+1)%4]))
	}
	return best
}

func distSqBoxBox(amin, amax, bmin, bmax Vec2) float64 {
	dx := math.Max(0, math.Max(amin.X-bmax.X, bmin.X-amax.X))
	dy := math.Max(0, math.Max(amin.Y-bmax.Y, bmin.Y-amax.Y))
	return dx*dx + dy*dy
}

// coreDistSq returns the squared distance between the cores of s placed at
// ps and u placed at pu.
func coreDistSq(s Shape, ps Vec2, u Shape, pu Vec2) float64 {
	ck, uk := s.core(), u.core()
	if ck > uk {
		s, ps, u, pu = u, pu, s, ps
		ck, uk = uk, ck
	}
	a0, a1 := s.A.Add(ps), s.B.Add(ps)
	b0, b1 := u.A.Add(pu), u.B.Add(pu)
	switch {
	case ck == corePoint && uk == corePoint:
		return a0.Sub(b0).Len2()
	case ck == corePoint && uk == coreSeg:
		return distSqPointSeg(a0, b0, b1)
	case ck == corePoint:
		return distSqPointBox(a0, b0, b1)
	case ck == coreSeg && uk == coreSeg:
		return distSqSegSeg(a0, a1, b0, b1)
	case ck == coreSeg:
		return distSqSegBox(a0, a1, b0, b1)
	}
	return distSqBoxBox(a0, a1, b0, b1)
}

// overlap reports whether s at ps and u at pu share a point.
func overlap(s Shape, ps Vec2, u Shape, pu Vec2) bool {
	r := s.Radius + u.Radius
	return coreDistSq(s, ps, u, pu) <= r*r
}

// distance returns the distance from p to the surface of u placed at pu, 0
// when p is inside.
func distance(p Vec2, u Shape, pu Vec2) float64 {
	return math.Max(0, math.Sqrt(coreDistSq(Shape{Kind: KindPoint}, p, u, pu))-u.Radius)
}
