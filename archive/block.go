package archive

import (
	"encoding/binary"
	"fmt"
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
	h := make([]byte, blockHdrLen)
	copy(h, blockMagic)
	binary.LittleEndian.PutUint32(h[8:], blockVersion)
	binary.LittleEndian.PutUint64(h[16:], uint64(len(vs)))
	minN, maxN := int64(0), int64(0)
	for i := range vs {
		if i > 0 && compareValues(&vs[i-1], &vs[i]) >= 0 {
			return nil, fmt.Errorf("archive: block values out of order at %s@%v", vs[i].Path, vs[i].Time)
		}
		n := vs[i].Time.Nanos
		if n >= horizon {
			return nil, fmt.Errorf("archive: %s@%v is not below the block's horizon %d", vs[i].Path, vs[i].Time, horizon)
		}
		if i == 0 || n < minN {
			minN = n
		}
		if i == 0 || n > maxN {
			maxN = n
		}
	}
	binary.LittleEndian.PutUint64(h[24:], uint64(minN))
	binary.LittleEndian.PutUint64(h[32:], uint64(maxN))
	binary.LittleEndian.PutUint64(h[40:], uint64(horizon))
	out := AppendRecord(nil, h)
	var run []byte
	for i := 0; i < len(vs); {
		path := vs[i].Path
		j := i
		run = appendStr(run[:0], path)
		countAt := len(run)
		run = append(run, 0, 0, 0, 0) // the count, filled in below
		body := len(run)
		for j < len(vs) && vs[j].Path == path && len(run)-body < runBytes {
			v := &vs[j]
			run = appendTime(run, v.Time)
			run = append(run, byte(v.Flags))
			run = appendValue(run, v.Value)
			j++
		}
		// The count goes in a fixed 4-byte varint slot (a run holds far
		// fewer than 2^28 values), so the run is written in one pass.
		putPaddedUvarint(run[countAt:body], uint64(j-i))
		out = AppendRecord(out, run)
		i = j
	}
	return out, nil
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
	var hdr BlockHeader
	var out []netcode.PathValue
	err := ScanBlock(b, func(h BlockHeader) error {
		hdr = h
		out = make([]netcode.PathValue, 0, min(h.Count, uint64(len(b)/4)))
		return nil
	}, func(v netcode.PathValue) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return BlockHeader{}, nil, err
	}
	if len(out) > 0 {
		hdr.MinPath, hdr.MaxPath = out[0].Path, out[len(out)-1].Path
	}
	return hdr, out, nil
}

// ScanBlock decodes a block, calling header once and then value for every
// value in order, and stops at the first error either returns.
func ScanBlock(b []byte, header func(BlockHeader) error, value func(netcode.PathValue) error) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: block: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	p, size, ok := recordAt(b, 0)
	if !ok || len(p) != blockHdrLen || string(p[:8]) != blockMagic {
		return corrupt("no header")
	}
	if v := binary.LittleEndian.Uint32(p[8:]); v != blockVersion {
		return corrupt("version %d", v)
	}
	hdr := BlockHeader{
		Count:    binary.LittleEndian.Uint64(p[16:]),
		MinNanos: int64(binary.LittleEndian.Uint64(p[24:])),
		MaxNanos: int64(binary.LittleEndian.Uint64(p[32:])),
		Horizon:  int64(binary.LittleEndian.Uint64(p[40:])),
	}
	if err := header(hdr); err != nil {
		return err
	}
	var n uint64
	var prev netcode.PathValue
	off := size
	for off < len(b) {
		p, size, ok := recordAt(b, off)
		if !ok {
			return corrupt("damaged record at offset %d", off)
		}
		off += size
		d := decoder{b: p}
		path := d.str()
		k := d.count()
		for i := 0; i < k && d.err == nil; i++ {
			v := netcode.PathValue{Path: path, State: netcode.Valid}
			v.Time.Nanos = d.varint()
			v.Time.Version = d.u32()
			v.Time.Creator = d.u32()
			v.Flags = netcode.Flags(d.byte())
			v.Value = d.value()
			if d.err != nil {
				break
			}
			// Within a run the path is the same: only times are compared.
			if n > 0 && ((i == 0 && compareValues(&prev, &v) >= 0) || (i > 0 && !prev.Time.Before(v.Time))) {
				return corrupt("%s@%v out of order", v.Path, v.Time)
			}
			if v.Time.Nanos >= hdr.Horizon || v.Time.Nanos < hdr.MinNanos || v.Time.Nanos > hdr.MaxNanos {
				return corrupt("%s@%v outside the header's times", v.Path, v.Time)
			}
			n++
			if n > hdr.Count {
				return corrupt("more values than the header's %d", hdr.Count)
			}
			prev = v
			if err := value(v); err != nil {
				return err
			}
		}
		if d.err == nil && len(d.b) != 0 {
			d.fail("%d bytes after a run", len(d.b))
		}
		if d.err != nil {
			return fmt.Errorf("block run at offset %d: %w", off-size, d.err)
		}
	}
	if n != hdr.Count {
		return corrupt("%d values, the header says %d", n, hdr.Count)
	}
	return nil
}

// mergeBlocks merges sorted value lists (older blocks first) into one
// sorted list, dropping what compaction may drop: a value of a path whose
// next value in the merge is at or before cut (superseded long enough ago
// that only history, not a lock, could want it). A path's latest value is
// always kept, deletions included: a lock may still name it.
func mergeBlocks(lists [][]netcode.PathValue, cut int64) []netcode.PathValue {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	out := make([]netcode.PathValue, 0, total)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b netcode.PathValue) int { return compareValues(&a, &b) })
	out = slices.CompactFunc(out, func(a, b netcode.PathValue) bool { return a.Path == b.Path && a.Time == b.Time })
	j := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].Path == out[i].Path && out[i+1].Time.Nanos <= cut {
			continue
		}
		out[j] = out[i]
		j++
	}
	clear(out[j:])
	return out[:j]
}
