package authority

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// What the node tells its operators: why it refused and closed sessions
// (Stats' counters by Cause, and Notes for the shell's log), what each
// session is doing (Sessions), its latest re-runs and why they happened
// (Reruns), and where it stands in its cluster (ClusterInfo). All of it
// is read by the node's owner, like everything else of the node.

// Cause says why the node refused a request or closed a session. Causes
// are a small fixed set, so they can label metrics. Append only.
type Cause uint8

// Causes of refusals and closes.
const (
	CauseProtocol        Cause = iota // a malformed frame, an unexpected message
	CauseVersion                      // a protocol version this node does not speak
	CauseAuth                         // authentication refused
	CauseRateLimit                    // over a rate limit (messages, bytes, calls, writes)
	CausePermission                   // a raw write outside what the write rule allows
	CauseRefused                      // the store refused a write (path, time, lock, size)
	CauseLimit                        // a count limit (watches, snapshot budget, path bytes)
	CauseOverload                     // the node could not take it
	CauseShutdown                     // the node is shutting down
	CauseSuperseded                   // a newer session resumed this one
	CauseLate                         // a call older than the change window when it arrived
	CauseStale                        // a call that went stale waiting for the node (no strike)
	CauseFuture                       // a call too far ahead of the node's clock
	CauseOrder                        // a call not later than its creator's previous one
	CauseUnknownFunction              // a call of a function the registry lacks
	CauseNotDurable                   // the log failed: writes are refused
	CauseNoQuorum                     // cut off from most of the cluster
	CauseStrikes                      // more strikes than Limits.Strikes within the window
	CauseHelloTimeout                 // no Hello within Limits.HelloTimeout
	CauseEvicted                      // a waiting session made room under MaxPendingSessions
	CauseFull                         // MaxSessions players connected
	CauseCatchingUp                   // the node is catching up with its cluster
	CauseTooSlow                      // watch deliveries piled up past MaxPendingOutbound
	CauseTransport                    // the transport closed (the client left, or went silent)
	CauseSendQueue                    // the shell's send queue for the session was full
	CausePeer                         // a replication stream between authorities ended
	CauseInternal                     // a message this node could not encode
	NumCauses                         // the number of causes
)

var causeNames = [NumCauses]string{
	"protocol", "version", "auth", "rate_limit", "permission", "store_refused", "limit",
	"overload", "shutdown", "superseded", "late", "stale", "future", "order",
	"unknown_function", "not_durable", "no_quorum", "strikes", "hello_timeout", "evicted",
	"full", "catching_up", "too_slow", "transport", "send_queue", "peer", "internal",
}

// String returns the cause's metric label, such as "rate_limit".
func (c Cause) String() string {
	if c < NumCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// codeCause is the cause of an Error sent with code.
func codeCause(code wire.ErrorCode) Cause {
	switch code {
	case CodeProtocol:
		return CauseProtocol
	case CodeVersion:
		return CauseVersion
	case CodeAuth:
		return CauseAuth
	case CodeRateLimit:
		return CauseRateLimit
	case CodePermission:
		return CausePermission
	case CodeRefused:
		return CauseRefused
	case CodeLimit:
		return CauseLimit
	case CodeShutdown:
		return CauseShutdown
	case CodeSuperseded:
		return CauseSuperseded
	}
	return CauseOverload
}

// maxNotes bounds the notes kept between two TakeNotes; more are counted
// in Stats.NotesDropped. A shell takes them after each round.
const maxNotes = 1024

// Note records a refusal (the session stays open) or a close, for the
// shell's log: every one names the session, its player and the reason.
type Note struct {
	Closed  bool // the session was closed; otherwise a request was refused
	Session SessionID
	Remote  string
	Player  string // "" without an Authenticator
	Creator uint32 // 0 before the Hello
	Peer    int    // the other authority of a replication stream, -1 for a client
	Cause   Cause
	Reason  string
	Strikes int // whole strikes within Limits.StrikeWindow after this one
}

// TakeNotes returns the refusals and closes since the last call, oldest
// first. The slice is the caller's.
func (n *Node) TakeNotes() []Note {
	out := n.notes
	n.notes = nil
	return out
}

func (n *Node) note(s *session, closed bool, cause Cause, reason string) {
	if len(n.notes) >= maxNotes {
		n.stats.NotesDropped++
		return
	}
	peer := -1
	if s.dir != notPeer {
		peer = int(s.peer)
	}
	n.notes = append(n.notes, Note{Closed: closed, Session: s.id, Remote: s.remote, Player: s.player,
		Creator: s.creator, Peer: peer, Cause: cause, Reason: reason, Strikes: s.strikePts / strikePoints})
}

// noteRefusal counts and notes a refused request.
func (n *Node) noteRefusal(s *session, cause Cause, reason string) {
	n.stats.Refusals[cause]++
	n.note(s, false, cause, reason)
}

// noteClose counts and notes a session closing; the caller moves it to
// closing.
func (n *Node) noteClose(s *session, cause Cause, reason string) {
	n.stats.Closes[cause]++
	n.note(s, true, cause, reason)
}

// RunBounds are the upper bounds of FuncStats.Runs' buckets.
var RunBounds = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond,
}

func runBucket(d int64) int {
	i := 0
	for i < len(RunBounds) && time.Duration(d) > RunBounds[i] {
		i++
	}
	return i
}

// SessionInfo is what the node knows of one session.
type SessionInfo struct {
	ID      SessionID
	Remote  string
	Player  string // "" without an Authenticator
	Creator uint32 // 0 before the Hello
	// State is "waiting" (for its Hello, or parked for a takeover),
	// "player", "peer-in" or "peer-out" (a replication stream from or to
	// authority Peer), or "closing".
	State     string
	Peer      uint8
	Connected int64  // when it connected, node time
	Calls     uint64 // calls admitted
	Watches   int
	// Strikes is the whole strikes charged within Limits.StrikeWindow
	// before the node's latest time; more than Limits.Strikes close it.
	Strikes int
	// SyncSent and SyncArrived are the latest time-sync request's send
	// time on the client's local clock and its arrival on the node's
	// (zero before the first): with the round trip, they give the
	// client's clock offset (see ClockOffset).
	SyncSent, SyncArrived int64
}

// ClockOffset estimates the node's time minus the client's local time
// from the session's latest time-sync request and the round trip rtt, as
// the client's own estimator does from one exchange (exact when both
// directions took equally long). ok is false before the first request.
func (si *SessionInfo) ClockOffset(rtt time.Duration) (offset time.Duration, ok bool) {
	if si.SyncArrived == 0 {
		return 0, false
	}
	return time.Duration(si.SyncArrived-si.SyncSent) - rtt/2, true
}

// Sessions returns the first limit sessions by id (every one if limit is
// negative), and how many there are.
func (n *Node) Sessions(limit int) (list []SessionInfo, total int) {
	ids := make([]SessionID, 0, len(n.sessions))
	for id := range n.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if limit >= 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	cut := n.now - int64(n.cfg.Limits.StrikeWindow)
	list = make([]SessionInfo, 0, len(ids))
	for _, id := range ids {
		s := n.sessions[id]
		si := SessionInfo{ID: id, Remote: s.remote, Player: s.player, Creator: s.creator, Peer: s.peer,
			Connected: s.connected, Calls: s.ncalls, Watches: len(s.watches), SyncSent: s.syncSent, SyncArrived: s.syncRecv}
		switch {
		case s.state == closing:
			si.State = "closing"
		case s.dir == peerIn:
			si.State = "peer-in"
		case s.dir == peerOut:
			si.State = "peer-out"
		case s.state == ready:
			si.State = "player"
		default:
			si.State = "waiting"
		}
		pts := 0
		for _, st := range s.strikes {
			if st.at >= cut {
				pts += st.points
			}
		}
		si.Strikes = pts / strikePoints
		list = append(list, si)
	}
	return list, len(n.sessions)
}

// maxReruns is how many re-runs Reruns remembers.
const maxReruns = 32

// maxChanged bounds the outputs a Rerun lists.
const maxChanged = 4

// Rerun explains one re-run of a call: the call, its new version, the
// outputs whose values changed (what its caller sees corrected), and the
// cause: the read that found another value than the run before, that is
// the value that arrived late.
type Rerun struct {
	At       int64 // when it ran, node time
	Call     netcode.CallID
	Function string
	Player   string // the caller's, when its session is live and authenticated
	Time     int64  // the call's write time
	Version  uint32
	// Changed lists (up to maxChanged) the outputs that differ from the
	// previous version's: a path written with another value, or written
	// by one version only. ChangedMore counts the others.
	Changed     []string
	ChangedMore int
	// CausePath and Cause name the value this run read where the previous
	// run read an older one (Cause is its time, CauseKnown false when no
	// read differed: the previous run's outputs were invalidated some
	// other way, by a value pending until finality); CausePlayer is its
	// writer's player, when that creator's session is live here and
	// authenticated.
	CausePath   string
	Cause       netcode.Time
	CauseKnown  bool
	CausePlayer string
	Err         string // the re-run failed (its outputs were taken back)
}

// Explain says in words why the re-run happened and what it changed,
// with times relative to the call's.
func (r *Rerun) Explain() string {
	var b bytes.Buffer
	if r.CauseKnown {
		who := fmt.Sprintf("creator %d", r.Cause.Creator)
		if r.CausePlayer != "" {
			who = fmt.Sprintf("%s (creator %d)", r.CausePlayer, r.Cause.Creator)
		}
		fmt.Fprintf(&b, "read %s written %s by %s, which arrived after the previous run", r.CausePath, relative(r.Cause.Nanos-r.Time), who)
	} else {
		b.WriteString("an output was invalidated (a value it read turned invalid or was never confirmed)")
	}
	switch {
	case r.Err != "":
		fmt.Fprintf(&b, "; the re-run failed: %s", r.Err)
	case len(r.Changed) == 0:
		b.WriteString("; same outputs")
	default:
		fmt.Fprintf(&b, "; changed %s", strings.Join(r.Changed, ", "))
		if r.ChangedMore > 0 {
			fmt.Fprintf(&b, " and %d more", r.ChangedMore)
		}
	}
	return b.String()
}

// relative says when a time d from the call's was.
func relative(d int64) string {
	switch {
	case d < 0:
		return time.Duration(-d).Round(time.Microsecond).String() + " before the call"
	case d > 0:
		return time.Duration(d).Round(time.Microsecond).String() + " after the call"
	}
	return "at the call's time"
}

// Reruns returns the latest re-runs, newest first (at most maxReruns).
func (n *Node) Reruns() []Rerun {
	out := make([]Rerun, 0, len(n.rerunLog))
	for i := range len(n.rerunLog) {
		j := (n.rerunNext - 1 - i + 2*len(n.rerunLog)) % len(n.rerunLog)
		out = append(out, n.rerunLog[j])
	}
	return out
}

// maxExplained bounds the reads and outputs noteRerun compares, so a call
// that reads or writes many paths costs its re-run no more than this.
const maxExplained = 64

// noteRerun records rec's latest run, a re-run, with what changed and why.
func (n *Node) noteRerun(now int64, rec *callRec) {
	k := len(rec.versions)
	if k < 2 {
		return
	}
	cur, prev := &rec.versions[k-1], &rec.versions[k-2]
	r := Rerun{At: now, Call: rec.call.ID, Function: rec.call.Name, Time: rec.call.Time, Version: cur.version}
	if rec.owner != nil {
		if s := n.sessions[rec.owner.session]; s != nil {
			r.Player = s.player
		}
	}
	if rec.lastErr != nil {
		r.Err = rec.lastErr.Error()
	}
	prevReads := prev.reads[:min(len(prev.reads), maxExplained)]
	for _, l := range cur.reads[:min(len(cur.reads), maxExplained)] {
		i := slices.IndexFunc(prevReads, func(p netcode.ReadLock) bool { return p.Path == l.Path && p.End.Nanos == l.End.Nanos })
		if i < 0 || prevReads[i].Start != l.Start {
			r.CausePath, r.Cause, r.CauseKnown = l.Path, l.Start, true
			if cr := n.creators[l.Start.Creator]; cr != nil {
				if s := n.sessions[cr.session]; s != nil {
					r.CausePlayer = s.player
				}
			}
			break
		}
	}
	// An output changed if the other version did not write its path, or
	// wrote other bytes (the previous version's values are still held:
	// they are live, invalid, until finality drops them).
	value := func(o outKey) []byte {
		v, _ := n.store.Get(o.path, o.t)
		return v.Value
	}
	changed := func(path string) {
		if len(r.Changed) < maxChanged {
			r.Changed = append(r.Changed, path)
		} else {
			r.ChangedMore++
		}
	}
	curOut, prevOut := cur.outputs[:min(len(cur.outputs), maxExplained)], prev.outputs[:min(len(prev.outputs), maxExplained)]
	for _, o := range curOut {
		i := slices.IndexFunc(prevOut, func(p outKey) bool { return p.path == o.path })
		if i < 0 || !bytes.Equal(value(prevOut[i]), value(o)) {
			changed(o.path)
		}
	}
	for _, p := range prevOut {
		if !slices.ContainsFunc(curOut, func(o outKey) bool { return o.path == p.path }) {
			changed(p.path)
		}
	}
	n.fileRerun(r)
}

// fileRerun keeps r in the ring of the latest maxReruns.
func (n *Node) fileRerun(r Rerun) {
	if len(n.rerunLog) < maxReruns {
		n.rerunLog = append(n.rerunLog, r)
		n.rerunNext = len(n.rerunLog) % maxReruns
		return
	}
	n.rerunLog[n.rerunNext] = r
	n.rerunNext = (n.rerunNext + 1) % maxReruns
}

// PeerInfo is what the node knows of another authority of its cluster.
type PeerInfo struct {
	ID     uint8
	Up     bool // membership says it is alive
	Stream bool // this node's replication stream to it is open
	// Closed is its closed time (0 before its first Sync), which arrived
	// at SyncAt, node time.
	Closed, SyncAt int64
	TakingOver     bool // it failed and its takeover waits for handovers
}

// RangeInfo is one range of the shard map with its owners.
type RangeInfo struct {
	Range  string // shardmap.Range's String, "*" for every path
	Owners []uint8
	// Closed is the range's closed time: the earliest closed time of its
	// live owners (this node's own included), 0 while one is unknown.
	Closed int64
	// Calls counts the calls this node ran whose shard key is in the
	// range (first runs, relayed ones included), since the node started
	// or the range last left the map: the range's load here.
	Calls uint64
}

// ClusterInfo is the node's view of its cluster.
type ClusterInfo struct {
	NodeID    uint8
	Size      int   // Cluster.Size (0: no quorum rule)
	Closed    int64 // this node's closed time (0 before its first)
	Quorum    bool
	CaughtUp  bool
	Takeovers uint64
	Peers     []PeerInfo
	// Ranges lists the shard map's first MaxRangeInfo live ranges;
	// RangesTotal counts them all, RangesOwned those this node owns.
	Ranges      []RangeInfo
	RangesTotal int
	RangesOwned int
}

// MaxRangeInfo bounds the ranges ClusterInfo lists: a shard map may hold
// tens of thousands, an operator's page and a scrape should not.
const MaxRangeInfo = 256

// ClusterInfo returns the node's view of its cluster. It reads, never
// changes: the first catch-up's side effect (caughtUp) is left to the
// node's own steps.
func (n *Node) ClusterInfo() ClusterInfo {
	ci := ClusterInfo{NodeID: n.cfg.NodeID, Size: n.cfg.Cluster.Size, Closed: n.closed, Quorum: n.HasQuorum(),
		CaughtUp: true, Takeovers: n.stats.Takeovers}
	ids := make([]uint8, 0, len(n.peers))
	for id := range n.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	closedOf := map[uint8]int64{n.cfg.NodeID: n.closed}
	for _, id := range ids {
		p := n.peers[id]
		if !n.synced && p.up && p.closed == 0 {
			ci.CaughtUp = false // as caughtUp will find
		}
		ci.Peers = append(ci.Peers, PeerInfo{ID: id, Up: p.up, Stream: p.out != nil, Closed: p.closed, SyncAt: p.syncAt, TakingOver: n.takingOver(id)})
		if p.up {
			closedOf[id] = p.closed
		}
	}
	rangeClosed := func(owners []uint8) int64 {
		c := int64(-1)
		for _, o := range owners {
			oc, live := closedOf[o]
			if !live {
				continue
			}
			if oc == 0 {
				return 0
			}
			if c < 0 || oc < c {
				c = oc
			}
		}
		return max(c, 0)
	}
	if n.shard == nil {
		// One range, every path, replicated on every live member.
		owners := []uint8{n.cfg.NodeID}
		for _, id := range ids {
			if n.peers[id].up {
				owners = append(owners, id)
			}
		}
		slices.Sort(owners)
		ci.Ranges = []RangeInfo{{Range: "*", Owners: owners, Closed: rangeClosed(owners)}}
		ci.RangesTotal, ci.RangesOwned = 1, 1
		return ci
	}
	for _, e := range n.shard.Entries() {
		if e.Removed {
			continue
		}
		ci.RangesTotal++
		if slices.Contains(e.Owners, shardmap.NodeID(n.cfg.NodeID)) {
			ci.RangesOwned++
		}
		if len(ci.Ranges) < MaxRangeInfo {
			owners := slices.Clone(e.Owners)
			ci.Ranges = append(ci.Ranges, RangeInfo{Range: e.Range.String(), Owners: owners, Closed: rangeClosed(owners), Calls: n.rangeCalls[e.Range]})
		}
	}
	return ci
}

// Now returns the latest time the node was given.
func (n *Node) Now() int64 { return n.now }
