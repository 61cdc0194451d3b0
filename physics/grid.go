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
	case f < 0:
		return math.Float32frombits(math.Float32bits(f) + 1)
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
// flat open-addressing table so that one probe reaches them. A column keeps
// its newest layer inline, and the newest layer is where writes go, so a
// write costs the probe and the tail of one entry slice; a query pays one
// probe per cell for every bucket it reads.
type grid struct {
	// cols is the table, a power of two long, linear probing with
	// backward-shift deletion (no tombstones); n columns are used.
	cols  []column
	shift uint // 64 - log2(len(cols))
	n     int

	// buckets lists, for each time bucket, the cells holding a layer of
	// it, so that dropping a bucket visits only those.
	buckets map[int64][]uint64
	// spare and spareKeys hold emptied slices for reuse, so that a steady
	// stream of writes stops allocating; drop is scratch.
	spare      [][]entry
	spareKeys  [][]uint64
	spareOlder [][]layer
	drop       []int64
}

// column is one grid cell: its entries in time layers sorted by bucket
// (older, then top, the newest), and the rest layer (pieces at rest that
// hold for ever).
type column struct {
	key    uint64 // packed (x, y)
	used   bool
	hasTop bool
	top    layer
	older  []layer
	rest   []entry
}

type layer struct {
	b  int64
	es []entry
}

const (
	minCols = 64
	// minLayer is the capacity a new layer starts with: a few pieces in
	// a cell over a bucket is the common case, and a pooled slice that
	// starts at it rarely has to grow.
	minLayer = 8
)

func makeGrid() grid {
	return grid{cols: make([]column, minCols), shift: 64 - 6, buckets: make(map[int64][]uint64)}
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

// layer returns the entries of bucket b in column c, creating the layer if
// needed.
func (g *grid) layer(c *column, b int64) *[]entry {
	if es := c.existing(b); es != nil {
		return es
	}
	var es []entry
	if n := len(g.spare); n > 0 {
		es = g.spare[n-1]
		g.spare[n-1] = nil
		g.spare = g.spare[:n-1]
	} else {
		es = make([]entry, 0, minLayer)
	}
	keys, ok := g.buckets[b]
	if !ok {
		if n := len(g.spareKeys); n > 0 {
			keys = g.spareKeys[n-1]
			g.spareKeys = g.spareKeys[:n-1]
		}
	}
	g.buckets[b] = append(keys, c.key)
	switch {
	case !c.hasTop:
		c.top, c.hasTop = layer{b, es}, true
		return &c.top.es
	case b > c.top.b:
		c.older = append(c.older, c.top)
		c.top = layer{b, es}
		return &c.top.es
	}
	i := len(c.older)
	for i > 0 && c.older[i-1].b > b {
		i--
	}
	c.older = append(c.older, layer{})
	copy(c.older[i+1:], c.older[i:])
	c.older[i] = layer{b, es}
	return &c.older[i].es
}

// existing returns the entries of bucket b in column c, or nil.
func (c *column) existing(b int64) *[]entry {
	if !c.hasTop {
		return nil
	}
	if c.top.b == b {
		return &c.top.es
	}
	for i := len(c.older) - 1; i >= 0 && c.older[i].b >= b; i-- {
		if c.older[i].b == b {
			return &c.older[i].es
		}
	}
	return nil
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
		keys := g.buckets[b]
		for _, key := range keys {
			c := g.findKey(key)
			if c == nil || !c.hasTop {
				continue
			}
			if c.top.b == b {
				g.spare = append(g.spare, c.top.es[:0])
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
						g.spare = append(g.spare, c.older[i].es[:0])
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
		g.spareKeys = append(g.spareKeys, keys[:0])
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
