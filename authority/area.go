package authority

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/physics"
)

// Interest management. A spatial layer of the registry (netcode.Layer)
// places each entity under its prefix by the value of one field. The node
// keeps the latest position of every entity of each layer in a physics
// World (points, the physics helper's grid index) and answers spatial
// watches from it: every InterestEvery it finds the entities in each
// watch's area (the MaxAreaEntities nearest within the radius of the
// followed entity, or inside the region), and diffs them against the
// entities the watcher has: an entity that entered is sent whole (a
// snapshot of its paths, charged to the session's snapshot budget like a
// watch, then a WatchDone for the entity prefix: the enter event), one
// that left is sent a Leave. In between, the values of the entities a
// watcher has reach it as changes, through areaWatchers, which watchersOf
// visits like the prefix watch lists. A layer where no position changed
// since the last refresh is skipped; otherwise a near watch is brought up
// to date from the positions that changed near it (refreshNear), and
// queried only when that cannot tell (see refreshNear). An entity leaves a near area only
// beyond leaveFactor times the radius, so one that hovers at the edge
// does not flap.

// Interest defaults.
const (
	DefaultInterestEvery   = 100 * time.Millisecond
	DefaultMaxAreaEntities = 128
	defaultCellSize        = 64.0
	leaveFactor            = 1.1
)

// spaceIndex is one spatial layer's index and watches.
type spaceIndex struct {
	layer   netcode.Layer
	world   *physics.World
	latest  map[string]int64 // entity prefix → time of its indexed position
	watches []*areaWatch
	// moved is set when a position changed since the last refresh: a
	// layer where nothing moved needs none (its watches' areas hold the
	// same entities), so idle players cost no queries.
	moved bool
	// changed lists the entities whose position changed since the last
	// refresh, once each with the position before (movedAt indexes it),
	// so a refresh revisits only the watches near a change (see
	// refreshInterest); overflow (more than maxAreaChanges) refreshes every
	// watch in full instead.
	changed  []change
	movedAt  map[string]int
	overflow bool
}

// change is an entity whose indexed position changed since the last
// refresh: where it was (old, when it was placed) and, at the refresh,
// where it is now.
type change struct {
	entity     string
	old, now   physics.Vec2
	hadOld, ok bool
}

// maxAreaChanges bounds a layer's list of changes between two refreshes.
const maxAreaChanges = 1 << 16

// areaWatch is one session's spatial watch on a layer.
type areaWatch struct {
	s      *session
	prefix string
	spec   watchSpec
	in     map[string]struct{} // the entities the watcher has now
	// near counts the layer's entities within leaveFactor × the radius
	// of the followed entity at the last refresh; a watch is brought up
	// to date by its changes alone (refreshNear) only while it is under
	// the limit, where Nearest returns them all.
	near int
	// full asks the next refresh for a full query: the watch started
	// since the last refresh, an entity it should have did not fit the
	// snapshot budget, or it missed a refresh (its session was not
	// ready).
	full bool
}

func newSpaceIndexes(reg *netcode.Registry) (map[string]*spaceIndex, error) {
	if reg == nil {
		return nil, nil
	}
	out := make(map[string]*spaceIndex)
	for _, l := range reg.Layers() {
		cfg := physics.DefaultConfig()
		if l.CellSize > 0 {
			cfg.CellSize = l.CellSize
		}
		// Only the latest position matters: a short window, and points
		// that hold still until their next position.
		cfg.Window = 0
		cfg.Bucket = time.Second
		w, err := physics.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: spatial layer %q: %w", ErrBadConfig, l.Prefix, err)
		}
		out[l.Prefix] = &spaceIndex{layer: l, world: w, latest: make(map[string]int64), movedAt: make(map[string]int)}
	}
	return out, nil
}

// entityOf splits path into its layer and entity prefix when path is the
// position field of an entity of a layer.
func (n *Node) entityOf(path string) (*spaceIndex, string, bool) {
	for prefix, sx := range n.spaces {
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		rest := path[len(prefix):]
		i := strings.IndexByte(rest, '/')
		if i <= 0 || rest[i+1:] != sx.layer.Field {
			return nil, "", false
		}
		return sx, path[:len(prefix)+i+1], true
	}
	return nil, "", false
}

// indexPosition files a valid value of a position field.
func (n *Node) indexPosition(now int64, path string, t int64, value []byte) {
	sx, entity, ok := n.entityOf(path)
	if !ok {
		return
	}
	if last, seen := sx.latest[entity]; seen && last > t {
		return // an older value arrived late: the index has a newer one
	}
	x, y, ok := 0.0, 0.0, false
	if value != nil {
		x, y, ok = sx.layer.Pos(value)
	}
	p := physics.Vec2{X: x, Y: y}
	sx.moved = true
	if _, seen := sx.movedAt[entity]; !seen && !sx.overflow {
		if len(sx.changed) >= maxAreaChanges {
			sx.overflow = true
		} else {
			old, had := sx.world.Position(entity, max(now, sx.world.Horizon()))
			sx.movedAt[entity] = len(sx.changed)
			sx.changed = append(sx.changed, change{entity: entity, old: old, hadOld: had})
		}
	}
	if !ok || !finiteWithin(p) {
		sx.world.Remove(entity)
		delete(sx.latest, entity)
		return
	}
	at := max(now, sx.world.Horizon())
	if err := sx.world.Upsert(entity, physics.Point(physics.Vec2{}), physics.Keyframe{T: at, Pos: p}); err != nil {
		return // the index is full (physics MaxBodies): the entity stays unplaced
	}
	sx.latest[entity] = t
}

func finiteWithin(p physics.Vec2) bool {
	ok := func(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= physics.MaxCoord }
	return ok(p.X) && ok(p.Y)
}

// watchArea starts a spatial watch: it finds the area's entities at once.
func (n *Node) watchArea(now int64, s *session, prefix string, spec watchSpec) error {
	sx := n.spaces[prefix]
	if sx == nil {
		return fmt.Errorf("watch %q refused: no spatial layer there", prefix)
	}
	if spec.area.Kind == wire.AreaNear && !strings.HasPrefix(spec.area.Entity, prefix) {
		return fmt.Errorf("watch %q refused: the area's entity %q is not under it", prefix, spec.area.Entity)
	}
	w := &areaWatch{s: s, prefix: prefix, spec: spec, in: make(map[string]struct{})}
	if i := slices.IndexFunc(sx.watches, func(o *areaWatch) bool { return o.s == s && o.prefix == prefix }); i >= 0 {
		n.dropArea(sx, i)
	}
	sx.watches = append(sx.watches, w)
	n.refreshArea(now, now, sx, w)
	// It saw the positions changed since the last refresh as they are
	// now, not as the changes' old positions say: the next refresh
	// queries the index for it.
	w.full = true
	return nil
}

// unwatchArea ends s's spatial watch on prefix.
func (n *Node) unwatchArea(s *session, prefix string) {
	sx := n.spaces[prefix]
	if sx == nil {
		return
	}
	if i := slices.IndexFunc(sx.watches, func(o *areaWatch) bool { return o.s == s && o.prefix == prefix }); i >= 0 {
		n.dropArea(sx, i)
	}
}

func (n *Node) dropArea(sx *spaceIndex, i int) {
	w := sx.watches[i]
	for e := range w.in {
		n.removeAreaWatcher(e, w.s)
	}
	sx.watches = slices.Delete(sx.watches, i, i+1)
}

func (n *Node) removeAreaWatcher(entity string, s *session) {
	list := n.areaWatchers[entity]
	if i := slices.Index(list, s); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(n.areaWatchers, entity)
	} else {
		n.areaWatchers[entity] = list
	}
}

// refreshInterest recomputes every spatial watch's entities, every
// InterestEvery.
func (n *Node) refreshInterest(now int64) {
	every := n.cfg.InterestEvery
	if every == 0 {
		every = DefaultInterestEvery
	}
	if len(n.spaces) == 0 || now-n.lastInterest < int64(every) {
		return
	}
	n.lastInterest = now
	for _, prefix := range n.spaceOrder {
		sx := n.spaces[prefix]
		if !sx.moved {
			continue
		}
		sx.moved = false
		sx.world.Advance(now)
		for i := range sx.changed {
			c := &sx.changed[i]
			c.now, c.ok = sx.world.Position(c.entity, now)
		}
		for _, w := range sx.watches {
			switch {
			case w.s.state != ready:
				w.full = true // it misses these changes
			case w.full || sx.overflow || w.spec.area.Kind != wire.AreaNear || n.areaFull:
				n.refreshArea(now, now, sx, w)
			default:
				n.refreshNear(now, sx, w)
			}
		}
		clear(sx.changed)
		sx.changed = sx.changed[:0]
		clear(sx.movedAt)
		sx.overflow = false
	}
}

// refreshNear brings a near watch up to date from the layer's changes
// since the last refresh, without querying the index: an entity that did
// not move keeps its distance from a followed entity that did not move,
// so only the changed entities can enter or leave. It falls back to a
// full refresh when the followed entity moved or the entities within
// leaveFactor × the radius reach the limit (where Nearest keeps only the
// nearest). Both give the same entities.
func (n *Node) refreshNear(now int64, sx *spaceIndex, w *areaWatch) {
	a := &w.spec.area
	if _, moved := sx.movedAt[a.Entity]; moved {
		n.refreshArea(now, now, sx, w)
		return
	}
	c, ok := sx.world.Position(a.Entity, now)
	if !ok {
		return // no position (yet): keep what is there, as refreshArea does
	}
	far := a.Radius * leaveFactor
	within := func(p physics.Vec2) (float64, bool) {
		d := math.Sqrt(c.Sub(p).Len2()) // as Nearest measures a point
		return d, d <= far
	}
	left, enter := n.scratchLeft[:0], n.scratchEnter[:0]
	touched := false
	near := w.near
	for i := range sx.changed {
		ch := &sx.changed[i]
		wasNear, isNear := false, false
		if ch.hadOld {
			_, wasNear = within(ch.old)
		}
		d := 0.0
		if ch.ok {
			d, isNear = within(ch.now)
		}
		if !wasNear && !isNear {
			continue
		}
		touched = true
		if wasNear {
			near--
		}
		if isNear {
			near++
		}
		_, had := w.in[ch.entity]
		keep := isNear && (d <= a.Radius || had)
		switch {
		case keep && !had:
			enter = append(enter, ch.entity)
		case !keep && had:
			left = append(left, ch.entity)
		}
	}
	n.scratchLeft, n.scratchEnter = left, enter
	if !touched {
		return
	}
	if near >= n.areaLimit() || w.near >= n.areaLimit() {
		clear(left)
		clear(enter)
		n.refreshArea(now, now, sx, w)
		return
	}
	w.near = near
	n.applyDiff(now, now, w, left, enter)
}

func (n *Node) areaLimit() int {
	if limit := n.cfg.Limits.MaxAreaEntities; limit > 0 {
		return limit
	}
	return DefaultMaxAreaEntities
}

// refreshArea diffs w's entities against its area now.
func (n *Node) refreshArea(now, arrived int64, sx *spaceIndex, w *areaWatch) {
	limit := n.areaLimit()
	w.full = false
	n.areaQueries++
	var want []string
	a := w.spec.area
	switch a.Kind {
	case wire.AreaNear:
		c, ok := sx.world.Position(a.Entity, now)
		if !ok {
			return // the followed entity has no position (yet): keep what is there
		}
		near, _ := sx.world.Nearest(c, limit, now, a.Radius*leaveFactor, physics.Filter{}, n.scratchNear[:0])
		n.scratchNear = near
		w.near = len(near)
		for _, e := range near {
			_, had := w.in[e.Path]
			if e.Dist <= a.Radius || had {
				want = append(want, e.Path)
			}
		}
	case wire.AreaRegion:
		box := physics.Box(physics.Vec2{X: a.X0, Y: a.Y0}, physics.Vec2{X: a.X1, Y: a.Y1})
		got, _ := sx.world.Overlaps(box, physics.Vec2{}, now, physics.Filter{}, n.scratchPaths[:0])
		n.scratchPaths = got
		want = append(want, got[:min(len(got), limit)]...)
	}
	n.applyArea(now, arrived, w, want)
}

// applyArea diffs w's entities against want, the entities its area holds
// now (want is sorted in place).
func (n *Node) applyArea(now, arrived int64, w *areaWatch, want []string) {
	slices.Sort(want)
	left := n.scratchLeft[:0]
	for e := range w.in {
		if _, ok := slices.BinarySearch(want, e); !ok {
			left = append(left, e)
		}
	}
	enter := n.scratchEnter[:0]
	for _, e := range want {
		if _, ok := w.in[e]; !ok {
			enter = append(enter, e)
		}
	}
	n.applyDiff(now, arrived, w, left, enter)
}

// applyDiff sends w's watcher a Leave for each entity of left and the
// entities of enter whole, each in path order (both are sorted in place
// and cleared after).
func (n *Node) applyDiff(now, arrived int64, w *areaWatch, left, enter []string) {
	s := w.s
	// Leaves first, so an entity that left and one that entered never
	// exceed the limit together; in path order, so a run repeats.
	slices.Sort(left)
	for _, e := range left {
		delete(w.in, e)
		n.removeAreaWatcher(e, s)
		s.out = append(s.out, delivery{v: wire.Value{Path: e}, kind: deliverLeave})
		n.stats.AreaLeaves++
		n.markDirty(s)
	}
	slices.Sort(enter)
	rate := n.cfg.Limits.SnapshotValuesPerSecond
	for _, e := range enter {
		mark := len(s.out)
		cost, ok := n.snapshot(now, s, e, w.spec, int(s.snaps.avail(arrived, rate)))
		if !ok {
			// Not within the session's snapshot budget now: undone, and
			// tried again at the next refresh.
			clear(s.out[mark:])
			s.out = s.out[:mark]
			w.full = true
			continue
		}
		s.snaps.take(arrived, rate, float64(cost))
		n.stats.SnapshotValues += uint64(cost)
		w.in[e] = struct{}{}
		n.areaWatchers[e] = append(n.areaWatchers[e], s)
		s.out = append(s.out, delivery{v: wire.Value{Path: e}, kind: deliverDone})
		n.stats.AreaEnters++
		n.markDirty(s)
	}
	clear(left)
	n.scratchLeft = left[:0]
	clear(enter)
	n.scratchEnter = enter[:0]
	n.checkBacklog(s)
}
