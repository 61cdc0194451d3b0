// Package hostile runs an authority node under attack on virtual time:
// honest clients play (each calls "add" at a steady rate and watches the
// counters) while attackers of one class do their worst, and it reports
// the honest clients' confirm latency, whether any was disconnected, when
// each abuser was cut off and what the node held at its peak.
//
// The node is the production authority.Node. The shell around it is a
// model of the server's node goroutine: it handles one input at a time
// (a frame, a connect, a tick), and is busy for a time proportional to the
// work the input made the node do (CostModel, calibrated by
// BenchmarkNodeCosts in the authority package), so an input that makes
// the node work hard delays everything queued behind it, as it does on
// the real server. Frames are charged to their senders when they arrived
// (Node.StepArrived). Links deliver each direction's frames in order,
// after a fixed one-way delay plus seeded uniform jitter. A seed
// reproduces a run exactly; nothing reads the wall clock, so what a run
// reports does not depend on the machine's speed or load.
package hostile

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// CostModel is how long the node goroutine is busy, in nanoseconds, per
// unit of work an input made the node do (read from the node's counters).
type CostModel struct {
	PerMessage       float64 // a message decoded and handled
	PerValue         float64 // a value or state change encoded to a session
	PerSnapshotValue float64 // a value gathered for a watch snapshot
	PerCall          float64 // a call run or re-run (function and commit)
	PerByteIn        float64 // a byte of frame received
	PerByteOut       float64 // a byte of frame sent
	PerConnect       float64 // a session connected or disconnected
	PerTick          float64 // a tick
}

// DefaultCost is the model calibrated by BenchmarkNodeCosts on the
// development machine, a shared machine whose figures vary several-fold
// from run to run: each unit takes the largest of the runs in
// docs/BENCHMARKS.md, rounded up. A connect is charged per Connect and per
// Disconnect (half the measured connect, welcome and disconnect, less the
// Hello's message); encoding is in the per-message and per-value costs,
// so bytes out cost nothing apart.
func DefaultCost() CostModel {
	return CostModel{
		PerMessage:       1600,
		PerValue:         1000,
		PerSnapshotValue: 1200,
		PerCall:          14000,
		PerByteIn:        0.1,
		PerByteOut:       0,
		PerConnect:       13000,
		PerTick:          100,
	}
}

// Config describes one run.
type Config struct {
	Seed     uint64
	Honest   int           // honest players
	CallRate float64       // calls per second per honest player
	Delay    time.Duration // one-way link delay
	Jitter   time.Duration // uniform extra one-way delay, 0 to Jitter
	Warmup   time.Duration // before the attack: players join, the world is seeded
	Attack   time.Duration // the attack's length
	Cooldown time.Duration // after the attack, for answers to come in (an Attack may want more)
	Tick     time.Duration // the node's tick period
	// World is the paths under counters/ seeded before the attack (what
	// a watch snapshot of counters/ holds besides the players' counters).
	World int
	Cost  CostModel
	// Node configures the node; its Registry is replaced by the counter
	// registry plus "seed".
	Node authority.Config
}

// DefaultConfig: 20 honest players calling 20 times a second over 10 ms
// links (jitter 0 to 5 ms), a world of 1,000 counters, 3 s of attack.
func DefaultConfig() Config {
	return Config{
		Seed:     1,
		Honest:   20,
		CallRate: 20,
		Delay:    10 * time.Millisecond,
		Jitter:   5 * time.Millisecond,
		Warmup:   2 * time.Second,
		Attack:   3 * time.Second,
		Cooldown: time.Second,
		Tick:     authority.DefaultTick,
		World:    1000,
		Cost:     DefaultCost(),
		Node:     authority.DefaultConfig(nil),
	}
}

// Result is what a run measured.
type Result struct {
	Attack string
	// Honest players' confirm latency (call sent to its CallResult
	// received) over calls sent during the attack, and how many calls
	// were sent then, answered ok, answered otherwise, or never answered.
	P50, P99, Max                    time.Duration
	Sent, Confirmed, Refused, Missed int
	// Honest players disconnected (their reasons), and whether a player
	// that joined during the attack was welcomed, and how long after it
	// asked.
	Disconnected []string
	LateJoined   bool
	LateJoin     time.Duration
	// Abusers: sessions the attack used; how many the node cut off, and
	// the longest time from an abuser's first frame reaching the node to
	// the node closing it (zero when none was cut off).
	Abusers, CutOff int
	MaxCutOff       time.Duration
	// The node's peaks over the run: sessions (and those waiting for
	// Hello), and how long it was busy without a break.
	PeakSessions, PeakWaiting int
	LongestBusy               time.Duration
	// HeapGrowth is how much the process's live heap (after a
	// collection) grew from the attack's start to its largest sample:
	// the node's state, the run's clients and their records together.
	HeapGrowth uint64
	Stats      authority.Stats
}

func (r Result) String() string {
	return fmt.Sprintf("%s: honest p50 %v p99 %v max %v (%d sent, %d ok, %d refused, %d missed), %d disconnected, late join %v (%v); abusers %d, cut off %d, slowest %v; peak sessions %d (waiting %d), longest busy %v, heap +%d KiB",
		r.Attack, r.P50, r.P99, r.Max, r.Sent, r.Confirmed, r.Refused, r.Missed, len(r.Disconnected), r.LateJoined, r.LateJoin,
		r.Abusers, r.CutOff, r.MaxCutOff, r.PeakSessions, r.PeakWaiting, r.LongestBusy, r.HeapGrowth>>10)
}

// ErrRun is returned (wrapped) when a run cannot go on: a client could
// not decode what the node sent it.
var ErrRun = errors.New("hostile: run failed")

// Registry is the counter registry plus "seed", which writes
// counters/w<i> = 1 for seedBatch paths from the i in its args: the world.
func Registry() *netcode.Registry {
	r := counter.Registry()
	r.Register("seed", func(tx *netcode.Tx, args []byte) error {
		if len(args) != 4 {
			return counter.ErrArgs
		}
		from := int(binary.LittleEndian.Uint32(args))
		for i := from; i < from+seedBatch; i++ {
			tx.Write(fmt.Sprintf("%sw%d", counter.Prefix, i), counter.AddArgs("", 1)[:8])
		}
		return nil
	}, netcode.FuncOptions{})
	return r
}

// seedBatch is the paths one seed call writes (a transaction writes at
// most netcode's MaxWrites, 64 by default).
const seedBatch = 50

// --- the run ---

type event struct {
	at  int64
	seq uint64
	fn  func()
}

type events []*event

func (q events) Len() int { return len(q) }
func (q events) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q events) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *events) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *events) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// input is something the node goroutine handles, in arrival order.
type input struct {
	arrived int64
	c       *Client
	frame   []byte
	kind    inputKind
	stall   time.Duration
	behind  bool // a tick put behind the frames that arrived before it ran
}

type inputKind uint8

const (
	inFrame inputKind = iota
	inConnect
	inDisconnect
	inTick
	inStall
)

// Run is one run: the world is seeded and the players join during the
// warmup, the attack (nil for a baseline) plays for cfg.Attack, then the
// cooldown lets answers come in.
type Run struct {
	cfg  Config
	rng  *rand.Rand
	node *authority.Node

	now  int64
	seq  uint64
	q    events
	err  error
	busy int64 // the node goroutine is busy until then

	inbox       []input // waiting for the node goroutine
	running     bool    // a node turn is scheduled
	tickQueued  bool
	busyStart   int64
	longestBusy int64

	clients  map[authority.SessionID]*Client
	honest   []*Client
	late     *Client
	lateAsk  int64
	abusers  []*Client
	attack   *Attack
	atkStart int64
	atkEnd   int64

	joiner *Client // a client a test looks at after the run

	peakSessions, peakWaiting int
	heapBase, heapPeak        uint64 // live heap at the attack's start, and its most after
}

// New prepares a run of attack (nil: none) under cfg.
func New(cfg Config, attack *Attack) (*Run, error) {
	ncfg := cfg.Node
	ncfg.Registry = Registry()
	n, err := authority.NewNode(ncfg)
	if err != nil {
		return nil, err
	}
	r := &Run{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x686f7374)), node: n, clients: map[authority.SessionID]*Client{}, attack: attack}
	r.atkStart = int64(cfg.Warmup)
	r.atkEnd = r.atkStart + int64(cfg.Attack)
	return r, nil
}

// Node returns the node, for a caller that looks at it after the run.
func (r *Run) Node() *authority.Node { return r.node }

func (r *Run) at(t int64, fn func()) {
	r.seq++
	heap.Push(&r.q, &event{at: t, seq: r.seq, fn: fn})
}

// Now is the run's virtual time, nanoseconds.
func (r *Run) Now() int64 { return r.now }

// Exec runs to the end and returns what it measured.
func (r *Run) Exec() (Result, error) {
	cool := r.cfg.Cooldown
	if r.attack != nil {
		cool = max(cool, r.attack.Cooldown)
	}
	end := r.atkEnd + int64(cool)
	// The node ticks; a tick due while the node is busy waits, once.
	var tick func()
	tick = func() {
		if !r.tickQueued {
			r.tickQueued = true
			r.toNode(input{kind: inTick})
		}
		r.at(r.now+int64(r.cfg.Tick), tick)
	}
	r.at(0, tick)
	// The world, then the players, spread over the first half of the
	// warmup.
	seeder := r.newClient("seeder", false)
	seeder.onWelcome = func(c *Client) {
		// At most one batch per 10 ms: within the default call rate.
		for i := 0; i < r.cfg.World; i += seedBatch {
			r.at(r.now+int64(i/seedBatch)*int64(10*time.Millisecond), func() {
				c.Send(c.CallMsg("seed", binary.LittleEndian.AppendUint32(nil, uint32(i)), r.now))
			})
		}
	}
	r.at(0, func() { seeder.connect() })
	for i := range r.cfg.Honest {
		c := r.newClient(fmt.Sprintf("honest%d", i), true)
		r.honest = append(r.honest, c)
		r.at(int64(r.cfg.Warmup)/2*int64(i+1)/int64(r.cfg.Honest+1), func() { c.connect() })
	}
	// A player who joins in the middle of the attack.
	r.late = r.newClient("late", true)
	r.at(r.atkStart+int64(r.cfg.Attack)/2, func() { r.lateAsk = r.now; r.late.connect() })
	if r.attack != nil {
		r.at(r.atkStart, func() { r.attack.Start(r) })
	}
	// The live heap (after a collection) at the attack's start and at
	// eight points until the cooldown's end.
	r.at(r.atkStart, func() { r.heapBase = liveHeap() })
	for i := 1; i <= 8; i++ {
		r.at(r.atkStart+(end-r.atkStart)*int64(i)/8-1, func() { r.heapPeak = max(r.heapPeak, liveHeap()) })
	}
	for r.q.Len() > 0 && r.err == nil {
		e := heap.Pop(&r.q).(*event)
		if e.at > end {
			break
		}
		r.now = e.at
		e.fn()
	}
	if r.err != nil {
		return Result{}, r.err
	}
	return r.result(), nil
}

// toNode queues an input for the node goroutine, arriving now.
func (r *Run) toNode(in input) {
	in.arrived = r.now
	r.inbox = append(r.inbox, in)
	if !r.running {
		r.running = true
		r.at(max(r.now, r.busy), r.nodeTurn)
	}
}

// nodeTurn handles the oldest waiting input and charges its work.
func (r *Run) nodeTurn() {
	in := r.inbox[0]
	r.inbox[0] = input{}
	r.inbox = r.inbox[1:]
	if in.kind == inTick && !in.behind && len(r.inbox) > 0 {
		// As the server does, a tick goes after the frames that arrived
		// before it runs (a Hello that arrived in time is not late).
		in.behind = true
		r.inbox = append(r.inbox, in)
		r.at(r.now, r.nodeTurn)
		return
	}
	if r.now > r.busy {
		r.busyStart = r.now
	}
	before := r.node.Stats()
	cost := 0.0
	switch in.kind {
	case inFrame:
		if in.c.open {
			r.node.StepArrived(r.now, in.arrived, in.c.id, in.frame)
		}
	case inConnect:
		if in.c.connectAbusive && in.c.firstAt < 0 {
			in.c.firstAt = in.arrived
		}
		id, err := r.node.Connect(r.now, in.c.name)
		if err != nil {
			in.c.closed(r.now, err.Error())
		} else {
			in.c.id, in.c.open = id, true
			r.clients[id] = in.c
			in.c.connected()
		}
	case inDisconnect:
		if in.c.open {
			r.node.Disconnect(r.now, in.c.id)
			in.c.open = false
			delete(r.clients, in.c.id)
		}
	case inTick:
		r.tickQueued = false
		r.node.Tick(r.now)
		cost += r.cfg.Cost.PerTick
	case inStall:
		cost += float64(in.stall)
	}
	after := r.node.Stats()
	cost += r.cost(before, after)
	r.busy = r.now + int64(cost)
	r.longestBusy = max(r.longestBusy, r.busy-r.busyStart)
	r.peakSessions = max(r.peakSessions, after.Sessions)
	r.peakWaiting = max(r.peakWaiting, after.Waiting)
	// What the node sends leaves when it is done.
	for _, o := range r.node.Ready() {
		c := r.clients[o.Session]
		if c == nil {
			continue
		}
		c.deliver(r.busy, o.Frames, o.Close, o.Reason)
		if o.Close {
			c.open = false
			delete(r.clients, o.Session)
			if c.abuser && c.firstAt >= 0 && c.cutAt < 0 {
				c.cutAt = r.busy
			}
		}
	}
	if len(r.inbox) > 0 {
		r.at(r.busy, r.nodeTurn)
	} else {
		r.running = false
	}
}

func (r *Run) cost(a, b authority.Stats) float64 {
	m := r.cfg.Cost
	d := func(x, y uint64) float64 { return float64(y - x) }
	return m.PerMessage*d(a.MessagesIn, b.MessagesIn) +
		m.PerValue*(d(a.ValuesSent, b.ValuesSent)+d(a.StatesSent, b.StatesSent)) +
		m.PerSnapshotValue*d(a.SnapshotValues, b.SnapshotValues) +
		m.PerCall*(d(a.Calls, b.Calls)+d(a.Reruns, b.Reruns)) +
		m.PerByteIn*d(a.BytesIn, b.BytesIn) +
		m.PerByteOut*d(a.BytesOut, b.BytesOut) +
		m.PerConnect*(d(a.Connects, b.Connects)+d(a.Disconnects, b.Disconnects))
}

// link is the one-way delay of a frame sent now on a link whose last
// frame arrives at last: frames stay in order.
func (r *Run) link(last int64) int64 {
	d := int64(r.cfg.Delay)
	if r.cfg.Jitter > 0 {
		d += r.rng.Int64N(int64(r.cfg.Jitter))
	}
	return max(r.now+d, last)
}

// Stall makes the node goroutine busy for d (as a collection of a large
// heap, or a slow function, would).
func (r *Run) Stall(d time.Duration) { r.toNode(input{kind: inStall, stall: d}) }

// Every calls fn every period from now until the attack ends.
func (r *Run) Every(period time.Duration, fn func()) {
	var step func()
	step = func() {
		if r.now >= r.atkEnd {
			return
		}
		fn()
		r.at(r.now+int64(period), step)
	}
	step()
}

// At calls fn at virtual time t.
func (r *Run) At(t int64, fn func()) { r.at(t, fn) }

// AttackEnd is when the attack stops.
func (r *Run) AttackEnd() int64 { return r.atkEnd }

func (r *Run) result() Result {
	res := Result{PeakSessions: r.peakSessions, PeakWaiting: r.peakWaiting, LongestBusy: time.Duration(r.longestBusy), Stats: r.node.Stats()}
	if r.heapPeak > r.heapBase {
		res.HeapGrowth = r.heapPeak - r.heapBase
	}
	if r.attack != nil {
		res.Attack = r.attack.Name
	} else {
		res.Attack = "baseline"
	}
	var lat []int64
	for _, c := range r.honest {
		for _, s := range c.calls {
			if s.sent < r.atkStart || s.sent >= r.atkEnd {
				continue
			}
			res.Sent++
			switch {
			case s.answered < 0:
				res.Missed++
			case s.ok:
				res.Confirmed++
				lat = append(lat, s.answered-s.sent)
			default:
				res.Refused++
			}
		}
		if c.closedAt >= 0 {
			res.Disconnected = append(res.Disconnected, c.name+": "+c.reason)
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50 = time.Duration(lat[len(lat)/2])
		res.P99 = time.Duration(lat[min(len(lat)-1, len(lat)*99/100)])
		res.Max = time.Duration(lat[len(lat)-1])
	}
	if r.late.welcomedAt >= 0 {
		res.LateJoined = true
		res.LateJoin = time.Duration(r.late.welcomedAt - r.lateAsk)
	}
	if r.late.closedAt >= 0 {
		res.Disconnected = append(res.Disconnected, "late: "+r.late.reason)
	}
	res.Abusers = len(r.abusers)
	for _, c := range r.abusers {
		if c.cutAt >= 0 && c.firstAt >= 0 {
			res.CutOff++
			res.MaxCutOff = max(res.MaxCutOff, time.Duration(c.cutAt-c.firstAt))
		}
	}
	return res
}

// --- clients ---

// Client is one session of the run: an honest player, the seeder, or an
// abuser driven by an Attack.
type Client struct {
	r      *Run
	name   string
	honest bool
	abuser bool

	id      authority.SessionID
	open    bool
	enc     *wire.Encoder
	dec     *wire.Decoder
	msg     wire.Message
	creator uint32
	seq     uint64
	hello   bool  // says Hello once connected
	up      int64 // arrival time of the last frame sent to the node
	down    int64 // arrival time of the last frame sent to the client

	calls      map[uint64]*callRec
	welcomedAt int64
	closedAt   int64
	reason     string
	firstAt    int64 // when the abuser's first abusive frame reached the node
	// connectAbusive: the session itself is the abuse (it never says
	// Hello), so the cut-off clock starts when its connect reaches the node.
	connectAbusive bool
	cutAt          int64 // when the node closed the abuser

	onWelcome func(*Client)
	// OnMessage, if set, sees every message the client receives.
	OnMessage func(c *Client, m *wire.Message)
}

type callRec struct {
	sent, answered int64
	ok             bool
}

func (r *Run) newClient(name string, honest bool) *Client {
	enc, _ := wire.NewEncoder(r.cfg.Node.Wire)
	dec, _ := wire.NewDecoder(r.cfg.Node.Wire)
	c := &Client{r: r, name: name, honest: honest, enc: enc, dec: dec, calls: map[uint64]*callRec{},
		welcomedAt: -1, closedAt: -1, firstAt: -1, cutAt: -1}
	if honest {
		c.onWelcome = func(c *Client) {
			c.Send(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{counter.Prefix}}})
			c.play()
		}
	}
	return c
}

// NewAbuser makes an abusive client; it connects with Connect and its
// frames count as abusive from the first one sent with Abuse.
func (r *Run) NewAbuser(name string) *Client {
	c := r.newClient(name, false)
	c.abuser = true
	r.abusers = append(r.abusers, c)
	return c
}

// OnWelcome sets what the client does once welcomed.
func (c *Client) OnWelcome(fn func(*Client)) { c.onWelcome = fn }

// Creator is the client's creator id (after its Welcome).
func (c *Client) Creator() uint32 { return c.creator }

// Now is the run's virtual time, the node's clock.
func (c *Client) Now() int64 { return c.r.now }

// Open reports whether the client's session is open.
func (c *Client) Open() bool { return c.open && c.closedAt < 0 }

// Connect opens the client's session (the transport handshake is not
// modelled: the node hears of it one link delay later) and, unless
// noHello, says Hello.
func (c *Client) connect() { c.Connect(true) }

// Connect opens the client's session, saying Hello if hello is set.
func (c *Client) Connect(hello bool) {
	r := c.r
	c.up = r.link(c.up)
	r.at(c.up, func() {
		r.toNode(input{c: c, kind: inConnect})
	})
	c.hello = hello
}

func (c *Client) connected() {
	if c.hello {
		c.Send(&wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion}})
	}
}

// Disconnect closes the client's transport session.
func (c *Client) Disconnect() {
	r := c.r
	c.up = r.link(c.up)
	r.at(c.up, func() { r.toNode(input{c: c, kind: inDisconnect}) })
}

// Frame encodes messages into one frame.
func (c *Client) Frame(ms ...*wire.Message) []byte {
	f := c.enc.BeginFrame(nil)
	for _, m := range ms {
		var err error
		if f, err = c.enc.Append(f, m); err != nil {
			c.r.fail(fmt.Errorf("%w: %s cannot encode %v: %v", ErrRun, c.name, m.Kind, err))
			return nil
		}
	}
	return f
}

// Send sends messages in one frame.
func (c *Client) Send(ms ...*wire.Message) { c.SendFrame(c.Frame(ms...)) }

// SendFrame sends a raw frame.
func (c *Client) SendFrame(f []byte) {
	r := c.r
	if f == nil || c.closedAt >= 0 {
		return
	}
	c.up = r.link(c.up)
	r.at(c.up, func() { r.toNode(input{c: c, frame: f, kind: inFrame}) })
}

// Abuse sends an abusive frame: the first one starts the abuser's cut-off
// clock when it reaches the node.
func (c *Client) Abuse(f []byte) {
	r := c.r
	if f == nil || c.closedAt >= 0 {
		return
	}
	c.up = r.link(c.up)
	r.at(c.up, func() {
		if c.firstAt < 0 {
			c.firstAt = r.now
		}
		r.toNode(input{c: c, frame: f, kind: inFrame})
	})
}

// Call sends a call of the client's at write time w.
func (c *Client) call(name string, args []byte, w int64) {
	c.seq++
	if c.honest {
		c.calls[c.seq] = &callRec{sent: c.r.now, answered: -1}
	}
	c.Send(c.CallMsg(name, args, w))
}

// CallMsg returns the client's next call message.
func (c *Client) CallMsg(name string, args []byte, w int64) *wire.Message {
	if !c.honest {
		c.seq++
	}
	return &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: c.creator, Seq: c.seq}, Name: name, Args: args,
		Time: wire.Time{Nanos: w, Creator: c.creator}}}
}

// play makes an honest player call add on its own counter at its rate.
func (c *Client) play() {
	r := c.r
	period := int64(float64(time.Second) / r.cfg.CallRate)
	args := counter.AddArgs(c.name, 1)
	var step func()
	step = func() {
		if c.closedAt >= 0 {
			return
		}
		c.call("add", args, r.now)
		r.at(r.now+period, step)
	}
	r.at(r.now+r.rng.Int64N(period), step)
}

// deliver schedules frames (and a close) the node sent at t to arrive.
func (c *Client) deliver(t int64, frames [][]byte, close bool, reason string) {
	r := c.r
	d := int64(r.cfg.Delay)
	if r.cfg.Jitter > 0 {
		d += r.rng.Int64N(int64(r.cfg.Jitter))
	}
	c.down = max(t+d, c.down)
	r.at(c.down, func() {
		for _, f := range frames {
			c.receive(f)
		}
		if close {
			c.closed(r.now, reason)
		}
	})
}

func (c *Client) receive(f []byte) {
	r := c.r
	if err := c.dec.Start(f); err != nil {
		r.fail(fmt.Errorf("%w: %s got a frame it cannot read: %v", ErrRun, c.name, err))
		return
	}
	for {
		err := c.dec.Next(&c.msg)
		if err == io.EOF {
			return
		}
		if err != nil {
			r.fail(fmt.Errorf("%w: %s got a message it cannot read: %v", ErrRun, c.name, err))
			return
		}
		m := &c.msg
		switch m.Kind {
		case wire.KindWelcome:
			c.creator = m.Welcome.Creator
			c.welcomedAt = r.now
			if c.onWelcome != nil {
				c.onWelcome(c)
			}
		case wire.KindCallResult:
			if rec := c.calls[m.CallResult.ID.Seq]; rec != nil && rec.answered < 0 {
				rec.answered, rec.ok = r.now, m.CallResult.Status == wire.CallOK
			}
		}
		if c.OnMessage != nil {
			c.OnMessage(c, m)
		}
	}
}

func (c *Client) closed(t int64, reason string) {
	if c.closedAt < 0 {
		c.closedAt, c.reason = t, reason
	}
	// A closed client holds nothing more, so the heap measures the node.
	c.enc, c.dec, c.msg = nil, nil, wire.Message{}
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (r *Run) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}
