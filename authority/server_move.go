package authority

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rewindnet/rewind/authority/shardmap"
)

// DefaultMoveSettle is how long MoveRange leaves a range with both its
// old and its new owners before the old primary leaves it, once every
// member holds the map that added the new owner: long enough for the
// values and calls in flight to the old owner (a change window, 1 s by
// default) to reach the new one.
const DefaultMoveSettle = time.Second

// ErrMoveBusy is returned by MoveRange while another move it started is
// under way on this server.
var ErrMoveBusy = errors.New("authority: a range move is already under way here")

// MoveOptions tunes MoveRange.
type MoveOptions struct {
	// From is the owner that leaves the range (0: its primary).
	From uint8
	// Settle is how long the range keeps both owners once every member
	// holds the map that added the new one (0: DefaultMoveSettle).
	Settle time.Duration
	// Log, if set, is told each step as it is made.
	Log func(step string)
}

// MoveResult says what a move did.
type MoveResult struct {
	Range         shardmap.Range
	Before, After []uint8 // the range's owners, the primary first
	// Joined and Left are the versions of the two map changes (0 for a
	// step there was no need for: the new owner already owned the range,
	// or the old one had left it).
	Joined, Left uint64
	Took         time.Duration
}

// MoveRange moves range r of the shard map to node to while players use
// it, in the contract's sequence: to joins the range as an owner (every
// node sends it what it holds of the range, and relays may send it calls
// at once); once every live member advertises a map at least that new,
// and Settle later, the old primary (or From) leaves the range and to
// becomes its primary; MoveRange returns once every live member holds
// that map too. Calls that still reach the old owner are forwarded to an
// owner it knows, calls in flight are answered by the owner that ran
// them, and nothing is lost or run twice (TestClusterMove). r must be a
// live range of the map, as ShardMap lists it; to must be a member. ctx
// bounds the wait; a move cut short leaves the range with both owners,
// which a second MoveRange completes. One move at a time per server.
func (s *Server) MoveRange(ctx context.Context, r shardmap.Range, to uint8, opts MoveOptions) (MoveResult, error) {
	if s.cl == nil {
		return MoveResult{}, ErrNoCluster
	}
	if !s.cl.moving.TryLock() {
		return MoveResult{}, ErrMoveBusy
	}
	defer s.cl.moving.Unlock()
	start := time.Now()
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			opts.Log(fmt.Sprintf(format, args...))
		}
		s.log.Info("range move: " + fmt.Sprintf(format, args...))
	}
	settle := opts.Settle
	if settle <= 0 {
		settle = DefaultMoveSettle
	}
	if !s.isMember(to) {
		return MoveResult{}, fmt.Errorf("authority: move %v to node %d: no such live member", r, to)
	}
	cur, err := s.liveEntry(r)
	if err != nil {
		return MoveResult{}, err
	}
	res := MoveResult{Range: r, Before: slices.Clone(cur.Owners)}
	from := opts.From
	if from == 0 {
		from = cur.Owners[0]
	}
	if from == to {
		return MoveResult{}, fmt.Errorf("authority: move %v from node %d to itself", r, to)
	}
	if !slices.Contains(cur.Owners, to) {
		owners := append(slices.Clone(cur.Owners), to)
		e, err := s.setEntry(r, owners)
		if err != nil {
			return res, fmt.Errorf("authority: move %v: %w", r, err)
		}
		res.Joined = e.Version
		logf("%v gains node %d (owners %v, map version %d)", r, to, owners, e.Version)
		if err := s.awaitMapVersion(ctx, e.Version); err != nil {
			return res, fmt.Errorf("authority: move %v: node %d joined it, but %w", r, to, err)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("authority: move %v: node %d joined it, settling: %w", r, to, ctx.Err())
		case <-time.After(settle):
		}
		if cur, err = s.liveEntry(r); err != nil {
			return res, err
		}
		if cur.Version != e.Version {
			return res, fmt.Errorf("authority: move %v: the range changed while settling (owners %v, version %d): nothing more done", r, cur.Owners, cur.Version)
		}
	}
	next := []uint8{to}
	for _, o := range cur.Owners {
		if o != from && o != to {
			next = append(next, o)
		}
	}
	res.After = next
	if slices.Equal(next, cur.Owners) {
		res.Took = time.Since(start)
		return res, nil
	}
	e, err := s.setEntry(r, next)
	if err != nil {
		return res, fmt.Errorf("authority: move %v: %w", r, err)
	}
	res.Left = e.Version
	logf("%v leaves node %d (owners %v, map version %d)", r, from, next, e.Version)
	if err := s.awaitMapVersion(ctx, e.Version); err != nil {
		return res, fmt.Errorf("authority: move %v: %w", r, err)
	}
	res.Took = time.Since(start)
	logf("%v moved to node %d in %v", r, to, res.Took.Round(time.Millisecond))
	return res, nil
}

// liveEntry returns the live entry of exactly range r.
func (s *Server) liveEntry(r shardmap.Range) (shardmap.Entry, error) {
	for _, e := range s.ShardMap().Entries() {
		if e.Range == r && !e.Removed {
			return e, nil
		}
	}
	return shardmap.Entry{}, fmt.Errorf("authority: no live range %v in the shard map", r)
}

// setEntry is SetRange returning the entry it gossiped.
func (s *Server) setEntry(r shardmap.Range, owners []uint8) (shardmap.Entry, error) {
	ms := s.cl.smap
	ms.mu.Lock()
	e, err := ms.m.Set(r, owners, s.cfg.Node.NodeID)
	ms.mu.Unlock()
	if err != nil {
		return e, err
	}
	s.cl.mem.Broadcast(shardmap.AppendEntries(nil, []shardmap.Entry{e}))
	select {
	case ms.changed <- struct{}{}:
	default:
	}
	return e, nil
}

// isMember reports whether node id is a live member (this one included),
// as the node goroutine last took membership's events.
func (s *Server) isMember(id uint8) bool {
	if id == s.cfg.Node.NodeID {
		return true
	}
	s.cl.viewMu.Lock()
	defer s.cl.viewMu.Unlock()
	_, ok := s.cl.view[id]
	return ok
}

// awaitMapVersion waits until this node has been handed a shard map of
// version v or later, and every live member advertises one (in its
// membership metadata, which a member sets once its node has the map; a
// member that fails meanwhile drops out of the list). It reads what the
// node goroutine took of membership's events, not memberlist's nodes,
// whose metadata memberlist's goroutines write.
func (s *Server) awaitMapVersion(ctx context.Context, v uint64) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var behind []uint8
		s.cl.viewMu.Lock()
		if s.cl.handed < v {
			behind = append(behind, s.cfg.Node.NodeID)
		}
		for id, mv := range s.cl.view {
			if mv < v {
				behind = append(behind, id)
			}
		}
		s.cl.viewMu.Unlock()
		if len(behind) == 0 {
			return nil
		}
		slices.Sort(behind)
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes %v do not hold map version %d yet: %w", behind, v, ctx.Err())
		case <-tick.C:
		}
	}
}

// NodeID returns this authority's node id.
func (s *Server) NodeID() uint8 { return s.cfg.Node.NodeID }
