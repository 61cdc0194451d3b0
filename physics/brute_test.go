package physics

import (
	"math"
	"slices"
)

// brute is the reference the index is checked against: the same semantics
// (motion, filters, tie rules, exact narrowphase per body) answered by
// testing every body, with no index. It keeps every keyframe: trimming only
// drops pieces that end before the horizon, which no query may ask about.
type brute struct {
	extrap  int64
	window  int64
	horizon int64
	now     int64
	bodies  map[string]*Body
}

func newBrute(cfg Config) *brute {
	return &brute{
		extrap:  int64(cfg.Extrapolate),
		window:  int64(cfg.Window),
		horizon: math.MinInt64,
		now:     math.MinInt64,
		bodies:  map[string]*Body{},
	}
}

func (r *brute) sorted() []*Body {
	out := make([]*Body, 0, len(r.bodies))
	for _, b := range r.bodies {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *Body) int {
		switch {
		case a.Path < b.Path:
			return -1
		case a.Path > b.Path:
			return 1
		}
		return 0
	})
	return out
}

func (r *brute) seed(bs []Body) {
	for _, b := range bs {
		c := b
		c.Motion = slices.Clone(b.Motion)
		r.bodies[b.Path] = &c
	}
}

func (r *brute) upsert(path string, sh Shape, k Keyframe) {
	b, ok := r.bodies[path]
	if !ok {
		r.bodies[path] = &Body{Path: path, Shape: sh, Motion: []Keyframe{k}}
		return
	}
	b.Shape = sh
	b.Motion = append(b.Motion[:countBefore(b.Motion, k.T)], k)
}

func (r *brute) remove(path string) { delete(r.bodies, path) }

func (r *brute) advance(now int64) {
	if now > r.now {
		r.now, r.horizon = now, now-r.window
	}
}

func (r *brute) raycast(ray Ray, t int64, f Filter) (Hit, bool) {
	d := ray.Dir.Unit()
	var best Hit
	found := false
	for _, b := range r.sorted() {
		if !f.match(b.Path, b.Layers) {
			continue
		}
		h, ok := rayBody(b.Shape, b.Motion, r.extrap, t, ray.Origin, d, clampLen(ray.MaxDist))
		if ok && (!found || h.s < best.Dist) {
			best = Hit{Path: b.Path, Dist: h.s, Point: ray.Origin.Add(d.Scale(h.s)), Normal: h.n}
			found = true
		}
	}
	return best, found
}

func (r *brute) sweep(q Sweep, f Filter) (Contact, bool) {
	var (
		best  Contact
		toi   float64
		found bool
	)
	for _, b := range r.sorted() {
		if !f.match(b.Path, b.Layers) {
			continue
		}
		s, n, ok := sweepBody(b.Shape, b.Motion, r.extrap, q)
		if ok && (!found || s < toi) {
			toi, found = s, true
			best = Contact{Path: b.Path, Time: q.T0 + int64(math.Floor(s)), Center: q.center(s), Normal: n}
			if q.T1 > q.T0 {
				best.Frac = s / float64(q.T1-q.T0)
			}
			best.Point = best.Center.Sub(n.Scale(q.Radius))
		}
	}
	return best, found
}

func (r *brute) overlaps(s Shape, p Vec2, t int64, f Filter) []string {
	var out []string
	for _, b := range r.sorted() {
		if f.match(b.Path, b.Layers) && overlapBody(b.Shape, b.Motion, r.extrap, t, s, p) {
			out = append(out, b.Path)
		}
	}
	return out
}

func (r *brute) candidates(s Shape, p Vec2, t0, t1 int64, f Filter) []string {
	box := s.Bounds().Translate(p)
	var out []string
	for _, b := range r.sorted() {
		if f.match(b.Path, b.Layers) && candidateBody(b.Shape, b.Motion, r.extrap, t0, t1, box) {
			out = append(out, b.Path)
		}
	}
	return out
}

func (r *brute) nearest(p Vec2, k int, t int64, maxDist float64, f Filter) []Near {
	var all []Near
	for _, b := range r.sorted() {
		if !f.match(b.Path, b.Layers) {
			continue
		}
		if d, ok := nearBody(b.Shape, b.Motion, r.extrap, t, p); ok && d <= clampLen(maxDist) {
			all = append(all, Near{b.Path, d})
		}
	}
	slices.SortFunc(all, cmpNear)
	if len(all) > k {
		all = all[:k]
	}
	return all
}
