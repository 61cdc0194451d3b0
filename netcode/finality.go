package netcode

import (
	"slices"
)

// Tick advances finality to now: every value with Time.Nanos older than
// now - MaxChangeAge - FinalitySkew becomes final. In time order, a ghost
// (a lock target never seen) is lost for good, so its readers turn invalid;
// a final valid value drops its locks and joins the path's compact history;
// a final invalid value and every event are dropped. History is then trimmed
// per path to the latest final value at or before the horizon minus
// MaxRewind, plus everything after it: as far back as a lock that can still
// arrive may reference. Tick returns the state changes it caused; the slice
// is reused by the next call.
func (s *Store) Tick(now int64) []Change {
	s.changes = s.changes[:0]
	h := now - int64(s.cfg.MaxChangeAge) - int64(s.cfg.FinalitySkew)
	if h <= s.horizon {
		return s.changes
	}
	for s.bucketMin.len() > 0 {
		b := s.bucketMin.peek()
		if b<<bucketShift >= h {
			break
		}
		list := s.buckets[b]
		slices.SortFunc(list, func(x, y *entry) int { return x.pv.Time.Compare(y.pv.Time) })
		k := 0
		for k < len(list) && list[k].pv.Time.Nanos < h {
			s.finalize(list[k], h-int64(s.cfg.MaxRewind))
			k++
		}
		if k < len(list) {
			rest := slices.Clone(list[k:])
			clear(list)
			s.buckets[b] = rest
			break
		}
		delete(s.buckets, b)
		s.bucketMin.pop()
	}
	s.horizon = h
	return s.changes
}

func (s *Store) enqueueFinality(e *entry, nanos int64) {
	b := nanos >> bucketShift
	list, ok := s.buckets[b]
	if !ok {
		s.bucketMin.push(b)
	}
	s.buckets[b] = append(list, e)
}

// finalize makes one entry final. Entries are finalized in time order, so
// every entry it depends on is already final. A path's final history is
// trimmed to cut (horizon - MaxRewind) as it gains a final value, so a
// path holds at most the values written within its rewind window as of its
// last write.
func (s *Store) finalize(e *entry, cut int64) {
	if e.final {
		return
	}
	p := e.p
	event := e.pv.Flags&FlagEvent != 0
	switch {
	case e.ghost:
		e.pv.State = stateLost
		s.propagate(e, stateUnseen, stateLost)
		s.runCascade()
		s.stats.Ghosts--
	case e.pv.State == Pending:
		// Unreachable while the counters are right: the pending reasons
		// are earlier entries, already final and definite. Resolve it the
		// way the rule does: a dependency never seen is lost.
		s.setState(e, Pending, Invalid)
		if !event {
			s.propagate(e, Pending, Invalid)
		}
		s.runCascade()
	}
	if !event {
		// Locks starting here now start in the final region.
		for _, r := range e.readers {
			if !r.holder.final && !r.inBoundary {
				r.inBoundary = true
				p.boundary = append(p.boundary, r)
			}
		}
		p.live = removeEntry(p.live, e)
	} else {
		p.events = removeEntry(p.events, e)
	}
	delete(s.pending, e)
	e.final = true
	e.readers, e.spanners, e.refs = nil, nil, nil
	e.pv.Locks = nil
	e.tag = nil
	if !e.ghost {
		s.stats.LiveValues--
		s.stats.Finalized++
	}
	switch {
	case e.ghost:
	case !event && e.pv.State == Valid:
		p.finals = append(p.finals, finalValue{t: e.pv.Time, value: e.pv.Value, flags: e.pv.Flags})
		s.stats.FinalValues++
		if s.collectFinal {
			s.finalOut = append(s.finalOut, PathValue{Path: p.name, Time: e.pv.Time, Value: e.pv.Value, Flags: e.pv.Flags})
		}
		if len(p.finals) > 1 && p.finals[1].t.Nanos < cut {
			s.trimPath(p, cut)
		}
	default:
		s.stats.Dropped++
	}
	if len(p.live) == 0 && len(p.events) == 0 {
		// Release the emptied lists' arrays: a quiet path keeps only its
		// final values.
		p.live, p.events = nil, nil
		p.boundaryKeep = 0
		p.pruneBoundaryNow()
		if len(p.boundary) == 0 && len(p.finals) == 0 {
			s.unlistPath(p)
			delete(s.paths, p.name)
		}
	}
}

// removeEntry removes e from a time-ordered list. Finalization goes in time
// order, so e is almost always first.
func removeEntry(list []*entry, e *entry) []*entry {
	if len(list) > 0 && list[0] == e {
		if len(list) > 32 {
			// Long histories: drop the head without copying; append
			// reallocates once the capacity runs out.
			list[0] = nil
			return list[1:]
		}
		// Short histories: shift in place so the capacity is reused and a
		// path written at a steady rate never reallocates.
		copy(list, list[1:])
		list[len(list)-1] = nil
		return list[:len(list)-1]
	}
	if i, ok := searchEntries(list, e.pv.Time); ok && list[i] == e {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// trimPath drops the final values no lock that can still arrive may
// reference: all before the latest one older than cut.
func (s *Store) trimPath(p *pathState, cut int64) {
	k := searchFinals(p.finals, Time{Nanos: cut}) - 1
	if k <= 0 {
		return
	}
	clear(p.finals[:k])
	p.finals = p.finals[k:]
	s.stats.FinalValues -= k
	s.stats.Trimmed += uint64(k)
}

// heap is a binary min-heap ordered by less. The store keeps two: the
// cascade (entries by time) and the finality buckets (keys).
type heap[T any] struct {
	a    []T
	less func(x, y T) bool
}

func (h *heap[T]) len() int { return len(h.a) }
func (h *heap[T]) peek() T  { return h.a[0] }

func (h *heap[T]) push(v T) {
	h.a = append(h.a, v)
	i := len(h.a) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.a[i], h.a[parent]) {
			break
		}
		h.a[i], h.a[parent] = h.a[parent], h.a[i]
		i = parent
	}
}

func (h *heap[T]) pop() T {
	top := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	var zero T
	h.a[n] = zero
	h.a = h.a[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(h.a[l], h.a[m]) {
			m = l
		}
		if r < n && h.less(h.a[r], h.a[m]) {
			m = r
		}
		if m == i {
			return top
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
}

// entryLess orders the cascade by (time, path).
func entryLess(x, y *entry) bool {
	if c := x.pv.Time.Compare(y.pv.Time); c != 0 {
		return c < 0
	}
	return x.pv.Path < y.pv.Path
}
