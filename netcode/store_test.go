package netcode

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreValue compares changes without their value bytes.
var ignoreValue = cmpopts.IgnoreFields(Change{}, "Value")

func TestValidatePath(t *testing.T) {
	long := strings.Repeat("a", MaxPathLen+1)
	deep := strings.Repeat("a/", MaxPathSegments) + "a"
	okDeep := strings.Repeat("a/", MaxPathSegments-1) + "a"
	tests := []struct {
		path string
		rule string // "" when valid
	}{
		{"players/42/pos", ""},
		{"a", ""},
		{okDeep, ""},
		{"", "empty path"},
		{"/players", "leading '/'"},
		{"players/", "trailing '/'"},
		{"players//pos", "empty segment"},
		{long, "longer than"},
		{deep, "more than 32 segments"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.path), func(t *testing.T) {
			err := ValidatePath(tt.path)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("ValidatePath(%q) = %v, want nil", tt.path, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("ValidatePath(%q) = %v, want ErrInvalidPath naming %q", tt.path, err, tt.rule)
			}
		})
	}
}

func TestValidatePrefixAndHasPrefix(t *testing.T) {
	for _, p := range []string{"", "players/", "a/b/"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"players", "/players/", "a//", "/"} {
		if err := ValidatePrefix(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"players/42/pos", "players/", true},
		{"players/42/pos", "players/42/", true},
		{"players/420/pos", "players/42/", false},
		{"players/42", "players/42", true},
		{"players/420", "players/42", false},
		{"anything", "", true},
		{"player", "players/", false},
	}
	for _, tt := range tests {
		if got := HasPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("HasPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

func TestTimeOrder(t *testing.T) {
	ts := []Time{{}, {Nanos: 1}, {Nanos: 1, Creator: 2}, {Nanos: 1, Version: 1}, {Nanos: 1, Version: 1, Creator: 1}, {Nanos: 2}}
	for i := range ts {
		for j := range ts {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ts[i].Compare(ts[j]); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", ts[i], ts[j], got, want)
			}
		}
	}
}

const ms = int64(time.Millisecond)

func tm(msec int64, creator uint32) Time { return Time{Nanos: msec * ms, Creator: creator} }

func mustStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustInsert(t testing.TB, s *Store, now int64, v PathValue) []Change {
	t.Helper()
	ch, err := s.Insert(now, v)
	if err != nil {
		t.Fatalf("insert %s@%v: %v", v.Path, v.Time, err)
	}
	return append([]Change(nil), ch...)
}

func stateOf(t testing.TB, s *Store, path string, at Time) State {
	t.Helper()
	v, ok := s.Get(path, at)
	if !ok {
		t.Fatalf("%s@%v not stored", path, at)
	}
	return v.State
}

func TestRefusals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.MaxValueSize = 8
	cfg.Limits.MaxLocks = 2
	cfg.Limits.MaxReads = 4
	now := 10_000 * ms
	W := tm(10_000, 1)
	ok := ReadLock{Path: "a", Start: tm(9_000, 1), End: W}
	tests := []struct {
		name string
		v    PathValue
		want error
	}{
		{"bad path", PathValue{Path: "a//b", Time: W, Value: []byte{1}}, ErrInvalidPath},
		{"zero time", PathValue{Path: "a", Value: []byte{1}}, ErrZeroTime},
		{"too old", PathValue{Path: "a", Time: tm(10_000-1_001, 1), Value: []byte{1}}, ErrTooOld},
		{"too new", PathValue{Path: "a", Time: tm(10_000+251, 1), Value: []byte{1}}, ErrTooNew},
		{"value too large", PathValue{Path: "a", Time: W, Value: make([]byte, 9)}, ErrValueTooLarge},
		{"too many locks", PathValue{Path: "a", Time: W, Locks: []ReadLock{ok, {Path: "b", End: W}, {Path: "c", End: W}}}, ErrTooManyLocks},
		{"lock start = end", PathValue{Path: "a", Time: W, Locks: []ReadLock{{Path: "b", Start: W, End: W}}}, ErrBadLock},
		{"lock start > end", PathValue{Path: "a", Time: W, Locks: []ReadLock{{Path: "b", Start: W, End: tm(9_000, 1)}}}, ErrBadLock},
		{"lock end after write", PathValue{Path: "a", Time: W, Locks: []ReadLock{{Path: "b", End: tm(10_001, 1)}}}, ErrBadLock},
		{"lock end beyond rewind", PathValue{Path: "a", Time: W, Locks: []ReadLock{{Path: "b", End: tm(8_999, 1)}}}, ErrBadLock},
		{"lock on bad path", PathValue{Path: "a", Time: W, Locks: []ReadLock{{Path: "/b", End: W}}}, ErrInvalidPath},
		{"unknown flag", PathValue{Path: "a", Time: W, Flags: 0x80}, ErrBadLock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustStore(t, cfg)
			_, err := s.Insert(now, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Insert = %v, want %v", err, tt.want)
			}
			if st := s.Stats(); st.Paths != 0 || st.LiveValues != 0 || st.Refused != 1 {
				t.Fatalf("refused write left state behind: %+v", st)
			}
		})
	}
}

func TestRefusedBatchStoresNothing(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	W := tm(10_000, 1)
	_, err := s.InsertBatch(now, []PathValue{
		{Path: "a", Time: W, Value: []byte{1}},
		{Path: "b", Time: W, Value: []byte{2}, Locks: []ReadLock{{Path: "c", Start: W, End: W}}},
	})
	if !errors.Is(err, ErrBadLock) {
		t.Fatalf("InsertBatch = %v, want ErrBadLock", err)
	}
	if _, ok := s.Get("a", W); ok {
		t.Fatal("first value of a refused batch was stored")
	}
}

func TestConflictAndDuplicate(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	v := PathValue{Path: "a", Time: tm(10_000, 1), Value: []byte{1}}
	mustInsert(t, s, now, v)
	if ch := mustInsert(t, s, now, v); len(ch) != 0 {
		t.Fatalf("identical re-delivery produced changes %v", ch)
	}
	v2 := v
	v2.Value = []byte{2}
	if _, err := s.Insert(now, v2); !errors.Is(err, ErrConflict) {
		t.Fatalf("different value at same time: %v, want ErrConflict", err)
	}
	if got, _ := s.Get("a", v.Time); got.Value[0] != 1 {
		t.Fatal("conflicting write replaced the stored value")
	}
	if s.Stats().Duplicates != 1 {
		t.Fatalf("duplicates = %d", s.Stats().Duplicates)
	}
}

func TestStoreLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.MaxPaths = 2
	cfg.Limits.MaxLivePerPath = 2
	s := mustStore(t, cfg)
	now := 10_000 * ms
	mustInsert(t, s, now, PathValue{Path: "a", Time: tm(9_990, 1), Value: []byte{1}})
	mustInsert(t, s, now, PathValue{Path: "a", Time: tm(9_991, 1), Value: []byte{1}})
	if _, err := s.Insert(now, PathValue{Path: "a", Time: tm(9_992, 1), Value: []byte{1}}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("third live value on a path: %v, want ErrStoreFull", err)
	}
	mustInsert(t, s, now, PathValue{Path: "b", Time: tm(9_990, 1), Value: []byte{1}})
	if _, err := s.Insert(now, PathValue{Path: "c", Time: tm(9_990, 1), Value: []byte{1}}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("third path: %v, want ErrStoreFull", err)
	}
	// Finality frees the live slots.
	s.Tick(now + 2_000*ms)
	if _, err := s.Insert(now+2_000*ms, PathValue{Path: "a", Time: tm(11_999, 1), Value: []byte{1}}); err != nil {
		t.Fatalf("after finality: %v", err)
	}
}

// TestLateWriteCascadeAndRecovery: B reads A, C reads B. A late write to A
// lands inside B's lock: B and C turn invalid. The late write is itself
// rejected (its own lock breaks): B and C come back.
func TestLateWriteCascadeAndRecovery(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	a1 := PathValue{Path: "a", Time: tm(9_100, 1), Value: []byte("a1")}
	b := PathValue{Path: "b", Time: tm(9_300, 1), Value: []byte("b"), Locks: []ReadLock{{Path: "a", Start: a1.Time, End: tm(9_300, 1)}}}
	c := PathValue{Path: "c", Time: tm(9_400, 2), Value: []byte("c"), Locks: []ReadLock{{Path: "b", Start: b.Time, End: tm(9_400, 2)}}}
	g0 := PathValue{Path: "gate", Time: tm(9_000, 3), Value: []byte("open")}
	late := PathValue{Path: "a", Time: tm(9_200, 3), Value: []byte("late"), Locks: []ReadLock{{Path: "gate", Start: g0.Time, End: tm(9_200, 3)}}}
	for _, v := range []PathValue{g0, a1, b, c} {
		mustInsert(t, s, now, v)
	}
	ch := mustInsert(t, s, now, late)
	want := []Change{
		{Kind: Added, Path: "a", Time: late.Time, New: Valid},
		{Kind: StateChanged, Path: "b", Time: b.Time, Old: Valid, New: Invalid},
		{Kind: StateChanged, Path: "c", Time: c.Time, Old: Valid, New: Invalid},
	}
	if d := cmp.Diff(want, ch, ignoreValue); d != "" {
		t.Fatalf("late write changes (-want +got):\n%s", d)
	}
	// The gate closed before the late write: the late write's read of the
	// gate breaks, so it is rejected, and b and c come back.
	ch = mustInsert(t, s, now, PathValue{Path: "gate", Time: tm(9_150, 1), Value: []byte("closed")})
	want = []Change{
		{Kind: Added, Path: "gate", Time: tm(9_150, 1), New: Valid},
		{Kind: StateChanged, Path: "a", Time: late.Time, Old: Valid, New: Invalid},
		{Kind: StateChanged, Path: "b", Time: b.Time, Old: Invalid, New: Valid},
		{Kind: StateChanged, Path: "c", Time: c.Time, Old: Invalid, New: Valid},
	}
	if d := cmp.Diff(want, ch, ignoreValue); d != "" {
		t.Fatalf("rejection changes (-want +got):\n%s", d)
	}
	if v, _ := s.Latest("a", tm(10_000, 0)); string(v.Value) != "a1" {
		t.Fatalf("latest a = %q, want a1 (the invalid late write is not readable)", v.Value)
	}
}

func TestPendingResolution(t *testing.T) {
	now := 10_000 * ms
	target := tm(9_100, 7)
	reader := PathValue{Path: "r", Time: tm(9_300, 1), Value: []byte{1}, Locks: []ReadLock{{Path: "x", Start: target, End: tm(9_300, 1)}}}
	t.Run("seen valid", func(t *testing.T) {
		s := mustStore(t, DefaultConfig())
		mustInsert(t, s, now, reader)
		if st := stateOf(t, s, "r", reader.Time); st != Pending {
			t.Fatalf("reader of an unseen value is %v, want pending", st)
		}
		mustInsert(t, s, now, PathValue{Path: "x", Time: target, Value: []byte{1}})
		if st := stateOf(t, s, "r", reader.Time); st != Valid {
			t.Fatalf("after target seen: %v, want valid", st)
		}
	})
	t.Run("seen invalid", func(t *testing.T) {
		s := mustStore(t, DefaultConfig())
		mustInsert(t, s, now, reader)
		mustInsert(t, s, now, PathValue{Path: "y", Time: tm(9_050, 1), Value: []byte{1}})
		mustInsert(t, s, now, PathValue{Path: "x", Time: target, Value: []byte{1},
			Locks: []ReadLock{{Path: "y", Start: Time{}, End: target}}}) // y existed: broken
		if st := stateOf(t, s, "r", reader.Time); st != Invalid {
			t.Fatalf("after invalid target seen: %v, want invalid", st)
		}
	})
	t.Run("never seen", func(t *testing.T) {
		s := mustStore(t, DefaultConfig())
		mustInsert(t, s, now, reader)
		ch := s.Tick(now + 2_000*ms)
		want := []Change{{Kind: StateChanged, Path: "r", Time: reader.Time, Old: Pending, New: Invalid}}
		if d := cmp.Diff(want, ch, ignoreValue); d != "" {
			t.Fatalf("finality changes (-want +got):\n%s", d)
		}
		if st := s.Stats(); st.Ghosts != 0 || st.PendingNow != 0 {
			t.Fatalf("after finality: %+v", st)
		}
	})
}

func TestFinality(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	a := PathValue{Path: "a", Time: tm(9_100, 1), Value: []byte("a")}
	b := PathValue{Path: "b", Time: tm(9_300, 1), Value: []byte("b"), Locks: []ReadLock{{Path: "a", Start: a.Time, End: tm(9_300, 1)}}}
	mustInsert(t, s, now, a)
	mustInsert(t, s, now, b)
	// 9_300 + 1_000 + 50 skew: b is final after now = 10_351 ms.
	s.Tick(10_351 * ms)
	if s.Horizon() != 9_301*ms {
		t.Fatalf("horizon = %d", s.Horizon())
	}
	got, _ := s.Get("b", b.Time)
	if got.Locks != nil || got.State != Valid {
		t.Fatalf("final value keeps locks or state: %+v", got)
	}
	// Nothing can change a final value: a write inside its interval is refused.
	if _, err := s.Insert(10_351*ms, PathValue{Path: "a", Time: tm(9_200, 2), Value: []byte("x")}); !errors.Is(err, ErrTooOld) {
		t.Fatalf("write into final history: %v, want ErrTooOld", err)
	}
	if stateOf(t, s, "b", b.Time) != Valid {
		t.Fatal("final value changed state")
	}
	// A new value locking a final value is checked against final history.
	c := PathValue{Path: "c", Time: tm(10_300, 1), Value: []byte("c"), Locks: []ReadLock{{Path: "a", Start: a.Time, End: tm(10_300, 1)}}}
	mustInsert(t, s, 10_351*ms, c)
	if stateOf(t, s, "c", c.Time) != Valid {
		t.Fatal("lock on a final value not valid")
	}
	stale := PathValue{Path: "d", Time: tm(10_300, 2), Value: []byte("d"), Locks: []ReadLock{{Path: "b", Start: Time{}, End: tm(10_300, 2)}}}
	mustInsert(t, s, 10_351*ms, stale)
	if stateOf(t, s, "d", stale.Time) != Invalid {
		t.Fatal("lock whose interval holds a final value not invalid")
	}
	lost := PathValue{Path: "e", Time: tm(10_300, 3), Value: []byte("e"), Locks: []ReadLock{{Path: "a", Start: tm(9_000, 9), End: tm(10_300, 3)}}}
	mustInsert(t, s, 10_351*ms, lost)
	if stateOf(t, s, "e", lost.Time) != Invalid {
		t.Fatal("lock on a final time with no value not invalid")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestBoundedMemory: a steady load of writes, each reading the previous
// value of its path and one other path, for two minutes of game time; the
// values held must stop growing once the history window is full.
func TestBoundedMemory(t *testing.T) {
	cfg := DefaultConfig()
	s := mustStore(t, cfg)
	const paths, hz = 50, 60
	step := int64(time.Second) / hz
	now := int64(time.Second)
	var peak, atOneMinute int
	for tick := 0; tick < 120*hz; tick++ {
		now += step
		for p := 0; p < paths; p++ {
			W := Time{Nanos: now, Creator: uint32(p + 1)}
			path := fmt.Sprintf("p/%d", p)
			other := fmt.Sprintf("p/%d", (p+1)%paths)
			var locks []ReadLock
			for _, rp := range []string{path, other} {
				prev, _ := s.Latest(rp, W)
				locks = append(locks, ReadLock{Path: rp, Start: prev.Time, End: W})
			}
			if _, err := s.Insert(now, PathValue{Path: path, Time: W, Value: []byte{byte(tick)}, Locks: locks}); err != nil {
				t.Fatalf("tick %d: %v", tick, err)
			}
		}
		s.Tick(now)
		st := s.Stats()
		held := st.LiveValues + st.FinalValues
		peak = max(peak, held)
		if tick == 60*hz {
			atOneMinute = held
		}
	}
	st := s.Stats()
	// Live: MaxChangeAge + skew of writes; final: MaxRewind of writes + 1.
	bound := paths * (hz*(1+1) + hz/10 + 4)
	t.Logf("values held: peak %d, at 60 s %d, at 120 s %d (bound %d); trimmed %d", peak, atOneMinute, st.LiveValues+st.FinalValues, bound, st.Trimmed)
	if peak > bound {
		t.Fatalf("held %d values, bound %d", peak, bound)
	}
	if held := st.LiveValues + st.FinalValues; held > atOneMinute+paths {
		t.Fatalf("still growing: %d at 60 s, %d at 120 s", atOneMinute, held)
	}
	if st.Invalidation != 0 || st.PendingNow != 0 {
		t.Fatalf("steady in-order load produced invalid or pending values: %+v", st)
	}
}

func TestChildren(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	for i, p := range []string{"players/2/pos", "players/10/pos", "players/2/hp", "walls/1", "top"} {
		mustInsert(t, s, now, PathValue{Path: p, Time: tm(9_000+int64(i), 1), Value: []byte{1}})
	}
	if d := cmp.Diff([]string{"10", "2"}, s.Children("players/")); d != "" {
		t.Error(d)
	}
	if d := cmp.Diff([]string{"hp", "pos"}, s.Children("players/2/")); d != "" {
		t.Error(d)
	}
	if d := cmp.Diff([]string{"players", "top", "walls"}, s.Children("")); d != "" {
		t.Error(d)
	}
}

func TestEventsAreNotHistory(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	mustInsert(t, s, now, PathValue{Path: "shots/1", Time: tm(9_000, 1), Value: []byte("state")})
	mustInsert(t, s, now, PathValue{Path: "shots/1", Time: tm(9_100, 1), Value: []byte("bang"), Flags: FlagEvent})
	if v, _ := s.Latest("shots/1", tm(9_500, 1)); string(v.Value) != "state" {
		t.Fatalf("read saw an event: %q", v.Value)
	}
	// A lock across the event's time is not broken by it.
	r := PathValue{Path: "r", Time: tm(9_200, 1), Value: []byte{1}, Locks: []ReadLock{{Path: "shots/1", Start: tm(9_000, 1), End: tm(9_200, 1)}}}
	mustInsert(t, s, now, r)
	if stateOf(t, s, "r", r.Time) != Valid {
		t.Fatal("event broke a lock")
	}
	s.Tick(now + 2_000*ms)
	if _, ok := s.Get("shots/1", tm(9_100, 1)); ok {
		t.Fatal("event kept after finality")
	}
}

func TestPathsUnder(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	for i, p := range []string{"players/2/pos", "players/10/pos", "players/2/hp", "players", "walls/1", "players/2/pos/x"} {
		mustInsert(t, s, now, PathValue{Path: p, Time: tm(9_000+int64(i), 1), Value: []byte{1}})
	}
	collect := func(prefix string) (out []string) {
		s.PathsUnder(prefix, func(p string) bool { out = append(out, p); return true })
		return out
	}
	if d := cmp.Diff([]string{"players/10/pos", "players/2/hp", "players/2/pos", "players/2/pos/x"}, collect("players/")); d != "" {
		t.Error(d)
	}
	if d := cmp.Diff([]string{"players/2/pos"}, collect("players/2/pos")); d != "" {
		t.Error(d)
	}
	if got := collect(""); len(got) != 6 {
		t.Errorf("all paths: %v", got)
	}
}

// TestBatchConflicts: a (path, time) given twice in one batch must be the
// same write, in small batches and in large ones (checked with a map).
func TestBatchConflicts(t *testing.T) {
	now := 10_000 * ms
	for _, n := range []int{3, 40} {
		batch := func(conflict bool) []PathValue {
			var vs []PathValue
			for i := 0; i < n; i++ {
				vs = append(vs, PathValue{Path: fmt.Sprintf("p/%d", i), Time: tm(9_000, 1), Value: []byte{1}})
			}
			dup := vs[1]
			if conflict {
				dup.Value = []byte{2}
			}
			return append(vs, dup)
		}
		s := mustStore(t, DefaultConfig())
		if _, err := s.InsertBatch(now, batch(true)); !errors.Is(err, ErrConflict) {
			t.Fatalf("n=%d: conflicting batch: %v, want ErrConflict", n, err)
		}
		if st := s.Stats(); st.LiveValues != 0 {
			t.Fatalf("n=%d: refused batch stored %d values", n, st.LiveValues)
		}
		if _, err := s.InsertBatch(now, batch(false)); err != nil {
			t.Fatalf("n=%d: batch with an identical repeat: %v", n, err)
		}
		if st := s.Stats(); st.LiveValues != n {
			t.Fatalf("n=%d: stored %d values, want %d", n, st.LiveValues, n)
		}
	}
}

// TestTransactionSharesLocks: the writes of one transaction share their
// locks, so the store registers them once and the other writes follow the
// first one's state. A late write breaking the read invalidates every
// write of the transaction, reported in (time, path) order, and a write
// and an event on one path at one time are two values, also in one batch.
func TestTransactionSharesLocks(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	now := 10_000 * ms
	mustInsert(t, s, now, PathValue{Path: "in", Time: tm(9_000, 1), Value: []byte("a")})
	W := tm(9_500, 2)
	locks := []ReadLock{{Path: "in", Start: tm(9_000, 1), End: W}}
	tx := []PathValue{
		{Path: "z", Time: W, Value: []byte{1}, Locks: locks},
		{Path: "b", Time: W, Value: []byte{2}, Locks: locks},
		{Path: "b", Time: W, Value: []byte("bang"), Locks: locks, Flags: FlagEvent},
	}
	if _, err := s.InsertBatch(now, tx); err != nil {
		t.Fatal(err)
	}
	if _, p := s.findPath("in"); len(mustLogItems(t, s, p)) != 1 {
		t.Fatalf("the transaction's lock is logged %d times, want once", len(mustLogItems(t, s, p)))
	}
	mustInsert(t, s, now, PathValue{Path: "gate", Time: tm(9_000, 5), Value: []byte("open")})
	ch := mustInsert(t, s, now, PathValue{Path: "in", Time: tm(9_200, 3), Value: []byte("late"),
		Locks: []ReadLock{{Path: "gate", Start: tm(9_000, 5), End: tm(9_200, 3)}}})
	want := []Change{
		{Kind: Added, Path: "in", Time: tm(9_200, 3), New: Valid},
		{Kind: StateChanged, Path: "b", Time: W, Flags: FlagEvent, Old: Valid, New: Invalid},
		{Kind: StateChanged, Path: "b", Time: W, Old: Valid, New: Invalid},
		{Kind: StateChanged, Path: "z", Time: W, Old: Valid, New: Invalid},
	}
	sortSameTime := func(ch []Change) {
		// b's value and event share (time, path): order them by flags.
		if len(ch) == 4 && ch[1].Flags < ch[2].Flags {
			ch[1], ch[2] = ch[2], ch[1]
		}
	}
	sortSameTime(ch)
	if d := cmp.Diff(want, ch, ignoreValue); d != "" {
		t.Fatalf("late write changes (-want +got):\n%s", d)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	// The late write turns out invalid itself: all three come back.
	ch = mustInsert(t, s, now, PathValue{Path: "gate", Time: tm(9_100, 4), Value: []byte("shut")})
	if len(ch) != 5 || ch[1].New != Invalid || ch[2].New != Valid || ch[3].New != Valid || ch[4].New != Valid {
		t.Fatalf("changes %v", ch)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Tick(now + 2_000*ms)
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.LiveValues != 0 || st.Ghosts != 0 {
		t.Fatalf("after finality: %+v", st)
	}
}

func mustLogItems(t *testing.T, s *Store, p *pathRec) []lockItem {
	t.Helper()
	items, err := s.logItems(p)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestRecordLayout holds the path record to its documented shape: 192
// bytes, three cache lines, with everything a read of the newest value
// needs (the name, the newest value's time, state and bytes, inline when
// small) in the first, and what registering a lock needs besides in the
// second.
func TestRecordLayout(t *testing.T) {
	var p pathRec
	if got := unsafe.Sizeof(p); got != 192 {
		t.Errorf("pathRec is %d bytes, want 192", got)
	}
	for _, f := range []struct {
		name      string
		off, size uintptr
	}{
		{"nameP", unsafe.Offsetof(p.nameP), unsafe.Sizeof(p.nameP)},
		{"nameN", unsafe.Offsetof(p.nameN), unsafe.Sizeof(p.nameN)},
		{"last", unsafe.Offsetof(p.last), unsafe.Sizeof(p.last)},
		{"lastP", unsafe.Offsetof(p.lastP), unsafe.Sizeof(p.lastP)},
		{"lastN", unsafe.Offsetof(p.lastN), unsafe.Sizeof(p.lastN)},
		{"lastSt", unsafe.Offsetof(p.lastSt), unsafe.Sizeof(p.lastSt)},
		{"hasFin", unsafe.Offsetof(p.hasFin), unsafe.Sizeof(p.hasFin)},
		{"inline", unsafe.Offsetof(p.inline), unsafe.Sizeof(p.inline)},
	} {
		if f.off+f.size > 64 {
			t.Errorf("pathRec.%s ends at byte %d, outside the first cache line", f.name, f.off+f.size)
		}
	}
	// What registering a lock reads besides: the second line.
	for _, f := range []struct {
		name      string
		off, size uintptr
	}{
		{"live", unsafe.Offsetof(p.live), unsafe.Sizeof(p.live)},
		{"events", unsafe.Offsetof(p.events), unsafe.Sizeof(p.events)},
		{"logEnd", unsafe.Offsetof(p.logEnd), unsafe.Sizeof(p.logEnd)},
	} {
		if f.off < 64 || f.off+f.size > 128 {
			t.Errorf("pathRec.%s is at bytes %d to %d, outside the second cache line", f.name, f.off, f.off+f.size)
		}
	}
}
