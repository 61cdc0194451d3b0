package sim

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// ClusterConfig describes the authorities of a clustered run (NewCluster)
// and the faults between them.
type ClusterConfig struct {
	// Link is the profile of each direction of the links between
	// authorities (DefaultClusterConfig: 1 ms, no loss).
	Link lagsim.Profile
	// Crashes is the number of node crashes during the active phase,
	// each at a random time on a random live node (never the last one
	// with a quorum); a crashed node starts again, empty, Downtime later.
	Crashes  int
	Downtime time.Duration
	// Partitions is the number of times a random node is cut off from the
	// other nodes (not from its clients) during the active phase, each
	// for a random span up to PartitionMax. One that outlasts Detect is
	// seen as a failure by both sides: the isolated node, without a
	// quorum, stops confirming and re-running calls; when the partition
	// heals, membership brings both sides up again, and the node starts
	// again, empty (its clients fail over), if the others took it over
	// meanwhile (NeedsReset), or serves on with its state if they had not
	// completed the takeover yet.
	Partitions   int
	PartitionMax time.Duration
	// RejoinMax, when above 0, makes every partition outlast Detect by a
	// random span up to RejoinMax instead (PartitionMax is then unused):
	// the isolated node comes back while the others are taking it over.
	RejoinMax time.Duration
	// MemberJitter, when above 0, delays the news that an isolated node
	// is back by a random span up to MemberJitter at each other node, as
	// gossip reaches members at their own times: one may complete a
	// takeover that another abandons.
	MemberJitter time.Duration
	// Splits is the number of times every node is cut off from every
	// other at once (as CPU starvation can make every member suspect
	// every other), each for Detect plus a random span up to
	// PartitionMax: every node loses its quorum, and when the links heal
	// each one is told the others are up again and, if it asks to
	// (NeedsReset), is replaced with a fresh node as its shell would.
	Splits int
	// Detect is how long after a node stops answering the others
	// declare it down (membership's failure detection); ClientDetect how
	// long its clients' transports take to notice and fail over.
	Detect, ClientDetect time.Duration
	// Ranges, when above 0, shards the workload: players/, counters/ and
	// seen/ are each split into Ranges hash ranges, range j owned by
	// Replicas nodes from node j mod nodes on (primary first), and every
	// node gets the map (ShardServer). Calls then run on an owner of their
	// shard key, relayed by the client's node. 0: one range replicated
	// everywhere.
	Ranges   int
	Replicas int // owners per range (0: 2)
	// Moves is the number of live range moves during the active phase of
	// a sharded run, spread over it: a random range gains a node that
	// does not own it as an owner, and MoveSettle later its old primary
	// leaves it. Each map change reaches each node at its own time, up to
	// 50 ms apart, as gossip would.
	Moves      int
	MoveSettle time.Duration // 0: 1 s
	// MoveDirect makes each move one map change: the new owner becomes
	// primary and the old primary leaves the range at once, so calls
	// reach the new owner while it is still catching up on the range.
	MoveDirect bool
	// MoveTo, when set, is the node every move gives its range to (a
	// range it owns already is not moved); 0: a random node not owning it.
	MoveTo uint8
	// ClientNodes, when above 0, puts the clients on the first
	// ClientNodes nodes only (they start and fail over among them); the
	// others have no client, so they watch nothing their clients would.
	ClientNodes int
}

// DefaultClusterConfig is three authorities' worth of faults: no crash or
// partition; 1 ms links; detection in 1.5 s.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		Link:         lagsim.Profile{Name: "node", Delay: time.Millisecond},
		Downtime:     3 * time.Second,
		PartitionMax: 3 * time.Second,
		Detect:       1500 * time.Millisecond,
		ClientDetect: 1500 * time.Millisecond,
	}
}

func (c *ClusterConfig) validate() error {
	if c.Crashes == 0 && c.Partitions == 0 && c.Splits == 0 && c.Link == (lagsim.Profile{}) {
		return nil // not a cluster, or one without faults on default links
	}
	if err := c.Link.Validate(); err != nil {
		return fmt.Errorf("%w: cluster link: %w", ErrBadConfig, err)
	}
	switch {
	case c.Crashes < 0 || c.Partitions < 0 || c.Splits < 0 || c.Crashes+c.Partitions+c.Splits > 100:
		return fmt.Errorf("%w: %d crashes, %d partitions and %d splits (0 to 100 in all)", ErrBadConfig, c.Crashes, c.Partitions, c.Splits)
	case c.Link.Loss >= 1:
		return fmt.Errorf("%w: cluster link loss must be below 1", ErrBadConfig)
	case c.Downtime <= 0 || c.Detect <= 0 || c.ClientDetect <= 0 || (c.Partitions+c.Splits > 0 && c.PartitionMax <= 0) || c.RejoinMax < 0 || c.MemberJitter < 0:
		return fmt.Errorf("%w: cluster timing must be positive", ErrBadConfig)
	}
	return nil
}

// dialTimeout is how long a client's dial to a dead authority takes to
// fail before it tries the next address.
const dialTimeout = 500 * time.Millisecond

// MaxNodes bounds the authorities of a clustered run.
const MaxNodes = 16

// NewCluster prepares a run of cfg against nodes authorities, node i
// (i from 0) being mk(uint8(i+1)): authority ids start at 1. mk is called
// again for a node that restarts after a crash, so it must return a fresh
// server each time; every server must be a PeerServer whose registry is
// reg's functions. Clients start on node i mod nodes and, when they lose
// it, move to the next one (as netcode.Options.Failover does).
func NewCluster(cfg Config, nodes int, mk func(id uint8) Server, reg *netcode.Registry) (*Sim, error) {
	if nodes < 2 || nodes > MaxNodes {
		return nil, fmt.Errorf("%w: %d nodes outside [2, %d]", ErrBadConfig, nodes, MaxNodes)
	}
	if cfg.Cluster.Link == (lagsim.Profile{}) {
		def := DefaultClusterConfig()
		def.Crashes, def.Partitions, def.Splits = cfg.Cluster.Crashes, cfg.Cluster.Partitions, cfg.Cluster.Splits
		cfg.Cluster = def
	}
	cc := &cfg.Cluster
	if cc.Ranges < 0 || cc.Ranges > 64 || cc.Replicas < 0 || cc.Replicas > nodes {
		return nil, fmt.Errorf("%w: %d ranges of %d replicas over %d nodes", ErrBadConfig, cc.Ranges, cc.Replicas, nodes)
	}
	var smap *shardmap.Map
	if cc.Ranges > 0 {
		smap = ShardMap(nodes, cc.Ranges, cmp.Or(cc.Replicas, 2), max(cfg.Clients, cfg.Workload.Counters))
	}
	build := func(id uint8) Server {
		srv := mk(id)
		if smap != nil {
			if ss, ok := srv.(ShardServer); ok {
				ss.SetShardMap(start, smap.Clone())
			}
		}
		return srv
	}
	srvs := make([]Server, nodes)
	for i := range srvs {
		srv := build(uint8(i + 1))
		if _, ok := srv.(PeerServer); !ok {
			return nil, fmt.Errorf("%w: node %d is not a PeerServer", ErrBadConfig, i)
		}
		if _, ok := srv.(ShardServer); smap != nil && !ok {
			return nil, fmt.Errorf("%w: node %d is not a ShardServer", ErrBadConfig, i)
		}
		srvs[i] = srv
	}
	s, err := newSim(cfg, srvs, build, reg)
	if s != nil {
		s.smap = smap
	}
	return s, err
}

// ShardServer is a PeerServer that takes a shard map and says which paths
// it holds.
type ShardServer interface {
	PeerServer
	SetShardMap(now int64, m *shardmap.Map)
	// Holds reports whether the server holds the values of path (it owns
	// or watches its range).
	Holds(path string) bool
}

// ShardMap returns the map a sharded run uses: players/, counters/ and
// seen/ each split into ranges hash ranges, range j owned by replicas
// nodes from node j mod nodes + 1 on. The bounds split the hashes of the
// ids 0 to ids-1 evenly (the FNV-1a hashes of short decimal ids crowd
// together, so equal hash ranges would leave most ranges empty).
func ShardMap(nodes, ranges, replicas, ids int) *shardmap.Map {
	m := shardmap.New()
	hs := make([]uint32, max(ids, ranges))
	for i := range hs {
		hs[i] = shardmap.SegmentHash(strconv.Itoa(i))
	}
	slices.Sort(hs)
	for _, prefix := range []string{PlayersPrefix, CountersPrefix, SeenPrefix} {
		for j := range ranges {
			lo, hi := uint64(0), uint64(1<<32-1)
			if j > 0 {
				lo = uint64(hs[j*len(hs)/ranges])
			}
			if j < ranges-1 {
				hi = uint64(hs[(j+1)*len(hs)/ranges]) - 1
			}
			owners := make([]uint8, replicas)
			for k := range owners {
				owners[k] = uint8((j+k)%nodes + 1)
			}
			if _, err := m.Set(shardmap.Range{Prefix: prefix, Lo: uint32(lo), Hi: uint32(hi)}, owners, 1); err != nil {
				panic(err) // fixed, disjoint ranges: a failure is a bug here
			}
		}
	}
	return m
}

// simNode is one simulated authority.
type simNode struct {
	idx     int
	srv     Server
	alive   bool
	inc     uint32                // incarnation: bumped by a crash, so what was in flight to the old one is lost
	bySess  map[uint64]*simClient // client sessions
	streams map[uint64]*stream    // replication streams, by this node's session id
	view    []bool                // which peers this node believes up
	// isolated is set while the node is cut off from the others; iso
	// numbers the isolations, and downed marks one that lasted long
	// enough to be declared a failure.
	isolated bool
	iso      uint32
	downed   bool
	// resetDue is set while a reset the node asked for is scheduled.
	resetDue bool
}

func newSimNode(i int, srv Server, n int) *simNode {
	return &simNode{idx: i, srv: srv, alive: true, bySess: map[uint64]*simClient{}, streams: map[uint64]*stream{}, view: make([]bool, n)}
}

func (nd *simNode) id() uint8 { return uint8(nd.idx + 1) }

// clientsBySession returns the node's clients in session order, so that
// what is scheduled for each of them keeps one order from run to run.
func (nd *simNode) clientsBySession() []*simClient {
	out := make([]*simClient, 0, len(nd.bySess))
	for _, id := range slices.Sorted(maps.Keys(nd.bySess)) {
		out = append(out, nd.bySess[id])
	}
	return out
}

// stream is one replication stream: opened by node from to node to, with
// a link each way and the session id at each end.
type stream struct {
	from, to         int
	fromSess, toSess uint64
	fwd, back        *link
	inc              [2]uint32 // the incarnations of from and to when it opened
	gen              uint32
	held             []*event // frames held by a partition, in order
}

func (s *Sim) clustered() bool { return len(s.nodes) > 1 }

// startCluster makes every node of a clustered run see the others up.
func (s *Sim) startCluster() {
	if !s.clustered() {
		return
	}
	for _, nd := range s.nodes {
		for _, q := range s.nodes {
			if q != nd {
				s.schedule(&event{at: start, kind: evMember, node: nd.idx, peer: q.idx, up: true, gen: q.inc})
			}
		}
	}
}

// scheduleNodeFaults draws the run's crashes and partitions.
func (s *Sim) scheduleNodeFaults() {
	cc := &s.cfg.Cluster
	if !s.clustered() || cc.Crashes+cc.Partitions+cc.Splits == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), 0xc1))
	// Faults are spread over the active phase, apart enough that at most
	// one node is out at a time: the others keep a quorum.
	n := cc.Crashes + cc.Partitions + cc.Splits
	slot := int64(s.cfg.Active) / int64(n)
	kinds := make([]evKind, 0, n)
	for range cc.Crashes {
		kinds = append(kinds, evCrash)
	}
	for range cc.Partitions {
		kinds = append(kinds, evIsolate)
	}
	for range cc.Splits {
		kinds = append(kinds, evSplit)
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for i, k := range kinds {
		at := s.now + int64(i)*slot + rng.Int64N(max(1, slot/4))
		node := rng.IntN(len(s.nodes))
		s.schedule(&event{at: at, kind: k, node: node})
		if k == evIsolate {
			span := int64(cc.PartitionMax)/10 + rng.Int64N(int64(cc.PartitionMax))
			if cc.RejoinMax > 0 {
				span = int64(cc.Detect) + 1 + rng.Int64N(int64(cc.RejoinMax))
			}
			s.schedule(&event{at: at + span, kind: evHeal, node: node})
		}
		if k == evSplit {
			span := int64(cc.Detect) + rng.Int64N(int64(cc.PartitionMax))
			s.schedule(&event{at: at + span, kind: evSplitHeal})
		}
	}
}

// Faults returns a log of the node faults so far, one line each.
func (s *Sim) Faults() string { return s.faultLog }

func (s *Sim) logFault(format string, args ...any) {
	s.faultLog += fmt.Sprintf("+%v ", time.Duration(s.now-start)) + fmt.Sprintf(format, args...) + "\n"
}

func (s *Sim) handleCluster(e *event) {
	switch e.kind {
	case evPeerFrame:
		s.peerFrame(e)
	case evMember:
		if q := s.nodes[e.peer]; e.gen == q.inc {
			s.member(s.nodes[e.node], q, e.up) // news of an incarnation since replaced is stale
		}
	case evCrash:
		s.crash(s.nodes[e.node])
	case evRestart:
		s.restart(s.nodes[e.node])
	case evIsolate:
		s.isolate(s.nodes[e.node])
	case evHeal:
		s.heal(s.nodes[e.node], e.gen)
	case evSplit:
		s.split()
	case evSplitHeal:
		s.splitHeal()
	case evReset:
		if nd := s.nodes[e.node]; nd.alive && e.gen == nd.inc {
			s.reset(nd)
		}
	case evDial:
		if nd, q := s.nodes[e.node], s.nodes[e.peer]; nd.alive && nd.view[q.idx] {
			s.openStream(nd, q)
		}
	case evMove:
		s.move(int(e.gen), e.peer)
	case evMapSet:
		if nd := s.nodes[e.node]; nd.alive && s.smap != nil {
			nd.srv.(ShardServer).SetShardMap(s.now, s.smap.Clone())
			s.nodeOut(nd)
		}
	}
}

// member tells node nd that peer q is up or down, as membership would,
// and opens or closes nd's side of their streams.
func (s *Sim) member(nd, q *simNode, up bool) {
	if !nd.alive || nd.view[q.idx] == up || up && (nd.isolated || q.isolated) {
		return // no news crosses a partition (heal brings it)
	}
	ps := nd.srv.(PeerServer)
	nd.view[q.idx] = up
	if up {
		ps.PeerUp(s.now, q.id())
		s.openStream(nd, q)
	} else {
		ps.PeerDown(s.now, q.id())
		for _, id := range slices.Sorted(maps.Keys(nd.streams)) {
			if st := nd.streams[id]; st.from == q.idx || st.to == q.idx {
				delete(nd.streams, id)
				nd.srv.Disconnect(s.now, id)
			}
		}
	}
	s.nodeOut(nd)
}

// openStream opens nd's replication stream to q, if q is reachable.
func (s *Sim) openStream(nd, q *simNode) {
	if !q.alive || nd.isolated || q.isolated {
		return
	}
	for _, st := range nd.streams {
		if st.from == nd.idx && st.to == q.idx {
			return
		}
	}
	from, err := nd.srv.(PeerServer).ConnectPeer(s.now, q.id(), fmt.Sprintf("node-%d", q.id()))
	if err != nil {
		s.fail("node %d: ConnectPeer %d: %v", nd.id(), q.id(), err)
		return
	}
	to, err := q.srv.Connect(s.now, fmt.Sprintf("node-%d", nd.id()))
	if err != nil {
		s.fail("node %d: accepting node %d's stream: %v", q.id(), nd.id(), err)
		return
	}
	st := &stream{from: nd.idx, to: q.idx, fromSess: from, toSess: to, inc: [2]uint32{nd.inc, q.inc}}
	rng := rand.New(rand.NewPCG(uint64(nd.idx)<<32|uint64(q.idx), uint64(s.now)))
	st.fwd = newLink(&s.cfg.Cluster.Link, rng, s.cfg.Frame)
	st.back = newLink(&s.cfg.Cluster.Link, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), s.cfg.Frame)
	st.fwd.reset(s.now)
	st.back.reset(s.now)
	nd.streams[from] = st
	q.streams[to] = st
	s.nodeOut(nd)
}

// streamOut sends frames a node made for one of its replication streams.
func (s *Sim) streamOut(nd *simNode, id uint64, frames [][]byte, close bool) {
	st := nd.streams[id]
	if st == nil {
		return
	}
	back := nd.idx == st.to
	l := st.fwd
	if back {
		l = st.back
	}
	for _, f := range frames {
		at := l.send(s.now, len(f))
		s.schedule(&event{at: at, kind: evPeerFrame, st: st, back: back, frame: f, gen: st.gen})
	}
	if close {
		s.closeStream(st)
	}
}

// closeStream ends a stream at both ends.
func (s *Sim) closeStream(st *stream) {
	st.gen++
	st.held = nil
	for _, end := range []struct {
		idx  int
		sess uint64
	}{{st.from, st.fromSess}, {st.to, st.toSess}} {
		nd := s.nodes[end.idx]
		if nd.streams[end.sess] == st {
			delete(nd.streams, end.sess)
			if nd.alive {
				nd.srv.Disconnect(s.now, end.sess)
			}
		}
	}
}

func (s *Sim) peerFrame(e *event) {
	st := e.st
	if e.gen != st.gen {
		return // the stream closed
	}
	from, to := s.nodes[st.from], s.nodes[st.to]
	if from.inc != st.inc[0] || to.inc != st.inc[1] {
		return // one end crashed: the stream went with it
	}
	if from.isolated || to.isolated {
		st.held = append(st.held, e) // the transport resends until the link heals
		return
	}
	dst, sess := to, st.toSess
	if e.back {
		dst, sess = from, st.fromSess
	}
	if dst.streams[sess] != st || !dst.alive {
		return
	}
	s.record(&event{at: e.at, client: -1 - dst.idx, frame: e.frame}, 2)
	dst.srv.Step(s.now, sess, e.frame)
	s.nodeOut(dst)
	s.verifyStep(dst)
}

// streamsLast returns when the last frame on any replication stream
// arrives.
func (s *Sim) streamsLast() int64 {
	last := int64(0)
	for _, nd := range s.nodes {
		for _, st := range nd.streams {
			last = max(last, st.fwd.last, st.back.last)
		}
	}
	return last
}

// crash stops a node: what it held is lost; its clients notice after
// ClientDetect and the other nodes after Detect; it starts again, empty,
// after Downtime.
func (s *Sim) crash(nd *simNode) {
	if !nd.alive || nd.isolated || s.ended || !s.quorumWithout(nd) {
		return
	}
	s.logFault("node %d crashes", nd.id())
	nd.alive = false
	nd.inc++
	nd.srv = nil
	for _, st := range nd.streams {
		st.gen++ // frames to and from the crashed node are lost
	}
	nd.streams = map[uint64]*stream{}
	for i := range nd.view {
		nd.view[i] = false
	}
	for _, c := range nd.clientsBySession() {
		s.schedule(&event{at: s.now + int64(s.cfg.Cluster.ClientDetect), kind: evDrop, client: c.idx, gen: c.gen, up: true})
	}
	nd.bySess = map[uint64]*simClient{}
	for _, q := range s.nodes {
		if q != nd {
			s.schedule(&event{at: s.now + int64(s.cfg.Cluster.Detect), kind: evMember, node: q.idx, peer: nd.idx, up: false, gen: nd.inc})
		}
	}
	s.schedule(&event{at: s.now + int64(s.cfg.Cluster.Downtime), kind: evRestart, node: nd.idx})
}

// quorumWithout reports whether the other live nodes hold a majority of
// the cluster without nd.
func (s *Sim) quorumWithout(nd *simNode) bool {
	live := 0
	for _, q := range s.nodes {
		if q != nd && q.alive && !q.isolated {
			live++
		}
	}
	return live >= len(s.nodes)/2+1
}

func (s *Sim) restart(nd *simNode) {
	if nd.alive {
		return
	}
	s.logFault("node %d starts again", nd.id())
	nd.srv = s.mk(nd.id())
	if ss, ok := nd.srv.(ShardServer); ok && s.smap != nil {
		ss.SetShardMap(s.now, s.smap.Clone()) // the map as it is now, learnt on joining
	}
	nd.alive = true
	nd.bySess = map[uint64]*simClient{}
	for _, q := range s.nodes {
		if q != nd && q.alive {
			// It joins and learns the members at once; they hear of it
			// through gossip shortly after.
			s.schedule(&event{at: s.now, kind: evMember, node: nd.idx, peer: q.idx, up: true, gen: q.inc})
			s.schedule(&event{at: s.now + int64(100*time.Millisecond), kind: evMember, node: q.idx, peer: nd.idx, up: true, gen: nd.inc})
		}
	}
}

// isolate cuts nd off from the other nodes. If it lasts past Detect, both
// sides declare the other down.
func (s *Sim) isolate(nd *simNode) {
	if !nd.alive || nd.isolated || s.ended || !s.quorumWithout(nd) {
		return
	}
	s.logFault("node %d cut off", nd.id())
	nd.isolated = true
	nd.iso++
	nd.downed = false
	// Whether the partition outlasts detection is known at Detect.
	s.schedule(&event{at: s.now + int64(s.cfg.Cluster.Detect), kind: evHeal, node: nd.idx, gen: nd.iso | 1<<31})
}

// heal ends an isolation (gen 0) or, with the high bit of gen set, marks
// at Detect that isolation gen outlasted it.
func (s *Sim) heal(nd *simNode, gen uint32) {
	if gen&(1<<31) != 0 {
		if nd.alive && nd.isolated && nd.iso == gen&^(1<<31) {
			// Still cut off at Detect: each side declares the other down.
			s.logFault("node %d declared down (and it declares the others)", nd.id())
			nd.downed = true
			for _, q := range s.nodes {
				if q != nd {
					s.member(q, nd, false)
					s.member(nd, q, false)
				}
			}
		}
		return
	}
	if !nd.isolated {
		return
	}
	nd.isolated = false
	s.logFault("node %d reconnected (declared down: %v)", nd.id(), nd.downed)
	if nd.downed {
		// Declared failed by the majority, and without a quorum itself:
		// membership brings both sides up again, and the node, once the
		// others' Syncs tell it they took its calls over, asks to start
		// afresh (reset: its clients fail over), as in the shell. Its
		// streams ended at detection: nothing held arrives.
		for _, q := range s.nodes {
			if q != nd && q.alive {
				at := s.now
				if j := int64(s.cfg.Cluster.MemberJitter); j > 0 {
					at += s.rng.Int64N(j)
				}
				s.schedule(&event{at: at, kind: evMember, node: q.idx, peer: nd.idx, up: true, gen: nd.inc})
				s.schedule(&event{at: at, kind: evMember, node: nd.idx, peer: q.idx, up: true, gen: q.inc})
			}
		}
		return
	}
	// A short partition: what was held on the links arrives now, in
	// order, ahead of what is still in flight behind it, and membership
	// never noticed.
	s.releaseHeld()
	for _, q := range s.nodes {
		if q != nd && q.alive {
			s.schedule(&event{at: s.now, kind: evMember, node: q.idx, peer: nd.idx, up: true, gen: nd.inc})
			s.schedule(&event{at: s.now, kind: evMember, node: nd.idx, peer: q.idx, up: true, gen: q.inc})
		}
	}
}

// releaseHeld delivers now, in order, what the links held while nodes were
// cut off, ahead of what is still in flight behind it.
func (s *Sim) releaseHeld() {
	for _, st := range s.allStreams() {
		held := st.held
		st.held = nil
		for _, e := range held {
			e.at = s.now
			s.peerFrame(e)
		}
	}
}

// split cuts every node off from every other. At Detect, if it still
// lasts, each declares every other down (evHeal's detection mark), and
// no node has a quorum.
func (s *Sim) split() {
	if s.ended {
		return
	}
	for _, nd := range s.nodes {
		if !nd.alive || nd.isolated {
			return // one fault at a time
		}
	}
	s.logFault("every node cut off from every other")
	for _, nd := range s.nodes {
		nd.isolated = true
		nd.iso++
		nd.downed = false
		s.schedule(&event{at: s.now + int64(s.cfg.Cluster.Detect), kind: evHeal, node: nd.idx, gen: nd.iso | 1<<31})
	}
}

// splitHeal ends a split: what was held on the links arrives, and
// membership tells every node the others are up (those it had declared
// down come back). A node that then asks for a reset gets one (reset).
func (s *Sim) splitHeal() {
	split := false
	for _, nd := range s.nodes {
		split = split || nd.isolated && nd.alive
	}
	if !split {
		return
	}
	s.logFault("every node reconnected")
	for _, nd := range s.nodes {
		nd.isolated = false
		nd.downed = false
	}
	s.releaseHeld()
	for _, nd := range s.nodes {
		for _, q := range s.nodes {
			if q != nd && nd.alive && q.alive {
				s.schedule(&event{at: s.now, kind: evMember, node: nd.idx, peer: q.idx, up: true, gen: q.inc})
			}
		}
	}
}

// resetter is a server that may ask to be replaced with a fresh one
// (authority.Node.NeedsReset).
type resetter interface{ NeedsReset() bool }

// checkReset schedules a reset of nd if its server asks for one.
func (s *Sim) checkReset(nd *simNode) {
	if r, ok := nd.srv.(resetter); ok && !nd.resetDue && r.NeedsReset() {
		nd.resetDue = true
		s.schedule(&event{at: s.now, kind: evReset, node: nd.idx, gen: nd.inc})
	}
}

// reset replaces nd's server with a fresh one, as the authority's shell
// does when its node asks (NeedsReset): every session closes (its clients
// fail over), its replication streams end at both ends, the fresh node
// is told the members it saw up and dials them, and they dial it again
// (the shell redials a lost stream every 500 ms; here 100 ms). The node
// stays the same member: nobody sees it down.
func (s *Sim) reset(nd *simNode) {
	nd.resetDue = false
	s.obs.resets++
	s.logFault("node %d rejoins afresh (it asked for a reset)", nd.id())
	for _, c := range nd.clientsBySession() {
		s.schedule(&event{at: s.now, kind: evDrop, client: c.idx, gen: c.gen, up: true})
	}
	nd.bySess = map[uint64]*simClient{}
	for _, st := range s.allStreams() {
		if st.from == nd.idx || st.to == nd.idx {
			s.closeStream(st)
		}
	}
	nd.srv = s.mk(nd.id())
	if ss, ok := nd.srv.(ShardServer); ok && s.smap != nil {
		ss.SetShardMap(s.now, s.smap.Clone())
	}
	ps := nd.srv.(PeerServer)
	for _, q := range s.nodes {
		if q != nd && nd.view[q.idx] {
			ps.PeerUp(s.now, q.id())
		}
	}
	for _, q := range s.nodes {
		if q != nd && nd.view[q.idx] {
			s.openStream(nd, q)
			s.schedule(&event{at: s.now + int64(100*time.Millisecond), kind: evDial, node: q.idx, peer: nd.idx})
		}
	}
	s.nodeOut(nd)
}

func (s *Sim) allStreams() []*stream {
	var out []*stream
	seen := map[*stream]bool{}
	for _, nd := range s.nodes {
		for _, st := range nd.streams {
			if !seen[st] {
				seen[st] = true
				out = append(out, st)
			}
		}
	}
	slices.SortFunc(out, func(a, b *stream) int {
		if a.from != b.from {
			return a.from - b.from
		}
		return a.to - b.to
	})
	return out
}

// checkNodes checks the live nodes at the end of a run: each one's lock
// invariant, and that they hold the same latest valid value of every path.
// It returns the node the clients are compared with.
//
// Sharded, a node is compared only on the paths it holds (owns or
// watches): every pair of live nodes agrees on each path both hold, which
// covers the values whose locks name another range's paths (a cross-range
// lock resolves the same on every node holding the value).
func (s *Sim) checkNodes() *simNode {
	var ref *simNode
	type held struct {
		nd  *simNode
		got map[string]string
	}
	var all []held
	for _, nd := range s.nodes {
		if !nd.alive {
			continue
		}
		if err := nd.srv.Verify(); err != nil {
			s.fail("node %d: lock invariant: %v", nd.id(), err)
			return nd
		}
		got := map[string]string{}
		nd.srv.Latest("", func(path string, v []byte) { got[path] = string(v) })
		if ref == nil {
			ref = nd
		}
		for _, o := range all {
			if path, msg := disagree(o.nd, o.got, nd, got); path != "" {
				s.fail("replica divergence: %s", msg)
				return ref
			}
		}
		all = append(all, held{nd, got})
	}
	if ref == nil {
		s.fail("no live node at the end")
		return s.nodes[0]
	}
	if s.clustered() {
		s.checkExactlyOnce()
	}
	return ref
}

// holds reports whether node nd holds path (every path, unsharded).
func (nd *simNode) holds(path string) bool {
	ss, ok := nd.srv.(ShardServer)
	return !ok || ss.Holds(path)
}

// disagree returns a path two nodes both hold with different latest valid
// values (or one holds a value of and the other not), and a message.
func disagree(a *simNode, ga map[string]string, b *simNode, gb map[string]string) (string, string) {
	for _, pass := range []struct {
		x, y   *simNode
		gx, gy map[string]string
	}{{a, b, ga, gb}, {b, a, gb, ga}} {
		for _, path := range slices.Sorted(maps.Keys(pass.gx)) {
			if !pass.y.holds(path) {
				continue
			}
			w := pass.gx[path]
			if g, ok := pass.gy[path]; !ok || g != w {
				return path, fmt.Sprintf("node %d holds %s = %x, node %d %x (present %v)", pass.x.id(), path, w, pass.y.id(), g, ok)
			}
		}
	}
	return "", ""
}

// latest calls fn for every path under prefix with its latest valid value
// on a live node that holds it (the nodes agree, checkNodes has checked).
func (s *Sim) latest(prefix string, fn func(path string, v []byte)) {
	seen := map[string]bool{}
	for _, nd := range s.nodes {
		if !nd.alive {
			continue
		}
		nd.srv.Latest(prefix, func(path string, v []byte) {
			if !seen[path] && nd.holds(path) {
				seen[path] = true
				fn(path, v)
			}
		})
	}
}

// checkExactlyOnce checks that every bump the clients saw confirmed was
// applied once: the counters sum to the confirmed bumps. A lost confirmed
// call makes the sum smaller; a call applied twice makes it larger.
func (s *Sim) checkExactlyOnce() {
	var sum uint64
	s.latest(CountersPrefix, func(path string, v []byte) {
		if len(v) == 8 {
			sum += uint64(v[0]) | uint64(v[1])<<8 | uint64(v[2])<<16 | uint64(v[3])<<24 | uint64(v[4])<<32 | uint64(v[5])<<40 | uint64(v[6])<<48 | uint64(v[7])<<56
		}
	})
	confirmed := uint64(0)
	for _, c := range s.clients {
		confirmed += uint64(len(c.ownBumps))
	}
	unknown := s.obs.bumpTimeouts
	if sum < confirmed {
		s.fail("lost confirmed calls: the counters sum to %d, clients saw %d bumps confirmed", sum, confirmed)
	} else if sum > confirmed+unknown {
		s.fail("calls applied twice: the counters sum to %d, clients saw %d bumps confirmed (%d timed out)", sum, confirmed, unknown)
	}
}

// errNodeDown is why a client loses a session to a node that failed.
var errNodeDown = errors.New("sim: authority down")

// rangeMove is one planned move of a range to a new owner.
type rangeMove struct {
	r        shardmap.Range
	from, to uint8
}

// scheduleMoves draws the run's range moves.
func (s *Sim) scheduleMoves() {
	cc := &s.cfg.Cluster
	if s.smap == nil || cc.Moves <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), 0x30e))
	entries := s.smap.Entries()
	slot := int64(s.cfg.Active) / int64(cc.Moves)
	for i := range cc.Moves {
		e := entries[rng.IntN(len(entries))]
		var others []uint8
		for _, nd := range s.nodes {
			if !slices.Contains(e.Owners, nd.id()) && (cc.MoveTo == 0 || nd.id() == cc.MoveTo) {
				others = append(others, nd.id())
			}
		}
		if len(others) == 0 {
			continue
		}
		s.moves = append(s.moves, rangeMove{r: e.Range, to: others[rng.IntN(len(others))]})
		s.schedule(&event{at: s.now + int64(i)*slot + rng.Int64N(max(1, slot/2)), kind: evMove, gen: uint32(len(s.moves) - 1)})
	}
}

// move makes step stage of range move i: the new owner joins the range
// (0), then, MoveSettle later, the old primary leaves it (1). The map
// change reaches each node at its own time.
func (s *Sim) move(i, stage int) {
	mv := &s.moves[i]
	cur, ok := s.smap.Lookup(rangeProbe(mv.r))
	if !ok || cur.Range != mv.r {
		return
	}
	owners := cur.Owners
	if stage == 0 && s.cfg.Cluster.MoveDirect {
		if slices.Contains(owners, mv.to) {
			return
		}
		mv.from = owners[0]
		owners = append([]uint8{mv.to}, owners[1:]...)
		s.logFault("range %v moves from node %d to node %d (owners %v)", mv.r, mv.from, mv.to, owners)
	} else if stage == 0 {
		if slices.Contains(owners, mv.to) {
			return
		}
		mv.from = owners[0]
		owners = append(slices.Clone(owners), mv.to)
		s.logFault("range %v gains node %d", mv.r, mv.to)
		settle := s.cfg.Cluster.MoveSettle
		if settle <= 0 {
			settle = time.Second
		}
		s.schedule(&event{at: s.now + int64(settle), kind: evMove, gen: uint32(i), peer: 1})
	} else {
		if !slices.Contains(owners, mv.from) || len(owners) < 2 {
			return
		}
		next := []uint8{mv.to}
		for _, o := range owners {
			if o != mv.from && o != mv.to {
				next = append(next, o)
			}
		}
		owners = next
		s.logFault("range %v leaves node %d (owners %v)", mv.r, mv.from, owners)
	}
	if _, err := s.smap.Set(mv.r, owners, 255); err != nil {
		s.fail("range move: %v", err)
		return
	}
	rng := rand.New(rand.NewPCG(uint64(i)<<1|uint64(stage), uint64(s.now)))
	for _, nd := range s.nodes {
		s.schedule(&event{at: s.now + rng.Int64N(int64(50*time.Millisecond)), kind: evMapSet, node: nd.idx})
	}
}

// clientNodes returns how many nodes (the first ones) clients use.
func clientNodes(cfg *Config, nodes int) int {
	if k := cfg.Cluster.ClientNodes; k > 0 && k < nodes {
		return k
	}
	return nodes
}

// rangeProbe returns a path that range r holds, for looking r up.
func rangeProbe(r shardmap.Range) string {
	for i := range 1 << 16 {
		seg := strconv.Itoa(i)
		if r.Contains(r.Prefix + seg) {
			return r.Prefix + seg
		}
	}
	return r.Prefix
}
