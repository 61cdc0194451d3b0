package netcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func getU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// counterRegistry: "add" adds args to counter/<caller> and to total.
func counterRegistry(t testing.TB) *Registry {
	r := NewRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Register("add", func(tx *Tx, args []byte) error {
		total, _ := tx.Read("total")
		tx.Write("total", u64(getU64(total)+getU64(args)))
		return nil
	}, FuncOptions{}))
	must(r.Register("fail", func(tx *Tx, args []byte) error {
		tx.Write("total", u64(1))
		return errors.New("no")
	}, FuncOptions{}))
	must(r.Register("panic", func(tx *Tx, args []byte) error { panic("boom") }, FuncOptions{}))
	return r
}

func TestRegistry(t *testing.T) {
	r := counterRegistry(t)
	if err := r.Register("add", func(*Tx, []byte) error { return nil }, FuncOptions{}); !errors.Is(err, ErrDuplicateFunction) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Register("", func(*Tx, []byte) error { return nil }, FuncOptions{}); err == nil {
		t.Fatal("empty name accepted")
	}
	if d := cmp.Diff([]string{"add", "fail", "panic"}, r.Names()); d != "" {
		t.Fatal(d)
	}
	s := mustStore(t, DefaultConfig())
	cfg := s.Config()
	if out := r.Run(s, &cfg, Call{Name: "nope", Time: 1}, 0); !errors.Is(out.Err, ErrUnknownFunction) {
		t.Fatalf("unknown function: %v", out.Err)
	}
	if out := r.Run(s, &cfg, Call{Name: "fail", Time: 1}, 0); out.Err == nil || len(out.Writes) != 0 {
		t.Fatalf("failing function: %+v", out)
	}
	if out := r.Run(s, &cfg, Call{Name: "panic", Time: 1}, 0); !errors.Is(out.Err, ErrFunctionPanic) {
		t.Fatalf("panicking function: %v", out.Err)
	}
}

// TestRerunAtNextVersion: two calls add to a total; a late call lands before
// the second, which turns invalid and is re-run at Version+1 on the
// corrected state, giving the right total.
func TestRerunAtNextVersion(t *testing.T) {
	r := counterRegistry(t)
	s := mustStore(t, DefaultConfig())
	cfg := s.Config()
	now := 10_000 * ms
	commit := func(c Call, version uint32) Outcome {
		t.Helper()
		out := r.Run(s, &cfg, c, version)
		if _, err := s.Commit(now, &out); err != nil {
			t.Fatalf("commit %v: %v", c.ID, err)
		}
		return out
	}
	commit(Call{ID: CallID{1, 1}, Name: "add", Args: u64(1), Time: 9_000 * ms}, 0)
	second := commit(Call{ID: CallID{2, 1}, Name: "add", Args: u64(10), Time: 9_200 * ms}, 0)
	if got := getU64(second.Writes[0].Value); got != 11 {
		t.Fatalf("total after two calls = %d", got)
	}
	// A late call from creator 3 at 9_100: the second call read a total that
	// is no longer the latest before its time.
	late := r.Run(s, &cfg, Call{ID: CallID{3, 1}, Name: "add", Args: u64(100), Time: 9_100 * ms}, 0)
	ch, err := s.Commit(now, &late)
	if err != nil {
		t.Fatal(err)
	}
	var invalidated []Time
	for _, c := range ch {
		if c.Kind == StateChanged && c.New == Invalid {
			invalidated = append(invalidated, c.Time)
		}
	}
	if d := cmp.Diff([]Time{second.Time}, invalidated); d != "" {
		t.Fatalf("invalidated (-want +got):\n%s", d)
	}
	rerun := commit(second.Call, second.Time.Version+1)
	if rerun.Time.Version != 1 || getU64(rerun.Writes[0].Value) != 111 {
		t.Fatalf("re-run: version %d total %d, want 1 and 111", rerun.Time.Version, getU64(rerun.Writes[0].Value))
	}
	if v, _ := s.Latest("total", Time{Nanos: now}); getU64(v.Value) != 111 {
		t.Fatalf("latest total = %d", getU64(v.Value))
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestTxReads(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRewind = 500 * time.Millisecond
	s := mustStore(t, cfg)
	now := 10_000 * ms
	for _, v := range []PathValue{
		{Path: "pos", Time: tm(9_000, 1), Value: []byte("p0")},
		{Path: "pos", Time: tm(9_400, 1), Value: []byte("p1")},
		{Path: "pos", Time: tm(9_800, 1), Value: []byte("p2")},
		{Path: "gone", Time: tm(9_000, 1), Value: []byte("x")},
		{Path: "gone", Time: tm(9_100, 1), Value: nil},
	} {
		mustInsert(t, s, now, v)
	}
	var got []string
	var tx *Tx
	r := NewRegistry()
	r.Register("probe", func(x *Tx, _ []byte) error {
		tx = x
		read := func(v []byte, ok bool) {
			if !ok {
				got = append(got, "-")
				return
			}
			got = append(got, string(v))
		}
		read(x.Read("pos"))               // p2, lock {pos, 9800, W}
		read(x.ReadPast("pos", 9_500*ms)) // p1, lock {pos, 9400, 9500}
		read(x.ReadPast("pos", 1))        // clamped to W-500ms = 9400: p0
		read(x.ReadView("pos"))           // view time 9_900 - 200 = 9_700: p1
		read(x.Read("gone"))              // deleted: absent, lock on the deletion
		read(x.Read("never"))             // absent, zero-start lock
		x.Write("pos", []byte("mine"))
		read(x.Read("pos")) // read-your-writes, no lock
		read(x.Read("pos"))
		return nil
	}, FuncOptions{})
	out := r.Run(s, &cfg, Call{ID: CallID{5, 9}, Name: "probe", Time: 9_900 * ms, ViewDelay: 200 * time.Millisecond}, 0)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	if d := cmp.Diff([]string{"p2", "p1", "p0", "p1", "-", "-", "mine", "mine"}, got); d != "" {
		t.Fatalf("reads (-want +got):\n%s", d)
	}
	W := Time{Nanos: 9_900 * ms, Creator: 5}
	want := []ReadLock{
		{Path: "pos", Start: tm(9_800, 1), End: W},
		{Path: "pos", Start: tm(9_400, 1), End: Time{Nanos: 9_500 * ms}},
		{Path: "pos", Start: tm(9_000, 1), End: Time{Nanos: 9_400 * ms}},
		{Path: "pos", Start: tm(9_400, 1), End: Time{Nanos: 9_700 * ms}},
		{Path: "gone", Start: tm(9_100, 1), End: W},
		{Path: "never", End: W},
	}
	if d := cmp.Diff(want, out.Locks); d != "" {
		t.Fatalf("locks (-want +got):\n%s", d)
	}
	if tx.Caller() != 5 || tx.CallID() != (CallID{5, 9}) || tx.ViewTime() != 9_700*ms {
		t.Fatalf("identity: caller %d id %v view %d", tx.Caller(), tx.CallID(), tx.ViewTime())
	}
	if _, err := s.Commit(now, &out); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if stateOf(t, s, "pos", W) != Valid {
		t.Fatal("committed write not valid")
	}
}

func TestTxLimitsAndErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.MaxReads = 3
	cfg.Limits.MaxLocks = 2
	cfg.Limits.MaxWrites = 2
	s := mustStore(t, cfg)
	tests := []struct {
		name string
		fn   Func
		want error
	}{
		{"too many reads", func(tx *Tx, _ []byte) error {
			for i := 0; i < 4; i++ {
				tx.Read("a")
			}
			return nil
		}, ErrTooManyReads},
		{"too many locks", func(tx *Tx, _ []byte) error {
			tx.Read("a")
			tx.Read("b")
			tx.Read("c")
			return nil
		}, ErrTooManyLocks},
		{"too many writes", func(tx *Tx, _ []byte) error {
			tx.Write("a", nil)
			tx.Write("b", nil)
			tx.Write("c", nil)
			return nil
		}, ErrTooManyWrites},
		{"bad write path", func(tx *Tx, _ []byte) error { tx.Write("a/", nil); return nil }, ErrInvalidPath},
		{"bad read path", func(tx *Tx, _ []byte) error { tx.Read("//"); return nil }, ErrInvalidPath},
		{"bad children prefix", func(tx *Tx, _ []byte) error { tx.Children("a"); return nil }, ErrInvalidPath},
		{"value too large", func(tx *Tx, _ []byte) error { tx.Write("a", make([]byte, cfg.Limits.MaxValueSize+1)); return nil }, ErrValueTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			r.Register("f", tt.fn, FuncOptions{})
			out := r.Run(s, &cfg, Call{Name: "f", Time: 9_000 * ms}, 0)
			if !errors.Is(out.Err, tt.want) || len(out.Writes) != 0 {
				t.Fatalf("Run = %v with %d writes, want %v and none", out.Err, len(out.Writes), tt.want)
			}
		})
	}
}

func TestTxRandDeterministic(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	cfg := s.Config()
	draw := func(id CallID, version uint32) uint64 {
		var v uint64
		r := NewRegistry()
		r.Register("f", func(tx *Tx, _ []byte) error { v = tx.Rand().Uint64(); return nil }, FuncOptions{})
		r.Run(s, &cfg, Call{ID: id, Name: "f", Time: 1}, version)
		return v
	}
	a, b, c := draw(CallID{1, 1}, 0), draw(CallID{1, 1}, 3), draw(CallID{1, 2}, 0)
	if a != b {
		t.Fatal("a re-run drew different numbers")
	}
	if a == c {
		t.Fatal("two calls drew the same numbers")
	}
}

// TestTxReuse: Run reuses its transactions. An outcome must own its slices
// (a later run does not change it), deletions and empty values keep their
// meaning, Rand restarts from the call id, and a function that rewrites a
// path many times reads back its last value with bounded scratch.
func TestTxReuse(t *testing.T) {
	s := mustStore(t, DefaultConfig())
	cfg := s.Config()
	r := NewRegistry()
	var draws []uint64
	r.Register("put", func(tx *Tx, args []byte) error {
		tx.Read("in")
		tx.Write("a", args)
		tx.Write("empty", []byte{})
		tx.Delete("gone")
		tx.Emit("a", append([]byte("ev"), args...))
		draws = append(draws, tx.Rand().Uint64())
		return nil
	}, FuncOptions{})
	big := make([]byte, 4<<10)
	r.Register("rewrite", func(tx *Tx, args []byte) error {
		for i := 0; i < 200; i++ {
			big[0] = byte(i)
			tx.Write("x", big)
			if v, ok := tx.Read("x"); !ok || v[0] != byte(i) || len(v) != len(big) {
				return errors.New("read-your-writes lost the last write")
			}
		}
		if len(tx.vals) > 4*maxKeptTxBytes {
			return fmt.Errorf("scratch grew to %d bytes", len(tx.vals))
		}
		return nil
	}, FuncOptions{})
	first := r.Run(s, &cfg, Call{ID: CallID{1, 1}, Name: "put", Args: []byte("one"), Time: 1}, 0)
	if out := r.Run(s, &cfg, Call{ID: CallID{1, 2}, Name: "rewrite", Time: 1}, 0); out.Err != nil {
		t.Fatal(out.Err)
	}
	second := r.Run(s, &cfg, Call{ID: CallID{1, 1}, Name: "put", Args: []byte("two!"), Time: 2}, 0)
	check := func(out Outcome, arg string) {
		t.Helper()
		if out.Err != nil || len(out.Writes) != 4 || len(out.Locks) != 1 {
			t.Fatalf("outcome %+v", out)
		}
		want := []struct {
			path  string
			value []byte
			flags Flags
		}{{"a", []byte(arg), 0}, {"empty", []byte{}, 0}, {"gone", nil, 0}, {"a", []byte("ev" + arg), FlagEvent}}
		for i, w := range want {
			got := out.Writes[i]
			if got.Path != w.path || got.Flags != w.flags || (got.Value == nil) != (w.value == nil) || string(got.Value) != string(w.value) {
				t.Fatalf("write %d = %s %q (nil %v) flags %d, want %s %q (nil %v)", i, got.Path, got.Value, got.Value == nil, got.Flags, w.path, w.value, w.value == nil)
			}
			if got.Time != out.Time || &got.Locks[0] != &out.Locks[0] {
				t.Fatalf("write %d: time %v, locks not the outcome's", i, got.Time)
			}
			if cap(got.Value) != len(got.Value) {
				t.Fatalf("write %d: value has spare capacity %d", i, cap(got.Value)-len(got.Value))
			}
		}
	}
	check(first, "one")
	check(second, "two!")
	if len(draws) != 2 || draws[0] != draws[1] {
		t.Fatalf("Rand of one call id across reused transactions: %v", draws)
	}
}
