package authority

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/physics"
	"github.com/rewindnet/rewind/timesync"
)

// Error codes the node sends in wire.Error messages. Codes are append-only.
const (
	CodeProtocol   wire.ErrorCode = 1  // malformed frame or unexpected message: session closed
	CodeVersion    wire.ErrorCode = 2  // protocol version mismatch: session closed
	CodeAuth       wire.ErrorCode = 3  // authentication refused: session closed
	CodeRateLimit  wire.ErrorCode = 4  // a rate limit was exceeded; repeated, the session is closed
	CodePermission wire.ErrorCode = 5  // a raw write outside what the write rule allows
	CodeRefused    wire.ErrorCode = 6  // the store refused a write (path, time window, lock, size)
	CodeLimit      wire.ErrorCode = 7  // a count limit (watches) was exceeded
	CodeOverload   wire.ErrorCode = 8  // the node is full or the session too slow: session closed
	CodeShutdown   wire.ErrorCode = 9  // the node is shutting down: session closed
	CodeSuperseded wire.ErrorCode = 10 // a newer session resumed this one: session closed
)

// SessionID identifies a connection to the node. The shell assigns nothing:
// Connect returns it.
type SessionID uint64

// Output is what the node asks its shell to do for one session: send Frames
// in order, then close the session if Close is set.
type Output struct {
	Session SessionID
	Frames  [][]byte // owned by the shell once returned
	Close   bool
	Reason  string
}

// Node is the authority's logic as a pure state machine: the shell feeds it
// connections, frames and ticks with the current synced time, and sends the
// frames it returns. It owns no goroutine, socket or clock, so a
// deterministic simulator drives the very same node. A Node is not safe for
// concurrent use.
type Node struct {
	// immutable after construction
	cfg       Config
	reg       *netcode.Registry
	writeRule WriteRule

	store    *netcode.Store
	sessions map[SessionID]*session
	nextSID  SessionID
	nextCrea uint32
	watchers map[string][]*session // prefix (or exact path) → watching sessions
	epoch    uint64                // marks sessions visited by one watchersOf call
	spare    [][]byte              // frame buffers given back by Recycle, empty

	// scratch for call results, encoded as soon as built (callResult)
	resReads []wire.Lock
	resOuts  []wire.ValueRef
	resVals  []wire.Value

	// interest management (area.go)
	spaces       map[string]*spaceIndex // spatial layer prefix → its index and watches
	spaceOrder   []string               // the layer prefixes, sorted
	areaWatchers map[string][]*session  // entity prefix → sessions whose area holds it
	lastInterest int64
	scratchNear  []physics.Near
	scratchPaths []string
	scratchLeft  []string
	scratchEnter []string
	areaFull     bool   // tests: every refresh queries the index (no refreshNear)
	areaQueries  uint64 // tests: the spatial index queries of refreshArea

	calls      map[netcode.CallID]*callRec
	rerunQueue []*callRec // calls with an invalidated output, checked after each cascade
	// rerunWaits are queued calls whose re-run waits for a peer's re-run
	// of a value they read (awaitsPeer), checked again at every tick.
	rerunWaits []*callRec
	callExpiry []*callRec // calls by write time (kept sorted), dropped at finality
	funcs      map[string]*funcEntry
	// peerRuns files the records of calls a peer ran (peerCall) by their
	// outputs' creator and write time: those outputs reached the store
	// from the peer, without the record as their tag, so an output of one
	// taken over here that turns invalid finds its record through it.
	peerRuns map[runKey]*callRec
	// peerDue lists the calls of live peers whose outputs turned invalid
	// here and that their runner is still to re-run: the closed time
	// stays below them (advanceClosed), as their re-runs may invalidate
	// this node's later calls. Bounded by peerRuns; pruned at each tick.
	peerDue []*callRec
	dirty   []*session // sessions with batched deliveries to flush

	scratchValues []wire.Value       // reused by sendBatches
	scratchStates []wire.StateChange // reused by sendBatches

	lastFlush int64
	ready     []SessionID // sessions with something to send, in first-touched order
	stats     Stats
	funcStats map[string]*FuncStats

	now       int64                  // latest time any entry point was given (Ready takes none)
	waiting   int                    // sessions in awaitingHello
	players   int                    // sessions in ready
	helloDue  []*session             // sessions by connect time, for the Hello deadline (some no longer waiting)
	creators  map[uint32]*creatorRec // resumable creators (live or recently ended), when resuming is on
	ended     []endedRec             // creators by the time their session ended, oldest first
	endedLive int                    // entries of ended that are current (not resumed since)

	persist      []archive.Entry // what the shell must log, when Config.Persist is set
	persistSpare []archive.Entry // the array TakePersist returned last, reused
	notDurable   string          // why calls and writes are refused, when the log failed

	// cluster (see cluster.go)
	peers        map[uint8]*peerNode
	shard        *shardmap.Map             // nil: every peer owns every path
	rangeCalls   map[shardmap.Range]uint64 // calls run here by their shard key's range (countRangeCall)
	gone         map[uint8]*takeover       // failed peers, until they come back
	waits        []*resultWait             // results held for replica acknowledgements, in call order
	peerCreators map[uint32]*creatorRec    // creators held by peers' clients, by the calls replicated here
	lastSweep    int64
	lastWrites   []netcode.PathValue // the outputs of the latest run, for replicateCall
	liveScratch  []*peerNode         // livePeers' result, reused
	replScratch  []wire.Value        // replicate's, reused
	lockScratch  []wire.Lock
	closed       int64                        // the closed time said last (closedTime)
	synced       bool                         // caught up with the peers once (caughtUp)
	parked       []*session                   // Hellos waiting for a takeover, oldest first
	hadQuorum    bool                         // the node has had a quorum
	lostQuorum   bool                         // ... and lost it since (cleared by a verdict to keep its state)
	verdict      bool                         // it has a majority again and waits to hear from every live peer (checkVerdict)
	takenOver    bool                         // a peer said it took this node's calls over while it was without a quorum
	kept         bool                         // it kept its state after a quorum regained (a late TakenOver naming it resets it)
	doubtSince   int64                        // when it last lost its quorum (lagNow)
	doubtSpan    int64                        // how long it was without one, the last time it kept its state
	doubtEnd     int64                        // when it kept its state
	rerunHeld    []*callRec                   // re-runs due while without a quorum, run once it serves again
	needsReset   bool                         // its state is stale: replace it (NeedsReset)
	interest     []string                     // prefixes watched from the peers (shard.go)
	catching     map[shardmap.Range]uint64    // ranges owned, still catching up on: the entry version that gave them (handoff.go)
	catchSince   int64                        // when catching last became non-empty
	relayed      map[netcode.CallID]*relayRec // calls relayed to their owners, until answered

	// for operators (node_status.go)
	notes     []Note  // refusals and closes since the last TakeNotes
	rerunLog  []Rerun // the latest re-runs, a ring of maxReruns
	rerunNext int     // where the next goes in rerunLog
}

// creatorRec is what the node remembers of one creator id across the
// sessions that hold it in turn (one, unless resuming is on).
type creatorRec struct {
	creator uint32
	// born is the issue time of the creator's first token: a token issued
	// earlier names an earlier holder of a reused id.
	born int64
	// lastW is the write time of the creator's latest admitted call; the
	// next must be later, so two calls of one creator never share a Time,
	// across every session that resumes it.
	lastW   int64
	session SessionID // live session holding the creator; 0 when none
	// heldBy is the peer whose client held the creator when its calls
	// were replicated here; adoptable is set once that peer failed and
	// was taken over, so the client may resume the creator here.
	heldBy    uint8
	adoptable bool
	// adoptedAt is when the creator was taken over here from a failed
	// authority; failoverLeft counts the calls the resumed session may
	// still send older than the change window (Limits.FailoverCalls),
	// each stamped no later than adoptedAt.
	adoptedAt    int64
	failoverLeft int
	// failoverUntil is when the failover window of the takeover it came
	// with closes (failoverWindow); later, no call older than the change
	// window is accepted.
	failoverUntil int64
	ended         int64  // when the last session ended, if session == 0
	endSeq        uint64 // counts the ends, naming the current endedRec
}

// endedRec files a creator whose session ended at ended. A creator resumed
// (and perhaps ended again) leaves a stale entry behind, which is skipped.
type endedRec struct {
	rec   *creatorRec
	ended int64
	seq   uint64
}

// current reports whether e is the creator's latest end and it has not
// been resumed since.
func (e endedRec) current() bool { return e.rec.session == 0 && e.rec.endSeq == e.seq }

// Stats counts what the node has done.
type Stats struct {
	Sessions      int
	Players       int // sessions that said Hello (not replication streams, not waiting)
	Connects      uint64
	Disconnects   uint64
	Calls         uint64
	CallErrors    uint64
	CallsRejected uint64
	// CallsMatched counts results sent as matched (the caller's
	// prediction was the outcome: no outputs, reads or output values).
	CallsMatched uint64
	Reruns       uint64
	// RerunsAbandoned counts calls given up after maxVersions re-runs
	// (their caller gets a failed result).
	RerunsAbandoned uint64
	Writes          uint64
	WritesRefused   uint64
	ValuesSent      uint64
	StatesSent      uint64
	FramesIn        uint64
	MessagesIn      uint64 // messages decoded from the frames (path definitions not counted)
	BytesIn         uint64
	FramesOut       uint64
	BytesOut        uint64
	Strikes         uint64
	Kicked          uint64
	// SnapshotValues is the cost of the watch snapshots served (values
	// queued, or paths visited without one); SnapshotsRefused counts the
	// watches refused because their snapshot did not fit the session's
	// Limits.SnapshotValuesPerSecond.
	SnapshotValues uint64
	// AreaEnters and AreaLeaves count the entities that entered and left
	// spatial watches' areas.
	AreaEnters, AreaLeaves uint64
	SnapshotsRefused       uint64
	// Waiting is the sessions that have not said Hello yet (included in
	// Sessions); HelloTimeouts counts those closed for not saying it
	// within Limits.HelloTimeout, WaitingEvicted those closed to make
	// room under Limits.MaxPendingSessions, Full the Hellos refused
	// because Limits.MaxSessions players were connected.
	Waiting        int
	HelloTimeouts  uint64
	WaitingEvicted uint64
	Full           uint64
	Resumes        uint64 // sessions that resumed an earlier one's creator
	Superseded     uint64 // live sessions closed because another resumed them
	// Restored counts the logged entries Restore replayed; RestoreRefused
	// those the store refused (left out).
	Restored       uint64
	RestoreRefused uint64
	// NotDurable counts calls and raw writes refused because the node's
	// log failed (SetNotDurable).
	NotDurable uint64
	// Cluster: values sent to and stored from peers (ReplicaRefused:
	// refused by this store, which the closed times should prevent),
	// failed peers taken over.
	ReplicatedOut  uint64
	ReplicatedIn   uint64
	ReplicaRefused uint64
	Takeovers      uint64
	// FailoverCalls counts the calls accepted older than the change
	// window from clients resumed here after their authority failed
	// (Limits.FailoverCalls).
	FailoverCalls uint64
	// Sharded ranges: calls forwarded to an owner of their shard key
	// (relayed for a client here, or passed on), calls run here for
	// another node's client, answers relayed back to clients here, relayed
	// calls sent again after their owner failed, prefixes watched from the
	// peers, and runs refused for touching a range not held here.
	CallsForwarded   uint64
	CallsRelayedIn   uint64
	RelayAnswers     uint64
	CallsReforwarded uint64
	RangesWatched    uint64
	RunsOutside      uint64
	// RangeCatchUps counts the ranges the map gave this node that it
	// neither owned nor watched, so it caught up on them before running
	// anything there; CatchUpRouted the calls sent to another owner
	// meanwhile.
	RangeCatchUps    uint64
	CatchUpRouted    uint64
	NoQuorum         uint64 // calls and writes refused without a quorum
	QuorumKept       uint64 // quorums regained with the node's state kept: nobody had taken it over
	TakeoversAdopted uint64 // takeovers completed because another node had completed one this node abandoned
	// RerunsTooLate counts calls invalidated too late to be re-run
	// (before the horizon, or the closed time in a cluster).
	RerunsTooLate uint64
	// RerunsWaited counts the times a queued re-run was put off (to the
	// next tick) because a value it read awaits a peer's re-run (a
	// cascade crossing between nodes).
	RerunsWaited uint64
	// LateWrites counts the insertions (a call's outputs, a raw write, a
	// replica's batch, a tick) that took at least one valid value out of
	// validity: a value that arrived inside another's read interval.
	LateWrites uint64
	// Refusals, Strikes and Closes count, by cause, the requests refused
	// (the session stays), the strikes charged, and the sessions closed
	// (by the node, or by the shell through DisconnectFor); Notes are
	// their records for the shell's log (TakeNotes), NotesDropped those
	// beyond maxNotes between two TakeNotes.
	Refusals     [NumCauses]uint64
	StrikesBy    [NumCauses]uint64
	Closes       [NumCauses]uint64
	NotesDropped uint64
	Store        netcode.StoreStats
}

// FuncStats counts one function's runs.
type FuncStats struct {
	Calls    uint64
	Reruns   uint64
	Errors   uint64
	RunNanos int64 // total run time, when Config.RunClock is set
	// Runs counts the runs (first runs and re-runs) by how long they took
	// when Config.RunClock is set, in the buckets bounded by RunBounds
	// (the last holds the longer ones).
	Runs [len(RunBounds) + 1]uint64
}

type sessionState uint8

const (
	awaitingHello sessionState = iota
	ready
	closing
	peering // a replication stream between authorities (not a player)
)

type session struct {
	id        SessionID
	remote    string
	state     sessionState // change it with Node.setState
	connected int64        // when Connect ran
	creator   uint32
	player    string
	dir       peerDir // a replication stream, and which way
	peer      uint8   // the other authority, when dir is set
	// parked holds the resume token of a Hello waiting for a takeover
	// (since parkedAt): the creator it names is another authority's.
	parked   []byte
	parkedAt int64
	lastCall *callRec // on a replication stream from a peer: the Call just read, whose outcome follows
	// On a replication stream from a peer: the output values and the Call
	// of an answer to a call this node relayed, whose result follows.
	relayVals []wire.Value
	answerFor *wire.CallID

	dec *wire.Decoder
	enc *wire.Encoder
	in  wire.Message // reused for decoding

	watches map[string]watchSpec

	// outbound, built up between Ready calls
	frames [][]byte
	cur    []byte     // open frame, nil when none
	out    []delivery // batched watch deliveries, in the order they happened
	queued bool       // in Node.ready
	dirty  bool       // in Node.dirty
	seen   uint64     // Node.epoch of the last watchersOf that visited it
	close  bool
	reason string
	cr     *creatorRec // set by Hello

	calls, writes, bytes bucket
	msgs, snaps          bucket      // MessagesPerSecond, SnapshotValuesPerSecond
	strikes              []strikeRec // within the last StrikeWindow, oldest first
	strikePts            int         // sum of their points

	// for operators (SessionInfo)
	ncalls             uint64 // calls admitted
	syncSent, syncRecv int64  // the latest time-sync request: client's send time, arrival
}

// strikeRec is one strike: when and how many points (see strikePoints).
type strikeRec struct {
	at     int64
	points int
}

type watchSpec struct {
	mode   wire.WatchMode
	window time.Duration
	area   wire.Area // Kind set: a spatial watch (area.go)
}

type outKey struct {
	path string
	t    netcode.Time
}

// funcEntry caches a registered function with its counters, so a call
// costs one lookup.
type funcEntry struct {
	fn    *netcode.Function
	stats *FuncStats
}

type callRec struct {
	call      netcode.Call
	stats     *FuncStats
	owner     *creatorRec // results go to the session holding it now
	versions  []callVersion
	lastErr   error // error of the latest run, if it failed
	refused   bool  // lastErr is the store's refusal, not the function's
	queued    bool
	waitSince int64 // when its queued re-run started waiting for a peer's (awaitsPeer); 0: not waiting
	dead      bool  // final or dropped
	due       bool  // in peerDue
	abandoned bool  // re-run maxVersions times: its last outputs are invalid
	node      uint8 // the authority that runs it (and its re-runs)
	relay     uint8 // the authority that relayed it for its client (0: its client is here)
	// digest is the caller's prediction's digest (wire.Call.Digest, 0:
	// none); matched says the first run's outcome has that digest, so
	// while it is the only version the caller may be answered with a
	// matched result.
	digest  uint64
	matched bool

	// Room for what most calls keep, so that a call costs one allocation
	// for its record rather than four: its arguments (call.Args), its
	// first version (versions) and that version's outputs.
	argsBuf [callArgsRoom]byte
	ver0    [1]callVersion
	out0    [callOutputsRoom]outKey
}

// The arguments and outputs a callRec holds without another allocation.
const (
	callArgsRoom    = 16
	callOutputsRoom = 2
)

// runKey names a call by its outputs' creator and write time (a
// creator's calls have distinct write times).
type runKey struct {
	creator uint32
	nanos   int64
}

type callVersion struct {
	version uint32
	outputs []outKey
	reads   []netcode.ReadLock // what the run read, sent to the caller
}

// NewNode returns a node with an empty store.
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, err := netcode.NewStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = netcode.NewRegistry()
	}
	rule := cfg.WriteRule
	if rule == nil {
		rule = ClientPrefixRule
	}
	if cfg.ResumeWindow == 0 {
		cfg.ResumeWindow = DefaultResumeWindow
	}
	cfg.ResumeKey = slices.Clone(cfg.ResumeKey)
	store.CollectFinal(cfg.Persist)
	spaces, err := newSpaceIndexes(reg)
	if err != nil {
		return nil, err
	}
	order := make([]string, 0, len(spaces))
	for p := range spaces {
		order = append(order, p)
	}
	slices.Sort(order)
	nd := &Node{
		cfg:          cfg,
		reg:          reg,
		writeRule:    rule,
		store:        store,
		spaces:       spaces,
		spaceOrder:   order,
		areaWatchers: make(map[string][]*session),
		sessions:     make(map[SessionID]*session),
		watchers:     make(map[string][]*session),
		calls:        make(map[netcode.CallID]*callRec),
		peerRuns:     make(map[runKey]*callRec),
		funcs:        make(map[string]*funcEntry),
		funcStats:    make(map[string]*FuncStats),
		creators:     make(map[uint32]*creatorRec),
		nextCrea:     1,

		peers:        make(map[uint8]*peerNode),
		gone:         make(map[uint8]*takeover),
		peerCreators: make(map[uint32]*creatorRec),
		relayed:      make(map[netcode.CallID]*relayRec),
	}
	for _, prefix := range cfg.Cluster.Watch {
		if err := nd.addInterest(prefix); err != nil {
			return nil, err
		}
	}
	return nd, nil
}

// Store returns the node's store, for reads by the embedding program (and
// tests). Writes must go through the node.
func (n *Node) Store() *netcode.Store { return n.store }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	st := n.stats
	st.Sessions = len(n.sessions)
	st.Players = n.players
	st.Waiting = n.waiting
	st.Store = n.store.Stats()
	return st
}

// FuncStats returns the counters of every function that has been called.
func (n *Node) FuncStats() map[string]FuncStats {
	out := make(map[string]FuncStats, len(n.funcStats))
	for k, v := range n.funcStats {
		out[k] = *v
	}
	return out
}

// Connect registers a new connection (the shell accepted a transport
// session) and returns its id. The session must say Hello within
// Limits.HelloTimeout. At most Limits.MaxPendingSessions sessions wait for
// their Hello at once, apart from the players: a new one makes the oldest
// waiting session give way (it is closed), so sessions that never say
// Hello cannot lock players out, and one that does (within a round trip)
// is only displaced by MaxPendingSessions newer sessions arriving before
// its Hello. The player cap (Limits.MaxSessions) is checked at Hello.
func (n *Node) Connect(now int64, remote string) (SessionID, error) {
	n.advance(now)
	for n.waiting >= n.cfg.Limits.MaxPendingSessions && len(n.helloDue) > 0 {
		old := n.helloDue[0]
		n.popHelloDue()
		if old.state == awaitingHello {
			n.stats.WaitingEvicted++
			n.failFor(old, CauseEvicted, CodeOverload, fmt.Sprintf("too many sessions waiting for their Hello (limit %d)", n.cfg.Limits.MaxPendingSessions))
		}
	}
	s, err := n.newSession(now, remote)
	if err != nil {
		return 0, err
	}
	n.waiting++ // s.state is awaitingHello
	n.helloDue = append(n.helloDue, s)
	return s.id, nil
}

// newSession registers a session with its codecs, in awaitingHello.
func (n *Node) newSession(now int64, remote string) (*session, error) {
	dec, err := wire.NewDecoder(n.cfg.Wire)
	if err != nil {
		return nil, err
	}
	enc, err := wire.NewEncoder(n.cfg.Wire)
	if err != nil {
		return nil, err
	}
	n.nextSID++
	s := &session{id: n.nextSID, remote: remote, connected: now, dec: dec, enc: enc, watches: make(map[string]watchSpec)}
	n.sessions[s.id] = s
	n.stats.Connects++
	return s, nil
}

// setState moves s to state st, keeping the waiting and player counts.
func (n *Node) setState(s *session, st sessionState) {
	switch s.state {
	case awaitingHello:
		n.waiting--
	case ready:
		n.players--
	}
	s.state = st
	switch st {
	case awaitingHello:
		n.waiting++
	case ready:
		n.players++
	}
}

func (n *Node) popHelloDue() {
	n.helloDue[0] = nil
	n.helloDue = n.helloDue[1:]
}

// expireHellos closes the sessions that have not said Hello within
// Limits.HelloTimeout of connecting, and drops the entries of sessions
// that are no longer waiting from the front of the queue.
func (n *Node) expireHellos(now int64) {
	for len(n.helloDue) > 0 {
		s := n.helloDue[0]
		if s.state == awaitingHello && s.parked == nil {
			if now-s.connected < int64(n.cfg.Limits.HelloTimeout) {
				return
			}
			n.stats.HelloTimeouts++
			n.failFor(s, CauseHelloTimeout, CodeProtocol, fmt.Sprintf("no Hello within %v", n.cfg.Limits.HelloTimeout))
		}
		n.popHelloDue()
	}
}

// Disconnect forgets a session whose transport is gone. Its calls stay: the
// authority keeps re-running them until finality.
func (n *Node) Disconnect(now int64, id SessionID) {
	n.DisconnectFor(now, id, CauseTransport, "transport closed")
}

// DisconnectFor is Disconnect for a shell that knows why the session went
// (its transport failed, it could not keep up): the close is counted
// under cause and noted with reason, unless the node had closed the
// session already.
func (n *Node) DisconnectFor(now int64, id SessionID, cause Cause, reason string) {
	n.advance(now)
	s := n.sessions[id]
	if s == nil {
		return
	}
	for prefix := range s.watches {
		n.unwatch(s, prefix)
	}
	if s.state != closing {
		n.noteClose(s, cause, reason)
		n.setState(s, closing)
	}
	n.release(s)
	n.dropPeerStream(s)
	delete(n.sessions, id)
	n.stats.Disconnects++
	n.checkWaits(now)
}

// dropPeerStream forgets s as a peer's replication stream from this node.
func (n *Node) dropPeerStream(s *session) {
	if s.dir == peerOut {
		if p := n.peers[s.peer]; p != nil && p.out == s {
			p.out = nil
		}
	}
}

// advance records now as the latest time seen, for what Ready does.
func (n *Node) advance(now int64) {
	if now > n.now {
		n.now = now
	}
}

// Step handles one frame received from a session at time now. A malformed
// frame or a protocol violation sends an Error and closes the session; the
// store is never touched by a message that failed to decode.
func (n *Node) Step(now int64, id SessionID, frame []byte) { n.StepArrived(now, now, id, frame) }

// StepArrived handles at now a frame that arrived at arrived: a shell
// whose goroutine was busy gets to frames after they arrived. The
// session's limits (rates, strikes) are charged at arrival, so a backlog
// the node builds up itself never looks like a flood from its senders; the
// change window of calls is judged at now, and a call that only went
// stale while it waited is rejected without using the sender's allowance
// or earning a strike. arrived is taken as now if it is later.
func (n *Node) StepArrived(now, arrived int64, id SessionID, frame []byte) {
	n.advance(now)
	arrived = min(arrived, now)
	s := n.sessions[id]
	if s == nil || s.state == closing {
		return
	}
	n.stats.FramesIn++
	n.stats.BytesIn += uint64(len(frame))
	defer n.flushSyncs(now)
	if s.dir == notPeer && !s.bytes.take(arrived, n.cfg.Limits.BytesPerSecond, float64(len(frame))) {
		if n.refuse(arrived, s, CodeRateLimit, fmt.Sprintf("over %.0f bytes per second", n.cfg.Limits.BytesPerSecond)) {
			return
		}
	}
	if err := s.dec.Start(frame); err != nil {
		n.fail(s, CodeProtocol, fmt.Sprintf("bad frame: %v", err))
		return
	}
	for s.state != closing {
		err := s.dec.Next(&s.in)
		if d := s.dec.DictBytes(); d > n.cfg.Limits.MaxInboundPathBytes {
			n.fail(s, CodeLimit, fmt.Sprintf("path definitions of %d bytes, limit %d", d, n.cfg.Limits.MaxInboundPathBytes))
			return
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			n.fail(s, CodeProtocol, fmt.Sprintf("bad message: %v", err))
			return
		}
		n.stats.MessagesIn++
		// Charged before the message is handled, so a frame's work is
		// bounded before it is done. Replication streams between
		// authorities are not a client's requests.
		if s.dir == notPeer && !s.msgs.take(arrived, n.cfg.Limits.MessagesPerSecond, messageCost(&s.in)) {
			if n.refuse(arrived, s, CodeRateLimit, fmt.Sprintf("over %.0f messages per second", n.cfg.Limits.MessagesPerSecond)) {
				return
			}
			continue
		}
		n.handle(now, arrived, s, &s.in)
	}
	// Calls invalidated by this frame are re-run on the next Tick, once
	// for all the frames of the tick: a burst of late frames (a stalled
	// link letting go) would otherwise re-run the same later calls once
	// per frame.
}

// messageCost is what m counts against Limits.MessagesPerSecond: one, or
// one per prefix of a Watch or Unwatch.
func messageCost(m *wire.Message) float64 {
	switch m.Kind {
	case wire.KindWatch:
		return float64(max(1, len(m.Watch.Prefixes)))
	case wire.KindUnwatch:
		return float64(max(1, len(m.Unwatch.Prefixes)))
	}
	return 1
}

func (n *Node) handle(now, arrived int64, s *session, m *wire.Message) {
	if s.dir != notPeer {
		n.handlePeer(now, s, m)
		return
	}
	if s.parked != nil && (m.Kind == wire.KindTimeSyncRequest || m.Kind == wire.KindPing) {
		// A Hello waiting for a takeover: the client's clock may go on
		// syncing meanwhile (its requests ride with the Hello).
	} else if s.state == awaitingHello && m.Kind != wire.KindHello {
		n.fail(s, CodeProtocol, fmt.Sprintf("%v before Hello", m.Kind))
		return
	}
	switch m.Kind {
	case wire.KindHello:
		n.hello(now, s, &m.Hello)
	case wire.KindTimeSyncRequest:
		s.syncSent, s.syncRecv = m.TimeSyncRequest.ClientSend, arrived
		// Received when it arrived, sent now: the client's estimator
		// takes the node's own delay out of the round trip.
		rep := timesync.Answer(timesync.Request{ClientSend: m.TimeSyncRequest.ClientSend}, arrived, now)
		n.send(s, &wire.Message{Kind: wire.KindTimeSyncReply, TimeSyncReply: wire.TimeSyncReply{
			ClientSend: rep.ClientSend, ServerRecv: rep.ServerRecv, ServerSend: rep.ServerSend}})
	case wire.KindPing:
		n.send(s, &wire.Message{Kind: wire.KindPing, Ping: m.Ping})
	case wire.KindWatch:
		n.watch(now, arrived, s, &m.Watch)
	case wire.KindUnwatch:
		for _, p := range m.Unwatch.Prefixes {
			n.unwatch(s, p)
		}
	case wire.KindCall:
		n.callMsg(now, arrived, s, &m.Call)
	case wire.KindWrite:
		n.write(now, arrived, s, &m.Write)
	default:
		n.fail(s, CodeProtocol, fmt.Sprintf("unexpected %v from a client", m.Kind))
	}
}

func (n *Node) hello(now int64, s *session, h *wire.Hello) {
	if s.state != awaitingHello {
		n.fail(s, CodeProtocol, "second Hello")
		return
	}
	if h.Version != wire.ProtocolVersion {
		n.fail(s, CodeVersion, fmt.Sprintf("protocol version %d, this authority speaks %d", h.Version, wire.ProtocolVersion))
		return
	}
	if id, ok := n.peerFromToken(h.Token); ok {
		// Another authority's replication stream to this node.
		n.setState(s, peering)
		s.dir, s.peer = peerIn, id
		// The stream sends its node's watches, and its catch-ups, anew.
		// Whether the peer is up is membership's to say (PeerUp), not
		// its stream's (see handlePeer's Sync).
		p := n.peer(id)
		p.watches, p.watchDone, p.rangeDone = nil, nil, nil
		n.send(s, &wire.Message{Kind: wire.KindWelcome, Welcome: wire.Welcome{Creator: uint32(id) << 24, ServerTime: now}})
		return
	}
	if !n.caughtUp() {
		// A node that (re)joined a cluster serves once it holds what its
		// peers hold; its client tries another authority meanwhile.
		n.failFor(s, CauseCatchingUp, CodeOverload, "catching up with the cluster: try another authority")
		return
	}
	if n.cfg.Auth != nil {
		player, err := n.cfg.Auth.Authenticate(now, h.Token)
		if err != nil {
			n.fail(s, CodeAuth, err.Error())
			return
		}
		s.player = player
	}
	n.welcome(now, s, h.Resume, false)
}

// welcome gives an authenticated session its creator (resumed, or fresh)
// and sends the Welcome. A token for a creator of another authority of the
// cluster that cannot be taken over yet (the holder is still alive, or its
// takeover is under way) is parked, unless late: it is welcomed once the
// takeover is done, or afresh after Cluster.ResumeWait.
func (n *Node) welcome(now int64, s *session, resume []byte, late bool) {
	resuming := len(n.cfg.ResumeKey) > 0
	var rec *creatorRec
	if resuming && len(resume) > 0 {
		rec = n.resumable(now, resume, s.player)
		if rec == nil && !late && n.takeoverAhead(resume, s.player) {
			s.parked, s.parkedAt = slices.Clone(resume), now
			n.parked = append(n.parked, s)
			return
		}
	}
	if rec != nil {
		if old := n.sessions[rec.session]; old != nil && old.state != closing {
			// The client lost the old session and moved on; the node has
			// not noticed yet. Nothing more may arrive under the creator
			// from there, or a call could run once on each.
			n.stats.Superseded++
			n.fail(old, CodeSuperseded, "session superseded by a resumed one")
		}
	}
	if n.players >= n.cfg.Limits.MaxSessions {
		// Checked after a resumed creator's old session was closed: a
		// player coming back always finds its own seat.
		n.stats.Full++
		n.failFor(s, CauseFull, CodeOverload, fmt.Sprintf("authority full: %d players", n.cfg.Limits.MaxSessions))
		return
	}
	if rec != nil {
		if rec.session == 0 {
			n.endedLive-- // its endedRec is stale from now on
		}
		n.stats.Resumes++
	} else {
		rec = &creatorRec{creator: n.freshCreator(), born: now}
		if resuming {
			n.creators[rec.creator] = rec
		}
		n.logEntry(archive.Entry{Kind: archive.EntryCreator, Now: now, Creator: rec.creator, Born: now})
	}
	rec.session = s.id
	s.cr, s.creator = rec, rec.creator
	n.setState(s, ready)
	c := n.cfg.Store
	w := wire.Welcome{
		Creator: s.creator, ServerTime: now,
		MaxChangeAge: c.MaxChangeAge, MaxRewind: c.MaxRewind, MaxFutureSkew: c.MaxFutureSkew,
	}
	if resuming {
		w.Resume = n.resumeToken(rec.creator, now, s.player)
	}
	n.send(s, &wire.Message{Kind: wire.KindWelcome, Welcome: w})
}

// freshCreator assigns the next creator id, skipping any a live or
// resumable session still holds.
func (n *Node) freshCreator() uint32 {
	for {
		c := uint32(n.cfg.NodeID)<<24 | n.nextCrea
		n.nextCrea++
		if n.nextCrea >= 1<<24 {
			n.nextCrea = 1 // after 16M sessions; ids of sessions long gone are reused
		}
		if n.creators[c] == nil && n.peerCreators[c] == nil {
			return c
		}
	}
}

// Resume tokens are creator (4 bytes, big-endian) ‖ issue time (8 bytes,
// ns) ‖ the first resumeMACBytes of HMAC-SHA256(ResumeKey, NodeID ‖
// creator ‖ issue time ‖ player). The MAC binds the token to this node's
// id and to the authenticated player ("" without an Authenticator), so a
// token is good only for the player it was issued to.
const (
	resumeMACBytes   = 16
	resumeTokenBytes = 4 + 8 + resumeMACBytes
)

func (n *Node) resumeMAC(creator uint32, issued int64, player string) []byte {
	m := hmac.New(sha256.New, n.cfg.ResumeKey)
	var b [13]byte
	b[0] = uint8(creator >> 24) // the node that issued the creator; tokens hold across a cluster sharing the key
	binary.BigEndian.PutUint32(b[1:], creator)
	binary.BigEndian.PutUint64(b[5:], uint64(issued))
	m.Write(b[:])
	m.Write([]byte(player))
	return m.Sum(nil)[:resumeMACBytes]
}

func (n *Node) resumeToken(creator uint32, issued int64, player string) []byte {
	t := make([]byte, 12, resumeTokenBytes)
	binary.BigEndian.PutUint32(t, creator)
	binary.BigEndian.PutUint64(t[4:], uint64(issued))
	return append(t, n.resumeMAC(creator, issued, player)...)
}

// resumable returns the creator a resume token may take over, or nil: the
// token must be well formed with a valid MAC for this player, issued no
// later than now and no earlier than the creator's first token, for a
// creator of this node that is held by a live session or whose session
// ended at most ResumeWindow ago. A token that fails any of this is not an
// error: the session simply starts afresh.
func (n *Node) resumable(now int64, tok []byte, player string) *creatorRec {
	if len(tok) != resumeTokenBytes {
		return nil
	}
	creator := binary.BigEndian.Uint32(tok)
	issued := int64(binary.BigEndian.Uint64(tok[4:]))
	if !hmac.Equal(tok[12:], n.resumeMAC(creator, issued, player)) {
		return nil
	}
	rec := n.creators[creator]
	if rec == nil && creator>>24 != uint32(n.cfg.NodeID) {
		// A creator of another authority of the cluster: resumable here
		// once that one failed and its calls were taken over.
		rec = n.adoptCreator(now, creator)
	}
	switch {
	case rec == nil:
		return nil
	case issued > now || issued < rec.born:
		return nil
	case rec.session == 0 && now-rec.ended > int64(n.cfg.ResumeWindow):
		return nil
	}
	return rec
}

// release detaches a session that ends from its creator, which stays
// resumable for ResumeWindow (if resuming is on and no newer session has
// taken it over). At most Limits.MaxSessions ended creators are
// remembered; the oldest go first.
func (n *Node) release(s *session) {
	rec := s.cr
	if rec == nil || rec.session != s.id {
		return
	}
	rec.session = 0
	rec.ended = n.now
	rec.endSeq++
	rec.failoverLeft = 0 // only the session that resumed it after the failover
	if n.creators[rec.creator] != rec {
		return // resuming is off
	}
	n.ended = append(n.ended, endedRec{rec, n.now, rec.endSeq})
	n.endedLive++
	for n.endedLive > n.cfg.Limits.MaxSessions {
		n.popEnded()
	}
	if len(n.ended) > 2*n.cfg.Limits.MaxSessions {
		// Mostly stale entries of creators resumed since: compact.
		n.ended = slices.DeleteFunc(n.ended, func(e endedRec) bool { return !e.current() })
	}
}

// popEnded removes the oldest entry of n.ended, forgetting its creator if
// the entry is current.
func (n *Node) popEnded() {
	e := n.ended[0]
	n.ended[0] = endedRec{}
	n.ended = n.ended[1:]
	if e.current() {
		delete(n.creators, e.rec.creator)
		n.endedLive--
	}
}

// expireCreators forgets creators whose session ended over ResumeWindow
// before now.
func (n *Node) expireCreators(now int64) {
	for len(n.ended) > 0 && now-n.ended[0].ended > int64(n.cfg.ResumeWindow) {
		n.popEnded()
	}
}

// fail sends an Error and closes the session.
func (n *Node) fail(s *session, code wire.ErrorCode, text string) {
	n.failFor(s, codeCause(code), code, text)
}

// failFor is fail with the cause the close is counted under.
func (n *Node) failFor(s *session, cause Cause, code wire.ErrorCode, text string) {
	n.send(s, &wire.Message{Kind: wire.KindError, Error: wire.Error{Code: code, Text: text}})
	n.closeSessionFor(s, cause, text)
}

func (n *Node) closeSession(s *session, reason string) {
	cause := CauseInternal
	if s.dir != notPeer {
		cause = CausePeer
	}
	n.closeSessionFor(s, cause, reason)
}

func (n *Node) closeSessionFor(s *session, cause Cause, reason string) {
	if s.state == closing {
		return
	}
	n.noteClose(s, cause, reason)
	n.setState(s, closing)
	s.close = true
	s.reason = reason
	s.out = nil
	for prefix := range s.watches {
		n.unwatch(s, prefix)
	}
	n.touch(s)
}

// What a refusal costs, in points; Limits.Strikes counts whole strikes of
// strikePoints. Every refusal of a session's request and every limit it
// overran is a strike. A call outside the change window when it arrived
// costs only latePoints: a link that freezes for a second delivers a
// burst of them from an honest client, whose calls are refused anyway.
const (
	strikePoints = 8
	latePoints   = 1
)

// refuse charges a strike for a refused request at at and tells the
// session why (Error with code and text), or, if that was one strike too
// many, closes it. It reports whether the session is closing.
func (n *Node) refuse(at int64, s *session, code wire.ErrorCode, text string) bool {
	cause := codeCause(code)
	n.noteRefusal(s, cause, text)
	if n.strike(at, s, strikePoints, cause, text) {
		return true
	}
	n.send(s, &wire.Message{Kind: wire.KindError, Error: wire.Error{Code: code, Text: text}})
	return false
}

// strike charges points to the session at at (when the offending frame
// arrived) and closes it, with an Error naming what, once its points within
// Limits.StrikeWindow exceed Limits.Strikes whole strikes. It reports
// whether the session is closing. The caller answers the request itself
// unless it is.
func (n *Node) strike(at int64, s *session, points int, cause Cause, what string) bool {
	if s.state == closing {
		return true
	}
	n.stats.Strikes++
	n.stats.StrikesBy[cause]++
	cut := at - int64(n.cfg.Limits.StrikeWindow)
	k := 0
	for k < len(s.strikes) && s.strikes[k].at < cut {
		s.strikePts -= s.strikes[k].points
		k++
	}
	s.strikes = append(s.strikes[k:], strikeRec{at, points})
	s.strikePts += points
	if s.strikePts > n.cfg.Limits.Strikes*strikePoints {
		n.stats.Kicked++
		n.failFor(s, CauseStrikes, CodeRateLimit, fmt.Sprintf("disconnected: %s (more than %d strikes within %v)", what, n.cfg.Limits.Strikes, n.cfg.Limits.StrikeWindow))
		return true
	}
	return false
}

// Shutdown sends every session an Error saying the node is going away and
// asks the shell to close them after what is queued.
func (n *Node) Shutdown(now int64, reason string) {
	n.flush(now)
	for _, s := range n.sortedSessions() {
		if s.state != closing {
			n.fail(s, CodeShutdown, reason)
		}
	}
}

func (n *Node) sortedSessions() []*session {
	out := make([]*session, 0, len(n.sessions))
	for _, s := range n.sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *session) int { return cmpID(a.id, b.id) })
	return out
}

func cmpID(a, b SessionID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// markDirty queues a session whose batches the next flush must send.
func (n *Node) markDirty(s *session) {
	if !s.dirty {
		s.dirty = true
		n.dirty = append(n.dirty, s)
	}
}

// Tick advances finality, flushes watch deliveries (every tick, or every
// Config.FlushEvery) and forgets final calls.
func (n *Node) Tick(now int64) {
	n.advance(now)
	n.expireHellos(now)
	n.expireCreators(now)
	// The calls that frames since the last tick invalidated are re-run
	// before finality moves on: an input accepted at the edge of the
	// change window invalidates calls just after it, which a tick that a
	// busy shell delivered late would otherwise find final already, their
	// confirmed effect lost.
	n.processReruns(now)
	n.applyChanges(now, n.store.Tick(n.finalityNow(now)))
	n.processReruns(now) // what finality invalidated (lock targets never seen)
	n.refreshInterest(now)
	n.expireRelayed()
	n.advanceClosed(now) // after the re-runs, which the closed time said last still allowed
	h := n.store.Horizon()
	k := 0
	for k < len(n.callExpiry) && n.callExpiry[k].call.Time < h {
		rec := n.callExpiry[k]
		rec.dead = true
		delete(n.calls, rec.call.ID)
		delete(n.peerRuns, runKey{rec.call.ID.Creator, rec.call.Time})
		k++
	}
	if k > 0 {
		clear(n.callExpiry[:k])
		n.callExpiry = n.callExpiry[k:]
	}
	if now-n.lastFlush >= int64(n.cfg.FlushEvery) {
		n.flush(now)
	}
	if len(n.peers) > 0 {
		for _, p := range n.peers {
			p.syncDue = true // the closed time, every tick
		}
		n.flushSyncs(now)
		n.checkWaits(now)
		n.unpark(now)
		if now-n.lastSweep >= int64(time.Second) {
			n.lastSweep = now
			n.sweepPeerCreators(now)
		}
	}
}

// Ready returns what the shell must send and close since the last call, one
// Output per session in session order. Frames are owned by the caller,
// which may hand them back with Recycle once sent.
func (n *Node) Ready() []Output {
	if len(n.ready) == 0 {
		return nil
	}
	slices.Sort(n.ready) // deterministic order whatever touched them first
	out := make([]Output, 0, len(n.ready))
	for _, id := range n.ready {
		s := n.sessions[id]
		if s == nil {
			continue
		}
		s.queued = false
		n.closeFrame(s)
		o := Output{Session: id, Frames: s.frames, Close: s.close, Reason: s.reason}
		for _, f := range s.frames {
			n.stats.FramesOut++
			n.stats.BytesOut += uint64(len(f))
		}
		s.frames = nil
		out = append(out, o)
		if s.close {
			// The shell closes it; the node forgets it now.
			n.release(s)
			n.dropPeerStream(s)
			delete(n.sessions, id)
			n.stats.Disconnects++
		}
	}
	n.ready = n.ready[:0]
	return out
}

func (n *Node) touch(s *session) {
	if !s.queued {
		s.queued = true
		n.ready = append(n.ready, s.id)
	}
}

// send encodes m into the session's open frame, starting a new frame when
// the open one is full.
func (n *Node) send(s *session, m *wire.Message) {
	if s.close && m.Kind != wire.KindError {
		return
	}
	// Texts come from anywhere (a game function's error, a write rule):
	// the wire takes at most MaxTextBytes of UTF-8.
	switch m.Kind {
	case wire.KindError:
		m.Error.Text = n.wireText(m.Error.Text)
	case wire.KindCallResult:
		m.CallResult.Error = n.wireText(m.CallResult.Error)
	}
	n.touch(s)
	if s.cur == nil {
		s.cur = s.enc.BeginFrame(n.frameBuf())
	}
	buf, err := s.enc.Append(s.cur, m)
	if err == nil {
		s.cur = buf
		return
	}
	n.closeFrame(s)
	s.cur = s.enc.BeginFrame(n.frameBuf())
	buf, err = s.enc.Append(s.cur, m)
	if err != nil {
		// One message larger than a frame: a bug on this side, never the
		// peer's input. Close rather than lose it silently.
		s.cur = nil
		n.closeSession(s, fmt.Sprintf("cannot encode %v: %v", m.Kind, err))
		return
	}
	s.cur = buf
}

// wireText makes t fit a wire text field: invalid UTF-8 replaced, then cut
// on a rune boundary to Wire.MaxTextBytes.
func (n *Node) wireText(t string) string {
	t = strings.ToValidUTF8(t, "\uFFFD")
	max := n.cfg.Wire.MaxTextBytes
	if max == 0 {
		max = wire.DefaultLimits().MaxTextBytes
	}
	if len(t) <= max {
		return t
	}
	t = t[:max]
	for len(t) > 0 && !utf8.ValidString(t) {
		t = t[:len(t)-1]
	}
	return t
}

func (n *Node) closeFrame(s *session) {
	if len(s.cur) > 1 {
		s.frames = append(s.frames, s.cur)
	} else if s.cur != nil {
		n.Recycle([][]byte{s.cur})
	}
	s.cur = nil
}

// Frame buffers kept for reuse: at most maxSpareFrames, each of at most
// maxSpareFrame bytes (a bigger one, from a burst, goes to the collector).
const (
	maxSpareFrames = 4096
	maxSpareFrame  = 64 << 10
)

// Recycle hands back frames that Ready returned, once the shell is done
// with them (the transport copies what Send sends): the node encodes later
// frames into them instead of into fresh memory. The caller must not touch
// them afterwards. Calling it is optional; frames not handed back are
// simply left to the garbage collector.
func (n *Node) Recycle(frames [][]byte) {
	for _, f := range frames {
		if c := cap(f); c < 64 || c > maxSpareFrame || len(n.spare) >= maxSpareFrames {
			continue
		}
		n.spare = append(n.spare, f[:0])
	}
}

// frameBuf returns an empty buffer for a new frame.
func (n *Node) frameBuf() []byte {
	if k := len(n.spare); k > 0 {
		f := n.spare[k-1]
		n.spare[k-1] = nil
		n.spare = n.spare[:k-1]
		return f
	}
	return make([]byte, 0, 512)
}

// flush encodes the batched watch deliveries of every session.
func (n *Node) flush(now int64) {
	n.lastFlush = now
	slices.SortFunc(n.dirty, func(a, b *session) int { return cmpID(a.id, b.id) })
	for _, s := range n.dirty {
		s.dirty = false
		if s.state != ready || len(s.out) == 0 {
			continue
		}
		n.sendBatches(s)
	}
	clear(n.dirty)
	n.dirty = n.dirty[:0]
}

// delivery is one batched watch delivery: a value, a state change of a
// value delivered before (Path, Time and State set), or the end of a
// watch's snapshot (v.Path is the prefix).
type delivery struct {
	v    wire.Value
	kind deliveryKind
}

type deliveryKind uint8

const (
	deliverValue deliveryKind = iota
	deliverState
	deliverDone
	deliverLeave // an entity left a spatial watch's area (v.Path is its prefix)
)

// sendBatches encodes a session's deliveries in the order they happened,
// each run of values as a Values message, each run of state changes as a
// ValidStates message and each snapshot end as a WatchDone: a value that
// went invalid and came back within one flush must reach the client in
// that order, or it would end invalid, and a WatchDone must follow its
// snapshot and precede the prefix's later deliveries.
func (n *Node) sendBatches(s *session) {
	max := n.cfg.Wire.MaxBatch
	if max <= 0 {
		max = wire.DefaultLimits().MaxBatch
	}
	for i := 0; i < len(s.out); {
		j := i
		kind := s.out[i].kind
		for j < len(s.out) && s.out[j].kind == kind && j-i < max {
			j++
		}
		switch kind {
		case deliverDone:
			for _, d := range s.out[i:j] {
				n.send(s, &wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: d.v.Path}})
			}
		case deliverLeave:
			for _, d := range s.out[i:j] {
				n.send(s, &wire.Message{Kind: wire.KindLeave, Leave: wire.Leave{Prefix: d.v.Path}})
			}
		case deliverState:
			n.scratchStates = n.scratchStates[:0]
			for _, d := range s.out[i:j] {
				n.scratchStates = append(n.scratchStates, wire.StateChange{Path: d.v.Path, Time: d.v.Time, State: d.v.State})
			}
			n.send(s, &wire.Message{Kind: wire.KindValidStates, ValidStates: wire.ValidStates{Items: n.scratchStates}})
			n.stats.StatesSent += uint64(j - i)
		default:
			n.scratchValues = n.scratchValues[:0]
			for _, d := range s.out[i:j] {
				n.scratchValues = append(n.scratchValues, d.v)
			}
			n.send(s, &wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: n.scratchValues}})
			clear(n.scratchValues)
			n.stats.ValuesSent += uint64(j - i)
		}
		i = j
	}
	// Keep the capacity for the next flush; drop references to values.
	clear(s.out)
	s.out = s.out[:0]
}

// --- watches ---

func (n *Node) watch(now, arrived int64, s *session, w *wire.Watch) {
	for _, prefix := range w.Prefixes {
		if err := validWatch(prefix); err != nil {
			if n.refuse(arrived, s, CodeRefused, err.Error()) {
				return
			}
			continue
		}
		if _, ok := s.watches[prefix]; !ok && len(s.watches) >= n.cfg.Limits.WatchesPerSession {
			if n.refuse(arrived, s, CodeLimit, fmt.Sprintf("watch %q refused: %d watches is the limit", prefix, n.cfg.Limits.WatchesPerSession)) {
				return
			}
			continue
		}
		// A prefix this node does not own is watched from its owners
		// once, and fanned out to every session here that watches it.
		_ = n.addInterest(watchRange(prefix))
		spec := watchSpec{mode: w.Mode, window: w.Window, area: w.Area}
		if w.Area.Kind != wire.AreaNone {
			// A spatial watch replaces a plain one of the prefix, and
			// its snapshot is the entities it finds, each charged as
			// it enters (area.go).
			if old, ok := s.watches[prefix]; ok && old.area.Kind == wire.AreaNone {
				n.unwatch(s, prefix)
			}
			if err := n.watchArea(now, s, prefix, spec); err != nil {
				if n.refuse(arrived, s, CodeRefused, err.Error()) {
					return
				}
				continue
			}
			s.watches[prefix] = spec
			if w.Done {
				s.out = append(s.out, delivery{v: wire.Value{Path: prefix}, kind: deliverDone})
			}
			continue
		}
		if old, ok := s.watches[prefix]; ok && old.area.Kind != wire.AreaNone {
			n.unwatch(s, prefix)
		}
		// The snapshot is charged to the session's snapshot budget and
		// built only as far as the budget goes; one that does not fit is
		// undone and refused. A prefix watched already costs its
		// snapshot again: asking twice is never free.
		rate := n.cfg.Limits.SnapshotValuesPerSecond
		mark := len(s.out)
		cost, ok := n.snapshot(now, s, prefix, spec, int(s.snaps.avail(arrived, rate)))
		if !ok {
			clear(s.out[mark:])
			s.out = s.out[:mark]
			n.stats.SnapshotsRefused++
			if n.refuse(arrived, s, CodeLimit, fmt.Sprintf("watch %q refused: its snapshot costs more than the %.0f values a second left to this session (limit %.0f)",
				prefix, s.snaps.avail(arrived, rate), rate)) {
				return
			}
			continue
		}
		s.snaps.take(arrived, rate, float64(cost))
		n.stats.SnapshotValues += uint64(cost)
		if _, ok := s.watches[prefix]; !ok {
			n.watchers[prefix] = append(n.watchers[prefix], s)
		}
		s.watches[prefix] = spec
		if w.Done {
			// Queued behind the snapshot and ahead of any later delivery,
			// which goes to s.out after it in the order it happens.
			s.out = append(s.out, delivery{v: wire.Value{Path: prefix}, kind: deliverDone})
		}
	}
	// Answer a watch at once rather than at the next flush.
	n.sendBatches(s)
	n.touch(s)
}

func validWatch(prefix string) error {
	if prefix == "" || prefix[len(prefix)-1] == '/' {
		return netcode.ValidatePrefix(prefix)
	}
	return netcode.ValidatePath(prefix)
}

// snapshot queues the current valid values under prefix: the latest of each
// path, or for history watches every valid value newer than now - window
// plus the one before it (so interpolation has a sample on each side). It
// costs one per value queued, or per path visited that had none, and stops
// as soon as the cost would exceed budget: then it reports false, and what
// it queued must be undone.
func (n *Node) snapshot(now int64, s *session, prefix string, spec watchSpec, budget int) (cost int, ok bool) {
	ok = true
	n.store.PathsUnder(prefix, func(path string) bool {
		queued := len(s.out)
		n.snapshotPath(now, s, path, spec)
		cost += max(1, len(s.out)-queued)
		if cost > budget {
			ok = false
		}
		return ok
	})
	return cost, ok
}

// snapshotPath queues the snapshot of one path (see snapshot).
func (n *Node) snapshotPath(now int64, s *session, path string, spec watchSpec) {
	var hist []netcode.PathValue
	n.store.History(path, func(v netcode.PathValue) bool {
		if v.State == netcode.Valid && v.Flags&netcode.FlagEvent == 0 {
			hist = append(hist, v)
		}
		return true
	})
	if len(hist) == 0 {
		return
	}
	from := len(hist) - 1
	if spec.mode == wire.WatchHistory {
		cut := now - int64(spec.window)
		for from > 0 && hist[from].Time.Nanos > cut {
			from--
		}
	}
	for _, v := range hist[from:] {
		if v.Value == nil && from == len(hist)-1 {
			break // a deleted path: nothing to show
		}
		s.out = append(s.out, delivery{v: toWire(v)})
	}
}

func (n *Node) unwatch(s *session, prefix string) {
	spec, ok := s.watches[prefix]
	if !ok {
		return
	}
	delete(s.watches, prefix)
	if spec.area.Kind != wire.AreaNone {
		n.unwatchArea(s, prefix)
		return
	}
	list := n.watchers[prefix]
	if i := slices.Index(list, s); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(n.watchers, prefix)
	} else {
		n.watchers[prefix] = list
	}
}

// watchersOf calls fn for every session watching path (through any of its
// prefixes or the exact path), once per session. The order follows the
// watch lists, which is deterministic; Ready sorts its output by session.
func (n *Node) watchersOf(path string, fn func(*session)) {
	n.epoch++
	visit := func(key string) {
		for _, s := range n.watchers[key] {
			if s.seen == n.epoch || s.state != ready {
				continue
			}
			s.seen = n.epoch
			fn(s)
		}
	}
	visit("")
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			key := path[:i+1]
			visit(key)
			if len(n.areaWatchers) > 0 {
				for _, s := range n.areaWatchers[key] {
					if s.seen == n.epoch || s.state != ready {
						continue
					}
					s.seen = n.epoch
					fn(s)
				}
			}
		}
	}
	visit(path)
}

func toWire(v netcode.PathValue) wire.Value {
	return wire.Value{Path: v.Path, Time: wire.Time(v.Time), Value: v.Value, State: wire.State(v.State), Flags: wire.Flags(v.Flags)}
}

// applyChanges turns store changes into watch deliveries and re-run checks.
// A value is delivered when it becomes valid (pending values wait); a
// delivered value that stops being valid, or comes back, is delivered as a
// state change (coming back re-sends the value, which a client applies
// idempotently).
func (n *Node) applyChanges(now int64, changes []netcode.Change) {
	late := false
	for i := range changes {
		c := changes[i]
		becameValid := c.New == netcode.Valid && (c.Kind == netcode.Added || c.Old != netcode.Valid)
		leftValid := c.Kind == netcode.StateChanged && c.Old == netcode.Valid
		late = late || leftValid
		switch {
		case becameValid:
			if len(n.spaces) > 0 && c.Flags&netcode.FlagEvent == 0 {
				n.indexPosition(now, c.Path, c.Time.Nanos, c.Value)
			}
			w := wire.Value{Path: c.Path, Time: wire.Time(c.Time), Value: c.Value, Flags: wire.Flags(c.Flags)}
			n.watchersOf(c.Path, func(s *session) {
				s.out = append(s.out, delivery{v: w})
				n.markDirty(s)
				n.checkBacklog(s)
			})
		case leftValid:
			sc := wire.StateChange{Path: c.Path, Time: wire.Time(c.Time), State: wire.State(c.New)}
			n.watchersOf(c.Path, func(s *session) {
				s.out = append(s.out, delivery{v: wire.Value{Path: sc.Path, Time: sc.Time, State: sc.State}, kind: deliverState})
				n.markDirty(s)
				n.checkBacklog(s)
			})
		}
		if c.Kind == netcode.StateChanged && c.New == netcode.Invalid {
			rec, _ := c.Tag.(*callRec)
			if rec == nil && len(n.peerRuns) > 0 {
				// A peer's output: re-run here if its call was taken
				// over here (after the takeover, which queued what was
				// invalid then, the store's changes are all that say
				// it needs a re-run).
				if pr := n.peerRuns[runKey{c.Time.Creator, c.Time.Nanos}]; pr != nil {
					if pr.node == n.cfg.NodeID {
						rec = pr
					} else if !pr.due && !pr.dead {
						pr.due = true
						n.peerDue = append(n.peerDue, pr)
					}
				}
			}
			if rec != nil && !rec.queued && !rec.dead {
				rec.queued = true
				n.rerunQueue = append(n.rerunQueue, rec)
			}
		} else if c.Kind == netcode.Added && c.New == netcode.Invalid && c.Tag == nil && len(n.peerRuns) > 0 {
			// A peer's output that arrives invalid here: its runner
			// re-runs it once the value that makes it so reaches it.
			if pr := n.peerRuns[runKey{c.Time.Creator, c.Time.Nanos}]; pr != nil && pr.node != n.cfg.NodeID && !pr.due && !pr.dead {
				pr.due = true
				n.peerDue = append(n.peerDue, pr)
			}
		}
	}
	if late {
		n.stats.LateWrites++
	}
}

// checkBacklog closes a session that cannot keep up: rather than drop values
// silently (its view would never converge), it is disconnected and
// reconnects to a fresh snapshot.
func (n *Node) checkBacklog(s *session) {
	if len(s.out) > n.cfg.Limits.MaxPendingOutbound {
		n.failFor(s, CauseTooSlow, CodeOverload, fmt.Sprintf("too slow: more than %d deliveries queued", n.cfg.Limits.MaxPendingOutbound))
	}
}

// --- calls ---

// callMsg admits and runs a call that arrived at arrived. The checks that
// cost nothing come before the rate limit, so a call refused by them does
// not use up the allowance: in particular one that went stale while the
// node was busy.
func (n *Node) callMsg(now, arrived int64, s *session, c *wire.Call) {
	id := netcode.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq}
	reject := func(cause Cause, text string) {
		n.stats.CallsRejected++
		n.noteRefusal(s, cause, text)
		n.send(s, &wire.Message{Kind: wire.KindCallResult, CallResult: wire.CallResult{
			ID: c.ID, Status: wire.CallRejected, Error: text}})
	}
	// refuse rejects the call and charges points: the CallResult says why,
	// unless the strike closes the session (its Error says why then).
	refuse := func(points int, cause Cause, text string) {
		reject(cause, text)
		n.strike(arrived, s, points, cause, text)
	}
	if id.Creator != s.creator {
		n.fail(s, CodeProtocol, fmt.Sprintf("call id creator %d is not this session's %d", id.Creator, s.creator))
		return
	}
	if rec := n.calls[id]; rec != nil {
		// A re-sent call (after a resumed session): answer with what it
		// became. Its later re-runs' results come here too, as they go to
		// whichever session holds the creator. A call another authority
		// runs is asked of it again, which answers once it is confirmed.
		if p := n.peers[rec.node]; rec.node != n.cfg.NodeID && p != nil && p.up && p.out != nil && p.out.state != closing {
			n.relay(rec.node, *c, s.cr)
			return
		}
		n.sendResult(s, rec)
		return
	}
	if r := n.relayed[id]; r != nil {
		// Relayed already: ask its owner again (it answers from its
		// record once the call is confirmed).
		r.cr = s.cr
		if p := n.peers[r.to]; p != nil && p.up && p.out != nil && p.out.state != closing {
			n.relay(r.to, r.call, s.cr)
		}
		return
	}
	if n.notDurable != "" {
		n.stats.NotDurable++
		reject(CauseNotDurable, "not durable: "+n.notDurable)
		return
	}
	fe := n.funcs[c.Name]
	if fe == nil {
		f, ok := n.reg.Lookup(c.Name)
		if !ok {
			refuse(strikePoints, CauseUnknownFunction, fmt.Sprintf("unknown function %q", c.Name))
			return
		}
		fe = &funcEntry{fn: f, stats: n.funcStat(f.Name)}
		n.funcs[f.Name] = fe
	}
	f := fe.fn
	W := c.Time.Nanos
	lastW := s.cr.lastW
	switch f.Options.Policy {
	case netcode.ClampToMaxLag:
		W = max(W, now-int64(f.Options.MaxLag), lastW+1)
	case netcode.ReceiveTime:
		W = max(now, lastW+1)
	}
	if W <= lastW {
		// Two calls of one writer at one time would share a Time: the
		// client must stamp each call later than the one before (of
		// its creator, over every session that resumed it).
		refuse(latePoints, CauseOrder, fmt.Sprintf("write time %d is not after this session's previous call at %d", W, lastW))
		return
	}
	cfg := n.cfg.Store
	if (W < now-int64(cfg.MaxChangeAge) || W <= n.store.Horizon()) && (f.Options.NoLateFailover || !n.failoverCall(s.cr, W, now)) {
		text := fmt.Sprintf("write time %d is older than the change window (now %d)", W, now)
		if W < arrived-int64(cfg.MaxChangeAge) {
			refuse(latePoints, CauseLate, text)
		} else {
			reject(CauseStale, text) // it went stale waiting for the node: not the sender's doing
		}
		return
	}
	if W > now+int64(cfg.MaxFutureSkew) {
		refuse(latePoints, CauseFuture, fmt.Sprintf("write time %d is too far ahead (now %d)", W, now))
		return
	}
	if !s.calls.take(arrived, n.cfg.Limits.CallsPerSecond, 1) {
		reject(CauseRateLimit, "rate limited")
		if !n.strike(arrived, s, strikePoints, CauseRateLimit, fmt.Sprintf("over %.0f calls per second", n.cfg.Limits.CallsPerSecond)) {
			n.send(s, &wire.Message{Kind: wire.KindError, Error: wire.Error{Code: CodeRateLimit,
				Text: fmt.Sprintf("over %.0f calls per second", n.cfg.Limits.CallsPerSecond)}})
		}
		return
	}
	if !n.HasQuorum() {
		// Cut off from most of the cluster: the others may be taking
		// over, so this side decides nothing. The client tries another.
		n.stats.NoQuorum++
		reject(CauseNoQuorum, "no quorum: this authority is cut off from most of its cluster")
		return
	}
	key := shardKey(f, id.Creator, c.Args)
	if to, here, err := n.routeTo(key); err != nil {
		reject(CauseNoQuorum, err.Error())
		return
	} else if !here {
		// Another authority owns the range the call writes: it runs
		// there, and its answer comes back through this node.
		s.cr.lastW = W
		s.ncalls++
		n.relay(to, wire.Call{ID: c.ID, Name: f.Name, Args: slices.Clone(c.Args), Time: wire.Time{Nanos: W}, ViewDelay: c.ViewDelay}, s.cr)
		return
	}
	s.cr.lastW = W
	s.ncalls++
	rec := &callRec{call: netcode.Call{ID: id, Name: f.Name, Time: W, ViewDelay: c.ViewDelay},
		owner: s.cr, stats: fe.stats, digest: c.Digest}
	if len(c.Args) <= callArgsRoom && c.Args != nil {
		rec.call.Args = rec.argsBuf[:copy(rec.argsBuf[:], c.Args):len(c.Args)]
	} else {
		rec.call.Args = slices.Clone(c.Args)
	}
	rec.versions = rec.ver0[:0]
	fe.stats.Calls++
	n.stats.Calls++
	n.countRangeCall(key)
	rec.node = n.cfg.NodeID
	n.run(now, rec, 0)
	// Failed calls are recorded too: sent again, a call is answered with
	// the outcome of its one run, whatever that was.
	n.calls[id] = rec
	n.expireLater(rec)
	n.replicateCall(rec, n.lastWrites)
	n.answer(now, rec)
}

// failoverCall reports whether a call at W, older than the change window,
// may still run: its creator was taken over here from a failed authority
// at or after W (the client made it before the failover and sends it again
// with its id), within the takeover's failover window (failoverWindow),
// the resumed session has calls of Limits.FailoverCalls left, and W is
// above this node's horizon and closed time and every live peer's closed
// time, all of which still wait at the failed node's: the value it writes
// lands where every owner can still re-run what it invalidates, and
// nothing final changes. It runs as a re-run of an old call does, judged
// at W + MaxChangeAge.
func (n *Node) failoverCall(cr *creatorRec, W, now int64) bool {
	cfg := &n.cfg.Store
	if cr.failoverLeft <= 0 || W > cr.adoptedAt || now >= cr.failoverUntil || W <= n.store.Horizon() || W <= n.closed {
		return false
	}
	for _, p := range n.peers {
		if p.up && (p.closed == 0 || W <= p.closed) {
			return false
		}
	}
	if W <= now+n.failoverWindow()-int64(cfg.MaxChangeAge)-int64(cfg.FinalitySkew)-int64(n.maxClosedLag()) {
		return false // the peers' closed times may pass it anyway (MaxClosedLag)
	}
	cr.failoverLeft--
	n.stats.FailoverCalls++
	return true
}

// answer sends rec's latest outcome to the session holding its creator,
// once the other owners have acknowledged the record just replicated to
// them (awaitReplicas): a client never hears of an outcome that the loss
// of this node could take back.
func (n *Node) answer(now int64, rec *callRec) {
	if n.awaitReplicas(now, rec) {
		return
	}
	n.deliver(rec)
}

// run executes rec's call at version and commits it. It reports whether the
// outcome was stored (errors are remembered for the result).
func (n *Node) run(now int64, rec *callRec, version uint32) bool {
	var start int64
	if n.cfg.RunClock != nil {
		start = n.cfg.RunClock()
	}
	out := n.reg.Run(n.store, &n.cfg.Store, rec.call, version)
	out.Tag = rec
	fs := rec.stats
	if n.cfg.RunClock != nil {
		d := n.cfg.RunClock() - start
		fs.RunNanos += d
		fs.Runs[runBucket(d)]++
	}
	cv := callVersion{version: version}
	rec.lastErr, rec.refused, rec.matched = nil, false, false
	n.lastWrites = nil
	if out.Err == nil {
		if path := n.outsideHeld(&out); path != "" {
			// It read or wrote a range this node does not hold: what it
			// saw there may be wrong. Nothing is stored; the node
			// watches the range from now on.
			n.stats.RunsOutside++
			out.Err = fmt.Errorf("%w (%s)", errOutside, path)
			if !n.owns(n.cfg.NodeID, path) {
				_ = n.addInterest(n.rangePrefix(path)) // an owner catching up on it needs no watch
			}
		}
	}
	if out.Err == nil {
		// A re-run of an old call (in a cluster, as far back as the
		// closed time) is judged at a now its write time is inside the
		// store's window for; the horizon, checked apart, is the bound.
		at := min(now, rec.call.Time+int64(n.cfg.Store.MaxChangeAge))
		changes, err := n.store.Commit(at, &out)
		if err != nil {
			out.Err = err
			rec.refused = true
		} else {
			cv.reads = out.Locks
			if len(rec.versions) == 0 && len(out.Writes) <= len(rec.out0) {
				cv.outputs = rec.out0[:len(out.Writes):len(out.Writes)]
			} else {
				cv.outputs = make([]outKey, len(out.Writes))
			}
			for i, w := range out.Writes {
				cv.outputs[i] = outKey{w.Path, w.Time}
			}
			rec.versions = append(rec.versions, cv)
			rec.matched = version == 0 && rec.digest != 0 && out.Digest() == rec.digest
			n.logRun(now, rec, version, &out)
			n.applyChanges(now, changes)
			n.lastWrites = out.Writes // replicated with the call's record
			return true
		}
	}
	fs.Errors++
	n.stats.CallErrors++
	rec.versions = append(rec.versions, callVersion{version: version})
	rec.lastErr = out.Err
	n.logRun(now, rec, version, &out)
	return false
}

func (n *Node) sendResult(s *session, rec *callRec) {
	if n.matchedResult(rec) {
		n.stats.CallsMatched++
		n.send(s, &wire.Message{Kind: wire.KindCallResult, CallResult: wire.CallResult{
			ID: wire.CallID{Creator: rec.call.ID.Creator, Seq: rec.call.ID.Seq}, Status: wire.CallOK, Matched: true}})
		return
	}
	res := n.callResult(rec, true)
	if res.Status == wire.CallOK {
		// The caller gets the output values with the result, watched or
		// not, so its client can compare them with its prediction.
		vals := n.resVals[:0]
		for _, o := range res.Outputs {
			if v, ok := n.store.Get(o.Path, netcode.Time(o.Time)); ok {
				vals = append(vals, toWire(v))
			}
		}
		if len(vals) > 0 {
			n.send(s, &wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: vals}})
		}
		clear(vals) // the scratch keeps no value alive
		n.resVals = vals[:0]
	}
	n.send(s, &wire.Message{Kind: wire.KindCallResult, CallResult: res})
}

// matchedResult reports whether rec's caller may be answered with a
// matched result: it gave the digest of its prediction, the call's only
// version is its first run, whose outcome has that digest, and every
// output value is stored and valid, as the Values message of a full
// result would have told it. Anything else (a re-run, an output pending
// or invalid, an event-free output the store no longer has) is answered in
// full, so a caller never takes a prediction for the authority's outcome
// when it is not.
func (n *Node) matchedResult(rec *callRec) bool {
	if !rec.matched || rec.lastErr != nil || len(rec.versions) != 1 {
		return false
	}
	for _, k := range rec.versions[0].outputs {
		v, ok := n.store.Get(k.path, k.t)
		if v.Flags&netcode.FlagEvent != 0 {
			continue
		}
		if !ok || v.State != netcode.Valid {
			return false
		}
	}
	return true
}

// callResult is rec's latest outcome as a CallResult: ok with the outputs
// (and, with reads, the reads) of its latest version, or failed or
// rejected with its error. Its slices are scratch that the next call
// reuses: encode the result (send) before calling it again.
func (n *Node) callResult(rec *callRec, reads bool) wire.CallResult {
	res := wire.CallResult{ID: wire.CallID{Creator: rec.call.ID.Creator, Seq: rec.call.ID.Seq}}
	if rec.lastErr != nil {
		res.Status = wire.CallFailed
		if rec.refused {
			res.Status = wire.CallRejected
		}
		res.Error = rec.lastErr.Error()
	} else if len(rec.versions) > 0 {
		last := rec.versions[len(rec.versions)-1]
		res.Reads, res.Outputs = n.resReads[:0], n.resOuts[:0]
		for _, l := range last.reads[:len(last.reads)*btoi(reads)] {
			res.Reads = append(res.Reads, wire.Lock{Path: l.Path, Start: wire.Time(l.Start), End: wire.Time(l.End)})
		}
		for _, k := range last.outputs {
			res.Outputs = append(res.Outputs, wire.ValueRef{Path: k.path, Time: wire.Time(k.t)})
		}
		n.resReads, n.resOuts = res.Reads, res.Outputs
	}
	return res
}

func (n *Node) funcStat(name string) *FuncStats {
	fs := n.funcStats[name]
	if fs == nil {
		fs = &FuncStats{}
		n.funcStats[name] = fs
	}
	return fs
}

// maxVersions bounds how often one call is re-run.
const maxVersions = 16

// processReruns re-runs, in time order, every queued call none of whose
// versions is still fully valid. A re-run's own changes may queue more.
func (n *Node) processReruns(now int64) {
	if len(n.rerunHeld) > 0 && n.HasQuorum() {
		n.rerunQueue = append(n.rerunQueue, n.rerunHeld...)
		clear(n.rerunHeld)
		n.rerunHeld = n.rerunHeld[:0]
	}
	if len(n.rerunWaits) > 0 {
		n.rerunQueue = append(n.rerunQueue, n.rerunWaits...)
		clear(n.rerunWaits)
		n.rerunWaits = n.rerunWaits[:0]
	}
	for len(n.rerunQueue) > 0 {
		slices.SortFunc(n.rerunQueue, func(a, b *callRec) int {
			if a.call.Time != b.call.Time {
				if a.call.Time < b.call.Time {
					return -1
				}
				return 1
			}
			if a.call.ID.Creator != b.call.ID.Creator {
				return int(int64(a.call.ID.Creator) - int64(b.call.ID.Creator))
			}
			return int(int64(a.call.ID.Seq) - int64(b.call.ID.Seq))
		})
		rec := n.rerunQueue[0]
		n.rerunQueue = n.rerunQueue[1:]
		rec.queued = false
		waited := rec.waitSince
		rec.waitSince = 0
		if rec.dead || rec.node != n.cfg.NodeID || n.effective(rec) {
			continue // another authority re-runs the calls it runs
		}
		if !n.HasQuorum() {
			// Without a quorum, none: held until the node serves again
			// with its state (its shell replaces it otherwise). Dropped,
			// a confirmed call whose output a late value invalidated
			// would never run again (TestClusterProperties seed 219).
			rec.queued = true
			n.rerunHeld = append(n.rerunHeld, rec)
			continue
		}
		if len(rec.versions) >= maxVersions {
			// Given up: tell the caller its call no longer stands rather
			// than leave it believing the last answer.
			if !rec.abandoned {
				rec.abandoned = true
				n.stats.RerunsAbandoned++
				n.logEntry(archive.Entry{Kind: archive.EntryAbandon, Now: now, Call: netcode.Call{ID: rec.call.ID}})
				rec.lastErr, rec.refused = fmt.Errorf("authority: call re-run %d times; its outputs no longer stand", maxVersions), false
				n.replicateCall(rec, nil)
				n.answer(now, rec)
			}
			continue
		}
		if rec.call.Time <= max(n.store.Horizon(), n.closed) {
			n.stats.RerunsTooLate++
			continue // past this node's closed time: it promised the others nothing more below it
		}
		// A record a peer replicated may hold no version: a call that
		// failed where it ran (its result carries no outputs) wrote
		// nothing that can turn invalid, so there is nothing to re-run; a
		// call whose outputs never got out of a failed runner (taken over
		// here) runs for the first time, at version 0.
		var next uint32
		if k := len(rec.versions); k > 0 {
			next = rec.versions[k-1].version + 1
		} else if rec.lastErr != nil {
			continue
		}
		if n.catchingUp(n.recKey(rec)) {
			// Its range came to this node, which is still catching up
			// on it (handoff.go): run it once the range's values are in.
			n.stats.RerunsWaited++
			rec.queued = true
			n.rerunWaits = append(n.rerunWaits, rec)
			continue
		}
		if n.awaitsPeer(now, waited, rec) {
			n.stats.RerunsWaited++
			rec.queued = true
			n.rerunWaits = append(n.rerunWaits, rec)
			continue
		}
		n.stats.Reruns++
		rec.stats.Reruns++
		n.run(now, rec, next)
		n.noteRerun(now, rec)
		n.replicateCall(rec, n.lastWrites)
		n.answer(now, rec)
	}
	n.rerunQueue = n.rerunQueue[:0]
}

// rerunWait bounds how long a re-run waits for peers' re-runs
// (awaitsPeer): a quarter of MaxChangeAge.
func (n *Node) rerunWait() int64 { return int64(n.cfg.Store.MaxChangeAge) / 4 }

// awaitsPeer reports whether rec's re-run should wait for a tick: a path
// its latest run read holds, after the latest valid value before the read
// time, an invalid value of a call that a live peer runs and is still to
// re-run (none of its versions valid, above that peer's closed time). Run
// now, rec would read past that value, and run again when the peer's
// re-run arrives: a cascade that crosses between nodes (calls of clients
// of two nodes bumping one counter, a late value far back) would re-run
// every later call once per crossing, and a call re-run maxVersions times
// is given up, its confirmed outputs lost. Waiting, each call runs again
// about once per change of what it reads. It waits at most rerunWait from
// the first time (since, 0 if it has not waited yet; rec.waitSince while
// it waits), and only while this node's closed time cannot reach rec's
// write time by then (closedBound), so the re-run still happens.
func (n *Node) awaitsPeer(now, since int64, rec *callRec) bool {
	k := len(rec.versions)
	if k == 0 || len(n.peerRuns) == 0 || len(rec.versions[k-1].reads) == 0 {
		return false
	}
	if since == 0 {
		since = now
	}
	until := since + n.rerunWait()
	if now >= until || rec.call.Time <= n.closedBound(until) {
		return false
	}
	for _, l := range rec.versions[k-1].reads {
		waits := false
		n.store.History(l.Path, func(v netcode.PathValue) bool {
			if v.Time.Compare(l.End) >= 0 {
				return false
			}
			if v.Time.Compare(l.Start) < 0 {
				return true
			}
			switch v.State {
			case netcode.Valid:
				waits = false
			case netcode.Invalid:
				waits = waits || n.peerRerunDue(v.Time)
			}
			return true
		})
		if waits {
			rec.waitSince = since
			return true
		}
	}
	return false
}

// peerRerunDue reports whether the value at t, invalid here, is an output
// of a call that a live peer runs and is still to re-run.
func (n *Node) peerRerunDue(t netcode.Time) bool {
	return n.recRerunDue(n.peerRuns[runKey{t.Creator, t.Nanos}])
}

// recRerunDue reports whether pr is a call that a live peer runs and is
// still to re-run: no version of it valid here, above that peer's closed
// time.
func (n *Node) recRerunDue(pr *callRec) bool {
	if pr == nil || pr.dead || pr.node == n.cfg.NodeID || pr.lastErr != nil || len(pr.versions) == 0 {
		return false
	}
	p := n.peers[pr.node]
	if p == nil || !p.up || p.out == nil || p.out.state == closing || pr.call.Time <= p.closed {
		return false
	}
	return !n.effective(pr)
}

// effective reports whether some stored version of the call has all its
// outputs valid (or pending): then nothing needs re-running.
func (n *Node) effective(rec *callRec) bool {
	for _, v := range rec.versions {
		if len(v.outputs) == 0 {
			continue
		}
		ok := true
		for _, k := range v.outputs {
			// An output not here is an event a replica's catch-up did
			// not carry (events are not kept as history): it decides
			// nothing about the call's state.
			if pv, found := n.store.Get(k.path, k.t); found && pv.State == netcode.Invalid {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// --- raw writes ---

func (n *Node) write(now, arrived int64, s *session, w *wire.Write) {
	if n.notDurable != "" {
		n.stats.NotDurable++
		n.noteRefusal(s, CauseNotDurable, "not durable: "+n.notDurable)
		n.send(s, &wire.Message{Kind: wire.KindError, Error: wire.Error{Code: CodeRefused, Text: n.wireText("not durable: " + n.notDurable)}})
		return
	}
	if !n.HasQuorum() {
		n.stats.NoQuorum++
		n.noteRefusal(s, CauseNoQuorum, "no quorum: write refused")
		n.send(s, &wire.Message{Kind: wire.KindError, Error: wire.Error{Code: CodeOverload, Text: "no quorum: write refused"}})
		return
	}
	if !s.writes.take(arrived, n.cfg.Limits.WritesPerSecond, float64(len(w.Items))) {
		n.refuse(arrived, s, CodeRateLimit, fmt.Sprintf("over %.0f written values per second", n.cfg.Limits.WritesPerSecond))
		return
	}
	vals := make([]netcode.PathValue, 0, len(w.Items))
	for i := range w.Items {
		it := &w.Items[i]
		if err := n.writeRule(s.creator, s.player, it.Path); err != nil {
			n.stats.WritesRefused++
			n.refuse(arrived, s, CodePermission, err.Error())
			return
		}
		if owners, all := n.ownersOf(it.Path); !all && !slices.Contains(owners, n.cfg.NodeID) {
			n.stats.WritesRefused++
			n.refuse(arrived, s, CodeRefused, fmt.Sprintf("write %s: its range is owned by authorities %v, not this one", it.Path, owners))
			return
		}
		if it.Time.Creator != s.creator {
			n.stats.WritesRefused++
			n.refuse(arrived, s, CodeRefused, fmt.Sprintf("write %s: creator %d is not this session's %d", it.Path, it.Time.Creator, s.creator))
			return
		}
		pv := netcode.PathValue{Path: it.Path, Time: netcode.Time(it.Time), Value: it.Value, Flags: netcode.Flags(it.Flags) & netcode.FlagEvent}
		for _, l := range it.Locks {
			pv.Locks = append(pv.Locks, netcode.ReadLock{Path: l.Path, Start: netcode.Time(l.Start), End: netcode.Time(l.End)})
		}
		vals = append(vals, pv)
	}
	changes, err := n.store.InsertBatch(now, vals)
	if err != nil {
		// A path, a lock, a size or a time the store refuses.
		n.stats.WritesRefused += uint64(len(vals))
		n.refuse(arrived, s, CodeRefused, err.Error())
		return
	}
	n.stats.Writes += uint64(len(vals))
	n.logWrite(now, vals)
	n.applyChanges(now, changes)
	n.replicate(vals)
}

// expireLater files rec by write time for Tick to forget at finality.
// Calls arrive in nearly increasing time, so the insertion point is found
// from the end.
func (n *Node) expireLater(rec *callRec) {
	i := len(n.callExpiry)
	for i > 0 && n.callExpiry[i-1].call.Time > rec.call.Time {
		i--
	}
	n.callExpiry = slices.Insert(n.callExpiry, i, rec)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
