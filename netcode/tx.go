package netcode

import (
	"fmt"
	"math/rand/v2"
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
type Tx struct {
	view      View
	cfg       *Config
	time      Time
	viewNanos int64
	id        CallID

	rng    *rand.Rand
	locks  []ReadLock
	writes []PathValue
	reads  int
	err    error
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
	if tx.rng == nil {
		tx.rng = rand.New(rand.NewPCG(uint64(tx.id.Creator)<<32|0x9e3779b9, tx.id.Seq))
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
			if w := &tx.writes[i]; w.Path == path && w.Flags&FlagEvent == 0 {
				return w.Value, w.Value != nil
			}
		}
	}
	tx.reads++
	if tx.reads > tx.cfg.Limits.MaxReads {
		tx.fail(fmt.Errorf("%w (limit %d)", ErrTooManyReads, tx.cfg.Limits.MaxReads))
		return nil, false
	}
	v, ok := tx.view.Latest(path, end)
	if !ok {
		if err := ValidatePath(path); err != nil {
			tx.fail(err)
			return nil, false
		}
	}
	lock := ReadLock{Path: path, Start: v.Time, End: end}
	for i := range tx.locks {
		if tx.locks[i] == lock {
			return v.Value, v.Value != nil
		}
	}
	if len(tx.locks) >= tx.cfg.Limits.MaxLocks {
		tx.fail(fmt.Errorf("%w: more than %d distinct reads", ErrTooManyLocks, tx.cfg.Limits.MaxLocks))
		return nil, false
	}
	if tx.locks == nil {
		tx.locks = make([]ReadLock, 0, 8)
	}
	tx.locks = append(tx.locks, lock)
	return v.Value, v.Value != nil
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
	if err := ValidatePath(path); err != nil {
		tx.fail(err)
		return
	}
	if len(value) > tx.cfg.Limits.MaxValueSize {
		tx.fail(fmt.Errorf("%w: %s has %d bytes (limit %d)", ErrValueTooLarge, path, len(value), tx.cfg.Limits.MaxValueSize))
		return
	}
	if value != nil {
		value = append(make([]byte, 0, len(value)), value...)
	}
	for i := range tx.writes {
		if w := &tx.writes[i]; w.Path == path && w.Flags&FlagEvent == flags&FlagEvent {
			w.Value = value
			return
		}
	}
	if len(tx.writes) >= tx.cfg.Limits.MaxWrites {
		tx.fail(fmt.Errorf("%w (limit %d)", ErrTooManyWrites, tx.cfg.Limits.MaxWrites))
		return
	}
	if tx.writes == nil {
		tx.writes = make([]PathValue, 0, 4)
	}
	tx.writes = append(tx.writes, PathValue{Path: path, Time: tx.time, Value: value, Flags: flags})
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
