package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// ErrCorrupt is wrapped by every error about bytes that do not decode: a
// record whose checksum verified but whose content is not a valid entry or
// block (written by another version, or damaged before it was framed).
var ErrCorrupt = errors.New("archive: corrupt data")

// EntryKind says what a log entry records. Kinds are append-only.
type EntryKind uint8

const (
	// EntryRun: one run of a call (the first, or a re-run at a later
	// version): the call, the version, and either the run's error or the
	// values it wrote with the locks it read.
	EntryRun EntryKind = 1
	// EntryWrite: values written directly (raw writes, deletions), each
	// with its own locks, inserted as one batch.
	EntryWrite EntryKind = 2
	// EntryCreator: a creator id was assigned to a connection at Born.
	EntryCreator EntryKind = 3
	// EntryAbandon: a call was given up after too many re-runs.
	EntryAbandon EntryKind = 4
)

func (k EntryKind) String() string {
	switch k {
	case EntryRun:
		return "run"
	case EntryWrite:
		return "write"
	case EntryCreator:
		return "creator"
	case EntryAbandon:
		return "abandon"
	}
	return fmt.Sprintf("EntryKind(%d)", uint8(k))
}

// Entry is one thing the authority needs to come back after a restart. Its
// fields are used by kind:
//
//	EntryRun:     Call, Version, and Err/Refused (a failed run) or Locks
//	              and Values (its writes; each value's Locks are Locks)
//	EntryWrite:   Values, each with its own Locks
//	EntryCreator: Creator, Born
//	EntryAbandon: Call.ID
type Entry struct {
	Kind EntryKind
	// Now is when the node accepted what the entry records (synced
	// nanoseconds); replay inserts the values at this time, as they were
	// first inserted.
	Now int64

	Call    netcode.Call
	Version uint32
	Err     string // a failed run's error
	Refused bool   // Err is the store's refusal, not the function's
	Locks   []netcode.ReadLock
	Values  []netcode.PathValue

	Creator uint32
	Born    int64
}

// Entry payload encoding (in a log record, after the record's Now),
// little-endian varints
// ("uv" unsigned LEB128, "sv" zig-zag signed, "str" uv length then bytes):
//
//	u8 kind, then by kind:
//	run:     uv creator, uv seq, str name, str args, sv time, sv viewDelay,
//	         uv version, u8 status (0 stored, 1 failed, 2 refused), str err,
//	         locks, uv n, n × {str path, u8 flags, value}
//	write:   uv n, n × {str path, time, u8 flags, value, locks}
//	creator: uv creator, sv born
//	abandon: uv creator, uv seq
//
//	time  = sv nanos, uv version, uv creator
//	value = uv 0 for a deletion (nil), else uv len+1 then the bytes
//	locks = uv n, n × {str path, time start, time end}

// maxCount bounds the counts a decoder accepts before allocating.
const maxCount = 1 << 20

// AppendEntry appends e's payload encoding to dst. Now is not part of
// it: the log stores it in front of every record.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, byte(e.Kind))
	switch e.Kind {
	case EntryRun:
		c := &e.Call
		dst = binary.AppendUvarint(dst, uint64(c.ID.Creator))
		dst = binary.AppendUvarint(dst, c.ID.Seq)
		dst = appendStr(dst, c.Name)
		dst = appendBytes(dst, c.Args)
		dst = binary.AppendVarint(dst, c.Time)
		dst = binary.AppendVarint(dst, int64(c.ViewDelay))
		dst = binary.AppendUvarint(dst, uint64(e.Version))
		status := byte(0)
		if e.Err != "" {
			status = 1
			if e.Refused {
				status = 2
			}
		}
		dst = append(dst, status)
		dst = appendStr(dst, e.Err)
		dst = appendLocks(dst, e.Locks)
		dst = binary.AppendUvarint(dst, uint64(len(e.Values)))
		for i := range e.Values {
			v := &e.Values[i]
			dst = appendStr(dst, v.Path)
			dst = append(dst, byte(v.Flags))
			dst = appendValue(dst, v.Value)
		}
	case EntryWrite:
		dst = binary.AppendUvarint(dst, uint64(len(e.Values)))
		for i := range e.Values {
			v := &e.Values[i]
			dst = appendStr(dst, v.Path)
			dst = appendTime(dst, v.Time)
			dst = append(dst, byte(v.Flags))
			dst = appendValue(dst, v.Value)
			dst = appendLocks(dst, v.Locks)
		}
	case EntryCreator:
		dst = binary.AppendUvarint(dst, uint64(e.Creator))
		dst = binary.AppendVarint(dst, e.Born)
	case EntryAbandon:
		dst = binary.AppendUvarint(dst, uint64(e.Call.ID.Creator))
		dst = binary.AppendUvarint(dst, e.Call.ID.Seq)
	}
	return dst
}

// DecodeEntry decodes an entry payload (Now is left zero). Values and call arguments alias
// b; copy them if b is reused. It returns an error wrapping
// ErrCorrupt for anything malformed, never panics.
func DecodeEntry(b []byte) (Entry, error) { return decodeEntry(b, nil, nil) }

// decodeEntry is DecodeEntry, sharing repeated strings through intern
// when it is not nil.
func decodeEntry(b []byte, intern map[string]string, ar *arena) (Entry, error) {
	var e Entry
	if err := decodeEntryInto(&e, b, intern, ar); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// decodeEntryInto is decodeEntry into *e, which must be zero; on an error
// *e is left partly filled.
func decodeEntryInto(e *Entry, b []byte, intern map[string]string, ar *arena) error {
	d := decoder{b: b, intern: intern, arena: ar}
	e.Kind = EntryKind(d.byte())
	switch e.Kind {
	case EntryRun:
		c := &e.Call
		c.ID.Creator = d.u32()
		c.ID.Seq = d.uvarint()
		c.Name = d.str()
		c.Args = d.bytes()
		c.Time = d.varint()
		c.ViewDelay = time.Duration(d.varint())
		e.Version = d.u32()
		status := d.byte()
		e.Err = d.str()
		if status > 2 || (status == 0) != (e.Err == "") {
			d.fail("run status %d with error %q", status, e.Err)
		}
		e.Refused = status == 2
		e.Locks = d.locks()
		n := d.count()
		if n > 0 && d.err == nil {
			e.Values = d.values(n)
			t := netcode.Time{Nanos: c.Time, Version: e.Version, Creator: c.ID.Creator}
			for i := range e.Values {
				v := &e.Values[i]
				v.Path = d.str()
				v.Time = t
				v.Flags = netcode.Flags(d.byte())
				v.Value = d.value()
				v.Locks = e.Locks
			}
		}
	case EntryWrite:
		n := d.count()
		if n > 0 && d.err == nil {
			e.Values = d.values(n)
			for i := range e.Values {
				v := &e.Values[i]
				v.Path = d.str()
				v.Time = d.time()
				v.Flags = netcode.Flags(d.byte())
				v.Value = d.value()
				v.Locks = d.locks()
			}
		}
	case EntryCreator:
		e.Creator = d.u32()
		e.Born = d.varint()
	case EntryAbandon:
		e.Call.ID.Creator = d.u32()
		e.Call.ID.Seq = d.uvarint()
	default:
		d.fail("unknown entry kind %d", e.Kind)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the entry", len(d.b))
	}
	return d.err
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendValue(dst, v []byte) []byte {
	if v == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(v))+1)
	return append(dst, v...)
}

func appendTime(dst []byte, t netcode.Time) []byte {
	dst = binary.AppendVarint(dst, t.Nanos)
	dst = binary.AppendUvarint(dst, uint64(t.Version))
	return binary.AppendUvarint(dst, uint64(t.Creator))
}

func appendLocks(dst []byte, ls []netcode.ReadLock) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ls)))
	for i := range ls {
		dst = appendStr(dst, ls[i].Path)
		dst = appendTime(dst, ls[i].Start)
		dst = appendTime(dst, ls[i].End)
	}
	return dst
}

// decoder reads the encodings above from b, remembering the first error;
// after an error every read returns zero values.
type decoder struct {
	b      []byte
	err    error
	intern map[string]string // if set, str returns shared strings
	arena  *arena            // if set, slices are carved from it
}

// arena hands out value and lock slices carved from larger allocations,
// for decoding many entries at once.
type arena struct {
	values []netcode.PathValue
	locks  []netcode.ReadLock
}

const arenaChunk = 4096

func (a *arena) takeValues(n int) []netcode.PathValue {
	if n > arenaChunk/4 {
		return make([]netcode.PathValue, n)
	}
	if len(a.values)+n > cap(a.values) {
		a.values = make([]netcode.PathValue, 0, arenaChunk)
	}
	s := a.values[len(a.values) : len(a.values)+n : len(a.values)+n]
	a.values = a.values[:len(a.values)+n]
	return s
}

func (a *arena) takeLocks(n int) []netcode.ReadLock {
	if n > arenaChunk/4 {
		return make([]netcode.ReadLock, n)
	}
	if len(a.locks)+n > cap(a.locks) {
		a.locks = make([]netcode.ReadLock, 0, arenaChunk)
	}
	s := a.locks[len(a.locks) : len(a.locks)+n : len(a.locks)+n]
	a.locks = a.locks[:len(a.locks)+n]
	return s
}

func (d *decoder) values(n int) []netcode.PathValue {
	if d.arena != nil {
		return d.arena.takeValues(n)
	}
	return make([]netcode.PathValue, n)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, rest, ok := uv(d.b)
	if !ok {
		d.fail("bad varint")
		return 0
	}
	d.b = rest
	return v
}

func (d *decoder) varint() int64 {
	x := d.uvarint()
	return int64(x>>1) ^ -int64(x&1) // zig-zag, as binary.Varint
}

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("%d does not fit 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (d *decoder) count() int {
	v := d.uvarint()
	if v > maxCount || v > uint64(len(d.b)) {
		// Every counted item takes at least one byte.
		d.fail("count %d with %d bytes left", v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) raw(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("length %d with %d bytes left", n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string {
	p := d.raw(d.uvarint())
	if d.intern == nil {
		return string(p)
	}
	if s, ok := d.intern[string(p)]; ok {
		return s
	}
	if len(d.intern) >= maxIntern {
		return string(p)
	}
	s := string(p)
	d.intern[s] = s
	return s
}

// maxIntern bounds the strings a decoder shares.
const maxIntern = 1 << 16

func (d *decoder) bytes() []byte { return d.raw(d.uvarint()) }

func (d *decoder) value() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.raw(n - 1)
}

func (d *decoder) time() netcode.Time {
	return netcode.Time{Nanos: d.varint(), Version: d.u32(), Creator: d.u32()}
}

func (d *decoder) locks() []netcode.ReadLock {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	var ls []netcode.ReadLock
	if d.arena != nil {
		ls = d.arena.takeLocks(n)
	} else {
		ls = make([]netcode.ReadLock, n)
	}
	for i := range ls {
		ls[i] = netcode.ReadLock{Path: d.str(), Start: d.time(), End: d.time()}
	}
	return ls
}
