// Package shardmap is the cluster's shard map: which authorities own which
// ranges of paths. A range is a path prefix plus a hash range of the path's
// next segment after the prefix, so a prefix can be split among nodes
// ("players/" by player id) without listing paths. Every range has one or
// more owners (replicas); the first is the range's primary.
//
// The map is a state-based CRDT, gossiped between authorities and merged:
// each range's entry is a last-writer-wins register ordered by (Version,
// Writer), and removing a range leaves a tombstone entry. Merging is
// idempotent, commutative and associative, so every node that has seen the
// same entries holds the same map, whatever the order and grouping they
// arrived in (TestMergeProperties). A node that changes the map stamps the
// change with a version above every version it has seen (a Lamport clock),
// so a change made after seeing another wins over it everywhere.
//
// Lookup is deterministic over the set of entries: where concurrent
// changes left live ranges that overlap, the newest entry (greatest
// Version, then Writer) wins, on every node alike.
//
// A Map is a pure value type with no goroutines or I/O; it is not safe for
// concurrent use.
package shardmap

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NodeID names an authority of the cluster (authority.Config.NodeID).
type NodeID = uint8

// Limits of a map and its entries.
const (
	MaxEntries     = 1 << 16 // entries a map holds, tombstones included
	MaxPrefixBytes = 1024    // a range's prefix, as a path
	MaxOwners      = 16      // owners of one range
)

// Errors of the package.
var (
	ErrInvalid = errors.New("shardmap: invalid")
	ErrFull    = errors.New("shardmap: too many entries")
	ErrDecode  = errors.New("shardmap: malformed encoding")
)

// Range is a set of paths: those under Prefix ("" for every path, else a
// prefix ending in '/') whose next segment hashes (SegmentHash) into
// [Lo, Hi]. Whole(prefix) covers every path under the prefix.
type Range struct {
	Prefix string
	Lo, Hi uint32
}

// Whole returns the range of every path under prefix.
func Whole(prefix string) Range { return Range{Prefix: prefix, Lo: 0, Hi: math.MaxUint32} }

// Validate reports whether r is well formed: a prefix of at most
// MaxPrefixBytes of UTF-8, empty or ending in '/' with no empty segment,
// and Lo ≤ Hi.
func (r Range) Validate() error {
	p := r.Prefix
	switch {
	case len(p) > MaxPrefixBytes:
		return fmt.Errorf("%w: prefix of %d bytes (limit %d)", ErrInvalid, len(p), MaxPrefixBytes)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: prefix %q is not UTF-8", ErrInvalid, p)
	case p != "" && (p[len(p)-1] != '/' || p[0] == '/' || strings.Contains(p, "//")):
		return fmt.Errorf("%w: prefix %q must be empty or segments each ending in '/'", ErrInvalid, p)
	case r.Lo > r.Hi:
		return fmt.Errorf("%w: hash range [%d, %d] is empty", ErrInvalid, r.Lo, r.Hi)
	}
	return nil
}

// Contains reports whether path is in r.
func (r Range) Contains(path string) bool {
	if !strings.HasPrefix(path, r.Prefix) {
		return false
	}
	h := SegmentHash(nextSegment(path[len(r.Prefix):]))
	return r.Lo <= h && h <= r.Hi
}

func (r Range) String() string {
	if r.Lo == 0 && r.Hi == math.MaxUint32 {
		return fmt.Sprintf("%q", r.Prefix)
	}
	return fmt.Sprintf("%q[%08x-%08x]", r.Prefix, r.Lo, r.Hi)
}

// ParseRange parses a range as String writes it, with or without the
// quotes: a prefix alone ("players/", "" for every path) is the whole
// prefix; "players/[00000000-7fffffff]" the paths under it whose next
// segment hashes into that range (hexadecimal, inclusive).
func ParseRange(s string) (Range, error) {
	prefix, bounds := s, ""
	if strings.HasSuffix(s, "]") {
		i := strings.LastIndexByte(s, '[')
		if i < 0 {
			return Range{}, fmt.Errorf("%w: range %q: a ']' without '['", ErrInvalid, s)
		}
		prefix, bounds = s[:i], s[i+1:len(s)-1]
	}
	if len(prefix) >= 2 && prefix[0] == '"' && prefix[len(prefix)-1] == '"' {
		prefix = prefix[1 : len(prefix)-1]
	}
	r := Whole(prefix)
	if bounds != "" {
		lo, hi, ok := strings.Cut(bounds, "-")
		l, err1 := strconv.ParseUint(lo, 16, 32)
		h, err2 := strconv.ParseUint(hi, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			return Range{}, fmt.Errorf("%w: range %q: want PREFIX[LO-HI], LO and HI hexadecimal 32-bit hashes", ErrInvalid, s)
		}
		r.Lo, r.Hi = uint32(l), uint32(h)
	}
	if err := r.Validate(); err != nil {
		return Range{}, err
	}
	return r, nil
}

func (r Range) compare(o Range) int {
	if c := strings.Compare(r.Prefix, o.Prefix); c != 0 {
		return c
	}
	if c := cmp.Compare(r.Lo, o.Lo); c != 0 {
		return c
	}
	return cmp.Compare(r.Hi, o.Hi)
}

func (r Range) overlaps(o Range) bool { return r.Prefix == o.Prefix && r.Lo <= o.Hi && o.Lo <= r.Hi }

// nextSegment returns the segment rest starts with.
func nextSegment(rest string) string {
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// SegmentHash is the hash that places a segment in a range: 32-bit
// FNV-1a of its bytes.
func SegmentHash(seg string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(seg))
	return h.Sum32()
}

// Entry is one range's state: its owners (the first is the primary) at a
// version, or a tombstone (Removed) once the range was dropped.
type Entry struct {
	Range   Range
	Owners  []NodeID
	Version uint64 // a Lamport stamp: the greater wins
	Writer  NodeID // the node that made the change; breaks ties of Version
	Removed bool
}

// newer reports whether e wins over o for the same range: greater
// (Version, Writer), and for the same stamp (which one writer never
// reuses) the greater encoding, so the choice never depends on order.
func (e *Entry) newer(o *Entry) bool {
	if e.Version != o.Version {
		return e.Version > o.Version
	}
	if e.Writer != o.Writer {
		return e.Writer > o.Writer
	}
	return bytes.Compare(appendEntry(nil, e), appendEntry(nil, o)) > 0
}

func (e *Entry) validate() error {
	if err := e.Range.Validate(); err != nil {
		return err
	}
	if e.Removed {
		if len(e.Owners) != 0 {
			return fmt.Errorf("%w: a removed range lists owners", ErrInvalid)
		}
		return nil
	}
	if len(e.Owners) == 0 || len(e.Owners) > MaxOwners {
		return fmt.Errorf("%w: %d owners (want 1 to %d)", ErrInvalid, len(e.Owners), MaxOwners)
	}
	for i, o := range e.Owners {
		if slices.Contains(e.Owners[:i], o) {
			return fmt.Errorf("%w: owner %d listed twice", ErrInvalid, o)
		}
	}
	return nil
}

// Primary returns the range's primary owner.
func (e *Entry) Primary() (NodeID, bool) {
	if e.Removed || len(e.Owners) == 0 {
		return 0, false
	}
	return e.Owners[0], true
}

// Map is the shard map. The zero value is not usable: call New.
type Map struct {
	entries map[Range]*Entry
	version uint64 // greatest Version seen
	// live indexes the entries that are not tombstones by prefix, each
	// list sorted by range; rebuilt on the first Lookup after a change.
	live  map[string][]*Entry
	stale bool
}

// New returns an empty map.
func New() *Map { return &Map{entries: make(map[Range]*Entry), live: make(map[string][]*Entry)} }

// Version returns the greatest version of any entry the map has seen (0
// for an empty map): two maps with the same entries have the same version.
func (m *Map) Version() uint64 { return m.version }

// Len returns the number of entries, tombstones included.
func (m *Map) Len() int { return len(m.entries) }

// Set gives range r the owners (the first is the primary), as node by,
// at a version above every version seen. It refuses a range that overlaps
// another live range of the same prefix (drop or change that one first).
// The returned entry is what to gossip.
func (m *Map) Set(r Range, owners []NodeID, by NodeID) (Entry, error) {
	e := Entry{Range: r, Owners: slices.Clone(owners), Version: m.version + 1, Writer: by}
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	for k, o := range m.entries {
		if !o.Removed && k != r && k.overlaps(r) {
			return Entry{}, fmt.Errorf("%w: %v overlaps the live range %v", ErrInvalid, r, k)
		}
	}
	if _, ok := m.entries[r]; !ok && len(m.entries) >= MaxEntries {
		return Entry{}, ErrFull
	}
	m.apply(&e)
	return e, nil
}

// Remove drops range r, as node by, leaving a tombstone that wins over
// every older entry of r. It reports false when r is not live.
func (m *Map) Remove(r Range, by NodeID) (Entry, bool) {
	if cur := m.entries[r]; cur == nil || cur.Removed {
		return Entry{}, false
	}
	e := Entry{Range: r, Version: m.version + 1, Writer: by, Removed: true}
	m.apply(&e)
	return e, true
}

// Apply merges one entry (from gossip). It reports whether the map
// changed. A malformed entry is refused; so is a new range beyond
// MaxEntries.
func (m *Map) Apply(e Entry) (bool, error) {
	if err := e.validate(); err != nil {
		return false, err
	}
	cur := m.entries[e.Range]
	if cur == nil && len(m.entries) >= MaxEntries {
		return false, ErrFull
	}
	if cur != nil && !e.newer(cur) {
		m.version = max(m.version, e.Version)
		return false, nil
	}
	e.Owners = slices.Clone(e.Owners)
	m.apply(&e)
	return true, nil
}

func (m *Map) apply(e *Entry) {
	m.entries[e.Range] = e
	m.version = max(m.version, e.Version)
	m.stale = true
}

// Merge merges every entry of o into m and reports whether m changed.
func (m *Map) Merge(o *Map) bool {
	changed := false
	for _, e := range o.entries {
		c, err := m.Apply(*e)
		changed = changed || c
		_ = err // o's entries are valid (they were applied to o); ErrFull drops the excess
	}
	return changed
}

// Compact drops the tombstones older than version before. Call it only
// with a version every member's map has reached: a member still holding an
// older live entry of the range would otherwise bring it back.
func (m *Map) Compact(before uint64) int {
	n := 0
	for k, e := range m.entries {
		if e.Removed && e.Version < before {
			delete(m.entries, k)
			n++
		}
	}
	return n
}

// Entries returns every entry, tombstones included, sorted by range.
func (m *Map) Entries() []Entry {
	out := make([]Entry, 0, len(m.entries))
	for _, e := range m.entries {
		c := *e
		c.Owners = slices.Clone(e.Owners)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Range.compare(b.Range) })
	return out
}

// Clone returns an independent copy of m.
func (m *Map) Clone() *Map {
	c := New()
	for k, e := range m.entries {
		ce := *e
		ce.Owners = slices.Clone(e.Owners)
		c.entries[k] = &ce
	}
	c.version = m.version
	c.stale = true
	return c
}

// Lookup returns the live entry whose range holds path: among the ranges
// of the longest prefix of path that has one holding it, the newest
// (greatest Version, then Writer).
func (m *Map) Lookup(path string) (Entry, bool) {
	m.reindex()
	// Prefixes of path, longest first: path[:i+1] for each '/' at i, then "".
	for i := len(path) - 1; i >= -1; i-- {
		if i >= 0 && path[i] != '/' {
			continue
		}
		prefix := path[:i+1]
		list := m.live[prefix]
		if len(list) == 0 {
			continue
		}
		h := SegmentHash(nextSegment(path[i+1:]))
		var best *Entry
		for _, e := range list {
			if e.Range.Lo > h {
				break // sorted by Lo
			}
			if h <= e.Range.Hi && (best == nil || e.newer(best)) {
				best = e
			}
		}
		if best != nil {
			c := *best
			c.Owners = slices.Clone(best.Owners)
			return c, true
		}
	}
	return Entry{}, false
}

// Owns reports whether node owns path (as primary or replica).
func (m *Map) Owns(node NodeID, path string) bool {
	e, ok := m.Lookup(path)
	return ok && slices.Contains(e.Owners, node)
}

func (m *Map) reindex() {
	if !m.stale {
		return
	}
	clear(m.live)
	for _, e := range m.entries {
		if !e.Removed {
			m.live[e.Range.Prefix] = append(m.live[e.Range.Prefix], e)
		}
	}
	for _, list := range m.live {
		slices.SortFunc(list, func(a, b *Entry) int { return a.Range.compare(b.Range) })
	}
	m.stale = false
}

// Digest is a hash of the map's entries: equal maps have equal digests,
// whatever order their entries arrived in.
func (m *Map) Digest() uint64 {
	h := fnv.New64a()
	var buf []byte
	for _, e := range m.Entries() {
		buf = appendEntry(buf[:0], &e)
		h.Write(buf)
	}
	return h.Sum64()
}

// Encoding: magic "RWSM", format byte 1, uvarint count, then the entries.
// An entry: uvarint prefix length, prefix, Lo and Hi (4 bytes each,
// big-endian), uvarint Version, Writer (1 byte), flags (1 byte: bit 0
// removed), uvarint owner count, owners (1 byte each).
var magic = []byte("RWSM")

const formatVersion = 1

// AppendBinary appends the encoding of the map's entries, sorted, to b.
func (m *Map) AppendBinary(b []byte) []byte {
	return AppendEntries(b, m.Entries())
}

// AppendEntries appends the encoding of entries to b (the map format, so
// Decode reads it as a map holding them): what to gossip for a change.
func AppendEntries(b []byte, entries []Entry) []byte {
	b = append(b, magic...)
	b = append(b, formatVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i := range entries {
		b = appendEntry(b, &entries[i])
	}
	return b
}

func appendEntry(b []byte, e *Entry) []byte {
	b = binary.AppendUvarint(b, uint64(len(e.Range.Prefix)))
	b = append(b, e.Range.Prefix...)
	b = binary.BigEndian.AppendUint32(b, e.Range.Lo)
	b = binary.BigEndian.AppendUint32(b, e.Range.Hi)
	b = binary.AppendUvarint(b, e.Version)
	b = append(b, e.Writer)
	var flags byte
	if e.Removed {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Owners)))
	return append(b, e.Owners...)
}

// DecodeEntries reads an encoding made by AppendBinary or AppendEntries.
// It treats b as hostile: every length is checked before use, and any
// malformed, oversize or trailing byte is an error wrapping ErrDecode.
func DecodeEntries(b []byte) ([]Entry, error) {
	if len(b) < len(magic)+1 || !bytes.Equal(b[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: no shard map header", ErrDecode)
	}
	if b[len(magic)] != formatVersion {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrDecode, b[len(magic)], formatVersion)
	}
	b = b[len(magic)+1:]
	n, k := binary.Uvarint(b)
	// Every entry takes at least 13 bytes, which bounds n by what is there
	// before anything is allocated.
	if k <= 0 || n > MaxEntries || n > uint64(len(b)-k)/13 {
		return nil, fmt.Errorf("%w: entry count", ErrDecode)
	}
	b = b[k:]
	out := make([]Entry, 0, n)
	for range n {
		var e Entry
		var err error
		if e, b, err = decodeEntry(b); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(b))
	}
	return out, nil
}

func decodeEntry(b []byte) (Entry, []byte, error) {
	var e Entry
	pl, k := binary.Uvarint(b)
	if k <= 0 || pl > MaxPrefixBytes || uint64(len(b)-k) < pl+8 {
		return e, nil, fmt.Errorf("%w: prefix", ErrDecode)
	}
	b = b[k:]
	e.Range.Prefix = string(b[:pl])
	b = b[pl:]
	e.Range.Lo = binary.BigEndian.Uint32(b)
	e.Range.Hi = binary.BigEndian.Uint32(b[4:])
	b = b[8:]
	v, k := binary.Uvarint(b)
	if k <= 0 || len(b)-k < 3 {
		return e, nil, fmt.Errorf("%w: version", ErrDecode)
	}
	e.Version = v
	b = b[k:]
	e.Writer = b[0]
	switch b[1] {
	case 0:
	case 1:
		e.Removed = true
	default:
		return e, nil, fmt.Errorf("%w: flags %#x", ErrDecode, b[1])
	}
	b = b[2:]
	no, k := binary.Uvarint(b)
	if k <= 0 || no > MaxOwners || uint64(len(b)-k) < no {
		return e, nil, fmt.Errorf("%w: owners", ErrDecode)
	}
	b = b[k:]
	if no > 0 {
		e.Owners = slices.Clone(b[:no])
	}
	b = b[no:]
	if err := e.validate(); err != nil {
		return e, nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return e, b, nil
}

// Decode reads a map encoded by AppendBinary.
func Decode(b []byte) (*Map, error) {
	entries, err := DecodeEntries(b)
	if err != nil {
		return nil, err
	}
	m := New()
	for _, e := range entries {
		if _, err := m.Apply(e); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDecode, err)
		}
	}
	return m, nil
}
