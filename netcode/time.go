package netcode

import (
	"bytes"
	"cmp"
	"fmt"
)

// Time stamps every write: Nanos on the synced clock, Version bumped when the
// same logical write is recomputed, and Creator, the id the authority gave
// the writing connection, so two writers never share a Time. Times are
// ordered lexicographically by (Nanos, Version, Creator). The zero Time means
// "before everything".
type Time struct {
	Nanos   int64
	Version uint32
	Creator uint32
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Time) Compare(u Time) int {
	if t.Nanos != u.Nanos {
		return cmp.Compare(t.Nanos, u.Nanos)
	}
	if t.Version != u.Version {
		return cmp.Compare(t.Version, u.Version)
	}
	return cmp.Compare(t.Creator, u.Creator)
}

// Before reports whether t is strictly before u.
func (t Time) Before(u Time) bool { return t.Compare(u) < 0 }

// IsZero reports whether t is the zero Time.
func (t Time) IsZero() bool { return t == Time{} }

func (t Time) String() string {
	return fmt.Sprintf("%d.v%d.c%d", t.Nanos, t.Version, t.Creator)
}

// ReadLock records one read inside a write: "when I wrote, the value written
// at Start was the latest value of Path over the open interval (Start, End)".
// A Start of zero means no value of Path existed before End.
type ReadLock struct {
	Path       string
	Start, End Time
}

// State is the validity of a value.
type State uint8

const (
	// Valid: every lock of the value holds.
	Valid State = iota
	// Invalid: some lock is broken; the value is ignored by reads.
	Invalid
	// Pending: some lock refers to a value not seen yet, or depends on a
	// pending value; it resolves when that value is seen, or at finality.
	Pending
)

func (s State) String() string {
	switch s {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	case Pending:
		return "pending"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Flags qualify a value.
type Flags uint8

const (
	// FlagEvent marks a value that is delivered to watchers but not kept in
	// history: reads never see it and nothing can lock it.
	FlagEvent Flags = 1 << iota
	// FlagPredicted marks a client-local value not yet confirmed by the
	// authority.
	FlagPredicted
)

// PathValue is one write of one path. A nil Value is a deletion.
type PathValue struct {
	Path  string
	Time  Time
	Value []byte
	Locks []ReadLock
	State State
	Flags Flags
}

// Deleted reports whether v is a deletion.
func (v PathValue) Deleted() bool { return v.Value == nil }

// sameWrite reports whether a and b are the same write (a duplicate
// delivery), ignoring State.
func sameWrite(a, b *PathValue) bool {
	if a.Path != b.Path || a.Time != b.Time || a.Flags != b.Flags ||
		(a.Value == nil) != (b.Value == nil) || !bytes.Equal(a.Value, b.Value) ||
		len(a.Locks) != len(b.Locks) {
		return false
	}
	for i := range a.Locks {
		if a.Locks[i] != b.Locks[i] {
			return false
		}
	}
	return true
}
