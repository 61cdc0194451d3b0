package netcode

import (
	"fmt"
	"unsafe"
)

// Verify recomputes, for every live value, the reasons its locks fail or
// are undecided from scratch over the store's own data, and checks the
// incremental bookkeeping and every state agree, that histories are
// ordered, and that every lock that can still change its holder's state
// is registered in the log of the path it reads (the log is where a value
// arriving or changing state finds the locks it affects). It is the local
// form of the validity rule (with locks pointing strictly back in time it
// implies the global one). It also checks the layout itself: the path
// index, the lists against their entries, and the counters of Stats. It
// costs O(values × locks × history) and is meant for tests and
// simulations, not for every tick in production.
func (s *Store) Verify() error {
	finals := func(p *pathRec) []finalValue {
		out := make([]finalValue, 0, p.nfinals())
		for i := 0; i < p.nfinals(); i++ {
			out = append(out, *p.final(i))
		}
		return out
	}
	stateAt := func(p *pathRec, t Time) (State, bool) {
		if t.Nanos < s.horizon {
			if p.finalAt(t) {
				return Valid, true
			}
			return stateLost, true
		}
		list := s.liveList(p)
		if i, ok := searchSlots(list, t); ok {
			return s.ent(list[i].e).state, true
		}
		return 0, false
	}
	// check recomputes an entry's lock reasons. Reasons from live entries
	// must match the counters exactly. Reasons from the final region (a lost
	// target, a final value inside an interval) are permanent; trimming may
	// drop some of the final values once counted, but it always keeps one
	// inside every live lock's interval, so what must hold is that the
	// counters carry permanent reasons iff some remain.
	check := func(name string, h uint32, e *entry) error {
		// A follower's locks are registered, and counted, by its leader.
		c := e
		if e.lead != 0 {
			h, c = e.lead-1, s.ent(e.lead-1)
			if c.final || c.ghost || c.t != e.t || len(c.locks) != len(e.locks) || (len(e.locks) > 0 && &c.locks[0] != &e.locks[0]) {
				return fmt.Errorf("%s@%v: leader %s@%v does not share its locks", name, e.t, s.rec(c.path).name(), c.t)
			}
			found := false
			for f := c.next; f != 0 && !found; f = s.ent(f - 1).next {
				found = s.ent(f-1) == e
			}
			if !found {
				return fmt.Errorf("%s@%v: not chained from its leader", name, e.t)
			}
		}
		var liveBad, liveUnknown int32
		permanent := false
		for i, l := range e.locks {
			_, p := s.findPath(l.Path)
			if p == nil {
				// A path with no value and no lock that can still matter
				// is deleted (one with a final value never is): it reads
				// as empty.
				if l.End.Nanos >= s.horizon {
					return fmt.Errorf("%s@%v: lock path %s missing", name, e.t, l.Path)
				}
				r := newRec(l.Path)
				p = &r
			}
			if !l.Start.IsZero() {
				st, ok := stateAt(p, l.Start)
				if !ok {
					return fmt.Errorf("%s@%v: lock target %s@%v has no entry", name, e.t, l.Path, l.Start)
				}
				b, u := targetContrib(st)
				if l.Start.Nanos < s.horizon {
					permanent = permanent || b > 0
				} else {
					liveBad, liveUnknown = liveBad+b, liveUnknown+u
				}
			}
			for _, f := range finals(p) {
				if l.Start.Before(f.t) && f.t.Before(l.End) {
					permanent = true
				}
			}
			for _, sl := range s.liveList(p) {
				if l.Start.Before(sl.t) && sl.t.Before(l.End) {
					b, u := intervalContrib(s.ent(sl.e).state)
					liveBad, liveUnknown = liveBad+b, liveUnknown+u
				}
			}
			// A lock ending at or after the horizon must be in the log
			// once; one ending before it can no longer change anything.
			n := 0
			items, err := s.logItems(p)
			if err != nil {
				return err
			}
			for _, it := range items {
				// Items ending before the horizon are never read: their
				// holder's handle may name a recycled entry.
				if it.end.Nanos >= s.horizon && it.holder == h && int(it.idx) == i {
					if it.start != l.Start || it.end != l.End {
						return fmt.Errorf("%s@%v: lock %d logged as (%v, %v), is (%v, %v)", name, e.t, i, it.start, it.end, l.Start, l.End)
					}
					n++
				}
			}
			if l.End.Nanos >= s.horizon && n != 1 {
				return fmt.Errorf("%s@%v: lock %d on %s is in its log %d times", name, e.t, i, l.Path, n)
			}
		}
		if c.unknown != liveUnknown || c.bad < liveBad || (c.bad > liveBad) != permanent {
			return fmt.Errorf("%s@%v: counters bad=%d unknown=%d, recomputed live bad=%d unknown=%d, permanent=%v",
				name, e.t, c.bad, c.unknown, liveBad, liveUnknown, permanent)
		}
		if e.state != c.computedSelf() {
			return fmt.Errorf("%s@%v: state %v but counters say %v", name, e.t, e.state, c.computedSelf())
		}
		if e.queued {
			return fmt.Errorf("%s@%v: left queued", name, e.t)
		}
		return nil
	}
	// entries checks one live list: ordered, each slot naming a live entry
	// of this path at its time.
	var liveValues, ghosts, pending, finalValues int
	entries := func(pid uint32, p *pathRec, list []slot, event bool) error {
		for i, sl := range list {
			if i > 0 && !list[i-1].t.Before(sl.t) {
				return fmt.Errorf("%s: live history out of order", p.name())
			}
			e := s.ent(sl.e)
			if e.t != sl.t || e.path != pid || (e.flags&FlagEvent != 0) != event {
				return fmt.Errorf("%s@%v: list slot names entry %s@%v", p.name(), sl.t, s.rec(e.path).name(), e.t)
			}
			if e.final || e.t.Nanos < s.horizon {
				return fmt.Errorf("%s@%v: final entry in live history", p.name(), e.t)
			}
			if e.ghost {
				if event || e.state != stateUnseen || len(e.locks) != 0 {
					return fmt.Errorf("%s@%v: bad ghost", p.name(), e.t)
				}
				ghosts++
				continue
			}
			liveValues++
			if e.state == Pending {
				pending++
			}
			if err := check(p.name(), sl.e, e); err != nil {
				return err
			}
		}
		return nil
	}
	npaths := 0
	for _, v := range s.slots {
		if v == 0 {
			continue
		}
		npaths++
		pid := uint32(v) - 1
		p := s.rec(pid)
		if _, q := s.findPath(p.name()); q != p || s.hash(p.name()) != uint32(v>>32) {
			return fmt.Errorf("%s: path index does not lead to its record", p.name())
		}
		if p.live.n > 0 {
			if p.last != s.liveList(p)[p.live.n-1] {
				return fmt.Errorf("%s: the record's newest live slot is not the list's", p.name())
			}
			e := s.ent(p.last.e)
			if ok := !e.ghost && e.state != Invalid; ok != p.lastOK() || p.lastSt != e.state || (ok && (int(p.lastN) != len(e.value) || p.lastP != unsafe.SliceData(e.value))) {
				return fmt.Errorf("%s: the record's newest live value is stale", p.name())
			}
		}
		if p.live.class != 0 && p.live.n < 2 {
			return fmt.Errorf("%s: a live list of %d in a block", p.name(), p.live.n)
		}
		if (p.live.n == 0) != (p.lastSt == stateNone) {
			return fmt.Errorf("%s: %d live entries, the record's newest is in state %d", p.name(), p.live.n, p.lastSt)
		}
		if p.lastP != nil && p.lastN <= maxInline && string(p.inline[:p.lastN]) != string(unsafe.Slice(p.lastP, p.lastN)) {
			return fmt.Errorf("%s: the record's inline copy of its newest value is stale", p.name())
		}
		if p.live.n == 0 {
			want := slot{}
			var wantP *byte
			var wantN uint32
			if p.hasFin {
				want, wantP, wantN = slot{t: p.fin.t}, p.fin.p, p.fin.n
			}
			if p.last != want || p.lastP != wantP || p.lastN != wantN {
				return fmt.Errorf("%s: the record's copy of its latest final value is stale", p.name())
			}
		}
		if err := entries(pid, p, s.liveList(p), false); err != nil {
			return err
		}
		if err := entries(pid, p, s.lists.list(p.events), true); err != nil {
			return err
		}
		fs := finals(p)
		finalValues += len(fs)
		for i := 1; i < len(fs); i++ {
			if !fs[i-1].t.Before(fs[i].t) {
				return fmt.Errorf("%s: final history out of order", p.name())
			}
		}
		if len(fs) > 0 && p.live.n > 0 && !fs[len(fs)-1].t.Before(s.liveList(p)[0].t) {
			return fmt.Errorf("%s: final value after a live one", p.name())
		}
		// Every lock item still able to matter names a live holder's lock
		// on this path.
		log, err := s.logItems(p)
		if err != nil {
			return err
		}
		for i, it := range log {
			if i > 0 && log[i-1].end.Before(it.end) {
				return fmt.Errorf("%s: lock log out of End order", p.name())
			}
			if i == 0 && it.end != p.logEnd {
				return fmt.Errorf("%s: the log's first item ends %v, the record says %v", p.name(), it.end, p.logEnd)
			}
			if it.end.Nanos < s.horizon {
				continue
			}
			h := s.ent(it.holder)
			if h.final || h.ghost || int(it.idx) >= len(h.locks) || h.locks[it.idx].Path != p.name() {
				return fmt.Errorf("%s: lock item (%v, %v) names no live lock on it", p.name(), it.start, it.end)
			}
		}
		if p.live.n == 0 && p.events.n == 0 && !p.hasFin && !p.sweep {
			return fmt.Errorf("%s: a path with no value and no sweep queued", p.name())
		}
	}
	if npaths != s.npaths {
		return fmt.Errorf("index holds %d paths, counter %d", npaths, s.npaths)
	}
	if liveValues != s.stats.LiveValues || ghosts != s.stats.Ghosts || pending != s.pending || finalValues != s.stats.FinalValues {
		return fmt.Errorf("counted %d live values, %d ghosts, %d pending, %d final values; stats say %d, %d, %d, %d",
			liveValues, ghosts, pending, finalValues, s.stats.LiveValues, s.stats.Ghosts, s.pending, s.stats.FinalValues)
	}
	return nil
}

// logItems returns the items of p's log that may still be read (those
// linked from the record or an item with an End at or after the horizon),
// newest End first, or an error if a link's End is not its item's.
func (s *Store) logItems(p *pathRec) ([]lockItem, error) {
	var out []lockItem
	if p.log == 0 || p.logEnd.Nanos < s.horizon {
		return nil, nil
	}
	for x := p.log; ; {
		it := s.item(x - 1)
		out = append(out, *it)
		if it.next == 0 || it.nextEnd < s.horizon {
			return out, nil
		}
		if it.nextEnd != s.item(it.next-1).end.Nanos {
			return out, fmt.Errorf("%s: a lock item's link says End %d, its item ends %v", p.name(), it.nextEnd, s.item(it.next-1).end)
		}
		x = it.next
	}
}
