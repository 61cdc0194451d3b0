package netcode

import (
	"fmt"
	"math/rand/v2"
	"unsafe"
)

// View is what a transaction reads: the latest readable value of a path
// strictly before a time, and the children listing. *Store implements it;
// the client implements it over confirmed and predicted values.
type View interface {
	// Latest returns the latest readable (valid or pending) non-event
	// value of path strictly before t.
	Latest(path string, before Time) (PathValue, bool)
	// Children lists the next segments of the paths under prefix, sorted.
	Children(prefix string) []string
}

// Tx is one run of a function at a write time W. Reads see the view strictly
// before W and record read locks; writes are buffered and stamped W. A Tx
// records the first error it meets (a bad path, a limit) and then ignores
// further operations; the run reports that error and stores nothing.
//
// A function must be deterministic: state only through the Tx, time only
// through Time, randomness only through Rand, identity only through Caller.
//
// A Tx is valid only during the function call it is passed to: Registry.Run
// reuses it for later calls, so a function must not keep it, nor the bytes
// Read returns: they may be the transaction's own buffer (a path it wrote)
// or the store's copy of a small newest value, which the next change to
// the store overwrites.
type Tx struct {
	view      View
	store     *Store // view, when it is a store
	cfg       *Config
	time      Time
	viewNanos int64
	id        CallID

	// Scratch buffers, reused from run to run; Run copies what they hold
	// into an Outcome of exact size.
	locks  []ReadLock
	lockID []uint32 // per lock, the path's id in store (noPath if none)
	writes []txWrite
	vals   []byte // the bytes of every buffered write, back to back
	dead   int    // bytes of vals no write refers to any more
	reads  int
	err    error

	rng    *rand.Rand // draws from pcg; created once per Tx
	pcg    *rand.PCG
	seeded bool // pcg is seeded for this run
}

// txWrite is one buffered write: its bytes are vals[off:off+n], or a
// deletion when del is set.
type txWrite struct {
	path  string
	off   int
	n     int
	id    uint32 // the path's id in store, if the transaction read it; else noPath
	del   bool
	flags Flags
}

// Scratch bigger than this is dropped when a run ends rather than kept for
// the next one, so one unusual call does not pin its memory.
const (
	maxKeptTxBytes = 64 << 10
	maxKeptTxItems = 256
)

func (tx *Tx) reset(view View, cfg *Config, t Time, viewNanos int64, id CallID) {
	tx.view, tx.cfg, tx.time, tx.viewNanos, tx.id = view, cfg, t, viewNanos, id
	tx.store, _ = view.(*Store)
	tx.locks = tx.locks[:0]
	tx.lockID = tx.lockID[:0]
	tx.writes = tx.writes[:0]
	tx.vals = tx.vals[:0]
	tx.dead, tx.reads, tx.err, tx.seeded = 0, 0, nil, false
}

// release drops what the finished run referenced, so a pooled Tx keeps
// nothing of it alive.
func (tx *Tx) release() {
	// The scratch keeps the last run's path strings until it is reused:
	// names, not values, and at most maxKeptTxItems of them.
	tx.view, tx.store, tx.cfg, tx.err = nil, nil, nil, nil
	if cap(tx.vals) > maxKeptTxBytes {
		tx.vals = nil
	}
	if cap(tx.locks) > maxKeptTxItems {
		tx.locks, tx.lockID = nil, nil
	}
	if cap(tx.writes) > maxKeptTxItems {
		tx.writes = nil
	}
}

// value returns the bytes of a buffered write (nil for a deletion).
func (tx *Tx) value(w *txWrite) []byte {
	if w.del {
		return nil
	}
	return tx.vals[w.off : w.off+w.n : w.off+w.n]
}

// Time returns the write time W.
func (tx *Tx) Time() Time { return tx.time }

// Caller returns the Creator id of the connection that made the call.
func (tx *Tx) Caller() uint32 { return tx.id.Creator }

// CallID returns the id of the call being run.
func (tx *Tx) CallID() CallID { return tx.id }

// ViewTime returns the time the caller was seeing when it made the call,
// W - ViewDelay clamped to W - MaxRewind: the time lag-compensated reads
// use, as in tx.ReadPast(path, tx.ViewTime()).
func (tx *Tx) ViewTime() int64 { return tx.viewNanos }

// Err returns the first error the transaction met, or nil.
func (tx *Tx) Err() error { return tx.err }

// Rand returns a random source seeded from the call id, so that the caller's
// prediction and the authority's run (and every re-run) draw the same
// numbers.
func (tx *Tx) Rand() *rand.Rand {
	if !tx.seeded {
		if tx.pcg == nil {
			tx.pcg = rand.NewPCG(0, 0)
			tx.rng = rand.New(tx.pcg)
		}
		tx.pcg.Seed(uint64(tx.id.Creator)<<32|0x9e3779b9, tx.id.Seq)
		tx.seeded = true
	}
	return tx.rng
}

func (tx *Tx) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

// Read returns the latest value of path strictly before W, and whether one
// exists (a deletion reads as absent). It records the read lock
// {path, S, W}, S being the time of the value read (zero if none). A path
// this transaction already wrote reads back the buffered write, with no
// lock.
func (tx *Tx) Read(path string) ([]byte, bool) {
	return tx.readAt(path, tx.time)
}

// ReadPast returns the latest value of path strictly before the past time t
// (synced nanoseconds), recording the lock {path, S, t}: a past-time read,
// for lag compensation. t is clamped to W - MaxRewind; a t at or after W
// reads like Read.
func (tx *Tx) ReadPast(path string, t int64) ([]byte, bool) {
	if t >= tx.time.Nanos {
		return tx.Read(path)
	}
	if min := tx.time.Nanos - int64(tx.cfg.MaxRewind); t < min {
		t = min
	}
	if t <= 0 {
		return nil, false // nothing can be written before the zero Time
	}
	return tx.readAt(path, Time{Nanos: t})
}

// ReadView is ReadPast at ViewTime: the state the caller was seeing.
func (tx *Tx) ReadView(path string) ([]byte, bool) {
	return tx.ReadPast(path, tx.viewNanos)
}

func (tx *Tx) readAt(path string, end Time) ([]byte, bool) {
	if tx.err != nil {
		return nil, false
	}
	if end == tx.time {
		for i := range tx.writes {
			if w := &tx.writes[i]; w.path == path && w.flags&FlagEvent == 0 {
				return tx.value(w), !w.del
			}
		}
	}
	tx.reads++
	if tx.reads > tx.cfg.Limits.MaxReads {
		tx.fail(fmt.Errorf("%w (limit %d)", ErrTooManyReads, tx.cfg.Limits.MaxReads))
		return nil, false
	}
	var start Time
	var value []byte
	var ok bool
	id := noPath
	if tx.store != nil {
		start, value, ok, id = tx.store.readLatest(path, end)
	} else {
		var v PathValue
		v, ok = tx.view.Latest(path, end)
		start, value = v.Time, v.Value
	}
	if !ok {
		if err := ValidatePath(path); err != nil {
			tx.fail(err)
			return nil, false
		}
	}
	lock := ReadLock{Path: path, Start: start, End: end}
	for i := range tx.locks {
		if tx.locks[i] == lock {
			return value, value != nil
		}
	}
	if len(tx.locks) >= tx.cfg.Limits.MaxLocks {
		tx.fail(fmt.Errorf("%w: more than %d distinct reads", ErrTooManyLocks, tx.cfg.Limits.MaxLocks))
		return nil, false
	}
	tx.locks = append(tx.locks, lock)
	tx.lockID = append(tx.lockID, id)
	return value, value != nil
}

// Write buffers value as the new value of path at W. The bytes are copied.
// Writing a path twice keeps the last value.
func (tx *Tx) Write(path string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	tx.write(path, value, 0)
}

// Delete buffers the deletion of path at W.
func (tx *Tx) Delete(path string) { tx.write(path, nil, 0) }

// Emit buffers an event: a value delivered to watchers but not kept in
// history, which reads never see. A game announces a shot or a hit this
// way.
func (tx *Tx) Emit(path string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	tx.write(path, value, FlagEvent)
}

func (tx *Tx) write(path string, value []byte, flags Flags) {
	if tx.err != nil {
		return
	}
	if len(value) > tx.cfg.Limits.MaxValueSize {
		tx.fail(fmt.Errorf("%w: %s has %d bytes (limit %d)", ErrValueTooLarge, path, len(value), tx.cfg.Limits.MaxValueSize))
		return
	}
	var w *txWrite
	known := false // path is valid: written or read by this transaction
	for i := range tx.writes {
		if x := &tx.writes[i]; x.path == path {
			known = true
			if x.flags&FlagEvent == flags&FlagEvent {
				w = x
				tx.dead += x.n
				break
			}
		}
	}
	id := noPath
	for i := 0; i < len(tx.locks) && !known; i++ {
		if known = tx.locks[i].Path == path; known {
			id = tx.lockID[i]
		}
	}
	if !known {
		if err := ValidatePath(path); err != nil {
			tx.fail(err)
			return
		}
	}
	if w == nil {
		if len(tx.writes) >= tx.cfg.Limits.MaxWrites {
			tx.fail(fmt.Errorf("%w (limit %d)", ErrTooManyWrites, tx.cfg.Limits.MaxWrites))
			return
		}
		tx.writes = append(tx.writes, txWrite{path: path, id: id, flags: flags})
		w = &tx.writes[len(tx.writes)-1]
	}
	if tx.dead > maxKeptTxBytes && tx.dead > len(tx.vals)/2 {
		tx.compact()
	}
	w.off, w.n, w.del = len(tx.vals), len(value), value == nil
	tx.vals = append(tx.vals, value...)
}

// compact moves the live bytes of the buffered writes to a new array, so a
// function that rewrites one path many times does not grow the scratch
// without bound. The old array is left as it is: bytes Read returned
// earlier in the run stay what they were.
func (tx *Tx) compact() {
	live := 0
	for i := range tx.writes {
		live += tx.writes[i].n
	}
	vals := make([]byte, 0, 2*live)
	for i := range tx.writes {
		w := &tx.writes[i]
		off := len(vals)
		vals = append(vals, tx.value(w)...)
		w.off = off
	}
	tx.vals, tx.dead = vals, 0
}

// Most runs read a few paths and write one or two: their locks and their
// writes' records share one allocation, of the smallest of these shapes
// that holds them.
type (
	records2x1 struct {
		locks  [2]ReadLock
		writes [1]PathValue
	}
	records4x1 struct {
		locks  [4]ReadLock
		writes [1]PathValue
	}
	records4x2 struct {
		locks  [4]ReadLock
		writes [2]PathValue
	}
	records8x4 struct {
		locks  [8]ReadLock
		writes [4]PathValue
	}
)

// records returns a copy of the locks (nil if none) and room for the
// writes' records (nil if none), of exact lengths and capacities, in one
// allocation when a shape above holds both.
func (tx *Tx) records() ([]ReadLock, []PathValue) {
	nl, nw := len(tx.locks), len(tx.writes)
	var locks []ReadLock
	var writes []PathValue
	switch {
	case nw == 0 || nl == 0:
	case nl <= 2 && nw <= 1:
		b := new(records2x1)
		locks, writes = b.locks[:nl:nl], b.writes[:nw:nw]
	case nl <= 4 && nw <= 1:
		b := new(records4x1)
		locks, writes = b.locks[:nl:nl], b.writes[:nw:nw]
	case nl <= 4 && nw <= 2:
		b := new(records4x2)
		locks, writes = b.locks[:nl:nl], b.writes[:nw:nw]
	case nl <= 8 && nw <= 4:
		b := new(records8x4)
		locks, writes = b.locks[:nl:nl], b.writes[:nw:nw]
	}
	if locks == nil && nl > 0 {
		locks = make([]ReadLock, nl)
	}
	if writes == nil && nw > 0 {
		writes = make([]PathValue, nw)
	}
	copy(locks, tx.locks)
	return locks, writes
}

// outcome fills out (from records) with the buffered writes stamped with
// W, every one carrying locks, their bytes in one allocation. When the
// transaction ran against a store, the same byte allocation ends with the
// path ids it found, locks first then writes, which it returns (see
// Outcome.ids).
func (tx *Tx) outcome(out []PathValue, locks []ReadLock) ([]PathValue, []uint32) {
	if len(tx.writes) == 0 {
		return nil, nil
	}
	size := 0
	for i := range tx.writes {
		size += tx.writes[i].n
	}
	var buf []byte
	var ids []uint32
	if tx.store != nil {
		// The ids start at a multiple of 8: a heap block is 8-aligned.
		at := (size + 7) &^ 7
		n := len(tx.lockID) + len(tx.writes)
		block := make([]byte, at+4*n)
		ids = unsafe.Slice((*uint32)(unsafe.Pointer(&block[at])), n)
		copy(ids, tx.lockID)
		for i := range tx.writes {
			ids[len(tx.lockID)+i] = tx.writes[i].id
		}
		buf = block[:0:size]
	} else if size > 0 {
		buf = make([]byte, 0, size)
	}
	for i := range tx.writes {
		w := &tx.writes[i]
		var v []byte
		switch {
		case w.del:
		case w.n == 0:
			v = []byte{}
		default:
			off := len(buf)
			buf = append(buf, tx.value(w)...)
			v = buf[off:len(buf):len(buf)]
		}
		out[i] = PathValue{Path: w.path, Time: tx.time, Value: v, Locks: locks, Flags: w.flags}
	}
	return out, ids
}

// Children lists the next segment of every path under prefix, sorted. It
// is an unsafe read: it records no lock, so a change to the listing alone
// never invalidates this transaction. Read every path whose value matters.
func (tx *Tx) Children(prefix string) []string {
	if tx.err != nil {
		return nil
	}
	if err := ValidatePrefix(prefix); err != nil {
		tx.fail(err)
		return nil
	}
	return tx.view.Children(prefix)
}
