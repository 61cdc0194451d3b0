package physics

import "math"

// This file holds the exact answer of each query for one body, given its
// shape and motion. The World's index only chooses which bodies to ask.

// Filter selects the bodies a query may report.
type Filter struct {
	// Layers, when not zero, keeps only bodies whose Layers share a bit
	// with it.
	Layers uint32
	// Exclude, when not empty, skips the body with this path — the
	// shooter of a ray, the mover of a sweep.
	Exclude string
}

func (f Filter) match(path string, layers uint32) bool {
	return (f.Layers == 0 || f.Layers&layers != 0) && (f.Exclude == "" || f.Exclude != path)
}

// rayBody casts the ray o + s·d, s ∈ [0, maxS], against a body at time t.
func rayBody(sh Shape, ks []Keyframe, extrap, t int64, o, d Vec2, maxS float64) (hit, bool) {
	p, ok := positionAt(ks, t, extrap)
	if !ok {
		return hit{}, false
	}
	return rayShape(sh, 0, o.Sub(p), d, maxS)
}

// Sweep is a circle moving in a straight line from From at T0 to To at T1.
// Radius 0 sweeps a point.
type Sweep struct {
	Radius   float64
	From, To Vec2
	T0, T1   int64
}

// center returns the sweep's centre after dt nanoseconds (dt ∈ [0, T1-T0]).
func (q Sweep) center(dt float64) Vec2 {
	if q.T1 == q.T0 {
		return q.From
	}
	return q.From.Lerp(q.To, dt/float64(q.T1-q.T0))
}

// sweepBody returns the first contact of the sweep with a body: the time
// after q.T0 in nanoseconds (exact, fractional) and the contact normal.
// Each piece of the body's motion overlapping [T0, T1] is a relative linear
// motion, so contact is a ray against the body's core thickened by both
// radii; pieces are tried in time order and the first contact wins.
func sweepBody(sh Shape, ks []Keyframe, extrap int64, q Sweep) (float64, Vec2, bool) {
	for i := firstPiece(ks, q.T0); i < len(ks) && ks[i].T <= q.T1; i++ {
		a, b := max(q.T0, ks[i].T), min(q.T1, pieceEnd(ks, i, extrap))
		if a > b {
			continue
		}
		da, db := float64(a-q.T0), float64(b-q.T0)
		o := q.center(da).Sub(ks[i].At(a))
		e := q.center(db).Sub(ks[i].At(b))
		if h, ok := rayShape(sh, q.Radius, o, e.Sub(o), 1); ok {
			return da + h.s*float64(b-a), h.n, true
		}
	}
	return 0, Vec2{}, false
}

// overlapBody reports whether the query shape qs at p overlaps a body at t.
func overlapBody(sh Shape, ks []Keyframe, extrap, t int64, qs Shape, p Vec2) bool {
	bp, ok := positionAt(ks, t, extrap)
	return ok && overlap(qs, p, sh, bp)
}

// candidateBody reports whether the bounds of a body swept over any part of
// [t0, t1] overlap box.
func candidateBody(sh Shape, ks []Keyframe, extrap, t0, t1 int64, box AABB) bool {
	for i := firstPiece(ks, t0); i < len(ks) && ks[i].T <= t1; i++ {
		if b, ok := sweptBounds(sh, ks, i, t0, t1, extrap); ok && b.Overlaps(box) {
			return true
		}
	}
	return false
}

// nearBody returns the distance from p to a body's surface at t.
func nearBody(sh Shape, ks []Keyframe, extrap, t int64, p Vec2) (float64, bool) {
	bp, ok := positionAt(ks, t, extrap)
	if !ok {
		return 0, false
	}
	return distance(p, sh, bp), true
}

// maxRayLen bounds a ray's length: longer than any distance in the world.
const maxRayLen = 8 * MaxCoord

func clampLen(d float64) float64 { return math.Min(d, maxRayLen) }
