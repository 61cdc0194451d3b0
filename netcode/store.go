package netcode

import (
	"fmt"
	"slices"
	"strings"
)

// Internal states of a ghost entry: a lock refers to (path, time) and no
// value has been seen there yet (unseen), or finality passed before one
// arrived (lost). Neither is ever visible outside the store.
const (
	stateUnseen State = 250
	stateLost   State = 251
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

// entry is one stored value, event or ghost.
//
// Validity bookkeeping: bad counts the reasons the entry's locks fail for
// certain (a lock target invalid or lost, a valid value inside a lock's
// interval), unknown the reasons they cannot be decided yet (a target
// pending or unseen, a pending value inside an interval). The state is
// Invalid when bad > 0, else Pending when unknown > 0, else Valid: Kleene's
// three-valued "and" over all lock conditions. The counters always reflect
// the stored states of the entries they depend on.
type entry struct {
	p   *pathState
	pv  PathValue // Path, Time, Value, Locks, State, Flags
	tag any       // Outcome.Tag of the commit that wrote it

	bad, unknown int32
	ghost        bool // a lock target not seen yet
	final        bool // finalized or dropped: never changes again
	queued       bool // in the store's cascade heap

	readers  []*lockRef // locks whose Start is this entry
	spanners []*lockRef // locks whose open interval contains this entry
	refs     []lockRef  // this entry's own locks, one per pv.Locks

	// Inline storage for the common small cases, saving an allocation per
	// entry; entries are dropped at finality, so only live ones pay.
	refsBuf    [4]lockRef
	readersBuf [2]*lockRef
}

func (e *entry) computed() State {
	switch {
	case e.bad > 0:
		return Invalid
	case e.unknown > 0:
		return Pending
	}
	return Valid
}

// lockRef registers one lock of holder with the entries it depends on:
// the lock is holder.pv.Locks[idx]. Kept small (16 bytes): there is one per
// lock of every live value.
type lockRef struct {
	holder     *entry
	idx        uint16
	inBoundary bool
}

func (r *lockRef) lock() *ReadLock { return &r.holder.pv.Locks[r.idx] }

// finalValue is a value that can no longer change state: its locks are
// dropped and it is valid (final invalid values are not kept).
type finalValue struct {
	t     Time
	value []byte
	flags Flags
}

// pathState holds everything the store knows about one path.
type pathState struct {
	name   string
	live   []*entry     // values and ghosts that can still change, by time
	finals []finalValue // final valid values, by time, all older than live
	events []*entry     // live event values, by time (never read, never locked)

	// boundary holds the locks on this path whose Start is final (or zero)
	// while their holder is live: a new value inserted before every live
	// entry may fall inside their intervals.
	boundary     []*lockRef
	boundaryKeep int // length after the last prune

	listed bool // registered in the children index
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
	cfg Config

	paths    map[string]*pathState
	children map[string]map[string]int // prefix → next segment → paths below

	// finality bookkeeping
	horizon   int64              // values with Nanos < horizon are final
	buckets   map[int64][]*entry // live entries by Nanos >> bucketShift
	bucketMin heap[int64]        // keys of non-empty buckets

	cascade heap[*entry]        // entries to re-evaluate, by time
	changes []Change            // returned by the current call
	pending map[*entry]struct{} // live entries currently Pending
	stats   StoreStats

	collectFinal bool        // finalize records final values in finalOut
	finalOut     []PathValue // values that became final since TakeFinal
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
	return &Store{
		cfg:       cfg,
		paths:     make(map[string]*pathState),
		children:  make(map[string]map[string]int),
		buckets:   make(map[int64][]*entry),
		horizon:   -1 << 63,
		pending:   make(map[*entry]struct{}),
		bucketMin: heap[int64]{less: func(x, y int64) bool { return x < y }},
		cascade:   heap[*entry]{less: entryLess},
	}, nil
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

// Horizon returns the finality horizon of the last Tick: values with
// Time.Nanos below it are final.
func (s *Store) Horizon() int64 { return s.horizon }

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	st := s.stats
	st.Paths = len(s.paths)
	st.PendingNow = len(s.pending)
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
	// Within the batch, a (path, time) given twice must be the same write:
	// each item is compared with the first one of its key (any earlier
	// ones are equal to it, or the batch was refused already).
	var first map[batchKey]int
	if len(vs) > 8 {
		first = make(map[batchKey]int, len(vs))
	}
	for i := range vs {
		if err := s.check(now, &vs[i]); err != nil {
			s.stats.Refused++
			return nil, err
		}
		j := -1
		if first != nil {
			k := batchKey{vs[i].Path, vs[i].Time}
			if f, ok := first[k]; ok {
				j = f
			} else {
				first[k] = i
			}
		} else {
			for f := 0; f < i; f++ {
				if vs[f].Path == vs[i].Path && vs[f].Time == vs[i].Time {
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
		s.insertOwned(v, nil)
	}
	s.runCascade()
	return s.changes, nil
}

type batchKey struct {
	path string
	t    Time
}

// check refuses a malformed value, a value outside the change window, and a
// conflicting value at an occupied (path, time). It changes nothing.
func (s *Store) check(now int64, v *PathValue) error {
	return s.checkWrite(now, v, true)
}

// checkWrite is check; paths are validated only when checkPaths is set
// (a Tx has validated them already).
func (s *Store) checkWrite(now int64, v *PathValue, checkPaths bool) error {
	if checkPaths {
		if err := ValidatePath(v.Path); err != nil {
			return err
		}
	}
	if v.Time.Nanos <= 0 {
		return fmt.Errorf("%w: %s@%v", ErrZeroTime, v.Path, v.Time)
	}
	if v.Time.Nanos < now-int64(s.cfg.MaxChangeAge) || v.Time.Nanos < s.horizon {
		return fmt.Errorf("%w: %s@%v is %v ns old", ErrTooOld, v.Path, v.Time, now-v.Time.Nanos)
	}
	if v.Time.Nanos > now+int64(s.cfg.MaxFutureSkew) {
		return fmt.Errorf("%w: %s@%v is %v ns ahead", ErrTooNew, v.Path, v.Time, v.Time.Nanos-now)
	}
	if len(v.Value) > s.cfg.Limits.MaxValueSize {
		return fmt.Errorf("%w: %s has %d bytes (limit %d)", ErrValueTooLarge, v.Path, len(v.Value), s.cfg.Limits.MaxValueSize)
	}
	if len(v.Locks) > s.cfg.Limits.MaxLocks {
		return fmt.Errorf("%w: %s has %d (limit %d)", ErrTooManyLocks, v.Path, len(v.Locks), s.cfg.Limits.MaxLocks)
	}
	if v.Flags&^(FlagEvent|FlagPredicted) != 0 {
		return fmt.Errorf("%w: %s has unknown flags %#x", ErrBadLock, v.Path, uint8(v.Flags))
	}
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
	if old := s.find(v.Path, v.Time, v.Flags&FlagEvent != 0); old != nil && !old.ghost && !sameWrite(&old.pv, v) {
		return fmt.Errorf("%w: %s@%v", ErrConflict, v.Path, v.Time)
	}
	return nil
}

// checkCapacity refuses a batch that would exceed MaxPaths or MaxLivePerPath.
func (s *Store) checkCapacity(vs []PathValue) error {
	if len(s.paths)+len(vs)*(1+s.cfg.Limits.MaxLocks) <= s.cfg.Limits.MaxPaths {
		// Far from the path limit: only the per-path live limit can bite.
		for i := range vs {
			if p := s.paths[vs[i].Path]; p != nil && len(p.live)+len(p.events) >= s.cfg.Limits.MaxLivePerPath {
				return fmt.Errorf("%w: %s holds %d changeable values (limit %d)",
					ErrStoreFull, p.name, len(p.live)+len(p.events), s.cfg.Limits.MaxLivePerPath)
			}
		}
		return nil
	}
	newPaths := 0
	for i := range vs {
		p := s.paths[vs[i].Path]
		if p == nil {
			newPaths++
			for _, l := range vs[i].Locks {
				if s.paths[l.Path] == nil {
					newPaths++
				}
			}
			continue
		}
		if len(p.live)+len(p.events) >= s.cfg.Limits.MaxLivePerPath {
			return fmt.Errorf("%w: %s holds %d changeable values (limit %d)",
				ErrStoreFull, p.name, len(p.live)+len(p.events), s.cfg.Limits.MaxLivePerPath)
		}
	}
	if len(s.paths)+newPaths > s.cfg.Limits.MaxPaths {
		return fmt.Errorf("%w: %d paths (limit %d)", ErrStoreFull, len(s.paths), s.cfg.Limits.MaxPaths)
	}
	return nil
}

// find returns the live entry (value, ghost or event) at (path, t), or nil.
func (s *Store) find(path string, t Time, event bool) *entry {
	p := s.paths[path]
	if p == nil {
		return nil
	}
	list := p.live
	if event {
		list = p.events
	}
	i, ok := searchEntries(list, t)
	if !ok {
		return nil
	}
	return list[i]
}

// searchEntries returns the index of the first entry at or after t and
// whether it is at t. Entries usually arrive in time order, so the end of the
// list is checked first.
func searchEntries(list []*entry, t Time) (int, bool) {
	n := len(list)
	if n == 0 {
		return 0, false
	}
	if c := list[n-1].pv.Time.Compare(t); c < 0 {
		return n, false
	} else if c == 0 {
		return n - 1, true
	}
	lo, hi := 0, n-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if list[m].pv.Time.Before(t) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, list[lo].pv.Time == t
}

// searchFinals returns the index of the first final value at or after t.
func searchFinals(list []finalValue, t Time) int {
	n := len(list)
	if n == 0 || list[n-1].t.Before(t) {
		return n
	}
	lo, hi := 0, n-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if list[m].t.Before(t) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (s *Store) path(name string) *pathState {
	p := s.paths[name]
	if p == nil {
		p = &pathState{name: name}
		s.paths[name] = p
	}
	return p
}

// insertOwned stores a checked value whose slices the store now owns. The
// caller runs the cascade afterwards.
func (s *Store) insertOwned(v PathValue, tag any) {
	p := s.path(v.Path)
	event := v.Flags&FlagEvent != 0
	var e *entry
	if !event {
		if i, ok := searchEntries(p.live, v.Time); ok {
			e = p.live[i]
			if !e.ghost {
				s.stats.Duplicates++
				return
			}
			// The value a lock was waiting for: fill the ghost in place.
			s.stats.Ghosts--
		} else {
			e = &entry{p: p, pv: PathValue{Time: v.Time}}
			p.live = slices.Insert(p.live, i, e)
			s.inheritSpanners(p, i)
			s.enqueueFinality(e, v.Time.Nanos)
		}
	} else {
		i, ok := searchEntries(p.events, v.Time)
		if ok {
			s.stats.Duplicates++
			return
		}
		e = &entry{p: p}
		p.events = slices.Insert(p.events, i, e)
		s.enqueueFinality(e, v.Time.Nanos)
	}
	if !p.listed {
		s.listPath(p)
	}
	wasGhost := e.ghost
	e.ghost = false
	e.pv = v
	e.tag = tag
	e.registerLocks(s)
	st := e.computed()
	e.pv.State = st
	if st == Pending {
		s.pending[e] = struct{}{}
	}
	s.stats.Inserted++
	s.stats.LiveValues++
	s.changes = append(s.changes, Change{Kind: Added, Path: v.Path, Time: v.Time, Value: v.Value, Flags: v.Flags, New: st, Tag: tag})
	if event {
		return
	}
	if wasGhost {
		s.propagate(e, stateUnseen, st)
	} else {
		s.propagateInterval(e, stateUnseen, st)
	}
}

// inheritSpanners gives the entry just inserted at p.live[i] the locks whose
// open interval contains its time: those starting at or spanning the entry
// before it, or the path's boundary locks when it is the first live entry.
func (s *Store) inheritSpanners(p *pathState, i int) {
	e := p.live[i]
	t := e.pv.Time
	var lists [2][]*lockRef
	if i > 0 {
		prev := p.live[i-1]
		prev.readers = pruneRefs(prev.readers)
		prev.spanners = pruneRefs(prev.spanners)
		lists = [2][]*lockRef{prev.readers, prev.spanners}
	} else {
		p.pruneBoundary()
		lists[0] = p.boundary
	}
	for _, list := range lists {
		for _, r := range list {
			if r.holder.final {
				continue // a stale boundary reference, pruned later
			}
			if l := r.lock(); l.Start.Before(t) && t.Before(l.End) {
				e.spanners = append(e.spanners, r)
			}
		}
	}
}

// pruneRefs drops references whose holder is final, in place.
func pruneRefs(refs []*lockRef) []*lockRef {
	j := 0
	for _, r := range refs {
		if !r.holder.final {
			refs[j] = r
			j++
		}
	}
	clear(refs[j:])
	return refs[:j]
}

func (p *pathState) pruneBoundary() {
	if len(p.boundary) <= 2*p.boundaryKeep+8 {
		return
	}
	p.pruneBoundaryNow()
}

// pruneBoundaryNow drops the references of final holders from the
// boundary list, so they no longer keep those entries alive.
func (p *pathState) pruneBoundaryNow() {
	j := 0
	for _, r := range p.boundary {
		if r.holder.final {
			r.inBoundary = false
			continue
		}
		p.boundary[j] = r
		j++
	}
	clear(p.boundary[j:])
	p.boundary = p.boundary[:j]
	if j == 0 {
		p.boundary = nil
	}
	p.boundaryKeep = j
}

// registerLocks computes e's counters from its locks and registers each lock
// with the entries it depends on, creating ghosts for unseen targets.
func (e *entry) registerLocks(s *Store) {
	e.bad, e.unknown = 0, 0
	if len(e.pv.Locks) == 0 {
		return
	}
	if len(e.pv.Locks) <= len(e.refsBuf) {
		e.refs = e.refsBuf[:len(e.pv.Locks)]
	} else {
		e.refs = make([]lockRef, len(e.pv.Locks))
	}
	for i := range e.pv.Locks {
		l := &e.pv.Locks[i]
		r := &e.refs[i]
		*r = lockRef{holder: e, idx: uint16(i)}
		p := s.path(l.Path)

		// The target: zero, final, live or not seen yet. j ends as the
		// index of the first live entry after Start.
		var j int
		switch {
		case l.Start.IsZero() || l.Start.Nanos < s.horizon:
			if !l.Start.IsZero() {
				if k := searchFinals(p.finals, l.Start); k == len(p.finals) || p.finals[k].t != l.Start {
					e.bad++ // final and never seen (or invalid): lost for good
				}
			}
			r.inBoundary = true
			p.boundary = append(p.boundary, r)
			// Every final value inside the interval is valid: each breaks
			// the lock.
			lo := 0
			if !l.Start.IsZero() {
				lo = searchFinals(p.finals, l.Start)
				if lo < len(p.finals) && p.finals[lo].t == l.Start {
					lo++
				}
			}
			if hi := searchFinals(p.finals, l.End); hi > lo {
				e.bad += int32(hi - lo)
			}
			j, _ = searchEntries(p.live, l.Start)
		default:
			// Start is live: every final value is older, none is inside.
			k, ok := searchEntries(p.live, l.Start)
			var target *entry
			if ok {
				target = p.live[k]
			} else {
				target = &entry{p: p, ghost: true}
				target.pv = PathValue{Path: p.name, Time: l.Start, State: stateUnseen}
				p.live = slices.Insert(p.live, k, target)
				s.inheritSpanners(p, k)
				s.enqueueFinality(target, l.Start.Nanos)
				s.stats.Ghosts++
			}
			if target.readers == nil {
				target.readers = target.readersBuf[:0]
			}
			target.readers = append(target.readers, r)
			b, u := targetContrib(target.pv.State)
			e.bad += b
			e.unknown += u
			j = k + 1
		}

		// Live entries inside the interval count by state and learn of the
		// lock.
		for ; j < len(p.live) && p.live[j].pv.Time.Before(l.End); j++ {
			in := p.live[j]
			in.spanners = append(in.spanners, r)
			b, u := intervalContrib(in.pv.State)
			e.bad += b
			e.unknown += u
		}
	}
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

// propagate tells every lock that depends on e that its state went from old
// to new, and queues the holders whose counters moved.
func (s *Store) propagate(e *entry, old, new State) {
	ob, ou := targetContrib(old)
	nb, nu := targetContrib(new)
	if ob != nb || ou != nu {
		for _, r := range e.readers {
			s.adjust(r.holder, nb-ob, nu-ou)
		}
	}
	s.propagateInterval(e, old, new)
}

func (s *Store) propagateInterval(e *entry, old, new State) {
	ob, ou := intervalContrib(old)
	nb, nu := intervalContrib(new)
	if ob == nb && ou == nu {
		return
	}
	for _, r := range e.spanners {
		s.adjust(r.holder, nb-ob, nu-ou)
	}
}

func (s *Store) adjust(h *entry, db, du int32) {
	if h.final {
		return
	}
	h.bad += db
	h.unknown += du
	if !h.queued {
		h.queued = true
		s.cascade.push(h)
	}
}

// runCascade re-evaluates queued entries in time order. Every dependency of
// an entry is strictly earlier, so when an entry is popped its dependencies
// are settled and it changes state at most once per cascade.
func (s *Store) runCascade() {
	for s.cascade.len() > 0 {
		e := s.cascade.pop()
		e.queued = false
		if e.final {
			continue
		}
		old := e.pv.State
		st := e.computed()
		if st == old {
			continue
		}
		s.setState(e, old, st)
		if e.pv.Flags&FlagEvent == 0 {
			s.propagate(e, old, st)
		}
	}
}

func (s *Store) setState(e *entry, old, st State) {
	e.pv.State = st
	if old == Pending {
		delete(s.pending, e)
	}
	if st == Pending {
		s.pending[e] = struct{}{}
	}
	if st == Invalid {
		s.stats.Invalidation++
	}
	if old == Invalid {
		s.stats.Revalidation++
	}
	s.changes = append(s.changes, Change{Kind: StateChanged, Path: e.pv.Path, Time: e.pv.Time, Value: e.pv.Value, Flags: e.pv.Flags, Old: old, New: st, Tag: e.tag})
}

// listPath registers a path in the children index.
func (s *Store) listPath(p *pathState) {
	p.listed = true
	name := p.name
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

func (s *Store) unlistPath(p *pathState) {
	if !p.listed {
		return
	}
	p.listed = false
	name := p.name
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
	p := s.paths[path]
	if p == nil {
		return PathValue{}, false
	}
	i, _ := searchEntries(p.live, before)
	for i--; i >= 0; i-- {
		e := p.live[i]
		if e.ghost || e.pv.State == Invalid {
			continue
		}
		return e.pv, true
	}
	if j := searchFinals(p.finals, before); j > 0 {
		f := &p.finals[j-1]
		return PathValue{Path: p.name, Time: f.t, Value: f.value, Flags: f.flags}, true
	}
	return PathValue{}, false
}

// Get returns the value stored at exactly (path, t), final or live, with its
// current state. Events are found too.
func (s *Store) Get(path string, t Time) (PathValue, bool) {
	p := s.paths[path]
	if p == nil {
		return PathValue{}, false
	}
	if i, ok := searchEntries(p.live, t); ok && !p.live[i].ghost {
		return p.live[i].pv, true
	}
	if i, ok := searchEntries(p.events, t); ok {
		return p.events[i].pv, true
	}
	if j := searchFinals(p.finals, t); j < len(p.finals) && p.finals[j].t == t {
		f := &p.finals[j]
		return PathValue{Path: p.name, Time: f.t, Value: f.value, Flags: f.flags}, true
	}
	return PathValue{}, false
}

// History calls fn for every value of path the store holds, final first, in
// time order, with its state (final values are Valid and carry no locks).
// Events are not history. It stops when fn returns false.
func (s *Store) History(path string, fn func(PathValue) bool) {
	p := s.paths[path]
	if p == nil {
		return
	}
	for i := range p.finals {
		f := &p.finals[i]
		if !fn(PathValue{Path: p.name, Time: f.t, Value: f.value, Flags: f.flags}) {
			return
		}
	}
	for _, e := range p.live {
		if e.ghost {
			continue
		}
		if !fn(e.pv) {
			return
		}
	}
}

// PathsUnder calls fn, in sorted order, for every path under prefix that
// holds a value (deleted paths included); a prefix without a trailing '/'
// names one path. It stops when fn returns false.
func (s *Store) PathsUnder(prefix string, fn func(path string) bool) {
	if prefix != "" && prefix[len(prefix)-1] != '/' {
		if p := s.paths[prefix]; p != nil && p.listed {
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
		if p := s.paths[name]; p != nil && p.listed {
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
