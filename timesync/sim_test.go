package timesync

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// This file holds a deterministic simulated link on virtual time: a
// reference server and one follower clock, one-way delays drawn from a
// seeded generator, loss, drift on both clocks and a step of the server's
// clock. Nothing here reads the wall clock or sleeps.

type jitterKind int

const (
	uniform jitterKind = iota // base ± jitter, uniformly
	normal                    // base + N(0, jitter), never below zero
	spiky                     // uniform, plus heavy-tailed spikes
)

// direction describes the one-way delay of one direction of the link.
type direction struct {
	base, jitter time.Duration
	kind         jitterKind
	spikeProb    float64       // spiky: chance of a spike per packet
	spikeScale   time.Duration // spiky: Pareto scale of a spike
}

func (d direction) delay(r *rand.Rand) int64 {
	v := float64(d.base)
	switch d.kind {
	case uniform:
		v += (2*r.Float64() - 1) * float64(d.jitter)
	case normal:
		v += r.NormFloat64() * float64(d.jitter)
	case spiky:
		v += (2*r.Float64() - 1) * float64(d.jitter)
		if r.Float64() < d.spikeProb {
			// Pareto, alpha 1.5: mostly short, occasionally seconds.
			v += min(float64(d.spikeScale)*(math.Pow(1-r.Float64(), -1/1.5)-1), float64(3*time.Second))
		}
	}
	return int64(max(0, v))
}

// link is one simulated scenario.
type link struct {
	up, down   direction
	loss       float64 // per packet, each direction
	clientPPM  float64 // follower's local clock rate error
	serverPPM  float64 // reference's clock rate error
	clientSkew int64   // follower's local clock minus reference at start
	stepAt     time.Duration
	step       time.Duration // reference clock step at stepAt (0: none)
}

// epoch is where the reference clock starts: a realistic Unix time, so
// that precision problems with large values show up.
const epoch = int64(1_790_000_000) * int64(time.Second)

type simEvent struct {
	at   int64 // true time
	kind int   // 0: request reaches server, 1: reply reaches client
	req  Request
	rep  Reply
	seq  int // tie-break, keeps the order deterministic
}

type eventQueue []simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// sim runs one follower Clock against a reference over a link.
type sim struct {
	l   link
	rng *rand.Rand
	t   int64 // true time, ns since start
	q   eventQueue
	seq int
	c   *Clock
	// observed counts accepted replies, so checks can tell whether the
	// clock was retargeted between two reads
	observed int
	// idleFrom is the true time from which the follower has nothing else
	// to send: its requests follow IdleSync instead of NextSync. Zero:
	// never idle.
	idleFrom     int64
	idleRequests int
}

// simSource is the follower's local clock, read off the simulation.
type simSource struct{ s *sim }

func (s simSource) Nanos() int64 { return s.s.local(s.s.t) }

func (s *sim) local(t int64) int64 {
	return epoch + s.l.clientSkew + t + int64(float64(t)*s.l.clientPPM*1e-6)
}

// server is the reference clock at true time t: what the follower should
// read.
func (s *sim) server(t int64) int64 {
	v := epoch + t + int64(float64(t)*s.l.serverPPM*1e-6)
	if s.l.step != 0 && t >= int64(s.l.stepAt) {
		v += int64(s.l.step)
	}
	return v
}

// trueAt is the true time at which the follower's local clock reads l.
func (s *sim) trueAt(l int64) int64 {
	return int64(math.Ceil(float64(l-epoch-s.l.clientSkew) / (1 + s.l.clientPPM*1e-6)))
}

func newSim(t testing.TB, l link, cfg Config, seed uint64) *sim {
	s := &sim{l: l, rng: rand.New(rand.NewPCG(seed, 0x7153))}
	c, err := New(simSource{s}, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.c = c
	return s
}

func (s *sim) push(e simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

// run advances to true time end, calling read at every multiple of tick
// (and after every reply, so reads interleave with corrections).
func (s *sim) run(t testing.TB, end, tick int64, read func(now int64, afterReply bool)) {
	nextTick := int64(0)
	for {
		due := s.c.NextSync()
		if s.idleFrom > 0 && s.t >= s.idleFrom {
			due = s.c.IdleSync()
		}
		nextSend := max(s.t, s.trueAt(due))
		next := min(nextSend, nextTick)
		if len(s.q) > 0 && s.q[0].at < next {
			next = s.q[0].at
		}
		if next > end {
			return
		}
		s.t = next
		switch {
		case len(s.q) > 0 && s.q[0].at == next:
			e := heap.Pop(&s.q).(simEvent)
			if e.kind == 0 {
				recv := s.server(s.t)
				hold := s.rng.Int64N(int64(50 * time.Microsecond))
				rep := Answer(e.req, recv, s.server(s.t+hold))
				if s.rng.Float64() >= s.l.loss {
					s.push(simEvent{at: s.t + hold + s.l.down.delay(s.rng), kind: 1, rep: rep})
				}
			} else {
				if err := s.c.Observe(e.rep, s.c.Local()); err != nil {
					t.Fatalf("Observe at %v: %v", time.Duration(s.t), err)
				}
				s.observed++
				read(s.t, true)
			}
		case next == nextSend:
			if s.idleFrom > 0 && s.t >= s.idleFrom {
				s.idleRequests++
			}
			req := s.c.Request()
			if s.rng.Float64() >= s.l.loss {
				s.push(simEvent{at: s.t + s.l.up.delay(s.rng), kind: 0, req: req})
			}
		default:
			read(s.t, false)
			nextTick += tick
		}
	}
}

// runStats is what one run measured.
type runStats struct {
	errs     []float64 // |synced - true| in ns at each tick after measureFrom
	signed   []float64 // synced - true
	backward int       // reads that returned less than the read before
	meanRTT  float64
	// idleRequests counts the requests sent while idle.
	idleRequests int
}

// measure runs a scenario and checks monotonicity and the slew limit at
// every read. Errors are recorded from measureFrom on.
func measure(t testing.TB, l link, cfg Config, seed uint64, measureFrom, end time.Duration) runStats {
	return measureIdle(t, l, cfg, seed, 0, measureFrom, end)
}

// measureIdle is measure with the follower going quiet at idleFrom (zero:
// never): from then on it requests at IdleSync.
func measureIdle(t testing.TB, l link, cfg Config, seed uint64, idleFrom, measureFrom, end time.Duration) runStats {
	s := newSim(t, l, cfg, seed)
	s.idleFrom = int64(idleFrom)
	var st runStats
	var prevV, prevL int64
	var prevDrift float64
	prevObserved := -1
	synced := false
	slew := float64(cfg.MaxSlew) / float64(time.Second)
	maxRate := cfg.MaxDriftPPM*1e-6 + slew
	s.run(t, int64(end), int64(5*time.Millisecond), func(now int64, _ bool) {
		v, lo := s.c.Now(), s.c.Local()
		if synced {
			if v < prevV {
				st.backward++
			}
			// Against the local clock the synced clock runs at 1+drift,
			// plus or minus the slew: across a retarget the drift may
			// change (within MaxDriftPPM), between two it may not. This
			// also catches a clock frozen behind a backward mapping.
			// Two nanoseconds of rounding are allowed per read.
			dl, dv := float64(lo-prevL), float64(v-prevV)
			if dl > 0 && math.Abs(dv-dl) > maxRate*dl+2 {
				t.Fatalf("seed %d: at %v the clock moved %v in %v of local time, faster than drift+slew allow",
					seed, time.Duration(now), time.Duration(dv), time.Duration(dl))
			}
			if dl > 0 && s.observed == prevObserved && math.Abs(dv-dl*(1+prevDrift)) > slew*dl+2 {
				t.Fatalf("seed %d: at %v the clock slewed %v in %v of local time, more than MaxSlew %v per second",
					seed, time.Duration(now), time.Duration(dv-dl*(1+prevDrift)), time.Duration(dl), cfg.MaxSlew)
			}
		}
		if s.c.Synced() {
			synced = true
			prevV, prevL = v, lo
			prevDrift = s.c.Status().Drift
			prevObserved = s.observed
		}
		if now >= int64(measureFrom) {
			d := float64(v - s.server(now))
			st.signed = append(st.signed, d)
			st.errs = append(st.errs, math.Abs(d))
		}
	})
	st.meanRTT = float64(s.c.Status().RTT.Mean)
	st.idleRequests = s.idleRequests
	return st
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func ms(ns float64) float64 { return ns / 1e6 }

type scenario struct {
	name string
	link link
	p99  time.Duration // target: p99 of |error| from 2 s on
	max  time.Duration // every reading from 2 s on is within this
}

func uni(base, jitter time.Duration) direction {
	return direction{base: base, jitter: jitter, kind: uniform}
}

func scenarios() []scenario {
	ms := time.Millisecond
	return []scenario{
		{name: "loopback", link: link{up: uni(100*time.Microsecond, 50*time.Microsecond), down: uni(100*time.Microsecond, 50*time.Microsecond)},
			p99: 200 * time.Microsecond, max: 400 * time.Microsecond},
		{name: "jitter50", link: link{up: uni(50*ms, 10*ms), down: uni(50*ms, 10*ms)},
			p99: 2 * ms, max: 4 * ms},
		{name: "mobile", link: link{up: uni(150*ms, 50*ms), down: uni(150*ms, 50*ms), loss: 0.02, clientPPM: 100},
			p99: 5 * ms, max: 10 * ms},
		{name: "normal", link: link{up: direction{base: 40 * ms, jitter: 5 * ms, kind: normal}, down: direction{base: 40 * ms, jitter: 5 * ms, kind: normal}},
			p99: 5 * ms, max: 10 * ms},
		{name: "spikes", link: link{
			up:   direction{base: 20 * ms, jitter: 2 * ms, kind: spiky, spikeProb: 0.1, spikeScale: 50 * ms},
			down: direction{base: 20 * ms, jitter: 2 * ms, kind: spiky, spikeProb: 0.1, spikeScale: 50 * ms}, loss: 0.05},
			p99: 1 * ms, max: 2 * ms},
		{name: "drift200", link: link{up: uni(30*ms, 5*ms), down: uni(30*ms, 5*ms), clientPPM: -200, serverPPM: 200},
			p99: 2 * ms, max: 4 * ms},
		{name: "skewed-start", link: link{up: uni(10*ms, 1*ms), down: uni(10*ms, 1*ms), clientSkew: int64(3 * time.Hour)},
			p99: 500 * time.Microsecond, max: time.Millisecond},
	}
}

const scenarioSeeds = 30

// TestAccuracyScenarios measures |synced - true| from 2 s to 10 s of
// syncing, over several seeds per scenario, and logs one line per
// scenario beside the Cristian bound (half the mean measured RTT).
func TestAccuracyScenarios(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			var errs []float64
			var rtt float64
			for i := range scenarioSeeds {
				seed := uint64(1000 + i)
				st := measure(t, sc.link, DefaultConfig(), seed, 2*time.Second, 10*time.Second)
				if st.backward > 0 {
					t.Errorf("seed %d: %d backward steps", seed, st.backward)
				}
				if m := slices.Max(st.errs); m > float64(sc.max) {
					t.Errorf("seed %d: max error %.3f ms after 2 s, want <= %.3f ms", seed, ms(m), ms(float64(sc.max)))
				}
				errs = append(errs, st.errs...)
				rtt += st.meanRTT / scenarioSeeds
			}
			p50, p99 := percentile(errs, 0.5), percentile(errs, 0.99)
			t.Logf("timesync scenario=%s p50_ms=%.3f p99_ms=%.3f bound_ms=%.3f", sc.name, ms(p50), ms(p99), ms(rtt/2))
			if p99 > float64(sc.p99) {
				t.Errorf("seeds 1000..%d: p99 %.3f ms, want <= %.3f ms", 1000+scenarioSeeds-1, ms(p99), ms(float64(sc.p99)))
			}
		})
	}
}

// TestIdleAccuracy: a follower that plays for 10 s (requests ride on its
// traffic at NextSync) and then has nothing to send for 50 s (requests
// alone at IdleSync, one per IdleInterval once stable) keeps the same
// accuracy bars while quiet, measured from 12 s to 60 s, and makes about
// one exchange per IdleInterval (DefaultConfig: 250 ms).
func TestIdleAccuracy(t *testing.T) {
	for _, sc := range scenarios()[:3] { // loopback, jitter50, mobile
		t.Run(sc.name, func(t *testing.T) {
			var errs []float64
			cfg := DefaultConfig()
			for i := range scenarioSeeds {
				seed := uint64(1000 + i)
				st := measureIdle(t, sc.link, cfg, seed, 10*time.Second, 12*time.Second, 60*time.Second)
				if st.backward > 0 {
					t.Errorf("seed %d: %d backward steps", seed, st.backward)
				}
				if m := slices.Max(st.errs); m > float64(sc.max) {
					t.Errorf("seed %d: max error %.3f ms while idle, want <= %.3f ms", seed, ms(m), ms(float64(sc.max)))
				}
				errs = append(errs, st.errs...)
				// One exchange per IdleInterval over the 50 quiet seconds,
				// and a few more while a disagreement resets the interval.
				if limit := 2 * int(50*time.Second/cfg.IdleInterval); st.idleRequests > limit {
					t.Errorf("seed %d: %d requests in 50 quiet seconds, want at most %d", seed, st.idleRequests, limit)
				}
			}
			p50, p99 := percentile(errs, 0.5), percentile(errs, 0.99)
			t.Logf("timesync idle scenario=%s p50_ms=%.3f p99_ms=%.3f", sc.name, ms(p50), ms(p99))
			if p99 > float64(sc.p99) {
				t.Errorf("seeds 1000..%d: p99 %.3f ms while idle, want <= %.3f ms", 1000+scenarioSeeds-1, ms(p99), ms(float64(sc.p99)))
			}
		})
	}
}

// TestAsymmetricLink: no exchange can see a constant difference between
// the two directions, so the error settles at half of it, with the sign
// of the slower direction, and stays there instead of growing.
func TestAsymmetricLink(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		link link
		want time.Duration // synced - true: half the asymmetry of the floors
	}{
		{"slow-up", link{up: uni(40*ms, 2*ms), down: uni(10*ms, 2*ms)}, 15 * ms},
		{"slow-down", link{up: uni(5*ms, 1*ms), down: uni(25*ms, 1*ms)}, -10 * ms},
		{"slow-up-drifting", link{up: uni(40*ms, 2*ms), down: uni(10*ms, 2*ms), clientPPM: 150, serverPPM: -150}, 15 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 5 {
				seed := uint64(2000 + i)
				st := measure(t, tc.link, DefaultConfig(), seed, 2*time.Second, 60*time.Second)
				if st.backward > 0 {
					t.Errorf("seed %d: %d backward steps", seed, st.backward)
				}
				var early, late float64
				n := len(st.signed)
				for j, d := range st.signed {
					if dev := d - float64(tc.want); math.Abs(dev) > float64(ms) {
						t.Fatalf("seed %d: reading %d off by %.3f ms from half the asymmetry (%v)", seed, j, ms64(dev), tc.want)
					}
					if j < n/6 {
						early += d / float64(n/6)
					}
					if j >= n-n/6 {
						late += d / float64(n/6)
					}
				}
				// Not growing: the last sixth of the run sits no farther
				// from the asymmetry than the first sixth, give or take
				// the noise of a 20 ms jitter range.
				if grow := math.Abs(late-float64(tc.want)) - math.Abs(early-float64(tc.want)); grow > 0.3*float64(ms) {
					t.Errorf("seed %d: error grew by %.3f ms between the first and last sixth of the run", seed, ms64(grow))
				}
			}
		})
	}
}

func ms64(ns float64) float64 { return ns / 1e6 }

// TestReferenceStep: when the reference's clock steps by more than the
// round trip, the samples stop agreeing, the follower starts over at the
// fast interval and slews to the new time at MaxSlew, never stepping,
// and then holds it. A step smaller than the round trip leaves the
// bounds intersecting; it is absorbed once the pre-step samples have
// left the window (Window samples at MaxInterval).
func TestReferenceStep(t *testing.T) {
	ms := time.Millisecond
	for _, step := range []time.Duration{100 * ms, -100 * ms, 3 * ms} {
		t.Run(step.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			l := link{up: uni(20*ms, 2*ms), down: uni(20*ms, 2*ms), stepAt: 5 * time.Second, step: step}
			settle := l.stepAt + time.Duration(float64(step.Abs())/(float64(cfg.MaxSlew)/float64(time.Second))) + 2*time.Second
			if step.Abs() < 40*ms {
				settle += time.Duration(cfg.Window) * cfg.MaxInterval
			}
			for i := range 5 {
				seed := uint64(3000 + i)
				s := newSim(t, l, cfg, seed)
				var prev int64
				s.run(t, int64(settle+5*time.Second), int64(5*time.Millisecond), func(now int64, _ bool) {
					v := s.c.Now()
					if v < prev {
						t.Fatalf("seed %d: backward step at %v", seed, time.Duration(now))
					}
					prev = v
					if now >= int64(settle) {
						if d := math.Abs(float64(v - s.server(now))); d > float64(ms) {
							t.Fatalf("seed %d: %.3f ms off at %v, want <= 1 ms once slewed", seed, ms64(d), time.Duration(now))
						}
					}
				})
				if step.Abs() > 10*ms && s.c.Status().Disagreements == 0 {
					t.Errorf("seed %d: a %v step went unnoticed", seed, step)
				}
			}
		})
	}
}

// TestRandomScenarios is the property test: seeded random links and
// configs never make the clock step backwards or slew faster than
// configured (both checked at every read by measure).
func TestRandomScenarios(t *testing.T) {
	const runs = 40
	for i := range runs {
		seed := uint64(4000 + i)
		r := rand.New(rand.NewPCG(seed, 1))
		dir := func() direction {
			base := time.Duration(50e3 + r.Float64()*200e6)
			d := direction{base: base, jitter: time.Duration(r.Float64() * float64(base) / 2), kind: jitterKind(r.IntN(3))}
			if d.kind == spiky {
				d.spikeProb, d.spikeScale = r.Float64()*0.2, time.Duration(r.Float64()*float64(200*time.Millisecond))
			}
			return d
		}
		l := link{
			up: dir(), down: dir(), loss: r.Float64() * 0.2,
			clientPPM: r.Float64()*400 - 200, serverPPM: r.Float64()*400 - 200,
			clientSkew: r.Int64N(int64(time.Hour)) - int64(30*time.Minute),
		}
		if r.IntN(2) == 0 {
			l.stepAt, l.step = time.Duration(r.Int64N(int64(15*time.Second))), time.Duration(r.Int64N(int64(time.Second)))-500*time.Millisecond
		}
		cfg := DefaultConfig()
		cfg.MaxSlew = time.Duration(1+r.IntN(20)) * time.Millisecond
		st := measure(t, l, cfg, seed, 0, 20*time.Second)
		if st.backward > 0 {
			t.Fatalf("seed %d (link %+v): %d backward steps", seed, l, st.backward)
		}
	}
}

// TestDeterministic: one seed, one trace.
func TestDeterministic(t *testing.T) {
	sc := scenarios()[2] // mobile: loss, drift and jitter all draw
	a := measure(t, sc.link, DefaultConfig(), 77, 0, 5*time.Second)
	b := measure(t, sc.link, DefaultConfig(), 77, 0, 5*time.Second)
	if diff := cmp.Diff(a.signed, b.signed); diff != "" {
		t.Fatalf("seed 77 gave two traces (-first +second):\n%s", diff)
	}
	c := measure(t, sc.link, DefaultConfig(), 78, 0, 5*time.Second)
	if cmp.Equal(a.signed, c.signed) {
		t.Fatalf("seeds 77 and 78 gave the same trace: the seed drives nothing")
	}
}
