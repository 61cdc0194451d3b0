package archive

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/netcode"
)

func testOptions(dirs ...string) Options {
	o := DefaultOptions(dirs[0])
	o.Dirs = dirs
	o.FlushEvery = time.Millisecond
	o.SegmentSize = 64 << 10
	o.Chunk = 4096
	return o
}

func mustOpen(t testing.TB, o Options) *Archive {
	t.Helper()
	a, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return a
}

// writeEntry is a raw write of one value, path and bytes made from i.
func writeEntry(i int) Entry {
	return Entry{Kind: EntryWrite, Values: []netcode.PathValue{{
		Path:  fmt.Sprintf("w/%d", i%17),
		Time:  netcode.Time{Nanos: int64(1000 + i), Creator: 1},
		Value: []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("x", i%50))),
	}}}
}

// appendEntries logs entries i in [from, to) at Now = 1000+i.
func appendEntries(t testing.TB, a *Archive, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		e := writeEntry(i)
		if err := a.Append(int64(1000+i), &e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// entryIndex returns the i an entry was made from, or -1 if it is not
// exactly writeEntry(i) stamped 1000+i: a wrong value.
func entryIndex(e Entry) int {
	i := int(e.Now - 1000)
	if i < 0 || !cmp.Equal(e, withNow(writeEntry(i), e.Now)) {
		return -1
	}
	return i
}

func withNow(e Entry, now int64) Entry { e.Now = now; return e }

// checkSubsequence fails unless got is entries made by writeEntry in
// increasing order with no wrong one, and returns their indexes.
func checkSubsequence(t *testing.T, got []Entry) []int {
	t.Helper()
	var idx []int
	for k, e := range got {
		i := entryIndex(e)
		if i < 0 {
			t.Fatalf("entry %d is not one that was written: %+v", k, e)
		}
		if len(idx) > 0 && i <= idx[len(idx)-1] {
			t.Fatalf("entry %d (%d) out of order after %d", k, i, idx[len(idx)-1])
		}
		idx = append(idx, i)
	}
	return idx
}

func TestLogReopen(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, testOptions(dir))
	appendEntries(t, a, 0, 3000)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Log.Segments < 3 {
		t.Fatalf("%d segments, want several (64 KiB each)", st.Log.Segments)
	}
	a = mustOpen(t, testOptions(dir))
	st := a.Recovered()
	idx := checkSubsequence(t, st.Entries)
	if len(idx) != 3000 || !st.Report.Clean() {
		t.Fatalf("%d entries, report %v", len(idx), &st.Report)
	}
	// And again, appending after the reopen.
	appendEntries(t, a, 3000, 3100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = mustOpen(t, testOptions(dir))
	if idx := checkSubsequence(t, a.Recovered().Entries); len(idx) != 3100 {
		t.Fatalf("%d entries after a second reopen", len(idx))
	}
	a.Close()
}

// waitFor polls cond every millisecond for at most 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDurableHorizon(t *testing.T) {
	a := mustOpen(t, testOptions(t.TempDir()))
	defer a.Close()
	appendEntries(t, a, 0, 10)
	// The flusher makes it durable within a flush window, unasked.
	waitFor(t, "the durable horizon", func() bool { return a.Durable() == 1009 })
	appendEntries(t, a, 10, 20)
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := a.Durable(); d != 1019 {
		t.Fatalf("durable %d after Sync, want 1019", d)
	}
}

// lastSegment returns the path of the newest log segment in dir.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(dir, walDir))
	if err != nil || len(names) == 0 {
		t.Fatalf("no segment: %v", err)
	}
	return filepath.Join(dir, walDir, names[len(names)-1].Name())
}

// copyTree copies dir into a new temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestTruncatedTail cuts the last segment at 20 offsets (as a crash
// can): the tail mode opens with the entries before the cut, never a wrong
// one; the strict mode refuses unless the cut fell between records.
func TestTruncatedTail(t *testing.T) {
	base := t.TempDir()
	a := mustOpen(t, testOptions(base))
	appendEntries(t, a, 0, 600)
	a.Close()
	seg := lastSegment(t, base)
	full, _ := os.ReadFile(seg)
	rel, _ := filepath.Rel(base, seg)
	rng := rand.New(rand.NewPCG(4, 4))
	cuts := []int{0, 1, segHdrSize - 1, segHdrSize, segHdrSize + 1, len(full) - 1}
	for range 14 {
		cuts = append(cuts, rng.IntN(len(full)))
	}
	for k, cut := range cuts {
		dir := copyTree(t, base)
		if err := os.Truncate(filepath.Join(dir, rel), int64(cut)); err != nil {
			t.Fatal(err)
		}
		a, err := Open(testOptions(dir))
		if err != nil {
			t.Fatalf("cut %d: tail mode refused: %v", cut, err)
		}
		st := a.Recovered()
		idx := checkSubsequence(t, st.Entries)
		for k, i := range idx {
			if i != k {
				t.Fatalf("cut %d: entry %d is %d: a hole before the cut", cut, k, i)
			}
		}
		for _, d := range st.Report.Damage {
			if !d.Tail {
				t.Fatalf("cut %d: damage %v is not a tail", cut, d)
			}
		}
		if k%3 != 0 {
			a.Close()
			continue
		}
		// Appending after a torn tail, then reopening, loses nothing.
		appendEntries(t, a, 10000, 10005)
		a.Close()
		a = mustOpen(t, testOptions(dir))
		if n := len(checkSubsequence(t, a.Recovered().Entries)); n != len(idx)+5 {
			t.Fatalf("cut %d: %d entries after appending 5 to %d", cut, n, len(idx))
		}
		a.Close()
	}
	// Strict refuses a cut inside a record.
	dir := copyTree(t, base)
	os.Truncate(filepath.Join(dir, rel), int64(len(full)-3))
	o := testOptions(dir)
	o.Recover = RecoverStrict
	if _, err := Open(o); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("strict mode opened a torn log: %v", err)
	}
}

// TestZeroTail: a zero-filled tail (a file extended, never written) holds
// no record and loses nothing.
func TestZeroTail(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, testOptions(dir))
	appendEntries(t, a, 0, 100)
	a.Close()
	seg := lastSegment(t, dir)
	f, _ := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 8192))
	f.Close()
	a = mustOpen(t, testOptions(dir))
	st := a.Recovered()
	if n := len(checkSubsequence(t, st.Entries)); n != 100 || st.Report.Lost() || len(st.Report.Damage) != 1 || !st.Report.Damage[0].Zero {
		t.Fatalf("%d entries, report %v", n, &st.Report)
	}
	a.Close()
}

// TestSegmentBitFlips damages a segment in the middle of the log: the tail
// mode refuses to start, the skip mode opens with every entry the damage
// did not touch and never a wrong one.
func TestSegmentBitFlips(t *testing.T) {
	base := t.TempDir()
	a := mustOpen(t, testOptions(base))
	appendEntries(t, a, 0, 1500)
	a.Close()
	names, _ := os.ReadDir(filepath.Join(base, walDir))
	if len(names) < 2 {
		t.Fatalf("%d segments", len(names))
	}
	rel := filepath.Join(walDir, names[0].Name()) // not the last
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 11))
		dir := copyTree(t, base)
		p := filepath.Join(dir, rel)
		b, _ := os.ReadFile(p)
		flips := 1 + rng.IntN(5)
		for range flips {
			b[segHdrSize+rng.IntN(len(b)-segHdrSize)] ^= 1 << rng.IntN(8)
		}
		os.WriteFile(p, b, 0o644)
		o := testOptions(dir)
		if a, err := Open(o); err == nil {
			a.Close()
			t.Fatalf("seed %d: tail mode opened a log damaged in the middle", seed)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("seed %d: tail mode: %v", seed, err)
		}
		o.Recover = RecoverSkip
		a, err2 := Open(o)
		if err2 != nil {
			t.Fatalf("seed %d: skip mode: %v", seed, err2)
		}
		st := a.Recovered()
		idx := checkSubsequence(t, st.Entries)
		lost, _ := st.Report.LostRecords()
		if len(idx)+lost < 1500 && len(st.Report.Damage) == 0 {
			t.Fatalf("seed %d: %d entries and no damage reported", seed, len(idx))
		}
		if len(idx) < 1500-flips*2 {
			t.Fatalf("seed %d: %d entries after %d flips", seed, len(idx), flips)
		}
		a.Close()
	}
}

// finalValue makes a final value of path p at nanos n.
func finalValue(p string, n int64, v string) netcode.PathValue {
	return netcode.PathValue{Path: p, Time: netcode.Time{Nanos: n, Creator: 1}, Value: []byte(v), State: netcode.Valid}
}

func collectFinals(t *testing.T, st *State) []netcode.PathValue {
	t.Helper()
	var out []netcode.PathValue
	if err := st.ScanFinals(func(v netcode.PathValue) error { out = append(out, v); return nil }); err != nil {
		t.Fatal(err)
	}
	SortValues(out)
	return out
}

// snapshotRounds logs entries and snapshots final values in rounds; round
// r finalizes values at nanos in [r*100, r*100+100) and declares the log
// before it obsolete. It returns every final value.
func snapshotRounds(t *testing.T, a *Archive, rounds int) []netcode.PathValue {
	t.Helper()
	var all []netcode.PathValue
	for r := range rounds {
		appendEntries(t, a, r*100, r*100+100)
		var vs []netcode.PathValue
		for i := range 100 {
			vs = append(vs, finalValue(fmt.Sprintf("f/%d", i%13), int64(1000+r*100+i), fmt.Sprint(r, i)))
		}
		a.AddFinal(vs)
		all = append(all, vs...)
		if err := a.Sync(); err != nil {
			t.Fatal(err)
		}
		a.Snapshot(int64(1000+r*100+100), int64(1000+r*100), []byte(fmt.Sprint("meta ", r)))
		if err := a.WaitSnapshots(); err != nil {
			t.Fatal(err)
		}
	}
	SortValues(all)
	return all
}

func TestSnapshotCompactionReopen(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.SegmentSize = 1 << 16
	a := mustOpen(t, o)
	want := snapshotRounds(t, a, 40)
	st := a.Stats()
	if st.Compactions == 0 || st.Blocks >= 40 {
		t.Fatalf("%d blocks after %d compactions", st.Blocks, st.Compactions)
	}
	a.Close()
	a = mustOpen(t, o)
	rs := a.Recovered()
	if d := cmp.Diff(want, collectFinals(t, rs)); d != "" {
		t.Fatalf("finals (-want +got):\n%s", d)
	}
	if string(rs.Meta) != "meta 39" || rs.Horizon != 1000+39*100+100 {
		t.Fatalf("meta %q horizon %d", rs.Meta, rs.Horizon)
	}
	// The log keeps at least what is not obsolete: entries from 3900 on.
	idx := checkSubsequence(t, rs.Entries)
	if len(idx) == 0 || idx[len(idx)-1] != 3999 || idx[0] > 3900 {
		t.Fatalf("log entries %d..%d", idx[0], idx[len(idx)-1])
	}
	if len(idx) > 2000 {
		t.Fatalf("%d log entries kept: obsolete segments not removed", len(idx))
	}
	if !rs.Report.Clean() {
		t.Fatalf("report %v", &rs.Report)
	}
	a.Close()
}

// TestCompactionDropsHistory: with a short KeepHistory, superseded values
// older than it go, each path's latest value stays.
func TestCompactionDropsHistory(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.KeepHistory = 500 // ns
	a := mustOpen(t, o)
	all := snapshotRounds(t, a, 16)
	a.Close()
	a = mustOpen(t, o)
	got := collectFinals(t, a.Recovered())
	a.Close()
	if len(got) >= len(all) {
		t.Fatalf("%d values kept of %d", len(got), len(all))
	}
	latest := map[string]netcode.PathValue{}
	for _, v := range all {
		latest[v.Path] = v
	}
	for p, v := range latest {
		if !slices.ContainsFunc(got, func(g netcode.PathValue) bool { return cmp.Equal(g, v) }) {
			t.Fatalf("latest value of %s dropped", p)
		}
	}
}

func TestManifestCopies(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, testOptions(dir))
	want := snapshotRounds(t, a, 3)
	a.Close()
	// One copy damaged: the other serves.
	p := filepath.Join(dir, "MANIFEST.0")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o644)
	a = mustOpen(t, testOptions(dir))
	rs := a.Recovered()
	if len(rs.Report.BadManifests) != 1 || !cmp.Equal(want, collectFinals(t, rs)) {
		t.Fatalf("report %v", &rs.Report)
	}
	a.Close()
	// Every copy gone while blocks remain: refused, not started afresh.
	os.Remove(filepath.Join(dir, "MANIFEST.0"))
	os.Remove(filepath.Join(dir, "MANIFEST.1"))
	if _, err := Open(testOptions(dir)); !errors.Is(err, ErrLost) {
		t.Fatalf("open without a manifest: %v", err)
	}
}
