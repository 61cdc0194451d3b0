package netcode

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// refKey identifies a value: path, time and whether it is an event.
type refKey struct {
	path  string
	t     Time
	event bool
}

func keyOf(v *PathValue) refKey { return refKey{v.Path, v.Time, v.Flags&FlagEvent != 0} }

// referenceStates recomputes the state of every value from scratch by the
// validity rule, with no incremental bookkeeping: a value is valid iff for
// every lock the Start value is valid (or Start is zero) and no valid value
// of the lock's path lies strictly inside (Start, End). A Start value that is
// absent makes the condition unknown (pending), as does a pending value
// inside the interval; conditions combine by three-valued "and". Events are
// never lock targets and never lie inside intervals.
func referenceStates(vals []PathValue) map[refKey]State {
	byKey := make(map[refKey]*PathValue, len(vals))
	byPath := make(map[string][]*PathValue)
	for i := range vals {
		v := &vals[i]
		byKey[keyOf(v)] = v
		if v.Flags&FlagEvent == 0 {
			byPath[v.Path] = append(byPath[v.Path], v)
		}
	}
	memo := make(map[refKey]State, len(vals))
	var eval func(v *PathValue) State
	eval = func(v *PathValue) State {
		k := keyOf(v)
		if st, ok := memo[k]; ok {
			return st
		}
		bad, unknown := false, false
		for _, l := range v.Locks {
			if !l.Start.IsZero() {
				target, ok := byKey[refKey{l.Path, l.Start, false}]
				switch {
				case !ok:
					unknown = true
				case eval(target) == Invalid:
					bad = true
				case eval(target) == Pending:
					unknown = true
				}
			}
			for _, w := range byPath[l.Path] {
				if l.Start.Before(w.Time) && w.Time.Before(l.End) {
					switch eval(w) {
					case Valid:
						bad = true
					case Pending:
						unknown = true
					}
				}
			}
		}
		st := Valid
		if bad {
			st = Invalid
		} else if unknown {
			st = Pending
		}
		memo[k] = st
		return st
	}
	for i := range vals {
		eval(&vals[i])
	}
	return memo
}

// workload is a seeded random set of writes: chains of transactions reading
// each other, late arrivals, past-time reads, reads of values never written
// (pending), identical duplicates and malformed writes the store must
// refuse.
type workload struct {
	seed    uint64
	values  []PathValue // everything offered, in generation order
	refused []bool      // values[i] must be refused
}

func testConfig() Config {
	c := DefaultConfig()
	c.MaxChangeAge = time.Hour
	c.MaxFutureSkew = time.Hour
	c.MaxRewind = time.Hour
	return c
}

// testNow is the fixed "now" for order tests: every generated time is inside
// the change window.
const testNow = int64(10 * time.Second)

func genWorkload(seed uint64, nTx int) workload {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	w := workload{seed: seed}
	nPaths := 2 + r.IntN(6)
	paths := make([]string, nPaths)
	for i := range paths {
		paths[i] = fmt.Sprintf("p/%d", i)
	}
	byPath := make(map[string][]Time)
	used := make(map[refKey]bool)
	base := int64(time.Second)
	for tx := 0; tx < nTx; tx++ {
		// Mostly increasing times with jitter, so late writes land inside
		// earlier-generated intervals.
		nanos := base + int64(tx)*1000 + r.Int64N(8000) - 4000
		W := Time{Nanos: nanos, Version: uint32(r.IntN(2)), Creator: uint32(1 + r.IntN(3))}
		var locks []ReadLock
		for n := r.IntN(4); n > 0; n-- {
			p := paths[r.IntN(nPaths)]
			end := W
			if r.IntN(4) == 0 { // past-time read
				end = Time{Nanos: W.Nanos - 1 - r.Int64N(3000)}
			}
			var cands []Time
			for _, t := range byPath[p] {
				if t.Before(end) {
					cands = append(cands, t)
				}
			}
			var start Time
			switch x := r.IntN(10); {
			case x < 6 && len(cands) > 0: // the latest known before end
				start = slices.MaxFunc(cands, Time.Compare)
			case x < 8 && len(cands) > 0: // a stale read
				start = cands[r.IntN(len(cands))]
			case x < 9: // nothing before
				start = Time{}
			default: // a value never written: pending
				start = Time{Nanos: end.Nanos - 1 - r.Int64N(2000), Creator: 99}
				if !start.Before(end) || start.Nanos <= 0 {
					start = Time{}
				}
			}
			l := ReadLock{Path: p, Start: start, End: end}
			if !slices.Contains(locks, l) {
				locks = append(locks, l)
			}
		}
		malformed := r.IntN(25) == 0
		if malformed && len(locks) > 0 {
			switch r.IntN(2) {
			case 0:
				locks[0].End = Time{Nanos: W.Nanos + 1} // after the write
			case 1:
				locks[0].Start = locks[0].End // empty interval
			}
		} else {
			malformed = false
		}
		nw := 1 + r.IntN(2)
		for i := 0; i < nw; i++ {
			p := paths[r.IntN(nPaths)]
			var flags Flags
			if r.IntN(8) == 0 {
				flags = FlagEvent
			}
			k := refKey{p, W, flags&FlagEvent != 0}
			if used[k] {
				continue
			}
			used[k] = true
			var val []byte
			if r.IntN(10) > 0 {
				val = []byte{byte(tx), byte(i)}
			}
			v := PathValue{Path: p, Time: W, Value: val, Locks: locks, Flags: flags}
			w.values = append(w.values, v)
			w.refused = append(w.refused, malformed)
			if !malformed && flags&FlagEvent == 0 {
				byPath[p] = append(byPath[p], W)
			}
			if !malformed && r.IntN(15) == 0 { // an identical re-delivery
				w.values = append(w.values, v)
				w.refused = append(w.refused, false)
			}
		}
	}
	return w
}

// accepted returns the distinct values the store must accept.
func (w *workload) accepted() []PathValue {
	seen := make(map[refKey]bool)
	var out []PathValue
	for i, v := range w.values {
		if w.refused[i] || seen[keyOf(&v)] {
			continue
		}
		seen[keyOf(&v)] = true
		out = append(out, v)
	}
	return out
}

// storeStates reads back the state of every given value from the store.
func storeStates(s *Store, vals []PathValue) (map[refKey]State, error) {
	out := make(map[refKey]State, len(vals))
	for i := range vals {
		v := &vals[i]
		got, ok := s.Get(v.Path, v.Time)
		if v.Flags&FlagEvent != 0 {
			got, ok = s.getEvent(v.Path, v.Time)
		}
		if !ok {
			return nil, fmt.Errorf("value %s@%v (event=%v) not found", v.Path, v.Time, v.Flags&FlagEvent != 0)
		}
		out[keyOf(v)] = got.State
	}
	return out, nil
}

func diffStates(want, got map[refKey]State) string {
	var keys []refKey
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b refKey) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		if a.path != b.path {
			if a.path < b.path {
				return -1
			}
			return 1
		}
		return 0
	})
	var out string
	for _, k := range keys {
		if want[k] != got[k] {
			out += fmt.Sprintf("  %s@%v event=%v: store %v, reference %v\n", k.path, k.t, k.event, got[k], want[k])
		}
	}
	return out
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
