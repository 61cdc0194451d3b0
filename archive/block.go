package archive

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/rewindnet/rewind/netcode"
)

// A snapshot block is an immutable, sorted run of final values: framed
// records (see AppendRecord), the first a header, each next one a run of
// values of one path in time order. Paths are in byte order; one path's
// values may span several consecutive runs.
//
//	header payload: "RWNDBLK1" ‖ uint32 version (1) ‖ uint32 0 ‖
//	                uint64 count ‖ int64 min nanos ‖ int64 max nanos ‖
//	                int64 horizon (every value's Nanos is below it)
//	run payload:    str path ‖ uv n ‖ n × {time, u8 flags, value}
//
// (str, uv, time and value as in the entry encoding.)
const (
	blockMagic   = "RWNDBLK1"
	blockVersion = 1
	blockHdrLen  = 48
	// runBytes is the payload size past which a path's run is split.
	runBytes = 1 << 20
)

// BlockHeader describes a block.
type BlockHeader struct {
	Count            uint64
	MinNanos         int64
	MaxNanos         int64
	Horizon          int64
	MinPath, MaxPath string
}

// compareValues orders values by path, then time.
func compareValues(a, b *netcode.PathValue) int {
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	return a.Time.Compare(b.Time)
}

// SortValues sorts values by path, then time: the order of a block.
func SortValues(vs []netcode.PathValue) {
	slices.SortFunc(vs, func(a, b netcode.PathValue) int { return compareValues(&a, &b) })
}

// EncodeBlock encodes sorted final values (every Nanos below horizon) as a
// block. Locks and states are not stored: final values are valid and
// carry no locks.
func EncodeBlock(vs []netcode.PathValue, horizon int64) ([]byte, error) {
	w := newBlockWriter(horizon, len(vs)*32)
	for i := range vs {
		if err := w.add(&vs[i]); err != nil {
			return nil, err
		}
	}
	return w.finish(), nil
}

// blockWriter encodes a block value by value, straight into its output:
// the header record first (sealed again once the count and times are
// known), then each run, whose count goes in a fixed 4-byte varint slot
// (a run holds far fewer than 2^28 values), so nothing is copied twice.
type blockWriter struct {
	out        []byte
	horizon    int64
	count      uint64
	minN, maxN int64
	prevPath   string // the value added last
	prevTime   netcode.Time
	runAt      int // offset of the open run's record, -1 when none
	countAt    int // offset of its count slot
	runN       uint64
}

func newBlockWriter(horizon int64, sizeHint int) *blockWriter {
	w := &blockWriter{horizon: horizon, runAt: -1}
	w.out = make([]byte, 0, FramedSize(blockHdrLen)+sizeHint)
	w.out = growRecord(w.out, blockHdrLen)
	return w
}

// add appends v, which must come after the value added before it (by
// path, then time) and be below the horizon. v is not kept.
func (w *blockWriter) add(v *netcode.PathValue) error {
	if c := strings.Compare(w.prevPath, v.Path); w.count > 0 && (c > 0 || c == 0 && !w.prevTime.Before(v.Time)) {
		return fmt.Errorf("archive: block values out of order at %s@%v", v.Path, v.Time)
	}
	n := v.Time.Nanos
	if n >= w.horizon {
		return fmt.Errorf("archive: %s@%v is not below the block's horizon %d", v.Path, v.Time, w.horizon)
	}
	if w.count == 0 || n < w.minN {
		w.minN = n
	}
	if w.count == 0 || n > w.maxN {
		w.maxN = n
	}
	if w.runAt < 0 || v.Path != w.prevPath || len(w.out)-w.countAt-4 >= runBytes {
		w.closeRun()
		w.runAt = len(w.out)
		w.out = append(w.out, make([]byte, RecordHeader)...)
		w.out = appendStr(w.out, v.Path)
		w.countAt = len(w.out)
		w.out = append(w.out, 0, 0, 0, 0)
	}
	w.out = appendTime(w.out, v.Time)
	w.out = append(w.out, byte(v.Flags))
	w.out = appendValue(w.out, v.Value)
	w.runN++
	w.count++
	w.prevPath, w.prevTime = v.Path, v.Time
	return nil
}

// closeRun fills in the open run's count, pads and seals it.
func (w *blockWriter) closeRun() {
	if w.runAt < 0 {
		return
	}
	putPaddedUvarint(w.out[w.countAt:w.countAt+4], w.runN)
	n := len(w.out) - w.runAt - RecordHeader
	for len(w.out)%RecordAlign != 0 {
		w.out = append(w.out, 0)
	}
	sealRecord(w.out[w.runAt:], n)
	w.runAt, w.runN = -1, 0
}

// finish closes the last run, fills in and seals the header, and returns
// the block.
func (w *blockWriter) finish() []byte {
	w.closeRun()
	h := w.out[RecordHeader : RecordHeader+blockHdrLen]
	copy(h, blockMagic)
	binary.LittleEndian.PutUint32(h[8:], blockVersion)
	binary.LittleEndian.PutUint64(h[16:], w.count)
	binary.LittleEndian.PutUint64(h[24:], uint64(w.minN))
	binary.LittleEndian.PutUint64(h[32:], uint64(w.maxN))
	binary.LittleEndian.PutUint64(h[40:], uint64(w.horizon))
	sealRecord(w.out, blockHdrLen)
	return w.out
}

// putPaddedUvarint writes v as a varint filling all of b (continuation
// bits on padding bytes), which Uvarint reads back as v.
func putPaddedUvarint(b []byte, v uint64) {
	for i := range b {
		c := byte(v & 0x7f)
		v >>= 7
		if i < len(b)-1 {
			c |= 0x80
		}
		b[i] = c
	}
}

// DecodeBlock decodes a whole block. Values alias b. It fails (wrapping
// ErrCorrupt) on any damage, a value out of order or at or past the
// horizon, or a count that disagrees with the header; it never panics.
func DecodeBlock(b []byte) (BlockHeader, []netcode.PathValue, error) {
	r, err := newBlockReader(b, true)
	if err != nil {
		return BlockHeader{}, nil, err
	}
	out := make([]netcode.PathValue, 0, min(r.hdr.Count, uint64(len(b)/4)))
	for {
		if len(out) == cap(out) {
			out = slices.Grow(out, 1)
		}
		k := r.fill(out[len(out):cap(out)])
		out = out[:len(out)+k]
		if r.err != nil || len(out) < cap(out) {
			break
		}
	}
	if r.err != nil {
		return BlockHeader{}, nil, r.err
	}
	hdr := r.hdr
	if len(out) > 0 {
		hdr.MinPath, hdr.MaxPath = out[0].Path, out[len(out)-1].Path
	}
	return hdr, out, nil
}

// ScanBlock decodes a block, calling header once and then value for every
// value in order, and stops at the first error either returns.
func ScanBlock(b []byte, header func(BlockHeader) error, value func(netcode.PathValue) error) error {
	return scanBlock(b, true, header, value)
}

// scanBlock is ScanBlock; with verify false the records' checksums are
// not computed again (the bytes were checked by their shards' chunk
// checksums), every other check is made.
func scanBlock(b []byte, verify bool, header func(BlockHeader) error, value func(netcode.PathValue) error) error {
	r, err := newBlockReader(b, verify)
	if err != nil {
		return err
	}
	if err := header(r.hdr); err != nil {
		return err
	}
	return r.each(math.MaxInt, value)
}

func blockCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: block: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// blockReader decodes a block value by value, checking as it goes: every
// record whole (and verified unless told not to), values in order, inside
// the header's times, as many as the header says.
type blockReader struct {
	b        []byte
	hdr      BlockHeader
	verify   bool
	off      int    // the next record
	runOff   int    // the current run's record
	run      []byte // what is left of the current run's payload
	left     int    // values left in the current run
	path     string
	n        uint64       // values read
	prev     netcode.Time // the previous value's time
	prevPath string       // and path
	first    bool         // the current run has given no value yet
	err      error
}

func newBlockReader(b []byte, verify bool) (*blockReader, error) {
	p, size, ok := recordFrame(b, 0, verify)
	if !ok || len(p) != blockHdrLen || string(p[:8]) != blockMagic {
		return nil, blockCorrupt("no header")
	}
	if v := binary.LittleEndian.Uint32(p[8:]); v != blockVersion {
		return nil, blockCorrupt("version %d", v)
	}
	return &blockReader{
		b: b, verify: verify, off: size,
		hdr: BlockHeader{
			Count:    binary.LittleEndian.Uint64(p[16:]),
			MinNanos: int64(binary.LittleEndian.Uint64(p[24:])),
			MaxNanos: int64(binary.LittleEndian.Uint64(p[32:])),
			Horizon:  int64(binary.LittleEndian.Uint64(p[40:])),
		},
	}, nil
}

// next returns the next value (see fill) and whether there was one.
func (r *blockReader) next() (netcode.PathValue, bool) {
	var one [1]netcode.PathValue
	if r.fill(one[:]) == 0 {
		return netcode.PathValue{}, false
	}
	return one[0], true
}

// startRun moves to the next run record, checking that the one before was
// used up; false at the end of the block (with r.err set if the count is
// wrong) or at an error.
func (r *blockReader) startRun() bool {
	if len(r.run) != 0 {
		r.fail("%d bytes after a run", len(r.run))
		return false
	}
	if r.off >= len(r.b) {
		if r.n != r.hdr.Count {
			r.err = blockCorrupt("%d values, the header says %d", r.n, r.hdr.Count)
		}
		return false
	}
	p, size, ok := recordFrame(r.b, r.off, r.verify)
	if !ok {
		r.err = blockCorrupt("damaged record at offset %d", r.off)
		return false
	}
	r.runOff = r.off
	r.off += size
	d := decoder{b: p}
	path := d.raw(d.uvarint())
	k := d.count()
	if d.err != nil {
		r.err = fmt.Errorf("block run at offset %d: %w", r.runOff, d.err)
		return false
	}
	if r.n == 0 || string(path) != r.path {
		r.path = string(path)
	}
	r.run, r.left, r.first = d.b, k, true
	return true
}

// fill decodes the next values into buf (each its Path, Time, Flags and
// Value, State Valid, no locks), as many as buf holds while there are
// more, and returns how many: fewer than len(buf) at the end of the block
// or at the first error (r.err).
func (r *blockReader) fill(buf []netcode.PathValue) int {
	i := 0
	_ = r.each(len(buf), func(v netcode.PathValue) error {
		buf[i] = v
		i++
		return nil
	})
	return i
}

// each decodes the next values, at most max of them, and calls fn with
// each (its Path, Time, Flags and Value, State Valid, no locks) until the
// end of the block, an error (r.err, returned) or fn's first error
// (returned).
func (r *blockReader) each(max int, fn func(netcode.PathValue) error) error {
	for max > 0 && r.err == nil {
		if r.left == 0 {
			if !r.startRun() {
				break
			}
			continue
		}
		// One run, in locals.
		b, left, n, prev, path := r.run, r.left, r.n, r.prev, r.path
		minN, maxN, horizon, count := r.hdr.MinNanos, r.hdr.MaxNanos, r.hdr.Horizon, r.hdr.Count
		// order: 0 the value needs no check (the first of the block, or
		// the first of a run of a greater path), 1 it must come after
		// prev, 2 it is out of order (a run of a smaller path).
		order := 1
		if n == 0 {
			order = 0
		} else if r.first {
			switch c := strings.Compare(r.prevPath, path); {
			case c < 0:
				order = 0
			case c > 0:
				order = 2
			}
		}
		for ; max > 0 && left > 0; max-- {
			v := netcode.PathValue{Path: path, State: netcode.Valid}
			var x uint64
			ok, start := false, b
			if x, b, ok = uv(b); ok {
				v.Time.Nanos = int64(x>>1) ^ -int64(x&1) // zig-zag, as binary.Varint
				if x, b, ok = uv(b); ok && x <= 1<<32-1 {
					v.Time.Version = uint32(x)
					if x, b, ok = uv(b); ok && x <= 1<<32-1 && len(b) > 0 {
						v.Time.Creator = uint32(x)
						v.Flags, b = netcode.Flags(b[0]), b[1:]
						if x, b, ok = uv(b); ok && x > 0 {
							if x-1 > uint64(len(b)) {
								ok = false
							} else {
								v.Value, b = b[:x-1:x-1], b[x-1:]
							}
						}
					} else {
						ok = false
					}
				} else {
					ok = false
				}
			}
			if !ok {
				// The slow decoder names what is wrong.
				d := decoder{b: start}
				d.time()
				d.byte()
				d.value()
				if d.err == nil {
					d.fail("malformed value")
				}
				r.err = fmt.Errorf("block run at offset %d: %w", r.runOff, d.err)
				return r.err
			}
			t := v.Time
			if order == 2 || order == 1 && !prev.Before(t) {
				r.err = blockCorrupt("%s@%v out of order", path, t)
				return r.err
			}
			if t.Nanos >= horizon || t.Nanos < minN || t.Nanos > maxN {
				r.err = blockCorrupt("%s@%v outside the header's times", path, t)
				return r.err
			}
			n++
			if n > count {
				r.err = blockCorrupt("more values than the header's %d", count)
				return r.err
			}
			prev, order = t, 1
			left--
			if err := fn(v); err != nil {
				r.run, r.left, r.n, r.prev, r.prevPath, r.first = b, left, n, prev, path, false
				return err
			}
		}
		r.run, r.left, r.n, r.prev, r.prevPath, r.first = b, left, n, prev, path, false
	}
	return r.err
}

func (r *blockReader) fail(format string, args ...any) {
	r.err = fmt.Errorf("block run at offset %d: %w: %s", r.runOff, ErrCorrupt, fmt.Sprintf(format, args...))
}

// uv decodes an unsigned varint from the front of b, returning the rest;
// it accepts what binary.Uvarint accepts.
func uv(b []byte) (uint64, []byte, bool) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), b[1:], true
	}
	return uvLong(b)
}

// uvLong is uv past its first byte's check (not inlined, so uv is).
//
//go:noinline
func uvLong(b []byte) (uint64, []byte, bool) {
	if len(b) > 1 && b[1] < 0x80 {
		return uint64(b[0]&0x7f) | uint64(b[1])<<7, b[2:], true
	}
	if len(b) >= 8 {
		// Up to 8 bytes (56 bits, every time of this century in
		// nanoseconds) without a loop: the stop byte is the first
		// without its high bit; the 7-bit groups are then packed.
		u := binary.LittleEndian.Uint64(b)
		if m := ^u & 0x8080808080808080; m != 0 {
			n := bits.TrailingZeros64(m) + 1 // 8 × the bytes used
			u &= 1<<n - 1                    // (1<<64 is 0: all bits)
			x := u&0x7f | u>>1&(0x7f<<7) | u>>2&(0x7f<<14) | u>>3&(0x7f<<21) |
				u>>4&(0x7f<<28) | u>>5&(0x7f<<35) | u>>6&(0x7f<<42) | u>>7&(0x7f<<49)
			return x, b[n/8:], true
		}
	}
	return uvSlow(b)
}

func uvSlow(b []byte) (uint64, []byte, bool) {
	var x uint64
	var s uint
	for i, c := range b {
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			return x | uint64(c)<<s, b[i+1:], true
		}
		if i == binary.MaxVarintLen64-1 {
			break
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, b, false
}

// mergeBlocks merges sorted value lists (older blocks first) into one
// sorted list, dropping what compaction may drop (see mergeValues).
func mergeBlocks(lists [][]netcode.PathValue, cut int64) []netcode.PathValue {
	srcs := make([]valueSource, len(lists))
	for i, l := range lists {
		srcs[i] = &listSource{vs: l}
	}
	var out []netcode.PathValue
	_ = mergeValues(srcs, cut, func(v *netcode.PathValue) error {
		out = append(out, *v)
		return nil
	})
	return out
}

// A valueSource yields sorted values (by path, then time) one at a time.
type valueSource interface {
	// next returns the next value; false at the end or on error.
	next() (netcode.PathValue, bool)
	// failure is the error that ended the source, if any.
	failure() error
}

type listSource struct{ vs []netcode.PathValue }

func (l *listSource) next() (netcode.PathValue, bool) {
	if len(l.vs) == 0 {
		return netcode.PathValue{}, false
	}
	v := l.vs[0]
	l.vs = l.vs[1:]
	return v, true
}

func (l *listSource) failure() error { return nil }

func (r *blockReader) failure() error { return r.err }

// mergeValues merges sorted sources (older blocks first) into one sorted
// stream passed to emit: a value both in an older and a newer source is
// taken once, from the older; a value of a path whose next value in the
// merge is at or before cut (superseded long enough ago that only
// history, not a lock, could want it) is dropped. A path's latest value is
// always kept, deletions included: a lock may still name it. The value
// emit is given is valid until it returns.
func mergeValues(srcs []valueSource, cut int64, emit func(*netcode.PathValue) error) error {
	heads := make([]netcode.PathValue, len(srcs))
	live := make([]bool, len(srcs))
	for i, s := range srcs {
		heads[i], live[i] = s.next()
		if err := s.failure(); err != nil {
			return err
		}
	}
	var held netcode.PathValue // the last value taken, not yet emitted
	have := false
	for {
		k := -1
		for i := range heads {
			if live[i] && (k < 0 || compareValues(&heads[i], &heads[k]) < 0) {
				k = i
			}
		}
		if k < 0 {
			break
		}
		v := heads[k]
		heads[k], live[k] = srcs[k].next()
		if err := srcs[k].failure(); err != nil {
			return err
		}
		if have && v.Path == held.Path {
			if v.Time == held.Time {
				continue // the same value in a newer block
			}
			if v.Time.Nanos <= cut {
				held = v // held is superseded before the cut: dropped
				continue
			}
		}
		if have {
			if err := emit(&held); err != nil {
				return err
			}
		}
		held, have = v, true
	}
	if have {
		return emit(&held)
	}
	return nil
}
