package archive

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record framing. Every record starts at an offset that is a multiple of
// RecordAlign, so its sentinel and length share one aligned 8-byte word
// and a crash can never leave a torn length behind a good sentinel:
//
//	offset 0  uint32 Sentinel
//	offset 4  uint32 L, the payload length
//	offset 8  uint32 CRC-32C (Castagnoli) of bytes 4..8 (L) and the payload
//	offset 12 uint32 ^L, the length again, inverted
//	offset 16 the payload, L bytes, then zero padding to RecordAlign
//
// All integers are little-endian.
const (
	Sentinel uint32 = 0x52574e44 // bytes 44 4e 57 52 on disk
)

const (
	RecordHeader = 16
	RecordAlign  = 8
	// MaxRecord bounds a record's payload; a larger length is damage.
	MaxRecord = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FramedSize is the size on disk of a record with an n-byte payload.
func FramedSize(n int) int { return RecordHeader + (n+RecordAlign-1)&^(RecordAlign-1) }

// AppendRecord appends payload to dst as one framed record. dst's length
// must be a multiple of RecordAlign (records start aligned).
func AppendRecord(dst, payload []byte) []byte {
	start := len(dst)
	dst = growRecord(dst, len(payload))
	copy(dst[start+RecordHeader:], payload)
	sealRecord(dst[start:], len(payload))
	return dst
}

// growRecord extends dst by the framed size of an n-byte payload, zeroed.
func growRecord(dst []byte, n int) []byte {
	size := FramedSize(n)
	if cap(dst)-len(dst) < size {
		nb := make([]byte, len(dst), 2*cap(dst)+size)
		copy(nb, dst)
		dst = nb
	}
	dst = dst[:len(dst)+size]
	clear(dst[len(dst)-size:])
	return dst
}

// sealRecord writes the header of the record at rec[0:] whose n-byte
// payload is already in place.
func sealRecord(rec []byte, n int) {
	binary.LittleEndian.PutUint32(rec[0:], Sentinel)
	binary.LittleEndian.PutUint32(rec[4:], uint32(n))
	crc := crc32.Update(0, castagnoli, rec[4:8])
	crc = crc32.Update(crc, castagnoli, rec[RecordHeader:RecordHeader+n])
	binary.LittleEndian.PutUint32(rec[8:], crc)
	binary.LittleEndian.PutUint32(rec[12:], ^uint32(n))
}

// recordAt reports whether a whole, verified record starts at off (which
// must be aligned) and returns its payload and its framed size.
func recordAt(b []byte, off int) (payload []byte, size int, ok bool) {
	return recordFrame(b, off, true)
}

// recordFrame is recordAt; with verify false the checksum is not
// computed (the bytes were verified as a whole), the framing is checked.
func recordFrame(b []byte, off int, verify bool) (payload []byte, size int, ok bool) {
	if len(b)-off < RecordHeader {
		return nil, 0, false
	}
	h := b[off:]
	if binary.LittleEndian.Uint32(h) != Sentinel {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > MaxRecord || binary.LittleEndian.Uint32(h[12:]) != ^n {
		return nil, 0, false
	}
	size = FramedSize(int(n))
	if size > len(h) {
		return nil, 0, false
	}
	if verify {
		crc := crc32.Update(0, castagnoli, h[4:8])
		crc = crc32.Update(crc, castagnoli, h[RecordHeader:RecordHeader+int(n)])
		if crc != binary.LittleEndian.Uint32(h[8:]) {
			return nil, 0, false
		}
	}
	return h[RecordHeader : RecordHeader+int(n) : RecordHeader+int(n)], size, true
}

// Damage describes one stretch of bytes a scan could not read as records.
type Damage struct {
	Offset int64 // where the stretch starts
	Bytes  int64 // its length
	// Records is how many record headers (a sentinel with a consistent
	// length) inside the stretch failed to verify: a lower bound on the
	// records lost there (at least 1 when the stretch holds any data).
	Records int
	// Tail is set when no verified record follows the stretch: the end
	// of a log torn by a crash looks like this.
	Tail bool
	// Zero is set when every byte of the stretch is zero (a file
	// extended but never written, as some file systems leave after a
	// crash); such a stretch held no record.
	Zero bool
}

func (d Damage) String() string {
	kind := "damage"
	switch {
	case d.Tail && d.Zero:
		kind = "zero-filled tail"
	case d.Tail:
		kind = "torn tail"
	}
	return fmt.Sprintf("%s at offset %d: %d bytes, %d records", kind, d.Offset, d.Bytes, d.Records)
}

// Scanner reads framed records from a byte slice, recovering past damage:
// at a record that does not verify it scans forward, one aligned word at a
// time, to the next sentinel whose record verifies, and reports the bytes
// it skipped as a Damage. It never returns a record whose checksum fails.
//
//	sc := NewScanner(b)
//	for sc.Next() {
//		use(sc.Record())
//	}
//	for _, d := range sc.Damage() { report(d) }
type Scanner struct {
	b      []byte
	off    int
	rec    []byte
	recOff int
	good   int // just past the last verified record
	damage []Damage
}

// NewScanner scans b from its start. b's records must start at offsets
// that are multiples of RecordAlign from b[0].
func NewScanner(b []byte) *Scanner { return &Scanner{b: b} }

// Next advances to the next verified record and reports whether there is
// one. Damage met on the way is recorded.
func (s *Scanner) Next() bool {
	for s.off < len(s.b) {
		if p, size, ok := recordAt(s.b, s.off); ok {
			s.rec, s.recOff = p, s.off
			s.off += size
			s.good = s.off
			return true
		}
		s.skip()
	}
	s.rec = nil
	return false
}

// skip records the damage starting at s.off and moves s.off to the next
// verified record, or to the end.
func (s *Scanner) skip() {
	start := s.off
	d := Damage{Offset: int64(start), Zero: true}
	off := start
	for ; off < len(s.b); off += RecordAlign {
		if off > start {
			if _, _, ok := recordAt(s.b, off); ok {
				break
			}
		}
		end := min(off+RecordAlign, len(s.b))
		for _, c := range s.b[off:end] {
			if c != 0 {
				d.Zero = false
				break
			}
		}
		if looksLikeHeader(s.b, off) {
			d.Records++
		}
	}
	off = min(off, len(s.b))
	d.Bytes = int64(off - start)
	d.Tail = off >= len(s.b)
	if d.Records == 0 && !d.Zero {
		d.Records = 1
	}
	s.damage = append(s.damage, d)
	s.off = off
}

// looksLikeHeader reports whether a sentinel with a consistent length sits
// at off: the start of a record, damaged or torn.
func looksLikeHeader(b []byte, off int) bool {
	if len(b)-off < 8 || binary.LittleEndian.Uint32(b[off:]) != Sentinel {
		return false
	}
	if len(b)-off < RecordHeader {
		return true // torn inside its header
	}
	n := binary.LittleEndian.Uint32(b[off+4:])
	return n <= MaxRecord && binary.LittleEndian.Uint32(b[off+12:]) == ^n
}

// Record returns the payload of the current record. It aliases the
// scanned bytes.
func (s *Scanner) Record() []byte { return s.rec }

// Offset returns the offset of the current record's header.
func (s *Scanner) Offset() int64 { return int64(s.recOff) }

// End returns the offset just past the last verified record read so far.
func (s *Scanner) End() int64 { return int64(s.good) }

// Damage returns the stretches skipped so far, in order.
func (s *Scanner) Damage() []Damage { return s.damage }
