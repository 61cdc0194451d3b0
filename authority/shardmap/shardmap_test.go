package shardmap

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var seeds = flag.Int("shardmap.seeds", 300, "random scenarios TestMergeProperties and TestLookupReference run")

// randomEntries makes a history of changes by several writers that each
// saw only part of the others' changes, as gossip does: overlapping
// ranges, tombstones, equal versions from different writers.
func randomEntries(rng *rand.Rand) []Entry {
	prefixes := []string{"", "players/", "players/7/", "zones/"}
	nodes := 1 + rng.IntN(4)
	maps := make([]*Map, nodes)
	for i := range maps {
		maps[i] = New()
	}
	var all []Entry
	for range 5 + rng.IntN(40) {
		by := rng.IntN(nodes)
		m := maps[by]
		// Hear some of what the others did.
		if len(all) > 0 && rng.IntN(3) == 0 {
			for range rng.IntN(len(all)) + 1 {
				m.Apply(all[rng.IntN(len(all))])
			}
		}
		p := prefixes[rng.IntN(len(prefixes))]
		var r Range
		switch rng.IntN(3) {
		case 0:
			r = Whole(p)
		default:
			lo := rng.Uint32()
			r = Range{Prefix: p, Lo: lo, Hi: lo + rng.Uint32N(math.MaxUint32-lo+1)}
		}
		if rng.IntN(5) == 0 {
			if e, ok := m.Remove(r, NodeID(by)); ok {
				all = append(all, e)
			}
			continue
		}
		owners := []NodeID{NodeID(rng.IntN(5))}
		for range rng.IntN(3) {
			if o := NodeID(rng.IntN(5)); !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
		// Set refuses an overlap with what this writer sees; gossip can
		// still deliver overlapping ranges from writers who did not know
		// of each other, which Apply takes.
		e, err := m.Set(r, owners, NodeID(by))
		if err != nil {
			e = Entry{Range: r, Owners: owners, Version: m.Version() + 1, Writer: NodeID(by)}
			if _, err := m.Apply(e); err != nil {
				panic(err)
			}
		}
		all = append(all, e)
	}
	return all
}

func mapOf(t *testing.T, entries []Entry) *Map {
	t.Helper()
	m := New()
	for _, e := range entries {
		if _, err := m.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestMergeProperties: merging is idempotent, commutative and associative,
// and the result does not depend on the order entries are applied in: the
// same entries, shuffled and grouped at random, give the same map and the
// same lookups.
func TestMergeProperties(t *testing.T) {
	for seed := range uint64(*seeds) {
		rng := rand.New(rand.NewPCG(seed, 7))
		all := randomEntries(rng)
		ref := mapOf(t, all)
		fail := func(what string) {
			t.Fatalf("seed %d: %s (replay with -run TestMergeProperties -shardmap.seeds=%d)", seed, what, seed+1)
		}

		// Order independence.
		sh := slices.Clone(all)
		rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		if mapOf(t, sh).Digest() != ref.Digest() {
			fail("a shuffled order gave another map")
		}
		// Three random groups a, b, c.
		var parts [3][]Entry
		for _, e := range all {
			k := rng.IntN(3)
			parts[k] = append(parts[k], e)
		}
		a, b, c := mapOf(t, parts[0]), mapOf(t, parts[1]), mapOf(t, parts[2])
		merge := func(x, y *Map) *Map { z := x.Clone(); z.Merge(y); return z }
		if merge(a, a).Digest() != a.Digest() {
			fail("merge is not idempotent")
		}
		if merge(a, b).Digest() != merge(b, a).Digest() {
			fail("merge is not commutative")
		}
		if merge(merge(a, b), c).Digest() != merge(a, merge(b, c)).Digest() {
			fail("merge is not associative")
		}
		abc := merge(merge(a, b), c)
		if abc.Digest() != ref.Digest() || abc.Version() != ref.Version() {
			fail("the merged groups differ from the whole")
		}
		for range 20 {
			p := fmt.Sprintf("%s%d/x", []string{"players/", "players/7/", "zones/", "other/"}[rng.IntN(4)], rng.IntN(50))
			e1, ok1 := abc.Lookup(p)
			e2, ok2 := ref.Lookup(p)
			if ok1 != ok2 || !cmp.Equal(e1, e2) {
				fail(fmt.Sprintf("Lookup(%q) differs: %+v %v vs %+v %v", p, e1, ok1, e2, ok2))
			}
		}
	}
}

// lookupReference is Lookup by brute force: the longest prefix with a
// live range holding path, and there the newest entry.
func lookupReference(m *Map, path string) (Entry, bool) {
	var best *Entry
	for _, e := range m.Entries() {
		if e.Removed || !e.Range.Contains(path) {
			continue
		}
		switch {
		case best == nil, len(e.Range.Prefix) > len(best.Range.Prefix):
		case len(e.Range.Prefix) == len(best.Range.Prefix) && e.newer(best):
		default:
			continue
		}
		c := e
		best = &c
	}
	if best == nil {
		return Entry{}, false
	}
	return *best, true
}

func TestLookupReference(t *testing.T) {
	for seed := range uint64(*seeds) {
		rng := rand.New(rand.NewPCG(seed, 11))
		m := mapOf(t, randomEntries(rng))
		for range 50 {
			p := fmt.Sprintf("%s%d", []string{"players/", "players/7/", "zones/", "x/"}[rng.IntN(4)], rng.IntN(1000))
			if rng.IntN(2) == 0 {
				p += "/pos"
			}
			got, ok := m.Lookup(p)
			want, wok := lookupReference(m, p)
			if ok != wok || !cmp.Equal(got, want) {
				t.Fatalf("seed %d: Lookup(%q) = %+v %v, want %+v %v", seed, p, got, ok, want, wok)
			}
		}
	}
}

func TestSetRemoveLookup(t *testing.T) {
	m := New()
	if _, err := m.Set(Whole(""), []NodeID{1, 2}, 1); err != nil {
		t.Fatal(err)
	}
	lo := Range{Prefix: "players/", Lo: 0, Hi: math.MaxUint32 / 2}
	hi := Range{Prefix: "players/", Lo: math.MaxUint32/2 + 1, Hi: math.MaxUint32}
	for i, r := range []Range{lo, hi} {
		if _, err := m.Set(r, []NodeID{NodeID(3 + i)}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Set(Whole("players/"), []NodeID{9}, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("overlapping Set: %v, want ErrInvalid", err)
	}
	for _, tc := range []struct {
		path  string
		owner NodeID
	}{
		{"zones/1", 1},
		{"players", 1}, // not under players/
		{"players/a/pos", ownerOf("a", 3, 4)},
		{"players/b", ownerOf("b", 3, 4)},
		{"players/c/x/y", ownerOf("c", 3, 4)},
	} {
		e, ok := m.Lookup(tc.path)
		if p, _ := e.Primary(); !ok || p != tc.owner {
			t.Errorf("Lookup(%q) = %+v, %v; want primary %d", tc.path, e, ok, tc.owner)
		}
	}
	if !m.Owns(2, "zones/1") || m.Owns(2, "players/a") {
		t.Error("Owns disagrees with the ranges")
	}
	// Remove the upper half: its paths fall back to the whole map.
	if _, ok := m.Remove(hi, 1); !ok {
		t.Fatal("Remove of a live range")
	}
	if _, ok := m.Remove(hi, 1); ok {
		t.Error("Remove of a removed range reported true")
	}
	for _, seg := range []string{"a", "b", "c", "d", "e"} {
		e, _ := m.Lookup("players/" + seg)
		want := NodeID(1)
		if SegmentHash(seg) <= lo.Hi {
			want = 3
		}
		if p, _ := e.Primary(); p != want {
			t.Errorf("after removing the upper half, players/%s → %d, want %d", seg, p, want)
		}
	}
	// A tombstone wins over the older live entry everywhere, and Compact
	// drops it once every member is past it.
	old := New()
	if _, err := old.Apply(Entry{Range: hi, Owners: []NodeID{4}, Version: 3, Writer: 1}); err != nil {
		t.Fatal(err)
	}
	old.Merge(m)
	if old.Digest() != m.Digest() {
		t.Error("a map holding the older live entry did not converge on the tombstone")
	}
	if n := m.Compact(m.Version() + 1); n != 1 {
		t.Errorf("Compact dropped %d tombstones, want 1", n)
	}
}

// ownerOf returns which of two owners a segment's hash falls to when the
// hash space is split in halves.
func ownerOf(seg string, low, high NodeID) NodeID {
	if SegmentHash(seg) <= math.MaxUint32/2 {
		return low
	}
	return high
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		e  Entry
		ok bool
	}{
		{Entry{Range: Whole(""), Owners: []NodeID{1}}, true},
		{Entry{Range: Whole("a/b/"), Owners: []NodeID{1, 2}}, true},
		{Entry{Range: Whole("a/b"), Owners: []NodeID{1}}, false},
		{Entry{Range: Whole("/a/"), Owners: []NodeID{1}}, false},
		{Entry{Range: Whole("a//"), Owners: []NodeID{1}}, false},
		{Entry{Range: Whole("a\xff/"), Owners: []NodeID{1}}, false},
		{Entry{Range: Range{Prefix: "a/", Lo: 5, Hi: 4}, Owners: []NodeID{1}}, false},
		{Entry{Range: Whole("a/")}, false},
		{Entry{Range: Whole("a/"), Owners: []NodeID{1, 1}}, false},
		{Entry{Range: Whole("a/"), Removed: true}, true},
		{Entry{Range: Whole("a/"), Owners: []NodeID{1}, Removed: true}, false},
	} {
		if err := tc.e.validate(); (err == nil) != tc.ok {
			t.Errorf("validate(%+v) = %v, want ok %v", tc.e, err, tc.ok)
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	for seed := range uint64(50) {
		m := mapOf(t, randomEntries(rand.New(rand.NewPCG(seed, 3))))
		b := m.AppendBinary(nil)
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if d.Digest() != m.Digest() || d.Version() != m.Version() {
			t.Fatalf("seed %d: round trip changed the map", seed)
		}
		for cut := range len(b) {
			if _, err := Decode(b[:cut]); err == nil {
				t.Fatalf("seed %d: a %d-byte prefix of a %d-byte encoding decoded", seed, cut, len(b))
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for seed := range uint64(5) {
		f.Add(AppendEntries(nil, randomEntries(rand.New(rand.NewPCG(seed, 5)))))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v does not wrap ErrDecode", err)
			}
			return
		}
		// What decodes re-encodes to a map that decodes the same.
		again, err := Decode(m.AppendBinary(nil))
		if err != nil || again.Digest() != m.Digest() {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}

// TestParseRange: String's form, with or without quotes, parses back;
// malformed ranges are refused.
func TestParseRange(t *testing.T) {
	for _, r := range []Range{Whole(""), Whole("players/"), {Prefix: "players/", Lo: 0, Hi: 0x7fffffff}, {Prefix: "a/b/", Lo: 0x80000000, Hi: math.MaxUint32}} {
		s := r.String()
		for _, in := range []string{s, strings.ReplaceAll(s, `"`, "")} {
			got, err := ParseRange(in)
			if err != nil || got != r {
				t.Errorf("ParseRange(%q) = %v, %v: want %v", in, got, err, r)
			}
		}
	}
	for _, bad := range []string{"players", "/players/", "players/[1-]", "players/[2-1]", "players/[x-y]", "players/1-2]", "players/[100000000-1]"} {
		if r, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) = %v: want an error", bad, r)
		}
	}
}
