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
// Drift is the slope between the intersections of the older and the newer
// half of the window; while the window is too short to tell that slope
// from noise it is shrunk towards zero. Bounds carried forward are widened
// by the drift's remaining uncertainty, so an old sample stops deciding
// the estimate once the drift could have moved it further than a fresh
// sample is off.
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
	at        int64   // local time of the newest sample's receipt
	offBase   int64   // estimated offset at `at` is offBase + offset,
	offset    float64 // split so that float64 keeps nanoseconds
	half      float64 // half width of the intersection at `at`
	drift     float64 // d offset / d local
	driftErr  float64 // one-sigma uncertainty of drift
	precision float64 // noise scale of the envelopes, ns (see update)
	rtt       RTTStats
}

type entry struct {
	s   Sample
	rtt int64
	up  int64 // t1-t0 >= offset(t0)
	low int64 // t2-t3 <= offset(t3)
}

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
	// Precision is the estimator's own gauge of its typical error, in
	// nanoseconds: how far the fastest trip of each direction stands from
	// the next fastest. Unlike Bound it is a scale, not a guarantee; it
	// shrinks as samples accumulate on a link whose delays have a floor.
	Precision int64
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
	}, nil
}

// Len is the number of samples in the window.
func (e *Estimator) Len() int { return len(e.buf) }

// Reset forgets every sample.
func (e *Estimator) Reset() {
	e.buf = e.buf[:0]
	e.at, e.offBase, e.offset, e.half, e.drift, e.driftErr, e.precision = 0, 0, 0, 0, 0, 0, 0
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

	// Drift: the slope between the intersections of the older and the
	// newer half of the window (split by time). Each half's intersection
	// is set by its fastest trips, so its noise is about that half's
	// precision gauge; over the time between the halves that becomes the
	// slope's uncertainty.
	drift, driftErr := 0.0, e.maxDrift
	if e.maxDrift > 0 {
		tMid := e.buf[0].s.ClientSend + (e.buf[n-1].s.ClientSend-e.buf[0].s.ClientSend)/2
		k := sort.Search(n, func(i int) bool { return e.buf[i].s.ClientSend > tMid })
		older, newer := e.buf[:k], e.buf[k:]
		if len(older) >= precisionK && len(newer) >= precisionK {
			t1, m1 := middle(older)
			t2, m2 := middle(newer)
			if dt := float64(t2 - t1); dt > 0 {
				// A half's noise is its gap gauge, or, if larger, the mean
				// excess round trip over the half's size: the spacing of
				// the fastest trips if the excess were spread evenly. The
				// second is steady where the first is lucky.
				excess := mean - float64(minRTT)
				p1 := max(gaps(older, 0), excess/float64(len(older)))
				p2 := max(gaps(newer, 0), excess/float64(len(newer)))
				sigma := (p1 + p2 + 1e3) / dt
				raw := max(-e.maxDrift, min(e.maxDrift, float64(m2-m1)/dt))
				// Shrink towards zero: the posterior mean under a prior
				// of +-maxDrift, so a short window cannot claim a large
				// drift.
				mm, ss := e.maxDrift*e.maxDrift, sigma*sigma
				drift = raw * mm / (mm + ss)
				driftErr = math.Sqrt(mm * ss / (mm + ss))
			}
		}
	}
	if e.maxDrift == 0 {
		driftErr = 0
	}
	e.precision = gaps(e.buf, drift)

	// Intersect the bounds, each carried forward to `at` with the drift
	// and widened by the drift's uncertainty over the carry, so that an
	// old sample stops deciding once the drift could have moved it more
	// than a fresh sample is off.
	upper, lower := math.Inf(1), math.Inf(-1)
	for _, en := range e.buf {
		t0, t3 := rel(en.s.ClientSend), rel(en.s.ClientRecv)
		upper = min(upper, val(en.up)-(drift+driftErr)*t0)
		lower = max(lower, val(en.low)-(drift-driftErr)*t3)
	}
	e.at, e.drift, e.driftErr = at, drift, driftErr
	e.offBase, e.offset = base, (upper+lower)/2
	e.half = max(0, (upper-lower)/2)
	// Allow a microsecond of rounding before calling the samples
	// inconsistent.
	return upper >= lower-1e3
}

// gaps is the precision gauge: how far the fastest trip of each
// direction stands from the next fastest. The intersection is set by
// those fastest trips, so this spacing is the scale of its noise: it
// shrinks as samples accumulate (like range/n for uniform jitter) and
// stays large when the delays have no sharp floor.
//
// It returns the mean spacing between the precisionK tightest bounds
// of each direction, averaged over both directions, each bound carried
// to a common time with the given drift.
func gaps(buf []entry, drift float64) float64 {
	if len(buf) < precisionK {
		return math.Inf(1)
	}
	var ups, lows [precisionK]float64
	for i := range precisionK {
		ups[i], lows[i] = math.Inf(1), math.Inf(1)
	}
	for _, en := range buf {
		dt0 := float64(en.s.ClientSend - buf[0].s.ClientSend)
		dt3 := float64(en.s.ClientRecv - buf[0].s.ClientSend)
		insertSmallest(&ups, float64(en.up-buf[0].up)-drift*dt0)
		// Negated so that the tightest lower bound is the smallest.
		insertSmallest(&lows, -(float64(en.low-buf[0].up) - drift*dt3))
	}
	return ((ups[precisionK-1] - ups[0]) + (lows[precisionK-1] - lows[0])) / (2 * (precisionK - 1))
}

// precisionK is how many of the tightest bounds gauge precision: more
// is steadier, fewer reacts sooner.
const precisionK = 4

// insertSmallest keeps the k smallest values seen, sorted.
func insertSmallest(k *[precisionK]float64, v float64) {
	if v >= k[precisionK-1] {
		return
	}
	i := precisionK - 1
	for i > 0 && k[i-1] > v {
		k[i] = k[i-1]
		i--
	}
	k[i] = v
}

// middle returns the middle of the intersection of the samples' bounds,
// ignoring drift within them, and the time it refers to.
func middle(buf []entry) (at, offset int64) {
	up, low := buf[0], buf[0]
	for _, en := range buf[1:] {
		if en.up < up.up {
			up = en
		}
		if en.low > low.low {
			low = en
		}
	}
	at = up.s.ClientSend + (low.s.ClientRecv-up.s.ClientSend)/2
	return at, low.low + (up.up-low.low)/2
}

// Estimate returns the estimate carried to local time at, and false if
// there are no samples yet.
func (e *Estimator) Estimate(at int64) (Estimate, bool) {
	if len(e.buf) == 0 {
		return Estimate{}, false
	}
	dt := float64(at - e.at)
	return Estimate{
		At:        at,
		Offset:    e.offBase + int64(math.Round(e.offset+e.drift*dt)),
		Drift:     e.drift,
		Bound:     int64(math.Ceil(e.half + e.driftErr*math.Abs(dt))),
		Precision: int64(math.Min(math.Ceil(e.precision), math.MaxInt64/2)),
		Samples:   len(e.buf),
	}, true
}

// RTT returns round-trip statistics over the window.
func (e *Estimator) RTT() RTTStats { return e.rtt }
