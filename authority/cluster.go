package authority

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// ClusterConfig makes a node one of several authorities owning the same
// ranges of paths (see the package documentation, "Clusters").
type ClusterConfig struct {
	// Key, at least MinClusterKeyBytes, authenticates authorities to each
	// other: a peer's Hello carries a token made with it. Empty: the node
	// takes no peers (a cluster of one). Keep the transport encrypted
	// (Transport.Secret) so the token is not read off the wire.
	Key []byte
	// Size is the number of authorities in the cluster. A node that sees
	// fewer than a majority of them alive (itself included) has no
	// quorum: it refuses calls and raw writes, re-runs nothing and takes
	// over nothing, so the two sides of a partition never both decide;
	// once it has a majority again it waits to hear from every live peer:
	// if one took its calls over meanwhile, its state is stale
	// (NeedsReset) and its shell starts it afresh, to catch up from the
	// others; if none did (nobody had a quorum), it keeps its state. Zero:
	// no quorum rule (a partition can then leave the sides diverged).
	Size int
	// ConfirmLocal confirms a call to its client as soon as this node
	// has stored it. By default (false) a call is confirmed once every
	// live owner it was replicated to has acknowledged it (or was
	// declared failed, with a quorum left), so a confirmed call survives
	// the loss of the node that ran it; the cost is one round trip
	// between authorities before the CallResult leaves.
	ConfirmLocal bool
	// ResumeWait bounds how long a client resuming the creator of another
	// authority waits for that authority's failure to be detected and its
	// calls taken over (its Hello is answered then, with the creator);
	// after it the client gets a fresh creator. Zero: DefaultResumeWait.
	ResumeWait time.Duration
	// MaxClosedLag bounds how far behind this node's own closed time a
	// live peer's may hold its finality back (a stalled peer must not
	// make memory grow without bound). Zero: 4 × Store.MaxChangeAge.
	MaxClosedLag time.Duration
	// Watch lists prefixes ("" or ending in '/') of ranges this node
	// holds though it does not own them, from the start: its peers send
	// it their values there as to the owners (see Node.WatchRange). A
	// node also watches what its clients watch and what its calls touch.
	Watch []string
}

// Cluster defaults and bounds.
const (
	MinClusterKeyBytes = 16
	MaxClusterSize     = 256
	DefaultResumeWait  = 3 * time.Second
)

func (c *ClusterConfig) validate() error {
	switch {
	case len(c.Key) > 0 && len(c.Key) < MinClusterKeyBytes:
		return fmt.Errorf("%w: Cluster.Key of %d bytes, want at least %d", ErrBadConfig, len(c.Key), MinClusterKeyBytes)
	case c.MaxClosedLag < 0 || c.ResumeWait < 0:
		return fmt.Errorf("%w: negative cluster timing", ErrBadConfig)
	case c.Size < 0 || c.Size > MaxClusterSize:
		return fmt.Errorf("%w: Cluster.Size %d outside [0, %d]", ErrBadConfig, c.Size, MaxClusterSize)
	}
	return nil
}

// ErrNoCluster is returned by ConnectPeer on a node without a cluster key.
var ErrNoCluster = errors.New("authority: not configured for a cluster (Cluster.Key)")

// peerDir says whether a session is a replication stream, and which way.
type peerDir uint8

const (
	notPeer peerDir = iota
	peerIn          // a peer's replication stream to this node
	peerOut         // this node's replication stream to a peer
)

// peerNode is what the node knows of another authority.
type peerNode struct {
	id      uint8
	up      bool     // membership says it is alive
	upSince int64    // when it last came up
	out     *session // this node's replication stream to it, nil when none
	// closed is the peer's closed time, from the latest Sync on its
	// stream to this node (0 until one came), which arrived at syncAt.
	closed, syncAt int64
	// handed lists the failed nodes whose data the peer has handed over
	// on its stream to this node (its latest Sync).
	handed []byte
	// hold is the peer's closed time when its stream fell late or it
	// failed; it holds this node's closed time back until holdUntil
	// (math.MaxInt64 while still late or being taken over), a settling
	// time after the trouble ended, so that the re-runs of what the late
	// stream or the takeover brought, and their cascades across nodes,
	// can still happen.
	hold, holdUntil int64
	// watches are the prefixes the peer watches from this node (its
	// Watches on its current stream here): their values go to it too.
	watches []string
	// watchDone lists the prefixes this node watches that the peer has
	// sent its catch-up of (a WatchDone on its current stream).
	watchDone []string
	// rangeDone holds, per range, the newest entry version of the range
	// markers the peer sent on its current stream (handoff.go).
	rangeDone map[shardmap.Range]uint64
	// seq numbers the Syncs sent on out; acked is the highest the peer
	// acknowledged; syncDue asks for a Sync at the end of the step.
	seq, acked uint64
	syncDue    bool
	// probe is a Sync on out whose acknowledgement is awaited (0: none),
	// sent at probeAt; rtt is the latest round trip of one. They measure
	// how far behind the peer's messages arrive (streamLag).
	probe        uint64
	probeAt, rtt int64
	// tookOver: this node completed a takeover of the peer since it last
	// saw it go down. Its Syncs to the peer then name the peer in
	// TakenOver, which tells the peer, if it lost its quorum meanwhile,
	// that its state is stale (checkVerdict); its acknowledgements name
	// it to every peer, which tells one giving the takeover up to
	// complete it instead (resolveTakeovers).
	tookOver bool
	// ackTaken is the TakenOver list of the peer's latest acknowledgement
	// on this node's stream.
	ackTaken []byte
	// heard: a Sync came from the peer since this node regained its
	// majority (checkVerdict).
	heard bool
	// catchUpDue: the stream to the peer opened while this node's state
	// was in doubt (lost quorum); its catch-up is still to be sent.
	catchUpDue bool
}

// takeover follows a failed peer whose calls and creators this node and
// the others take over once every live peer has handed over what it held
// of them.
type takeover struct {
	since  int64
	done   bool
	doneAt int64 // when done
	// leaving: the failed node came back before the takeover completed
	// here; it is given up once every live peer has acknowledged a Sync
	// that no longer hands the node over without having completed it, or
	// completed if one of them did (resolveTakeovers). need lists the
	// Sync each peer's acknowledgement must reach.
	leaving bool
	need    []peerSeq
}

// resultWait is a CallResult held until the replicas acknowledged the
// call (Cluster.ConfirmLocal off).
type resultWait struct {
	rec   *callRec
	need  []peerSeq // the replicas still to acknowledge, each with the Sync seq whose Ack confirms
	acked int       // replicas that acknowledged it
	// With a shard map: the owners of each range the call wrote, and
	// the replicas that acknowledged.
	groups []rangeGroup
	by     []uint8
}

type peerSeq struct {
	peer uint8
	seq  uint64
}

// caughtUp reports whether the node holds what its live peers hold: each
// has sent its catch-up, ended by a Sync (a node on its own is caught up).
// The first time it is, the node's creator ids start after every one of
// its own id it has heard of, so a restarted node never hands out an id a
// client of its former self may still hold.
func (n *Node) caughtUp() bool {
	if n.synced {
		return true
	}
	for _, p := range n.peers {
		if p.up && (p.closed == 0 || slices.Contains(p.handed, n.cfg.NodeID)) {
			return false // no Sync yet, or the peer still decides whether it took over this node's former self
		}
	}
	n.synced = true
	top := uint32(0)
	for _, m := range []map[uint32]*creatorRec{n.creators, n.peerCreators} {
		for c := range m {
			if uint8(c>>24) == n.cfg.NodeID {
				top = max(top, c&(1<<24-1))
			}
		}
	}
	if top+1 > n.nextCrea && top+1 < 1<<24 {
		n.nextCrea = top + 1
	}
	return true
}

// HasQuorum reports whether the node sees a majority of Cluster.Size
// authorities alive, itself included (always, without a Size), and, if
// it lost its quorum before, has heard from every live peer that none of
// them took its calls over meanwhile (checkVerdict).
func (n *Node) HasQuorum() bool {
	return n.liveMajority() && !n.verdict && !n.needsReset
}

// liveMajority reports whether the node sees a majority of Cluster.Size
// authorities alive, itself included (always, without a Size).
func (n *Node) liveMajority() bool {
	if n.cfg.Cluster.Size == 0 {
		return true
	}
	live := 1
	for _, p := range n.peers {
		if p.up {
			live++
		}
	}
	return live >= n.cfg.Cluster.Size/2+1
}

// NeedsReset reports that the node lost its quorum and a peer took its
// calls over meanwhile, so its state is stale. Its shell replaces it with
// a fresh node, which catches up from the others.
//
// A node that lost its quorum and regained it is not reset on that alone:
// if nobody had a quorum meanwhile (every member cut off from every
// other), nobody took anything over, and the others may be in the same
// case; were they all reset, each fresh node would catch up from fresh
// nodes and the calls a majority confirmed would be gone. So the node
// waits, refusing as without a quorum, for a Sync from every live peer:
// a peer that completed a takeover of it while it was down names it in
// its Syncs' TakenOver (a takeover needs a quorum, and any majority the
// node regains meets it); if none does, the node keeps its state and
// serves again, and the re-runs it held meanwhile run. A peer that
// abandoned the takeover when the node came back, before completing it,
// stops naming the node in HandedOver, so no other peer completes it
// after that; one that completed it before names it in TakenOver, and
// the node is reset even if it has kept its state already.
func (n *Node) NeedsReset() bool { return n.needsReset }

// noteQuorum records a quorum lost, and regained after that.
func (n *Node) noteQuorum() {
	if !n.liveMajority() {
		if n.hadQuorum {
			if !n.lostQuorum {
				n.doubtSince = n.now
			}
			n.lostQuorum = true
		}
		n.verdict = false
		return
	}
	n.hadQuorum = true
	if n.lostQuorum && !n.verdict && !n.needsReset {
		n.verdict = true
		for _, p := range n.peers {
			p.heard = false
		}
	}
	n.checkVerdict()
}

// checkVerdict decides, once the node that lost its quorum has a
// majority again and has heard from every live peer, whether its state is
// stale (a peer took it over: NeedsReset) or still its own (it serves
// again).
func (n *Node) checkVerdict() {
	if !n.verdict {
		return
	}
	if n.takenOver {
		n.verdict, n.needsReset = false, true
		return
	}
	for _, p := range n.peers {
		if p.up && !p.heard {
			return
		}
	}
	n.verdict, n.lostQuorum, n.kept = false, false, true
	n.doubtSpan, n.doubtEnd = n.now-n.doubtSince, n.now
	n.stats.QuorumKept++
	for _, p := range n.livePeers() {
		if t := n.gone[p.id]; p.catchUpDue && (t == nil || !t.leaving) {
			n.startStream(p)
		}
	}
}

// Peer tokens: "RWPR" ‖ node id ‖ the first 16 bytes of
// HMAC-SHA256(Cluster.Key, "rewind peer" ‖ node id).
const peerTokenBytes = 4 + 1 + 16

func (n *Node) peerToken(id uint8) []byte {
	t := append([]byte("RWPR"), id)
	return append(t, n.peerMAC(id)...)
}

func (n *Node) peerMAC(id uint8) []byte {
	m := hmac.New(sha256.New, n.cfg.Cluster.Key)
	m.Write([]byte("rewind peer"))
	m.Write([]byte{id})
	return m.Sum(nil)[:16]
}

// peerFromToken returns the node id a Hello's token names, if it is a
// valid peer token.
func (n *Node) peerFromToken(tok []byte) (uint8, bool) {
	if len(n.cfg.Cluster.Key) == 0 || len(tok) != peerTokenBytes || string(tok[:4]) != "RWPR" {
		return 0, false
	}
	id := tok[4]
	if id == n.cfg.NodeID || !hmac.Equal(tok[5:], n.peerMAC(id)) {
		return 0, false
	}
	return id, true
}

func (n *Node) peer(id uint8) *peerNode {
	p := n.peers[id]
	if p == nil {
		p = &peerNode{id: id}
		n.peers[id] = p
	}
	return p
}

// SetShardMap sets the shard map the node replicates and routes by: each
// value goes to the owners of its path's range (and to the peers that
// watch it), and each call runs on an owner of its shard key's range. Nil
// (the default) makes every peer an owner of every path (one range,
// replicated everywhere), as does a map for the paths none of its ranges
// holds. A peer that the new map makes an owner of a range gets what this
// node holds there at once (its catch-up for the range).
func (n *Node) SetShardMap(now int64, m *shardmap.Map) {
	n.advance(now)
	old := n.shard
	n.shard = m
	if m == nil {
		n.catching = nil
		n.rangeCalls = nil
		return
	}
	n.pruneRangeCalls()
	n.takeRanges(now, old, m)
	n.flushSyncs(now)
}

// owns reports whether peer id owns path under the shard map.
func (n *Node) owns(id uint8, path string) bool {
	owners, all := n.ownersOf(path)
	return all || slices.Contains(owners, id)
}

// PeerUp tells the node that authority id is alive (membership). The
// shell then dials it and hands the session to ConnectPeer.
func (n *Node) PeerUp(now int64, id uint8) {
	n.advance(now)
	if id == n.cfg.NodeID {
		return
	}
	p := n.peer(id)
	if !p.up {
		p.upSince = now
		p.closed = 0 // a new incarnation: its closed time comes with its first Sync
	}
	p.up = true
	n.noteQuorum()
	if t := n.gone[id]; t != nil {
		// Back (restarted, or its partition healed): what it held is
		// what it catches up on. Calls already taken over stay with their
		// new owners. A takeover still waiting for the others' handovers
		// is given up, but only once it is known that no other node
		// completed it (resolveTakeovers): until then this node names the
		// peer no more to the others, and to the peer itself, which waits.
		if t.done {
			delete(n.gone, id)
		} else {
			t.leaving = true
			for _, q := range n.livePeers() {
				if q.id != id {
					q.syncDue = true
					t.need = append(t.need, peerSeq{q.id, q.seq + 1}) // the Sync flushSyncs sends at the end of this step
				}
			}
			n.resolveTakeovers(now)
		}
	}
}

// PeerDown tells the node that authority id has failed or left
// (membership). Its stream to the node is forgotten, results no longer
// wait for it, and its calls and creators are taken over once every live
// peer has handed over what it holds of them.
func (n *Node) PeerDown(now int64, id uint8) {
	n.advance(now)
	p := n.peers[id]
	if p == nil || id == n.cfg.NodeID {
		return
	}
	if p.up {
		// A new absence: taken over again only if it completes.
		p.tookOver = false
	}
	p.up = false
	p.handed, p.ackTaken = nil, nil // its closed time stays: it holds this node back until the takeover is done
	n.noteQuorum()
	if p.out != nil {
		n.closeSession(p.out, "peer down")
		p.out = nil
	}
	if t := n.gone[id]; t == nil || t.leaving {
		n.gone[id] = &takeover{since: now}
		// Hand over what this node holds of the failed node to the
		// others, before the Syncs that say so.
		for _, q := range n.livePeers() {
			n.handOver(q.out, id)
		}
	}
	n.checkWaits(now)
	n.checkTakeovers(now)
}

// livePeers returns the peers that are up with a replication stream, by
// id. The slice is reused by the next call.
func (n *Node) livePeers() []*peerNode {
	out := n.liveScratch[:0]
	for _, p := range n.peers {
		if p.up && p.out != nil && p.out.state != closing {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *peerNode) int { return int(a.id) - int(b.id) })
	n.liveScratch = out
	return out
}

// ConnectPeer registers a transport session the shell dialled to authority
// id and starts this node's replication stream on it: a Hello with the
// peer token, then everything the store holds and every live call record
// (the peer's catch-up), then each value and call record as this node
// accepts them, and Syncs.
func (n *Node) ConnectPeer(now int64, id uint8, remote string) (SessionID, error) {
	n.advance(now)
	if len(n.cfg.Cluster.Key) == 0 {
		return 0, ErrNoCluster
	}
	if id == n.cfg.NodeID {
		return 0, fmt.Errorf("%w: peer %d is this node", ErrBadConfig, id)
	}
	s, err := n.newSession(now, remote)
	if err != nil {
		return 0, err
	}
	s.state, s.dir, s.peer = peering, peerOut, id
	p := n.peer(id)
	p.up = true
	if p.out != nil {
		n.closeSession(p.out, "replaced by a new replication stream")
	}
	p.out, p.seq, p.acked = s, 0, 0
	p.probe = 0
	for _, t := range n.gone {
		for i := range t.need {
			if t.need[i].peer == id {
				t.need[i].seq = 1 // Syncs are numbered afresh on the new stream
			}
		}
	}
	n.send(s, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: n.peerToken(n.cfg.NodeID)}})
	if t := n.gone[id]; n.lostQuorum || t != nil && t.leaving {
		// Its state may be stale (checkVerdict), or the peer's calls'
		// runner is still undecided (resolveTakeovers): the catch-up waits
		// until the node knows it is not, so that records of calls the
		// others took over never reach them from here. Syncs go, for the
		// peers' own verdicts.
		p.catchUpDue = true
	} else {
		n.startStream(p)
	}
	p.syncDue = true
	n.flushSyncs(now)
	return s.id, nil
}

// startStream sends peer p's catch-up on this node's stream to it. Results
// still waiting for p's acknowledgement on a former stream wait for the
// Sync that follows (Syncs are numbered afresh on each stream), as the
// catch-up carries their records.
func (n *Node) startStream(p *peerNode) {
	s := p.out
	p.catchUpDue = false
	n.catchUp(s)
	n.watchesDone(s)
	n.sendRangeMarkers(s, p)
	n.sendInterest(s)
	p.syncDue = true
	for _, w := range n.waits {
		for i := range w.need {
			if w.need[i].peer == p.id {
				w.need[i].seq = p.seq + 1
			}
		}
	}
}

// catchUp sends a new replication stream everything the store holds (every
// stored value, with its locks) and every live call record, so a peer that
// joins or restarts holds what this node holds. Values already there are
// ignored by the peer's store.
func (n *Node) catchUp(s *session) {
	max := n.cfg.Wire.MaxBatch
	if max <= 0 {
		max = wire.DefaultLimits().MaxBatch
	}
	var batch []wire.Value
	flush := func() {
		if len(batch) > 0 {
			n.send(s, &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: batch}})
			n.stats.ReplicatedOut += uint64(len(batch))
			batch = batch[:0]
		}
	}
	p := n.peer(s.peer)
	n.store.PathsUnder("", func(path string) bool {
		if !n.sendsTo(p, path) {
			return true
		}
		// Events too: a call's record names them among its outputs, and
		// a call whose outputs are not all here looks undone.
		n.store.History(path, func(v netcode.PathValue) bool {
			w := toWireLocks(v)
			w.State = wire.State(v.State) // see adoptFinal
			batch = append(batch, w)
			if len(batch) >= max {
				flush()
			}
			return true
		})
		return true
	})
	flush()
	for _, rec := range n.callExpiry {
		if !rec.dead {
			n.sendRecord(s, rec)
		}
	}
}

// handOver sends on s what this node holds of failed node id: the values
// its clients or it wrote and the records of the calls it ran.
func (n *Node) handOver(s *session, id uint8) {
	if s == nil {
		return
	}
	var batch []wire.Value
	p := n.peer(s.peer)
	n.store.PathsUnder("", func(path string) bool {
		if !n.sendsTo(p, path) {
			return true
		}
		n.store.History(path, func(v netcode.PathValue) bool {
			if uint8(v.Time.Creator>>24) == id && v.Time.Nanos > n.store.Horizon() {
				batch = append(batch, toWireLocks(v))
			}
			return true
		})
		return true
	})
	max := n.cfg.Wire.MaxBatch
	if max <= 0 {
		max = wire.DefaultLimits().MaxBatch
	}
	for len(batch) > 0 {
		k := min(len(batch), max)
		n.send(s, &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: batch[:k]}})
		n.stats.ReplicatedOut += uint64(k)
		batch = batch[k:]
	}
	for _, rec := range n.callExpiry {
		if !rec.dead && rec.node == id {
			n.sendRecord(s, rec)
		}
	}
	n.peer(s.peer).syncDue = true
}

func toWireLocks(v netcode.PathValue) wire.Value {
	w := toWire(v)
	w.State = 0 // the receiver decides validity itself
	if len(v.Locks) > 0 {
		w.Locks = make([]wire.Lock, len(v.Locks))
		for i, l := range v.Locks {
			w.Locks[i] = wire.Lock{Path: l.Path, Start: wire.Time(l.Start), End: wire.Time(l.End)}
		}
	}
	return w
}

// replicate sends raw values this node accepted to the owners of their
// paths.
func (n *Node) replicate(vals []netcode.PathValue) {
	for _, p := range n.livePeers() {
		n.sendValues(p, vals)
	}
}

// sendValues sends to peer p, in one Write, the values of vals it owns,
// with their locks; it reports whether there were any.
func (n *Node) sendValues(p *peerNode, vals []netcode.PathValue) bool {
	items, locks := n.replScratch[:0], n.lockScratch[:0]
	for i := range vals {
		v := &vals[i]
		if !n.sendsTo(p, v.Path) {
			continue
		}
		w := toWire(*v)
		w.State = 0 // the receiver decides validity itself
		if len(v.Locks) > 0 {
			k := len(locks)
			for _, l := range v.Locks {
				locks = append(locks, wire.Lock{Path: l.Path, Start: wire.Time(l.Start), End: wire.Time(l.End)})
			}
			w.Locks = locks[k:len(locks):len(locks)]
		}
		items = append(items, w)
	}
	sent := len(items) > 0
	if sent {
		n.send(p.out, &wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: items}})
		n.stats.ReplicatedOut += uint64(len(items))
	}
	clear(items)
	n.replScratch, n.lockScratch = items[:0], locks[:0]
	return sent
}

// replicateCall sends a call's latest run to every live peer: the Call,
// then, when it stored outputs, its outputs with their locks in a Write
// right after it (the receiver takes that Write for the call's new
// version), or else its CallResult (a failure, or no output of the peer's).
// outputs are the run's written values (nil: read them from the store).
func (n *Node) replicateCall(rec *callRec, outputs []netcode.PathValue) {
	for _, p := range n.livePeers() {
		n.sendCall(p.out, rec)
		if rec.lastErr == nil && len(outputs) > 0 && n.sendValues(p, outputs) {
			continue
		}
		n.send(p.out, &wire.Message{Kind: wire.KindCallResult, CallResult: n.callResult(rec, false)})
	}
}

func (n *Node) sendCall(s *session, rec *callRec) {
	c := rec.call
	n.send(s, &wire.Message{Kind: wire.KindCall, Call: wire.Call{
		ID: wire.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq}, Name: c.Name, Args: c.Args,
		Time: wire.Time{Nanos: c.Time}, ViewDelay: c.ViewDelay, Runner: rec.node}})
}

func (n *Node) sendRecord(s *session, rec *callRec) {
	n.sendCall(s, rec)
	// The outcome without the reads: they explain a client's
	// misprediction, and a replica answers a call from its record only
	// after a failover.
	n.send(s, &wire.Message{Kind: wire.KindCallResult, CallResult: n.callResult(rec, false)})
}

// advanceClosed moves this node's closed time on at a Tick: it sends no
// value stamped before it, so it re-runs only calls later than it (new
// calls and raw writes are at least now - MaxChangeAge anyway). It is the
// finality horizon of its own clock, now - MaxChangeAge - FinalitySkew,
// except while a live peer's Syncs are late (more than FinalitySkew/2
// since the last): a late stream may still bring values stamped from that
// peer's closed time on, which can invalidate this node's calls there, so
// the closed time waits at the peer's and those calls can still be re-run.
// It moves only here, after the tick's re-runs, so the re-runs of what a
// late stream brought, once it flows again, are judged by the closed time
// that waited for it. What the node has said is never taken back: the
// closed time never decreases.
func (n *Node) advanceClosed(now int64) {
	if n.lostQuorum {
		return // in doubt: see lagNow
	}
	local := now - int64(n.cfg.Store.MaxChangeAge) - int64(n.cfg.Store.FinalitySkew)
	c := local
	late := int64(n.cfg.Store.FinalitySkew) / 2
	settle := int64(n.cfg.Store.MaxChangeAge)
	for _, p := range n.peers {
		trouble := p.closed > 0 && (p.up && now-p.syncAt > late || n.takingOver(p.id))
		switch {
		case trouble && p.holdUntil != math.MaxInt64:
			p.hold, p.holdUntil = p.closed, math.MaxInt64
		case !trouble && p.holdUntil == math.MaxInt64:
			p.holdUntil = now + settle
			if t := n.gone[p.id]; t != nil && t.done {
				// After a takeover, the failover window comes first:
				// the calls the failed node's clients send again here
				// and at the others (failoverCall) land above it.
				p.holdUntil += n.failoverWindow()
			}
		}
		if now < p.holdUntil {
			c = min(c, p.hold)
		}
		c = min(c, local-n.lagMargin(now, p))
	}
	c = min(c, n.peerDueBound())
	n.closed = max(n.closed, c, n.lagNow(now)-int64(n.cfg.Store.MaxChangeAge)-int64(n.cfg.Store.FinalitySkew)-int64(n.maxClosedLag()))
}

// peerDueBound prunes peerDue and returns the latest closed time it
// allows: just below the earliest call there that its runner, a live
// peer, is still to re-run. That re-run may invalidate this node's later
// calls, which must still be re-run here: a cascade crossing between
// nodes (the clients of two nodes bumping one counter since a late value)
// takes a hop between nodes per alternation, and with the streams slow
// (a loaded machine) it outran the closed time, which moves with the
// clock alone, so the calls it reached last were never re-run and their
// confirmed outputs were lost (Stats.RerunsTooLate). A hold ends when
// the re-run arrives (a version valid here), when the peer's closed time
// passes the call (it will not re-run it), or when the peer goes down;
// like every hold, MaxClosedLag bounds it.
func (n *Node) peerDueBound() int64 {
	bound := int64(math.MaxInt64)
	k := 0
	for _, rec := range n.peerDue {
		if rec.dead || !n.recRerunDue(rec) {
			rec.due = false
			continue
		}
		n.peerDue[k] = rec
		k++
		bound = min(bound, rec.call.Time-1)
	}
	clear(n.peerDue[k:])
	n.peerDue = n.peerDue[:k]
	return bound
}

// lagMargin is how much further back than its own finality horizon this
// node's closed time stays for live peer p: how far behind p's messages
// arrive (streamLag) less FinalitySkew, the margin the horizon keeps
// anyway. A value p accepts at its now is stamped at most MaxChangeAge
// back and reaches this node streamLag later, so it lands above the
// closed time, and a call of this node that it invalidates can still be
// re-run. Without it a stream that flows but late (both nodes' threads
// starved on a loaded machine: Syncs keep coming, each one old) let the
// closed time pass the peer's values before they came, and the calls
// they invalidated here were never re-run, their confirmed outputs lost
// (Stats.RerunsTooLate; the kill runs at load 20-25).
func (n *Node) lagMargin(now int64, p *peerNode) int64 {
	if !p.up || p.out == nil || p.closed == 0 {
		return 0
	}
	return max(0, n.streamLag(now, p)-int64(n.cfg.Store.FinalitySkew))
}

// streamLag bounds how late p's messages arrive here: the latest round
// trip of a Sync on this node's stream to p and its acknowledgement, or
// the age of the one awaited if that is more (a round trip covers the way
// back; p's own stream to this node runs between the same two processes).
func (n *Node) streamLag(now int64, p *peerNode) int64 {
	l := p.rtt
	if p.probe != 0 {
		l = max(l, now-p.probeAt)
	}
	return l
}

// lagNow is the now that MaxClosedLag counts back from: now, except after
// the node lost its quorum and kept its state. While without a quorum (or
// waiting to hear from its peers) the node accepts nothing, re-runs
// nothing and sends nothing new, and its closed time and finality stand
// still (advanceClosed, finalityNow): holding them costs no memory, and
// when every member lost its quorum at once (a split), each one's values
// from before it noticed, unconfirmed, reach the others above their
// horizons, and their re-runs land above every closed time, however long
// the split lasted. For MaxClosedLag after it kept its state, the node
// counts the lag from now less the time it spent without a quorum, so
// that the peers' closed times, which stood still too, do not let its
// finality jump past what their catch-ups bring.
func (n *Node) lagNow(now int64) int64 {
	if n.doubtEnd > 0 && now < n.doubtEnd+int64(n.maxClosedLag()) {
		return now - n.doubtSpan
	}
	return now
}

// closedBound is the latest closed time this node can have moved to at a
// tick at or before at (at most rerunWait from now): its own finality
// horizon then, held at each peer's hold while that hold lasts (a hold
// still open lasts a settling time after its trouble ends, longer than
// rerunWait), and never below what it already is or MaxClosedLag behind.
func (n *Node) closedBound(at int64) int64 {
	if n.lostQuorum {
		return n.closed
	}
	local := at - int64(n.cfg.Store.MaxChangeAge) - int64(n.cfg.Store.FinalitySkew)
	c := local
	for _, p := range n.peers {
		if p.holdUntil > at {
			c = min(c, p.hold)
		}
	}
	return max(n.closed, c, n.lagNow(at)-int64(n.cfg.Store.MaxChangeAge)-int64(n.cfg.Store.FinalitySkew)-int64(n.maxClosedLag()))
}

// failoverWindow is how long after a takeover is done the node accepts
// calls that the failed node's clients, resumed here, send again older
// than the change window (failoverCall): MaxChangeAge. Every survivor's
// closed time waits at the failed node's for this window and then the
// settling time (MaxChangeAge) that follows any hold (advanceClosed). The
// takeovers complete on the survivors within a Sync's travel of each other
// (each waits for the others' handovers), so the values of the calls
// accepted in the window, and the re-runs they cause from node to node,
// reach every survivor while its closed time still waits below them.
func (n *Node) failoverWindow() int64 { return int64(n.cfg.Store.MaxChangeAge) }

// takingOver reports whether failed peer id's takeover is still waiting
// for the others' handovers: until it is done, what they hand over may
// bring the failed peer's last values, stamped from its last closed time
// on, so that closed time still holds this node back.
func (n *Node) takingOver(id uint8) bool {
	t := n.gone[id]
	return t != nil && !t.done
}

func (n *Node) maxClosedLag() time.Duration {
	if lag := n.cfg.Cluster.MaxClosedLag; lag > 0 {
		return lag
	}
	return 4 * n.cfg.Store.MaxChangeAge
}

// finalityNow is the now the store's finality advances to: the node's own
// now, held back so that its horizon stays at or below its own closed time
// and every live peer's (a value a peer may still send is never older than this
// node's horizon). A peer whose closed time is not known yet (it just
// came up, or this node just started and is catching up from it) holds
// finality where it is. Neither holds it back more than MaxClosedLag: a
// stalled peer must not make memory grow without bound.
func (n *Node) finalityNow(now int64) int64 {
	t := now
	lag := n.maxClosedLag()
	span := int64(n.cfg.Store.MaxChangeAge) + int64(n.cfg.Store.FinalitySkew)
	if n.lostQuorum {
		return min(t, n.store.Horizon()+span) // in doubt: see lagNow
	}
	ln := n.lagNow(now)
	if len(n.peers) > 0 && n.closed > 0 {
		// Nor past this node's own closed time, below which it may still
		// re-run calls (it moves on after each tick's re-runs).
		t = min(t, n.closed+span)
	}
	if n.catchingAny() && now-n.catchSince < int64(lag) {
		// Nor while catching up on a range the map gave it (handoff.go).
		t = min(t, n.store.Horizon()+span)
	}
	for _, p := range n.peers {
		switch {
		case !p.up && !n.takingOver(p.id):
		case p.up && !n.watchesCaughtUp(p) && now-p.upSince < int64(lag):
			// Nor while a peer has not sent what it holds under the
			// prefixes this node watches: what it sends must land above
			// the horizon, where its locks are judged here.
			t = min(t, n.store.Horizon()+span)
		case p.closed > 0:
			t = min(t, max(p.closed+span, ln-int64(lag)))
		case p.up && now-p.upSince < int64(lag):
			t = min(t, n.store.Horizon()+span)
		}
	}
	return t
}

// handedList is what this node's Syncs say it has handed over: every
// failed node it took stock of.
func (n *Node) handedList() []byte {
	if len(n.gone) == 0 {
		return nil
	}
	out := make([]byte, 0, len(n.gone))
	for id, t := range n.gone {
		if !t.leaving {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// handedTo is handedList as said to peer p: without p itself, and empty
// while p's catch-up is still to be sent (the catch-up is what hands the
// failed nodes' values and records over on a new stream); only p itself
// while this node is still deciding whether p is taken over
// (resolveTakeovers).
func (n *Node) handedTo(p *peerNode) []byte {
	if t := n.gone[p.id]; t != nil && t.leaving {
		return []byte{p.id} // still deciding whether p is taken over: p waits
	}
	if p.catchUpDue {
		return nil
	}
	out := n.handedList()
	if i := slices.Index(out, p.id); i >= 0 {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// takenTo is what this node's Syncs to peer p say it has taken over: p
// itself if this node completed a takeover of p since it last saw p go
// down (p's state is stale, should p have lost its quorum meanwhile).
func (n *Node) takenTo(p *peerNode) []byte {
	if p.tookOver {
		return []byte{p.id}
	}
	return nil
}

// takenList is what this node's acknowledgements say it has taken over:
// every peer whose takeover it completed since it last saw that peer go
// down (resolveTakeovers).
func (n *Node) takenList() []byte {
	var out []byte
	for _, q := range n.peers {
		if q.tookOver {
			out = append(out, q.id)
		}
	}
	slices.Sort(out)
	return out
}

// flushSyncs sends a Sync on every replication stream that asked for one.
func (n *Node) flushSyncs(now int64) {
	for _, p := range n.livePeers() {
		if !p.syncDue {
			continue
		}
		p.syncDue = false
		p.seq++
		if p.probe == 0 {
			p.probe, p.probeAt = p.seq, now
		}
		n.send(p.out, &wire.Message{Kind: wire.KindSync, Sync: wire.Sync{
			Closed: n.closed, Seq: p.seq, HandedOver: n.handedTo(p), TakenOver: n.takenTo(p)}})
	}
}

// handlePeer handles a message on a replication stream.
func (n *Node) handlePeer(now int64, s *session, m *wire.Message) {
	switch {
	case m.Kind == wire.KindPing:
		n.send(s, &wire.Message{Kind: wire.KindPing, Ping: m.Ping})
	case s.dir == peerOut && m.Kind == wire.KindWelcome:
	case s.dir == peerOut && m.Kind == wire.KindSync:
		p := n.peer(s.peer)
		if p.out == s && m.Sync.Ack > p.acked {
			p.acked = m.Sync.Ack
			if p.probe != 0 && p.acked >= p.probe {
				p.rtt, p.probe = now-p.probeAt, 0
			}
			p.ackTaken = append(p.ackTaken[:0], m.Sync.TakenOver...)
			n.checkWaits(now)
			n.resolveTakeovers(now)
		}
	case s.dir == peerOut && m.Kind == wire.KindError:
		n.closeSession(s, fmt.Sprintf("peer %d refused the stream: %s", s.peer, m.Error.Text))
	case s.dir == peerIn && m.Kind == wire.KindWrite:
		if rec := s.lastCall; rec != nil {
			s.lastCall = nil
			n.peerOutputs(rec, m.Write.Items)
		}
		n.insertReplica(now, m.Write.Items)
	case s.dir == peerIn && m.Kind == wire.KindCall && m.Call.Relay == n.cfg.NodeID:
		// The answer to a call this node relayed: its result follows.
		s.lastCall = nil
		s.answerFor = &wire.CallID{Creator: m.Call.ID.Creator, Seq: m.Call.ID.Seq}
	case s.dir == peerIn && m.Kind == wire.KindCall && m.Call.Relay != 0:
		s.lastCall = nil
		n.relayedCall(now, s.peer, &m.Call)
	case s.dir == peerIn && m.Kind == wire.KindCall:
		s.lastCall = n.peerCall(now, s.peer, &m.Call)
	case s.dir == peerIn && m.Kind == wire.KindCallResult && s.answerFor != nil && *s.answerFor == m.CallResult.ID:
		s.answerFor = nil
		n.relayResult(s, &m.CallResult)
	case s.dir == peerIn && m.Kind == wire.KindCallResult:
		s.lastCall = nil
		n.peerResult(&m.CallResult)
	case s.dir == peerIn && m.Kind == wire.KindValues:
		s.relayVals = slices.Clone(m.Values.Items)
		for i := range s.relayVals {
			s.relayVals[i].Value = slices.Clone(s.relayVals[i].Value)
		}
	case s.dir == peerIn && m.Kind == wire.KindWatch:
		n.peerWatch(s, &m.Watch)
	case s.dir == peerIn && m.Kind == wire.KindWatchDone:
		n.peerWatchDone(s, m.WatchDone.Prefix)
	case s.dir == peerIn && m.Kind == wire.KindSync:
		// Membership alone says a peer is up (PeerUp): a Sync on its
		// stream does not, or a node cut off from the others before it
		// heard of a peer's restart would count that peer, whose stream
		// reached it first, towards its quorum, and confirm calls that
		// nobody else holds (TestClusterProperties seed 1067).
		p := n.peer(s.peer)
		p.closed = max(p.closed, m.Sync.Closed)
		p.syncAt = now
		p.handed = append(p.handed[:0], m.Sync.HandedOver...)
		if slices.Contains(m.Sync.TakenOver, n.cfg.NodeID) && (n.lostQuorum || n.kept) {
			// Stale: a peer took this node's calls over while it was
			// without a quorum.
			n.takenOver = true
			n.needsReset = n.needsReset || n.kept
		}
		// A peer still deciding whether it takes this node over names
		// it in HandedOver: the verdict waits for its next Sync.
		p.heard = !slices.Contains(m.Sync.HandedOver, n.cfg.NodeID)
		n.checkVerdict()
		n.resolveTakeovers(now)
		n.send(s, &wire.Message{Kind: wire.KindSync, Sync: wire.Sync{Ack: m.Sync.Seq, TakenOver: n.takenList()}})
		n.checkTakeovers(now)
	default:
		n.fail(s, CodeProtocol, fmt.Sprintf("unexpected %v on a replication stream", m.Kind))
	}
}

// insertReplica stores values a peer accepted. Their times were checked
// by the peer against its own window; here they need only be newer than
// this node's horizon, which the peers' closed times hold back for them.
func (n *Node) insertReplica(now int64, items []wire.Value) {
	for i := range items {
		it := &items[i]
		pv := netcode.PathValue{Path: it.Path, Time: netcode.Time(it.Time), Value: it.Value, Flags: netcode.Flags(it.Flags) & netcode.FlagEvent}
		for _, l := range it.Locks {
			pv.Locks = append(pv.Locks, netcode.ReadLock{Path: l.Path, Start: netcode.Time(l.Start), End: netcode.Time(l.End)})
		}
		// The store checks a write against [now - MaxChangeAge, now +
		// MaxFutureSkew]; a peer's value is judged at a now inside that
		// window for it (and never before the horizon, which the store
		// checks apart).
		at := min(max(now, pv.Time.Nanos-int64(n.cfg.Store.MaxFutureSkew)), pv.Time.Nanos+int64(n.cfg.Store.MaxChangeAge))
		changes, err := n.store.Insert(at, pv)
		if err != nil {
			if !errors.Is(err, netcode.ErrTooOld) || !n.adoptFinal(it) {
				n.stats.ReplicaRefused++
			}
			continue
		}
		n.stats.ReplicatedIn++
		n.applyChanges(now, changes)
	}
}

// peerCall records a call a peer ran (or took over). Its latest outcome
// follows: a CallResult, or, for a run that stored outputs, a Write of
// them (peerOutputs).
func (n *Node) peerCall(now int64, from uint8, c *wire.Call) *callRec {
	id := netcode.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq}
	rec := n.calls[id]
	if rec == nil {
		if c.Time.Nanos <= n.store.Horizon() {
			return nil // already final here: nothing left to decide about it
		}
		rec = &callRec{
			call:  netcode.Call{ID: id, Name: c.Name, Args: slices.Clone(c.Args), Time: c.Time.Nanos, ViewDelay: c.ViewDelay},
			owner: n.peerCreator(now, id.Creator, c.Time.Nanos, from),
			stats: n.funcStat(c.Name),
		}
		n.calls[id] = rec
		n.peerRuns[runKey{id.Creator, rec.call.Time}] = rec
		n.expireLater(rec)
	}
	// The runner named by the record (a call caught up or handed over may
	// run elsewhere), or the sender. A call taken over here stays here.
	runner := c.Runner
	if runner == 0 {
		runner = from
	}
	if rec.node != n.cfg.NodeID || runner == n.cfg.NodeID {
		rec.node = runner
	}
	return rec
}

// peerOutputs records a version of a call from the values of a Write that
// followed its Call: they are its outputs, all at the call's write time.
func (n *Node) peerOutputs(rec *callRec, items []wire.Value) {
	cv := callVersion{version: items[0].Time.Version}
	for _, it := range items {
		if it.Time.Nanos != rec.call.Time || it.Time.Version != cv.version || it.Time.Creator != rec.call.ID.Creator {
			return // not the call's outputs: plain values
		}
		cv.outputs = append(cv.outputs, outKey{it.Path, netcode.Time(it.Time)})
	}
	if k := len(rec.versions); k > 0 && rec.versions[k-1].version > cv.version {
		return // an older version (a peer's catch-up of a call re-run here since)
	}
	if k := len(rec.versions); k == 0 || rec.versions[k-1].version != cv.version || rec.lastErr != nil {
		rec.versions = append(rec.versions, cv)
	}
	rec.lastErr, rec.refused = nil, false
}

// peerResult records the latest outcome of a call a peer ran.
func (n *Node) peerResult(r *wire.CallResult) {
	rec := n.calls[netcode.CallID{Creator: r.ID.Creator, Seq: r.ID.Seq}]
	if rec == nil {
		return
	}
	switch r.Status {
	case wire.CallOK:
		cv := callVersion{}
		if len(r.Outputs) > 0 {
			cv.version = r.Outputs[0].Time.Version
		} else if len(rec.versions) > 0 {
			cv.version = rec.versions[len(rec.versions)-1].version + 1
		}
		for _, o := range r.Outputs {
			cv.outputs = append(cv.outputs, outKey{o.Path, netcode.Time(o.Time)})
		}
		for _, l := range r.Reads {
			cv.reads = append(cv.reads, netcode.ReadLock{Path: l.Path, Start: netcode.Time(l.Start), End: netcode.Time(l.End)})
		}
		if k := len(rec.versions); k > 0 && rec.versions[k-1].version > cv.version {
			return // an older version (a peer's catch-up of a call re-run here since)
		}
		if k := len(rec.versions); k == 0 || rec.versions[k-1].version != cv.version || rec.lastErr != nil {
			rec.versions = append(rec.versions, cv)
		}
		rec.lastErr, rec.refused = nil, false
	default:
		rec.lastErr, rec.refused = errors.New(r.Error), r.Status == wire.CallRejected
		if r.Error == "" {
			rec.lastErr = errors.New("authority: call failed")
		}
	}
}

// peerCreator returns the record of a creator a peer's client holds, so
// that a call's results can follow the creator here if its client resumes
// on this node after the peer failed.
func (n *Node) peerCreator(now int64, creator uint32, w int64, from uint8) *creatorRec {
	if rec := n.creators[creator]; rec != nil {
		rec.lastW = max(rec.lastW, w)
		return rec
	}
	pc := n.peerCreators[creator]
	if pc == nil {
		pc = &creatorRec{creator: creator}
		n.peerCreators[creator] = pc
	}
	pc.lastW = max(pc.lastW, w)
	pc.ended = now // last heard of
	pc.heldBy = from
	return pc
}

// adoptCreator moves a failed peer's creator to this node's resumable
// creators, so a client that held it there resumes it here.
func (n *Node) adoptCreator(now int64, creator uint32) *creatorRec {
	pc := n.peerCreators[creator]
	if pc == nil || !pc.adoptable {
		return nil
	}
	delete(n.peerCreators, creator)
	pc.adoptable = false
	pc.session, pc.ended = 0, now
	pc.adoptedAt, pc.failoverLeft = now, n.cfg.Limits.FailoverCalls
	pc.failoverUntil = 0
	for _, id := range []uint8{pc.heldBy, uint8(creator >> 24)} {
		if t := n.gone[id]; t != nil && t.done {
			pc.failoverUntil = max(pc.failoverUntil, t.doneAt+n.failoverWindow())
		}
	}
	n.creators[creator] = pc
	n.ended = append(n.ended, endedRec{pc, now, pc.endSeq})
	n.endedLive++
	return pc
}

// takeoverAhead reports whether a resume token names a creator that this
// node knows another authority's client holds, and that it may take over
// once that authority is declared failed and taken over: the Hello waits
// for it rather than get a fresh creator (its client's unanswered calls
// would then run a second time).
func (n *Node) takeoverAhead(tok []byte, player string) bool {
	if len(tok) != resumeTokenBytes || len(n.cfg.Cluster.Key) == 0 {
		return false
	}
	creator := binary.BigEndian.Uint32(tok)
	issued := int64(binary.BigEndian.Uint64(tok[4:]))
	if !hmac.Equal(tok[12:], n.resumeMAC(creator, issued, player)) {
		return false
	}
	pc := n.peerCreators[creator]
	return pc != nil && !pc.adoptable
}

// unpark welcomes the parked Hellos whose creator can now be taken over,
// and, afresh, those that waited Cluster.ResumeWait.
func (n *Node) unpark(now int64) {
	if len(n.parked) == 0 {
		return
	}
	wait := n.cfg.Cluster.ResumeWait
	if wait == 0 {
		wait = DefaultResumeWait
	}
	k := 0
	for _, s := range n.parked {
		if s.state != awaitingHello || s.parked == nil || n.sessions[s.id] != s {
			continue
		}
		pc := n.peerCreators[binary.BigEndian.Uint32(s.parked)]
		if late := now-s.parkedAt >= int64(wait); late || pc == nil || pc.adoptable {
			tok := s.parked
			s.parked = nil
			n.welcome(now, s, tok, late)
			continue
		}
		n.parked[k] = s
		k++
	}
	clear(n.parked[k:])
	n.parked = n.parked[:k]
}

// checkTakeovers completes the takeover of every failed peer that every
// live peer has handed over: its calls go to the lowest-id live node (this
// one re-runs those that fall to it), and its creators become resumable
// here.
func (n *Node) checkTakeovers(now int64) {
	for id, t := range n.gone {
		if t.done || t.leaving {
			continue
		}
		ready := true
		for _, p := range n.peers {
			if p.up && p.id != id && !slices.Contains(p.handed, id) {
				ready = false
				break
			}
		}
		if !ready || !n.HasQuorum() {
			continue
		}
		n.completeTakeover(now, id, t)
	}
}

// resolveTakeovers decides each takeover being given up because the
// failed node came back (takeover.leaving). Another node may have
// completed it before it saw the node back, on this node's handover: if
// a live peer's acknowledgement says so (TakenOver), this node completes
// it too. Once every live peer has acknowledged this node's first Sync
// that no longer names the node handed over, without saying so, nobody
// can complete it any more (a takeover completes only on every live
// peer's handover, judged by its latest Sync), and it is given up.
// Meanwhile this node names the failed node in HandedOver only to the
// node itself, whose verdict on its own state waits (checkVerdict), and
// holds its catch-up of the node, so that what the node catches up on
// names the calls' final runner.
func (n *Node) resolveTakeovers(now int64) {
	for id, t := range n.gone {
		if !t.leaving {
			continue
		}
		taken, pending := false, false
		for _, ps := range t.need {
			p := n.peers[ps.peer]
			if !p.up || p.out == nil {
				continue // failed since: it completes nothing more
			}
			taken = taken || slices.Contains(p.ackTaken, id)
			pending = pending || p.acked < ps.seq
		}
		switch {
		case taken:
			n.stats.TakeoversAdopted++
			n.completeTakeover(now, id, t)
		case !pending:
			delete(n.gone, id)
		default:
			continue
		}
		if p := n.peers[id]; p != nil && p.up && p.out != nil {
			if p.catchUpDue && !n.lostQuorum {
				n.startStream(p)
			}
			p.syncDue = true
		}
	}
}

// completeTakeover completes the takeover t of failed peer id: its calls
// go to the lowest-id live node other than id (this one re-runs those
// that fall to it), and its creators become resumable here.
func (n *Node) completeTakeover(now int64, id uint8, t *takeover) {
	t.done, t.doneAt = true, now
	n.stats.Takeovers++
	if q := n.peers[id]; q != nil && q.up && q.out != nil {
		q.syncDue = true // TakenOver names it
	}
	if q := n.peers[id]; q != nil {
		q.tookOver = true
		if q.up {
			delete(n.gone, id) // back already: a later absence is a takeover of its own
		}
	}
	owner := n.cfg.NodeID
	for _, p := range n.peers {
		if p.up && p.id != id && p.id < owner {
			owner = p.id
		}
	}
	for _, rec := range n.callExpiry {
		if rec.dead || rec.node != id {
			continue
		}
		rec.node = n.takeoverOwner(rec, owner, id)
		if rec.node == n.cfg.NodeID && !rec.queued {
			// Re-run now if an output is invalid; later ones come
			// through the store's changes as for any call of ours.
			rec.queued = true
			n.rerunQueue = append(n.rerunQueue, rec)
		}
	}
	for c, pc := range n.peerCreators {
		if uint8(c>>24) == id || pc.heldBy == id {
			pc.adoptable = true
		}
	}
	n.unpark(now)
	n.rerelay(id)
}

// takeoverOwner returns the authority that takes over a failed node's
// call: the lowest-id live owner of its shard key's range, or, when none
// is live (or it has no key), def, the lowest-id live node.
func (n *Node) takeoverOwner(rec *callRec, def, failed uint8) uint8 {
	key := n.recKey(rec)
	if key == "" {
		return def
	}
	owners, all := n.ownersOf(key)
	if all {
		return def
	}
	best := uint8(0)
	for _, o := range owners {
		live := o == n.cfg.NodeID || n.peers[o] != nil && n.peers[o].up
		if live && o != failed && (best == 0 || o < best) {
			best = o
		}
	}
	if best == 0 {
		return def
	}
	return best
}

// checkWaits sends the results whose replicas have all acknowledged the
// call (or failed, or the wait timed out).
func (n *Node) checkWaits(now int64) {
	if len(n.waits) == 0 {
		return
	}
	quorum := n.HasQuorum()
	majority := n.cfg.Cluster.Size/2 + 1
	k := 0
	for i, w := range n.waits {
		j := 0
		for _, ps := range w.need {
			if p := n.peers[ps.peer]; p.acked >= ps.seq && p.out != nil {
				w.acked++
				w.by = append(w.by, ps.peer)
			} else {
				w.need[j] = ps
				j++
			}
		}
		w.need = w.need[:j]
		// With a Size, a majority holding the call is enough (it meets
		// every later majority, and the survivors hand over what they
		// hold when a node fails). Without one, every replica the call
		// went to must have it, or have been declared failed.
		done := len(w.need) == 0
		if w.groups != nil {
			// Sharded: a majority of the owners of each range the call
			// wrote (or every one of them still up).
			done = n.groupsHeld(w.groups, w.by, w.need)
		} else if n.cfg.Cluster.Size > 0 {
			done = w.acked+1 >= majority
		} else if !done && quorum {
			done = true
			for _, ps := range w.need {
				if n.peers[ps.peer].up {
					done = false
				}
			}
		}
		if !done {
			// Acknowledgements come in order: the later calls wait
			// too, and their answers keep the order of the calls.
			k += copy(n.waits[k:], n.waits[i:])
			break
		}
		n.deliver(w.rec)
	}
	clear(n.waits[k:])
	n.waits = n.waits[:k]
}

// awaitReplicas holds rec's result until every live peer has acknowledged
// the record just replicated to it. It reports false when there is nothing
// to wait for (no live peer, or Cluster.ConfirmLocal).
func (n *Node) awaitReplicas(now int64, rec *callRec) bool {
	if n.cfg.Cluster.ConfirmLocal {
		return false
	}
	var need []peerSeq
	for _, p := range n.livePeers() {
		p.syncDue = true
		need = append(need, peerSeq{p.id, p.seq + 1}) // the Sync flushSyncs sends at the end of this step
	}
	if need == nil {
		return false
	}
	w := &resultWait{rec: rec, need: need, groups: n.rangeGroups(rec)}
	if len(w.groups) > 0 && n.groupsHeld(w.groups, nil, need) {
		return false // this node's own copy is a majority of every range it wrote
	}
	n.waits = append(n.waits, w)
	return true
}

// sweepPeerCreators forgets creators of live peers not heard of for
// ResumeWindow plus MaxChangeAge: their client went quiet, and with it
// any call that could be resent.
func (n *Node) sweepPeerCreators(now int64) {
	cut := now - int64(n.cfg.ResumeWindow) - int64(n.cfg.Store.MaxChangeAge)
	for c, pc := range n.peerCreators {
		if pc.ended < cut {
			delete(n.peerCreators, c)
		}
	}
}
