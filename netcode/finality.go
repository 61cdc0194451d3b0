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
	cut := h - int64(s.cfg.MaxRewind)
	for s.bucketMin.len() > 0 {
		key := s.bucketMin.peek()
		if key<<bucketShift >= h {
			break
		}
		slot := s.bktOf[key]
		b := &s.bkts[slot] // finalizing adds no bucket: b stays valid
		list := b.ents
		if b.unsorted {
			slices.SortFunc(list, func(x, y uint32) int { return s.ent(x).t.Compare(s.ent(y).t) })
			// What is left after a partial pass stays sorted.
			b.unsorted, b.lastT = false, s.ent(list[len(list)-1]).t
		}
		k := 0
		for k < len(list) && s.ent(list[k]).t.Nanos < h {
			if k%warmBatch == 0 {
				s.warmFinal(list[k:min(k+warmBatch, len(list))])
			}
			s.finalize(list[k], h, cut)
			k++
		}
		if k < len(list) {
			// The finalized entries stay in the bucket's chunks until
			// all of it is final.
			b.ents = list[:copy(list, list[k:])]
			break
		}
		// The bucket's entries and their lock items are referred to
		// only by lock items ending before h and by links that carry
		// such an End, which are never followed: release them whole.
		s.ents.release(&b.entMem)
		s.items.release(&b.itemMem)
		s.sweepNow = append(s.sweepNow, b.sweeps...)
		b.ents, b.sweeps, b.lastT = list[:0], b.sweeps[:0], Time{}
		if cap(b.ents) > maxKeptBucket {
			b.ents = nil // a burst's array, not kept for the next bucket
		}
		delete(s.bktOf, key)
		s.freeBkts = append(s.freeBkts, slot)
		s.lastBkt = -1
		s.bucketMin.pop()
	}
	s.horizon = h
	for _, pid := range s.sweepNow {
		s.sweepPath(pid)
	}
	s.sweepNow = s.sweepNow[:0]
	s.shrink()
	return s.changes
}

// warmBatch is how many entries warmFinal reads ahead of finalize.
const warmBatch = 16

// warmFinal reads what finalize will read of the records of the entries
// hs (their three lines, the history's array and the live list's block):
// the entries' paths are spread over the store, so each record is a cache
// miss, and these loads, independent of one another, are in flight
// together instead of one after the other inside finalize. It changes
// nothing (the sum it keeps is never used).
func (s *Store) warmFinal(hs []uint32) {
	var x uint32
	for _, h := range hs {
		p := s.rec(s.ent(h).path)
		x += uint32(p.nameN) + p.live.n + p.fin.n
		if len(p.older) > 0 {
			x += p.older[0].n
		}
		if p.live.class != 0 {
			x += s.lists.list(p.live)[0].e
		}
	}
	s.warmSum += x
}

// maxKeptBucket bounds the array a finished bucket passes on to the next
// one (entries): 64 KiB, about 4 million values a second.
const maxKeptBucket = 1 << 14

// bucket returns the slot of the finality bucket for key, adding it if
// needed.
func (s *Store) bucket(key int64) uint32 {
	if s.lastBkt >= 0 && s.lastKey == key {
		return uint32(s.lastBkt)
	}
	slot, ok := s.bktOf[key]
	if !ok {
		if n := len(s.freeBkts); n > 0 {
			slot = s.freeBkts[n-1]
			s.freeBkts = s.freeBkts[:n-1]
		} else {
			slot = uint32(len(s.bkts))
			s.bkts = append(s.bkts, bucket{})
		}
		s.bktOf[key] = slot
		s.bucketMin.push(key)
	}
	s.lastKey, s.lastBkt = key, int32(slot)
	return slot
}

// queueSweep makes Tick look at a path with no value once its newest lock
// item can no longer matter: in the bucket after the one of that item's
// End, so the horizon is past it when the sweep runs.
func (s *Store) queueSweep(pid uint32, p *pathRec) {
	b := &s.bkts[s.bucket(p.logEnd.Nanos>>bucketShift+1)]
	b.sweeps = append(b.sweeps, pid)
	p.sweep = true
}

// sweepPath deletes a path that holds no value once no lock on it can
// matter any more. It runs at the end of a Tick, with the new horizon.
// (A path with a final value is kept: its lock log is pruned as it grows,
// or released when the path goes quiet after its last lock ended.)
func (s *Store) sweepPath(pid uint32) {
	p := s.rec(pid)
	p.sweep = false
	if p.live.n > 0 || p.events.n > 0 {
		return // its values' finality calls again
	}
	if p.logEnd.Nanos < s.horizon {
		p.log = 0 // every item is over: not even read
	}
	switch {
	case p.log != 0:
		if !p.hasFin {
			s.queueSweep(pid, p)
		}
	case !p.hasFin:
		s.deletePath(pid, p)
	}
}

// finalize makes one entry final as the horizon moves to h. Entries are
// finalized in time order, so every entry it depends on is already final.
// A path's final history is trimmed to cut (h - MaxRewind) as it gains a
// final value, so a path holds at most the values written within its
// rewind window as of its last write.
func (s *Store) finalize(eh uint32, h, cut int64) {
	e := s.ent(eh)
	if e.final {
		return
	}
	pid := e.path
	p := s.rec(pid)
	event := e.flags&FlagEvent != 0
	switch {
	case e.ghost:
		e.state = stateLost
		if p.last.e == eh {
			s.noteLast(p)
		}
		s.propagate(p, e.t, stateUnseen, stateLost)
		s.runCascade()
		s.stats.Ghosts--
	case e.state == Pending:
		// Unreachable while the counters are right: the pending reasons
		// are earlier entries, already final and definite. Resolve it the
		// way the rule does: a dependency never seen is lost.
		s.setState(p, e, Pending, Invalid)
		if !event {
			s.propagate(p, e.t, Pending, Invalid)
		}
		s.runCascade()
	}
	e.final = true
	if !e.ghost {
		s.stats.LiveValues--
		s.stats.Finalized++
	}
	// The final value is added before the entry leaves the live list: when
	// it was the path's only live value, the record's newest value then
	// goes from the entry to the same bytes as final, with nothing copied.
	switch {
	case e.ghost:
	case !event && e.state == Valid:
		if s.collectFinal {
			if s.finalOut == nil {
				// As many as last time: the list is handed out whole
				// (TakeFinal), so it is not grown from nothing each time.
				s.finalOut = make([]PathValue, 0, max(s.finalHint, 16))
			}
			s.finalOut = append(s.finalOut, PathValue{Path: p.name(), Time: e.t, Value: e.value, Flags: e.flags})
		}
		s.addFinal(p, newFinal(e.t, e.value, e.flags), cut)
	default:
		s.stats.Dropped++
	}
	if event {
		if i, ok := searchSlots(s.lists.list(p.events), e.t); ok {
			s.lists.remove(&p.events, i, 1)
		}
	} else if i, ok := s.searchLive(p, e.t); ok {
		s.removeLive(p, i)
	}
	if p.live.n == 0 && p.events.n == 0 {
		// A quiet path: its log serves no entry of its own any more.
		if p.logEnd.Nanos < h {
			p.log = 0 // every item is over: not even read
		}
		if !p.hasFin && !p.sweep {
			// Nothing left but perhaps locks: delete it at the end
			// of the Tick, or once they are over.
			p.sweep = true
			s.sweepNow = append(s.sweepNow, pid)
		}
	}
}

// addFinal appends a final value to p's history, trimming the history to
// the latest value older than cut and all after it once the second oldest
// is older than cut.
func (s *Store) addFinal(p *pathRec, f finalValue, cut int64) {
	s.stats.FinalValues++
	switch {
	case !p.hasFin:
		p.fin, p.hasFin = f, true
		s.noteFin(p)
		return
	case !p.hasPrev:
		p.prev, p.fin, p.hasPrev = p.fin, f, true
	case p.fin.t.Nanos < cut:
		// fin becomes the latest value older than cut: everything before
		// it goes, and the history stays inside the record.
		k := len(p.older) + 1
		clear(p.older)
		p.older = p.older[:0]
		p.prev, p.fin = p.fin, f
		s.stats.FinalValues -= k
		s.stats.Trimmed += uint64(k)
	default:
		p.older = append(p.older, p.prev)
		p.prev, p.fin = p.fin, f
	}
	s.noteFin(p)
	if p.final(1).t.Nanos < cut {
		s.trimPath(p, cut)
	}
}

// trimPath drops the final values no lock that can still arrive may
// reference: all before the latest one older than cut.
//
// It counts them from the oldest: it runs each time the path gains a final
// value, so there are few (usually one), and a search through the whole
// history would read more of it than the trim touches.
func (s *Store) trimPath(p *pathRec, cut int64) {
	nf := p.nfinals()
	i := 0 // the first final value at or after cut
	for i < nf && p.final(i).t.Nanos < cut {
		i++
	}
	k := i - 1
	if k <= 0 {
		return
	}
	// k < nfinals: the latest final value is always kept.
	s.stats.FinalValues -= k
	s.stats.Trimmed += uint64(k)
	n := len(p.older)
	if k > n {
		// older and prev go: fin alone is left.
		clear(p.older)
		p.older = p.older[:0]
		p.prev, p.hasPrev = finalValue{}, false
		return
	}
	if rest := n - k; rest <= 16 {
		// Short histories keep their array: a path written at a steady
		// rate never reallocates.
		copy(p.older, p.older[k:])
		clear(p.older[rest:])
		p.older = p.older[:rest]
	} else {
		clear(p.older[:k])
		p.older = p.older[k:]
	}
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
