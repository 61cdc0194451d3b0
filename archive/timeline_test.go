package archive

import (
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// TestTimeline: a match read back from blocks and log: values by time,
// the state at any time, events, and a logged value that a late write
// invalidated left out.
func TestTimeline(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, testOptions(dir))
	sec := int64(time.Second)
	// Final values in a block: p moved 1, 2, 3 at seconds 1..3.
	a.AddFinal([]netcode.PathValue{
		finalValue("p/pos", 1*sec, "1"), finalValue("p/pos", 2*sec, "2"), finalValue("p/pos", 3*sec, "3"),
	})
	a.Snapshot(4*sec, 0, nil)
	if err := a.WaitSnapshots(); err != nil {
		t.Fatal(err)
	}
	// The log: at 5 s a call read p/pos (latest at 3 s) and wrote q; a
	// late raw write at 4.5 s lands inside that read, so q turns invalid;
	// an event at 5.1 s.
	w := netcode.Time{Nanos: 5 * sec, Creator: 2}
	lock := []netcode.ReadLock{{Path: "p/pos", Start: netcode.Time{Nanos: 3 * sec, Creator: 1}, End: w}}
	entries := []Entry{
		{Kind: EntryRun, Now: 5 * sec, Call: netcode.Call{ID: netcode.CallID{Creator: 2, Seq: 1}, Name: "f", Time: 5 * sec},
			Locks: lock, Values: []netcode.PathValue{{Path: "q", Time: w, Value: []byte("stale"), Locks: lock}}},
		{Kind: EntryWrite, Now: 5*sec + 100, Values: []netcode.PathValue{{Path: "p/pos", Time: netcode.Time{Nanos: 4*sec + sec/2, Creator: 1}, Value: []byte("4")}}},
		{Kind: EntryWrite, Now: 5*sec + 200, Values: []netcode.PathValue{{Path: "fx/boom", Time: netcode.Time{Nanos: 5*sec + sec/10, Creator: 1}, Value: []byte("!"), Flags: netcode.FlagEvent}}},
	}
	for i := range entries {
		if err := a.Append(entries[i].Now, &entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	tl, err := ReadTimeline(testOptions(dir), netcode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s, e := tl.Span(); s != 1*sec || e != 5*sec+sec/10+1 {
		t.Fatalf("span %d..%d", s, e)
	}
	for _, tc := range []struct {
		at   int64
		want string
	}{{1 * sec, "1"}, {2*sec + 1, "2"}, {4 * sec, "3"}, {5 * sec, "4"}} {
		if v, ok := tl.At("p/pos", tc.at); !ok || string(v.Value) != tc.want {
			t.Fatalf("p/pos at %d: %q %v, want %q", tc.at, v.Value, ok, tc.want)
		}
	}
	if _, ok := tl.At("p/pos", sec-1); ok {
		t.Fatal("a value before the first")
	}
	if len(tl.History("q")) != 0 {
		t.Fatalf("the invalidated value is in the timeline: %v", tl.History("q"))
	}
	var got []string
	tl.Range(4*sec, 6*sec, func(v netcode.PathValue) bool { got = append(got, v.Path+"="+string(v.Value)); return true })
	if len(got) != 2 || got[0] != "p/pos=4" || got[1] != "fx/boom=!" {
		t.Fatalf("range 4..6 s: %v", got)
	}
	if !tl.Report().Clean() {
		t.Fatalf("report %v", tl.Report())
	}
}
