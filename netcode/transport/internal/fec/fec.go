// Package fec is the forward error correction layer of the KCP packet
// format kcp-go speaks, built on Reed–Solomon erasure codes from
// github.com/klauspost/reedsolomon: every DataShards packets are followed
// by ParityShards parity packets, and a receiver that got any DataShards
// packets of such a group rebuilds the data packets it lost.
//
// # Packet format
//
// Every packet starts with a 6-byte little-endian header:
//
//	seqid u32 | type u16
//
// seqid counts the packets a sender sent, data and parity alike, modulo
// the largest multiple of DataShards+ParityShards that fits in 32 bits;
// packet seqid belongs to group seqid/(DataShards+ParityShards), at
// position seqid%(DataShards+ParityShards), the first DataShards of which
// are data. type is 0xf1 for data and 0xf2 for parity. A data packet goes
// on with a u16 size (the size field and the payload, in bytes) and the
// payload (KCP segments). A parity packet goes on with the parity of the
// group's data packets, each taken from its size field on and padded with
// zeros to the longest of them. A sender that paused (500 ms or more
// between the last two data packets of a group) skips the group's parity
// but still counts its seqids, so a receiver never waits for them.
//
// The type field sits where a KCP segment has its command and fragment
// bytes, which never hold 0xf1 or 0xf2 together, so a receiver tells FEC
// packets from plain KCP packets by it.
package fec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// Header sizes, bytes.
const (
	HeaderSize     = 6              // seqid, type
	DataHeaderSize = HeaderSize + 2 // and the size of a data packet
)

// Packet types.
const (
	TypeData   = 0xf1
	TypeParity = 0xf2
)

// pauseMs is the gap between two data packets, ms, after which the
// group's parity is not sent: the data it would protect is old news.
const pauseMs = 500

// keepGroups is how many groups before the newest a decoder keeps open.
const keepGroups = 3

// maxShard is the largest shard, bytes: a UDP payload.
const maxShard = 1500

// ErrConfig: shard counts out of range.
var ErrConfig = errors.New("fec: bad shard counts")

// IsFEC reports whether pkt (decrypted) is an FEC packet.
func IsFEC(pkt []byte) bool {
	if len(pkt) < HeaderSize {
		return false
	}
	t := binary.LittleEndian.Uint16(pkt[4:])
	return t == TypeData || t == TypeParity
}

// Encoder adds FEC headers to outgoing packets and makes parity packets.
// Not safe for concurrent use.
type Encoder struct {
	data, parity int
	paws         uint32
	next         uint32
	count        int      // data packets of the current group so far
	maxLen       int      // longest shard of the current group
	shards       [][]byte // the group's shards (size field on), then parity
	lastAt       uint32
	rs           reedsolomon.Encoder
	out          [][]byte // parity packets handed out by Seal
}

// NewEncoder returns an encoder for groups of data+parity packets.
func NewEncoder(data, parity int) (*Encoder, error) {
	rs, err := codec(data, parity)
	if err != nil {
		return nil, err
	}
	e := &Encoder{data: data, parity: parity, rs: rs, paws: paws(data + parity)}
	e.shards = make([][]byte, data+parity)
	for i := range e.shards {
		e.shards[i] = make([]byte, 0, maxShard)
	}
	e.out = make([][]byte, parity)
	for i := range e.out {
		e.out[i] = make([]byte, 0, maxShard+HeaderSize)
	}
	return e, nil
}

// codecs holds one Reed–Solomon codec per shard layout, shared by every
// Encoder and Decoder of that layout: a codec is safe for concurrent use,
// and its cache of inverted matrices (one per pattern of lost shards) is
// then filled once for all sessions instead of once per session, which a
// server with thousands of sessions, or a load generator, paid in
// rebuilds and memory.
var codecs struct {
	sync.Mutex
	m map[[2]int]reedsolomon.Encoder
}

func codec(data, parity int) (reedsolomon.Encoder, error) {
	if data < 1 || parity < 1 || data+parity > 255 {
		return nil, fmt.Errorf("%w: %d+%d", ErrConfig, data, parity)
	}
	codecs.Lock()
	defer codecs.Unlock()
	if rs := codecs.m[[2]int{data, parity}]; rs != nil {
		return rs, nil
	}
	rs, err := reedsolomon.New(data, parity)
	if err != nil {
		return nil, fmt.Errorf("fec: %w", err)
	}
	if codecs.m == nil {
		codecs.m = make(map[[2]int]reedsolomon.Encoder)
	}
	codecs.m[[2]int{data, parity}] = rs
	return rs, nil
}

func paws(n int) uint32 { return 0xffffffff / uint32(n) * uint32(n) }

// Seal fills the DataHeaderSize bytes at the front of pkt (the payload
// follows them) at now (ms). When the packet completes a group it returns
// the group's parity packets, valid until the next Seal.
func (e *Encoder) Seal(now uint32, pkt []byte) (parity [][]byte) {
	binary.LittleEndian.PutUint32(pkt, e.next)
	binary.LittleEndian.PutUint16(pkt[4:], TypeData)
	binary.LittleEndian.PutUint16(pkt[HeaderSize:], uint16(len(pkt)-HeaderSize))
	e.next = (e.next + 1) % e.paws
	body := pkt[HeaderSize:]
	e.shards[e.count] = append(e.shards[e.count][:0], body...)
	e.maxLen = max(e.maxLen, len(body))
	e.count++
	gap := now - e.lastAt
	e.lastAt = now
	if e.count < e.data {
		return nil
	}
	e.count = 0
	n := e.maxLen
	e.maxLen = 0
	if gap >= pauseMs {
		e.next = (e.next + uint32(e.parity)) % e.paws
		return nil
	}
	for i := range e.shards {
		s := e.shards[i][:n]
		if i < e.data {
			clear(s[len(e.shards[i]):])
		}
		e.shards[i] = s
	}
	if err := e.rs.Encode(e.shards); err != nil {
		e.next = (e.next + uint32(e.parity)) % e.paws
		return nil
	}
	for i := range e.out {
		p := e.out[i][:HeaderSize]
		binary.LittleEndian.PutUint32(p, e.next)
		binary.LittleEndian.PutUint16(p[4:], TypeParity)
		e.next = (e.next + 1) % e.paws
		e.out[i] = append(p, e.shards[e.data+i]...)
	}
	return e.out
}

// Decoder collects the packets of each group and rebuilds lost data
// packets. Not safe for concurrent use.
//
// The groups it keeps open (the newest and keepGroups before it) live in
// a ring of keepGroups+1 slots indexed by group id: a packet finds its
// group without a map lookup, and a slot is reused, its shards released,
// when a newer group takes it.
type Decoder struct {
	data, parity, size int
	paws               uint32
	rs                 reedsolomon.Encoder
	ring               [keepGroups + 1]group
	newest             uint32
	any                bool
	bufs               [][]byte // spare shard buffers
	work               [][]byte

	// Recovered counts data packets rebuilt; Failed, groups that could
	// not be.
	Recovered, Failed uint64
}

type group struct {
	id     uint32
	used   bool     // id is this slot's group
	shards [][]byte // by position; nil: not received
	have   int
	data   int
	done   bool
}

// NewDecoder returns a decoder for groups of data+parity packets.
func NewDecoder(data, parity int) (*Decoder, error) {
	rs, err := codec(data, parity)
	if err != nil {
		return nil, err
	}
	d := &Decoder{data: data, parity: parity, size: data + parity, rs: rs, paws: paws(data + parity),
		work: make([][]byte, data+parity)}
	for i := range d.ring {
		d.ring[i].shards = make([][]byte, d.size)
	}
	return d, nil
}

// Payload returns the payload of a data packet, or nil when pkt is not a
// well-formed one.
func Payload(pkt []byte) []byte {
	if len(pkt) < DataHeaderSize || binary.LittleEndian.Uint16(pkt[4:]) != TypeData {
		return nil
	}
	n := int(binary.LittleEndian.Uint16(pkt[HeaderSize:]))
	if n < 2 || HeaderSize+n > len(pkt) {
		return nil
	}
	return pkt[DataHeaderSize : HeaderSize+n]
}

// Add files an FEC packet and calls rebuilt with the payload of each data
// packet of its group that it could rebuild (valid during the call only).
// The caller feeds data packets' own payloads (Payload) to KCP itself.
func (d *Decoder) Add(pkt []byte, rebuilt func(payload []byte)) {
	if len(pkt) < HeaderSize || len(pkt) > maxShard+HeaderSize {
		return
	}
	seq := binary.LittleEndian.Uint32(pkt)
	typ := binary.LittleEndian.Uint16(pkt[4:])
	if seq >= d.paws {
		return
	}
	pos := int(seq % uint32(d.size))
	if (pos < d.data) != (typ == TypeData) {
		return // not our shard layout
	}
	id := seq / uint32(d.size)
	if d.any && diff(d.newest, id) > keepGroups {
		return // too old
	}
	if !d.any || diff(id, d.newest) > 0 {
		d.newest, d.any = id, true
	}
	// The groups open are the newest and keepGroups before it: distinct
	// slots. One in id's slot that is not id is older than them.
	g := &d.ring[id%uint32(len(d.ring))]
	if !g.used || g.id != id {
		d.release(g)
		*g = group{id: id, used: true, shards: g.shards}
	}
	if g.done || g.shards[pos] != nil {
		return
	}
	g.shards[pos] = append(d.buf(), pkt[HeaderSize:]...)
	g.have++
	if pos < d.data {
		g.data++
	}
	if g.have < d.data {
		return
	}
	g.done = true
	if g.data == d.data {
		d.release(g)
		return
	}
	n := 0
	for _, s := range g.shards {
		n = max(n, len(s))
	}
	for i, s := range g.shards {
		if s != nil {
			k := len(s)
			s = s[:n]
			clear(s[k:])
		} else if i < d.data {
			// Empty with room: the library rebuilds into it instead of
			// allocating.
			s = d.buf()
			g.shards[i] = s // released with the group
			s = s[:0]
		}
		d.work[i] = s
	}
	if err := d.rs.ReconstructData(d.work); err != nil {
		d.Failed++
		d.release(g)
		return
	}
	for i := range d.data {
		if len(g.shards[i]) != 0 {
			continue // received
		}
		s := d.work[i]
		if len(s) < 2 {
			continue
		}
		k := int(binary.LittleEndian.Uint16(s))
		if k < 2 || k > len(s) {
			continue
		}
		d.Recovered++
		rebuilt(s[2:k])
	}
	d.release(g)
}

func diff(a, b uint32) int32 { return int32(a - b) }

func (d *Decoder) buf() []byte {
	if n := len(d.bufs); n > 0 {
		b := d.bufs[n-1]
		d.bufs = d.bufs[:n-1]
		return b[:0]
	}
	return make([]byte, 0, maxShard)
}

// release drops a group's shards; the group stays in its slot, marked
// done when it is, until a newer group takes the slot, so late packets of
// it are ignored.
func (d *Decoder) release(g *group) {
	for i, s := range g.shards {
		if s != nil && cap(s) == maxShard && len(d.bufs) < 4*d.size {
			d.bufs = append(d.bufs, s)
		}
		g.shards[i] = nil
	}
	clear(d.work)
}
