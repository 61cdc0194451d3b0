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

func down32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func (b box32) aabb() AABB {
	return AABB{Vec2{float64(b.x0), float64(b.y0)}, Vec2{float64(b.x1), float64(b.y1)}}
}

// overlaps reports whether b shares a point with c.
func (b box32) overlaps(c AABB) bool {
	return float64(b.x0) <= c.Max.X && float64(b.x1) >= c.Min.X && float64(b.y0) <= c.Max.Y && float64(b.y1) >= c.Min.Y
}

// grid holds the cells of the index by column: one column per grid cell
// (x, y) holding all of that cell's time layers, found through one probe of
// a flat open-addressing table. The table is small (16 bytes a column) and
// the layer a write goes to is usually the column's last, so a write costs
// a probe, the column and the tail of one entry slice, and a query pays one
// probe per cell for every bucket it reads.
type grid struct {
	// slots is the table, a power of two long, linear probing with
	// backward-shift deletion (no tombstones); n slots are used.
	slots []slot
	shift uint // 64 - log2(len(slots))
	n     int

	cols     []column
	freeCols []int32
	// buckets lists, for each time bucket, the columns holding a layer of
	// it, so that dropping a bucket visits only those.
	buckets map[int64][]int32
	// spare and spareLists hold emptied slices for reuse, so that a
	// steady stream of writes stops allocating; drop is scratch.
	spare      [][]entry
	spareLists [][]int32
	drop       []int64
}

// slot maps a packed (x, y) key to a column; col is the column index + 1,
// 0 for an empty slot.
type slot struct {
	key uint64
	col int32
}

// column is one grid cell: its entries in time layers sorted by bucket,
// and the rest layer (pieces at rest that hold for ever).
type column struct {
	layers []layer
	rest   []entry
	key    uint64
}

type layer struct {
	b  int64
	es []entry
}

const minSlots = 64

func makeGrid() grid {
	return grid{slots: make([]slot, minSlots), shift: 64 - 6, buckets: make(map[int64][]int32)}
}

func packXY(x, y int32) uint64 { return uint64(uint32(x))<<32 | uint64(uint32(y)) }

func (g *grid) home(key uint64) uint64 { return (key * 0x9e3779b97f4a7c15) >> g.shift }

// find returns the column of cell (x, y), or -1.
func (g *grid) find(x, y int32) int32 {
	key := packXY(x, y)
	mask := uint64(len(g.slots) - 1)
	for i := g.home(key); ; i = (i + 1) & mask {
		s := &g.slots[i]
		if s.col == 0 {
			return -1
		}
		if s.key == key {
			return s.col - 1
		}
	}
}

// column returns the column of cell (x, y), creating it if needed.
func (g *grid) column(x, y int32) int32 {
	key := packXY(x, y)
	mask := uint64(len(g.slots) - 1)
	i := g.home(key)
	for ; g.slots[i].col != 0; i = (i + 1) & mask {
		if g.slots[i].key == key {
			return g.slots[i].col - 1
		}
	}
	var ci int32
	if n := len(g.freeCols); n > 0 {
		ci = g.freeCols[n-1]
		g.freeCols = g.freeCols[:n-1]
	} else {
		ci = int32(len(g.cols))
		g.cols = append(g.cols, column{})
	}
	g.cols[ci].key = key
	g.slots[i] = slot{key, ci + 1}
	g.n++
	if 2*g.n > len(g.slots) {
		g.grow()
	}
	return ci
}

func (g *grid) grow() {
	old := g.slots
	g.slots = make([]slot, 2*len(old))
	g.shift--
	mask := uint64(len(g.slots) - 1)
	for _, s := range old {
		if s.col == 0 {
			continue
		}
		i := g.home(s.key)
		for g.slots[i].col != 0 {
			i = (i + 1) & mask
		}
		g.slots[i] = s
	}
}

// release frees column ci, which must hold no entries.
func (g *grid) release(ci int32) {
	key := g.cols[ci].key
	mask := uint64(len(g.slots) - 1)
	i := g.home(key)
	for g.slots[i].key != key || g.slots[i].col != ci+1 {
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when the hole lies between their home and their slot.
	for {
		g.slots[i] = slot{}
		j := i
		for {
			j = (j + 1) & mask
			if g.slots[j].col == 0 {
				g.n--
				c := &g.cols[ci]
				c.layers, c.rest = c.layers[:0], c.rest[:0]
				g.freeCols = append(g.freeCols, ci)
				return
			}
			h := g.home(g.slots[j].key)
			if (j-h)&mask >= (j-i)&mask {
				g.slots[i] = g.slots[j]
				i = j
				break
			}
		}
	}
}

// layer returns the entries of bucket b in column ci, creating the layer
// if needed.
func (g *grid) layer(ci int32, b int64) *[]entry {
	c := &g.cols[ci]
	i := len(c.layers)
	for i > 0 && c.layers[i-1].b >= b {
		if c.layers[i-1].b == b {
			return &c.layers[i-1].es
		}
		i--
	}
	var es []entry
	if n := len(g.spare); n > 0 {
		es = g.spare[n-1]
		g.spare[n-1] = nil
		g.spare = g.spare[:n-1]
	}
	c.layers = append(c.layers, layer{})
	copy(c.layers[i+1:], c.layers[i:])
	c.layers[i] = layer{b: b, es: es}
	cols, ok := g.buckets[b]
	if !ok {
		if n := len(g.spareLists); n > 0 {
			cols = g.spareLists[n-1]
			g.spareLists = g.spareLists[:n-1]
		}
	}
	g.buckets[b] = append(cols, ci)
	return &c.layers[i].es
}

// existing returns the entries of bucket b in column ci, or nil.
func (g *grid) existing(ci int32, b int64) *[]entry {
	c := &g.cols[ci]
	for i := len(c.layers) - 1; i >= 0 && c.layers[i].b >= b; i-- {
		if c.layers[i].b == b {
			return &c.layers[i].es
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
		cols := g.buckets[b]
		for _, ci := range cols {
			c := &g.cols[ci]
			for i := range c.layers {
				if c.layers[i].b == b {
					g.spare = append(g.spare, c.layers[i].es[:0])
					copy(c.layers[i:], c.layers[i+1:])
					c.layers[len(c.layers)-1] = layer{}
					c.layers = c.layers[:len(c.layers)-1]
					break
				}
			}
			if len(c.layers) == 0 && len(c.rest) == 0 {
				g.release(ci)
			}
		}
		delete(g.buckets, b)
		g.spareLists = append(g.spareLists, cols[:0])
	}
}

// span returns the range of c.layers holding buckets b0 to b1.
func (c *column) span(b0, b1 int64) (lo, hi int) {
	hi = len(c.layers)
	for hi > 0 && c.layers[hi-1].b > b1 {
		hi--
	}
	lo = hi
	for lo > 0 && c.layers[lo-1].b >= b0 {
		lo--
	}
	return lo, hi
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
