// Package arq is a KCP-compatible automatic repeat request core: the
// reliable, ordered byte stream of one KCP conversation, as a pure state
// machine. It speaks the KCP segment format (so a kcp-go session in stream
// mode is its peer) but owns no clock, goroutine or socket: every call
// takes the time, in milliseconds on the caller's clock, and packets go
// out through a function the caller passes to Flush.
//
// The caller drives it: Input for each packet received, Write to queue
// bytes, Stream and Consume to take the bytes received in order, Flush to
// send acknowledgements, new data and due retransmissions, and Deadline to
// learn when Flush must run again if nothing else happens. A conversation
// with nothing in flight and no acknowledgement owed has no deadline, so a
// caller serving many conversations keeps timers only for busy ones.
//
// # Segment format
//
// Every segment is a 24-byte little-endian header and its data; a packet
// carries one or more segments back to back:
//
//	conv u32 | cmd u8 | frg u8 | wnd u16 | ts u32 | sn u32 | una u32 | len u32 | data
//
// cmd is push (81, data), ack (82), window ask (83) or window tell (84).
// wnd is the sender's free receive window in segments, ts the sender's
// clock (ms) when it sent the segment (echoed in the ack, which gives the
// round trip), sn the segment's number, una the next segment number the
// sender expects (everything before it arrived). This core always sends
// frg 0 (KCP's stream mode) and treats received data as one byte stream.
package arq

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Overhead is the size of a segment header, bytes.
const Overhead = 24

// Segment commands.
const (
	cmdPush = 81
	cmdAck  = 82
	cmdWask = 83
	cmdWins = 84
)

// Timing bounds, ms.
const (
	rtoNoDelayMin = 30     // minimum RTO in no-delay mode
	rtoMin        = 100    // minimum RTO otherwise
	rtoDefault    = 200    // RTO before the first measurement
	rtoMax        = 60000  // largest RTO
	probeInit     = 500    // first window probe after the peer's window closed
	probeLimit    = 120000 // largest wait between window probes
	threshInit    = 2      // initial slow-start threshold, segments
	threshMin     = 2
	// DeadLink is how many times a segment is sent before the link is
	// declared dead.
	DeadLink = 20
)

// Errors of Input. The packet is dropped; the conversation stays usable.
var (
	ErrShort    = errors.New("arq: packet shorter than a segment header")
	ErrConv     = errors.New("arq: segment of another conversation")
	ErrTrunc    = errors.New("arq: segment data truncated")
	ErrCommand  = errors.New("arq: unknown segment command")
	ErrDeadLink = errors.New("arq: a segment was sent too many times without an acknowledgement")
)

// Config tunes a conversation. Zero values are not valid; the transport
// fills every field.
type Config struct {
	MTU          int    // largest packet, bytes (headers included)
	SendWindow   int    // segments in flight at most
	RecvWindow   int    // segments buffered out of order at most
	Interval     uint32 // ms between timer flushes while anything is owed
	NoDelay      bool   // lower minimum RTO, gentler RTO back-off
	FastResend   int    // resend after this many later acks (0: off)
	NoCongestion bool   // no congestion window (games prefer latency)
}

// segment is one push segment in the send path.
type segment struct {
	sn       uint32
	ts       uint32 // when last sent
	resendAt uint32 // when it is due again
	rto      uint32
	fastack  uint32 // later acks seen since it was last sent
	xmit     uint32 // times sent
	data     []byte // at most mss bytes, owned
}

// rseg is an out-of-order segment waiting for the ones before it.
type rseg struct {
	sn   uint32
	data []byte
}

type ack struct{ sn, ts uint32 }

// Conn is one conversation. Not safe for concurrent use.
type Conn struct {
	conv uint32
	cfg  Config
	mss  int

	sndUna, sndNxt, rcvNxt uint32
	srtt, rttvar           int32
	rto, minRTO            uint32
	rmtWnd                 uint32
	cwnd, ssthresh, incr   uint32

	probeAsk, probeTell bool
	probeAt, probeWait  uint32

	flushAt   uint32 // the next interval flush while acks or data are owed
	flushSet  bool   // flushAt is armed
	fastDue   bool   // a segment reached the fast-resend count
	dead      bool
	sendQueue []segment // written, not yet in the window
	sendBuf   []segment // in flight, by sn
	recvBuf   []rseg    // out of order, by sn
	acks      []ack
	stream    []byte // received in order, not yet consumed
	consumed  int    // stream[:consumed] was taken
	free      [][]byte
	out       []byte // the packet being built by Flush

	// Stats.
	Retransmits, FastRetransmits, LostSegments uint64
}

// New returns a conversation with id conv.
func New(conv uint32, cfg Config) *Conn {
	c := &Conn{
		conv:     conv,
		cfg:      cfg,
		mss:      cfg.MTU - Overhead,
		rto:      rtoDefault,
		minRTO:   rtoMin,
		rmtWnd:   uint32(cfg.RecvWindow),
		cwnd:     1,
		ssthresh: threshInit,
	}
	if cfg.NoDelay {
		c.minRTO = rtoNoDelayMin
	}
	c.incr = uint32(c.mss)
	return c
}

// Conv returns the conversation id.
func (c *Conn) Conv() uint32 { return c.conv }

// RTT returns the smoothed round trip, its variance and the current
// retransmission timeout, ms.
func (c *Conn) RTT() (srtt, rttvar, rto uint32) {
	return uint32(max(c.srtt, 0)), uint32(max(c.rttvar, 0)), c.rto
}

// Dead reports whether a segment was sent DeadLink times without an
// acknowledgement: the peer is gone.
func (c *Conn) Dead() bool { return c.dead }

// Pending returns the segments written and not yet acknowledged.
func (c *Conn) Pending() int { return len(c.sendQueue) + len(c.sendBuf) }

// diff is later - earlier on the wrapping 32-bit clock or sequence.
func diff(later, earlier uint32) int32 { return int32(later - earlier) }

func (c *Conn) buf() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, c.mss)
}

func (c *Conn) recycle(b []byte) {
	if cap(b) == c.mss && len(c.free) < 64 {
		c.free = append(c.free, b)
	}
}

// Write queues p for the peer, packing it into segments of at most the
// segment size (appending to the last queued segment while it has room).
// It always takes all of p; the caller bounds what it queues with
// Pending.
func (c *Conn) Write(p []byte) {
	if n := len(c.sendQueue); n > 0 {
		last := &c.sendQueue[n-1]
		if room := c.mss - len(last.data); room > 0 {
			k := min(room, len(p))
			last.data = append(last.data, p[:k]...)
			p = p[k:]
		}
	}
	for len(p) > 0 {
		k := min(c.mss, len(p))
		b := append(c.buf(), p[:k]...)
		c.sendQueue = append(c.sendQueue, segment{data: b})
		p = p[k:]
	}
}

// Stream returns the bytes received in order and not yet consumed. The
// slice is valid until the next Input or Consume.
func (c *Conn) Stream() []byte { return c.stream[c.consumed:] }

// Consume marks the first n bytes of Stream as taken.
func (c *Conn) Consume(n int) {
	c.consumed += n
	if c.consumed == len(c.stream) {
		c.stream, c.consumed = c.stream[:0], 0
	} else if c.consumed > 4096 && c.consumed*2 > len(c.stream) {
		k := copy(c.stream, c.stream[c.consumed:])
		c.stream, c.consumed = c.stream[:k], 0
	}
}

// Input takes one packet (decrypted, FEC header removed) received at now.
// regular is false for a packet rebuilt by FEC: its window and timestamps
// are stale, so it updates neither the peer's window nor the RTT.
func (c *Conn) Input(now uint32, pkt []byte, regular bool) error {
	if len(pkt) < Overhead {
		return ErrShort
	}
	oldUna := c.sndUna
	var latest uint32
	acked := false
	for len(pkt) >= Overhead {
		conv := binary.LittleEndian.Uint32(pkt)
		cmd := pkt[4]
		wnd := binary.LittleEndian.Uint16(pkt[6:])
		ts := binary.LittleEndian.Uint32(pkt[8:])
		sn := binary.LittleEndian.Uint32(pkt[12:])
		una := binary.LittleEndian.Uint32(pkt[16:])
		n := binary.LittleEndian.Uint32(pkt[20:])
		pkt = pkt[Overhead:]
		if conv != c.conv {
			return fmt.Errorf("%w: %d, want %d", ErrConv, conv, c.conv)
		}
		if uint64(n) > uint64(len(pkt)) {
			return ErrTrunc
		}
		if cmd < cmdPush || cmd > cmdWins {
			return fmt.Errorf("%w %d", ErrCommand, cmd)
		}
		if regular {
			c.rmtWnd = uint32(wnd)
		}
		c.ackUpTo(una)
		switch cmd {
		case cmdAck:
			c.ackOne(sn)
			c.countFastAck(sn, ts)
			acked, latest = true, ts
		case cmdPush:
			if diff(sn, c.rcvNxt+uint32(c.cfg.RecvWindow)) < 0 {
				c.acks = append(c.acks, ack{sn, ts})
				if diff(sn, c.rcvNxt) >= 0 {
					c.receive(sn, pkt[:n])
				}
			}
		case cmdWask:
			c.probeTell = true
		case cmdWins:
		}
		pkt = pkt[n:]
	}
	if acked && regular && diff(now, latest) >= 0 {
		c.sampleRTT(diff(now, latest))
	}
	if diff(c.sndUna, oldUna) > 0 {
		c.grow()
	}
	return nil
}

// ackUpTo drops every segment before una: the peer has them all.
func (c *Conn) ackUpTo(una uint32) {
	k := 0
	for k < len(c.sendBuf) && diff(una, c.sendBuf[k].sn) > 0 {
		c.recycle(c.sendBuf[k].data)
		k++
	}
	if k > 0 {
		n := copy(c.sendBuf, c.sendBuf[k:])
		clear(c.sendBuf[n:])
		c.sendBuf = c.sendBuf[:n]
	}
	c.shrink()
}

func (c *Conn) shrink() {
	if len(c.sendBuf) > 0 {
		c.sndUna = c.sendBuf[0].sn
	} else {
		c.sndUna = c.sndNxt
	}
}

// ackOne drops segment sn, acknowledged alone.
func (c *Conn) ackOne(sn uint32) {
	if diff(sn, c.sndUna) < 0 || diff(sn, c.sndNxt) >= 0 {
		return
	}
	for i := range c.sendBuf {
		s := &c.sendBuf[i]
		if s.sn == sn {
			c.recycle(s.data)
			n := len(c.sendBuf) - 1
			copy(c.sendBuf[i:], c.sendBuf[i+1:])
			c.sendBuf[n] = segment{}
			c.sendBuf = c.sendBuf[:n]
			break
		}
		if diff(sn, s.sn) < 0 {
			break
		}
	}
	c.shrink()
}

// countFastAck counts an ack of sn against every earlier segment sent no
// later than the acknowledged one.
func (c *Conn) countFastAck(sn, ts uint32) {
	if c.cfg.FastResend <= 0 || diff(sn, c.sndUna) < 0 || diff(sn, c.sndNxt) >= 0 {
		return
	}
	for i := range c.sendBuf {
		s := &c.sendBuf[i]
		if diff(sn, s.sn) <= 0 {
			break
		}
		if diff(s.ts, ts) <= 0 {
			s.fastack++
			if s.fastack >= uint32(c.cfg.FastResend) {
				c.fastDue = true
			}
		}
	}
}

// receive files push segment sn (rcvNxt <= sn < rcvNxt+window) and moves
// whatever became contiguous onto the stream.
func (c *Conn) receive(sn uint32, data []byte) {
	if sn == c.rcvNxt {
		c.stream = append(c.stream, data...)
		c.rcvNxt++
		for len(c.recvBuf) > 0 && c.recvBuf[0].sn == c.rcvNxt {
			c.stream = append(c.stream, c.recvBuf[0].data...)
			c.recycle(c.recvBuf[0].data)
			n := copy(c.recvBuf, c.recvBuf[1:])
			c.recvBuf[n] = rseg{}
			c.recvBuf = c.recvBuf[:n]
			c.rcvNxt++
		}
		return
	}
	// Out of order: insert by sn unless it is a duplicate.
	i := len(c.recvBuf)
	for i > 0 && diff(c.recvBuf[i-1].sn, sn) > 0 {
		i--
	}
	if i > 0 && c.recvBuf[i-1].sn == sn {
		return
	}
	if len(data) > c.mss {
		return // larger than any segment this MTU allows: not from a peer with our settings
	}
	b := append(c.buf(), data...)
	c.recvBuf = append(c.recvBuf, rseg{})
	copy(c.recvBuf[i+1:], c.recvBuf[i:])
	c.recvBuf[i] = rseg{sn: sn, data: b}
}

// sampleRTT folds one round trip (ms) into the RTO, as RFC 6298 does.
func (c *Conn) sampleRTT(rtt int32) {
	if c.srtt == 0 {
		c.srtt, c.rttvar = rtt, rtt/2
	} else {
		d := rtt - c.srtt
		c.srtt += d / 8
		if d < 0 {
			d = -d
		}
		c.rttvar += (d - c.rttvar) / 4
		if c.srtt < 1 {
			c.srtt = 1
		}
	}
	rto := uint32(c.srtt) + max(c.cfg.Interval, uint32(max(c.rttvar, 0))*4)
	c.rto = min(max(c.minRTO, rto), rtoMax)
}

// grow opens the congestion window after new data was acknowledged.
func (c *Conn) grow() {
	if c.cfg.NoCongestion || c.cwnd >= c.rmtWnd {
		return
	}
	mss := uint32(c.mss)
	if c.cwnd < c.ssthresh {
		c.cwnd++
		c.incr += mss
	} else {
		c.incr = max(c.incr, mss)
		c.incr += mss*mss/c.incr + mss/16
		if (c.cwnd+1)*mss <= c.incr {
			c.cwnd = (c.incr + mss - 1) / mss
		}
	}
	if c.cwnd > c.rmtWnd {
		c.cwnd, c.incr = c.rmtWnd, c.rmtWnd*mss
	}
}

// Owed reports whether Flush has something to send right away: new data
// the window admits, a fast retransmission, a window probe answer, or
// acknowledgements when ackNow is set (otherwise acknowledgements wait
// for the interval flush, as KCP batches them).
func (c *Conn) Owed(ackNow bool) bool {
	switch {
	case ackNow && len(c.acks) > 0, c.fastDue, c.probeTell:
		return true
	}
	return c.admits()
}

// admits reports whether queued data may enter the window now.
func (c *Conn) admits() bool {
	return len(c.sendQueue) > 0 && diff(c.sndNxt, c.sndUna+c.window()) < 0
}

// window is how many segments may be in flight now.
func (c *Conn) window() uint32 {
	w := min(uint32(c.cfg.SendWindow), c.rmtWnd)
	if !c.cfg.NoCongestion {
		w = min(w, c.cwnd)
	}
	return w
}

// Deadline returns when Flush must next run at the latest, and false when
// nothing is owed at all (nothing in flight or queued, no acknowledgement
// or probe pending): then no timer is needed until the next Input or
// Write.
func (c *Conn) Deadline(now uint32) (uint32, bool) {
	at, ok := uint32(0), false
	take := func(t uint32) {
		if !ok || diff(t, at) < 0 {
			at, ok = t, true
		}
	}
	if len(c.acks) > 0 || c.probeTell {
		if c.flushSet {
			take(c.flushAt)
		} else {
			take(now)
		}
	}
	for i := range c.sendBuf {
		take(c.sendBuf[i].resendAt)
	}
	switch {
	case len(c.sendQueue) > 0 && c.rmtWnd == 0:
		if c.probeWait == 0 {
			take(now) // Flush starts the probe timer
		} else {
			take(c.probeAt)
		}
	case c.admits():
		take(now)
	}
	return at, ok
}

// Flush sends, through emit, acknowledgements, window probes, the new
// segments the window admits and the retransmissions due at now, packed
// into packets of at most MTU bytes. emit's slice is only valid during the
// call. It returns ErrDeadLink once a segment was sent DeadLink times.
func (c *Conn) Flush(now uint32, emit func(pkt []byte)) error {
	c.flushAt, c.flushSet = now+c.cfg.Interval, true
	if c.out == nil {
		c.out = make([]byte, 0, c.cfg.MTU)
	}
	wnd := c.recvFree()
	put := func(cmd byte, sn, ts uint32, data []byte) {
		if len(c.out)+Overhead+len(data) > c.cfg.MTU {
			emit(c.out)
			c.out = c.out[:0]
		}
		var h [Overhead]byte
		binary.LittleEndian.PutUint32(h[0:], c.conv)
		h[4] = cmd
		binary.LittleEndian.PutUint16(h[6:], wnd)
		binary.LittleEndian.PutUint32(h[8:], ts)
		binary.LittleEndian.PutUint32(h[12:], sn)
		binary.LittleEndian.PutUint32(h[16:], c.rcvNxt)
		binary.LittleEndian.PutUint32(h[20:], uint32(len(data)))
		c.out = append(c.out, h[:]...)
		c.out = append(c.out, data...)
	}
	for i, a := range c.acks {
		// An ack of a segment already below rcvNxt is implied by una;
		// the last one is sent anyway so the peer gets a fresh RTT sample.
		if diff(a.sn, c.rcvNxt) >= 0 || i == len(c.acks)-1 {
			put(cmdAck, a.sn, a.ts, nil)
		}
	}
	c.acks = c.acks[:0]

	if c.rmtWnd == 0 {
		if c.probeWait == 0 {
			c.probeWait = probeInit
			c.probeAt = now + c.probeWait
		} else if diff(now, c.probeAt) >= 0 {
			c.probeWait = min(max(c.probeWait, probeInit)*3/2, probeLimit)
			c.probeAt = now + c.probeWait
			c.probeAsk = true
		}
	} else {
		c.probeWait, c.probeAt = 0, 0
	}
	if c.probeAsk {
		put(cmdWask, 0, now, nil)
	}
	if c.probeTell {
		put(cmdWins, 0, now, nil)
	}
	c.probeAsk, c.probeTell = false, false

	win := c.window()
	moved := 0
	for moved < len(c.sendQueue) && diff(c.sndNxt, c.sndUna+win) < 0 {
		s := c.sendQueue[moved]
		moved++
		s.sn = c.sndNxt
		c.sndNxt++
		c.sendBuf = append(c.sendBuf, s)
	}
	if moved > 0 {
		n := copy(c.sendQueue, c.sendQueue[moved:])
		clear(c.sendQueue[n:])
		c.sendQueue = c.sendQueue[:n]
	}

	resend := uint32(c.cfg.FastResend)
	if c.cfg.FastResend <= 0 {
		resend = ^uint32(0)
	}
	var fast, lost uint64
	for i := range c.sendBuf {
		s := &c.sendBuf[i]
		send := false
		switch {
		case s.xmit == 0:
			send = true
			s.rto = c.rto
			s.resendAt = now + s.rto
		case s.fastack >= resend:
			send = true
			s.fastack = 0
			s.rto = c.rto
			s.resendAt = now + s.rto
			fast++
		case diff(now, s.resendAt) >= 0:
			send = true
			if c.cfg.NoDelay {
				s.rto += c.rto / 2
			} else {
				s.rto += c.rto
			}
			s.fastack = 0
			s.resendAt = now + s.rto
			lost++
		}
		if send {
			s.xmit++
			s.ts = now
			put(cmdPush, s.sn, s.ts, s.data)
			if s.xmit >= DeadLink {
				c.dead = true
			}
		}
	}
	c.fastDue = false
	if len(c.out) > 0 {
		emit(c.out)
		c.out = c.out[:0]
	}
	c.FastRetransmits += fast
	c.LostSegments += lost
	c.Retransmits += fast + lost
	if !c.cfg.NoCongestion {
		if fast > 0 {
			inflight := c.sndNxt - c.sndUna
			c.ssthresh = max(inflight/2, threshMin)
			c.cwnd = c.ssthresh + resend
			c.incr = c.cwnd * uint32(c.mss)
		}
		if lost > 0 {
			c.ssthresh = max(win/2, threshMin)
			c.cwnd, c.incr = 1, uint32(c.mss)
		}
		if c.cwnd < 1 {
			c.cwnd, c.incr = 1, uint32(c.mss)
		}
	}
	if c.dead {
		return ErrDeadLink
	}
	return nil
}

// recvFree is the receive window advertised to the peer: segments it may
// send beyond what arrived in order.
func (c *Conn) recvFree() uint16 {
	return uint16(max(c.cfg.RecvWindow-len(c.recvBuf), 0))
}
