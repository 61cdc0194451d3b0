package sim

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// Errors of the simulator.
var (
	ErrBadConfig = errors.New("sim: bad config")
	// ErrProperty reports a broken property; the message names it, the
	// seed and the virtual time.
	ErrProperty = errors.New("sim: property violated")
)

// Server is the authority as the simulator drives it: the node's pure
// loop with session ids as plain integers. NodeServer adapts an
// authority.Node; a test may wrap it (to time or fault it).
type Server interface {
	// Connect registers a new transport session at now.
	Connect(now int64, remote string) (uint64, error)
	// Step handles one frame received from session id at now.
	Step(now int64, id uint64, frame []byte)
	// Disconnect forgets a session whose transport is gone.
	Disconnect(now int64, id uint64)
	// Tick is the server's periodic work (finality, flushes).
	Tick(now int64)
	// Ready calls emit, in session order, for everything to send since
	// the last call: frames in order, then close when asked.
	Ready(emit func(id uint64, frames [][]byte, close bool, reason string))
	// Verify checks the store's lock invariant from scratch.
	Verify() error
	// Latest calls fn, in path order, for every path under prefix that
	// holds a valid non-event value, with the latest valid value (nil when
	// that is a deletion).
	Latest(prefix string, fn func(path string, value []byte))
	// Counters returns the calls the server ran and re-ran.
	Counters() (calls, reruns uint64)
}

// PeerServer is a Server that can be one authority of a cluster: the
// simulator opens its replication streams and tells it of its peers.
type PeerServer interface {
	Server
	// ConnectPeer registers a replication stream this server opens to
	// authority id.
	ConnectPeer(now int64, id uint8, remote string) (uint64, error)
	// PeerUp and PeerDown are membership events.
	PeerUp(now int64, id uint8)
	PeerDown(now int64, id uint8)
}

// Config describes one simulated run. Start from DefaultConfig.
type Config struct {
	Seed    uint64
	Clients int
	// Profile is applied to both directions of every client's link
	// (one-way figures: the round trip is twice its Delay).
	Profile lagsim.Profile
	// Warmup is the game time before the workload starts (clients
	// connect, spread over its first half, and sync their clocks).
	Warmup time.Duration
	// Active is the game time the workload runs.
	Active time.Duration
	// Quiet is the game time after the workload, with no new call and no
	// fault, for everything to settle before the final checks.
	Quiet time.Duration
	// Frame is the clients' frame period and the server's tick (16 ms).
	Frame time.Duration
	// MaxDriftPPM bounds each client's local clock drift, drawn uniformly
	// from [-MaxDriftPPM, MaxDriftPPM]; local clocks also start at a random
	// offset of up to an hour.
	MaxDriftPPM float64
	// VerifyEvery checks the authority's lock invariant after every
	// VerifyEvery-th server step or tick (1: after every one; 0: only at
	// the end).
	VerifyEvery int
	// Reconnects is the chance per client per second of the active phase
	// that its session is dropped; it reconnects on a new session after
	// a pause of up to a second.
	Reconnects float64
	Workload   Workload
	// StrictEvents fails a run on any event delivered twice, also after
	// the client core's memory of delivered events (2 × MaxChangeAge +
	// 1 s after the event's time) has expired; otherwise those are
	// counted in Report.LateDuplicates.
	StrictEvents bool
	// Clock configures the clients' synced clocks (DefaultConfig: the
	// timesync defaults).
	Clock timesync.Config
	// Client is the template of the clients' options; Registry and Clock
	// are set per client.
	Client netcode.ClientOptions
	// Actor, when set, gives client i an Actor that plays it instead of
	// the built-in workload (Workload is then ignored).
	Actor func(i int) Actor
	// Cluster describes several authorities (NewCluster); ignored by New.
	Cluster ClusterConfig
}

// DefaultConfig is 8 clients on broadband for 10 s of play.
func DefaultConfig() Config {
	p, _ := lagsim.Preset("broadband")
	return Config{
		Seed:        1,
		Clients:     8,
		Profile:     p,
		Warmup:      2 * time.Second,
		Active:      10 * time.Second,
		Quiet:       4 * time.Second,
		Frame:       16 * time.Millisecond,
		MaxDriftPPM: 100,
		VerifyEvery: 16,
		Workload:    DefaultWorkload(),
		Clock:       timesync.DefaultConfig(),
		Client:      netcode.ClientOptions{Wire: wire.DefaultLimits()},
	}
}

// MaxClients bounds Config.Clients.
const MaxClients = 4096

// MaxGameTime bounds the total game time of a run.
const MaxGameTime = time.Hour

func (c *Config) validate() error {
	bad := func(f string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(f, args...))
	}
	if err := c.Profile.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	switch {
	case c.Clients < 1 || c.Clients > MaxClients:
		return bad("Clients %d outside [1, %d]", c.Clients, MaxClients)
	case c.Profile.Loss >= 1 || c.Profile.Burst.LossBad >= 1:
		return bad("loss must be below 1: every frame must get through eventually")
	case c.Frame <= 0 || c.Frame > time.Second:
		return bad("Frame %v outside (0, 1s]", c.Frame)
	case c.Warmup < 0 || c.Active < 0 || c.Quiet < 0 || c.Warmup+c.Active+c.Quiet > MaxGameTime:
		return bad("phases %v + %v + %v must be non-negative and at most %v", c.Warmup, c.Active, c.Quiet, MaxGameTime)
	case c.MaxDriftPPM < 0 || c.MaxDriftPPM > 1000:
		return bad("MaxDriftPPM %v outside [0, 1000]", c.MaxDriftPPM)
	case c.VerifyEvery < 0:
		return bad("VerifyEvery %d is negative", c.VerifyEvery)
	case c.Reconnects < 0 || c.Reconnects > 10:
		return bad("Reconnects %v outside [0, 10] per second", c.Reconnects)
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	return c.Workload.validate()
}

// start is the virtual time a run starts at: far from zero, which the data
// model reserves for "before everything".
const start = int64(1_000_000 * time.Second)

type evKind uint8

const (
	evFrame     evKind = iota // a client's frame
	evTick                    // the server's tick
	evUp                      // a frame arrives at the server
	evDown                    // a frame arrives at a client
	evConnect                 // a client opens a transport session
	evDrop                    // a client's session is dropped (fault)
	evActivate                // the workload starts
	evQuiet                   // the workload stops
	evPeerFrame               // a frame arrives on a replication stream
	evMember                  // a node learns that a peer is up or down
	evCrash                   // a node crashes
	evRestart                 // a crashed node starts again, empty
	evIsolate                 // a node is cut off from the other nodes
	evHeal                    // its links to them are back
	evMove                    // a range's move: a new owner joins (peer 0) or the old one leaves (peer 1)
	evMapSet                  // a node takes the run's current shard map (gossip reaching it)
	evSplit                   // every node is cut off from every other
	evSplitHeal               // their links are back
	evReset                   // a node that asked for it is replaced with a fresh one
	evDial                    // a node dials a peer again (its stream to it was lost)
)

type event struct {
	at     int64
	seq    uint64
	kind   evKind
	client int
	gen    uint32 // the client's session (or the stream's) generation the frame belongs to
	frame  []byte
	node   int     // the node of a tick, fault or membership event
	peer   int     // the peer a membership event is about
	up     bool    // membership: up or down
	st     *stream // the replication stream of a peer frame
	back   bool    // the frame goes from the stream's acceptor to its opener
}

// queue is a min-heap of events by (at, seq): events at the same time run
// in the order they were scheduled, never in map or pointer order.
type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// localClock is a client's local time source on virtual time: an offset
// and a drift.
type localClock struct {
	s     *Sim
	off   int64
	drift float64 // fraction
}

func (l *localClock) Nanos() int64 {
	el := l.s.now - start
	return start + l.off + el + int64(float64(el)*l.drift)
}

type received struct {
	frame []byte
	local int64
}

// simClient is one simulated player.
type simClient struct {
	idx   int
	core  *netcode.ClientCore
	local *localClock
	rng   *rand.Rand
	up    *link
	down  *link

	// session
	session uint64
	gen     uint32
	online  bool // a transport session is open
	node    int  // the authority it is (or will be) connected to
	inbox   []received
	played  time.Duration // active-phase time this client was connected and synced

	// workload
	player Actor // instead of the workload, when Config.Actor is set
	keys   [2]int8
	calls  map[netcode.CallID]*callInfo

	// observations
	emitted     map[emitKey]int // EventEmitted count per event
	ownBumps    []emitKey       // events of this client's confirmed bumps
	lastBump    emitKey         // the latest own bump event emitted
	reconnects  int
	connectedAt int64
}

type emitKey struct {
	path    string
	nanos   int64
	creator uint32
}

type callInfo struct {
	at   int64 // virtual time of the call
	name string
	bump emitKey
}

// Sim runs one authority and many client cores on virtual time. It is
// single-threaded and deterministic: a Config (seed included) and the
// same server code reproduce a run byte for byte, which TraceHash
// summarises.
type Sim struct {
	cfg     Config
	nodes   []*simNode
	mk      func(id uint8) Server // makes a node's server (again, after a crash)
	smap    *shardmap.Map         // a sharded run's map (NewCluster with Ranges), nil unsharded
	moves   []rangeMove           // its planned range moves
	reg     *netcode.Registry
	rng     *rand.Rand
	now     int64
	seq     uint64
	q       queue
	clients []*simClient
	active  bool
	ended   bool // past the active phase: no more calls or faults
	steps   int
	trace   hash.Hash64
	scratch [16]byte
	err     error // first property violation

	faultLog string // node faults, for a failure's message

	obs observations
}

// New prepares a run of cfg against srv, whose registry must be reg's
// functions (Registry() for the built-in workload).
func New(cfg Config, srv Server, reg *netcode.Registry) (*Sim, error) {
	if srv == nil {
		return nil, fmt.Errorf("%w: nil server", ErrBadConfig)
	}
	cfg.Cluster = ClusterConfig{}
	return newSim(cfg, []Server{srv}, nil, reg)
}

func newSim(cfg Config, srvs []Server, mk func(uint8) Server, reg *netcode.Registry) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: nil registry", ErrBadConfig)
	}
	s := &Sim{
		cfg:   cfg,
		mk:    mk,
		reg:   reg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5157)),
		now:   start,
		trace: fnv.New64a(),
	}
	for i, srv := range srvs {
		s.nodes = append(s.nodes, newSimNode(i, srv, len(srvs)))
	}
	for i := range cfg.Clients {
		sub := func() *rand.Rand { return rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())) }
		lc := &localClock{
			s:     s,
			off:   s.rng.Int64N(int64(2*time.Hour)) - int64(time.Hour),
			drift: (2*s.rng.Float64() - 1) * cfg.MaxDriftPPM / 1e6,
		}
		clk, err := timesync.New(lc, cfg.Clock)
		if err != nil {
			return nil, err
		}
		opts := cfg.Client
		opts.Registry, opts.Clock = reg, clk
		core, err := netcode.NewClientCore(opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		for _, p := range s.watches() {
			if err := core.Watch(p, wire.WatchLatest, 0); err != nil {
				return nil, err
			}
		}
		c := &simClient{
			idx: i, core: core, local: lc, rng: sub(), node: i % clientNodes(&cfg, len(srvs)),
			up:      newLink(&s.cfg.Profile, sub(), cfg.Frame),
			down:    newLink(&s.cfg.Profile, sub(), cfg.Frame),
			calls:   make(map[netcode.CallID]*callInfo),
			emitted: make(map[emitKey]int),
		}
		if cfg.Actor != nil {
			c.player = cfg.Actor(i)
		}
		s.clients = append(s.clients, c)
		// Clients join over the first half of the warmup, each with its
		// own frame phase.
		join := start + s.rng.Int64N(int64(cfg.Warmup)/2+1)
		s.schedule(&event{at: join, kind: evConnect, client: i})
		s.schedule(&event{at: join + s.rng.Int64N(int64(cfg.Frame)), kind: evFrame, client: i})
	}
	for i := range s.nodes {
		// Each node ticks with its own phase (a millisecond apart).
		s.schedule(&event{at: start + int64(cfg.Frame) + int64(i)*int64(time.Millisecond), kind: evTick, node: i})
	}
	s.startCluster()
	s.schedule(&event{at: start + int64(cfg.Warmup), kind: evActivate})
	s.schedule(&event{at: start + int64(cfg.Warmup+cfg.Active), kind: evQuiet})
	return s, nil
}

func (s *Sim) watches() []string {
	w := []string{PlayersPrefix, CountersPrefix}
	if s.cfg.Workload.Looks > 0 {
		w = append(w, SeenPrefix)
	}
	if s.cfg.Workload.WatchEvents {
		w = append(w, "events/")
	}
	return w
}

func (s *Sim) schedule(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

// Now returns the virtual time (the server's synced time), nanoseconds.
func (s *Sim) Now() int64 { return s.now }

// End returns the virtual time at which the configured phases are over.
func (s *Sim) End() int64 { return start + int64(s.cfg.Warmup+s.cfg.Active+s.cfg.Quiet) }

// TraceHash returns the FNV-64a hash of every frame delivered so far, with
// its arrival time, its client and its direction.
func (s *Sim) TraceHash() uint64 { return s.trace.Sum64() }

// Clients returns the client cores, by player index.
func (s *Sim) Clients() []*netcode.ClientCore {
	out := make([]*netcode.ClientCore, len(s.clients))
	for i, c := range s.clients {
		out[i] = c.core
	}
	return out
}

// Run runs every phase (warmup, active, quiet) and then checks the final
// properties. It returns the first property violated, wrapping ErrProperty.
func (s *Sim) Run() error {
	if err := s.RunUntil(s.End()); err != nil {
		return err
	}
	if err := s.settle(); err != nil {
		return err
	}
	return s.Check()
}

// maxSettle bounds how long after End a run waits for frames in flight.
const maxSettle = 10 * time.Second

// settle runs on until every frame already on a link at End has arrived
// and been applied (two more frames), at most maxSettle. Convergence is an
// eventual property: on a lossy link one packet lost several times holds
// the ordered stream shut for seconds (awful: a resend every ~0.7 s), and
// the values behind it are on their way, not lost.
func (s *Sim) settle() error {
	limit := s.End() + int64(maxSettle)
	for s.now < limit {
		last := s.streamsLast()
		for _, c := range s.clients {
			last = max(last, c.down.last, c.up.last)
		}
		if last <= s.now {
			return nil
		}
		if err := s.RunUntil(min(last+2*int64(s.cfg.Frame), limit)); err != nil {
			return err
		}
	}
	return nil
}

// RunUntil processes every event up to virtual time t and stops at the
// first property violated.
func (s *Sim) RunUntil(t int64) error {
	for s.err == nil && len(s.q) > 0 && s.q[0].at <= t {
		e := heap.Pop(&s.q).(*event)
		s.now = e.at
		s.handle(e)
	}
	if s.err == nil && t > s.now {
		s.now = t
	}
	return s.err
}

func (s *Sim) fail(format string, args ...any) {
	if s.err == nil {
		msg := fmt.Sprintf(format, args...)
		if s.faultLog != "" {
			msg += "\nnode faults:\n" + s.faultLog
		}
		s.err = fmt.Errorf("%w: seed %d, t=+%v: %s", ErrProperty, s.cfg.Seed, time.Duration(s.now-start), msg)
	}
}

func (s *Sim) handle(e *event) {
	switch e.kind {
	case evTick:
		nd := s.nodes[e.node]
		if nd.alive {
			nd.srv.Tick(s.now)
			s.nodeOut(nd)
			s.verifyStep(nd)
		}
		s.schedule(&event{at: s.now + int64(s.cfg.Frame), kind: evTick, node: e.node})
	case evFrame:
		s.frame(s.clients[e.client])
		s.schedule(&event{at: s.now + int64(s.cfg.Frame), kind: evFrame, client: e.client})
	case evUp:
		c := s.clients[e.client]
		nd := s.nodes[c.node]
		if e.gen != c.gen || !c.online || !nd.alive {
			return // the session it belonged to is gone
		}
		s.record(e, 0)
		nd.srv.Step(s.now, c.session, e.frame)
		s.nodeOut(nd)
		s.verifyStep(nd)
	case evDown:
		c := s.clients[e.client]
		if e.gen != c.gen || !c.online {
			return
		}
		s.record(e, 1)
		c.inbox = append(c.inbox, received{e.frame, c.local.Nanos()})
	case evConnect:
		s.connect(s.clients[e.client])
	case evDrop:
		// A fault (up unset) drops a session during the active phase; a
		// failed node (up set, gen the session's) drops it whenever.
		c := s.clients[e.client]
		if !c.online || (e.up && e.gen != c.gen) || (!e.up && s.ended) {
			return
		}
		err := errors.New("sim: session dropped")
		if nd := s.nodes[c.node]; nd.alive && nd.bySess[c.session] == c {
			nd.srv.Disconnect(s.now, c.session)
		} else {
			err = errNodeDown
		}
		s.drop(c, err)
	case evActivate:
		s.active = true
		s.obs.begin(s)
		s.scheduleFaults()
		s.scheduleNodeFaults()
		s.scheduleMoves()
	case evQuiet:
		s.obs.end(s)
		s.active, s.ended = false, true
	default:
		s.handleCluster(e)
	}
}

// record adds a delivered frame to the trace.
func (s *Sim) record(e *event, dir byte) {
	b := s.scratch[:]
	binary.LittleEndian.PutUint64(b, uint64(e.at))
	binary.LittleEndian.PutUint32(b[8:], uint32(e.client))
	b[12] = dir
	s.trace.Write(b[:13])
	s.trace.Write(e.frame)
}

func (s *Sim) verifyStep(nd *simNode) {
	s.steps++
	if s.cfg.VerifyEvery > 0 && s.steps%s.cfg.VerifyEvery == 0 {
		if err := nd.srv.Verify(); err != nil {
			s.fail("node %d: lock invariant: %v", nd.idx, err)
		}
	}
}

func (s *Sim) connect(c *simClient) {
	nd := s.nodes[c.node]
	if !nd.alive {
		// A dial to a dead authority fails (after the handshake
		// timeout); the client tries the next address.
		c.node = (c.node + 1) % clientNodes(&s.cfg, len(s.nodes))
		s.schedule(&event{at: s.now + int64(dialTimeout), kind: evConnect, client: c.idx})
		return
	}
	id, err := nd.srv.Connect(s.now, fmt.Sprintf("sim-%d", c.idx))
	if err != nil {
		s.fail("client %d: connect refused: %v", c.idx, err)
		return
	}
	c.session, c.online = id, true
	c.gen++
	c.up.reset(s.now)
	c.down.reset(s.now)
	c.connectedAt = s.now
	nd.bySess[id] = c
	if err := c.core.Connect(); err != nil {
		s.fail("client %d: Connect: %v", c.idx, err)
	}
}

// drop ends c's session on both sides; frames in flight are lost with it.
func (s *Sim) drop(c *simClient, err error) {
	delete(s.nodes[c.node].bySess, c.session)
	c.online = false
	c.gen++
	c.inbox = nil
	c.core.Disconnected(err)
	c.reconnects++
	// The next session goes to the next authority (a client's failover
	// addresses, tried in turn).
	c.node = (c.node + 1) % clientNodes(&s.cfg, len(s.nodes))
	pause := int64(100*time.Millisecond) + s.rng.Int64N(int64(900*time.Millisecond))
	s.schedule(&event{at: s.now + pause, kind: evConnect, client: c.idx})
}

func (s *Sim) scheduleFaults() {
	if s.cfg.Reconnects <= 0 {
		return
	}
	secs := s.cfg.Active.Seconds()
	for _, c := range s.clients {
		n := int(s.cfg.Reconnects * secs)
		if s.rng.Float64() < s.cfg.Reconnects*secs-float64(n) {
			n++
		}
		for range n {
			at := s.now + s.rng.Int64N(int64(s.cfg.Active))
			s.schedule(&event{at: at, kind: evDrop, client: c.idx})
		}
	}
}

// nodeOut sends what a node has ready on the clients' down links and on
// its replication streams.
func (s *Sim) nodeOut(nd *simNode) {
	nd.srv.Ready(func(id uint64, frames [][]byte, close bool, reason string) {
		c := nd.bySess[id]
		if c == nil {
			s.streamOut(nd, id, frames, close)
			return
		}
		for _, f := range frames {
			at := c.down.send(s.now, len(f))
			s.schedule(&event{at: at, kind: evDown, client: c.idx, gen: c.gen, frame: f})
		}
		if close {
			// The server closed the session (after the frames above,
			// which the transport would still deliver; the sim drops
			// them with the session). Outside faults this is a failure.
			if s.cfg.Reconnects == 0 && !s.clustered() {
				s.fail("server closed client %d: %s", c.idx, reason)
			}
			s.drop(c, fmt.Errorf("sim: closed by the server: %s", reason))
		}
	})
	s.checkReset(nd)
}

// frame is one client frame: apply what arrived, tick, play, send.
func (s *Sim) frame(c *simClient) {
	core := c.core
	for _, r := range c.inbox {
		if err := core.Receive(r.frame, r.local); err != nil {
			s.fail("client %d: frame refused: %v", c.idx, err)
			return
		}
	}
	clear(c.inbox)
	c.inbox = c.inbox[:0]
	core.Tick()
	if s.active && c.online && core.Connected() && core.Clock().Synced() {
		c.played += s.cfg.Frame
		s.play(c)
	}
	s.events(c)
	if !c.online {
		core.Outgoing() // nothing to carry it: the core re-sends after Connect
		return
	}
	for _, f := range core.Outgoing() {
		at := c.up.send(s.now, len(f))
		s.schedule(&event{at: at, kind: evUp, client: c.idx, gen: c.gen, frame: f})
	}
}

// play makes this frame's calls of the workload.
func (s *Sim) play(c *simClient) {
	if c.player != nil {
		c.player.Frame(c.core, func(name string, args []byte) (netcode.CallID, error) { return s.playerCall(c, name, args) })
		return
	}
	w := &s.cfg.Workload
	f := s.cfg.Frame.Seconds()
	if c.rng.Float64() < w.KeyChanges*f {
		old := c.keys
		for c.keys == old {
			c.keys = [2]int8{int8(c.rng.IntN(3) - 1), int8(c.rng.IntN(3) - 1)}
		}
		s.call(c, FuncMove, MoveArgs(c.idx, c.keys[0], c.keys[1]))
	}
	if c.rng.Float64() < w.Bumps*f {
		s.call(c, FuncBump, BumpArgs(c.rng.IntN(w.Counters)))
	}
	if len(s.clients) > 1 && c.rng.Float64() < w.Shoves*f {
		target := (c.idx + 1 + c.rng.IntN(len(s.clients)-1)) % len(s.clients)
		s.call(c, FuncShove, ShoveArgs(target, int8(c.rng.IntN(3)-1), int8(c.rng.IntN(3)-1)))
	}
	if w.Looks > 0 && len(s.clients) > 1 && c.rng.Float64() < w.Looks*f {
		target := (c.idx + 1 + c.rng.IntN(len(s.clients)-1)) % len(s.clients)
		s.call(c, FuncLook, LookArgs(c.idx, target))
		if s.smap != nil {
			a, _ := s.smap.Lookup(PlayerPath(target))
			b, _ := s.smap.Lookup(SeenPath(c.idx))
			if !slices.Equal(a.Owners, b.Owners) {
				s.obs.crossRange++
			}
		}
	}
}

func (s *Sim) call(c *simClient, name string, args []byte) {
	id, err := c.core.Call(name, args)
	if err != nil {
		s.obs.refused++
		return
	}
	info := &callInfo{at: s.now, name: name}
	c.calls[id] = info
	if name == FuncBump {
		// The prediction emitted the bump's event just now: it is the
		// last EventEmitted queued.
		c.lastBump = emitKey{}
		s.events(c)
		info.bump = c.lastBump
	}
}
