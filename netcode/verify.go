package netcode

import (
	"fmt"
	"slices"
)

// Verify recomputes, for every live value, the reasons its locks fail or
// are undecided from scratch over the store's own data, and checks the
// incremental bookkeeping and every state agree, that histories are
// ordered, and that every lock spanning a value is registered with it. It
// is the local form of the validity rule (with locks pointing strictly back
// in time it implies the global one). It costs O(values × locks × history)
// and is meant for tests and simulations, not for every tick in
// production.
func (s *Store) Verify() error {
	stateAt := func(p *pathState, t Time) (State, bool) {
		if t.Nanos < s.horizon {
			j := searchFinals(p.finals, t)
			if j < len(p.finals) && p.finals[j].t == t {
				return Valid, true
			}
			return stateLost, true
		}
		if i, ok := searchEntries(p.live, t); ok {
			return p.live[i].pv.State, true
		}
		return 0, false
	}
	// check recomputes an entry's lock reasons. Reasons from live entries
	// must match the counters exactly. Reasons from the final region (a lost
	// target, a final value inside an interval) are permanent; trimming may
	// drop some of the final values once counted, but it always keeps one
	// inside every live lock's interval, so what must hold is that the
	// counters carry permanent reasons iff some remain.
	check := func(e *entry) error {
		var liveBad, liveUnknown int32
		permanent := false
		for _, l := range e.pv.Locks {
			p := s.paths[l.Path]
			if p == nil {
				return fmt.Errorf("%s@%v: lock path %s missing", e.pv.Path, e.pv.Time, l.Path)
			}
			if !l.Start.IsZero() {
				st, ok := stateAt(p, l.Start)
				if !ok {
					return fmt.Errorf("%s@%v: lock target %s@%v has no entry", e.pv.Path, e.pv.Time, l.Path, l.Start)
				}
				b, u := targetContrib(st)
				if l.Start.Nanos < s.horizon {
					permanent = permanent || b > 0
				} else {
					liveBad, liveUnknown = liveBad+b, liveUnknown+u
				}
			}
			for _, f := range p.finals {
				if l.Start.Before(f.t) && f.t.Before(l.End) {
					permanent = true
				}
			}
			for _, in := range p.live {
				if l.Start.Before(in.pv.Time) && in.pv.Time.Before(l.End) {
					b, u := intervalContrib(in.pv.State)
					liveBad, liveUnknown = liveBad+b, liveUnknown+u
				}
			}
		}
		if e.unknown != liveUnknown || e.bad < liveBad || (e.bad > liveBad) != permanent {
			return fmt.Errorf("%s@%v: counters bad=%d unknown=%d, recomputed live bad=%d unknown=%d, permanent=%v",
				e.pv.Path, e.pv.Time, e.bad, e.unknown, liveBad, liveUnknown, permanent)
		}
		if e.pv.State != e.computed() {
			return fmt.Errorf("%s@%v: state %v but counters say %v", e.pv.Path, e.pv.Time, e.pv.State, e.computed())
		}
		if e.queued {
			return fmt.Errorf("%s@%v: left queued", e.pv.Path, e.pv.Time)
		}
		return nil
	}
	for _, p := range s.paths {
		for i, e := range p.live {
			if i > 0 && !p.live[i-1].pv.Time.Before(e.pv.Time) {
				return fmt.Errorf("%s: live history out of order", p.name)
			}
			if e.final || e.pv.Time.Nanos < s.horizon {
				return fmt.Errorf("%s@%v: final entry in live history", p.name, e.pv.Time)
			}
			if e.ghost {
				if e.pv.State != stateUnseen || len(e.pv.Locks) != 0 {
					return fmt.Errorf("%s@%v: bad ghost", p.name, e.pv.Time)
				}
				continue
			}
			if err := check(e); err != nil {
				return err
			}
			// Every live lock whose interval contains e must be registered.
			for _, q := range s.paths {
				for _, h := range append(slices.Clone(q.live), q.events...) {
					for i, l := range h.pv.Locks {
						if l.Path == p.name && l.Start.Before(e.pv.Time) && e.pv.Time.Before(l.End) &&
							!slices.Contains(e.spanners, &h.refs[i]) {
							return fmt.Errorf("%s@%v: lock of %s@%v spans it but is not registered", p.name, e.pv.Time, h.pv.Path, h.pv.Time)
						}
					}
				}
			}
		}
		for _, e := range p.events {
			if err := check(e); err != nil {
				return err
			}
		}
		for i := 1; i < len(p.finals); i++ {
			if !p.finals[i-1].t.Before(p.finals[i].t) {
				return fmt.Errorf("%s: final history out of order", p.name)
			}
		}
		if len(p.finals) > 0 && len(p.live) > 0 && !p.finals[len(p.finals)-1].t.Before(p.live[0].pv.Time) {
			return fmt.Errorf("%s: final value after a live one", p.name)
		}
	}
	return nil
}
