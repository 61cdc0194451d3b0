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
// since the last refresh is skipped. An entity leaves a near area only
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
}

// areaWatch is one session's spatial watch on a layer.
type areaWatch struct {
	s      *session
	prefix string
	spec   watchSpec
	in     map[string]struct{} // the entities the watcher has now
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
		out[l.Prefix] = &spaceIndex{layer: l, world: w, latest: make(map[string]int64)}
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
		for _, w := range sx.watches {
			if w.s.state == ready {
				n.refreshArea(now, now, sx, w)
			}
		}
	}
}

// refreshArea diffs w's entities against its area now.
func (n *Node) refreshArea(now, arrived int64, sx *spaceIndex, w *areaWatch) {
	s := w.s
	limit := n.cfg.Limits.MaxAreaEntities
	if limit <= 0 {
		limit = DefaultMaxAreaEntities
	}
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
	slices.Sort(want)
	// Leaves first, so an entity that left and one that entered never
	// exceed the limit together.
	for e := range w.in {
		if _, ok := slices.BinarySearch(want, e); !ok {
			delete(w.in, e)
			n.removeAreaWatcher(e, s)
			s.out = append(s.out, delivery{v: wire.Value{Path: e}, kind: deliverLeave})
			n.stats.AreaLeaves++
			n.markDirty(s)
		}
	}
	rate := n.cfg.Limits.SnapshotValuesPerSecond
	for _, e := range want {
		if _, ok := w.in[e]; ok {
			continue
		}
		mark := len(s.out)
		cost, ok := n.snapshot(now, s, e, w.spec, int(s.snaps.avail(arrived, rate)))
		if !ok {
			// Not within the session's snapshot budget now: undone, and
			// tried again at the next refresh.
			clear(s.out[mark:])
			s.out = s.out[:mark]
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
	n.checkBacklog(s)
}
