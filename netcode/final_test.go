package netcode

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCollectAndLoadFinal: the values Tick makes final, loaded into a new
// store, give the same reads at and after the rewind cut, and later
// writes lock them as they would in the first store.
func TestCollectAndLoadFinal(t *testing.T) {
	cfg := DefaultConfig()
	a, _ := NewStore(cfg)
	a.CollectFinal(true)
	now := int64(10 * time.Second)
	var taken []PathValue
	for i := range 300 {
		now += int64(20 * time.Millisecond)
		path := fmt.Sprintf("p/%d", i%7)
		prev, _ := a.Latest(path, Time{Nanos: now, Creator: 1})
		v := PathValue{Path: path, Time: Time{Nanos: now, Creator: 1}, Value: []byte{byte(i)},
			Locks: []ReadLock{{Path: path, Start: prev.Time, End: Time{Nanos: now, Creator: 1}}}}
		if i%11 == 0 {
			v.Value = nil // a deletion
		}
		if _, err := a.Insert(now, v); err != nil {
			t.Fatal(err)
		}
		a.Tick(now)
		taken = append(taken, a.TakeFinal()...)
	}
	if len(taken) == 0 || len(taken[0].Locks) != 0 {
		t.Fatalf("%d values taken", len(taken))
	}
	// The taken values are exactly the store's final values (trimmed).
	h := a.Horizon()
	b, _ := NewStore(cfg)
	if err := b.LoadFinal(h, taken); err != nil {
		t.Fatal(err)
	}
	if b.Horizon() != h {
		t.Fatalf("horizon %d, want %d", b.Horizon(), h)
	}
	cut := h - int64(cfg.MaxRewind)
	for i := range 7 {
		path := fmt.Sprintf("p/%d", i)
		var wantH, gotH []PathValue
		a.History(path, func(v PathValue) bool {
			if v.Time.Nanos < h {
				wantH = append(wantH, v)
			}
			return true
		})
		// The first store trims a path lazily (when it gains a final
		// value); both keep the latest value before the cut and all after.
		for len(wantH) > 1 && wantH[1].Time.Nanos < cut {
			wantH = wantH[1:]
		}
		b.History(path, func(v PathValue) bool { gotH = append(gotH, v); return true })
		if d := cmp.Diff(wantH, gotH); d != "" {
			t.Fatalf("%s history (-first +loaded):\n%s", path, d)
		}
		for _, at := range []int64{cut + 1, h - 1, h + 1} {
			wv, wok := a.Latest(path, Time{Nanos: at})
			gv, gok := b.Latest(path, Time{Nanos: at})
			if at < h && (wok != gok || wv.Time != gv.Time) {
				t.Fatalf("%s latest before %d: %v %v, loaded %v %v", path, at, wv.Time, wok, gv.Time, gok)
			}
		}
	}
	// A later write locking a loaded final value is valid.
	last := taken[len(taken)-1]
	w := Time{Nanos: now + 1, Creator: 2}
	ch, err := b.Insert(now, PathValue{Path: "q", Time: w, Value: []byte("x"),
		Locks: []ReadLock{{Path: last.Path, Start: last.Time, End: w}}})
	if err != nil || ch[0].New != Valid {
		t.Fatalf("write over a loaded final: %v %v", ch, err)
	}
	// Loaded values are not reported as newly final.
	b.CollectFinal(true)
	b.Tick(now)
	for _, v := range b.TakeFinal() {
		if v.Time.Nanos < h {
			t.Fatalf("loaded value %v reported final again", v.Time)
		}
	}
}

func TestLoadFinalRefuses(t *testing.T) {
	s, _ := NewStore(DefaultConfig())
	ok := PathValue{Path: "a", Time: Time{Nanos: 5}, Value: []byte{1}}
	for name, tc := range map[string]struct {
		vs      []PathValue
		horizon int64
		want    error
	}{
		"at horizon":   {[]PathValue{ok}, 5, ErrTooNew},
		"locks":        {[]PathValue{{Path: "a", Time: Time{Nanos: 5}, Locks: []ReadLock{{Path: "b"}}}}, 10, ErrBadLock},
		"out of order": {[]PathValue{ok, {Path: "a", Time: Time{Nanos: 4}}}, 10, ErrConflict},
		"bad path":     {[]PathValue{{Path: "/x", Time: Time{Nanos: 5}}}, 10, ErrInvalidPath},
		"zero time":    {[]PathValue{{Path: "a"}}, 10, ErrZeroTime},
	} {
		if err := s.LoadFinal(tc.horizon, tc.vs); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if st := s.Stats(); st.FinalValues != 0 || st.Paths != 0 {
		t.Fatalf("a refused load stored something: %+v", st)
	}
}
