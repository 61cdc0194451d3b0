package transport

import (
	"encoding/binary"
	"hash/crc32"
	"hash/maphash"
	"net/netip"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Guard decides, before anything is allocated, whether a packet from an
// address with no session may open one. Making a session costs a KCP
// state machine, FEC codecs and buffers, so without a guard garbage from
// many source addresses, or conversations that send a few bytes and stop,
// cost the server memory and handshake slots until real dials time out.
//
// A packet from an unknown address is admitted only if
//
//  1. it is a session opening: after decryption (its checksum verified)
//     and the FEC header, a KCP data segment with sequence number 0 whose
//     payload starts with the whole transport hello record (what a dialer
//     sends first, and resends until answered); anything else is dropped
//     for the cost of parsing it, and a conversation that sends part of a
//     hello never gets a session;
//  2. its source host (IP address) has openings left: each host may open
//     Config.HandshakeRatePerHost sessions per second (burst: two
//     seconds' worth), so one host cannot use up the rest;
//  3. openings are left overall: Config.HandshakeRate per second (burst:
//     one second's worth).
//
// Packets from an address with a live session, or admitted within the last
// few seconds (the opening's resends), pass without a check.
//
// A Guard is a pure state machine: time is an argument and it owns no
// goroutine or socket, so it can sit in front of any socket loop. It is
// not safe for concurrent use; the listener's socket loop (the endpoint)
// consults it for every packet from an address without a conversation,
// before anything is allocated, and tells it when conversations open and
// close.
type Guard struct {
	// immutable after construction
	block    kcp.BlockCrypt // nil: packets are not encrypted
	fec      bool
	perHost  float64 // openings per second per host
	hostCap  float64 // burst per host
	global   float64 // openings per second in all
	seed     maphash.Seed
	admitTTL int64 // ns an admission lets the address's packets pass before its session shows up

	hosts    [guardHostSlots]tokenBucket // per host, by a keyed hash of its IP: bounded memory
	all      tokenBucket
	live     map[netip.AddrPort]int   // sessions per address (sessions are keyed by address)
	admitted map[netip.AddrPort]int64 // address → admission time, until its session shows up
	queue    []admission              // admissions in time order, to expire them
	scratch  []byte                   // decryption copy

	stats GuardStats
}

// guardHostSlots is the number of per-host buckets. Hosts share a bucket
// when their keyed hashes collide, which only makes the guard stricter.
const guardHostSlots = 4096

// GuardStats counts a guard's decisions about packets from addresses
// without a session.
type GuardStats struct {
	Admitted    uint64 // openings let through to a new session
	NotOpening  uint64 // dropped: not a session opening (garbage, a partial hello, a stray segment)
	HostLimited uint64 // dropped: the host's openings were used up
	Limited     uint64 // dropped: the openings of all hosts were used up
}

type admission struct {
	addr netip.AddrPort
	at   int64
}

// tokenBucket holds at most burst tokens, refilled at rate per second.
type tokenBucket struct {
	tokens float64
	last   int64
	primed bool
}

func (b *tokenBucket) take(now int64, rate, burst float64) bool {
	if !b.primed {
		b.tokens, b.last, b.primed = burst, now, true
	}
	if now > b.last {
		b.tokens = min(burst, b.tokens+rate*float64(now-b.last)/float64(time.Second))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// NewGuard returns the guard for a listener with cfg (its Secret, FEC
// shards and handshake rates), which must be valid.
func NewGuard(cfg Config) (*Guard, error) {
	block, err := cfg.blockCrypt()
	if err != nil {
		return nil, err
	}
	return &Guard{
		block:    block,
		fec:      cfg.DataShards > 0,
		perHost:  cfg.HandshakeRatePerHost,
		hostCap:  2 * cfg.HandshakeRatePerHost,
		global:   cfg.HandshakeRate,
		seed:     maphash.MakeSeed(),
		admitTTL: int64(cfg.HandshakeTimeout),
		live:     make(map[netip.AddrPort]int),
		admitted: make(map[netip.AddrPort]int64),
	}, nil
}

// Admit reports whether the packet pkt from addr, received at now
// (nanoseconds on any monotonic clock), may open a session.
func (g *Guard) Admit(now int64, addr netip.AddrPort, pkt []byte) bool {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if g.live[addr] > 0 {
		return true
	}
	g.expire(now)
	if _, ok := g.admitted[addr]; ok {
		return true
	}
	if !g.opening(pkt) {
		g.stats.NotOpening++
		return false
	}
	host := &g.hosts[maphash.Comparable(g.seed, addr.Addr())%guardHostSlots]
	if !host.take(now, g.perHost, g.hostCap) {
		g.stats.HostLimited++
		return false
	}
	if !g.all.take(now, g.global, g.global) {
		g.stats.Limited++
		return false
	}
	g.stats.Admitted++
	g.admitted[addr] = now
	g.queue = append(g.queue, admission{addr, now})
	return true
}

// Opened records that a session for addr exists (the listener accepted
// its conversation); Closed, called once for each Opened, that it is gone.
// Packets from an address with a session pass unchecked.
func (g *Guard) Opened(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	g.live[addr]++
	delete(g.admitted, addr)
}

// Closed: see Opened.
func (g *Guard) Closed(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if g.live[addr] <= 1 {
		delete(g.live, addr)
		return
	}
	g.live[addr]--
}

// Stats returns the guard's counters.
func (g *Guard) Stats() GuardStats { return g.stats }

// expire forgets admissions older than admitTTL whose session never
// showed up (the handshake slots were full, or the packet was lost).
func (g *Guard) expire(now int64) {
	k := 0
	for k < len(g.queue) && now-g.queue[k].at >= g.admitTTL {
		a := g.queue[k]
		if at, ok := g.admitted[a.addr]; ok && at == a.at {
			delete(g.admitted, a.addr)
		}
		k++
	}
	if k > 0 {
		clear(g.queue[:k])
		g.queue = g.queue[k:]
	}
}

// Layout of what a dialer sends first, as kcp-go v5 frames it.
const (
	guardNonce     = 16   // kcp-go's crypt header: nonce
	guardCRC       = 4    // then a CRC32 (IEEE, little-endian) of the rest
	guardFECHeader = 8    // FEC seqid (4), type (2), size (2) before a data shard's segment
	guardFECData   = 0xf1 // FEC type of a data shard
	guardKCPHeader = 24   // conv(4) cmd(1) frg(1) wnd(2) ts(4) sn(4) una(4) len(4)
	guardKCPPush   = 81   // KCP command: data
)

// opening reports whether pkt is what a dialer sends first: a KCP data
// segment with sequence number 0 carrying the whole hello record.
func (g *Guard) opening(pkt []byte) bool {
	data := pkt
	if g.block != nil {
		if len(data) < guardNonce+guardCRC {
			return false
		}
		// Decrypt a copy: the endpoint decrypts the packet itself if it passes.
		g.scratch = append(g.scratch[:0], data...)
		g.block.Decrypt(g.scratch, g.scratch)
		data = g.scratch[guardNonce:]
		if crc32.ChecksumIEEE(data[guardCRC:]) != binary.LittleEndian.Uint32(data) {
			return false
		}
		data = data[guardCRC:]
	}
	if g.fec {
		if len(data) < guardFECHeader || binary.LittleEndian.Uint16(data[4:]) != guardFECData {
			return false
		}
		data = data[guardFECHeader:]
	}
	if len(data) < guardKCPHeader || data[4] != guardKCPPush || binary.LittleEndian.Uint32(data[12:]) != 0 {
		return false
	}
	n := binary.LittleEndian.Uint32(data[20:])
	if uint64(n) < uint64(len(helloRecord)) || uint64(n) > uint64(len(data)-guardKCPHeader) {
		return false
	}
	p := data[guardKCPHeader:]
	return string(p[:len(helloRecord)]) == string(helloRecord)
}

// helloRecord is the record a dialer writes first.
var helloRecord = appendRecord(nil, kindHello, helloPayload())
