package archive

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// RecoveryMode says what opening an archive does about damage.
type RecoveryMode uint8

const (
	// RecoverTail tolerates a torn or zero-filled tail at the end of the
	// log (what a crash leaves), cutting it off, and refuses to open on
	// any other damage. The default.
	RecoverTail RecoveryMode = iota
	// RecoverSkip skips damaged records anywhere in the log, and blocks
	// that cannot be rebuilt, reporting what was lost.
	RecoverSkip
	// RecoverStrict refuses to open on any damage, a torn tail included.
	RecoverStrict
)

func (m RecoveryMode) String() string {
	switch m {
	case RecoverTail:
		return "tail"
	case RecoverSkip:
		return "skip"
	case RecoverStrict:
		return "strict"
	}
	return fmt.Sprintf("RecoveryMode(%d)", uint8(m))
}

// ParseRecoveryMode parses "tail", "skip" or "strict".
func ParseRecoveryMode(s string) (RecoveryMode, error) {
	for _, m := range []RecoveryMode{RecoverTail, RecoverSkip, RecoverStrict} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: recovery mode %q: want tail, skip or strict", ErrBadOptions, s)
}

// SegmentDamage is damage met in one log segment.
type SegmentDamage struct {
	Segment uint64
	Damage
	// Decode is set when the stretch is one record that verified but
	// did not decode as an entry.
	Decode string
}

func (d SegmentDamage) String() string {
	if d.Decode != "" {
		return fmt.Sprintf("segment %d: record at offset %d does not decode: %s", d.Segment, d.Offset, d.Decode)
	}
	return fmt.Sprintf("segment %d: %v", d.Segment, d.Damage)
}

// Report says what opening (or verifying) an archive found.
type Report struct {
	ManifestSeq uint64
	// BadManifests lists manifest copies that were missing or did not
	// verify (the newest good copy was used).
	BadManifests []string
	Blocks       int
	FinalValues  uint64
	Segments     int
	Entries      int
	// Damage lists what the log scan skipped; Truncated is how many tail
	// bytes were cut off the last segment (in every copy).
	Damage    []SegmentDamage
	Truncated int64
	// MissingSegments lists log segments absent from every mirror.
	MissingSegments []uint64
	// SegmentCopies lists log segment copies that were missing or
	// damaged in a mirror while another copy was whole.
	SegmentCopies []string
	// Shards lists blocks read with shards missing or damaged (rebuilt
	// from parity).
	Shards []ShardLoss
	// LostBlocks lists blocks that could not be rebuilt.
	LostBlocks []string
	// Repaired lists what opening rewrote (shards, segment copies).
	Repaired []string
}

// Clean reports whether nothing at all was damaged or missing.
func (r *Report) Clean() bool {
	return len(r.BadManifests) == 0 && len(r.Damage) == 0 && len(r.MissingSegments) == 0 &&
		len(r.SegmentCopies) == 0 && len(r.Shards) == 0 && len(r.LostBlocks) == 0
}

// SkippedBytes is the log bytes recovery could not read back: the damaged
// stretches it skipped, a torn tail (cut off, Truncated) among them;
// zero-filled stretches, which held no record, are left out.
func (r *Report) SkippedBytes() int64 {
	var n int64
	for _, d := range r.Damage {
		if !d.Zero {
			n += d.Bytes
		}
	}
	return n
}

// Lost reports whether data was lost for good: log records skipped or
// segments missing, or blocks that could not be rebuilt. A zero-filled
// tail holds no record and is not a loss.
func (r *Report) Lost() bool {
	for _, d := range r.Damage {
		if !d.Zero {
			return true
		}
	}
	return len(r.MissingSegments) > 0 || len(r.LostBlocks) > 0
}

// LostRecords returns a lower bound on the log records lost and the bytes
// skipped.
func (r *Report) LostRecords() (records int, bytes int64) {
	for _, d := range r.Damage {
		records += d.Records
		bytes += d.Bytes
	}
	return records, bytes
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest seq %d, %d blocks (%d final values), %d log segments (%d entries)",
		r.ManifestSeq, r.Blocks, r.FinalValues, r.Segments, r.Entries)
	for _, m := range r.BadManifests {
		fmt.Fprintf(&b, "\nmanifest copy unusable: %s", m)
	}
	for _, d := range r.Damage {
		fmt.Fprintf(&b, "\nlog: %v", d)
	}
	if r.Truncated > 0 {
		fmt.Fprintf(&b, "\nlog: %d tail bytes cut off", r.Truncated)
	}
	for _, s := range r.MissingSegments {
		fmt.Fprintf(&b, "\nlog: segment %d missing from every mirror", s)
	}
	for _, s := range r.SegmentCopies {
		fmt.Fprintf(&b, "\nlog copy unusable: %s", s)
	}
	for _, s := range r.Shards {
		fmt.Fprintf(&b, "\nblock %016x: shards missing %v, damaged %v (rebuilt from parity)", s.Block, s.Missing, s.Damaged)
	}
	for _, s := range r.LostBlocks {
		fmt.Fprintf(&b, "\nLOST: %s", s)
	}
	for _, s := range r.Repaired {
		fmt.Fprintf(&b, "\nrepaired: %s", s)
	}
	return b.String()
}

// segRecord is one verified record of a segment: its offset, its payload
// length and the copy it was read from.
type segRecord struct {
	off int
	n   uint32
	src uint32
}

func (r segRecord) size() int { return FramedSize(int(r.n)) }

// payload returns r's payload, in the copy it was read from.
func (s *segmentScan) payload(r segRecord) []byte {
	o := r.off + RecordHeader
	return s.copies[r.src][o : o+int(r.n) : o+int(r.n)]
}

// segmentScan is a segment read from its mirrors.
type segmentScan struct {
	index   uint64
	copies  [][]byte // per mirror; nil when missing
	records []segRecord
	damage  []Damage
	ends    []int64 // per copy: just past its last verified record
	whole   int     // the longest copy with no damage at all, or -1
	length  int     // the longest copy
}

// scanSegment reads segment index from every mirror and unites their
// records: the mirrors receive the same bytes, so a record that verifies
// at an offset in any copy is the record at that offset. Damage is what
// no copy can read.
func scanSegment(fsys FS, dirs []string, index uint64) (*segmentScan, error) {
	s := &segmentScan{index: index, whole: -1}
	byOff := map[int]segRecord{}
	present := 0
	for i, d := range dirs {
		b, err := fsys.ReadFile(filepath.Join(d, segName(index)))
		if err != nil {
			if !notExist(err) {
				return nil, err
			}
			s.copies = append(s.copies, nil)
			s.ends = append(s.ends, 0)
			continue
		}
		present++
		s.copies = append(s.copies, b)
		s.length = max(s.length, len(b))
		sc := NewScanner(b)
		if len(dirs) == 1 {
			// One copy: its records and damage are the segment's.
			s.records = make([]segRecord, 0, len(b)/128+1)
			for sc.Next() {
				s.records = append(s.records, segRecord{off: int(sc.Offset()), n: uint32(len(sc.Record())), src: uint32(i)})
			}
			s.damage = sc.Damage()
			s.ends = append(s.ends, sc.End())
			if len(s.damage) == 0 {
				s.whole = 0
			}
			return s, nil
		}
		for sc.Next() {
			off := int(sc.Offset())
			if _, ok := byOff[off]; !ok {
				byOff[off] = segRecord{off: off, n: uint32(len(sc.Record())), src: uint32(i)}
			}
		}
		s.ends = append(s.ends, sc.End())
		if len(sc.Damage()) == 0 && (s.whole < 0 || len(b) > len(s.copies[s.whole])) {
			s.whole = i
		}
	}
	if present == 0 {
		return nil, nil
	}
	offs := make([]int, 0, len(byOff))
	for o := range byOff {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	o, k := 0, 0
	for o < s.length {
		for k < len(offs) && offs[k] < o {
			k++ // a record overlapping one taken (only after damage)
		}
		if k < len(offs) && offs[k] == o {
			r := byOff[o]
			s.records = append(s.records, r)
			o += r.size()
			k++
			continue
		}
		next := s.length
		if k < len(offs) {
			next = offs[k]
		}
		s.damage = append(s.damage, s.describe(o, next, k == len(offs)))
		o = next
	}
	return s, nil
}

// describe builds the Damage of [from, to) from the copies' bytes there.
func (s *segmentScan) describe(from, to int, tail bool) Damage {
	d := Damage{Offset: int64(from), Bytes: int64(to - from), Tail: tail, Zero: true}
	for _, b := range s.copies {
		if len(b) <= from {
			continue
		}
		part := b[from:min(to, len(b))]
		for _, c := range part {
			if c != 0 {
				d.Zero = false
				break
			}
		}
		n := 0
		for off := from; off < min(to, len(b)); off += RecordAlign {
			if looksLikeHeader(b, off) {
				n++
			}
		}
		d.Records = max(d.Records, n)
	}
	if d.Records == 0 && !d.Zero {
		d.Records = 1
	}
	return d
}

// segmentIndexes lists the segment indexes present in any mirror, sorted.
func segmentIndexes(fsys FS, dirs []string) ([]uint64, error) {
	seen := map[uint64]bool{}
	for _, d := range dirs {
		names, err := fsys.ReadDir(d)
		if err != nil {
			if notExist(err) {
				continue
			}
			return nil, err
		}
		for _, n := range names {
			base, ok := strings.CutSuffix(n, segSuffix)
			if !ok {
				continue
			}
			idx, err := strconv.ParseUint(base, 10, 64)
			if err != nil || segName(idx) != n {
				continue
			}
			seen[idx] = true
		}
	}
	out := make([]uint64, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	slices.Sort(out)
	return out, nil
}

// isSegHeader reports whether p is the header payload of segment index.
func isSegHeader(p []byte, index uint64) bool {
	return len(p) == 16 && string(p[:8]) == segMagic && binary.LittleEndian.Uint64(p[8:]) == index
}
