package timesync

import (
	"math"
	"sort"
)

// Estimator turns exchanges into an estimate of the offset (reference
// minus local time) and the drift (how fast that offset changes per unit
// of local time). It is a pure state machine: time comes in only as the
// timestamps of the samples it is given.
//
// The method. Every exchange bounds the offset from both sides: the
// request could not arrive before it was sent, so offset <= t1-t0, and
// the reply could not arrive before it was sent, so offset >= t2-t3. The
// estimator keeps a window of samples, carries each bound forward to the
// newest sample with the drift estimate, and intersects them: the upper
// bound comes from the sample whose request travelled fastest, the lower
// bound from the sample whose reply travelled fastest, and the estimate
// is the middle of the two. Taking the fastest trip of each direction
// separately does better than Cristian's lowest round trip, and delay
// spikes, queueing and loss never move the estimate because they only
// make trips slower. The error is at most half the width of the
// intersection, which is at most half the lowest round trip.
//
// Drift is the slope of the same two envelopes (the lower convex hull of
// the upper bounds, the upper convex hull of the lower bounds) where they
// pass the window's mean time; while the window is too short to tell the
// slope from noise it is shrunk towards zero.
//
// No method can see a constant asymmetry between the two directions: if
// requests always take A longer than replies, the estimate is off by A/2,
// and stays so.
//
// When the bounds stop intersecting (the reference's clock stepped, or
// the drift changed), samples disagree: the estimator keeps only the
// newest and starts over, and Add reports it.
type Estimator struct {
	// immutable after construction
	maxRTT   int64
	window   int
	maxAge   int64
	maxDrift float64 // fraction, not ppm

	// samples sorted by ClientSend, len <= window
	buf []entry

	// derived by update
	at       int64   // local time of the newest sample's receipt
	offBase  int64   // estimated offset at `at` is offBase + offset,
	offset   float64 // split so that float64 keeps nanoseconds
	half     float64 // half width of the intersection at `at`
	drift    float64 // d offset / d local
	driftErr float64 // one-sigma uncertainty of drift
	rtt      RTTStats

	// scratch for the hulls, reused to keep Add allocation-free
	pts  []point
	hull []point
}

type entry struct {
	s   Sample
	rtt int64
	up  int64 // t1-t0 >= offset(t0)
	low int64 // t2-t3 <= offset(t3)
}

type point struct{ t, v float64 }

// RTTStats summarise the round trips in the estimator's window, in
// nanoseconds. Jitter is their standard deviation.
type RTTStats struct {
	Min, Mean, Jitter int64
}

// Estimate is the estimator's belief about the reference clock.
type Estimate struct {
	// At is the local time the estimate refers to.
	At int64
	// Offset is reference minus local time at At, in nanoseconds.
	Offset int64
	// Drift is the rate of change of Offset per unit of local time (a
	// fraction: 1e-6 is 1 ppm).
	Drift float64
	// Bound is the estimator's bound on |Offset error| at At, in
	// nanoseconds, valid while the two directions' fastest trips are
	// equally fast (see the asymmetry note on Estimator).
	Bound int64
	// Samples is how many samples support the estimate.
	Samples int
}

// NewEstimator returns an empty estimator. cfg must be valid.
func NewEstimator(cfg Config) (*Estimator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Estimator{
		maxRTT:   int64(cfg.MaxRTT),
		window:   cfg.Window,
		maxAge:   int64(cfg.MaxAge),
		maxDrift: cfg.MaxDriftPPM * 1e-6,
		buf:      make([]entry, 0, cfg.Window+1),
		pts:      make([]point, 0, cfg.Window+1),
		hull:     make([]point, 0, cfg.Window+1),
	}, nil
}

// Len is the number of samples in the window.
func (e *Estimator) Len() int { return len(e.buf) }

// Reset forgets every sample.
func (e *Estimator) Reset() {
	e.buf = e.buf[:0]
	e.at, e.offBase, e.offset, e.half, e.drift, e.driftErr = 0, 0, 0, 0, 0, 0
	e.rtt = RTTStats{}
}

// Add feeds one exchange. It returns consistent == false when s
// disagreed with the window (the bounds no longer intersected) and the
// estimator started over from s alone. A sample that cannot be a real
// exchange is refused with an error and changes nothing.
func (e *Estimator) Add(s Sample) (consistent bool, err error) {
	if err := s.Check(e.maxRTT); err != nil {
		return true, err
	}
	en := entry{s: s, rtt: s.RTT(), up: s.ServerRecv - s.ClientSend}
	en.low = en.up - en.rtt // t2-t3 without overflow
	i := sort.Search(len(e.buf), func(i int) bool { return e.buf[i].s.ClientSend > s.ClientSend })
	e.buf = append(e.buf, entry{})
	copy(e.buf[i+1:], e.buf[i:])
	e.buf[i] = en
	e.trim()
	if e.update() {
		return true, nil
	}
	// Disagreement: keep only s, the newest word on the reference clock.
	e.buf = append(e.buf[:0], en)
	e.update()
	return false, nil
}

// trim enforces the window's size and age limits.
func (e *Estimator) trim() {
	var newest int64
	for _, en := range e.buf {
		newest = max(newest, en.s.ClientRecv)
	}
	keep := e.buf[:0]
	for _, en := range e.buf {
		if newest-en.s.ClientRecv <= e.maxAge {
			keep = append(keep, en)
		}
	}
	e.buf = keep
	if over := len(e.buf) - e.window; over > 0 {
		e.buf = append(e.buf[:0], e.buf[over:]...)
	}
}

// update recomputes the estimate from the window and reports whether
// the bounds intersect.
func (e *Estimator) update() bool {
	n := len(e.buf)
	// Work relative to the newest sample so that float64 keeps
	// nanosecond precision.
	var at int64
	for _, en := range e.buf {
		at = max(at, en.s.ClientRecv)
	}
	base := e.buf[n-1].up
	rel := func(t int64) float64 { return float64(t - at) }
	val := func(v int64) float64 { return float64(v - base) }

	// RTT statistics.
	var sum, sumSq float64
	minRTT := int64(math.MaxInt64)
	for _, en := range e.buf {
		minRTT = min(minRTT, en.rtt)
		r := float64(en.rtt)
		sum += r
		sumSq += r * r
	}
	mean := sum / float64(n)
	e.rtt = RTTStats{Min: minRTT, Mean: int64(math.Round(mean)), Jitter: int64(math.Round(math.Sqrt(max(0, sumSq/float64(n)-mean*mean))))}

	// Drift from the envelopes' slopes at the window's mean time.
	var tMean float64
	tMin, tMax := math.Inf(1), math.Inf(-1)
	for _, en := range e.buf {
		t0, t3 := rel(en.s.ClientSend), rel(en.s.ClientRecv)
		tMean += (t0 + t3) / 2
		tMin = min(tMin, t0)
		tMax = max(tMax, t3)
	}
	tMean /= float64(n)
	drift, driftErr := 0.0, e.maxDrift
	if n >= 2 && tMax-tMin > 0 {
		e.pts = e.pts[:0]
		for _, en := range e.buf {
			e.pts = append(e.pts, point{rel(en.s.ClientSend), val(en.up)})
		}
		upSlope, upAt, okUp := e.edgeAt(e.pts, tMean, false)
		e.pts = e.pts[:0]
		for _, en := range e.buf {
			e.pts = append(e.pts, point{rel(en.s.ClientRecv), val(en.low)})
		}
		sortPoints(e.pts)
		lowSlope, lowAt, okLow := e.edgeAt(e.pts, tMean, true)
		if okUp && okLow && e.maxDrift > 0 {
			// The envelopes' gap is the noise of their minima; over half
			// the span it becomes the slope's uncertainty.
			sigma := (max(0, upAt-lowAt) + 1e3) / ((tMax - tMin) / 2)
			raw := max(-e.maxDrift, min(e.maxDrift, (upSlope+lowSlope)/2))
			m2, s2 := e.maxDrift*e.maxDrift, sigma*sigma
			drift = raw * m2 / (m2 + s2)
			driftErr = math.Sqrt(m2 * s2 / (m2 + s2))
		}
	}
	if e.maxDrift == 0 {
		driftErr = 0
	}

	// Intersect the bounds, each carried forward to `at`.
	upper, lower := math.Inf(1), math.Inf(-1)
	oldest := 0.0
	for _, en := range e.buf {
		t0, t3 := rel(en.s.ClientSend), rel(en.s.ClientRecv)
		upper = min(upper, val(en.up)-drift*t0)
		lower = max(lower, val(en.low)-drift*t3)
		oldest = min(oldest, t0)
	}
	e.at, e.drift, e.driftErr = at, drift, driftErr
	e.offBase, e.offset = base, (upper+lower)/2
	e.half = max(0, (upper-lower)/2)
	// Carrying bounds forward with a drift that is off by driftErr moves
	// them by up to twice that over the window; allow for it (and for
	// rounding) before calling the samples inconsistent.
	tol := 2*driftErr*(-oldest) + 1e3
	return upper >= lower-tol
}

// edgeAt finds the edge of the lower (upperHull false) or upper convex
// hull of pts, sorted by t, that spans t, and returns its slope and its
// value at t.
func (e *Estimator) edgeAt(pts []point, t float64, upperHull bool) (slope, at float64, ok bool) {
	h := e.hull[:0]
	for _, p := range pts {
		for len(h) >= 2 {
			a, b := h[len(h)-2], h[len(h)-1]
			cross := (b.t-a.t)*(p.v-a.v) - (b.v-a.v)*(p.t-a.t)
			if (!upperHull && cross <= 0) || (upperHull && cross >= 0) {
				h = h[:len(h)-1]
				continue
			}
			break
		}
		if len(h) == 1 && h[0].t == p.t {
			// Same instant: keep the tighter bound.
			if (!upperHull && p.v < h[0].v) || (upperHull && p.v > h[0].v) {
				h[0] = p
			}
			continue
		}
		h = append(h, p)
	}
	e.hull = h
	if len(h) < 2 {
		return 0, 0, false
	}
	k := sort.Search(len(h)-1, func(i int) bool { return h[i+1].t >= t })
	if k >= len(h)-1 {
		k = len(h) - 2
	}
	a, b := h[k], h[k+1]
	if b.t == a.t {
		return 0, 0, false
	}
	slope = (b.v - a.v) / (b.t - a.t)
	return slope, a.v + slope*(t-a.t), true
}

// sortPoints sorts by t; the input is nearly sorted, so insertion sort.
func sortPoints(p []point) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].t < p[j-1].t; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// Estimate returns the estimate carried to local time at, and false if
// there are no samples yet.
func (e *Estimator) Estimate(at int64) (Estimate, bool) {
	if len(e.buf) == 0 {
		return Estimate{}, false
	}
	dt := float64(at - e.at)
	return Estimate{
		At:      at,
		Offset:  e.offBase + int64(math.Round(e.offset+e.drift*dt)),
		Drift:   e.drift,
		Bound:   int64(math.Ceil(e.half + e.driftErr*math.Abs(dt))),
		Samples: len(e.buf),
	}, true
}

// RTT returns round-trip statistics over the window.
func (e *Estimator) RTT() RTTStats { return e.rtt }
