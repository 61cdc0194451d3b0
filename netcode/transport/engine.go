package transport

import (
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/rewindnet/rewind/netcode/transport/internal/arq"
	"github.com/rewindnet/rewind/netcode/transport/internal/fec"
)

// Packet layout on the wire, outermost first: with a Secret, a 16-byte
// random nonce and a CRC-32 (IEEE) of the rest, all encrypted with
// kcp-go's AES block crypt; with FEC, the FEC header (package fec); then
// KCP segments (package arq). This is kcp-go's layout, so kcp-go
// sessions are peers of the endpoint.
const (
	nonceSize       = 16
	crcSize         = 4
	cryptHeaderSize = nonceSize + crcSize
	maxPacket       = 1500 // UDP payload, bytes: the largest MTU allowed
	// batchSize is how many packets one recvmmsg or sendmmsg call moves.
	batchSize = 64
)

// endpoint is the socket loop: one goroutine owns a packet conn and every
// KCP conversation on it. It drains the socket in batches (recvmmsg on a
// UDP socket), routes each packet to its conversation by the sender's
// address, hands the frames that completed to their sessions (one Notify
// per session per batch), flushes each touched conversation once, and
// sends every packet of the batch in one sendmmsg. Its only timer is the
// socket's read deadline, set to the earliest conversation deadline in a
// heap; a conversation is in the heap for its next KCP timer (only while
// data or acknowledgements are owed), its keepalive, its idle timeout,
// its handshake timeout or its closing linger, whichever comes first.
// Other goroutines (Session.Send, Close) queue work and wake the loop by
// moving the read deadline to the past.
type endpoint struct {
	// immutable after construction
	cfg   Config
	conn  net.PacketConn
	batch batchConn // nil: one packet per ReadFrom/WriteTo
	block kcp.BlockCrypt
	epoch time.Time
	gmu   sync.Mutex // guards guard (the loop admits, Stats reads)
	guard *Guard
	local net.Addr
	l     *Listener // receives handshaken sessions
	own   bool      // the endpoint closes conn when it stops
	done  chan struct{}

	// sleeping is set while the loop waits on the socket with nothing
	// queued; whoever queues work and swaps it off wakes the loop.
	sleeping atomic.Bool

	mu        sync.Mutex // guards the fields below
	dirty     []*econn   // conversations with work queued by other goroutines
	accepting bool
	stopping  bool  // close: finish every session and return
	stopErr   error // why

	// owned by the loop goroutine
	convs     map[netip.AddrPort]*econn
	timers    timerHeap
	touched   []*econn
	pending   int // conversations in their handshake
	rng       *mrand.ChaCha8
	rbuf      []ipv4.Message
	wbuf      []ipv4.Message
	wfree     [][]byte
	scratch   []byte
	wall      time.Time // when the batch being handled was read
	readErr   error
	readFails int      // read errors in a row
	listDirty []*econn // the dirty list being handled, reused
}

// batchConn is the batch API of x/net's ipv4 and ipv6 packet conns
// (recvmmsg and sendmmsg on Linux).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type econnState uint8

const (
	stHandshake econnState = iota // waiting for the hello record
	stOpen                        // handed to the owner
	stGone                        // finished; lingers to absorb and acknowledge late packets
)

// econn is one conversation of the endpoint.
type econn struct {
	// immutable after construction
	ep   *endpoint
	key  netip.AddrPort
	addr *net.UDPAddr

	// owned by the loop goroutine
	s         *Session // nil until the handshake completes
	state     econnState
	arq       *arq.Conn
	fenc      *fec.Encoder
	fdec      *fec.Decoder
	born      int64 // ms
	lastRecv  int64 // ms, the last record received
	lastSend  int64 // ms, the last record written
	goneAt    int64 // ms
	closeSent bool
	touched   bool
	signal    bool  // frames were handed to the session in this round
	at        int64 // heap deadline, ms
	index     int   // heap index, -1 when not in the heap

	// dirty is set while the conversation is on endpoint.dirty (guarded
	// by endpoint.mu).
	dirty bool

	// published by the loop for Stats, ms
	srtt, rttvar, rto atomic.Uint32
}

// engineCounters are the endpoints' process-wide counters, added to
// kcp-go's in Stats.Global.
var engineCounters struct {
	retransmits, fastRetransmits, lost atomic.Uint64
	fecRecovered, fecErrors, checksum  atomic.Uint64
	pktsIn, pktsOut, bytesIn, bytesOut atomic.Uint64
	open, passive, inputErrors         atomic.Uint64
}

func newEndpoint(conn net.PacketConn, cfg Config, own bool, l *Listener) (*endpoint, error) {
	block, err := cfg.blockCrypt()
	if err != nil {
		return nil, err
	}
	guard, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("transport: seed: %w", err)
	}
	e := &endpoint{
		cfg:       cfg,
		conn:      conn,
		block:     block,
		guard:     guard,
		epoch:     time.Now(),
		local:     conn.LocalAddr(),
		l:         l,
		own:       own,
		done:      make(chan struct{}),
		accepting: true,
		convs:     make(map[netip.AddrPort]*econn),
		rng:       mrand.NewChaCha8(seed),
		scratch:   make([]byte, 0, maxPacket),
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil && !la.IP.IsUnspecified() {
			e.batch = ipv6.NewPacketConn(uc)
		} else {
			e.batch = ipv4.NewPacketConn(uc)
		}
	}
	n := 1
	if e.batch != nil {
		n = batchSize
	}
	e.rbuf = make([]ipv4.Message, n)
	for i := range e.rbuf {
		e.rbuf[i].Buffers = [][]byte{make([]byte, maxPacket)}
	}
	go e.loop()
	return e, nil
}

// now is the endpoint's clock, ms since it started.
func (e *endpoint) now() int64 { return int64(time.Since(e.epoch) / time.Millisecond) }

// wake makes a sleeping loop look at its queues.
func (e *endpoint) wake() {
	if e.sleeping.CompareAndSwap(true, false) {
		e.conn.SetReadDeadline(longAgo)
	}
}

// markDirty queues c for the loop (its session has frames to send, is
// closing or closed).
func (e *endpoint) markDirty(c *econn) {
	e.mu.Lock()
	if !c.dirty {
		c.dirty = true
		e.dirty = append(e.dirty, c)
	}
	e.mu.Unlock()
	e.wake()
}

// stopAccepting refuses new conversations from now on. An endpoint that
// does not own its conn returns once its last session is gone.
func (e *endpoint) stopAccepting() {
	e.mu.Lock()
	e.accepting = false
	e.mu.Unlock()
	e.wake()
}

// close finishes every session with err and stops the loop; with an owned
// conn it closes the conn.
func (e *endpoint) close(err error) {
	e.mu.Lock()
	if !e.stopping {
		e.stopping, e.stopErr = true, err
	}
	e.mu.Unlock()
	e.wake()
	if e.own {
		e.conn.Close()
	}
	<-e.done
}

// loop is the endpoint's goroutine.
func (e *endpoint) loop() {
	defer close(e.done)
	for {
		e.mu.Lock()
		stop, accepting, pending := e.stopping, e.accepting, len(e.dirty) > 0
		e.mu.Unlock()
		if stop || e.readErr != nil || (!accepting && !e.own && len(e.convs) == 0 && !pending) {
			e.shutdown()
			return
		}
		deadline := time.Time{}
		if len(e.timers) > 0 {
			deadline = e.epoch.Add(time.Duration(e.timers[0].at) * time.Millisecond)
		}
		e.conn.SetReadDeadline(deadline)
		e.sleeping.Store(true)
		e.mu.Lock()
		pending = len(e.dirty) > 0 || e.stopping
		e.mu.Unlock()
		if pending {
			if e.sleeping.Swap(false) {
				e.conn.SetReadDeadline(longAgo)
			}
		}
		n, err := e.read()
		e.sleeping.Store(false)
		now, wall := e.now(), time.Now()
		e.wall = wall
		switch {
		case err == nil, isTimeout(err):
			e.readFails = 0
		case isClosedConn(err):
			e.readErr = err
		default:
			// A transient socket error; one that persists ends the loop.
			if e.readFails++; e.readFails > 100 {
				e.readErr = err
			}
		}
		for i := range n {
			m := &e.rbuf[i]
			e.input(now, m.Buffers[0][:m.N], m.Addr)
		}
		e.service(now)
		if e.cfg.Coalesce > 0 && n > 0 {
			// Let the next batch gather (Config.Coalesce); the timers
			// and queued sends wait as long at most.
			wait := e.cfg.Coalesce
			if len(e.timers) > 0 {
				wait = min(wait, time.Until(e.epoch.Add(time.Duration(e.timers[0].at)*time.Millisecond)))
			}
			if wait > 0 {
				time.Sleep(wait)
			}
		}
	}
}

// read reads a batch of packets, blocking until one arrives, the deadline
// passes or the loop is woken.
func (e *endpoint) read() (int, error) {
	if e.batch != nil {
		for i := range e.rbuf {
			e.rbuf[i].Buffers[0] = e.rbuf[i].Buffers[0][:maxPacket]
		}
		return e.batch.ReadBatch(e.rbuf, 0)
	}
	m := &e.rbuf[0]
	n, addr, err := e.conn.ReadFrom(m.Buffers[0][:maxPacket])
	if err != nil {
		return 0, err
	}
	m.N, m.Addr = n, addr
	return 1, nil
}

// service handles what the owners queued, the due timers and the touched
// conversations, then sends every packet produced.
func (e *endpoint) service(now int64) {
	e.mu.Lock()
	list := e.dirty
	e.dirty = e.listDirty[:0]
	for _, c := range list {
		c.dirty = false
	}
	e.mu.Unlock()
	for i, c := range list {
		list[i] = nil
		e.pump(now, c)
	}
	e.listDirty = list[:0]
	for len(e.timers) > 0 && e.timers[0].at <= now {
		c := e.timers[0]
		heap.Pop(&e.timers)
		e.timer(now, c)
	}
	// settle may touch more conversations (a failure, a close): the list
	// grows while it is walked, and each entry is settled once.
	for i := 0; i < len(e.touched); i++ {
		e.settle(now, e.touched[i])
	}
	for i, c := range e.touched {
		c.touched = false
		e.touched[i] = nil
	}
	e.touched = e.touched[:0]
	e.flushWrites()
}

func (e *endpoint) touch(c *econn) {
	if !c.touched {
		c.touched = true
		e.touched = append(e.touched, c)
	}
}

// input handles one received packet.
func (e *endpoint) input(now int64, pkt []byte, from net.Addr) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return
	}
	engineCounters.pktsIn.Add(1)
	engineCounters.bytesIn.Add(uint64(len(pkt)))
	key := ua.AddrPort()
	key = netip.AddrPortFrom(key.Addr().Unmap(), key.Port())
	c := e.convs[key]
	if c == nil {
		// No conversation: only a proper opening within the handshake
		// rates gets one (the guard decrypts a copy to tell).
		e.gmu.Lock()
		ok := e.guard.Admit(int64(time.Since(e.epoch)), key, pkt)
		e.gmu.Unlock()
		if !ok {
			return
		}
	}
	if e.block != nil {
		if len(pkt) < cryptHeaderSize+arq.Overhead {
			engineCounters.checksum.Add(1)
			return
		}
		e.block.Decrypt(pkt, pkt)
		if crc32.ChecksumIEEE(pkt[cryptHeaderSize:]) != binary.LittleEndian.Uint32(pkt[nonceSize:]) {
			engineCounters.checksum.Add(1)
			return
		}
		pkt = pkt[cryptHeaderSize:]
	}
	if c != nil && c.restarts(pkt, e.cfg.DataShards > 0) {
		// The peer started a new conversation from the same address.
		if c.s != nil && c.state == stOpen {
			c.s.finish(&CloseError{Reason: "the peer started a new conversation", Remote: true, Err: fmt.Errorf("%w: peer restarted", ErrStream)})
		}
		e.drop(c)
		c = nil
	}
	if c == nil {
		c = e.open(now, key, ua, pkt)
		if c == nil {
			return
		}
	}
	e.touch(c)
	fecOn := e.cfg.DataShards > 0
	if fecOn {
		if !fec.IsFEC(pkt) {
			engineCounters.inputErrors.Add(1)
			return
		}
		if p := fec.Payload(pkt); p != nil {
			c.feed(now, p, true)
		}
		failed := c.fdec.Failed
		c.fdec.Add(pkt, func(p []byte) {
			engineCounters.fecRecovered.Add(1)
			c.feed(now, p, false)
		})
		if c.fdec.Failed != failed {
			engineCounters.fecErrors.Add(1)
		}
		return
	}
	c.feed(now, pkt, true)
}

// restarts reports whether pkt opens another conversation than c's: a
// push segment numbered 0 under another conversation id.
func (c *econn) restarts(pkt []byte, fecOn bool) bool {
	seg := pkt
	if fecOn {
		seg = fec.Payload(pkt)
	}
	return len(seg) >= arq.Overhead && seg[4] == 81 && binary.LittleEndian.Uint32(seg[12:]) == 0 &&
		binary.LittleEndian.Uint32(seg) != c.arq.Conv()
}

// feed gives one KCP packet to c's ARQ core.
func (c *econn) feed(now int64, p []byte, regular bool) {
	if err := c.arq.Input(uint32(now), p, regular); err != nil {
		engineCounters.inputErrors.Add(1)
	}
}

// open starts a conversation for the first packet from an unknown
// address: it must carry a KCP push segment, the hello record's first.
// Handshakes in progress are bounded by Config.AcceptQueue.
func (e *endpoint) open(now int64, key netip.AddrPort, ua *net.UDPAddr, pkt []byte) *econn {
	e.mu.Lock()
	accepting := e.accepting && !e.stopping
	e.mu.Unlock()
	if !accepting || e.pending >= e.cfg.AcceptQueue {
		return nil
	}
	seg := pkt
	if e.cfg.DataShards > 0 {
		seg = fec.Payload(pkt)
	}
	// The hello record is the dialer's first segment, number 0, and
	// nothing else is sent before the welcome.
	if len(seg) < arq.Overhead || seg[4] != 81 || binary.LittleEndian.Uint32(seg[12:]) != 0 {
		return nil
	}
	conv := binary.LittleEndian.Uint32(seg)
	c := &econn{ep: e, key: key, addr: ua, born: now, lastRecv: now, lastSend: now, index: -1}
	c.arq = arq.New(conv, e.arqConfig())
	if e.cfg.DataShards > 0 {
		var err error
		if c.fenc, err = fec.NewEncoder(e.cfg.DataShards, e.cfg.ParityShards); err != nil {
			return nil
		}
		if c.fdec, err = fec.NewDecoder(e.cfg.DataShards, e.cfg.ParityShards); err != nil {
			return nil
		}
	}
	e.convs[key] = c
	e.gmu.Lock()
	e.guard.Opened(key)
	e.gmu.Unlock()
	e.pending++
	engineCounters.open.Add(1)
	engineCounters.passive.Add(1)
	return c
}

func (e *endpoint) arqConfig() arq.Config {
	return arq.Config{
		MTU:          e.cfg.MTU - e.headerRoom(),
		SendWindow:   e.cfg.SendWindow,
		RecvWindow:   e.cfg.RecvWindow,
		Interval:     uint32(e.cfg.Interval / time.Millisecond),
		NoDelay:      e.cfg.NoDelay,
		FastResend:   e.cfg.Resend,
		NoCongestion: e.cfg.NoCongestion,
	}
}

// headerRoom is the bytes in front of the KCP segments in every packet.
func (e *endpoint) headerRoom() int {
	n := 0
	if e.block != nil {
		n += cryptHeaderSize
	}
	if e.cfg.DataShards > 0 {
		n += fec.DataHeaderSize
	}
	return n
}

// settle finishes a touched conversation's round: parse the records that
// arrived, move queued frames into KCP, flush when anything is owed,
// hand the frames over and schedule its timer.
func (e *endpoint) settle(now int64, c *econn) {
	if c.state != stGone {
		e.parse(now, c)
	}
	e.pump(now, c)
	e.flushConn(now, c, false)
	if c.signal {
		c.signal = false
		if c.s != nil {
			c.s.signal()
		}
	}
	e.schedule(now, c)
}

// parse takes the complete records off c's stream.
func (e *endpoint) parse(now int64, c *econn) {
	wall := e.wall
	for c.state != stGone {
		st := c.arq.Stream()
		if len(st) < headerSize {
			return
		}
		kind, n, err := checkHeader(st[:headerSize], e.cfg.MaxFrame)
		if err != nil {
			e.fail(now, c, err)
			return
		}
		if len(st) < headerSize+n {
			return
		}
		payload := st[headerSize : headerSize+n]
		c.lastRecv = now
		if c.state == stHandshake {
			if kind != kindHello || checkHello(payload) != nil {
				e.drop(c) // not a peer of ours: silence
				return
			}
			c.arq.Consume(headerSize + n)
			e.welcome(now, c)
			continue
		}
		s := c.s
		switch kind {
		case kindFrame:
			f := Frame{Data: append([]byte(nil), payload...), At: wall}
			s.mu.Lock()
			s.stats.FramesReceived++
			s.stats.BytesReceived += uint64(n)
			s.mu.Unlock()
			if err := s.pushFrame(f); err != nil {
				c.arq.Consume(headerSize + n)
				e.fail(now, c, err)
				return
			}
			c.signal = true
		case kindKeepAlive:
		case kindClose:
			c.arq.Consume(headerSize + n)
			s.beginClose(termPeer, &CloseError{Reason: strings.ToValidUTF8(string(payload), "?"), Remote: true, Err: ErrPeerClosed})
			e.pump(now, c)
			return
		case kindCloseAck:
			s.mu.Lock()
			if !s.ackedOnce {
				s.ackedOnce = true
				close(s.acked)
			}
			term := s.term
			s.mu.Unlock()
			if term != nil && term.kind == termLocal {
				c.arq.Consume(headerSize + n)
				s.finish(term.err)
				e.gone(now, c)
				return
			}
		default:
			c.arq.Consume(headerSize + n)
			e.fail(now, c, fmt.Errorf("%w: record kind %d after the handshake", ErrProtocol, kind))
			return
		}
		c.arq.Consume(headerSize + n)
	}
}

// welcome answers a hello and hands the session to the listener.
func (e *endpoint) welcome(now int64, c *econn) {
	e.pending--
	c.state = stOpen
	c.write(now, appendRecord(e.scratch[:0], kindWelcome, helloPayload()))
	s := newEngineSession(e.cfg, c, e.local, c.addr)
	c.s = s
	if e.l == nil || !e.l.offer(s) {
		s.beginClose(termFail, &CloseError{Reason: "accept queue full"})
	}
}

// write queues a record on c's stream.
func (c *econn) write(now int64, rec []byte) {
	c.arq.Write(rec)
	c.lastSend = now
}

// fail closes c after a local failure, telling the peer why.
func (e *endpoint) fail(now int64, c *econn, cause error) {
	if c.s == nil {
		e.drop(c)
		return
	}
	ce := &CloseError{Reason: truncateReason(cause.Error()), Err: cause}
	c.s.beginClose(termFail, ce)
	e.pump(now, c)
}

// pump moves c's queued frames into KCP while its window has room and
// carries out a termination once they are all in.
func (e *endpoint) pump(now int64, c *econn) {
	s := c.s
	if s == nil || c.state == stGone {
		if s != nil && c.state == stGone {
			e.touch(c)
		}
		return
	}
	e.touch(c)
	limit := 2 * e.cfg.SendWindow
	var frames, bytes int
	s.mu.Lock()
	term, finished := s.term, s.err != nil
	if !finished && (term == nil || term.kind == termLocal) {
		for c.arq.Pending() < limit {
			f, ok := s.queue.pop()
			if !ok {
				break
			}
			c.write(now, appendRecord(e.scratch[:0], kindFrame, f))
			frames++
			bytes += len(f)
		}
	}
	queued := s.queue.len()
	s.stats.FramesSent += uint64(frames)
	s.stats.BytesSent += uint64(bytes)
	s.mu.Unlock()
	if finished {
		e.gone(now, c)
		return
	}
	if term == nil || (term.kind == termLocal && queued > 0) || c.closeSent {
		return
	}
	switch term.kind {
	case termLocal:
		c.write(now, appendRecord(e.scratch[:0], kindClose, []byte(term.err.Reason)))
		c.closeSent = true // Close waits for the ack, at most CloseLinger
	case termFail:
		c.write(now, appendRecord(e.scratch[:0], kindClose, []byte(term.err.Reason)))
		c.closeSent = true
		s.finish(term.err)
		e.gone(now, c)
	case termPeer:
		c.write(now, appendRecord(e.scratch[:0], kindCloseAck, nil))
		c.closeSent = true
		s.finish(term.err)
		e.gone(now, c)
	}
}

// gone retires c: it lingers CloseLinger to retransmit what it sent last
// (a close reason or its ack) and absorb late packets, then is dropped.
func (e *endpoint) gone(now int64, c *econn) {
	if c.state == stGone {
		return
	}
	if c.state == stHandshake {
		e.pending--
	}
	c.state = stGone
	c.goneAt = now
	e.touch(c)
}

// drop forgets c at once.
func (e *endpoint) drop(c *econn) {
	if c.state == stHandshake {
		e.pending--
	}
	c.state = stGone
	if e.convs[c.key] == c {
		delete(e.convs, c.key)
		engineCounters.open.Add(^uint64(0))
		e.gmu.Lock()
		e.guard.Closed(c.key)
		e.gmu.Unlock()
	}
	if c.index >= 0 {
		heap.Remove(&e.timers, c.index)
	}
}

// timer runs c's due deadline.
func (e *endpoint) timer(now int64, c *econn) {
	switch c.state {
	case stHandshake:
		if now-c.born >= ms(e.cfg.HandshakeTimeout) {
			e.drop(c)
			return
		}
	case stOpen:
		if now-c.lastRecv >= ms(e.cfg.IdleTimeout) {
			if c.s != nil {
				c.s.finish(&CloseError{Reason: fmt.Sprintf("nothing received for %v", e.cfg.IdleTimeout), Err: ErrIdleTimeout})
			}
			e.gone(now, c)
			e.drop(c)
			return
		}
		if now-c.lastSend >= ms(e.cfg.KeepAlive) {
			c.write(now, appendRecord(e.scratch[:0], kindKeepAlive, nil))
		}
	case stGone:
		if now-c.goneAt >= ms(e.cfg.CloseLinger) {
			e.drop(c)
			return
		}
	}
	e.touch(c)
}

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// schedule files c in the timer heap at its earliest deadline.
func (e *endpoint) schedule(now int64, c *econn) {
	if e.convs[c.key] != c {
		return // dropped
	}
	at := int64(-1)
	take := func(t int64) {
		if at < 0 || t < at {
			at = t
		}
	}
	if d, ok := c.arq.Deadline(uint32(now)); ok {
		take(now + int64(int32(d-uint32(now))))
	}
	switch c.state {
	case stHandshake:
		take(c.born + ms(e.cfg.HandshakeTimeout))
	case stOpen:
		take(c.lastRecv + ms(e.cfg.IdleTimeout))
		take(c.lastSend + ms(e.cfg.KeepAlive))
	case stGone:
		take(c.goneAt + ms(e.cfg.CloseLinger))
	}
	if at <= now {
		at = now + 1 // a timer due now was just served: next millisecond
	}
	c.at = at
	if c.index >= 0 {
		heap.Fix(&e.timers, c.index)
	} else {
		heap.Push(&e.timers, c)
	}
}

// flushConn sends what c's KCP owes now; force sends pending
// acknowledgements too.
func (e *endpoint) flushConn(now int64, c *econn, force bool) {
	d, ok := c.arq.Deadline(uint32(now))
	due := ok && int32(d-uint32(now)) <= 0
	if !force && !due && !c.arq.Owed(e.cfg.AckNoDelay) {
		return
	}
	r0, f0, l0 := c.arq.Retransmits, c.arq.FastRetransmits, c.arq.LostSegments
	err := c.arq.Flush(uint32(now), func(p []byte) { e.emit(now, c, p) })
	if c.arq.Retransmits != r0 {
		engineCounters.retransmits.Add(c.arq.Retransmits - r0)
		engineCounters.fastRetransmits.Add(c.arq.FastRetransmits - f0)
		engineCounters.lost.Add(c.arq.LostSegments - l0)
	}
	srtt, rttvar, rto := c.arq.RTT()
	c.srtt.Store(srtt)
	c.rttvar.Store(rttvar)
	c.rto.Store(rto)
	if err != nil && c.state == stOpen {
		if c.s != nil {
			c.s.finish(&CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)})
		}
		e.gone(now, c)
		e.drop(c)
	}
}

// emit wraps one KCP packet (FEC, encryption) and queues it, with any
// parity packets, for the batch send.
func (e *endpoint) emit(now int64, c *econn, p []byte) {
	room := e.headerRoom()
	b := e.wbuffer()[:room+len(p)]
	copy(b[room:], p)
	var parity [][]byte
	if c.fenc != nil {
		off := 0
		if e.block != nil {
			off = cryptHeaderSize
		}
		parity = c.fenc.Seal(uint32(now), b[off:])
	}
	e.queue(c, b)
	for _, ps := range parity {
		pb := e.wbuffer()
		n := 0
		if e.block != nil {
			n = cryptHeaderSize
		}
		pb = append(pb[:n], ps...)
		e.queue(c, pb)
	}
}

// queue seals b (encryption) and adds it to the batch.
func (e *endpoint) queue(c *econn, b []byte) {
	if e.block != nil {
		var nonce [nonceSize]byte
		binary.LittleEndian.PutUint64(nonce[:], e.rng.Uint64())
		binary.LittleEndian.PutUint64(nonce[8:], e.rng.Uint64())
		copy(b, nonce[:])
		binary.LittleEndian.PutUint32(b[nonceSize:], crc32.ChecksumIEEE(b[cryptHeaderSize:]))
		e.block.Encrypt(b, b)
	}
	e.wbuf = append(e.wbuf, ipv4.Message{Buffers: [][]byte{b}, Addr: c.addr})
	if len(e.wbuf) >= batchSize {
		e.flushWrites()
	}
}

func (e *endpoint) wbuffer() []byte {
	if n := len(e.wfree); n > 0 {
		b := e.wfree[n-1]
		e.wfree = e.wfree[:n-1]
		return b[:0]
	}
	return make([]byte, 0, maxPacket)
}

// flushWrites sends the batch.
func (e *endpoint) flushWrites() {
	if len(e.wbuf) == 0 {
		return
	}
	var bytes uint64
	for i := range e.wbuf {
		bytes += uint64(len(e.wbuf[i].Buffers[0]))
	}
	if e.batch != nil {
		for sent := 0; sent < len(e.wbuf); {
			n, err := e.batch.WriteBatch(e.wbuf[sent:], 0)
			if err != nil {
				break // a socket that cannot send: KCP retransmits, or the idle timeout ends it
			}
			sent += n
		}
	} else {
		for i := range e.wbuf {
			e.conn.WriteTo(e.wbuf[i].Buffers[0], e.wbuf[i].Addr)
		}
	}
	engineCounters.pktsOut.Add(uint64(len(e.wbuf)))
	engineCounters.bytesOut.Add(bytes)
	for i := range e.wbuf {
		if len(e.wfree) < 4*batchSize {
			e.wfree = append(e.wfree, e.wbuf[i].Buffers[0])
		}
		e.wbuf[i] = ipv4.Message{}
	}
	e.wbuf = e.wbuf[:0]
}

// shutdown finishes every session and forgets every conversation.
func (e *endpoint) shutdown() {
	e.mu.Lock()
	err := e.stopErr
	e.mu.Unlock()
	if err == nil {
		err = e.readErr
	}
	if err == nil {
		err = ErrListenerClosed
	}
	for _, c := range e.convs {
		if c.s != nil && c.state != stGone {
			c.s.finish(&CloseError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrStream, err)})
		}
		e.drop(c)
	}
	if e.l != nil {
		e.l.stop(fmt.Errorf("%w: %w", ErrListenerClosed, err))
	}
}

// guardStats returns the guard's counters.
func (e *endpoint) guardStats() GuardStats {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	return e.guard.Stats()
}

// isClosedConn reports a read error that ends the loop.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// timerHeap orders conversations by deadline.
type timerHeap []*econn

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	c := x.(*econn)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.index = -1
	*h = old[:n-1]
	return c
}
