package lagsim

import (
	"math"
	"math/rand/v2"
	"time"
)

// Decision is what a Link decided for one packet.
type Decision struct {
	// Drop is true when the packet is lost; the other fields are then zero.
	Drop bool
	// At is when the packet arrives at the far end of the link.
	At time.Time
	// Dup is true when the packet is delivered a second time, at DupAt.
	Dup   bool
	DupAt time.Time
}

// Link is the pure scheduling core of one direction of a simulated link: it
// owns no clock, goroutine or random source. Decide is a function of the
// profile, the random source, the time the packet was sent, its size and
// the link's own state (the Gilbert–Elliott state and when the bandwidth-
// capped wire is next free), so a test can drive it on virtual time and a
// seed reproduces every decision.
//
// The zero Link is ready to use. A Link is not safe for concurrent use.
type Link struct {
	bad      bool      // Gilbert–Elliott state
	wireFree time.Time // when the capped wire has sent the last accepted packet
}

// Decide schedules one packet of size bytes sent at now through a link
// described by p, drawing randomness from rng. p must be valid.
//
// The order of the steps is part of the contract: the loss state moves and
// the packet may be lost; a survivor waits for the wire (bandwidth cap) and
// then takes Delay plus jitter, plus ReorderGap when chosen for reordering;
// a duplicate takes its own latency from the moment the wire sent it.
func (l *Link) Decide(p *Profile, rng *rand.Rand, now time.Time, size int) Decision {
	loss := p.Loss
	if p.Burst.enabled() {
		if l.bad {
			if chance(rng, p.Burst.Exit) {
				l.bad = false
			}
		} else if chance(rng, p.Burst.Enter) {
			l.bad = true
		}
		if l.bad {
			loss = p.Burst.LossBad
		}
	} else {
		l.bad = false
	}
	if chance(rng, loss) {
		return Decision{Drop: true}
	}

	sent := now
	if p.Bandwidth > 0 {
		start := now
		if l.wireFree.After(start) {
			start = l.wireFree
		}
		l.wireFree = start.Add(time.Duration(int64(size) * int64(time.Second) / p.Bandwidth))
		sent = l.wireFree
	}

	d := Decision{At: sent.Add(latency(p, rng))}
	if chance(rng, p.Reorder) {
		d.At = d.At.Add(p.ReorderGap)
	}
	if chance(rng, p.Duplicate) {
		d.Dup = true
		d.DupAt = sent.Add(latency(p, rng))
	}
	return d
}

// Passthrough reports whether p leaves every packet untouched, so a shell
// may skip scheduling entirely.
func (p *Profile) Passthrough() bool {
	return p.Delay == 0 && p.Jitter == 0 && p.Loss == 0 && !p.Burst.enabled() &&
		p.Duplicate == 0 && p.Reorder == 0 && p.Bandwidth == 0
}

// chance returns true with probability prob, drawing nothing when the
// outcome is certain so that turning a feature off does not shift the
// random sequence of the others.
func chance(rng *rand.Rand, prob float64) bool {
	switch {
	case prob <= 0:
		return false
	case prob >= 1:
		return true
	}
	return rng.Float64() < prob
}

// latency draws Delay plus jitter, never negative.
func latency(p *Profile, rng *rand.Rand) time.Duration {
	if p.Jitter == 0 {
		return p.Delay
	}
	j := float64(p.Jitter)
	var off float64
	switch p.Distribution {
	case Uniform:
		off = (2*rng.Float64() - 1) * j
	case Normal:
		off = max(-4*j, min(4*j, rng.NormFloat64()*j))
	case Pareto:
		// Inverse transform of Pareto(scale j/2, shape 2); 1-Float64 is in
		// (0, 1], so the square root is never zero.
		x := (j / 2) / math.Sqrt(1-rng.Float64())
		off = min(x-j, maxParetoJitter*j)
	}
	return max(0, p.Delay+time.Duration(off))
}
