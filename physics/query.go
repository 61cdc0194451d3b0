package physics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Ray is a half-line from Origin along Dir, up to MaxDist world units. Dir
// need not be of unit length; MaxDist may be +Inf.
type Ray struct {
	Origin, Dir Vec2
	MaxDist     float64
}

// Hit is the first body a ray touches.
type Hit struct {
	Path string
	// Dist is the distance along the ray, 0 when the ray starts inside.
	Dist float64
	// Point is where the ray meets the body's surface (the origin when it
	// starts inside).
	Point Vec2
	// Normal is the unit outward surface normal at Point. For a ray that
	// starts inside it points from the nearest point of the body's core
	// towards the origin, or against the ray when the origin is on the core.
	Normal Vec2
}

// Contact is the first body a sweep touches.
type Contact struct {
	Path string
	// Time is the time of first contact in nanoseconds, rounded down.
	Time int64
	// Frac is the exact fraction of [T0, T1] elapsed at first contact.
	Frac float64
	// Center is the sweeping circle's centre at first contact.
	Center Vec2
	// Point is the contact point on the body's surface.
	Point Vec2
	// Normal is the unit normal from the body towards the circle at first
	// contact (see Hit.Normal for a sweep that starts overlapped).
	Normal Vec2
}

// Near is a body found by Nearest.
type Near struct {
	Path string
	// Dist is the distance from the query point to the body's surface, 0
	// when the point is inside.
	Dist float64
}

// Raycast returns the first body that the ray touches at time t — the
// lag-compensated hitscan: t is the shooter's view time. Equal distances
// go to the smaller path. It reports false when nothing is hit.
func (w *World) Raycast(r Ray, t int64, f Filter) (Hit, bool, error) {
	if err := w.checkTime(t); err != nil {
		return Hit{}, false, err
	}
	if !r.Origin.within(MaxCoord) || !r.Dir.finite() || r.Dir == (Vec2{}) || math.IsNaN(r.MaxDist) || r.MaxDist < 0 {
		return Hit{}, false, fmt.Errorf("%w: ray %+v", ErrQuery, r)
	}
	d := r.Dir.Unit()
	if d == (Vec2{}) { // a direction too small or large to normalise
		d = r.Dir.Scale(1 / math.Max(math.Abs(r.Dir.X), math.Abs(r.Dir.Y))).Unit()
	}
	rc := raycaster{w: w, t: t, f: f, o: r.Origin, d: d, max: clampLen(r.MaxDist), best: math.Inf(1)}
	w.begin()
	for i := range w.big {
		rc.consider(&w.big[i])
	}
	if w.ext.ok {
		rc.walk()
	}
	if !rc.found {
		return Hit{}, false, nil
	}
	return Hit{
		Path:   w.bodies[rc.bestID].path,
		Dist:   rc.best,
		Point:  r.Origin.Add(d.Scale(rc.best)),
		Normal: rc.bestN,
	}, true, nil
}

type raycaster struct {
	w      *World
	t      int64
	f      Filter
	o, d   Vec2
	max    float64
	best   float64
	bestN  Vec2
	bestID int32
	found  bool
}

func (rc *raycaster) consider(e *entry) {
	if e.t0 > rc.t || e.t1 < rc.t || !rayBox2(rc.o, rc.d, e.box.aabb(), math.Min(rc.max, rc.best)) {
		return
	}
	rc.considerBody(e.id)
}

// considerBody tests the ray exactly against body id, once per query.
func (rc *raycaster) considerBody(id int32) {
	w := rc.w
	b := &w.bodies[id]
	if b.mark == w.stamp {
		return
	}
	b.mark = w.stamp
	if !b.live || !rc.f.match(b.path, b.layers) {
		return
	}
	h, ok := rayBody(b.shape, b.keys, w.extrap, rc.t, rc.o, rc.d, rc.max)
	if !ok {
		return
	}
	if !rc.found || h.s < rc.best || h.s == rc.best && b.path < w.bodies[rc.bestID].path {
		rc.best, rc.bestN, rc.bestID, rc.found = h.s, h.n, id, true
	}
}

// rayBox2 reports whether o + s·d, s ∈ [0, maxS], meets box (slab test).
func rayBox2(o, d Vec2, box AABB, maxS float64) bool {
	lo, hi := 0.0, maxS
	for axis := 0; axis < 2; axis++ {
		oc, dc, mn, mx := o.X, d.X, box.Min.X, box.Max.X
		if axis == 1 {
			oc, dc, mn, mx = o.Y, d.Y, box.Min.Y, box.Max.Y
		}
		if dc == 0 {
			if oc < mn || oc > mx {
				return false
			}
			continue
		}
		a, b := (mn-oc)/dc, (mx-oc)/dc
		if a > b {
			a, b = b, a
		}
		lo, hi = math.Max(lo, a), math.Min(hi, b)
		if lo > hi {
			return false
		}
	}
	return true
}

// walk visits the grid cells along the ray in order (Amanatides–Woo),
// clipped to the occupied extent, and stops once the best hit is nearer
// than the far side of the current cell: every body touched beyond it is in
// a later cell and farther.
func (rc *raycaster) walk() {
	w := rc.w
	cs := w.cfg.CellSize
	ext := AABB{
		Min: Vec2{float64(w.ext.x0) * cs, float64(w.ext.y0) * cs},
		Max: Vec2{float64(w.ext.x1+1) * cs, float64(w.ext.y1+1) * cs},
	}
	enter, leave, ok := rayClip(rc.o, rc.d, ext, rc.max)
	if !ok {
		return
	}
	// The walk is bounded by where bodies can be: when the ray would
	// cross more cells of the occupied extent than there are bodies (a
	// long ray over a sparse world), testing every body exactly is
	// cheaper, and the answer is the same.
	if span := (leave - enter) * (math.Abs(rc.d.X) + math.Abs(rc.d.Y)) * w.inv; span > float64(2*len(w.ids)+16) {
		for id := range w.bodies {
			rc.considerBody(int32(id))
		}
		return
	}
	p := rc.o.Add(rc.d.Scale(enter))
	cx := clampCell(math.Floor(p.X*w.inv), w.ext.x0, w.ext.x1)
	cy := clampCell(math.Floor(p.Y*w.inv), w.ext.y0, w.ext.y1)
	stepX, nextX, deltaX := axisStep(rc.o.X, rc.d.X, cx, cs)
	stepY, nextY, deltaY := axisStep(rc.o.Y, rc.d.Y, cy, cs)
	bk := floorDiv(rc.t, w.bucket)
	for {
		w.cellProbes++
		if c := w.g.find(cx, cy); c != nil {
			lo, hi := c.span(bk-1, bk)
			for li := lo; li < hi; li++ {
				l := c.at(li)
				for k := range l.nch {
					es := l.entries(k)
					for i := range es {
						rc.consider(&es[i])
					}
				}
			}
			for i := range c.rest {
				rc.consider(&c.rest[i])
			}
		}
		exit := math.Min(nextX, nextY)
		if rc.found && rc.best < exit || exit > rc.max {
			return
		}
		if nextX < nextY {
			cx += stepX
			nextX += deltaX
		} else {
			cy += stepY
			nextY += deltaY
		}
		if cx < w.ext.x0 || cx > w.ext.x1 || cy < w.ext.y0 || cy > w.ext.y1 {
			return
		}
	}
}

// rayClip returns the parameters at which o + s·d enters and leaves box,
// if it meets the box within [0, maxS] (the leaving one capped at maxS).
func rayClip(o, d Vec2, box AABB, maxS float64) (float64, float64, bool) {
	lo, hi := 0.0, maxS
	for axis := 0; axis < 2; axis++ {
		oc, dc, mn, mx := o.X, d.X, box.Min.X, box.Max.X
		if axis == 1 {
			oc, dc, mn, mx = o.Y, d.Y, box.Min.Y, box.Max.Y
		}
		if dc == 0 {
			if oc < mn || oc > mx {
				return 0, 0, false
			}
			continue
		}
		a, b := (mn-oc)/dc, (mx-oc)/dc
		if a > b {
			a, b = b, a
		}
		lo, hi = math.Max(lo, a), math.Min(hi, b)
	}
	return lo, hi, lo <= hi
}

func clampCell(f float64, lo, hi int32) int32 {
	if f < float64(lo) {
		return lo
	}
	if f > float64(hi) {
		return hi
	}
	return int32(f)
}

// axisStep returns the cell step along one axis, the ray parameter of the
// next cell boundary and the parameter span of one cell.
func axisStep(o, d float64, c int32, cs float64) (int32, float64, float64) {
	switch {
	case d > 0:
		return 1, (float64(c+1)*cs - o) / d, cs / d
	case d < 0:
		return -1, (float64(c)*cs - o) / d, -cs / d
	}
	return 0, math.Inf(1), math.Inf(1)
}

// gather collects, once each, the bodies with an index entry overlapping box
// during [t0, t1] into w.ids32. When the box spans more cells than there
// are bodies it takes every body instead: cheaper, and still exact because
// every candidate is then tested exactly.
func (w *World) gather(box AABB, t0, t1 int64) []int32 {
	w.begin()
	w.ids32 = w.ids32[:0]
	w.addEntries(w.big, box, t0, t1)
	if w.ext.ok {
		x0, y0, x1, y1, ok := w.clipCells(box)
		if ok {
			if float64(x1-x0+1)*float64(y1-y0+1) > float64(2*len(w.ids)+16) {
				return w.allIDs()
			}
			b0, b1 := floorDiv(t0, w.bucket)-1, floorDiv(t1, w.bucket)
			for y := y0; y <= y1; y++ {
				for x := x0; x <= x1; x++ {
					c := w.g.find(x, y)
					if c == nil {
						continue
					}
					lo, hi := c.span(b0, b1)
					for li := lo; li < hi; li++ {
						l := c.at(li)
						for k := range l.nch {
							w.addEntries(l.entries(k), box, t0, t1)
						}
					}
					w.addEntries(c.rest, box, t0, t1)
				}
			}
		}
	}
	return w.ids32
}

// addEntries adds to w.ids32 the bodies of es not yet seen by this query
// whose entry overlaps box during [t0, t1].
func (w *World) addEntries(es []entry, box AABB, t0, t1 int64) {
	for i := range es {
		e := &es[i]
		if e.t0 <= t1 && e.t1 >= t0 && e.box.overlaps(box) {
			if b := &w.bodies[e.id]; b.mark != w.stamp && b.live {
				b.mark = w.stamp
				w.ids32 = append(w.ids32, e.id)
			}
		}
	}
}

// begin starts a query: it files the queued pieces and takes a new stamp
// to mark the bodies the query has considered.
func (w *World) begin() {
	w.flush()
	w.stamp++
}

func (w *World) allIDs() []int32 {
	ids := w.ids32[:0]
	for id := range w.bodies {
		if w.bodies[id].live {
			ids = append(ids, int32(id))
		}
	}
	w.ids32 = ids
	return ids
}

// clipCells returns the cells of box within the occupied extent.
func (w *World) clipCells(box AABB) (x0, y0, x1, y1 int32, ok bool) {
	fx0, fy0 := math.Floor(box.Min.X*w.inv), math.Floor(box.Min.Y*w.inv)
	fx1, fy1 := math.Floor(box.Max.X*w.inv), math.Floor(box.Max.Y*w.inv)
	e := w.ext
	if fx1 < float64(e.x0) || fx0 > float64(e.x1) || fy1 < float64(e.y0) || fy0 > float64(e.y1) {
		return 0, 0, 0, 0, false
	}
	return clampCell(fx0, e.x0, e.x1), clampCell(fy0, e.y0, e.y1), clampCell(fx1, e.x0, e.x1), clampCell(fy1, e.y0, e.y1), true
}

// SweepCircle moves a circle along q against every body and returns the
// first contact: the earliest time the circle touches a body, with both
// moving. Equal times go to the smaller path. A sweep that starts
// overlapped reports contact at q.T0.
func (w *World) SweepCircle(q Sweep, f Filter) (Contact, bool, error) {
	if err := w.checkTime(q.T0); err != nil {
		return Contact{}, false, err
	}
	if err := w.checkTime(q.T1); err != nil {
		return Contact{}, false, err
	}
	if q.T1 < q.T0 || !q.From.within(MaxCoord) || !q.To.within(MaxCoord) || math.IsNaN(q.Radius) || q.Radius < 0 || q.Radius > MaxCoord {
		return Contact{}, false, fmt.Errorf("%w: sweep %+v", ErrQuery, q)
	}
	box := segBounds(q.From, q.To).Inflate(q.Radius)
	var (
		best  float64
		bestN Vec2
		bestB *body
	)
	for _, id := range w.gather(box, q.T0, q.T1) {
		b := &w.bodies[id]
		if !f.match(b.path, b.layers) {
			continue
		}
		toi, n, ok := sweepBody(b.shape, b.keys, w.extrap, q)
		if ok && (bestB == nil || toi < best || toi == best && b.path < bestB.path) {
			best, bestN, bestB = toi, n, b
		}
	}
	if bestB == nil {
		return Contact{}, false, nil
	}
	c := Contact{Path: bestB.path, Time: q.T0 + int64(math.Floor(best)), Center: q.center(best), Normal: bestN}
	if q.T1 > q.T0 {
		c.Frac = best / float64(q.T1-q.T0)
	}
	c.Point = c.Center.Sub(bestN.Scale(q.Radius))
	return c, true, nil
}

// Overlaps appends to dst the paths of the bodies that share a point with
// shape s placed at p at time t, sorted by path.
func (w *World) Overlaps(s Shape, p Vec2, t int64, f Filter, dst []string) ([]string, error) {
	if err := w.checkTime(t); err != nil {
		return dst, err
	}
	if err := s.Validate(); err != nil {
		return dst, err
	}
	if !p.within(MaxCoord) {
		return dst, fmt.Errorf("%w: position %v", ErrQuery, p)
	}
	n := len(dst)
	for _, id := range w.gather(s.Bounds().Translate(p), t, t) {
		b := &w.bodies[id]
		if f.match(b.path, b.layers) && overlapBody(b.shape, b.keys, w.extrap, t, s, p) {
			dst = append(dst, b.path)
		}
	}
	slices.Sort(dst[n:])
	return dst, nil
}

// Candidates appends to dst, sorted, the paths of the bodies whose bounds,
// swept over any part of [t0, t1], overlap the bounds of shape s placed at
// p: the broadphase answer for a caller with its own narrowphase.
func (w *World) Candidates(s Shape, p Vec2, t0, t1 int64, f Filter, dst []string) ([]string, error) {
	if err := w.checkTime(t0); err != nil {
		return dst, err
	}
	if err := w.checkTime(t1); err != nil {
		return dst, err
	}
	if err := s.Validate(); err != nil {
		return dst, err
	}
	if t1 < t0 || !p.within(MaxCoord) {
		return dst, fmt.Errorf("%w: range [%d, %d] at %v", ErrQuery, t0, t1, p)
	}
	box := s.Bounds().Translate(p)
	n := len(dst)
	for _, id := range w.gather(box, t0, t1) {
		b := &w.bodies[id]
		if f.match(b.path, b.layers) && candidateBody(b.shape, b.keys, w.extrap, t0, t1, box) {
			dst = append(dst, b.path)
		}
	}
	slices.Sort(dst[n:])
	return dst, nil
}

// Nearest appends to dst the k bodies nearest to p at time t within
// maxDist (which may be +Inf), nearest first, equal distances by path.
func (w *World) Nearest(p Vec2, k int, t int64, maxDist float64, f Filter, dst []Near) ([]Near, error) {
	if err := w.checkTime(t); err != nil {
		return dst, err
	}
	if !p.within(MaxCoord) || k < 0 || math.IsNaN(maxDist) || maxDist < 0 {
		return dst, fmt.Errorf("%w: nearest %d to %v within %v", ErrQuery, k, p, maxDist)
	}
	k = min(k, len(w.ids))
	if k == 0 {
		return dst, nil
	}
	maxDist = clampLen(maxDist)
	base := len(dst)
	w.begin()
	consider := func(id int32) {
		b := &w.bodies[id]
		if b.mark == w.stamp {
			return
		}
		b.mark = w.stamp
		if !b.live || !f.match(b.path, b.layers) {
			return
		}
		d, ok := nearBody(b.shape, b.keys, w.extrap, t, p)
		if !ok || d > maxDist {
			return
		}
		top := dst[base:]
		if len(top) == k && cmpNear(Near{b.path, d}, top[k-1]) >= 0 {
			return
		}
		i, _ := slices.BinarySearchFunc(top, Near{b.path, d}, cmpNear)
		if len(top) == k {
			dst = dst[:len(dst)-1]
		}
		dst = slices.Insert(dst, base+i, Near{b.path, d})
	}
	for i := range w.big {
		if e := &w.big[i]; e.t0 <= t && e.t1 >= t {
			consider(e.id)
		}
	}
	if !w.ext.ok {
		return dst, nil
	}
	cs := w.cfg.CellSize
	e := w.ext
	cx := math.Floor(p.X * w.inv)
	cy := math.Floor(p.Y * w.inv)
	// Rings of cells at Chebyshev distance r from p's cell: every point of
	// ring r is at least (r-1)·CellSize from p.
	far := math.Max(math.Max(cx-float64(e.x0), float64(e.x1)-cx), math.Max(cy-float64(e.y0), float64(e.y1)-cy))
	near := math.Max(0, math.Max(math.Max(float64(e.x0)-cx, cx-float64(e.x1)), math.Max(float64(e.y0)-cy, cy-float64(e.y1))))
	bk := floorDiv(t, w.bucket)
	visit := func(x, y float64) {
		if x < float64(e.x0) || x > float64(e.x1) || y < float64(e.y0) || y > float64(e.y1) {
			return
		}
		c := w.g.find(int32(x), int32(y))
		if c == nil {
			return
		}
		lo, hi := c.span(bk-1, bk)
		for li := lo; li < hi; li++ {
			l := c.at(li)
			for k := range l.nch {
				es := l.entries(k)
				for i := range es {
					if e := &es[i]; e.t0 <= t && e.t1 >= t {
						consider(e.id)
					}
				}
			}
		}
		for i := range c.rest {
			if e := &c.rest[i]; e.t0 <= t && e.t1 >= t {
				consider(e.id)
			}
		}
	}
	visited := 0.0
	for r := near; r <= far; r++ {
		lb := (r - 1) * cs
		if lb > maxDist || len(dst)-base == k && lb > dst[len(dst)-1].Dist {
			break
		}
		if visited > float64(2*len(w.ids)+16) {
			// The rings have cost more than testing every body would:
			// test the rest directly.
			for id := range w.bodies {
				consider(int32(id))
			}
			break
		}
		visited += math.Max(1, 8*r)
		if r == 0 {
			visit(cx, cy)
			continue
		}
		// Clip the ring's sides to the extent so that a far query costs
		// the occupied cells only.
		xa, xb := math.Max(cx-r, float64(e.x0)), math.Min(cx+r, float64(e.x1))
		ya, yb := math.Max(cy-r+1, float64(e.y0)), math.Min(cy+r-1, float64(e.y1))
		for x := xa; x <= xb; x++ {
			visit(x, cy-r)
			visit(x, cy+r)
		}
		for y := ya; y <= yb; y++ {
			visit(cx-r, y)
			visit(cx+r, y)
		}
	}
	return dst, nil
}

func cmpNear(a, b Near) int {
	if c := cmp.Compare(a.Dist, b.Dist); c != 0 {
		return c
	}
	return cmp.Compare(a.Path, b.Path)
}
