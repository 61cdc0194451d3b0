package authority

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Sharded ranges (see the package documentation, "Clusters"): a call runs
// on an owner of its function's shard key, relayed there by the node its
// client is connected to; a node holds the values of the ranges it owns
// and of the prefixes it watches from its peers; a call is confirmed once
// a majority of the owners of each range it wrote hold it.

// Bounds of sharded routing.
const (
	// MaxNodeWatches bounds the prefixes one node watches from its peers
	// (Cluster.Watch and its clients' watches of prefixes it does not
	// own), and those a peer may ask of it.
	MaxNodeWatches = 256
	// maxHops bounds how often a relayed call is forwarded again by a
	// node that no longer owns its shard key (maps that disagree for a
	// moment): past it the call is rejected, and its relay answers the
	// client so.
	maxHops = 3
	// maxRelayed bounds the relayed calls a node waits on an answer for.
	maxRelayed = 1 << 16
)

// relayRec is a call this node relayed to another authority for its
// client, until the answer comes back.
type relayRec struct {
	call     wire.Call
	to       uint8       // the authority it was sent to
	cr       *creatorRec // its client's creator here: answers go to the session holding it
	answered bool        // answered once (re-runs' answers may follow)
}

// coversPath reports whether one of prefixes ("" or ending in '/') holds
// path.
func coversPath(prefixes []string, path string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// ownersOf returns the owners of path's range; all is true when every
// node owns it: there is no shard map, or no range of it holds the path
// (as an empty map gives every node every path).
func (n *Node) ownersOf(path string) (owners []uint8, all bool) {
	if n.shard == nil {
		return nil, true
	}
	e, ok := n.shard.Lookup(path)
	if !ok {
		return nil, true
	}
	return e.Owners, false
}

// sendsTo reports whether values of path go to peer p: it owns the path's
// range or watches a prefix holding it.
func (n *Node) sendsTo(p *peerNode, path string) bool {
	return n.owns(p.id, path) || coversPath(p.watches, path)
}

// holds reports whether this node holds the values of path: it owns its
// range, or watches it from its peers.
func (n *Node) holds(path string) bool {
	return n.owns(n.cfg.NodeID, path) || coversPath(n.interest, path)
}

// Holds reports whether the node holds the values of path: it owns the
// path's range or watches a prefix holding it (Cluster.Watch, WatchRange,
// its clients' watches).
func (n *Node) Holds(path string) bool { return n.holds(path) }

// heldReady reports whether a run may read or write path here: the node
// owns its range, or watches it and every live peer has sent what it held
// there (a WatchDone after its catch-up), so a read here sees what the
// owners see.
func (n *Node) heldReady(path string) bool {
	if n.owns(n.cfg.NodeID, path) && !n.catchingUp(path) {
		return true
	}
	for _, prefix := range n.interest {
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		ready := true
		for _, p := range n.peers {
			if p.up && !slices.Contains(p.watchDone, prefix) {
				ready = false
				break
			}
		}
		if ready {
			return true
		}
	}
	return false
}

// WatchRange makes the node hold the values of prefix ("" or ending in
// '/') though it does not own them: every peer sends it what it holds
// under prefix and, from then on, every value it accepts there, with its
// locks, as it does to the prefix's owners. A node watches what its calls
// read and what its clients watch; Cluster.Watch lists prefixes watched
// from the start.
func (n *Node) WatchRange(now int64, prefix string) error {
	n.advance(now)
	return n.addInterest(prefix)
}

func (n *Node) addInterest(prefix string) error {
	if prefix != "" {
		if err := netcode.ValidatePrefix(prefix); err != nil || !strings.HasSuffix(prefix, "/") {
			return fmt.Errorf("%w: watched range %q is not a prefix", ErrBadConfig, prefix)
		}
	}
	if coversPath(n.interest, prefix) {
		return nil
	}
	if len(n.interest) >= MaxNodeWatches {
		return fmt.Errorf("%w: more than %d watched ranges", ErrBadConfig, MaxNodeWatches)
	}
	n.interest = append(n.interest, prefix)
	n.stats.RangesWatched++
	for _, p := range n.livePeers() {
		n.send(p.out, &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{prefix}}})
	}
	return nil
}

// sendInterest tells a peer, on this node's new stream to it, every prefix
// this node watches.
func (n *Node) sendInterest(s *session) {
	for i := 0; i < len(n.interest); i += 64 {
		n.send(s, &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: n.interest[i:min(i+64, len(n.interest))]}})
	}
}

// peerWatch records the prefixes a peer watches from this node and sends
// it, on this node's stream to it, what this node holds under them (its
// catch-up for them). With no stream to it yet, the stream's own catch-up
// will carry them.
func (n *Node) peerWatch(s *session, w *wire.Watch) {
	p := n.peer(s.peer)
	var added []string
	for _, prefix := range w.Prefixes {
		if prefix != "" && (netcode.ValidatePrefix(prefix) != nil || !strings.HasSuffix(prefix, "/")) {
			n.fail(s, CodeProtocol, fmt.Sprintf("peer watch of %q: not a prefix", prefix))
			return
		}
		if slices.Contains(p.watches, prefix) {
			continue
		}
		if len(p.watches) >= MaxNodeWatches {
			n.fail(s, CodeLimit, fmt.Sprintf("peer watches more than %d ranges", MaxNodeWatches))
			return
		}
		p.watches = append(p.watches, prefix)
		added = append(added, prefix)
	}
	if p.out == nil || p.out.state == closing {
		return // the stream's catch-up will carry them, and its WatchDones
	}
	for _, prefix := range added {
		n.sendHeld(p.out, prefix, func(path string) bool { return !n.owns(p.id, path) })
	}
	for _, prefix := range w.Prefixes {
		n.send(p.out, &wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: prefix}})
	}
	p.syncDue = true
}

// watchesDone tells a peer, on this node's new stream to it, that its
// catch-up carried every prefix the peer watches here.
func (n *Node) watchesDone(s *session) {
	for _, prefix := range n.peer(s.peer).watches {
		n.send(s, &wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: prefix}})
	}
}

// watchesCaughtUp reports whether peer p has sent its catch-up of every
// prefix this node watches.
func (n *Node) watchesCaughtUp(p *peerNode) bool {
	for _, prefix := range n.interest {
		if !slices.Contains(p.watchDone, prefix) {
			return false
		}
	}
	return true
}

// peerWatchDone records that a peer has sent what it held under a prefix
// this node watches.
func (n *Node) peerWatchDone(s *session, prefix string) {
	p := n.peer(s.peer)
	if r, v, ok := parseRangeMarker(prefix); ok {
		n.peerRangeMarker(p, r, v)
		return
	}
	if !slices.Contains(p.watchDone, prefix) && len(p.watchDone) < MaxNodeWatches {
		p.watchDone = append(p.watchDone, prefix)
	}
}

// sendHeld sends on s every value this node holds under prefix whose path
// want accepts, with its locks and its state here (which lets a receiver
// whose horizon has passed a value take the latest valid one as final).
func (n *Node) sendHeld(s *session, prefix string, want func(path string) bool) {
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
	n.store.PathsUnder(prefix, func(path string) bool {
		if !want(path) {
			return true
		}
		n.store.History(path, func(v netcode.PathValue) bool {
			w := toWireLocks(v)
			w.State = wire.State(v.State)
			batch = append(batch, w)
			if len(batch) >= max {
				flush()
			}
			return true
		})
		return true
	})
	flush()
}

// adoptFinal takes a value a peer holds valid that is older than this
// node's horizon as the path's final value, when the path has nothing
// live here: a range this node starts to watch (or own) arrives after its
// horizon passed the range's older values, and the latest of them is what
// reads below see.
func (n *Node) adoptFinal(it *wire.Value) bool {
	if it.State != wire.State(netcode.Valid) || netcode.Flags(it.Flags)&netcode.FlagEvent != 0 || it.Time.Nanos >= n.store.Horizon() {
		return false
	}
	v := netcode.PathValue{Path: it.Path, Time: netcode.Time(it.Time), Value: slices.Clone(it.Value)}
	return n.store.LoadFinal(n.store.Horizon(), []netcode.PathValue{v}) == nil
}

// shardKey returns the path a call of f routes by ("" when it runs where
// it arrives).
func shardKey(f *netcode.Function, creator uint32, args []byte) string {
	if f == nil || f.Options.ShardKey == nil {
		return ""
	}
	return f.Options.ShardKey(creator, args)
}

// countRangeCall counts a call run here under the range of its shard key
// (none without a key or a shard map, or outside every range).
func (n *Node) countRangeCall(key string) {
	if key == "" || n.shard == nil {
		return
	}
	e, ok := n.shard.Lookup(key)
	if !ok {
		return
	}
	if n.rangeCalls == nil {
		n.rangeCalls = map[shardmap.Range]uint64{}
	}
	n.rangeCalls[e.Range]++
}

// pruneRangeCalls drops the counts of ranges the map no longer holds, so
// the counts stay as many as the map's live ranges.
func (n *Node) pruneRangeCalls() {
	if len(n.rangeCalls) == 0 {
		return
	}
	live := make(map[shardmap.Range]bool, n.shard.Len())
	for _, e := range n.shard.Entries() {
		if !e.Removed {
			live[e.Range] = true
		}
	}
	for r := range n.rangeCalls {
		if !live[r] {
			delete(n.rangeCalls, r)
		}
	}
}

// recKey returns the shard key of a recorded call.
func (n *Node) recKey(rec *callRec) string {
	f, _ := n.reg.Lookup(rec.call.Name)
	return shardKey(f, rec.call.ID.Creator, rec.call.Args)
}

// routeTo returns the authority a call with shard key key runs on: this
// node (here) when it owns the key's range (or the key is empty, or no
// range holds it), else the first owner, primary first, with a live
// stream. An error when no owner is reachable.
func (n *Node) routeTo(key string) (to uint8, here bool, err error) {
	if key == "" {
		return 0, true, nil
	}
	owners, all := n.ownersOf(key)
	if all || owners == nil {
		return 0, true, nil
	}
	if slices.Contains(owners, n.cfg.NodeID) {
		if !n.catchingUp(key) {
			return 0, true, nil
		}
		// Still catching up on the range (handoff.go): another owner
		// runs it meanwhile.
		for _, o := range owners {
			if p := n.peers[o]; o != n.cfg.NodeID && p != nil && p.up && p.out != nil && p.out.state != closing {
				n.stats.CatchUpRouted++
				return o, false, nil
			}
		}
		return 0, false, fmt.Errorf("catching up on %s's range, and no other owner is live (owners %v)", key, owners)
	}
	for _, o := range owners {
		if p := n.peers[o]; p != nil && p.up && p.out != nil && p.out.state != closing {
			return o, false, nil
		}
	}
	return 0, false, fmt.Errorf("no live owner of %s's range (owners %v)", key, owners)
}

// otherOwner returns a live owner of key's range other than this node
// and not, when it can be helped, the node not; 0 when none.
func (n *Node) otherOwner(key string, not uint8) uint8 {
	owners, _ := n.ownersOf(key)
	best := uint8(0)
	for _, o := range owners {
		if p := n.peers[o]; o != n.cfg.NodeID && p != nil && p.up && p.out != nil && p.out.state != closing {
			if o != not {
				return o
			}
			best = o
		}
	}
	return best
}

// forward sends a call on to authority to, to run there; the answer comes
// back to the relay the call names.
func (n *Node) forward(to uint8, c wire.Call) {
	n.stats.CallsForwarded++
	n.send(n.peers[to].out, &wire.Message{Kind: wire.KindCall, Call: c})
}

// relay forwards a client's call to an owner of its shard key and keeps
// it until the answer comes back.
func (n *Node) relay(to uint8, c wire.Call, cr *creatorRec) {
	c.Relay, c.Hops, c.Runner = n.cfg.NodeID, 0, 0
	id := netcode.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq}
	if r := n.relayed[id]; r != nil {
		r.to, r.answered = to, false
	} else if len(n.relayed) < maxRelayed {
		n.relayed[id] = &relayRec{call: c, to: to, cr: cr}
	}
	n.forward(to, c)
}

// relayedCall handles a call a peer relays (or forwards on) for a client
// of the relay it names: answered from its record when it ran already,
// forwarded again when this node no longer owns its shard key, else run
// here, its answer going to the relay once confirmed.
func (n *Node) relayedCall(now int64, from uint8, c *wire.Call) {
	id := netcode.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq}
	rejectRelay := func(status wire.CallStatus, text string) {
		n.stats.CallsRejected++
		if p := n.peers[c.Relay]; p != nil && p.out != nil {
			n.send(p.out, &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: c.ID, Name: c.Name, Time: c.Time, Runner: n.cfg.NodeID, Relay: c.Relay}})
			n.send(p.out, &wire.Message{Kind: wire.KindCallResult, CallResult: wire.CallResult{ID: c.ID, Status: status, Error: text}})
		}
	}
	if rec := n.calls[id]; rec != nil {
		if rec.node != n.cfg.NodeID {
			if p := n.peers[rec.node]; p != nil && p.up && p.out != nil && c.Hops < maxHops && rec.node != c.Relay {
				fc := *c
				fc.Hops++
				n.forward(rec.node, fc)
				return
			}
		}
		rec.relay = c.Relay
		if !n.awaitingAcks(rec) {
			n.deliver(rec)
		}
		return
	}
	f, ok := n.reg.Lookup(c.Name)
	if !ok {
		rejectRelay(wire.CallRejected, fmt.Sprintf("unknown function %q", c.Name))
		return
	}
	key := shardKey(f, id.Creator, c.Args)
	to, here, err := n.routeTo(key)
	if here && err == nil && !n.caughtUp() {
		// Restarted and still catching up: another owner runs it.
		if o := n.otherOwner(key, from); o != 0 {
			to, here = o, false
		} else {
			rejectRelay(wire.CallRejected, "catching up with the cluster")
			return
		}
	}
	switch {
	case err != nil:
		rejectRelay(wire.CallRejected, err.Error())
		return
	case !here && c.Hops >= maxHops:
		rejectRelay(wire.CallRejected, fmt.Sprintf("forwarded %d times: the owners of its range do not agree on the shard map yet", c.Hops))
		return
	case !here:
		fc := *c
		fc.Hops++
		n.forward(to, fc)
		return
	}
	W := c.Time.Nanos
	if W < n.now-int64(n.cfg.Store.MaxChangeAge) || W <= n.store.Horizon() {
		rejectRelay(wire.CallRejected, fmt.Sprintf("write time %d is older than the change window (now %d)", W, now))
		return
	}
	if !n.HasQuorum() {
		n.stats.NoQuorum++
		rejectRelay(wire.CallRejected, "no quorum: this authority is cut off from most of its cluster")
		return
	}
	fs := n.funcStat(f.Name)
	rec := &callRec{
		call:  netcode.Call{ID: id, Name: f.Name, Args: slices.Clone(c.Args), Time: W, ViewDelay: c.ViewDelay},
		owner: n.peerCreator(now, id.Creator, W, c.Relay),
		stats: fs,
		node:  n.cfg.NodeID,
		relay: c.Relay,
	}
	fs.Calls++
	n.stats.Calls++
	n.stats.CallsRelayedIn++
	n.countRangeCall(key)
	n.run(now, rec, 0)
	n.calls[id] = rec
	n.expireLater(rec)
	n.replicateCall(rec, n.lastWrites)
	n.answer(now, rec)
}

// awaitingAcks reports whether rec's result waits for acknowledgements.
func (n *Node) awaitingAcks(rec *callRec) bool {
	for _, w := range n.waits {
		if w.rec == rec {
			return true
		}
	}
	return false
}

// deliver sends rec's latest outcome to its client: through the relay
// that forwarded it, or to the session here holding its creator.
func (n *Node) deliver(rec *callRec) {
	if rec.relay != 0 && rec.relay != n.cfg.NodeID {
		n.relayAnswer(rec)
		return
	}
	if s := n.sessions[rec.owner.session]; s != nil && s.state == ready {
		n.sendResult(s, rec)
	}
}

// relayAnswer sends rec's outcome to the relay that forwarded it: the
// output values (for the client's comparison with its prediction), then
// the Call naming the relay, then the result with its reads.
func (n *Node) relayAnswer(rec *callRec) {
	p := n.peers[rec.relay]
	if p == nil || !p.up || p.out == nil || p.out.state == closing {
		return // the client resends through another node, which asks again
	}
	res := n.callResult(rec, true)
	if res.Status == wire.CallOK {
		var vals []wire.Value
		for _, o := range res.Outputs {
			if v, ok := n.store.Get(o.Path, netcode.Time(o.Time)); ok {
				vals = append(vals, toWire(v))
			}
		}
		if len(vals) > 0 {
			n.send(p.out, &wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: vals}})
		}
	}
	c := rec.call
	n.send(p.out, &wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: c.ID.Creator, Seq: c.ID.Seq},
		Name: c.Name, Time: wire.Time{Nanos: c.Time}, Runner: n.cfg.NodeID, Relay: rec.relay}})
	n.send(p.out, &wire.Message{Kind: wire.KindCallResult, CallResult: res})
}

// relayResult passes an answer that came back for a relayed call to the
// session holding the call's creator, with the output values that came
// before it.
func (n *Node) relayResult(s *session, r *wire.CallResult) {
	vals := s.relayVals
	s.relayVals = nil
	id := netcode.CallID{Creator: r.ID.Creator, Seq: r.ID.Seq}
	n.stats.RelayAnswers++
	cr := n.creators[id.Creator]
	if rr := n.relayed[id]; rr != nil {
		rr.answered = true
		if cr == nil {
			cr = rr.cr
		}
	}
	if cr == nil {
		return
	}
	cs := n.sessions[cr.session]
	if cs == nil || cs.state != ready {
		return
	}
	if len(vals) > 0 {
		n.send(cs, &wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: vals}})
	}
	n.send(cs, &wire.Message{Kind: wire.KindCallResult, CallResult: *r})
}

// rerelay sends again the relayed calls still waiting on an answer from
// authority id (failed, and taken over: its calls have a new runner, or
// never got out of it), each to the owner its shard key routes to now.
func (n *Node) rerelay(id uint8) {
	ids := make([]netcode.CallID, 0)
	for cid, r := range n.relayed {
		if r.to == id && !r.answered {
			ids = append(ids, cid)
		}
	}
	slices.SortFunc(ids, func(a, b netcode.CallID) int {
		if a.Creator != b.Creator {
			return int(int64(a.Creator) - int64(b.Creator))
		}
		return int(int64(a.Seq) - int64(b.Seq))
	})
	for _, cid := range ids {
		r := n.relayed[cid]
		f, _ := n.reg.Lookup(r.call.Name)
		to, here, err := n.routeTo(shardKey(f, cid.Creator, r.call.Args))
		if err != nil || here {
			// Its range came to this node, or has no live owner: the
			// client's resend (it fails over or times out) decides.
			delete(n.relayed, cid)
			continue
		}
		r.to = to
		n.stats.CallsReforwarded++
		n.forward(to, r.call)
	}
}

// expireRelayed forgets relayed calls that became final unanswered.
func (n *Node) expireRelayed() {
	h := n.store.Horizon()
	for id, r := range n.relayed {
		if r.call.Time.Nanos < h {
			delete(n.relayed, id)
		}
	}
}

// rangeGroup is one range a call wrote (or routes by), for its
// confirmation: its owners, and the nodes that hold its values (owners and
// watchers, this node among them when it does), as the record went out.
type rangeGroup struct {
	owners, holders []uint8
}

// rangeGroups returns the ranges rec's latest run wrote and its shard
// key's, each once (nil without a shard map, or when no range of it holds
// them).
func (n *Node) rangeGroups(rec *callRec) []rangeGroup {
	if n.shard == nil {
		return nil
	}
	var groups []rangeGroup
	add := func(path string) {
		owners, all := n.ownersOf(path)
		if all {
			return
		}
		for _, g := range groups {
			if slices.Equal(g.owners, owners) {
				return
			}
		}
		g := rangeGroup{owners: owners}
		if n.holds(path) {
			g.holders = append(g.holders, n.cfg.NodeID)
		}
		for _, p := range n.livePeers() {
			if n.sendsTo(p, path) {
				g.holders = append(g.holders, p.id)
			}
		}
		groups = append(groups, g)
	}
	if key := n.recKey(rec); key != "" {
		add(key)
	}
	if k := len(rec.versions); k > 0 && rec.lastErr == nil {
		for _, o := range rec.versions[k-1].outputs {
			add(o.path)
		}
	}
	return groups
}

// groupsHeld reports whether every range of groups holds the record
// safely: a majority of its owners has it (this node counted when it owns
// the range); or, with Cluster.Size, nodes holding the range's values
// (owners and watchers, which hand them to a new or restarted owner) that
// make a majority of the cluster have it, a majority meeting every later
// one, so an owner cut off from the others never confirms alone; or,
// without a Size, with a quorum, every holder the record went to that is
// still up has acknowledged.
func (n *Node) groupsHeld(groups []rangeGroup, acked []uint8, need []peerSeq) bool {
	for _, g := range groups {
		have := 0
		for _, o := range g.owners {
			if o == n.cfg.NodeID || slices.Contains(acked, o) {
				have++
			}
		}
		if have >= len(g.owners)/2+1 {
			continue
		}
		holders, waiting := 0, 0
		for _, h := range g.holders {
			switch {
			case h == n.cfg.NodeID || slices.Contains(acked, h):
				holders++
			case n.peers[h] != nil && n.peers[h].up && slices.ContainsFunc(need, func(ps peerSeq) bool { return ps.peer == h }):
				waiting++
			}
		}
		if size := n.cfg.Cluster.Size; size > 0 {
			if holders >= size/2+1 {
				continue
			}
		} else if n.HasQuorum() && waiting == 0 && holders > 0 {
			continue
		}
		return false
	}
	return true
}

// outsideHeld returns the first path a run read or wrote that this node
// neither owns nor watches ("" when none).
func (n *Node) outsideHeld(out *netcode.Outcome) string {
	if n.shard == nil {
		return ""
	}
	for _, l := range out.Locks {
		if !n.heldReady(l.Path) {
			return l.Path
		}
	}
	for _, w := range out.Writes {
		if !n.heldReady(w.Path) {
			return w.Path
		}
	}
	return ""
}

// rangePrefix returns the prefix of the range holding path ("" when none
// does), the unit a node watches.
func (n *Node) rangePrefix(path string) string {
	if n.shard != nil {
		if e, ok := n.shard.Lookup(path); ok {
			return e.Range.Prefix
		}
	}
	return ""
}

// errOutside is the error of a run that touched a range this node does
// not hold: it watches that range from then on, and a later call sees it.
var errOutside = errors.New("authority: the call reads or writes a range this authority does not hold yet")

// watchRange returns the prefix a node watches for a client's watch of
// prefix (a prefix, or one path: its parent).
func watchRange(prefix string) string {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return prefix
	}
	return prefix[:strings.LastIndexByte(prefix, '/')+1]
}
