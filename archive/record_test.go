package archive

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// framed builds n records of varied sizes and returns the buffer with the
// offset and payload of each.
func framed(rng *rand.Rand, n int) ([]byte, []int, [][]byte) {
	var buf []byte
	var offs []int
	var ps [][]byte
	for i := range n {
		p := make([]byte, rng.IntN(100))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if i%7 == 0 {
			p = p[:0]
		}
		offs = append(offs, len(buf))
		ps = append(ps, p)
		buf = AppendRecord(buf, p)
	}
	return buf, offs, ps
}

// scanAll returns every record with its offset.
func scanAll(b []byte) (map[int64][]byte, []Damage) {
	got := map[int64][]byte{}
	sc := NewScanner(b)
	for sc.Next() {
		got[sc.Offset()] = bytes.Clone(sc.Record())
	}
	return got, sc.Damage()
}

func TestRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf, offs, ps := framed(rng, 200)
	got, dmg := scanAll(buf)
	if len(dmg) != 0 || len(got) != len(ps) {
		t.Fatalf("got %d records, damage %v; want %d, none", len(got), dmg, len(ps))
	}
	for i, off := range offs {
		if !bytes.Equal(got[int64(off)], ps[i]) {
			t.Fatalf("record %d differs", i)
		}
		if off%RecordAlign != 0 {
			t.Fatalf("record %d at unaligned offset %d", i, off)
		}
	}
}

// TestRecordBitFlips flips bits anywhere in a log: the scanner never
// returns a record that was not written at that offset, and it reads every
// record the flips did not touch.
func TestRecordBitFlips(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		buf, offs, ps := framed(rng, 50)
		touched := map[int]bool{}
		checked := false // a flip landed in a header or payload, not padding
		for range 1 + rng.IntN(4) {
			pos := rng.IntN(len(buf))
			buf[pos] ^= 1 << rng.IntN(8)
			// Find the record holding pos.
			for i := len(offs) - 1; i >= 0; i-- {
				if offs[i] <= pos {
					touched[i] = true
					checked = checked || pos < offs[i]+RecordHeader+len(ps[i])
					break
				}
			}
		}
		got, dmg := scanAll(buf)
		want := map[int64][]byte{}
		for i, off := range offs {
			want[int64(off)] = ps[i]
		}
		for off, p := range got {
			if w, ok := want[off]; !ok || !bytes.Equal(w, p) {
				t.Fatalf("seed %d: record at %d was never written there", seed, off)
			}
		}
		for i, off := range offs {
			if !touched[i] {
				if _, ok := got[int64(off)]; !ok {
					t.Fatalf("seed %d: untouched record %d at %d not read (damage %v)", seed, i, off, dmg)
				}
			}
		}
		if checked && len(dmg) == 0 {
			t.Fatalf("seed %d: flips reported no damage", seed)
		}
	}
}

// TestRecordTruncation cuts a log at every offset: the whole records before
// the cut come back, nothing else, and the rest is a tail.
func TestRecordTruncation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf, offs, ps := framed(rng, 20)
	for cut := range len(buf) + 1 {
		got, dmg := scanAll(buf[:cut])
		n := 0
		for i, off := range offs {
			if off+FramedSize(len(ps[i])) <= cut {
				n++
				if !bytes.Equal(got[int64(off)], ps[i]) {
					t.Fatalf("cut %d: record %d lost", cut, i)
				}
			}
		}
		if len(got) != n {
			t.Fatalf("cut %d: %d records, want %d", cut, len(got), n)
		}
		if len(dmg) > 1 || (len(dmg) == 1 && !dmg[0].Tail) {
			t.Fatalf("cut %d: damage %v, want at most a tail", cut, dmg)
		}
	}
}

func TestRecordZeroTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf, _, ps := framed(rng, 10)
	buf = append(buf, make([]byte, 4096)...)
	got, dmg := scanAll(buf)
	if len(got) != len(ps) {
		t.Fatalf("got %d records, want %d", len(got), len(ps))
	}
	if len(dmg) != 1 || !dmg[0].Tail || !dmg[0].Zero || dmg[0].Records != 0 || dmg[0].Bytes != 4096 {
		t.Fatalf("damage %v, want one zero tail of 4096 bytes", dmg)
	}
}

// TestRecordDamageInMiddle: a damaged record followed by good ones is
// reported as damage that is not a tail.
func TestRecordDamageInMiddle(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	buf, offs, ps := framed(rng, 10)
	buf[offs[4]+9] ^= 0xff // the damaged record's checksum
	got, dmg := scanAll(buf)
	if len(got) != len(ps)-1 {
		t.Fatalf("got %d records, want %d", len(got), len(ps)-1)
	}
	if len(dmg) != 1 || dmg[0].Tail || dmg[0].Records != 1 || dmg[0].Offset != int64(offs[4]) {
		t.Fatalf("damage %v", dmg)
	}
	if s := fmt.Sprint(dmg[0]); s == "" {
		t.Fatal("empty description")
	}
}

// FuzzScanner: on any input the scanner terminates without panicking, and
// every record it returns is a verified frame at an aligned offset:
// framing its payload again gives the same header and payload; records
// and damage together cover the input.
func FuzzScanner(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	buf, _, _ := framed(rng, 5)
	f.Add(buf)
	f.Add(buf[:len(buf)-3])
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := NewScanner(b)
		var covered int64
		for sc.Next() {
			off := sc.Offset()
			if off%RecordAlign != 0 {
				t.Fatalf("unaligned record at %d", off)
			}
			// The header and payload match a fresh frame of the payload
			// (the padding is not checked by the format).
			again := AppendRecord(nil, sc.Record())
			n := int64(RecordHeader + len(sc.Record()))
			if !bytes.Equal(again[:n], b[off:off+n]) {
				t.Fatalf("record at %d does not match its frame", off)
			}
			covered += int64(len(again))
		}
		for _, d := range sc.Damage() {
			covered += d.Bytes
		}
		if covered != int64(len(b)) {
			t.Fatalf("records and damage cover %d of %d bytes", covered, len(b))
		}
	})
}
