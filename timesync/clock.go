package timesync

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Source is a local time source in nanoseconds. It must never go
// backwards; it may run fast or slow, which the Clock measures as drift.
type Source interface {
	Nanos() int64
}

// SystemSource returns the process's monotonic clock, anchored to the
// wall clock once, at the call: values are nanoseconds since the Unix
// epoch, but setting the wall clock later never moves them.
func SystemSource() Source {
	now := time.Now()
	return monotonic{start: now, base: now.UnixNano()}
}

type monotonic struct {
	start time.Time
	base  int64
}

func (m monotonic) Nanos() int64 { return m.base + int64(time.Since(m.start)) }

// mapping turns a local reading into synced time. It is immutable once
// published, so readers need no lock.
type mapping struct {
	synced bool
	l0, s0 int64   // at local time l0 the clock read s0
	rate   float64 // synced per local nanosecond, 1 + drift
	corr   int64   // correction still to apply after l0, slewed
	slew   float64 // most correction per local nanosecond
}

func (m *mapping) at(l int64) int64 {
	d := max(0, l-m.l0)
	v := m.s0 + int64(math.Round(float64(d)*m.rate))
	if m.corr != 0 {
		step := int64(float64(d) * m.slew)
		if m.corr > 0 {
			v += min(m.corr, step)
		} else {
			v -= min(-m.corr, step)
		}
	}
	return v
}

// Clock is a synced, monotonic clock. Now is safe to call from any
// goroutine at any rate; the other methods are safe for concurrent use
// too but are meant to be driven by one sync loop (see the package
// documentation). A Clock owns no goroutine and no timer.
type Clock struct {
	// immutable after construction
	src  Source
	cfg  Config
	slew float64

	// read by Now without a lock
	m    atomic.Pointer[mapping]
	last atomic.Int64 // the largest value Now has returned

	mu            sync.Mutex // guards the fields below
	est           *Estimator
	out           []int64 // ClientSend of outstanding requests, oldest first
	lastSend      int64
	sent          bool
	interval      time.Duration
	disagreements int
}

// New returns a clock reading src, or an error if cfg is invalid. A
// follower's clock reads 0 until its first sync; a reference clock
// (cfg.Reference) reads src from the start.
func New(src Source, cfg Config) (*Clock, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("%w: nil Source", ErrBadConfig)
	}
	est, err := NewEstimator(cfg)
	if err != nil {
		return nil, err
	}
	c := &Clock{
		src:      src,
		cfg:      cfg,
		slew:     float64(cfg.MaxSlew) / float64(time.Second),
		est:      est,
		out:      make([]int64, 0, cfg.MaxOutstanding),
		interval: cfg.MinInterval,
	}
	c.m.Store(&mapping{synced: cfg.Reference, rate: 1})
	return c, nil
}

// Now returns the synced time in nanoseconds: 0 before the first sync
// (0 is "before everything" in Rewind's data model, so a write stamped
// before sync is refused rather than misplaced), then the reference's
// time as best known. It never returns less than it returned before.
func (c *Clock) Now() int64 {
	m := c.m.Load()
	if !m.synced {
		return 0
	}
	v := m.at(c.src.Nanos())
	for {
		prev := c.last.Load()
		if v <= prev {
			return prev
		}
		if c.last.CompareAndSwap(prev, v) {
			return v
		}
	}
}

// Synced reports whether the clock has made its first sync (or is a
// reference). From then on Now is the reference's time.
func (c *Clock) Synced() bool { return c.m.Load().synced }

// Local reads the clock's Source: the time base of Request.ClientSend
// and of the receive time given to Observe.
func (c *Clock) Local() int64 { return c.src.Nanos() }

// NextSync is the local time at which the next request is due. Before
// the first request it is 0 (now); for a reference it is never.
func (c *Clock) NextSync() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.cfg.Reference:
		return math.MaxInt64
	case !c.sent:
		return 0
	}
	return c.lastSend + int64(c.interval)
}

// IdleSync is the local time at which the next request is due when it
// would be sent on its own, with nothing else going to the reference:
// NextSync while the clock warms up or after samples disagreed (the
// interval is below MaxInterval), then the last request plus
// Config.IdleInterval. A follower sends a request at NextSync when it has
// other traffic for the reference to carry it, and at IdleSync when it
// has none, so a stable, quiet follower costs one exchange per
// IdleInterval.
func (c *Clock) IdleSync() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.cfg.Reference:
		return math.MaxInt64
	case !c.sent:
		return 0
	case c.interval < c.cfg.MaxInterval:
		return c.lastSend + int64(c.interval)
	}
	return c.lastSend + int64(c.cfg.IdleInterval)
}

// CanRequest reports whether a new Request would leave every outstanding
// request remembered. Request forgets the oldest when Config.MaxOutstanding
// are unanswered, and a reply to a forgotten request is refused: on a link
// whose round trip spans many requests, a loop that checks CanRequest
// before sending keeps every reply usable.
func (c *Clock) CanRequest() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.out) < c.cfg.MaxOutstanding
}

// ForgetRequests forgets every outstanding request, whose replies will
// then be refused: call it when the connection they were sent on is gone.
func (c *Clock) ForgetRequests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = c.out[:0]
}

// Request stamps a new request with the local time and remembers it, so
// that its reply is accepted. The caller sends it to the reference.
func (c *Clock) Request() Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.src.Nanos()
	if len(c.out) == c.cfg.MaxOutstanding {
		c.out = append(c.out[:0], c.out[1:]...)
	}
	c.out = append(c.out, now)
	c.lastSend, c.sent = now, true
	return Request{ClientSend: now}
}

// Observe feeds a reply received at local time recv (take it with Local
// as soon as the reply is read off the network). The first sync sets the
// clock at once, as soon as the estimate is precise enough
// (Config.SyncPrecision) or Config.Warmup samples are in; later replies
// slew it at no more than Config.MaxSlew per second. A reply to no outstanding request, or one that cannot be a
// real exchange, is refused with an error and changes nothing.
func (c *Clock) Observe(rep Reply, recv int64) error {
	if c.cfg.Reference {
		return ErrReference
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.out) && c.out[i] != rep.ClientSend {
		i++
	}
	if i == len(c.out) {
		return fmt.Errorf("%w: client send %d", ErrUnexpectedReply, rep.ClientSend)
	}
	consistent, err := c.est.Add(SampleOf(rep, recv))
	if err != nil {
		return err
	}
	c.out = append(c.out[:i], c.out[i+1:]...)
	synced := c.m.Load().synced
	if consistent {
		if synced && c.est.Len() >= c.cfg.Warmup {
			c.interval = min(c.interval*5/4, c.cfg.MaxInterval)
		}
	} else {
		c.interval = c.cfg.MinInterval
		c.disagreements++
	}
	if !synced {
		n := c.est.Len()
		e, _ := c.est.Estimate(recv)
		if n < MinSyncSamples || (n < c.cfg.Warmup && e.Precision > int64(c.cfg.SyncPrecision)) {
			return nil
		}
	}
	c.retargetLocked()
	return nil
}

// retargetLocked publishes a mapping that starts where the clock is now
// and converges on the estimate.
func (c *Clock) retargetLocked() {
	now := c.src.Nanos()
	e, _ := c.est.Estimate(now)
	target := now + e.Offset
	old := c.m.Load()
	m := &mapping{synced: true, l0: now, rate: 1 + e.Drift, slew: c.slew}
	if !old.synced {
		m.s0 = max(target, c.last.Load())
	} else {
		m.s0 = max(old.at(now), c.last.Load())
		m.corr = target - m.s0
	}
	c.m.Store(m)
}

// Status is a snapshot of the clock's state for counters and logs.
type Status struct {
	Synced bool
	// Offset is the estimated reference minus local time, nanoseconds.
	Offset int64
	// Drift is the estimated frequency error, a fraction.
	Drift float64
	// Bound is the estimator's error bound, nanoseconds.
	Bound int64
	// Slewing is the correction the clock has yet to apply, nanoseconds.
	Slewing int64
	RTT     RTTStats
	Samples int
	// Interval is the current re-sync interval.
	Interval time.Duration
	// Disagreements counts the times samples disagreed and the
	// estimator started over (for instance after the reference's clock
	// stepped).
	Disagreements int
}

// Status reports the clock's state.
func (c *Clock) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.src.Nanos()
	m := c.m.Load()
	st := Status{Synced: m.synced, Interval: c.interval, Disagreements: c.disagreements, RTT: c.est.RTT(), Samples: c.est.Len()}
	if e, ok := c.est.Estimate(now); ok {
		st.Offset, st.Drift, st.Bound = e.Offset, e.Drift, e.Bound
		st.Slewing = now + e.Offset - m.at(now)
	}
	return st
}
