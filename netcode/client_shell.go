package netcode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// Errors of the Client.
var (
	// ErrClientClosed: the Client was closed.
	ErrClientClosed = errors.New("netcode: client closed")
	// ErrBacklog: the game stopped calling Update and RecvQueue frames
	// piled up; the session was closed rather than let the queue grow.
	ErrBacklog = errors.New("netcode: receive backlog full (Update not called)")
	// ErrSendDropped: the transport dropped an outgoing frame. Frames carry
	// the path dictionary, so the session cannot go on and is replaced.
	ErrSendDropped = errors.New("netcode: transport dropped an outgoing frame")
	// ErrGaveUp: reconnecting failed Reconnect.Attempts times in a row.
	ErrGaveUp = errors.New("netcode: gave up reconnecting")
)

// Client defaults and bounds. Units are in the names.
const (
	DefaultRecvQueue  = 4096 // frames received and not yet applied by Update
	maxRecvQueue      = 1 << 20
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
	// dialTick is how often Dial ticks the core while it waits for the
	// Welcome and the first clock sync: time-sync requests are due every
	// timesync MinInterval (10 ms by default) during warm-up.
	dialTick = 10 * time.Millisecond
)

// Reconnect is the policy for replacing a lost session: the first redial
// waits Min, each failed one doubles the wait up to Max.
type Reconnect struct {
	Min, Max time.Duration
	// Attempts is how many redials in a row may fail before the Client
	// gives up (an EventError wrapping ErrGaveUp, then nothing more).
	// Zero: no limit (until Close). Negative: never reconnect.
	Attempts int
}

// Options configure Dial. The fields up to CallTimeout are the
// ClientOptions of the core (see there); the rest configure the shell.
type Options struct {
	Registry     *Registry
	Token        []byte
	ViewDelay    time.Duration
	SendInterval time.Duration
	Budget       Budget
	MaxPending   int
	History      time.Duration
	CallTimeout  time.Duration
	// Wire bounds frames both ways; MaxPaths must match the authority's.
	// Zero fields take wire's defaults.
	Wire wire.Limits

	// Transport configures the KCP session; it must agree with the
	// authority's Secret and FEC settings. A zero Config (MaxFrame 0) is
	// replaced by transport.Internet() keeping the Secret set here.
	Transport transport.Config
	// PacketConn, if set, makes the socket of each session (the first and
	// every reconnect) instead of a new UDP socket: a lagsim.Conn, for
	// instance. The Client closes each conn once its session ended.
	PacketConn func() (net.PacketConn, error)
	// Reconnect is the redial policy. Zero fields: DefaultBackoffMin,
	// DefaultBackoffMax, no attempt limit.
	Reconnect Reconnect
	// Failover lists more addresses of the cluster: authorities that own
	// what this client plays on, as Dial's addr does. Dial tries addr,
	// then each of these in turn; when a session is lost, each redial
	// tries the next address after the one lost, round the list, so a
	// dead authority costs at most one failed attempt before its
	// replica is tried. The session resumes there when the cluster
	// shares its resume key (see package authority), and the game sees
	// EventDisconnected then EventConnected, not a reset.
	Failover []string
	// TimeSync configures the synced clock. Zero: timesync.DefaultConfig().
	TimeSync timesync.Config
	// RecvQueue bounds the frames received and not yet applied by Update.
	// Zero: DefaultRecvQueue. Reaching it means the game stopped calling
	// Update: the session is closed (ErrBacklog) instead of growing the
	// queue, and a new one is dialled once Update has caught up.
	RecvQueue int
}

func (o *Options) withDefaults() {
	if o.Transport.MaxFrame == 0 {
		secret := o.Transport.Secret
		o.Transport = transport.Internet()
		o.Transport.Secret = secret
	}
	if o.Reconnect.Min == 0 {
		o.Reconnect.Min = DefaultBackoffMin
	}
	if o.Reconnect.Max == 0 {
		o.Reconnect.Max = max(DefaultBackoffMax, o.Reconnect.Min)
	}
	if o.TimeSync == (timesync.Config{}) {
		o.TimeSync = timesync.DefaultConfig()
	}
	if o.RecvQueue == 0 {
		o.RecvQueue = DefaultRecvQueue
	}
}

// validate checks the shell's fields; the core and the transport check
// their own.
func (o *Options) validate() error {
	if err := o.Transport.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	frame := o.Wire.MaxFrameBytes
	if frame == 0 {
		frame = wire.DefaultLimits().MaxFrameBytes
	}
	switch {
	case o.Transport.MaxFrame < frame:
		return fmt.Errorf("%w: Transport.MaxFrame %d cannot carry %d-byte frames (Wire.MaxFrameBytes)", ErrBadConfig, o.Transport.MaxFrame, frame)
	case o.Reconnect.Min < 0 || o.Reconnect.Max < o.Reconnect.Min:
		return fmt.Errorf("%w: Reconnect backoff %v..%v", ErrBadConfig, o.Reconnect.Min, o.Reconnect.Max)
	case o.RecvQueue < 0 || o.RecvQueue > maxRecvQueue:
		return fmt.Errorf("%w: RecvQueue %d outside [0, %d]", ErrBadConfig, o.RecvQueue, maxRecvQueue)
	case o.TimeSync.Reference:
		return fmt.Errorf("%w: a client's clock cannot be a time reference", ErrBadConfig)
	}
	return nil
}

// Stats are a Client's counters.
type Stats struct {
	// ClientStats are the core's counters as of the last Update.
	ClientStats
	Sessions  uint64 // transport sessions opened: the first and every reconnect
	Redials   uint64 // reconnect attempts, failed ones included
	Backlogs  uint64 // sessions closed because Update fell RecvQueue frames behind
	SendDrops uint64 // sessions closed because the transport dropped a frame
	Failovers uint64 // sessions opened at another address than the session before
	// Addr is the address of the current (or last) session.
	Addr string
	// Transport is the current session's counters (zero when none is open).
	Transport transport.Stats
}

// inKind says what an inbound item carries.
type inKind uint8

const (
	inFrame     inKind = iota // a frame of the current session
	inLost                    // the current session ended (err)
	inConnected               // a new session (sess) replaced it
	inGaveUp                  // reconnecting failed for good (err)
)

// inbound is what the network goroutine queues for Update.
type inbound struct {
	kind  inKind
	frame []byte
	at    int64 // the clock's local time at receipt (inFrame)
	err   error
	sess  *transport.Session
}

// Client is a game's connection to its authority: a ClientCore driven by
// the system clock over a transport session, reconnecting when the session
// is lost.
//
// One goroutine, the game's, owns the client's state: it calls Update once
// per frame and Call, Watch, Read and the other reading methods in
// between. The network goroutine only queues what it receives, so nothing
// changes under the game's feet between two Updates. Now, Stats and Close
// are safe from any goroutine.
type Client struct {
	// immutable after construction
	opts    Options
	addrs   []string // Dial's addr, then Options.Failover
	clock   *timesync.Clock
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wake    chan struct{} // capacity 1: something was queued
	drained chan struct{} // capacity 1: Update took the queue
	done    chan struct{} // closed when the network goroutine returns
	wg      sync.WaitGroup
	closed  atomic.Bool

	// owned by the game goroutine
	core   *ClientCore
	cur    *transport.Session // the session the core's codecs talk to
	broken bool               // cur failed (bad frame, dropped frame): ignore it until it is reported lost
	spare  []inbound
	extra  []Event // events not from the core (Dial's, the shell's), delivered first

	mu    sync.Mutex // guards the fields below
	sess  *transport.Session
	queue []inbound
	stats Stats
	at    int // index in addrs of the address last dialled
}

// Dial connects to the authority at addr ("host:port") and returns once
// the authority welcomed the client and the clock is synced, so the game
// can Call at once. It fails if the first session cannot be opened, the
// authority refuses the client, or ctx ends first; later losses are
// repaired by reconnecting (see Options.Reconnect).
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	clock, err := timesync.New(timesync.SystemSource(), opts.TimeSync)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	core, err := NewClientCore(ClientOptions{
		Registry: opts.Registry, Clock: clock, Token: opts.Token, Wire: opts.Wire,
		ViewDelay: opts.ViewDelay, SendInterval: opts.SendInterval, Budget: opts.Budget,
		MaxPending: opts.MaxPending, History: opts.History, CallTimeout: opts.CallTimeout,
	})
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:    opts,
		addrs:   append([]string{addr}, opts.Failover...),
		clock:   clock,
		wake:    make(chan struct{}, 1),
		drained: make(chan struct{}, 1),
		done:    make(chan struct{}),
		core:    core,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var (
		sess *transport.Session
		conn net.PacketConn
	)
	for i := range c.addrs {
		if sess, conn, err = c.open(ctx, i); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.sess, c.cur = sess, sess
	c.stats.Sessions = 1
	go c.run(sess, conn)
	if err := core.Connect(); err != nil {
		c.Close()
		return nil, err
	}
	tick := time.NewTicker(dialTick)
	defer tick.Stop()
	for {
		lost := c.step()
		evs := c.core.Events()
		for _, ev := range evs {
			if ev.Kind == EventError && lost == nil {
				lost = ev.Err // a refusal (version, token) precedes the close
			}
		}
		c.extra = append(c.extra, evs...)
		if lost != nil {
			c.Close()
			return nil, fmt.Errorf("netcode: dial %s: %w", addr, lost)
		}
		if core.Connected() && clock.Synced() {
			return c, nil
		}
		select {
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("netcode: dial %s: %w (connected %v, clock synced %v)", addr, ctx.Err(), core.Connected(), clock.Synced())
		case <-c.wake:
		case <-tick.C:
		}
	}
}

// open dials one transport session to addrs[i] and, when it opens,
// records it as the current address.
func (c *Client) open(ctx context.Context, i int) (*transport.Session, net.PacketConn, error) {
	addr := c.addrs[i]
	var (
		s    *transport.Session
		conn net.PacketConn
		err  error
	)
	if c.opts.PacketConn == nil {
		if s, err = transport.Dial(ctx, addr, c.opts.Transport); err != nil {
			return nil, nil, fmt.Errorf("netcode: %w", err)
		}
	} else {
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("netcode: dial %s: %w", addr, err)
		}
		if conn, err = c.opts.PacketConn(); err != nil {
			return nil, nil, fmt.Errorf("netcode: dial %s: packet conn: %w", addr, err)
		}
		if s, err = transport.DialConn(ctx, conn, raddr, c.opts.Transport); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("netcode: %w", err)
		}
	}
	c.mu.Lock()
	if c.stats.Sessions > 0 && i != c.at {
		c.stats.Failovers++
	}
	c.at = i
	c.stats.Addr = addr
	c.mu.Unlock()
	return s, conn, nil
}

// run is the network goroutine: it reads the current session into the
// queue and, when the session ends, reports it and dials a new one.
func (c *Client) run(sess *transport.Session, conn net.PacketConn) {
	defer close(c.done)
	for {
		err := c.read(sess)
		backlog := errors.Is(err, ErrBacklog)
		if backlog {
			sess.Close(err.Error())
		}
		if conn != nil {
			sess.Close("session over") // a no-op unless it is still open; conn must outlive it
			conn.Close()
		}
		if c.closed.Load() {
			err = ErrClientClosed
		}
		c.mu.Lock()
		if backlog {
			c.stats.Backlogs++
		}
		c.sess = nil
		c.queue = append(c.queue, inbound{kind: inLost, err: err}) // past the bound by one item at most
		c.mu.Unlock()
		c.signal(c.wake)
		if c.closed.Load() || c.opts.Reconnect.Attempts < 0 {
			return
		}
		if backlog && !c.waitDrained() {
			return
		}
		sess, conn, err = c.redial()
		if err != nil {
			if c.ctx.Err() == nil {
				c.push(inbound{kind: inGaveUp, err: err})
			}
			return
		}
	}
}

// read queues sess's frames until it fails or the queue is full.
func (c *Client) read(sess *transport.Session) error {
	for {
		f, err := sess.Recv(c.ctx)
		if err != nil {
			return err
		}
		at := c.clock.Local()
		c.mu.Lock()
		if len(c.queue) >= c.opts.RecvQueue {
			c.mu.Unlock()
			return fmt.Errorf("%w: %d frames waiting", ErrBacklog, c.opts.RecvQueue)
		}
		c.queue = append(c.queue, inbound{kind: inFrame, frame: f, at: at})
		c.mu.Unlock()
		c.signal(c.wake)
	}
}

// waitDrained waits until Update has applied everything queued (after a
// backlog, so a new session does not refill a queue nobody reads). It
// reports false if the client closed first.
func (c *Client) waitDrained() bool {
	for {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-c.drained:
		case <-c.ctx.Done():
			return false
		}
	}
}

// redial opens a new session with backoff and queues it for Update.
func (c *Client) redial() (*transport.Session, net.PacketConn, error) {
	wait := c.opts.Reconnect.Min
	var last error
	for attempt := 0; c.opts.Reconnect.Attempts == 0 || attempt < c.opts.Reconnect.Attempts; attempt++ {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, nil, ErrClientClosed
		}
		wait = min(2*wait, c.opts.Reconnect.Max)
		c.mu.Lock()
		next := (c.at + 1) % len(c.addrs) // the one lost last, when alone
		c.mu.Unlock()
		sess, conn, err := c.open(c.ctx, next)
		c.mu.Lock()
		c.stats.Redials++
		if err == nil && !c.closed.Load() {
			c.sess = sess
			c.stats.Sessions++
			c.queue = append(c.queue, inbound{kind: inConnected, sess: sess})
			c.mu.Unlock()
			c.signal(c.wake)
			return sess, conn, nil
		}
		c.mu.Unlock()
		if err == nil { // closed meanwhile
			sess.Close("client closed")
			if conn != nil {
				conn.Close()
			}
			return nil, nil, ErrClientClosed
		}
		last = err
	}
	return nil, nil, fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, c.opts.Reconnect.Attempts, last)
}

func (c *Client) push(in inbound) {
	c.mu.Lock()
	c.queue = append(c.queue, in)
	c.mu.Unlock()
	c.signal(c.wake)
}

func (c *Client) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// abort closes a broken session without blocking the game goroutine; the
// network goroutine then reports it lost and reconnects.
func (c *Client) abort(sess *transport.Session, reason string) {
	c.broken = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		sess.Close(reason)
	}()
}

// step applies what was queued, ticks the core and sends what it made. It
// returns the error of a session lost meanwhile, if any.
func (c *Client) step() (lost error) {
	c.mu.Lock()
	q := c.queue
	c.queue = c.spare[:0]
	c.mu.Unlock()
	c.signal(c.drained)
	for i := range q {
		in := &q[i]
		switch in.kind {
		case inFrame:
			if c.broken {
				break
			}
			if err := c.core.Receive(in.frame, in.at); err != nil {
				c.extra = append(c.extra, c.core.Events()...)
				c.extra = append(c.extra, Event{Kind: EventError, Err: fmt.Errorf("netcode: bad frame from the authority, reconnecting: %w", err)})
				c.abort(c.cur, "undecodable frame")
			}
		case inLost:
			c.broken = false
			c.cur = nil
			c.core.Disconnected(in.err)
			lost = in.err
		case inConnected:
			c.cur = in.sess
			if err := c.core.Connect(); err != nil {
				// Only a bad wire.Limits fails here, and NewClientCore
				// checked them: an internal invariant.
				panic(fmt.Sprintf("netcode: Connect: %v", err))
			}
		case inGaveUp:
			c.extra = append(c.extra, c.core.Events()...)
			c.extra = append(c.extra, Event{Kind: EventError, Err: in.err})
		}
		*in = inbound{}
	}
	c.spare = q[:0]
	c.core.Tick()
	out := c.core.Outgoing()
	if c.cur != nil && !c.broken {
		for _, f := range out {
			// Data, in order: the frames carry the path dictionary. An
			// error means the session is closing; the network goroutine
			// reports that.
			if err := c.cur.Send(f, transport.Data); err != nil {
				break
			}
		}
		if c.cur.Stats().SendDropped > 0 {
			c.mu.Lock()
			c.stats.SendDrops++
			c.mu.Unlock()
			c.extra = append(c.extra, c.core.Events()...)
			c.extra = append(c.extra, Event{Kind: EventError, Err: fmt.Errorf("%w, reconnecting", ErrSendDropped)})
			c.abort(c.cur, ErrSendDropped.Error())
		}
	}
	st := c.core.Stats()
	c.mu.Lock()
	c.stats.ClientStats = st
	c.mu.Unlock()
	return lost
}

// Update applies everything received since the last Update, does the
// periodic work (time sync, call timeouts, history trimming), sends what
// that produced and returns the events in order. Call it once per frame
// from the game goroutine. It never waits for the network.
//
// The client's time is its synced clock (Now), so unlike ClientCore.Tick
// it takes no time argument.
func (c *Client) Update() []Event {
	c.step()
	evs := c.core.Events()
	if len(c.extra) > 0 {
		evs = append(c.extra, evs...)
		c.extra = nil
	}
	return evs
}

// Call predicts the function locally at Now and sends the call; see
// ClientCore.Call. It fails with ErrNotConnected while a lost session is
// being replaced.
func (c *Client) Call(name string, args []byte) (CallID, error) {
	if c.closed.Load() {
		return CallID{}, ErrClientClosed
	}
	return c.core.Call(name, args)
}

// Watch asks for the latest value of every path under prefix (ending in
// '/'), or of one path, and then every change. Watches are renewed after a
// reconnect.
func (c *Client) Watch(prefix string) error {
	return c.WatchHistory(prefix, 0)
}

// WatchHistory is Watch that also receives the values of the last window
// on connect (for interpolation); zero window is Watch.
func (c *Client) WatchHistory(prefix string, window time.Duration) error {
	if c.closed.Load() {
		return ErrClientClosed
	}
	mode := wire.WatchLatest
	if window > 0 {
		mode = wire.WatchHistory
	}
	return c.core.Watch(prefix, mode, window)
}

// WatchArea is a spatial watch of prefix (see ClientCore.WatchArea); a
// window above zero also sends the entities' recent history, as
// WatchHistory does.
func (c *Client) WatchArea(prefix string, area wire.Area, window time.Duration) error {
	mode := wire.WatchLatest
	if window > 0 {
		mode = wire.WatchHistory
	}
	return c.core.WatchArea(prefix, area, mode, window)
}

// WatchNear watches the entities under prefix within radius of entity,
// following it as it moves (see ClientCore.WatchArea).
func (c *Client) WatchNear(prefix, entity string, radius float64) error {
	return c.core.WatchNear(prefix, entity, radius)
}

// WatchRegion watches the entities under prefix inside the box (x0, y0)
// to (x1, y1) (see ClientCore.WatchArea).
func (c *Client) WatchRegion(prefix string, x0, y0, x1, y1 float64) error {
	return c.core.WatchRegion(prefix, x0, y0, x1, y1)
}

// Unwatch stops a watch.
func (c *Client) Unwatch(prefix string) { c.core.Unwatch(prefix) }

// WatchReady reports whether the snapshot of the watch of prefix has
// arrived whole on the current session (EventWatchReady says when): a game
// that waits for it before its first calls predicts them from the
// authority's values, not from an empty view.
func (c *Client) WatchReady(prefix string) bool { return c.core.WatchReady(prefix) }

// Read returns the latest value of path in the local view, confirmed or
// predicted, whichever is later.
func (c *Client) Read(path string) ([]byte, bool) { return c.core.Read(path) }

// ReadAt returns the latest value of path strictly before the synced time
// t in the local view.
func (c *Client) ReadAt(path string, t int64) ([]byte, bool) { return c.core.ReadAt(path, t) }

// History returns the confirmed valid values of path, oldest first. The
// slices alias the client: do not modify them.
func (c *Client) History(path string) []PathValue { return c.core.History(path) }

// Predicted reports whether path currently shows a prediction.
func (c *Client) Predicted(path string) bool { return c.core.Predicted(path) }

// Children lists the next segments of the confirmed and predicted paths
// under prefix, sorted (an unsafe read: see Tx.Children).
func (c *Client) Children(prefix string) []string { return c.core.Children(prefix) }

// Connected reports whether the authority has welcomed the current session.
func (c *Client) Connected() bool { return c.core.Connected() }

// Creator returns the id the authority assigned to the current session.
func (c *Client) Creator() uint32 { return c.core.Creator() }

// ViewDelay returns the interpolation delay in use (see
// ClientCore.ViewDelay).
func (c *Client) ViewDelay() time.Duration { return c.core.ViewDelay() }

// SetLagCompensation turns lag compensation on (the default) or off for
// the calls made from now on (see ClientCore.SetLagCompensation).
func (c *Client) SetLagCompensation(on bool) { c.core.SetLagCompensation(on) }

// LagCompensation reports whether calls carry the view delay.
func (c *Client) LagCompensation() bool { return c.core.LagCompensation() }

// Now returns the synced time in nanoseconds. Safe from any goroutine.
func (c *Client) Now() int64 { return c.clock.Now() }

// Stats returns the counters: the core's as of the last Update, the
// shell's, and the current transport session's. Safe from any goroutine.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	st := c.stats
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		st.Transport = sess.Stats()
	}
	return st
}

// Close ends the session (sending what is queued and a close reason, for
// at most Transport.CloseLinger) and stops the network goroutine. Safe
// from any goroutine and idempotent. Afterwards Call and Watch fail with
// ErrClientClosed; Update still returns the last events.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		<-c.done
		c.wg.Wait()
		return nil
	}
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.Close("client closed")
	}
	c.cancel()
	<-c.done
	c.wg.Wait()
	return nil
}
