package lagsim

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultMaxQueued is the default bound on packets held in flight per
// direction (Options.MaxQueued).
const DefaultMaxQueued = 4096

// maxPacket is the largest datagram the inbound pump reads (a UDP datagram
// cannot be larger).
const maxPacket = 64 << 10

// Options configure Wrap.
type Options struct {
	// Seed seeds the two random sources (one per direction, so the
	// decisions for one direction depend only on its own packets).
	Seed uint64
	// Out is applied to packets this Conn writes (WriteTo), In to packets it
	// reads (ReadFrom). Wrap both ends of a link with Out set for a
	// symmetric link, or one end with Out and In set to simulate the whole
	// path from there.
	Out, In Profile
	// MaxQueued bounds the packets held in flight per direction; a packet
	// that would exceed it is dropped and counted in Stats.QueueDrops.
	// Zero means DefaultMaxQueued.
	MaxQueued int
}

// DirStats counts the packets of one direction.
type DirStats struct {
	Packets    uint64 // packets offered to the simulator
	Lost       uint64 // dropped by the loss model
	Duplicated uint64 // extra copies scheduled
	QueueDrops uint64 // dropped because MaxQueued packets were in flight
	Delivered  uint64 // handed on (written to the wrapped conn, or to ReadFrom)
}

// Stats counts both directions of a Conn.
type Stats struct {
	Out, In DirStats
}

// Conn is a net.PacketConn that delays, drops, duplicates and reorders the
// packets of the conn it wraps, following one Profile per direction. It
// holds the wrapped conn by composition on purpose: a type that embedded a
// *net.UDPConn would expose its batch-I/O methods, and callers such as
// kcp-go would use them and bypass the simulator.
//
// Wrap starts two goroutines: one reads the wrapped conn continuously, one
// delivers delayed packets. Close stops both and closes the wrapped conn;
// packets still in flight are discarded, as on a link that went down.
type Conn struct {
	// immutable after construction
	inner     net.PacketConn
	maxQueued int
	ready     chan packet   // inbound packets due for ReadFrom
	wake      chan struct{} // tells the scheduler the earliest departure changed
	closed    chan struct{}
	closeOnce sync.Once
	pumpDone  chan struct{}

	mu       sync.Mutex // guards the fields below
	out, in  direction
	pending  delayHeap     // both directions, earliest first
	seq      uint64        // tie-breaker keeping equal departure times FIFO
	readErr  error         // the wrapped conn's read error, once it failed
	drained  chan struct{} // closed when nothing is in flight; nil when nobody waits
	handing  bool          // the scheduler is delivering popped packets
	deadline time.Time     // read deadline
	dlChange chan struct{}
}

type direction struct {
	profile Profile
	link    Link
	rng     *rand.Rand
	queued  int
	stats   DirStats
}

type packet struct {
	data []byte
	addr net.Addr
	at   time.Time
	seq  uint64
	in   bool
}

type delayHeap []packet

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(packet)) }
func (h *delayHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = packet{}
	*h = old[:len(old)-1]
	return p
}

// Listen opens a UDP socket on addr (host:port; port 0 picks one) and
// wraps it: net.ListenPacket("udp", addr) then Wrap. The socket is closed
// again when opts are invalid.
func Listen(addr string, opts Options) (*Conn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("lagsim: %w", err)
	}
	c, err := Wrap(pc, opts)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

// Wrap returns a Conn simulating opts.Out and opts.In over inner. From now
// on the Conn owns inner: it reads it continuously and closes it on Close.
func Wrap(inner net.PacketConn, opts Options) (*Conn, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrInvalidOptions)
	}
	if err := opts.Out.Validate(); err != nil {
		return nil, fmt.Errorf("outbound: %w", err)
	}
	if err := opts.In.Validate(); err != nil {
		return nil, fmt.Errorf("inbound: %w", err)
	}
	if opts.MaxQueued < 0 {
		return nil, fmt.Errorf("%w: MaxQueued %d is negative", ErrInvalidOptions, opts.MaxQueued)
	}
	if opts.MaxQueued == 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	c := &Conn{
		inner:     inner,
		maxQueued: opts.MaxQueued,
		ready:     make(chan packet, opts.MaxQueued),
		wake:      make(chan struct{}, 1),
		closed:    make(chan struct{}),
		pumpDone:  make(chan struct{}),
		dlChange:  make(chan struct{}),
	}
	c.out = direction{profile: opts.Out, rng: rand.New(rand.NewPCG(opts.Seed, 1))}
	c.in = direction{profile: opts.In, rng: rand.New(rand.NewPCG(opts.Seed, 2))}
	go c.pump()
	go c.schedule()
	return c, nil
}

// SetProfile replaces both profiles while the Conn runs. Packets already in
// flight keep the schedule they were given; the link state (loss burst,
// bandwidth backlog) carries over.
func (c *Conn) SetProfile(out, in Profile) error {
	if err := out.Validate(); err != nil {
		return fmt.Errorf("outbound: %w", err)
	}
	if err := in.Validate(); err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	c.mu.Lock()
	c.out.profile, c.in.profile = out, in
	c.mu.Unlock()
	return nil
}

// Profile returns the profiles in use.
func (c *Conn) Profile() (out, in Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.profile, c.in.profile
}

// Stats returns the packet counts so far.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Out: c.out.stats, In: c.in.stats}
}

// WriteTo hands p to the simulated link and returns at once, as a UDP send
// does; p is copied. A packet the link loses still reports success. Errors
// of the wrapped conn's write for a delayed packet are not reported (the
// packet is simply lost); for an undelayed one they are.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, fmt.Errorf("lagsim: write: %w", net.ErrClosed)
	default:
	}
	now := time.Now()
	c.mu.Lock()
	d := &c.out
	d.stats.Packets++
	if d.profile.Passthrough() && d.queued == 0 {
		// Fast path: nothing to simulate and nothing queued ahead of it.
		d.stats.Delivered++
		c.mu.Unlock()
		return c.inner.WriteTo(p, addr)
	}
	data := append([]byte(nil), p...)
	c.scheduleLocked(d, packet{data: data, addr: addr}, now)
	c.mu.Unlock()
	return len(p), nil
}

// scheduleLocked runs the link's decision for pkt and queues what survives.
func (c *Conn) scheduleLocked(d *direction, pkt packet, now time.Time) {
	dec := d.link.Decide(&d.profile, d.rng, now, len(pkt.data))
	if dec.Drop {
		d.stats.Lost++
		return
	}
	c.pushLocked(d, pkt, dec.At)
	if dec.Dup {
		d.stats.Duplicated++
		c.pushLocked(d, pkt, dec.DupAt)
	}
}

func (c *Conn) pushLocked(d *direction, pkt packet, at time.Time) {
	if d.queued >= c.maxQueued {
		d.stats.QueueDrops++
		return
	}
	d.queued++
	pkt.at = at
	pkt.seq = c.seq
	c.seq++
	heap.Push(&c.pending, pkt)
	if c.pending[0].seq == pkt.seq {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// schedule delivers queued packets when they are due.
func (c *Conn) schedule() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []packet
	for {
		c.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(c.pending) > 0 && !c.pending[0].at.After(now) {
			p := heap.Pop(&c.pending).(packet)
			if p.in {
				c.in.queued--
			} else {
				c.out.queued--
			}
			due = append(due, p)
		}
		wait := time.Hour
		if len(c.pending) > 0 {
			wait = c.pending[0].at.Sub(now)
		}
		c.handing = len(due) > 0
		c.mu.Unlock()

		for _, p := range due {
			c.deliver(p)
		}
		c.mu.Lock()
		c.handing = false
		if len(c.pending) == 0 && c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		c.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-c.wake:
		case <-c.closed:
			return
		}
	}
}

// deliver hands a due packet on: to the wrapped conn when outbound, to
// ReadFrom when inbound (dropped and counted when the reader is MaxQueued
// packets behind, like a full socket buffer).
func (c *Conn) deliver(p packet) {
	// Count before handing on, so whoever receives the packet sees it
	// counted; undo when it is lost after all.
	c.mu.Lock()
	d := &c.out
	if p.in {
		d = &c.in
	}
	d.stats.Delivered++
	c.mu.Unlock()
	if !p.in {
		if _, err := c.inner.WriteTo(p.data, p.addr); err != nil {
			c.mu.Lock()
			d.stats.Delivered--
			c.mu.Unlock()
		}
		return
	}
	select {
	case c.ready <- p:
	default:
		c.mu.Lock()
		d.stats.Delivered--
		d.stats.QueueDrops++
		c.mu.Unlock()
	}
}

// pump reads the wrapped conn and schedules every inbound packet.
func (c *Conn) pump() {
	defer close(c.pumpDone)
	buf := make([]byte, maxPacket)
	for {
		n, addr, err := c.inner.ReadFrom(buf)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		now := time.Now()
		pkt := packet{data: append([]byte(nil), buf[:n]...), addr: addr, in: true}
		c.mu.Lock()
		d := &c.in
		d.stats.Packets++
		if d.profile.Passthrough() && d.queued == 0 {
			c.mu.Unlock()
			c.deliver(pkt)
			continue
		}
		c.scheduleLocked(d, pkt, now)
		c.mu.Unlock()
	}
}

// ReadFrom returns the next inbound packet the simulated link delivers. A
// packet longer than p is truncated, as with UDP.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		deadline, changed := c.deadline, c.dlChange
		c.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			wait := time.Until(deadline)
			if wait <= 0 {
				return 0, nil, fmt.Errorf("lagsim: read: %w", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case pkt := <-c.ready:
			return copy(p, pkt.data), pkt.addr, nil
		default:
		}
		select {
		case pkt := <-c.ready:
			return copy(p, pkt.data), pkt.addr, nil
		case <-c.closed:
			return 0, nil, fmt.Errorf("lagsim: read: %w", net.ErrClosed)
		case <-c.pumpDone:
			// Deliver what is already due before reporting the failure.
			select {
			case pkt := <-c.ready:
				return copy(p, pkt.data), pkt.addr, nil
			default:
			}
			c.mu.Lock()
			err := c.readErr
			c.mu.Unlock()
			return 0, nil, fmt.Errorf("lagsim: read: %w", err)
		case <-expired:
		case <-changed:
		}
	}
}

// Close discards the packets in flight, stops the goroutines and closes the
// wrapped conn.
func (c *Conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.inner.Close()
		<-c.pumpDone
	})
	if err != nil {
		return fmt.Errorf("lagsim: close: %w", err)
	}
	return nil
}

// Drain waits until no packet is in flight in either direction (every
// delayed packet was delivered or the Conn closed), or ctx ends. Tests use it
// to count what a link delivered once it went quiet; packets sent during
// Drain extend the wait.
func (c *Conn) Drain(ctx context.Context) error {
	for {
		c.mu.Lock()
		if len(c.pending) == 0 && !c.handing {
			c.mu.Unlock()
			return nil
		}
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		ch := c.drained
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.closed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("lagsim: drain: %w", ctx.Err())
		}
	}
}

// LocalAddr returns the wrapped conn's address.
func (c *Conn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// SetDeadline sets the read deadline; writes never block, so they have none.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets when a blocked or future ReadFrom gives up with an
// error matching os.ErrDeadlineExceeded. The zero time means never.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.dlChange)
	c.dlChange = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline is accepted and ignored: WriteTo never blocks.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
