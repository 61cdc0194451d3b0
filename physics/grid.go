package physics

import (
	"math"
	"slices"
)

// entry is one piece in one cell: body id, piece seq, indexed time interval
// and bounds. Entries are conservative: a piece's true extent is within
// them. The bounds are float32 rounded outward, so that an entry takes 40
// bytes rather than 56; they only prune, every candidate is tested exactly.
type entry struct {
	t0, t1 int64
	id     int32
	seq    uint32
	box    box32
}

// box32 is an AABB in float32, rounded outward so that it contains the
// float64 box it was made from.
type box32 struct{ x0, y0, x1, y1 float32 }

func toBox32(b AABB) box32 {
	return box32{down32(b.Min.X), down32(b.Min.Y), up32(b.Max.X), up32(b.Max.Y)}
}

// down32 and up32 round a finite v to a float32 below (above) it: the
// nearest float32, then one ulp further, which is cheaper than finding out
// which way the conversion rounded.
func down32(v float64) float32 {
	f := float32(v)
	switch {
	case f > 0:
		return math.Float32frombits(math.Float32bits(f) - 1)
	case f < 0 && f > -math.MaxFloat32:
		return math.Float32frombits(math.Float32bits(f) + 1)
	case f < 0: // -MaxFloat32 or -Inf: nothing lower but -Inf
		return float32(math.Inf(-1))
	}
	return -math.SmallestNonzeroFloat32
}

func up32(v float64) float32 {
	return -down32(-v)
}

func (b box32) aabb() AABB {
	return AABB{Vec2{float64(b.x0), float64(b.y0)}, Vec2{float64(b.x1), float64(b.y1)}}
}

// overlaps reports whether b shares a point with c.
func (b box32) overlaps(c AABB) bool {
	return float64(b.x0) <= c.Max.X && float64(b.x1) >= c.Min.X && float64(b.y0) <= c.Max.Y && float64(b.y1) >= c.Min.Y
}

// grid holds the cells of the index by column: one column per grid cell
// (x, y) holding all of that cell's time layers, stored in the slots of a
// flat open-addressing table so that one probe reaches them; a query pays
// one probe per cell for every bucket it reads.
//
// The entries of a time bucket live in that bucket's arena, and a layer is
// up to maxChunks runs (chunks) of it. A batch of writes is laid into the
// arena grouped by cell (see fileDense), so writing costs sequential stores
// and one chunk per touched cell rather than a cache miss on a per-cell
// slice, and the cells a query reads together sit together. Dropping a
// bucket recycles its arena whole.
type grid struct {
	// cols is the table, a power of two long, linear probing with
	// backward-shift deletion (no tombstones); n columns are used.
	cols  []column
	shift uint // 64 - log2(len(cols))
	n     int

	buckets map[int64]*bucket
	last    *bucket // the bucket bucketOf returned last, if not dropped since
	// spare buckets, spare column layer arrays and an arena to compact
	// into are kept for reuse, so that steady writing stops allocating;
	// drop is scratch.
	spare      []*bucket
	spareOlder [][]layer
	scratch    []entry
	drop       []int64
}

// bucket is the index of one time bucket: its arena of entries and the
// columns holding a layer of it (so that dropping it visits only those).
// live counts the arena entries that are in some chunk; the rest is room
// reserved after chunks and garbage left by removals and layer copies, all
// reclaimed by maybeCompact.
type bucket struct {
	b    int64
	ents []entry
	live int
	cols []uint64
}

// column is one grid cell: its time layers sorted by bucket (older, then
// top, the newest), and the rest layer (pieces at rest that hold for ever).
type column struct {
	key    uint64 // packed (x, y)
	used   bool
	hasTop bool
	top    layer
	older  []layer
	rest   []entry
}

// layer is a column's entries in one bucket: chunks ch[:nch] of bk.ents,
// the last followed by room free slots reserved for it.
type layer struct {
	b    int64
	bk   *bucket
	nch  int32
	room int32
	ch   [maxChunks]chunk
}

type chunk struct{ off, n int32 }

const (
	minCols   = 64
	maxChunks = 3
	// minArena is the arena garbage tolerated before compaction.
	minArena = 1024
)

// entries returns chunk k of l.
func (l *layer) entries(k int32) []entry {
	ch := l.ch[k]
	return l.bk.ents[ch.off : ch.off+ch.n]
}

func makeGrid() grid {
	return grid{cols: make([]column, minCols), shift: 64 - 6, buckets: make(map[int64]*bucket)}
}

func packXY(x, y int32) uint64 { return uint64(uint32(x))<<32 | uint64(uint32(y)) }

func (g *grid) home(key uint64) uint64 { return (key * 0x9e3779b97f4a7c15) >> g.shift }

// find returns the column of cell (x, y), or nil. The pointer is valid
// until the next change of the table.
func (g *grid) find(x, y int32) *column { return g.findKey(packXY(x, y)) }

func (g *grid) findKey(key uint64) *column {
	mask := uint64(len(g.cols) - 1)
	for i := g.home(key); ; i = (i + 1) & mask {
		c := &g.cols[i]
		if !c.used {
			return nil
		}
		if c.key == key {
			return c
		}
	}
}

// column returns the column of cell (x, y), creating it if needed. The
// pointer is valid until the next change of the table.
func (g *grid) column(x, y int32) *column {
	key := packXY(x, y)
	if 2*(g.n+1) > len(g.cols) {
		g.grow()
	}
	mask := uint64(len(g.cols) - 1)
	i := g.home(key)
	for ; g.cols[i].used; i = (i + 1) & mask {
		if g.cols[i].key == key {
			return &g.cols[i]
		}
	}
	g.n++
	c := &g.cols[i]
	c.key, c.used = key, true
	if n := len(g.spareOlder); n > 0 && c.older == nil {
		c.older = g.spareOlder[n-1]
		g.spareOlder[n-1] = nil
		g.spareOlder = g.spareOlder[:n-1]
	}
	return c
}

func (g *grid) grow() {
	old := g.cols
	g.cols = make([]column, 2*len(old))
	g.shift--
	mask := uint64(len(g.cols) - 1)
	for k := range old {
		if !old[k].used {
			continue
		}
		i := g.home(old[k].key)
		for g.cols[i].used {
			i = (i + 1) & mask
		}
		g.cols[i] = old[k]
	}
}

// release frees the column of key, which must hold no layer and no rest
// entry.
func (g *grid) release(key uint64) {
	mask := uint64(len(g.cols) - 1)
	i := g.home(key)
	for g.cols[i].key != key || !g.cols[i].used {
		i = (i + 1) & mask
	}
	if c := &g.cols[i]; cap(c.older) > 0 {
		g.spareOlder = append(g.spareOlder, c.older[:0])
	}
	g.cols[i] = column{}
	g.n--
	// Backward-shift deletion: move later members of the probe run into
	// the hole when the hole lies between their home and their slot.
	for j := (i + 1) & mask; g.cols[j].used; j = (j + 1) & mask {
		h := g.home(g.cols[j].key)
		if (j-h)&mask >= (j-i)&mask {
			g.cols[i] = g.cols[j]
			g.cols[j] = column{}
			i = j
		}
	}
}

// nlayers returns the number of time layers of c; at(i) is the i-th by
// bucket.
func (c *column) nlayers() int {
	if c.hasTop {
		return len(c.older) + 1
	}
	return 0
}

func (c *column) at(i int) *layer {
	if i == len(c.older) {
		return &c.top
	}
	return &c.older[i]
}

// span returns the range of layers holding buckets b0 to b1.
func (c *column) span(b0, b1 int64) (lo, hi int) {
	hi = c.nlayers()
	for hi > 0 && c.at(hi-1).b > b1 {
		hi--
	}
	lo = hi
	for lo > 0 && c.at(lo-1).b >= b0 {
		lo--
	}
	return lo, hi
}

// existing returns the layer of bucket b in column c, or nil.
func (c *column) existing(b int64) *layer {
	if !c.hasTop {
		return nil
	}
	if c.top.b == b {
		return &c.top
	}
	for i := len(c.older) - 1; i >= 0 && c.older[i].b >= b; i-- {
		if c.older[i].b == b {
			return &c.older[i]
		}
	}
	return nil
}

// bucketOf returns bucket b, creating it if needed.
func (g *grid) bucketOf(b int64) *bucket {
	if g.last != nil && g.last.b == b {
		return g.last
	}
	if bk, ok := g.buckets[b]; ok {
		g.last = bk
		return bk
	}
	var bk *bucket
	if n := len(g.spare); n > 0 {
		bk = g.spare[n-1]
		g.spare = g.spare[:n-1]
	} else {
		bk = new(bucket)
	}
	bk.b = b
	g.buckets[b] = bk
	g.last = bk
	return bk
}

// layer returns the layer of bucket bk in column c, creating it if needed.
func (g *grid) layer(c *column, bk *bucket) *layer {
	if l := c.existing(bk.b); l != nil {
		return l
	}
	bk.cols = append(bk.cols, c.key)
	switch {
	case !c.hasTop:
		c.top, c.hasTop = layer{b: bk.b, bk: bk}, true
		return &c.top
	case bk.b > c.top.b:
		c.older = append(c.older, c.top)
		c.top = layer{b: bk.b, bk: bk}
		return &c.top
	}
	i := len(c.older)
	for i > 0 && c.older[i-1].b > bk.b {
		i--
	}
	c.older = append(c.older, layer{})
	copy(c.older[i+1:], c.older[i:])
	c.older[i] = layer{b: bk.b, bk: bk}
	return &c.older[i]
}

// attach adds the run bk.ents[off:off+n] to the layer of bk in column c:
// it extends the last chunk when the run follows it, takes a new chunk
// while there are fewer than maxChunks, and otherwise copies the layer and
// the run into one chunk at the arena's end, with as much room again
// reserved after it so that single entries added later (add) cost O(1)
// amortised. It leaves compaction to the caller, which may hold runs not
// attached yet.
func (g *grid) attach(c *column, bk *bucket, off, n int32) {
	g.attachTo(g.layer(c, bk), bk, off, n)
}

func (g *grid) attachTo(l *layer, bk *bucket, off, n int32) {
	if k := l.nch - 1; k >= 0 && l.room == 0 && l.ch[k].off+l.ch[k].n == off {
		l.ch[k].n += n
		return
	}
	if l.nch < maxChunks {
		l.ch[l.nch] = chunk{off, n}
		l.nch++
		l.room = 0
		return
	}
	size := n
	for k := range l.nch {
		size += l.ch[k].n
	}
	start := int32(len(bk.ents))
	bk.ents = slices.Grow(bk.ents, int(2*size))
	for k := range l.nch {
		ch := l.ch[k]
		bk.ents = append(bk.ents, bk.ents[ch.off:ch.off+ch.n]...)
	}
	bk.ents = append(bk.ents, bk.ents[off:off+n]...)
	bk.ents = bk.ents[:start+2*size]
	l.ch[0], l.nch, l.room = chunk{start, size}, 1, size
}

// add files one entry in layer b of column c.
func (g *grid) add(c *column, b int64, e entry) {
	bk := g.bucketOf(b)
	bk.live++
	l := g.layer(c, bk)
	if l.room > 0 {
		ch := &l.ch[l.nch-1]
		bk.ents[ch.off+ch.n] = e
		ch.n++
		l.room--
		return
	}
	off := int32(len(bk.ents))
	bk.ents = append(bk.ents, e)
	g.attachTo(l, bk, off, 1)
	g.maybeCompact(bk)
}

// remove deletes the entries of piece (id, seq) from layer b of column c.
func (g *grid) remove(c *column, b int64, id int32, seq uint32) {
	l := c.existing(b)
	if l == nil {
		return
	}
	bk := l.bk
	kept := int32(0)
	for k := range l.nch {
		es := l.entries(k)
		n := int32(len(es))
		for i := int32(0); i < n; {
			if es[i].id == id && es[i].seq == seq {
				es[i] = es[n-1]
				n--
				bk.live--
				continue
			}
			i++
		}
		last := k == l.nch-1
		switch {
		case n > 0:
			if last { // the freed slots join the room after the chunk
				l.room += l.ch[k].n - n
			}
			l.ch[kept] = chunk{l.ch[k].off, n}
			kept++
		case last:
			l.room = 0
		}
	}
	l.nch = kept
	g.maybeCompact(bk)
}

// maybeCompact rewrites bk's arena when garbage outweighs the live
// entries, so that an arena never holds more than about twice what its
// layers use.
func (g *grid) maybeCompact(bk *bucket) {
	if len(bk.ents) <= 2*bk.live+minArena {
		return
	}
	out := g.scratch[:0]
	for _, key := range bk.cols {
		l := g.findKey(key).existing(bk.b)
		start := int32(len(out))
		for k := range l.nch {
			out = append(out, l.entries(k)...)
		}
		l.ch[0], l.nch, l.room = chunk{start, int32(len(out)) - start}, 1, 0
		if start == int32(len(out)) {
			l.nch = 0
		}
	}
	g.scratch, bk.ents = bk.ents[:0], out
	bk.live = len(out)
}

// dropBefore removes every layer of a bucket before hb, and the columns
// left empty. Buckets are dropped in order so that map order never reaches
// the layout.
func (g *grid) dropBefore(hb int64) {
	g.drop = g.drop[:0]
	for b := range g.buckets {
		if b < hb {
			g.drop = append(g.drop, b)
		}
	}
	slices.Sort(g.drop)
	for _, b := range g.drop {
		bk := g.buckets[b]
		for _, key := range bk.cols {
			c := g.findKey(key)
			if c == nil || !c.hasTop {
				continue
			}
			if c.top.b == b {
				if n := len(c.older); n > 0 {
					c.top = c.older[n-1]
					c.older[n-1] = layer{}
					c.older = c.older[:n-1]
				} else {
					c.top, c.hasTop = layer{}, false
				}
			} else {
				for i := range c.older {
					if c.older[i].b == b {
						copy(c.older[i:], c.older[i+1:])
						c.older[len(c.older)-1] = layer{}
						c.older = c.older[:len(c.older)-1]
						break
					}
				}
			}
			if !c.hasTop && len(c.rest) == 0 {
				g.release(key)
			}
		}
		delete(g.buckets, b)
		if g.last == bk {
			g.last = nil
		}
		bk.ents, bk.cols, bk.live = bk.ents[:0], bk.cols[:0], 0
		g.spare = append(g.spare, bk)
	}
}

// removeEntry deletes the entries of piece (id, seq) from es.
func removeEntry(es []entry, id int32, seq uint32) []entry {
	kept := es[:0]
	for _, e := range es {
		if e.id != id || e.seq != seq {
			kept = append(kept, e)
		}
	}
	return kept
}
