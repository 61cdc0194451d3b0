package netcode

import (
	"hash/maphash"
	"slices"
	"unsafe"
)

// The store's memory layout. Everything here is addressed by 32-bit
// indices rather than pointers, so growth never invalidates a reference,
// the garbage collector scans little, and one value's bookkeeping sits in
// a few contiguous places:
//
//   - path records live in chunks of recChunk, found through an
//     open-addressing index of 64-bit slots (hash << 32 | id+1);
//   - entries (live values, events and ghosts) and lock items live in
//     arenas: chunks of arenaChunk owned by the finality bucket of their
//     time (a lock item: its holder's), filled one after the other and
//     given back whole when the bucket is final;
//   - a path's lock log is a list of lock items linked newest End first,
//     each link carrying the End of the item it leads to, so a walk stops
//     before an item whose bucket may be gone;
//   - a path's live values and live events are lists in a pool of
//     power-of-two blocks (span), so they cost no allocation once the pool
//     is warm.

// Chunk size: a chunk never moves, so a *pathRec stays valid while others
// are added (and so do an *entry or a *lockItem: see arena).
const (
	recChunkBits = 8
	recChunk     = 1 << recChunkBits
)

// pathRec is everything the store knows about one path, in 192 bytes
// (three cache lines, each record aligned on one: a chunk is a large
// allocation, page-aligned). What a read of the newest value needs is in
// the first line: the name, the newest live value and its state, or with
// no live value a copy of the latest final value's time and bytes, and the
// bytes themselves when they are few (inline). What registering a lock
// on the path needs besides is in the second: the lists' lengths and the
// lock log's newest End (the log's head is in the first). The latest
// final values, which finality alone reads, are in the third.
type pathRec struct {
	nameP *byte // the name's bytes (see name)
	// the last slot of live, when live.n > 0; with no live entry, the
	// time of fin (zero without one), and no entry (see noteFin)
	last   slot
	lastP  *byte // the bytes of last's entry when readable, or of fin with no live entry (see bytesAt)
	lastN  uint32
	nameN  uint16 // the name's length (at most MaxPathLen)
	lastSt State  // the state of last's entry: stateUnseen for a ghost, stateNone for no entry
	hasFin bool
	// implies hasFin; older is empty unless hasPrev
	hasPrev bool
	listed  bool   // registered in the children index
	sweep   bool   // queued for a sweep (see Store.sweepPath)
	log     uint32 // 1 + the lock item ending last of the locks on this path, 0 if none
	// inline holds the lastN bytes at lastP when lastP is set and lastN is
	// at most maxInline (see setLast): a read of a small newest value
	// reads the record alone.
	inline [maxInline]byte

	live   span // values and ghosts that can still change, by time (slots)
	events span // live events, by time (slots)
	logEnd Time // the End of the log's first item: no item ends later
	// Final history, oldest first: older, then prev, then fin. A path
	// written less often than once per MaxRewind keeps two final values,
	// both in the record.
	older []finalValue
	fin   finalValue // the latest final value, when hasFin
	prev  finalValue // the final value before fin, when hasPrev
}

// maxInline is the most bytes of a path's newest value its record holds
// inline: what fits in the record's first line.
const maxInline = 8

// name returns the path.
func (p *pathRec) name() string { return unsafe.String(p.nameP, p.nameN) }

// newRec returns an empty record for path name.
func newRec(name string) pathRec {
	return pathRec{nameP: unsafe.StringData(name), nameN: uint16(len(name)), lastSt: stateNone}
}

// setLast sets the bytes of p's newest readable value (nil when it has
// none), copying them inline when they are few. The bytes a record points
// to never change, so when they are the ones it holds already (a value
// that becomes final, still the newest) nothing is copied: they are not
// read again.
func (p *pathRec) setLast(b *byte, n uint32) {
	if b != nil && n <= maxInline && (b != p.lastP || n != p.lastN) {
		copy(p.inline[:], unsafe.Slice(b, n))
	}
	p.lastP, p.lastN = b, n
}

// lastValue returns the bytes of p's newest readable value: its last live
// entry's when lastOK, or its latest final value's with no live entry.
// Small values come from the record's own copy, which changes with the
// newest value: the slice is valid until the store changes.
func (p *pathRec) lastValue() []byte {
	if p.lastP != nil && p.lastN <= maxInline {
		return p.inline[:p.lastN:p.lastN]
	}
	return bytesAt(p.lastP, p.lastN)
}

// finalValue is a value that can no longer change state: its locks are
// dropped and it is valid (final invalid values are not kept). Its bytes
// are held as pointer and length (value), 32 bytes in all.
type finalValue struct {
	t     Time
	p     *byte // nil for a deletion
	n     uint32
	flags Flags
}

func newFinal(t Time, v []byte, flags Flags) finalValue {
	return finalValue{t: t, p: unsafe.SliceData(v), n: uint32(len(v)), flags: flags}
}

// value returns the bytes (nil for a deletion, empty for an empty value).
func (f *finalValue) value() []byte { return bytesAt(f.p, f.n) }

// bytesAt makes a value's slice from its pointer and length: nil for a nil
// pointer, full (cap = len) otherwise.
func bytesAt(p *byte, n uint32) []byte { return unsafe.Slice(p, n) }

// slot is one element of a path's live list: the entry's time, kept beside
// its handle so that searching a list reads the list alone.
type slot struct {
	t Time
	e uint32 // entry handle
}

// lockItem registers one lock of a live holder with the path it reads. It
// carries the lock's interval, so scanning a log never visits the holder:
// an item whose End is older than the horizon can no longer change
// anything (no value can arrive inside it, its target and every value
// inside are final) and is never read. Items are linked End first, newest
// first; nextEnd, the End (Nanos) of the next item, lets a walk stop
// before an item that may be gone: an item lives in its holder's finality
// bucket, which is released only once the horizon is past the holder, so
// an item ending at or after the time of a live entry is always there.
type lockItem struct {
	start, end Time
	nextEnd    int64  // End.Nanos of next
	holder     uint32 // entry handle
	next       uint32 // 1 + the next item's handle (End not after this one's); 0 ends
	idx        uint16 // the lock's index in the holder's locks
}

// entry is one live value, event or ghost (a lock target not seen yet).
//
// Validity bookkeeping: bad counts the reasons the entry's locks fail for
// certain (a lock target invalid or lost, a valid value inside a lock's
// interval), unknown the reasons they cannot be decided yet (a target
// pending or unseen, a pending value inside an interval). The state is
// Invalid when bad > 0, else Pending when unknown > 0, else Valid: Kleene's
// three-valued "and" over all lock conditions. The counters always reflect
// the stored states of the entries they depend on.
//
// The writes of one transaction share their locks, so they always share
// their state: the first one stored (the leader) registers the locks and
// keeps the counters, the others (followers) point to it with lead and are
// chained from it through next, so that what moves the leader's counters
// queues them too.
type entry struct {
	t            Time
	value        []byte
	locks        []ReadLock
	tag          any // Outcome.Tag of the commit that wrote it
	path         uint32
	bad, unknown int32
	lead         uint32 // 1 + the leader's handle, for a follower; else 0
	next         uint32 // 1 + the next follower's handle; 0 ends the chain
	state        State
	flags        Flags
	ghost        bool // a lock target not seen yet
	final        bool // finalized: never changes again
	queued       bool // in the store's cascade heap
}

func (e *entry) computedSelf() State {
	switch {
	case e.bad > 0:
		return Invalid
	case e.unknown > 0:
		return Pending
	}
	return Valid
}

// computed is the state e's locks give, from the counters of e or of its
// leader.
func (s *Store) computed(e *entry) State {
	if e.lead != 0 {
		return s.ent(e.lead - 1).computedSelf()
	}
	return e.computedSelf()
}

// span locates a list inside a pool: n elements at off, in a block of
// 1<<(class-1) elements. Class 0 is the empty list with no block.
type span struct {
	off   uint32
	n     uint32
	class uint8
}

func (sp span) cap() uint32 {
	if sp.class == 0 {
		return 0
	}
	return 1 << (sp.class - 1)
}

// pool holds many short lists in chunks of power-of-two blocks, with a
// free list per block size. Chunks never move, so the pool grows without
// copying what it holds. Slices returned by list are valid until the list
// is changed.
type pool[T any] struct {
	first  uint8        // the class of a list's first block (1 if zero)
	chunks [][]T        // small blocks share chunks; a block bigger than poolChunk has its own
	bump   int          // elements given out of the last shared chunk
	shared int          // index of that chunk, -1 before the first
	free   [33][]uint32 // offsets of free blocks, per class
	inUse  int          // elements in blocks given out
	size   int          // elements in all chunks
}

// An offset is chunk << poolChunkBits | position. Shared chunks start at
// 256 elements and double up to poolChunk, so a small store stays small.
const (
	poolChunkBits = 16
	poolChunk     = 1 << poolChunkBits
)

func (p *pool[T]) list(sp span) []T {
	if sp.class == 0 {
		return nil
	}
	c := p.chunks[sp.off>>poolChunkBits]
	i := sp.off & (poolChunk - 1)
	return c[i : i+sp.n : i+sp.cap()]
}

// block returns the whole block at off, of the given class.
func (p *pool[T]) block(off uint32, class uint8) []T {
	c := p.chunks[off>>poolChunkBits]
	i := off & (poolChunk - 1)
	return c[i : i+1<<(class-1)]
}

func (p *pool[T]) alloc(class uint8) uint32 {
	size := 1 << (class - 1)
	p.inUse += size
	if f := p.free[class]; len(f) > 0 {
		off := f[len(f)-1]
		p.free[class] = f[:len(f)-1]
		return off
	}
	if size > poolChunk/2 {
		p.chunks = append(p.chunks, make([]T, size))
		p.size += size
		return uint32(len(p.chunks)-1) << poolChunkBits
	}
	if len(p.chunks) == 0 || p.bump+size > len(p.chunks[p.shared]) {
		n := poolChunk
		if len(p.chunks) < 8 {
			n = max(256<<len(p.chunks), size)
		}
		p.chunks = append(p.chunks, make([]T, n))
		p.shared, p.bump = len(p.chunks)-1, 0
		p.size += n
	}
	off := uint32(p.shared)<<poolChunkBits | uint32(p.bump)
	p.bump += size
	return off
}

func (p *pool[T]) release(sp *span) {
	if sp.class != 0 {
		p.free[sp.class] = append(p.free[sp.class], sp.off)
		p.inUse -= int(sp.cap())
	}
	*sp = span{}
}

// Pools shrink (compact) once they are at least poolMinCompact elements
// big and three quarters unused: a burst of values does not pin its
// memory after it is final.
const poolMinCompact = 1 << 12

// wasteful reports whether the pool should be compacted.
func (p *pool[T]) wasteful() bool {
	return p.size >= poolMinCompact && 4*p.inUse <= p.size
}

// compact moves every list into new chunks just big enough for them; each
// calls fn once for every span of the pool.
func (p *pool[T]) compact(each func(fn func(*span))) {
	old := *p
	*p = pool[T]{first: old.first}
	each(func(sp *span) {
		if sp.class == 0 {
			return
		}
		off := p.alloc(sp.class)
		copy(p.block(off, sp.class), old.list(*sp))
		sp.off = off
	})
}

// move gives the list a block of the given class (holding its elements).
func (p *pool[T]) move(sp *span, class uint8) {
	off := p.alloc(class)
	copy(p.block(off, class), p.list(*sp))
	n := sp.n
	p.release(sp)
	*sp = span{off: off, n: n, class: class}
}

// insert puts v at position i of the list.
func (p *pool[T]) insert(sp *span, i int, v T) {
	if sp.n == sp.cap() {
		p.move(sp, max(sp.class+1, p.first))
	}
	sp.n++
	l := p.list(*sp)
	if i < len(l)-1 {
		copy(l[i+1:], l[i:])
	}
	l[i] = v
}

// remove deletes k elements at position i of the list, releasing its
// block when it empties and moving it to a smaller one when three quarters
// are unused.
func (p *pool[T]) remove(sp *span, i, k int) {
	l := p.list(*sp)
	copy(l[i:], l[i+k:])
	sp.n -= uint32(k)
	switch {
	case sp.n == 0:
		p.release(sp)
	case sp.class > 4 && sp.n <= sp.cap()/4:
		p.move(sp, sp.class-1)
	}
}

// searchSlots returns the index of the first slot at or after t and whether
// it is at t. Values usually arrive in time order, so the end of the list
// is checked first.
func searchSlots(list []slot, t Time) (int, bool) {
	n := len(list)
	if n == 0 {
		return 0, false
	}
	if c := list[n-1].t.Compare(t); c < 0 {
		return n, false
	} else if c == 0 {
		return n - 1, true
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
	return lo, list[lo].t == t
}

// liveList returns p's live list. A list of one is the record's last slot
// alone, with no block in the pool: most paths hold one live value at a
// time. The slice is valid until the list is changed.
func (s *Store) liveList(p *pathRec) []slot {
	if p.live.class == 0 {
		if p.live.n == 0 {
			return nil
		}
		return unsafe.Slice(&p.last, 1)
	}
	return s.lists.list(p.live)
}

// searchLive is searchSlots on p's live list. The newest entry is kept in
// the record, so a time after it is placed without reading the list.
func (s *Store) searchLive(p *pathRec, t Time) (int, bool) {
	if p.live.n == 0 {
		return 0, false
	}
	if c := p.last.t.Compare(t); c < 0 {
		return int(p.live.n), false
	} else if c == 0 {
		return int(p.live.n) - 1, true
	}
	if p.live.n == 1 {
		return 0, false
	}
	return searchSlots(s.lists.list(p.live), t)
}

// insertLive puts sl at position i of p's live list. A new last entry
// must be filled in before noteLast.
func (s *Store) insertLive(p *pathRec, i int, sl slot) {
	switch p.live.n {
	case 0:
		p.live.n = 1
	case 1:
		// From the record alone to a block of the pool.
		last := p.last
		p.live = span{off: s.lists.alloc(2), n: 1, class: 2}
		s.lists.list(p.live)[0] = last
		s.lists.insert(&p.live, i, sl)
	default:
		s.lists.insert(&p.live, i, sl)
	}
	if i == int(p.live.n)-1 {
		p.last = sl
		p.lastSt = stateUnseen
		p.setLast(nil, 0)
	}
}

// removeLive removes position i of p's live list. The only entry goes
// without reading the list; a list left with one entry leaves the pool.
func (s *Store) removeLive(p *pathRec, i int) {
	switch p.live.n {
	case 1:
		p.live = span{}
		p.lastSt = stateNone
		s.noteFin(p)
		return
	case 2:
		list := s.lists.list(p.live)
		rest := list[1-i]
		s.lists.release(&p.live)
		p.live = span{n: 1}
		if i == 1 {
			p.last = rest
			s.noteLast(p)
		}
		return
	}
	s.lists.remove(&p.live, i, 1)
	if i == int(p.live.n) {
		p.last = s.lists.list(p.live)[i-1]
		s.noteLast(p)
	}
}

// lastOK reports whether p's last live entry is readable: a value, valid
// or pending.
func (p *pathRec) lastOK() bool { return p.lastSt == Valid || p.lastSt == Pending }

// noteLast copies what a read or a lock needs of p's last live entry into
// p.
func (s *Store) noteLast(p *pathRec) {
	e := s.ent(p.last.e)
	p.lastSt = e.state
	if p.lastOK() {
		p.setLast(unsafe.SliceData(e.value), uint32(len(e.value)))
	} else {
		p.setLast(nil, 0)
	}
}

// noteFin copies the latest final value's time and bytes into the first
// line of p when p has no live entry (last.t, lastP, lastN; lastSt stays
// stateNone), so that a read of it touches that line alone: the common
// read of a path not written within MaxChangeAge.
func (s *Store) noteFin(p *pathRec) {
	if p.live.n > 0 {
		return
	}
	if !p.hasFin {
		p.last = slot{}
		p.setLast(nil, 0)
		return
	}
	p.last = slot{t: p.fin.t}
	p.setLast(p.fin.p, p.fin.n)
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

// nfinals is the number of final values the path holds.
func (p *pathRec) nfinals() int {
	switch {
	case p.hasPrev:
		return len(p.older) + 2
	case p.hasFin:
		return 1
	}
	return 0
}

// final returns the i-th final value, oldest first.
func (p *pathRec) final(i int) *finalValue {
	switch n := len(p.older); {
	case i < n:
		return &p.older[i]
	case i == n && p.hasPrev:
		return &p.prev
	}
	return &p.fin
}

// searchFinal returns the index of the first final value at or after t.
func (p *pathRec) searchFinal(t Time) int {
	if !p.hasFin {
		return 0
	}
	switch c := p.fin.t.Compare(t); {
	case c < 0:
		return p.nfinals()
	case c == 0:
		return p.nfinals() - 1 // the common lock target: the latest value
	}
	if !p.hasPrev {
		return 0
	}
	if p.prev.t.Before(t) {
		return len(p.older) + 1
	}
	return searchFinals(p.older, t)
}

// finalAt reports whether the path holds a final value at exactly t.
func (p *pathRec) finalAt(t Time) bool {
	i := p.searchFinal(t)
	return i < p.nfinals() && p.final(i).t == t
}

// finalsIn counts the final values strictly inside (start, end).
func (p *pathRec) finalsIn(start, end Time) int {
	if !p.hasFin {
		return 0
	}
	lo := 0
	if !start.IsZero() {
		lo = p.searchFinal(start)
		if lo < p.nfinals() && p.final(lo).t == start {
			lo++
		}
	}
	if hi := p.searchFinal(end); hi > lo {
		return hi - lo
	}
	return 0
}

// rec returns the record of path id.
func (s *Store) rec(id uint32) *pathRec {
	return &s.recs[id>>recChunkBits][id&(recChunk-1)]
}

// ent returns entry h.
func (s *Store) ent(h uint32) *entry { return s.ents.at(h) }

// item returns lock item h.
func (s *Store) item(h uint32) *lockItem { return s.items.at(h) }

func (s *Store) hash(name string) uint32 {
	return uint32(maphash.String(s.seed, name))
}

// recentPath remembers a path found by findPath, by the address of the
// string it was found with (direct-mapped): the writes and locks of a
// transaction name the paths its reads just found, usually with the very
// same strings.
type recentPath struct {
	name string // keeps its bytes alive: the same address means the same path
	id   uint32
}

// findPath returns the id and record of a path, or a nil record.
func (s *Store) findPath(name string) (uint32, *pathRec) {
	if s.npaths == 0 || len(name) == 0 {
		return 0, nil
	}
	data := unsafe.StringData(name)
	r := &s.recent[uintptr(unsafe.Pointer(data))>>3%uintptr(len(s.recent))]
	if len(r.name) == len(name) && unsafe.StringData(r.name) == data {
		return r.id, s.rec(r.id)
	}
	h := s.hash(name)
	mask := uint32(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		v := s.slots[i]
		if v == 0 {
			return 0, nil
		}
		if uint32(v>>32) == h {
			id := uint32(v) - 1
			if p := s.rec(id); p.name() == name {
				*r = recentPath{name: name, id: id}
				return id, p
			}
		}
	}
}

// path returns the id and record of a path, adding an empty one if needed.
func (s *Store) path(name string) (uint32, *pathRec) {
	if id, r := s.findPath(name); r != nil {
		return id, r
	}
	var id uint32
	if n := len(s.freeRecs); n > 0 {
		id = s.freeRecs[n-1]
		s.freeRecs = s.freeRecs[:n-1]
	} else {
		id = s.nrecs
		if int(id>>recChunkBits) == len(s.recs) {
			s.recs = append(s.recs, new([recChunk]pathRec))
		}
		s.nrecs++
	}
	r := s.rec(id)
	*r = newRec(name)
	if 2*(s.npaths+1) > len(s.slots) {
		s.growIndex()
	}
	s.placeSlot(uint64(s.hash(name))<<32 | uint64(id+1))
	s.npaths++
	return id, r
}

func (s *Store) placeSlot(v uint64) {
	mask := uint32(len(s.slots) - 1)
	i := uint32(v>>32) & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = v
}

func (s *Store) growIndex() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	for _, v := range old {
		if v != 0 {
			s.placeSlot(v)
		}
	}
}

// deletePath removes a path's record: nothing refers to it any more.
func (s *Store) deletePath(id uint32, r *pathRec) {
	if r.listed {
		s.unlistPath(r)
	}
	mask := uint32(len(s.slots) - 1)
	want := uint64(id + 1)
	i := s.hash(r.name()) & mask
	for uint32(s.slots[i]) != uint32(want) {
		i = (i + 1) & mask
	}
	// Backward-shift deletion keeps every probe sequence unbroken.
	for j := i; ; {
		j = (j + 1) & mask
		v := s.slots[j]
		if v == 0 {
			s.slots[i] = 0
			break
		}
		home := uint32(v>>32) & mask
		var movable bool
		if i <= j {
			movable = home <= i || home > j
		} else {
			movable = home <= i && home > j
		}
		if movable {
			s.slots[i] = v
			i = j
		}
	}
	*r = pathRec{}
	s.freeRecs = append(s.freeRecs, id)
	s.npaths--
	s.recent = [len(s.recent)]recentPath{} // the id may be reused
	s.pathGen++
}

// arena holds fixed-size items (entries, lock items) in chunks that each
// belong to one finality bucket: a bucket's items are allocated one after
// the other in its own chunks, and the chunks go back to the arena whole
// when the bucket is done. Allocation is a bump, finality reads a bucket's
// items in the order they were written, and nothing is freed one by one.
// A handle is chunk << arenaBits | position.
type arena[T any] struct {
	chunks []*[arenaChunk]T // nil: a chunk dropped by shrink
	free   []uint32         // chunks not in use
	holes  []uint32         // indexes of dropped chunks, for reuse
	inUse  int              // chunks held by buckets
	scrub  bool             // clear a chunk when it is released (it holds pointers)
}

const (
	arenaBits  = 6
	arenaChunk = 1 << arenaBits
)

// arenaUse is what one bucket holds of an arena: its chunks, the last one
// filled up to fill.
type arenaUse struct {
	chunks []uint32
	fill   uint32
}

func (a *arena[T]) at(h uint32) *T {
	return &a.chunks[h>>arenaBits][h&(arenaChunk-1)]
}

// alloc returns the handle of an unused item in u's chunks (its content is
// whatever the chunk held: the caller overwrites it).
func (a *arena[T]) alloc(u *arenaUse) uint32 {
	if len(u.chunks) == 0 || u.fill == arenaChunk {
		u.chunks = append(u.chunks, a.take())
		u.fill = 0
	}
	h := u.chunks[len(u.chunks)-1]<<arenaBits | u.fill
	u.fill++
	return h
}

func (a *arena[T]) take() uint32 {
	a.inUse++
	if n := len(a.free); n > 0 {
		c := a.free[n-1]
		a.free = a.free[:n-1]
		return c
	}
	var c uint32
	if n := len(a.holes); n > 0 {
		c = a.holes[n-1]
		a.holes = a.holes[:n-1]
	} else {
		c = uint32(len(a.chunks))
		a.chunks = append(a.chunks, nil)
	}
	a.chunks[c] = new([arenaChunk]T)
	return c
}

// release gives u's chunks back: nothing may read their items any more.
func (a *arena[T]) release(u *arenaUse) {
	for _, c := range u.chunks {
		if a.scrub {
			clear(a.chunks[c][:])
		}
		a.free = append(a.free, c)
	}
	a.inUse -= len(u.chunks)
	u.chunks, u.fill = u.chunks[:0], 0
	if cap(u.chunks) > 64 {
		u.chunks = nil // a burst's array
	}
}

// shrink drops free chunks once they outnumber the chunks in use (and are
// more than a few): a burst does not pin its memory.
func (a *arena[T]) shrink() {
	if len(a.free) <= 16 || len(a.free) <= a.inUse {
		return
	}
	keep := max(16, a.inUse/2)
	for _, c := range a.free[keep:] {
		a.chunks[c] = nil
		a.holes = append(a.holes, c)
	}
	a.free = slices.Clip(a.free[:keep])
}

// newEntry returns the handle of an entry at time t to overwrite, in its
// finality bucket's chunks, and queues it for finality.
func (s *Store) newEntry(t Time) uint32 {
	b := &s.bkts[s.bucket(t.Nanos>>bucketShift)]
	h := s.ents.alloc(&b.entMem)
	if len(b.ents) > 0 && t.Before(b.lastT) {
		b.unsorted = true
	}
	b.lastT = t
	b.ents = append(b.ents, h)
	return h
}

// shrink gives memory back after a burst: arena chunks once mostly
// unused, and the list pool once three quarters unused. It runs at the end
// of a Tick.
func (s *Store) shrink() {
	s.ents.shrink()
	s.items.shrink()
	if s.lists.wasteful() {
		s.lists.compact(func(fn func(*span)) {
			s.eachPath(func(p *pathRec) { fn(&p.live); fn(&p.events) })
		})
	}
}

// eachPath calls fn for every path record.
func (s *Store) eachPath(fn func(*pathRec)) {
	for _, v := range s.slots {
		if v != 0 {
			fn(s.rec(uint32(v) - 1))
		}
	}
}
