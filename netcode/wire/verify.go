package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// The Go FlatBuffers runtime reads whatever offsets a buffer holds and
// panics on a bad one, so every message is checked here before a generated
// accessor touches it. The checks follow the FlatBuffers layout: a root
// uoffset to a table; a table starts with an soffset to its vtable; a vtable
// holds its own size, the table's size and one voffset per field; vectors and
// strings are a uoffset to a 32-bit length followed by the elements (strings
// also by a NUL). All arithmetic is done in int64 on lengths below 2^31, so
// nothing can wrap.

// fbTable is a table whose header and vtable have been checked.
type fbTable struct {
	buf   []byte
	pos   int64 // table start
	vt    int64 // vtable start
	vtLen int64 // vtable size in bytes
	tLen  int64 // table size in bytes
}

func le16(b []byte, at int64) int64 { return int64(binary.LittleEndian.Uint16(b[at:])) }
func le32(b []byte, at int64) int64 { return int64(binary.LittleEndian.Uint32(b[at:])) }

// rootTable checks the root offset and table of a message body.
func rootTable(buf []byte) (fbTable, error) {
	if len(buf) < 4 {
		return fbTable{}, fmt.Errorf("%w: message body of %d bytes", ErrTruncated, len(buf))
	}
	if len(buf) > maxFrameCeiling {
		return fbTable{}, fmt.Errorf("%w: message body of %d bytes", ErrTooLarge, len(buf))
	}
	return tableAt(buf, le32(buf, 0))
}

// tableAt checks the table starting at pos.
func tableAt(buf []byte, pos int64) (fbTable, error) {
	n := int64(len(buf))
	if pos < 0 || pos+4 > n {
		return fbTable{}, fmt.Errorf("%w: table at %d outside %d bytes", ErrBadOffset, pos, n)
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(buf[pos:])))
	if vt < 0 || vt+4 > n {
		return fbTable{}, fmt.Errorf("%w: vtable at %d outside %d bytes", ErrBadOffset, vt, n)
	}
	t := fbTable{buf: buf, pos: pos, vt: vt, vtLen: le16(buf, vt), tLen: le16(buf, vt+2)}
	if t.vtLen < 4 || t.vtLen%2 != 0 || vt+t.vtLen > n {
		return fbTable{}, fmt.Errorf("%w: vtable size %d at %d", ErrBadOffset, t.vtLen, vt)
	}
	if t.tLen < 4 || pos+t.tLen > n {
		return fbTable{}, fmt.Errorf("%w: table size %d at %d", ErrBadOffset, t.tLen, pos)
	}
	return t, nil
}

// field returns the absolute position of the field in vtable slot slot
// (4, 6, 8, ...) holding size bytes, or 0 when the field is absent.
func (t fbTable) field(slot, size int64) (int64, error) {
	if slot >= t.vtLen {
		return 0, nil // written by an older schema: absent
	}
	o := le16(t.buf, t.vt+slot)
	if o == 0 {
		return 0, nil
	}
	if o < 4 || o+size > t.tLen {
		return 0, fmt.Errorf("%w: field %d at %d+%d beyond table size %d", ErrBadOffset, slot, o, size, t.tLen)
	}
	return t.pos + o, nil
}

// indirect follows the uoffset stored at p.
func (t fbTable) indirect(p int64) (int64, error) {
	q := p + le32(t.buf, p)
	if q+4 > int64(len(t.buf)) {
		return 0, fmt.Errorf("%w: offset to %d outside %d bytes", ErrBadOffset, q, len(t.buf))
	}
	return q, nil
}

// vector checks the vector in slot and returns the position of its first
// element and its length; n is 0 when the field is absent. max bounds the
// element count.
func (t fbTable) vector(slot, elemSize int64, max int) (start, n int64, err error) {
	p, err := t.field(slot, 4)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	q, err := t.indirect(p)
	if err != nil {
		return 0, 0, err
	}
	n = le32(t.buf, q)
	if n > int64(max) {
		return 0, 0, fmt.Errorf("%w: vector in field %d has %d elements, limit %d", ErrTooLarge, slot, n, max)
	}
	start = q + 4
	if start+n*elemSize > int64(len(t.buf)) {
		return 0, 0, fmt.Errorf("%w: vector in field %d of %d elements overruns the message", ErrBadOffset, slot, n)
	}
	return start, n, nil
}

// stringAt checks a string whose uoffset is stored at p: length within max,
// bytes and NUL terminator inside the buffer, valid UTF-8 (FlatBuffers
// strings are UTF-8; a strict reader refuses anything else).
func (t fbTable) stringAt(p int64, max int) error {
	q, err := t.indirect(p)
	if err != nil {
		return err
	}
	n := le32(t.buf, q)
	if n > int64(max) {
		return fmt.Errorf("%w: string of %d bytes, limit %d", ErrTooLarge, n, max)
	}
	if q+4+n+1 > int64(len(t.buf)) {
		return fmt.Errorf("%w: string of %d bytes overruns the message", ErrBadOffset, n)
	}
	if t.buf[q+4+n] != 0 {
		return fmt.Errorf("%w: string without NUL terminator", ErrBadOffset)
	}
	if !utf8.Valid(t.buf[q+4 : q+4+n]) {
		return fmt.Errorf("%w: string %q is not valid UTF-8", ErrMalformed, t.buf[q+4:q+4+n])
	}
	return nil
}

// str checks the string in slot.
func (t fbTable) str(slot int64, max int) error {
	p, err := t.field(slot, 4)
	if err != nil || p == 0 {
		return err
	}
	return t.stringAt(p, max)
}

// strings checks a vector of strings in slot.
func (t fbTable) strings(slot int64, maxElems, maxLen int) (int64, error) {
	start, n, err := t.vector(slot, 4, maxElems)
	if err != nil {
		return 0, err
	}
	for i := int64(0); i < n; i++ {
		if err := t.stringAt(start+4*i, maxLen); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// tables checks a vector of tables in slot, each with check.
func (t fbTable) tables(slot int64, maxElems int, check func(fbTable) error) (int64, error) {
	start, n, err := t.vector(slot, 4, maxElems)
	if err != nil {
		return 0, err
	}
	for i := int64(0); i < n; i++ {
		q, err := t.indirect(start + 4*i)
		if err != nil {
			return 0, err
		}
		e, err := tableAt(t.buf, q)
		if err != nil {
			return 0, err
		}
		if err := check(e); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// scalars checks fixed-size fields (scalars and structs): pairs of slot and
// size.
func (t fbTable) scalars(slotSizes ...int64) error {
	for i := 0; i+1 < len(slotSizes); i += 2 {
		if _, err := t.field(slotSizes[i], slotSizes[i+1]); err != nil {
			return err
		}
	}
	return nil
}
