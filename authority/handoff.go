package authority

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Catching up on a range the shard map gives this node.
//
// A node that the map makes an owner of a range it neither owned nor
// watched holds none of the range's values yet: every node sends it what
// it holds there when it takes the map (SetShardMap), each at its own
// time. Until every live peer's catch-up of the range is in, the node
// runs nothing on the range: calls whose shard key falls in it go to
// another owner (or are refused when there is none), runs that read or
// write it fail as runs outside, re-runs of its calls wait a tick, and
// the node's finality stays where it is, so the catch-up lands above its
// horizon.
//
// A peer ends its catch-up of a range with a range marker: a WatchDone
// whose prefix is the range and the version of the map entry that made
// the receiver an owner ("players/[00000000-7fffffff]@12"; a watch's
// prefix ends in '/', so no prefix reads as a marker). It sends one
// after the range's values when the map makes the receiver a new owner,
// a marker alone when the entry changes while the receiver stays an
// owner (its values have gone there all along), and one for every range
// the receiver owns after a new stream's catch-up. The node needs, from
// every peer membership says is up, a marker at least as new as the entry
// that made it an owner; versions are Lamport stamps, so a marker of an
// earlier spell of ownership is older and does not count.

// rangeMarker is the WatchDone prefix that ends a catch-up of r at
// entry version v.
func rangeMarker(r shardmap.Range, v uint64) string {
	return fmt.Sprintf("%s[%08x-%08x]@%d", r.Prefix, r.Lo, r.Hi, v)
}

// parseRangeMarker reads a range marker; ok is false for anything else
// (a watch's prefix).
func parseRangeMarker(s string) (r shardmap.Range, v uint64, ok bool) {
	i := strings.LastIndexByte(s, '@')
	if i < 1 || s[i-1] != ']' {
		return shardmap.Range{}, 0, false
	}
	v, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return shardmap.Range{}, 0, false
	}
	r, err = shardmap.ParseRange(s[:i])
	if err != nil {
		return shardmap.Range{}, 0, false
	}
	return r, v, true
}

// markerFits reports whether r's marker fits the wire's path limit; a
// range whose marker cannot be sent is not waited for.
func (n *Node) markerFits(r shardmap.Range) bool {
	lim := n.cfg.Wire.MaxPathBytes
	if lim <= 0 {
		lim = wire.DefaultLimits().MaxPathBytes
	}
	return len(r.Prefix)+40 <= lim
}

// sendRangeMarker ends, on s, a catch-up of r at version v.
func (n *Node) sendRangeMarker(s *session, r shardmap.Range, v uint64) {
	if s != nil && n.markerFits(r) {
		n.send(s, &wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: rangeMarker(r, v)}})
	}
}

// sendRangeMarkers sends, on a new stream to peer p after its catch-up,
// a marker of every range p owns.
func (n *Node) sendRangeMarkers(s *session, p *peerNode) {
	if n.shard == nil {
		return
	}
	for _, e := range n.shard.Entries() {
		if !e.Removed && slices.Contains(e.Owners, p.id) {
			n.sendRangeMarker(s, e.Range, e.Version)
		}
	}
}

// peerRangeMarker records a peer's range marker (see peerWatchDone).
func (n *Node) peerRangeMarker(p *peerNode, r shardmap.Range, v uint64) {
	if p.rangeDone == nil {
		p.rangeDone = map[shardmap.Range]uint64{}
	}
	if old, ok := p.rangeDone[r]; ok || len(p.rangeDone) < shardmap.MaxEntries {
		p.rangeDone[r] = max(old, v)
	}
}

// takeRanges updates, for a new map m replacing old, the ranges this node
// catches up on, and sends each live peer the catch-up of the ranges m
// makes it a new owner of (its values, then a marker) and a marker alone
// for those whose entry changed while it stayed an owner.
func (n *Node) takeRanges(now int64, old, m *shardmap.Map) {
	before := map[shardmap.Range]shardmap.Entry{}
	if old != nil {
		for _, e := range old.Entries() {
			if !e.Removed {
				before[e.Range] = e
			}
		}
	}
	live := map[shardmap.Range]bool{}
	for _, e := range m.Entries() {
		if e.Removed {
			continue
		}
		live[e.Range] = true
		prev, had := before[e.Range]
		for _, p := range n.livePeers() {
			if !slices.Contains(e.Owners, p.id) {
				continue
			}
			r := e.Range
			if !had || !slices.Contains(prev.Owners, p.id) {
				n.sendHeld(p.out, r.Prefix, func(path string) bool { return r.Contains(path) && !coversPath(p.watches, path) })
			} else if prev.Version == e.Version {
				continue // nothing new for it
			}
			n.sendRangeMarker(p.out, r, e.Version)
			p.syncDue = true
		}
		me := n.cfg.NodeID
		switch {
		case !slices.Contains(e.Owners, me):
			delete(n.catching, e.Range)
		case old == nil || had && slices.Contains(prev.Owners, me):
			// It held every path without a map, or owned the range
			// already (and may still be catching up on it).
		case n.watchedReady(e.Range.Prefix) || !n.markerFits(e.Range):
		default:
			if _, ok := n.catching[e.Range]; !ok {
				if len(n.catching) == 0 {
					n.catching = map[shardmap.Range]uint64{}
					n.catchSince = now
				}
				n.catching[e.Range] = e.Version
				n.stats.RangeCatchUps++
			}
		}
	}
	for r := range n.catching {
		if !live[r] {
			delete(n.catching, r)
		}
	}
}

// watchedReady reports whether the node watches prefix from its peers
// with every live peer's catch-up of it in.
func (n *Node) watchedReady(prefix string) bool {
	for _, w := range n.interest {
		if !strings.HasPrefix(prefix, w) {
			continue
		}
		ready := true
		for _, p := range n.peers {
			if p.up && !slices.Contains(p.watchDone, w) {
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

// rangeReady reports whether the node has every live peer's catch-up of
// range r (true for a range it is not catching up on); once it has, it
// stops waiting for r.
func (n *Node) rangeReady(r shardmap.Range) bool {
	v, ok := n.catching[r]
	if !ok {
		return true
	}
	for _, p := range n.peers {
		if p.up && p.rangeDone[r] < v {
			return false
		}
	}
	delete(n.catching, r)
	return true
}

// catchingUp reports whether path is in a range this node owns and is
// still catching up on.
func (n *Node) catchingUp(path string) bool {
	if len(n.catching) == 0 || n.shard == nil || path == "" {
		return false
	}
	e, ok := n.shard.Lookup(path)
	return ok && !n.rangeReady(e.Range)
}

// catchingAny reports whether the node is catching up on a range (its
// finality then stays where it is).
func (n *Node) catchingAny() bool {
	for r := range n.catching {
		if !n.rangeReady(r) {
			return true
		}
	}
	return false
}
