package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/rewindnet/rewind/authority/internal/field"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/timesync"
)

// The players run in loops: one goroutine per loop owns one UDP socket
// and every player on it, with no goroutine, socket or timer per player.
// A player is a netcode.ClientCore (prediction, time sync, watches) over
// a transport.Peer (the transport's protocol without a socket). Each
// player has an address of its own on the loopback network
// (127.1.x.y: Linux answers for the whole of 127.0.0.0/8), so the
// authority sees one address per player as it would over the Internet,
// while the loop sends every player's packets from its one socket
// (IP_PKTINFO picks the source address per packet, sendmmsg sends a batch)
// and tells their answers apart by the address they were sent to
// (recvmmsg, IP_PKTINFO). Each player's link is simulated in the loop:
// lagsim.Link decides every packet each way and a timing wheel (heap.go)
// holds the packets in flight until they are due.

// catchUp is how late a player's frames may fall before the late ones
// are skipped instead of made up.
const catchUp = 200 * time.Millisecond

// maxPerLoop bounds the addresses one loop hands out (127.1.0.1 on).
const maxPerLoop = 250 * 250

// playerAddr is the loopback address of player i of a loop.
func playerAddr(loop, i int) net.IP {
	return net.IPv4(127, byte(1+loop), byte(i/250), byte(1+i%250)).To4()
}

// loopStats are what the main goroutine reads of a loop, under its mutex.
type loopStats struct {
	ready     int // players connected with a synced clock
	dead      int // players whose session failed (not redialled)
	firstDead error
}

// loop drives a set of players from one goroutine.
type loop struct {
	o       options
	id      int
	conn    *net.UDPConn
	pc      *ipv4.PacketConn
	raddr   *net.UDPAddr
	players []*player
	byAddr  map[[4]byte]*player

	active    atomic.Bool // players move and shoot
	measuring atomic.Bool // calls made now are measured
	stop      atomic.Bool

	mu    sync.Mutex // held by the loop while it works; readers take it
	stats loopStats

	// owned by the loop goroutine
	epoch    time.Time // the heaps' times are ns since it
	inflight packetWheel
	due      []packet // the packets the tick delivers
	timers   playerHeap
	touched  []*player
	rbuf     []ipv4.Message
	wbuf     []ipv4.Message // the batch being sent: wn messages
	wn       int
	cm       ipv4.ControlMessage
	free     [][]byte
	posPaths map[uint32]string // field.PosPath of the players seen, made once
}

// callInfo is what a player remembers of a call until its result.
type callInfo struct {
	at      time.Time
	shoot   bool
	hit     bool // the prediction hit
	measure bool // made in the measured span
}

// player is one simulated player.
type player struct {
	l       *loop
	addr    [4]byte
	oob     []byte // IP_PKTINFO selecting addr as the source
	peer    *transport.Peer
	core    *netcode.ClientCore
	clock   *timesync.Clock
	up      lagsim.Link
	down    lagsim.Link
	linkRng *rand.Rand
	rng     *rand.Rand
	seq     uint64

	started bool // the core was connected on the open peer
	ready   bool
	dead    bool
	frameAt time.Time // the next frame
	at      int64     // the timer heap's deadline (ns since the loop's epoch): the next frame or the peer's
	index   int
	touched bool

	id      uint32
	entity  string
	pos     string // field.PosPath(id)
	shot    string // field.ShotPath(id)
	placed  bool
	vx, vy  int16
	turnAt  time.Time
	shootAt time.Time
	calls   map[netcode.CallID]callInfo
	evbuf   []netcode.Event // the core's events of the frame, drained into this room (AppendEvents)
	visible map[uint32]struct{}
	corr    map[netcode.CallID]bool

	// measured; reset by the main goroutine under l.mu
	hitsSeen, hitsConfirmed int
	disconnects             int
	moves                   uint64    // move calls made while measuring
	latencies               []float64 // ms, call to result
	udpIn, udpOut           uint64    // bytes on the wire, both ways
}

// newLoop opens the loop's socket and makes its players.
func newLoop(o options, id, n int, raddr *net.UDPAddr, seed uint64) (*loop, error) {
	if n > maxPerLoop {
		return nil, fmt.Errorf("%d players on one loop, at most %d", n, maxPerLoop)
	}
	// The socket listens on every address, as it must to hear the
	// players' loopback addresses; only the authority's packets are read.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(8 << 20)
	conn.SetWriteBuffer(8 << 20)
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("IP_PKTINFO: %w", err)
	}
	now := time.Now()
	l := &loop{o: o, id: id, conn: conn, pc: pc, raddr: raddr, byAddr: make(map[[4]byte]*player, n), epoch: now,
		posPaths: make(map[uint32]string), inflight: newPacketWheel(o.tick)}
	l.rbuf = make([]ipv4.Message, batch)
	for i := range l.rbuf {
		l.rbuf[i].Buffers = [][]byte{make([]byte, 1500)}
		l.rbuf[i].OOB = ipv4.NewControlMessage(ipv4.FlagDst)
	}
	l.wbuf = make([]ipv4.Message, batch)
	for i := range l.wbuf {
		l.wbuf[i].Buffers = make([][]byte, 1)
		l.wbuf[i].Addr = raddr
	}
	frame := time.Duration(float64(time.Second) / o.rate)
	for i := range n {
		p, err := l.newPlayer(i, seed<<20|uint64(id)<<16|uint64(i), now)
		if err != nil {
			conn.Close()
			return nil, err
		}
		// Frames spread over the period, as independent clients' are.
		p.frameAt = now.Add(frame * time.Duration(i) / time.Duration(n))
		p.at = 0
		l.timers.push(p)
	}
	return l, nil
}

func (l *loop) newPlayer(i int, seed uint64, now time.Time) (*player, error) {
	cfg := transport.Internet()
	cfg.DataShards, cfg.ParityShards = l.o.dataShards, l.o.parityShards
	peer, err := transport.NewPeer(cfg, now)
	if err != nil {
		return nil, err
	}
	ts := timesync.DefaultConfig()
	if l.o.idleSync > 0 {
		ts.IdleInterval = l.o.idleSync
	}
	clock, err := timesync.New(timesync.SystemSource(), ts)
	if err != nil {
		return nil, err
	}
	core, err := netcode.NewClientCore(netcode.ClientOptions{Registry: field.Registry(), Clock: clock, SendInterval: l.o.flush})
	if err != nil {
		return nil, err
	}
	p := &player{l: l, peer: peer, core: core, clock: clock, index: -1,
		linkRng: rand.New(rand.NewPCG(seed, 0x1a9)), rng: rand.New(rand.NewPCG(seed, 0xf1e1d)),
		calls: make(map[netcode.CallID]callInfo), visible: make(map[uint32]struct{}), corr: make(map[netcode.CallID]bool)}
	copy(p.addr[:], playerAddr(l.id, i))
	p.oob = (&ipv4.ControlMessage{Src: net.IP(p.addr[:])}).Marshal()
	l.byAddr[p.addr] = p
	l.players = append(l.players, p)
	return p, nil
}

// run is the loop's goroutine; it returns once stop is set. It works in
// ticks of options.tick: it takes every packet waiting on the socket
// without blocking (recvmmsg, MSG_DONTWAIT), delivers the packets that
// came due on the simulated links, runs the players' due frames and
// session timers, and sends every packet made in one sendmmsg batch. So
// the loop costs a few system calls per tick however many players it
// runs, and adds at most a tick to each packet's simulated latency.
func (l *loop) run() {
	defer l.conn.Close()
	tick := time.NewTicker(l.o.tick)
	defer tick.Stop()
	for !l.stop.Load() {
		l.mu.Lock()
		for {
			n, err := l.pc.ReadBatch(l.rbuf, syscall.MSG_DONTWAIT)
			if n > 0 {
				l.received(time.Now(), n)
			}
			if err != nil || n < len(l.rbuf) {
				break
			}
		}
		now := time.Now()
		ns := l.ns(now)
		l.due = l.inflight.due(ns, l.due[:0])
		for _, k := range l.due {
			if k.up {
				l.queue(k.p, k.buf) // flushWrites frees the buffer
			} else {
				k.p.input(now, k.buf)
				l.free = append(l.free, k.buf[:0])
			}
		}
		clear(l.due)
		for len(l.timers) > 0 && l.timers[0].at <= ns {
			p := l.timers.remove(0)
			if !now.Before(p.frameAt) {
				p.frame(now)
			}
			l.touch(p)
		}
		for _, p := range l.touched {
			p.settle(now)
			p.touched = false
		}
		l.touched = l.touched[:0]
		l.flushWrites()
		l.mu.Unlock()
		<-tick.C
	}
}

// received sends the batch just read down the players' links.
func (l *loop) received(now time.Time, n int) {
	for i := range n {
		m := &l.rbuf[i]
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok || !ua.IP.Equal(l.raddr.IP) || ua.Port != l.raddr.Port {
			continue // not the authority
		}
		cm := &l.cm // Parse reuses its Dst
		if cm.Parse(m.OOB[:m.NN]) != nil || cm.Dst.To4() == nil {
			continue
		}
		var a [4]byte
		copy(a[:], cm.Dst.To4())
		p := l.byAddr[a]
		if p == nil || p.dead {
			continue
		}
		pkt := m.Buffers[0][:m.N]
		p.udpIn += uint64(len(pkt))
		l.send(p, false, now, pkt)
	}
}

// send puts pkt on p's link in one direction: dropped, or held until due.
func (l *loop) send(p *player, up bool, now time.Time, pkt []byte) {
	prof := &l.o.profile
	link := &p.down
	if up {
		link = &p.up
	}
	if prof.Passthrough() {
		if up {
			l.queue(p, l.copyBuf(pkt))
		} else {
			p.input(now, pkt)
			l.touch(p)
		}
		return
	}
	d := link.Decide(prof, p.linkRng, now, len(pkt))
	if d.Drop {
		return
	}
	p.seq++
	l.inflight.push(packet{at: l.ns(d.At), p: p, up: up, buf: l.copyBuf(pkt), seq: p.seq})
	if d.Dup {
		p.seq++
		l.inflight.push(packet{at: l.ns(d.DupAt), p: p, up: up, buf: l.copyBuf(pkt), seq: p.seq})
	}
}

// copyBuf copies pkt into a spare buffer (a packet's room, so that any
// packet fits the buffers it recycles).
func (l *loop) copyBuf(pkt []byte) []byte {
	var b []byte
	if n := len(l.free); n > 0 {
		b = l.free[n-1]
		l.free = l.free[:n-1]
	}
	if cap(b) < len(pkt) {
		b = make([]byte, 0, max(len(pkt), 1500))
	}
	return append(b, pkt...)
}

// ns is t in the heaps' time: ns since the loop's epoch.
func (l *loop) ns(t time.Time) int64 { return int64(t.Sub(l.epoch)) }

// batch is the most packets one recvmmsg or sendmmsg moves.
const batch = 64

// queue adds one packet from p to the batch being sent.
func (l *loop) queue(p *player, b []byte) {
	m := &l.wbuf[l.wn]
	m.Buffers[0], m.OOB = b, p.oob
	l.wn++
	if l.wn == len(l.wbuf) {
		l.flushWrites()
	}
}

// flushWrites sends the batch (sendmmsg).
func (l *loop) flushWrites() {
	for sent := 0; sent < l.wn; {
		n, err := l.pc.WriteBatch(l.wbuf[sent:l.wn], 0)
		if err != nil {
			break // the links lose it; KCP retransmits
		}
		sent += n
	}
	for i := range l.wn {
		m := &l.wbuf[i]
		l.free = append(l.free, m.Buffers[0][:0])
		m.Buffers[0], m.OOB = nil, nil
	}
	l.wn = 0
}

func (l *loop) touch(p *player) {
	if !p.touched {
		p.touched = true
		l.touched = append(l.touched, p)
	}
}

// input hands one packet that arrived to p's session.
func (p *player) input(now time.Time, pkt []byte) {
	if p.dead {
		return
	}
	p.peer.Input(now, pkt)
	p.l.touch(p)
}

// settle applies what p's session received, sends what it owes and
// schedules its next deadline.
func (p *player) settle(now time.Time) {
	if p.dead {
		if p.index >= 0 {
			p.l.timers.remove(p.index)
		}
		return
	}
	if p.peer.Open() && !p.started {
		p.started = true
		p.core.Connect()
	}
	if p.started {
		local := p.clock.Local()
		for _, f := range p.peer.Frames() {
			if err := p.core.Receive(f, local); err != nil {
				p.fail(fmt.Errorf("bad frame: %w", err))
				return
			}
		}
		p.events(now)
		if !p.ready && p.core.Connected() && p.clock.Synced() {
			p.ready = true
			p.l.stats.ready++
		}
		p.sendOut()
	}
	p.peer.Flush(now, func(pkt []byte) {
		p.udpOut += uint64(len(pkt))
		p.l.send(p, true, now, pkt)
	})
	if err := p.peer.Err(); err != nil {
		p.fail(err)
		return
	}
	p.at = p.l.ns(p.peer.Deadline(now))
	p.at = min(p.at, p.l.ns(p.frameAt))
	if p.index >= 0 {
		p.l.timers.fix(p.index)
	} else {
		p.l.timers.push(p)
	}
}

func (p *player) sendOut() {
	for _, f := range p.core.Outgoing() {
		if err := p.peer.Send(f); err != nil {
			return // the session failed: settle reports it
		}
	}
}

// fail ends p: its session is not redialled; the report counts it.
func (p *player) fail(err error) {
	p.dead = true
	p.disconnects++
	if p.ready {
		p.l.stats.ready--
	}
	p.l.stats.dead++
	if p.l.stats.firstDead == nil {
		p.l.stats.firstDead = err
	}
	if p.index >= 0 {
		p.l.timers.remove(p.index)
	}
}

// frame is one frame of p's game: the core's periodic work and, when the
// players are active, a move and every shootEvery a shot; what it queued
// leaves at once (settle flushes it).
func (p *player) frame(now time.Time) {
	period := time.Duration(float64(time.Second) / p.l.o.rate)
	p.frameAt = p.frameAt.Add(period)
	if p.frameAt.Before(now.Add(-catchUp)) {
		// Far behind: skip the frames missed rather than burst them.
		// Frames up to catchUp late are made up at once, so a loop the
		// machine's scheduler held back for a few periods still makes
		// the rate asked (as a client that stalls sends its inputs late).
		p.frameAt = now.Add(period)
	}
	if !p.started {
		return
	}
	p.core.Tick()
	p.events(now)
	if !p.ready || !p.l.active.Load() || !p.core.Connected() {
		return
	}
	o := &p.l.o
	measure := p.l.measuring.Load()
	if !p.placed {
		p.core.WatchNear(field.Prefix, p.entity, o.radius)
		p.turn(now)
		id, err := p.core.Call(field.FuncMove, field.MoveArgs(p.vx, p.vy, p.rng.Float64()*o.side, p.rng.Float64()*o.side))
		if err == nil {
			p.placed = true
			p.calls[id] = callInfo{at: now, measure: measure}
		}
		return
	}
	if now.After(p.turnAt) {
		p.turn(now)
	}
	p.steer()
	if id, err := p.core.Call(field.FuncMove, field.MoveArgs(p.vx, p.vy, 0, 0)); err == nil {
		p.calls[id] = callInfo{at: now, measure: measure}
		if measure {
			p.moves++
		}
	}
	if now.After(p.shootAt) {
		p.shootAt = now.Add(o.shootEvery)
		p.shoot(now, measure)
	}
}

// events takes the core's events: the view (enter, leave), the session,
// and the results of calls, timed at now.
func (p *player) events(now time.Time) {
	evs := p.core.AppendEvents(p.evbuf[:0])
	p.evbuf = evs
	if len(evs) == 0 {
		return
	}
	clear(p.corr)
	for _, e := range evs {
		switch e.Kind {
		case netcode.EventCorrection:
			p.corr[e.Call] = true
		case netcode.EventEnter, netcode.EventLeave:
			if id, ok := entityID(e.Path); ok && id != p.id {
				if e.Kind == netcode.EventEnter {
					p.visible[id] = struct{}{}
				} else {
					delete(p.visible, id)
				}
			}
		case netcode.EventDisconnected:
			p.disconnects++
		case netcode.EventConnected:
			p.id = p.core.Creator()
			p.entity = field.Entity(p.id)
			p.pos, p.shot = field.PosPath(p.id), field.ShotPath(p.id)
			p.placed = false
		}
	}
	for _, e := range evs {
		if e.Kind != netcode.EventResult {
			continue
		}
		ci, ok := p.calls[e.Call]
		if !ok {
			continue
		}
		delete(p.calls, e.Call)
		if !ci.measure {
			continue
		}
		p.latencies = append(p.latencies, float64(now.Sub(ci.at))/1e6)
		if ci.shoot && ci.hit {
			p.hitsSeen++
			if e.Err == nil && !p.corr[e.Call] {
				p.hitsConfirmed++
			}
		}
	}
}

// turn picks a new heading at 60 to 200 units a second for 1 to 3 s.
func (p *player) turn(now time.Time) {
	a := p.rng.Float64() * 2 * math.Pi
	s := 60 + p.rng.Float64()*140
	p.vx, p.vy = int16(s*math.Cos(a)), int16(s*math.Sin(a))
	p.turnAt = now.Add(time.Second + time.Duration(p.rng.Float64()*float64(2*time.Second)))
}

// steer turns back into the field near its edges.
func (p *player) steer() {
	v, ok := p.core.Read(p.pos)
	if !ok {
		return
	}
	pos, err := field.DecodePos(v)
	if err != nil {
		return
	}
	margin, side := 50.0, p.l.o.side
	if (pos.X < margin && p.vx < 0) || (pos.X > side-margin && p.vx > 0) {
		p.vx = -p.vx
	}
	if (pos.Y < margin && p.vy < 0) || (pos.Y > side-margin && p.vy > 0) {
		p.vy = -p.vy
	}
}

// shoot aims at the nearest visible player as the authority will see it
// for this call (at the view time), and shoots; the prediction says
// whether the player saw a hit.
func (p *player) shoot(now time.Time, measure bool) {
	w := p.core.Now()
	view := w - int64(p.core.ViewDelay())
	mv, ok := p.core.Read(p.pos)
	if !ok {
		return
	}
	mp, err := field.DecodePos(mv)
	if err != nil {
		return
	}
	ox, oy := mp.At(w)
	best, bestD := uint32(0), math.Inf(1)
	var bx, by float64
	for id := range p.visible {
		tv, ok := p.core.ReadAt(p.l.posPath(id), view)
		if !ok {
			continue
		}
		tp, err := field.DecodePos(tv)
		if err != nil {
			continue
		}
		x, y := tp.At(view)
		if d := math.Hypot(x-ox, y-oy); d < bestD && d <= field.Range {
			best, bestD, bx, by = id, d, x, y
		}
	}
	if best == 0 {
		return
	}
	angle := math.Atan2(by-oy, bx-ox) + (p.rng.Float64()-0.5)*0.02
	id, err := p.core.Call(field.FuncShoot, field.ShootArgs(best, float32(angle)))
	if err != nil {
		return
	}
	hit := false
	if sv, ok := p.core.Read(p.shot); ok {
		if s, err := field.DecodeShot(sv); err == nil {
			hit = s.Hit
		}
	}
	p.calls[id] = callInfo{at: now, shoot: true, hit: hit, measure: measure}
}

// posPath is field.PosPath(id), made once per loop.
func (l *loop) posPath(id uint32) string {
	s, ok := l.posPaths[id]
	if !ok {
		s = field.PosPath(id)
		l.posPaths[id] = s
	}
	return s
}

// entityID parses "players/<id>/".
func entityID(entity string) (uint32, bool) {
	s, ok := strings.CutPrefix(entity, field.Prefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}
