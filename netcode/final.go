package netcode

import "fmt"

// CollectFinal turns on (or off) the collection of the values that become
// final: once on, every value Tick makes final and valid is kept for
// TakeFinal, so an archive can store what no longer changes. Off (the
// default), nothing is kept.
func (s *Store) CollectFinal(on bool) {
	s.collectFinal = on
	if !on {
		s.finalOut = nil
	}
}

// TakeFinal returns the values that became final and valid since the last
// call, in the order Tick finalized them (time order), without locks, and
// starts a new list, with room for as many (nil when there are none). The
// values' bytes alias the store; they never change.
func (s *Store) TakeFinal() []PathValue {
	out := s.finalOut
	if len(out) == 0 {
		return nil // the list (and its room) stays for the next ones
	}
	s.finalOut = nil
	s.finalHint = len(out)
	return out
}

// LoadFinal loads final values into the store, as a restart does from an
// archive: every value must be below horizon, carry no locks and no event
// flag, and come after the path's final values already held (per path, in
// time order), on a path with no live value. The store's horizon moves to
// horizon (never back). Each path's history is then trimmed as Tick would
// trim it, to what a lock that can still arrive may reference. The values
// are checked first: if one is refused, none is loaded. Loaded values are
// not reported by TakeFinal. The value bytes are kept, not copied.
func (s *Store) LoadFinal(horizon int64, vs []PathValue) error {
	if horizon < s.horizon {
		return fmt.Errorf("%w: horizon %d is before the store's %d", ErrTooOld, horizon, s.horizon)
	}
	last := map[string]Time{}
	newPaths := 0
	for i := range vs {
		v := &vs[i]
		if err := ValidatePath(v.Path); err != nil {
			return err
		}
		switch {
		case v.Time.Nanos <= 0:
			return fmt.Errorf("%w: %s@%v", ErrZeroTime, v.Path, v.Time)
		case v.Time.Nanos >= horizon:
			return fmt.Errorf("%w: final value %s@%v is not below the horizon %d", ErrTooNew, v.Path, v.Time, horizon)
		case len(v.Locks) > 0 || v.Flags&FlagEvent != 0:
			return fmt.Errorf("%w: final value %s@%v has locks or is an event", ErrBadLock, v.Path, v.Time)
		case len(v.Value) > s.cfg.Limits.MaxValueSize:
			return fmt.Errorf("%w: %s has %d bytes (limit %d)", ErrValueTooLarge, v.Path, len(v.Value), s.cfg.Limits.MaxValueSize)
		}
		prev, seen := last[v.Path]
		if !seen {
			if _, p := s.findPath(v.Path); p != nil {
				if p.live.n > 0 || p.events.n > 0 {
					return fmt.Errorf("%w: %s has live values; final values load first", ErrConflict, v.Path)
				}
				if p.hasFin {
					prev, seen = p.fin.t, true
				}
			} else {
				newPaths++
			}
		}
		if seen && !prev.Before(v.Time) {
			return fmt.Errorf("%w: final value %s@%v not after %v", ErrConflict, v.Path, v.Time, prev)
		}
		last[v.Path] = v.Time
	}
	if s.npaths+newPaths > s.cfg.Limits.MaxPaths {
		return fmt.Errorf("%w: %d paths (limit %d)", ErrStoreFull, s.npaths+newPaths, s.cfg.Limits.MaxPaths)
	}
	// Appended in time order per path, each trimmed as it comes: the
	// history ends as one trim of all of them would leave it.
	cut := horizon - int64(s.cfg.MaxRewind)
	for i := range vs {
		v := &vs[i]
		_, p := s.path(v.Path)
		s.addFinal(p, newFinal(v.Time, v.Value, v.Flags), cut)
		if !p.listed {
			s.listPath(p)
		}
	}
	s.horizon = horizon
	return nil
}
