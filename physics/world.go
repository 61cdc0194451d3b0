package physics

import (
	"fmt"
	"math"
	"slices"
)

// MaxPathLen bounds the length of a body path in bytes.
const MaxPathLen = 1024

// Body is one shape moving along a piecewise-linear motion.
type Body struct {
	// Path names the body, e.g. "players/42". Queries break ties by path.
	Path string
	// Shape is the body's shape in its local frame, for its whole history.
	Shape Shape
	// Layers is the body's layer bit set, matched against Filter.Layers.
	Layers uint32
	// Motion is the body's keyframes in strictly increasing time order.
	Motion []Keyframe
}

// World indexes bodies moving over time and answers spatial queries at
// present and past times. It is a pure core: it reads no clock (time is an
// argument of every call) and owns no goroutine. A World is not safe for
// concurrent use, queries included: they reuse scratch state.
type World struct {
	// immutable after construction
	cfg    Config
	inv    float64 // 1 / cfg.CellSize
	bucket int64   // cfg.Bucket in nanoseconds
	extrap int64   // cfg.Extrapolate in nanoseconds

	// bodies: ids maps a path to its slot in bodies; free lists empty slots.
	ids    map[string]int32
	bodies []body
	free   []int32

	// index: g holds the grid cells by column, each with a layer per time
	// bucket and a rest layer for pieces at rest. A piece at most one
	// bucket long is filed under the bucket of its start, a longer one
	// under every bucket it spans from the horizon on, so a query at t
	// reads buckets bucket(t)-1 and bucket(t); big is the oversize list;
	// ext bounds the cells ever used.
	g   grid
	big []entry
	ext extent

	// filing queue: every grid piece but those of the rest layer is queued
	// in pend and filed by flush, before any query and in Advance, grouped
	// by cell so that a batch of writes visits each column once rather
	// than once per piece; Seed queues its bodies as one batch (seeding).
	// spare, count, cells and cells2 are flush scratch.
	pend    []pending
	pendExt extent // the cells of the queued pieces
	seeding bool
	spare   []pending
	count   []int32
	cells   []cellEntry
	cells2  []cellEntry

	// time: now is the latest Advance, horizon = now - Window.
	now, horizon int64

	// query scratch
	stamp uint64
	ids32 []int32
	// cellProbes counts the grid cells raycasts have visited, so tests
	// can hold a walk to its bound without timing it.
	cellProbes int
}

type body struct {
	path   string
	shape  Shape
	lb     AABB // shape.Bounds()
	layers uint32
	live   bool
	mark   uint64 // query stamp that last considered this body
	seq    uint32 // next piece sequence number; never reset, even on reuse
	keys   []Keyframe
	meta   []pieceMeta // parallel to keys
}

// pieceMeta records where a piece is indexed: over [T, ixEnd] (ixEnd ≥ the
// piece's end, or math.MaxInt64 in the rest layer), in the grid or in the
// oversize list. pend is 1 + the piece's place in World.pend when it was
// queued for filing; the record there still holds the piece (same id and
// seq) only until the queue is filed.
type pieceMeta struct {
	seq   uint32
	pend  int32
	big   bool
	ixEnd int64
}

type extent struct {
	ok             bool
	x0, y0, x1, y1 int32
}

const restBucket = math.MinInt64

// New returns an empty World, or ErrConfig if cfg is invalid.
func New(cfg Config) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &World{
		cfg:     cfg,
		inv:     1 / cfg.CellSize,
		bucket:  int64(cfg.Bucket),
		extrap:  int64(cfg.Extrapolate),
		ids:     make(map[string]int32),
		g:       makeGrid(),
		now:     math.MinInt64,
		horizon: math.MinInt64,
	}, nil
}

// Len returns the number of bodies.
func (w *World) Len() int { return len(w.ids) }

// Horizon returns the oldest time queries may ask about: the latest Advance
// minus Config.Window (math.MinInt64 before the first Advance).
func (w *World) Horizon() int64 { return w.horizon }

// Position returns the position of the body at path at time t, and false
// when there is no such body or its motion does not cover t.
func (w *World) Position(path string, t int64) (Vec2, bool) {
	id, ok := w.ids[path]
	if !ok {
		return Vec2{}, false
	}
	return positionAt(w.retained(id), t, w.extrap)
}

// Motion appends the retained keyframes of the body at path to dst.
func (w *World) Motion(path string, dst []Keyframe) []Keyframe {
	if id, ok := w.ids[path]; ok {
		dst = append(dst, w.retained(id)...)
	}
	return dst
}

func validatePath(p string) error {
	if p == "" || len(p) > MaxPathLen {
		return fmt.Errorf("%w: length %d must be in [1, %d]", ErrPath, len(p), MaxPathLen)
	}
	return nil
}

func (w *World) checkTime(t int64) error {
	if t < MinTime || t > MaxTime {
		return fmt.Errorf("%w: %d", ErrTime, t)
	}
	if t < w.horizon {
		return fmt.Errorf("%w: %d is before %d", ErrTooOld, t, w.horizon)
	}
	return nil
}

// Upsert sets the motion of the body at path from k.T on: keyframes at or
// after k.T are replaced by k, so an append is the common case and a
// correction rewrites the recent past. A new path creates the body with
// Layers 0. A shape different from the body's current one replaces it for
// the whole retained history.
func (w *World) Upsert(path string, shape Shape, k Keyframe) error {
	if err := validatePath(path); err != nil {
		return err
	}
	if err := k.validate(); err != nil {
		return err
	}
	if k.T < w.horizon {
		return fmt.Errorf("%w: keyframe at %d is before %d", ErrTooOld, k.T, w.horizon)
	}
	id, ok := w.ids[path]
	reshape := !ok || w.bodies[id].shape != shape
	if reshape { // a stored shape is valid
		if err := shape.Validate(); err != nil {
			return err
		}
	}
	if !ok {
		if len(w.ids) >= w.cfg.MaxBodies {
			return fmt.Errorf("%w: limit %d", ErrTooManyBodies, w.cfg.MaxBodies)
		}
		id = w.alloc(path, shape, 0)
		w.appendKey(id, k)
		return nil
	}
	b := &w.bodies[id]
	// Expired keyframes are dropped when the motion fills its capacity and
	// they are half of it (so that the copy is paid once per many writes,
	// and a write does not read the motion's head), or when the limit
	// needs their room.
	if len(b.keys) == cap(b.keys) || len(b.meta) == cap(b.meta) || len(b.keys) >= w.cfg.MaxKeyframes {
		if n := w.expired(id); n > 0 && (2*n >= len(b.keys) || len(b.keys) >= w.cfg.MaxKeyframes) {
			w.trim(id)
		}
	}
	cut := len(b.keys)
	if cut > 0 && b.keys[cut-1].T >= k.T {
		cut = countBefore(b.keys, k.T) // a correction
	}
	if cut+1 > w.cfg.MaxKeyframes { // exact: expired keyframes were dropped if they would count
		return fmt.Errorf("%w: %q holds %d keyframes, limit %d", ErrHistoryFull, path, cut, w.cfg.MaxKeyframes)
	}
	if reshape {
		w.unindexFrom(id, 0)
		b.shape, b.lb = shape, shape.Bounds()
		w.reindexFrom(id, 0)
	}
	w.unindexFrom(id, cut)
	b.keys, b.meta = b.keys[:cut], b.meta[:cut]
	w.appendKey(id, k)
	return nil
}

// Set replaces the body b.Path (creating it if needed) with b.
func (w *World) Set(b Body) error {
	return w.Seed([]Body{b})
}

// Seed adds or replaces many bodies at once. It validates every body first
// and changes nothing if any is invalid, repeats a path, or would exceed
// MaxBodies.
func (w *World) Seed(bodies []Body) error {
	seen := make(map[string]struct{}, len(bodies))
	added := 0
	for i := range bodies {
		b := &bodies[i]
		if err := validatePath(b.Path); err != nil {
			return err
		}
		if _, dup := seen[b.Path]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicate, b.Path)
		}
		seen[b.Path] = struct{}{}
		if err := b.Shape.Validate(); err != nil {
			return fmt.Errorf("%q: %w", b.Path, err)
		}
		if err := validateMotion(b.Motion, w.cfg.MaxKeyframes); err != nil {
			return fmt.Errorf("%q: %w", b.Path, err)
		}
		if last := b.Motion[len(b.Motion)-1].T; last < w.horizon {
			return fmt.Errorf("%q: %w: last keyframe at %d is before %d", b.Path, ErrTooOld, last, w.horizon)
		}
		if _, ok := w.ids[b.Path]; !ok {
			added++
		}
	}
	if len(w.ids)+added > w.cfg.MaxBodies {
		return fmt.Errorf("%w: %d + %d exceeds %d", ErrTooManyBodies, len(w.ids), added, w.cfg.MaxBodies)
	}
	w.seeding = true
	defer func() { w.seeding = false; w.flush() }()
	for i := range bodies {
		b := &bodies[i]
		w.Remove(b.Path)
		id := w.alloc(b.Path, b.Shape, b.Layers)
		nb := &w.bodies[id]
		nb.keys = append(nb.keys[:0], b.Motion...)
		nb.meta = append(nb.meta[:0], make([]pieceMeta, len(b.Motion))...)
		w.trim(id)
		w.reindexFrom(id, 0)
	}
	return nil
}

// Remove deletes the body at path and reports whether it existed.
func (w *World) Remove(path string) bool {
	id, ok := w.ids[path]
	if !ok {
		return false
	}
	w.unindexFrom(id, 0)
	b := &w.bodies[id]
	seq := b.seq
	*b = body{seq: seq, keys: b.keys[:0], meta: b.meta[:0]}
	delete(w.ids, path)
	w.free = append(w.free, id)
	return true
}

// Advance moves the history window to end at now: keyframes whose piece
// ended before now - Window are dropped, with the index layers that
// only they used. Advance costs the index layers it drops, not the number
// of bodies: a body's own old keyframes are dropped by its next write
// (and are invisible until then). A now earlier than a previous one is ignored, so the
// window never moves back.
func (w *World) Advance(now int64) error {
	if now < MinTime || now > MaxTime {
		return fmt.Errorf("%w: %d", ErrTime, now)
	}
	if now <= w.now {
		return nil
	}
	w.now = now
	w.horizon = now - int64(w.cfg.Window)
	// A piece no longer than a bucket lives in its start bucket only, so
	// the bucket before the horizon's may still hold pieces reaching it.
	// Dropping first lets the queued pieces reuse the dropped arenas.
	w.g.dropBefore(floorDiv(w.horizon, w.bucket) - 1)
	w.flush()
	kept := w.big[:0]
	for _, e := range w.big {
		if e.t1 >= w.horizon {
			kept = append(kept, e)
		}
	}
	clear(w.big[len(kept):])
	w.big = kept
	return nil
}

// expired returns the number of leading keyframes of the body whose piece
// ends before the horizon, keeping at least the last one.
func (w *World) expired(id int32) int {
	return max(0, countBefore(w.bodies[id].keys, w.horizon)-1)
}

// retained returns the body's keyframes from the piece holding at the
// horizon on. Queries may use all of b.keys: pieces that end before the
// horizon never hold at a time a query may ask about.
func (w *World) retained(id int32) []Keyframe {
	return w.bodies[id].keys[w.expired(id):]
}

// trim drops the body's pieces that end before the horizon, keeping
// at least the last one. Their index entries stay until their bucket is
// dropped; they are harmless because every candidate is tested exactly.
func (w *World) trim(id int32) {
	b := &w.bodies[id]
	n := w.expired(id)
	if n == 0 {
		return
	}
	m := copy(b.keys, b.keys[n:])
	copy(b.meta, b.meta[n:])
	b.keys, b.meta = b.keys[:m], b.meta[:m]
}

func (w *World) alloc(path string, shape Shape, layers uint32) int32 {
	var id int32
	if n := len(w.free); n > 0 {
		id = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		id = int32(len(w.bodies))
		w.bodies = append(w.bodies, body{})
	}
	b := &w.bodies[id]
	b.path, b.shape, b.lb, b.layers, b.live = path, shape, shape.Bounds(), layers, true
	w.ids[path] = id
	return id
}

// appendKey appends k (later than every kept keyframe) to the body's motion
// and indexes it, first extending the previous piece's indexed interval if
// k lands beyond it.
func (w *World) appendKey(id int32, k Keyframe) {
	b := &w.bodies[id]
	if n := len(b.keys); n > 0 {
		if m := &b.meta[n-1]; m.ixEnd < k.T || m.ixEnd == math.MaxInt64 {
			w.unindex(id, n-1)
			b.keys = append(b.keys, k) // the previous piece now ends at k.T
			b.meta = append(b.meta, pieceMeta{})
			w.index(id, n-1)
			w.index(id, n)
			return
		}
	}
	b.keys = append(b.keys, k)
	b.meta = append(b.meta, pieceMeta{})
	w.index(id, len(b.keys)-1)
}

// unindexFrom removes the index entries of pieces i.. of a body.
func (w *World) unindexFrom(id int32, i int) {
	for j := i; j < len(w.bodies[id].keys); j++ {
		w.unindex(id, j)
	}
}

// reindexFrom indexes pieces i.. of a body afresh.
func (w *World) reindexFrom(id int32, i int) {
	for j := i; j < len(w.bodies[id].keys); j++ {
		w.index(id, j)
	}
}

// footprint returns the indexed time interval, bounds and cell range of
// piece i as it would be indexed now.
func (w *World) footprint(b *body, i int, ixEnd int64) (e entry, x0, y0, x1, y1 int32, b0, b1 int64, inGrid bool) {
	k := b.keys[i]
	lb := b.lb
	e.t0, e.t1 = k.T, ixEnd
	var box AABB
	if ixEnd == math.MaxInt64 {
		box = lb.Translate(k.Pos)
		b0, b1 = restBucket, restBucket
	} else {
		box = sweptBox(lb, k.Pos, k.At(ixEnd))
		if ixEnd-k.T <= w.bucket {
			// Short pieces (the common case) are filed under their start
			// bucket only; queries also read the bucket before theirs.
			b0 = floorDiv(k.T, w.bucket)
			b1 = b0
		} else {
			b0, b1 = floorDiv(max(k.T, w.horizon), w.bucket), floorDiv(ixEnd, w.bucket)
		}
	}
	box = pad(box, w.cfg.CellSize)
	e.box = toBox32(box)
	x0, y0, x1, y1, inGrid = w.cellRange(box)
	if inGrid {
		n := (int64(x1) - int64(x0) + 1) * (int64(y1) - int64(y0) + 1)
		if nb := b1 - b0 + 1; nb > int64(w.cfg.MaxEntryCells) || n*nb > int64(w.cfg.MaxEntryCells) {
			inGrid = false
		}
	}
	return
}

// sweptBox returns the bounds of local bounds lb moved from p to q. The
// plain comparisons are exact for the finite values here and cheaper than
// math.Min and math.Max.
func sweptBox(lb AABB, p, q Vec2) AABB {
	lo, hi := p, q
	if q.X < p.X {
		lo.X, hi.X = q.X, p.X
	}
	if q.Y < p.Y {
		lo.Y, hi.Y = q.Y, p.Y
	}
	return AABB{lo.Add(lb.Min), hi.Add(lb.Max)}
}

// pad grows a box by a margin far above float64 rounding at its magnitude,
// so a point computed on its edge by another formula still falls in the
// box's cells.
func pad(b AABB, cs float64) AABB {
	m := 1e-6*cs + 1e-12*(math.Abs(b.Min.X)+math.Abs(b.Min.Y)+math.Abs(b.Max.X)+math.Abs(b.Max.Y))
	return b.Inflate(m)
}

// gridLimit bounds the cell coordinates the grid uses, inside int32.
const gridLimit = 1 << 30

func (w *World) cellRange(box AABB) (x0, y0, x1, y1 int32, ok bool) {
	fx0, fy0 := math.Floor(box.Min.X*w.inv), math.Floor(box.Min.Y*w.inv)
	fx1, fy1 := math.Floor(box.Max.X*w.inv), math.Floor(box.Max.Y*w.inv)
	if !(fx0 >= -gridLimit && fy0 >= -gridLimit && fx1 <= gridLimit && fy1 <= gridLimit) {
		return 0, 0, 0, 0, false
	}
	return int32(fx0), int32(fy0), int32(fx1), int32(fy1), true
}

func (w *World) index(id int32, i int) {
	b := &w.bodies[id]
	ixEnd := pieceEnd(b.keys, i, w.extrap)
	b.meta[i] = pieceMeta{seq: b.seq, ixEnd: ixEnd}
	b.seq++
	e, x0, y0, x1, y1, b0, b1, grid := w.footprint(b, i, ixEnd)
	e.id, e.seq = id, b.meta[i].seq
	if ixEnd != math.MaxInt64 && ixEnd < w.horizon {
		return // wholly before the window: never asked about
	}
	if !grid {
		b.meta[i].big = true
		w.big = append(w.big, e)
		return
	}
	w.ext = w.ext.widen(x0, y0, x1, y1)
	if b0 == restBucket {
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				c := w.g.column(x, y)
				c.rest = append(c.rest, e)
			}
		}
		return
	}
	// One record per bucket, consecutive, so that unindex finds them all.
	b.meta[i].pend = int32(len(w.pend)) + 1
	for bk := b0; bk <= b1; bk++ {
		w.pend = append(w.pend, pending{e: e, b: bk, x0: x0, y0: y0, x1: x1, y1: y1})
	}
	w.pendExt = w.pendExt.widen(x0, y0, x1, y1)
	if len(w.pend) >= maxPending && !w.seeding || len(w.pend) >= maxSeedPending {
		w.flush()
	}
}

// widen returns e extended to cover cells x0..x1 × y0..y1.
func (e extent) widen(x0, y0, x1, y1 int32) extent {
	if !e.ok {
		return extent{true, x0, y0, x1, y1}
	}
	return extent{true, min(e.x0, x0), min(e.y0, y0), max(e.x1, x1), max(e.y1, y1)}
}

// maxPending bounds the filing queue (maxSeedPending within Seed); a queue
// shorter than minSorted is filed in write order: its columns fit in cache
// anyway. denseCells bounds the cell span of a batch grouped by counting.
const (
	maxPending     = 1 << 14
	maxSeedPending = 1 << 20
	minSorted      = 1 << 9
	denseCells     = 1 << 16
)

// pending is a piece waiting to be filed in the cells x0..x1 × y0..y1 of
// bucket b (a piece spanning several buckets has a record for each); e.id
// is -1 once the piece is unindexed.
type pending struct {
	e              entry
	b              int64
	x0, y0, x1, y1 int32
}

// flush files the queued pieces. A batch of at least minSorted is split by
// bucket (a stable sort, when it holds several) and each bucket's pieces
// are laid into its arena grouped by cell (fileDense, or fileSparse when
// their cells span more than denseCells); a smaller one is filed piece by
// piece. Every order used depends only on the writes.
func (w *World) flush() {
	if len(w.pend) == 0 {
		return
	}
	// No query reads a bucket before hb (a short piece filed there ends
	// before the horizon). Nothing unindexes during a flush, so the queue
	// can be compacted in place.
	hb := floorDiv(w.horizon, w.bucket) - 1
	if len(w.pend) < minSorted {
		for i := range w.pend {
			p := &w.pend[i]
			if p.e.id < 0 || p.b < hb {
				continue
			}
			for y := p.y0; y <= p.y1; y++ {
				for x := p.x0; x <= p.x1; x++ {
					w.g.add(w.g.column(x, y), p.b, p.e)
				}
			}
		}
	} else {
		live := w.pend[:0]
		mixed := false
		for i := range w.pend {
			if p := w.pend[i]; p.e.id >= 0 && p.b >= hb {
				mixed = mixed || len(live) > 0 && p.b != live[0].b
				live = append(live, p)
			}
		}
		if mixed {
			w.spare = slices.Grow(w.spare[:0], len(live))[:len(live)]
			live = sortByBucket(live, w.spare)
		}
		for len(live) > 0 {
			n := 1
			for n < len(live) && live[n].b == live[0].b {
				n++
			}
			if !w.fileDense(live[:n]) {
				w.fileSparse(live[:n])
			}
			live = live[n:]
		}
	}
	w.pend, w.pendExt = w.pend[:0], extent{}
}

// sortByBucket sorts a by bucket, stably, using tmp (as long as a) as
// scratch, and returns whichever of the two holds the result. It makes a
// pass only for the bytes in which the buckets differ.
func sortByBucket(a, tmp []pending) []pending {
	lo := a[0].b
	for i := range a {
		lo = min(lo, a[i].b)
	}
	or := uint64(0)
	for i := range a {
		or |= uint64(a[i].b - lo)
	}
	for shift := uint(0); shift < 64; shift += 8 {
		if byte(or>>shift) == 0 {
			continue
		}
		var count [256]int32
		for i := range a {
			count[byte(uint64(a[i].b-lo)>>shift)]++
		}
		sum := int32(0)
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i := range a {
			d := byte(uint64(a[i].b-lo) >> shift)
			tmp[count[d]] = a[i]
			count[d]++
		}
		a, tmp = tmp, a
	}
	return a
}

// cellEntry is an entry bound for the cell of key.
type cellEntry struct {
	key uint64
	e   entry
}

// fileSparse lays the pieces of one bucket, group, into the bucket's arena
// grouped by cell, by sorting their (cell, entry) pairs: the layout
// fileDense makes, for pieces spread too wide to count by cell.
func (w *World) fileSparse(group []pending) {
	cells := w.cells[:0]
	for i := range group {
		p := &group[i]
		for x := p.x0; x <= p.x1; x++ {
			for y := p.y0; y <= p.y1; y++ {
				cells = append(cells, cellEntry{packXY(x, y), p.e})
			}
		}
	}
	tmp := slices.Grow(w.cells2[:0], len(cells))[:len(cells)]
	sorted := radixSort(cells, tmp)
	bk := w.g.bucketOf(group[0].b)
	base := int32(len(bk.ents))
	for i := range sorted {
		bk.ents = append(bk.ents, sorted[i].e)
	}
	bk.live += len(sorted)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].key == sorted[i].key {
			j++
		}
		key := sorted[i].key
		w.g.attach(w.g.column(int32(key>>32), int32(uint32(key))), bk, base+int32(i), int32(j-i))
		i = j
	}
	w.g.maybeCompact(bk)
	w.cells, w.cells2 = cells[:0], tmp[:0]
}

// radixSort sorts a by key, stably, using tmp (as long as a) as scratch,
// and returns whichever of the two holds the result. It makes a pass only
// for the key bytes that differ.
func radixSort(a, tmp []cellEntry) []cellEntry {
	and, or := ^uint64(0), uint64(0)
	for i := range a {
		and &= a[i].key
		or |= a[i].key
	}
	for shift := uint(0); shift < 64; shift += 8 {
		if byte((and^or)>>shift) == 0 {
			continue
		}
		var count [256]int32
		for i := range a {
			count[byte(a[i].key>>shift)]++
		}
		sum := int32(0)
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i := range a {
			d := byte(a[i].key >> shift)
			tmp[count[d]] = a[i]
			count[d]++
		}
		a, tmp = tmp, a
	}
	return a
}

// fileDense lays the pieces of one bucket, group, into the bucket's arena
// grouped by cell when the queue's cells span at most denseCells: it counts
// the entries per cell, places them in cell order, and attaches each cell's
// run to its column as one chunk. It reports false, doing nothing, when the
// span is wider.
func (w *World) fileDense(group []pending) bool {
	// The queue's extent bounds the cells of the group's pieces.
	x0, y0, x1, y1 := w.pendExt.x0, w.pendExt.y0, w.pendExt.x1, w.pendExt.y1
	wx, wy := int64(x1)-int64(x0)+1, int64(y1)-int64(y0)+1
	if wx*wy > denseCells {
		return false
	}
	count := slices.Grow(w.count[:0], int(wx*wy))[:wx*wy]
	w.count = count
	clear(count)
	total := int32(0)
	for i := range group {
		p := &group[i]
		for x := p.x0; x <= p.x1; x++ {
			d := (int64(x)-int64(x0))*wy + int64(p.y0) - int64(y0)
			for y := p.y0; y <= p.y1; y++ {
				count[d]++
				d++
			}
		}
		total += int32(p.x1-p.x0+1) * int32(p.y1-p.y0+1)
	}
	bk := w.g.bucketOf(group[0].b)
	base := int32(len(bk.ents))
	bk.ents = slices.Grow(bk.ents, int(total))[:base+total]
	bk.live += int(total)
	sum := base
	for d, c := range count {
		count[d] = sum
		sum += c
	}
	for i := range group {
		p := &group[i]
		for x := p.x0; x <= p.x1; x++ {
			d := (int64(x)-int64(x0))*wy + int64(p.y0) - int64(y0)
			for y := p.y0; y <= p.y1; y++ {
				bk.ents[count[d]] = p.e
				count[d]++
				d++
			}
		}
	}
	// count[d] is now the end of cell d's run, which starts where the
	// previous cell's ends.
	start := base
	for d, end := range count {
		if end > start {
			x, y := x0+int32(int64(d)/wy), y0+int32(int64(d)%wy)
			w.g.attach(w.g.column(x, y), bk, start, end-start)
		}
		start = end
	}
	w.g.maybeCompact(bk)
	return true
}

// unindex removes the entries of piece i, found again from its footprint:
// buckets dropped since it was indexed hold nothing any more, and the bounds
// do not depend on the horizon.
func (w *World) unindex(id int32, i int) {
	b := &w.bodies[id]
	m := b.meta[i]
	if m.big {
		kept := removeEntry(w.big, id, m.seq)
		clear(w.big[len(kept):])
		w.big = kept
		return
	}
	queued := func(p int) bool { return p >= 0 && p < len(w.pend) && w.pend[p].e.id == id && w.pend[p].e.seq == m.seq }
	if p := int(m.pend) - 1; queued(p) {
		for ; queued(p); p++ {
			w.pend[p].e.id = -1 // still queued: nothing filed yet
		}
		return
	}
	_, x0, y0, x1, y1, b0, b1, _ := w.footprint(b, i, m.ixEnd)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			c := w.g.find(x, y)
			if c == nil {
				continue
			}
			if b0 == restBucket {
				c.rest = removeEntry(c.rest, id, m.seq)
				if len(c.rest) == 0 && !c.hasTop {
					w.g.release(c.key)
				}
				continue
			}
			for bk := b0; bk <= b1; bk++ {
				w.g.remove(c, bk, id, m.seq)
			}
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
