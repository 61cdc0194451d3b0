package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/netcode"
)

func testEntries() []Entry {
	locks := []netcode.ReadLock{
		{Path: "a/b", Start: netcode.Time{Nanos: 5, Version: 1, Creator: 2}, End: netcode.Time{Nanos: 9, Creator: 3}},
		{Path: "c", End: netcode.Time{Nanos: 9, Creator: 3}},
	}
	call := netcode.Call{ID: netcode.CallID{Creator: 3, Seq: 77}, Name: "move", Args: []byte{1, 2, 3}, Time: 9, ViewDelay: 40 * time.Millisecond}
	w := netcode.Time{Nanos: 9, Version: 2, Creator: 3}
	return []Entry{
		{Kind: EntryRun, Call: call, Version: 2, Locks: locks, Values: []netcode.PathValue{
			{Path: "players/3/pos", Time: w, Value: []byte{9}, Locks: locks},
			{Path: "players/3/hp", Time: w, Locks: locks}, // a deletion
			{Path: "shots/3", Time: w, Value: []byte{}, Flags: netcode.FlagEvent, Locks: locks},
		}},
		{Kind: EntryRun, Call: call, Version: 3, Err: "boom"},
		{Kind: EntryRun, Call: call, Version: 4, Err: "refused", Refused: true},
		{Kind: EntryWrite, Values: []netcode.PathValue{
			{Path: "x/y", Time: netcode.Time{Nanos: -1, Creator: 1 << 31}, Value: []byte("v"), Locks: locks[:1]},
			{Path: "x/z", Time: netcode.Time{Nanos: 1 << 62}},
		}},
		{Kind: EntryCreator, Creator: 1<<24 | 5, Born: 123456789},
		{Kind: EntryAbandon, Call: netcode.Call{ID: netcode.CallID{Creator: 3, Seq: 1 << 40}}},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range testEntries() {
		b := AppendEntry(nil, &e)
		got, err := DecodeEntry(b)
		if err != nil {
			t.Fatalf("%v: %v", e.Kind, err)
		}
		if d := cmp.Diff(e, got); d != "" {
			t.Fatalf("%v round trip (-want +got):\n%s", e.Kind, d)
		}
		for cut := range len(b) {
			if _, err := DecodeEntry(b[:cut]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v cut at %d: err %v, want ErrCorrupt", e.Kind, cut, err)
			}
		}
	}
}

// randomFinals returns sorted final values over paths paths, all below
// horizon.
func randomFinals(rng *rand.Rand, n, paths int, horizon int64) []netcode.PathValue {
	vs := make([]netcode.PathValue, 0, n)
	for range n {
		v := netcode.PathValue{
			Path:  fmt.Sprintf("p/%d/x", rng.IntN(paths)),
			Time:  netcode.Time{Nanos: 1 + rng.Int64N(horizon-1), Version: uint32(rng.IntN(2)), Creator: uint32(rng.IntN(4))},
			State: netcode.Valid,
		}
		if rng.IntN(10) > 0 {
			v.Value = make([]byte, rng.IntN(40))
			for i := range v.Value {
				v.Value[i] = byte(rng.Uint32())
			}
		}
		vs = append(vs, v)
	}
	SortValues(vs)
	return compactValues(vs)
}

func compactValues(vs []netcode.PathValue) []netcode.PathValue {
	out := vs[:0]
	for i := range vs {
		if i > 0 && vs[i].Path == out[len(out)-1].Path && vs[i].Time == out[len(out)-1].Time {
			continue
		}
		out = append(out, vs[i])
	}
	return out
}

func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vs := randomFinals(rng, 5000, 50, 1e9)
	b, err := EncodeBlock(vs, 1e9)
	if err != nil {
		t.Fatal(err)
	}
	h, got, err := DecodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(vs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	if h.Count != uint64(len(vs)) || h.Horizon != 1e9 || h.MinPath != vs[0].Path {
		t.Fatalf("header %+v", h)
	}
	if _, err := EncodeBlock(vs, vs[len(vs)-1].Time.Nanos); err == nil {
		t.Fatal("a value at the horizon was accepted")
	}
	// Any single damaged byte is caught (or lands in padding, leaving
	// the values intact).
	for range 300 {
		c := bytes.Clone(b)
		c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
		_, got, err := DecodeBlock(c)
		if err == nil && !cmp.Equal(vs, got) {
			t.Fatal("a damaged block decoded to other values")
		}
	}
}

// TestBlockLongRun: a path with more values than one run holds is split
// over runs and reads back whole.
func TestBlockLongRun(t *testing.T) {
	var vs []netcode.PathValue
	for i := range 3000 {
		vs = append(vs, netcode.PathValue{Path: "big", Time: netcode.Time{Nanos: int64(i + 1)}, Value: make([]byte, 1000), State: netcode.Valid})
	}
	b, err := EncodeBlock(vs, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := DecodeBlock(b)
	if err != nil || len(got) != len(vs) {
		t.Fatalf("got %d values, err %v", len(got), err)
	}
}

// FuzzDecodeBlock: any input decodes without panicking; what decodes is
// sorted, below its horizon, and encodes to a block that decodes to the
// same values.
func FuzzDecodeBlock(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 3))
	b, _ := EncodeBlock(randomFinals(rng, 20, 4, 1000), 1000)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, vs, err := DecodeBlock(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := EncodeBlock(vs, h.Horizon)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		_, vs2, err := DecodeBlock(again)
		if err != nil || !cmp.Equal(vs, vs2) {
			t.Fatalf("re-encoded block differs: %v", err)
		}
	})
}

func TestMergeBlocks(t *testing.T) {
	v := func(path string, n int64, val string) netcode.PathValue {
		pv := netcode.PathValue{Path: path, Time: netcode.Time{Nanos: n}, State: netcode.Valid}
		if val != "" {
			pv.Value = []byte(val)
		}
		return pv
	}
	older := []netcode.PathValue{v("a", 1, "1"), v("a", 2, "2"), v("b", 1, "x")}
	newer := []netcode.PathValue{v("a", 5, "5"), v("b", 6, "")}
	got := mergeBlocks([][]netcode.PathValue{older, newer}, 5)
	// a@1 is superseded by a@2 (≤ cut), a@2 by a@5 (≤ cut); b@1 is
	// superseded by b@6 (> cut): kept. Latest values stay, the deletion
	// b@6 as a tombstone.
	want := []netcode.PathValue{v("a", 5, "5"), v("b", 1, "x"), v("b", 6, "")}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("merge (-want +got):\n%s", d)
	}
}

// TestBlockOrder: the values of a snapshot, as the store hands them over
// (chunks in time order) and out of order or repeated, come out as a sort
// by path then time with repeats dropped would give them.
func TestBlockOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 50 {
		var chunks [][]netcode.PathValue
		var all []netcode.PathValue
		for range rng.IntN(6) {
			var c []netcode.PathValue
			for range rng.IntN(40) {
				n := rng.Int64N(100)
				if round%2 == 0 {
					n = int64(len(all)) // in time order, as finality gives them
				}
				v := netcode.PathValue{Path: fmt.Sprintf("p/%d", rng.IntN(7)), Time: netcode.Time{Nanos: n, Creator: uint32(rng.IntN(2))}}
				c = append(c, v)
				all = append(all, v)
			}
			chunks = append(chunks, c)
		}
		SortValues(all)
		all = slices.CompactFunc(all, func(a, b netcode.PathValue) bool { return a.Path == b.Path && a.Time == b.Time })
		got := blockOrder(chunks)
		if len(got) != len(all) {
			t.Fatalf("round %d: %d values, want %d", round, len(got), len(all))
		}
		for i := range all {
			if got[i].Path != all[i].Path || got[i].Time != all[i].Time {
				t.Fatalf("round %d: value %d is %s@%v, want %s@%v", round, i, got[i].Path, got[i].Time, all[i].Path, all[i].Time)
			}
		}
	}
}

// TestUvMatchesBinary: the decoders' varint reader agrees with
// binary.Uvarint on every input: canonical encodings of every length,
// overlong ones, truncated ones and overflowing ones, with bytes after.
func TestUvMatchesBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs [][]byte
	for bitsN := 0; bitsN <= 64; bitsN++ {
		for k := 0; k < 20; k++ {
			x := rng.Uint64()
			if bitsN < 64 {
				x &= 1<<bitsN - 1
			}
			b := binary.AppendUvarint(nil, x)
			for tail := 0; tail < 10; tail++ {
				inputs = append(inputs, append(slices.Clone(b), make([]byte, tail)...))
				inputs = append(inputs, b[:len(b)*tail/10]) // truncated
			}
		}
	}
	for k := 0; k < 20000; k++ {
		b := make([]byte, rng.IntN(14))
		for i := range b {
			b[i] = byte(rng.Uint32())
			if rng.IntN(4) > 0 {
				b[i] |= 0x80 // long runs of continuation bytes
			}
		}
		inputs = append(inputs, b)
	}
	inputs = append(inputs, []byte{0x80, 0}, bytes.Repeat([]byte{0xff}, 9), append(bytes.Repeat([]byte{0xff}, 9), 1),
		append(bytes.Repeat([]byte{0xff}, 9), 2), bytes.Repeat([]byte{0x80}, 11))
	for _, b := range inputs {
		want, n := binary.Uvarint(b)
		got, rest, ok := uv(b)
		if ok != (n > 0) || ok && (got != want || len(rest) != len(b)-n) {
			t.Fatalf("% x: uv = %d, %d bytes left, %v; binary.Uvarint = %d, %d", b, got, len(rest), ok, want, n)
		}
		d := decoder{b: b}
		sw, sn := binary.Varint(b)
		if sv := d.varint(); (d.err == nil) != (sn > 0) || sn > 0 && sv != sw {
			t.Fatalf("% x: varint = %d, %v; binary.Varint = %d, %d", b, sv, d.err, sw, sn)
		}
	}
}
