package netcode

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
)

// Internal states of a ghost entry: a lock refers to (path, time) and no
// value has been seen there yet (unseen), or finality passed before one
// arrived (lost). Neither is ever visible outside the store.
const (
	stateUnseen State = 250
	stateLost   State = 251
	stateNone   State = 252 // pathRec.lastSt of a path with no live entry
)

// ChangeKind says what a Change reports.
type ChangeKind uint8

const (
	// Added: a value was stored; New is its initial state.
	Added ChangeKind = iota
	// StateChanged: a stored value went from Old to New.
	StateChanged
)

func (k ChangeKind) String() string {
	if k == Added {
		return "added"
	}
	return "state"
}

// Change is a notification the store returns as data: a value was added, or
// a stored value changed state. Later layers turn changes into messages.
type Change struct {
	Kind     ChangeKind
	Path     string
	Time     Time
	Value    []byte // the value's bytes (aliasing the store: do not modify)
	Flags    Flags
	Old, New State // Old is meaningless for Added
	// Tag is the Outcome.Tag of the committed outcome that wrote the value
	// (nil for values inserted otherwise): the authority finds the call to
	// re-run through it.
	Tag any
}

func (c Change) String() string {
	if c.Kind == Added {
		return fmt.Sprintf("added %s@%v %v", c.Path, c.Time, c.New)
	}
	return fmt.Sprintf("state %s@%v %v→%v", c.Path, c.Time, c.Old, c.New)
}

// Store is the time-stamped path-value store and its validity engine. It is
// a pure core: time comes in as the now argument (synced-clock nanoseconds),
// results come out as return values, and it owns no goroutine. A Store is
// not safe for concurrent use; its owner serialises calls.
//
// Validity follows the one rule: a value is valid iff every lock's Start
// value is valid (or zero) and no valid value lies strictly inside any
// lock's interval. The engine maintains it incrementally, so the states
// after any sequence of insertions equal the states the rule gives for the
// set of values inserted, whatever their order.
type Store struct {
	// immutable after construction
	cfg  Config
	seed maphash.Seed

	// paths: records in chunks, an open-addressing index over them
	recs     []*[recChunk]pathRec
	nrecs    uint32   // records ever used
	freeRecs []uint32 // ids of deleted records, for reuse
	slots    []uint64 // index: hash << 32 | id+1, 0 when empty
	npaths   int
	children map[string]map[string]int // prefix → next segment → paths below

	// entries and lock items, in chunks per finality bucket
	ents  arena[entry]
	items arena[lockItem]

	lists pool[slot] // live values and events of every path

	// finality bookkeeping
	horizon   int64            // values with Nanos < horizon are final
	bkts      []bucket         // buckets by slot; free slots in freeBkts
	freeBkts  []uint32         // slots of bkts not in use
	bktOf     map[int64]uint32 // bucket key (Nanos >> bucketShift) → slot
	bucketMin heap[int64]      // keys of buckets in use
	lastKey   int64            // the bucket found last, a cache for enqueue
	lastBkt   int32            // its slot, -1 if none
	sweepNow  []uint32         // paths to sweep at the end of the Tick

	cascade heap[uint32] // entries to re-evaluate, by time
	changes []Change     // returned by the current call
	stats   StoreStats
	pending int // live values currently Pending

	collectFinal bool        // finalize records final values in finalOut
	finalOut     []PathValue // values that became final since TakeFinal
	finalHint    int         // how many TakeFinal handed out last

	batch []uint32 // path ids of the values of the current batch, or noPath

	recent [16]recentPath // paths found last (findPath)

	// the last entry that registered its locks in this call (1 + handle),
	// for the other writes of its transaction
	lead      uint32
	leadLocks *ReadLock
	leadN     int
	leadAt    Time

	// the last lock slice checkWrite checked, for the writes sharing it
	checkedLocks *ReadLock
	checkedN     int
	checkedAt    Time

	// pathGen counts path deletions: path ids a transaction found stay
	// right while it does not change (see Outcome.ids)
	pathGen uint64

	// the path ids of the last lock slice registered (lockPathIDs)
	lockPaths   []uint32
	lockPathsOf *ReadLock

	warmSum uint32 // what warmFinal read, kept so its loads are not dropped
}

// bucket holds what becomes final together: the entries whose time falls in
// one span of 2^bucketShift ns, and the paths to sweep once it is done.
type bucket struct {
	ents   []uint32
	sweeps []uint32
	// the bucket's chunks of the arenas: its entries, and the lock items
	// of its entries
	entMem, itemMem arenaUse
	// the time of the entry added last, and whether one was added
	// before an earlier one: entries usually come in time order, and
	// then finality need not sort them
	lastT    Time
	unsorted bool
}

// bucketShift groups live entries by time for finality: 2^24 ns ≈ 16.8 ms.
const bucketShift = 24

// StoreStats counts what a store holds and has done.
type StoreStats struct {
	Paths        int // paths held
	LiveValues   int // values (and events) that can still change state
	FinalValues  int // final values kept as history
	Ghosts       int // lock targets not seen yet
	PendingNow   int // live values currently pending
	Inserted     uint64
	Duplicates   uint64 // identical re-deliveries ignored
	Refused      uint64
	Finalized    uint64
	Dropped      uint64 // final invalid values and events dropped
	Trimmed      uint64 // final values trimmed from history
	Invalidation uint64 // state changes to Invalid
	Revalidation uint64 // state changes from Invalid
}

// NewStore returns an empty store, or an error if cfg is invalid.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:       cfg,
		seed:      maphash.MakeSeed(),
		children:  make(map[string]map[string]int),
		bktOf:     make(map[int64]uint32),
		horizon:   -1 << 63,
		lastBkt:   -1,
		bucketMin: heap[int64]{less: func(x, y int64) bool { return x < y }},
	}
	s.cascade = heap[uint32]{less: s.entryLess}
	s.ents.scrub = true
	s.growIndex()
	return s, nil
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

// Horizon returns the finality horizon of the last Tick: values with
// Time.Nanos below it are final.
func (s *Store) Horizon() int64 { return s.horizon }

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	st := s.stats
	st.Paths = s.npaths
	st.PendingNow = s.pending
	return st
}

// Insert stores one value arriving at time now (synced nanoseconds) and
// returns the resulting changes: the value added, and every state change it
// caused, cascading. A refused value returns an error and changes nothing.
// A byte-identical re-delivery is ignored (no error, no change). The value
// and lock slices are copied. The returned slice is reused by the next call.
func (s *Store) Insert(now int64, v PathValue) ([]Change, error) {
	return s.InsertBatch(now, []PathValue{v})
}

// InsertBatch stores several values atomically: if any is refused, none is
// stored. Values of one transaction (same Time, same locks) go in one batch.
// See Insert.
func (s *Store) InsertBatch(now int64, vs []PathValue) ([]Change, error) {
	s.changes = s.changes[:0]
	s.forgetLocks()
	// Within the batch, a (path, time) given twice (as a value, or as an
	// event) must be the same write:
	// each item is compared with the first one of its key (any earlier
	// ones are equal to it, or the batch was refused already).
	var first map[batchKey]int
	if len(vs) > 8 {
		first = make(map[batchKey]int, len(vs))
	}
	s.batch = s.batch[:0]
	for i := range vs {
		pid, err := s.checkWrite(now, &vs[i], true, noPath)
		if err != nil {
			s.stats.Refused++
			return nil, err
		}
		s.batch = append(s.batch, pid)
		j := -1
		if first != nil {
			k := batchKey{vs[i].Path, vs[i].Time, vs[i].Flags&FlagEvent != 0}
			if f, ok := first[k]; ok {
				j = f
			} else {
				first[k] = i
			}
		} else {
			for f := 0; f < i; f++ {
				if vs[f].Path == vs[i].Path && vs[f].Time == vs[i].Time && (vs[f].Flags^vs[i].Flags)&FlagEvent == 0 {
					j = f
					break
				}
			}
		}
		if j >= 0 && !sameWrite(&vs[i], &vs[j]) {
			s.stats.Refused++
			return nil, fmt.Errorf("%w: %s@%v twice in one batch", ErrConflict, vs[i].Path, vs[i].Time)
		}
	}
	if err := s.checkCapacity(vs); err != nil {
		s.stats.Refused++
		return nil, err
	}
	var sharedFrom, sharedTo []ReadLock
	for i := range vs {
		v := vs[i]
		if v.Value != nil {
			v.Value = append(make([]byte, 0, len(v.Value)), v.Value...)
		}
		if len(v.Locks) > 0 {
			if len(sharedFrom) > 0 && &sharedFrom[0] == &v.Locks[0] && len(sharedFrom) == len(v.Locks) {
				v.Locks = sharedTo
			} else {
				sharedFrom = v.Locks
				v.Locks = slices.Clone(v.Locks)
				sharedTo = v.Locks
			}
		}
		s.insertOwned(&v, nil, s.batch[i])
	}
	s.runCascade()
	return s.changes, nil
}

// batchKey identifies a value within a batch: an event and a value may
// share a path and a time (a function may Write and Emit the same path).
type batchKey struct {
	path  string
	t     Time
	event bool
}

// forgetLocks starts a call: lock slices of an earlier call may share an
// address with this one's, so what was cached about them is dropped.
func (s *Store) forgetLocks() {
	s.lockPathsOf, s.checkedLocks, s.lead = nil, nil, 0
}

// noPath stands for a path the store does not hold yet.
const noPath = ^uint32(0)

// checkWrite refuses a malformed value, a value outside the change window,
// and a conflicting value at an occupied (path, time). It changes nothing.
// Paths are validated only when checkPaths is set (a Tx has validated them
// already). It returns the id of the value's path, or noPath.
//
// hint is the path's id when the caller knows it (see Outcome.ids), else
// noPath.
func (s *Store) checkWrite(now int64, v *PathValue, checkPaths bool, hint uint32) (uint32, error) {
	if checkPaths {
		if err := ValidatePath(v.Path); err != nil {
			return noPath, err
		}
	}
	if v.Time.Nanos <= 0 {
		return noPath, fmt.Errorf("%w: %s@%v", ErrZeroTime, v.Path, v.Time)
	}
	if v.Time.Nanos < now-int64(s.cfg.MaxChangeAge) || v.Time.Nanos < s.horizon {
		return noPath, fmt.Errorf("%w: %s@%v is %v ns old", ErrTooOld, v.Path, v.Time, now-v.Time.Nanos)
	}
	if v.Time.Nanos > now+int64(s.cfg.MaxFutureSkew) {
		return noPath, fmt.Errorf("%w: %s@%v is %v ns ahead", ErrTooNew, v.Path, v.Time, v.Time.Nanos-now)
	}
	if len(v.Value) > s.cfg.Limits.MaxValueSize {
		return noPath, fmt.Errorf("%w: %s has %d bytes (limit %d)", ErrValueTooLarge, v.Path, len(v.Value), s.cfg.Limits.MaxValueSize)
	}
	if len(v.Locks) > s.cfg.Limits.MaxLocks {
		return noPath, fmt.Errorf("%w: %s has %d (limit %d)", ErrTooManyLocks, v.Path, len(v.Locks), s.cfg.Limits.MaxLocks)
	}
	if v.Flags&^(FlagEvent|FlagPredicted) != 0 {
		return noPath, fmt.Errorf("%w: %s has unknown flags %#x", ErrBadLock, v.Path, uint8(v.Flags))
	}
	// Writes of one transaction share their lock slice: the locks of the
	// one before, at the same time, were checked already.
	if len(v.Locks) > 0 && (s.checkedLocks != &v.Locks[0] || s.checkedN != len(v.Locks) || s.checkedAt != v.Time) {
		if err := s.checkLocks(v, checkPaths); err != nil {
			return noPath, err
		}
		s.checkedLocks, s.checkedN, s.checkedAt = &v.Locks[0], len(v.Locks), v.Time
	}
	pid, p := hint, (*pathRec)(nil)
	if hint != noPath {
		p = s.rec(hint)
	} else if pid, p = s.findPath(v.Path); p == nil {
		return noPath, nil
	}
	if old := s.find(p, v.Time, v.Flags&FlagEvent != 0); old != nil && !old.ghost {
		if pv := s.pathValue(p, old); !sameWrite(&pv, v) {
			return noPath, fmt.Errorf("%w: %s@%v", ErrConflict, v.Path, v.Time)
		}
	}
	return pid, nil
}

// checkLocks refuses malformed locks: see checkWrite.
func (s *Store) checkLocks(v *PathValue, checkPaths bool) error {
	oldest := v.Time.Nanos - int64(s.cfg.MaxRewind)
	for i := range v.Locks {
		l := &v.Locks[i]
		if checkPaths {
			if err := ValidatePath(l.Path); err != nil {
				return fmt.Errorf("%w: lock %d of %s: %w", ErrBadLock, i, v.Path, err)
			}
		}
		if !l.Start.Before(l.End) || v.Time.Before(l.End) {
			return fmt.Errorf("%w: lock %d of %s@%v on %s: need Start < End <= write time, have %v, %v",
				ErrBadLock, i, v.Path, v.Time, l.Path, l.Start, l.End)
		}
		if l.End.Nanos < oldest {
			return fmt.Errorf("%w: lock %d of %s@%v on %s ends %v ns before the write, beyond MaxRewind",
				ErrBadLock, i, v.Path, v.Time, l.Path, v.Time.Nanos-l.End.Nanos)
		}
	}
	return nil
}

// checkCapacity refuses a batch that would exceed MaxPaths or
// MaxLivePerPath; s.batch holds the path ids checkWrite found.
func (s *Store) checkCapacity(vs []PathValue) error {
	full := func(p *pathRec) error {
		if n := int(p.live.n + p.events.n); n >= s.cfg.Limits.MaxLivePerPath {
			return fmt.Errorf("%w: %s holds %d changeable values (limit %d)",
				ErrStoreFull, p.name(), n, s.cfg.Limits.MaxLivePerPath)
		}
		return nil
	}
	if s.npaths+len(vs)*(1+s.cfg.Limits.MaxLocks) <= s.cfg.Limits.MaxPaths {
		// Far from the path limit: only the per-path live limit can bite.
		for _, pid := range s.batch {
			if pid != noPath {
				if err := full(s.rec(pid)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	newPaths := 0
	for i := range vs {
		_, p := s.findPath(vs[i].Path)
		if p == nil {
			newPaths++
			for _, l := range vs[i].Locks {
				if _, q := s.findPath(l.Path); q == nil {
					newPaths++
				}
			}
			continue
		}
		if err := full(p); err != nil {
			return err
		}
	}
	if s.npaths+newPaths > s.cfg.Limits.MaxPaths {
		return fmt.Errorf("%w: %d paths (limit %d)", ErrStoreFull, s.npaths, s.cfg.Limits.MaxPaths)
	}
	return nil
}

// find returns the live entry (value, ghost or event) at (p, t), or nil.
func (s *Store) find(p *pathRec, t Time, event bool) *entry {
	if !event {
		if i, ok := s.searchLive(p, t); ok {
			return s.ent(s.liveList(p)[i].e)
		}
		return nil
	}
	list := s.lists.list(p.events)
	if i, ok := searchSlots(list, t); ok {
		return s.ent(list[i].e)
	}
	return nil
}

// pathValue returns a live entry as a PathValue (slices alias the store).
func (s *Store) pathValue(p *pathRec, e *entry) PathValue {
	return PathValue{Path: p.name(), Time: e.t, Value: e.value, Locks: e.locks, State: e.state, Flags: e.flags}
}

// insertOwned stores a checked value whose slices the store now owns; pid
// is its path's id if checkWrite found it. The caller runs the cascade
// afterwards.
func (s *Store) insertOwned(v *PathValue, tag any, pid uint32) {
	var p *pathRec
	if pid != noPath {
		p = s.rec(pid)
	} else {
		pid, p = s.path(v.Path) // a batch may have added it already
	}
	event := v.Flags&FlagEvent != 0
	var h uint32
	var e *entry
	place := false // a new live entry, listed once its locks are registered
	if !event {
		i, ok := s.searchLive(p, v.Time)
		if ok {
			h = s.liveList(p)[i].e
			e = s.ent(h)
			if !e.ghost {
				s.stats.Duplicates++
				return
			}
			// The value a lock was waiting for: fill the ghost in place.
			s.stats.Ghosts--
		} else {
			h = s.newEntry(v.Time)
			e = s.ent(h)
			place = true
		}
	} else {
		list := s.lists.list(p.events)
		i, ok := searchSlots(list, v.Time)
		if ok {
			s.stats.Duplicates++
			return
		}
		h = s.newEntry(v.Time)
		e = s.ent(h)
		s.lists.insert(&p.events, i, slot{t: v.Time, e: h})
	}
	if !p.listed {
		s.listPath(p)
	}
	*e = entry{t: v.Time, value: v.Value, locks: v.Locks, tag: tag, path: pid, flags: v.Flags}
	if l := s.leader(v); l != nil {
		// Another write of the same transaction holds the locks.
		e.lead = s.lead
		e.next, l.next = l.next, h+1
	} else {
		// Before the entry is in its list: a lock on its own path then
		// finds the value it read still the newest, in the record. (No
		// lock reaches the entry's own time: End <= W, the interval
		// excludes End.)
		s.registerLocks(h, e)
		if len(v.Locks) > 0 {
			s.lead, s.leadLocks, s.leadN, s.leadAt = h+1, &v.Locks[0], len(v.Locks), v.Time
		}
	}
	if place {
		i, _ := s.searchLive(p, v.Time) // a lock may have added a ghost here
		s.insertLive(p, i, slot{t: v.Time, e: h})
	}
	st := s.computed(e)
	e.state = st
	if st == Pending {
		s.pending++
	}
	if !event && p.last.e == h {
		s.noteLast(p)
	}
	s.stats.Inserted++
	s.stats.LiveValues++
	s.changes = append(s.changes, Change{Kind: Added, Path: p.name(), Time: v.Time, Value: v.Value, Flags: v.Flags, New: st, Tag: tag})
	if event {
		return
	}
	// Whether it filled a ghost or not, the locks it affects are in the
	// log: those starting at its time had it as target (unseen until now),
	// those starting before have it inside.
	s.propagate(p, v.Time, stateUnseen, st)
}

// leader returns the entry stored last in this call if v is another write
// of its transaction (the same time and the same lock slice), else nil.
func (s *Store) leader(v *PathValue) *entry {
	if s.lead == 0 || len(v.Locks) == 0 || s.leadLocks != &v.Locks[0] || s.leadN != len(v.Locks) || s.leadAt != v.Time {
		return nil
	}
	return s.ent(s.lead - 1)
}

// registerLocks computes e's counters from its locks and adds each lock to
// the log of the path it reads, creating ghosts for unseen targets.
func (s *Store) registerLocks(h uint32, e *entry) {
	if len(e.locks) == 0 {
		return
	}
	ids := s.lockPathIDs(e.locks)
	for i := range e.locks {
		l := &e.locks[i]
		pid := ids[i]
		p := s.rec(pid)
		j := 0 // the first live entry after Start
		switch {
		case l.Start.IsZero() || l.Start.Nanos < s.horizon:
			// The target is final (or none): a final value at Start is
			// valid, no value there is lost for good. Every final value
			// inside the interval is valid and breaks the lock; every live
			// entry is after Start.
			switch {
			case p.lastSt == stateNone && p.hasFin && p.last.t == l.Start:
				// The common case: the latest final value (its time is
				// in the record's first line), and no live entry.
			case p.hasFin && p.fin.t == l.Start:
				// The latest final value, none after it.
			case l.Start.IsZero() && (!p.hasFin || p.fin.t.Before(l.End)):
				e.bad += int32(p.nfinals())
			default:
				if !l.Start.IsZero() && !p.finalAt(l.Start) {
					e.bad++
				}
				e.bad += int32(p.finalsIn(l.Start, l.End))
			}
		default:
			// Start is live: every final value is older, none is inside.
			k, ok := s.searchLive(p, l.Start)
			if ok {
				st := p.lastSt // the common target: the newest value
				if k != int(p.live.n)-1 {
					st = s.ent(s.liveList(p)[k].e).state
				}
				b, u := targetContrib(st)
				e.bad += b
				e.unknown += u
			} else {
				s.addGhost(pid, p, k, l.Start)
				e.unknown++
			}
			j = k + 1
		}
		// Live entries inside the interval count by state.
		if p.lastSt != stateNone && j < int(p.live.n) {
			list := s.liveList(p)
			for ; j < len(list) && list[j].t.Before(l.End); j++ {
				b, u := intervalContrib(s.ent(list[j].e).state)
				e.bad += b
				e.unknown += u
			}
		}
		s.addLockItem(pid, p, lockItem{start: l.Start, end: l.End, holder: h, idx: uint16(i)}, e.t.Nanos)
	}
}

// lockPathIDs returns the path ids of locks (adding paths not held yet).
// Writes of one transaction share their lock slice, so it is resolved once
// per transaction.
func (s *Store) lockPathIDs(locks []ReadLock) []uint32 {
	if len(s.lockPaths) == len(locks) && s.lockPathsOf == &locks[0] {
		return s.lockPaths
	}
	s.lockPaths = s.lockPaths[:0]
	for i := range locks {
		id, _ := s.path(locks[i].Path)
		s.lockPaths = append(s.lockPaths, id)
	}
	s.lockPathsOf = &locks[0]
	return s.lockPaths
}

// addGhost inserts a ghost at list position k of path p: a lock refers to
// (p, t) and no value has been seen there yet.
func (s *Store) addGhost(pid uint32, p *pathRec, k int, t Time) {
	h := s.newEntry(t)
	*s.ent(h) = entry{t: t, path: pid, state: stateUnseen, ghost: true}
	s.insertLive(p, k, slot{t: t, e: h})
	s.stats.Ghosts++
}

// addLockItem adds a lock to p's log, in End order, in the arena of the
// finality bucket of its holder's time at. A lock ending before the
// horizon can no longer change anything and is not logged.
func (s *Store) addLockItem(pid uint32, p *pathRec, it lockItem, at int64) {
	if it.end.Nanos >= s.horizon {
		s.logLock(p, it, at)
	}
	if !p.hasFin && !p.sweep && p.live.n == 0 && p.events.n == 0 {
		// A path with no value: sweep it (delete it) when its last
		// lock can no longer matter.
		s.queueSweep(pid, p)
	}
}

// logLock links a lock item into p's log.
func (s *Store) logLock(p *pathRec, it lockItem, at int64) {
	h := s.items.alloc(&s.bkts[s.bucket(at>>bucketShift)].itemMem)
	switch {
	case p.log == 0 || p.logEnd.Nanos < s.horizon:
		// Empty, or every item is over (and may be gone).
		it.next = 0
		p.log, p.logEnd = h+1, it.end
	case !it.end.Before(p.logEnd):
		// The common case: the newest lock ends last.
		it.next, it.nextEnd = p.log, p.logEnd.Nanos
		p.log, p.logEnd = h+1, it.end
	default:
		// A past-time read: after the items ending later.
		prev := s.item(p.log - 1)
		for {
			if prev.next == 0 || prev.nextEnd < s.horizon {
				it.next = 0 // the rest is over: cut it off
				break
			}
			if next := s.item(prev.next - 1); !it.end.Before(next.end) {
				it.next, it.nextEnd = prev.next, prev.nextEnd
				break
			} else {
				prev = next
			}
		}
		prev.next, prev.nextEnd = h+1, it.end.Nanos
	}
	*s.item(h) = it
}

// targetContrib is what a lock's target in state st adds to the holder.
func targetContrib(st State) (bad, unknown int32) {
	switch st {
	case Valid:
		return 0, 0
	case Pending, stateUnseen:
		return 0, 1
	}
	return 1, 0 // Invalid, stateLost
}

// intervalContrib is what a value in state st inside a lock's interval adds
// to the holder.
func intervalContrib(st State) (bad, unknown int32) {
	switch st {
	case Valid:
		return 1, 0
	case Pending:
		return 0, 1
	}
	return 0, 0 // Invalid, unseen, lost: not a value
}

// propagate tells every lock that depends on the entry at (p, t) that its
// state went from old to new, and queues the holders whose counters moved.
// Those are the items of p's log ending after t: a lock starting at t has
// it as target, a lock starting before t has it inside its interval.
func (s *Store) propagate(p *pathRec, t Time, old, new State) {
	ob, ou := targetContrib(old)
	nb, nu := targetContrib(new)
	tb, tu := nb-ob, nu-ou
	ob, ou = intervalContrib(old)
	nb, nu = intervalContrib(new)
	ib, iu := nb-ob, nu-ou
	if tb == 0 && tu == 0 && ib == 0 && iu == 0 {
		return
	}
	// Items ending after t belong to entries after t, whose buckets are
	// not released: the walk reads no item that may be gone.
	if p.log == 0 || !t.Before(p.logEnd) {
		return
	}
	for x := p.log; ; {
		it := s.item(x - 1)
		if !t.Before(it.end) {
			return
		}
		switch c := it.start.Compare(t); {
		case c == 0:
			if tb != 0 || tu != 0 {
				s.adjust(it.holder, tb, tu)
			}
		case c < 0:
			if ib != 0 || iu != 0 {
				s.adjust(it.holder, ib, iu)
			}
		}
		if it.next == 0 || it.nextEnd < t.Nanos {
			return
		}
		x = it.next
	}
}

func (s *Store) adjust(h uint32, db, du int32) {
	e := s.ent(h)
	if e.final {
		return
	}
	e.bad += db
	e.unknown += du
	for {
		if !e.queued {
			e.queued = true
			s.cascade.push(h)
		}
		if e.next == 0 {
			return
		}
		h = e.next - 1
		e = s.ent(h)
	}
}

// runCascade re-evaluates queued entries in time order. Every dependency of
// an entry is strictly earlier, so when an entry is popped its dependencies
// are settled and it changes state at most once per cascade.
func (s *Store) runCascade() {
	for s.cascade.len() > 0 {
		h := s.cascade.pop()
		e := s.ent(h)
		e.queued = false
		if e.final {
			continue
		}
		old := e.state
		st := s.computed(e)
		if st == old {
			continue
		}
		p := s.rec(e.path)
		s.setState(p, e, old, st)
		if e.flags&FlagEvent == 0 {
			s.propagate(p, e.t, old, st)
		}
	}
}

func (s *Store) setState(p *pathRec, e *entry, old, st State) {
	e.state = st
	if p.live.n > 0 && s.ent(p.last.e) == e {
		s.noteLast(p)
	}
	if old == Pending {
		s.pending--
	}
	if st == Pending {
		s.pending++
	}
	if st == Invalid {
		s.stats.Invalidation++
	}
	if old == Invalid {
		s.stats.Revalidation++
	}
	s.changes = append(s.changes, Change{Kind: StateChanged, Path: p.name(), Time: e.t, Value: e.value, Flags: e.flags, Old: old, New: st, Tag: e.tag})
}

// entryLess orders the cascade by (time, path).
func (s *Store) entryLess(x, y uint32) bool {
	ex, ey := s.ent(x), s.ent(y)
	if c := ex.t.Compare(ey.t); c != 0 {
		return c < 0
	}
	return s.rec(ex.path).name() < s.rec(ey.path).name()
}

// listPath registers a path in the children index.
func (s *Store) listPath(p *pathRec) {
	p.listed = true
	name := p.name()
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		prefix := name[:i+1]
		rest := name[i+1:]
		seg := rest
		if k := strings.IndexByte(rest, '/'); k >= 0 {
			seg = rest[:k]
		}
		m := s.children[prefix]
		if m == nil {
			m = make(map[string]int)
			s.children[prefix] = m
		}
		m[seg]++
	}
	top := name
	if k := strings.IndexByte(name, '/'); k >= 0 {
		top = name[:k]
	}
	m := s.children[""]
	if m == nil {
		m = make(map[string]int)
		s.children[""] = m
	}
	m[top]++
}

func (s *Store) unlistPath(p *pathRec) {
	if !p.listed {
		return
	}
	p.listed = false
	name := p.name()
	dec := func(prefix, seg string) {
		m := s.children[prefix]
		if m[seg]--; m[seg] <= 0 {
			delete(m, seg)
		}
		if len(m) == 0 {
			delete(s.children, prefix)
		}
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		rest := name[i+1:]
		seg := rest
		if k := strings.IndexByte(rest, '/'); k >= 0 {
			seg = rest[:k]
		}
		dec(name[:i+1], seg)
	}
	top := name
	if k := strings.IndexByte(name, '/'); k >= 0 {
		top = name[:k]
	}
	dec("", top)
}

// Children lists, in sorted order, the next segment of every path stored
// under prefix ("players/" gives "1", "42", ...), deleted paths included.
// It takes no lock: a transaction that uses it to find what to read must
// Read what it uses, because a change to the listing alone never
// invalidates it.
func (s *Store) Children(prefix string) []string {
	m := s.children[prefix]
	out := make([]string, 0, len(m))
	for seg := range m {
		out = append(out, seg)
	}
	slices.Sort(out)
	return out
}

// Latest returns the latest readable value of path strictly before t:
// valid or pending, not invalid, never an event. ok is false when there is
// none. The returned slices alias the store: do not modify them.
func (s *Store) Latest(path string, before Time) (v PathValue, ok bool) {
	_, p := s.findPath(path)
	if p == nil {
		return PathValue{}, false
	}
	return s.latest(p, before)
}

// readLatest is Latest for a transaction, which needs only the time and
// the bytes: the common read, of the newest live value, is answered from
// the path's record.
// It also returns the path's id (noPath if the store holds no such path),
// which the transaction hands to Commit.
func (s *Store) readLatest(path string, before Time) (Time, []byte, bool, uint32) {
	id, p := s.findPath(path)
	if p == nil {
		return Time{}, nil, false, noPath
	}
	switch p.lastSt {
	case Valid, Pending:
		if p.last.t.Before(before) {
			return p.last.t, p.lastValue(), true, id
		}
	case stateNone: // no live entry: the latest final value is in last
		if p.hasFin && p.last.t.Before(before) {
			return p.last.t, p.lastValue(), true, id
		}
	}
	v, ok := s.latest(p, before)
	return v.Time, v.Value, ok, id
}

func (s *Store) latest(p *pathRec, before Time) (PathValue, bool) {
	if p.live.n > 0 {
		list := s.liveList(p)
		i, _ := searchSlots(list, before)
		for i--; i >= 0; i-- {
			e := s.ent(list[i].e)
			if e.ghost || e.state == Invalid {
				continue
			}
			return s.pathValue(p, e), true
		}
	}
	if !p.hasFin {
		return PathValue{}, false
	}
	f := &p.fin
	if !f.t.Before(before) {
		j := p.searchFinal(before)
		if j == 0 {
			return PathValue{}, false
		}
		f = p.final(j - 1)
	}
	return PathValue{Path: p.name(), Time: f.t, Value: f.value(), Flags: f.flags}, true
}

// Get returns the value stored at exactly (path, t), final or live, with its
// current state. Events are found too.
func (s *Store) Get(path string, t Time) (PathValue, bool) {
	_, p := s.findPath(path)
	if p == nil {
		return PathValue{}, false
	}
	if e := s.find(p, t, false); e != nil && !e.ghost {
		return s.pathValue(p, e), true
	}
	if e := s.find(p, t, true); e != nil {
		return s.pathValue(p, e), true
	}
	if j := p.searchFinal(t); j < p.nfinals() && p.final(j).t == t {
		f := p.final(j)
		return PathValue{Path: p.name(), Time: f.t, Value: f.value(), Flags: f.flags}, true
	}
	return PathValue{}, false
}

// getEvent returns the live event at exactly (path, t).
func (s *Store) getEvent(path string, t Time) (PathValue, bool) {
	_, p := s.findPath(path)
	if p == nil {
		return PathValue{}, false
	}
	if e := s.find(p, t, true); e != nil {
		return s.pathValue(p, e), true
	}
	return PathValue{}, false
}

// History calls fn for every value of path the store holds, final first, in
// time order, with its state (final values are Valid and carry no locks).
// Events are not history. It stops when fn returns false.
func (s *Store) History(path string, fn func(PathValue) bool) {
	_, p := s.findPath(path)
	if p == nil {
		return
	}
	for i := 0; i < p.nfinals(); i++ {
		f := p.final(i)
		if !fn(PathValue{Path: p.name(), Time: f.t, Value: f.value(), Flags: f.flags}) {
			return
		}
	}
	// fn may call back into the store: walk by index, re-reading the list.
	for i := 0; i < int(p.live.n); i++ {
		e := s.ent(s.liveList(p)[i].e)
		if e.ghost {
			continue
		}
		if !fn(s.pathValue(p, e)) {
			return
		}
	}
}

// PathsUnder calls fn, in sorted order, for every path under prefix that
// holds a value (deleted paths included); a prefix without a trailing '/'
// names one path. It stops when fn returns false.
func (s *Store) PathsUnder(prefix string, fn func(path string) bool) {
	if prefix != "" && prefix[len(prefix)-1] != '/' {
		if _, p := s.findPath(prefix); p != nil && p.listed {
			fn(prefix)
		}
		return
	}
	s.walk(prefix, fn)
}

func (s *Store) walk(prefix string, fn func(string) bool) bool {
	m := s.children[prefix]
	if len(m) == 0 {
		return true
	}
	segs := make([]string, 0, len(m))
	for seg := range m {
		segs = append(segs, seg)
	}
	slices.Sort(segs)
	for _, seg := range segs {
		name := prefix + seg
		if _, p := s.findPath(name); p != nil && p.listed {
			if !fn(name) {
				return false
			}
		}
		if !s.walk(name+"/", fn) {
			return false
		}
	}
	return true
}
