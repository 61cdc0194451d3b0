package main

import (
	"slices"
	"time"
)

// The loop's two queues are binary heaps written out for their element
// types: container/heap boxes every pushed packet in an interface (an
// allocation per packet) and calls Less and Swap through it, which cost
// the players' side about 6 % of its CPU at 500 players. Times are
// nanoseconds since the loop's epoch, compared as integers.

// packet is one packet in a simulated link.
type packet struct {
	at  int64 // due, ns since the loop's epoch
	seq uint64
	p   *player
	buf []byte
	up  bool // player → authority
}

// before orders packets by due time, ties in sending order.
func (a *packet) before(b *packet) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// packetHeap holds the packets in flight, the earliest due first.
type packetHeap []packet

func (h *packetHeap) push(k packet) {
	*h = append(*h, k)
	s := *h
	i := len(s) - 1
	for i > 0 {
		j := (i - 1) / 2
		if !s[i].before(&s[j]) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
}

// pop removes and returns the earliest packet; h must not be empty.
func (h *packetHeap) pop() packet {
	s := *h
	k := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = packet{}
	s = s[:n]
	*h = s
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].before(&s[l]) {
			m = r
		}
		if !s[m].before(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return k
}

// playerHeap holds the players by their next deadline (player.at); each
// player knows its index (-1: not in the heap).
type playerHeap []*player

func (h playerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h playerHeap) up(i int) {
	for i > 0 {
		j := (i - 1) / 2
		if h[j].at <= h[i].at {
			break
		}
		h.swap(i, j)
		i = j
	}
}

func (h playerHeap) down(i int) bool {
	i0, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].at < h[l].at {
			m = r
		}
		if h[m].at >= h[i].at {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > i0
}

func (h *playerHeap) push(p *player) {
	p.index = len(*h)
	*h = append(*h, p)
	h.up(p.index)
}

// remove takes the player at index i out of the heap.
func (h *playerHeap) remove(i int) *player {
	s := *h
	n := len(s) - 1
	p := s[i]
	if i != n {
		s.swap(i, n)
	}
	s[n] = nil
	s = s[:n]
	*h = s
	if i != n {
		if !s.down(i) {
			s.up(i)
		}
	}
	p.index = -1
	return p
}

// fix restores the order after the deadline of the player at index i
// changed.
func (h playerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// packetWheel holds the packets in flight in a ring of buckets one loop
// tick wide, by due time, and those due beyond the ring's span in a heap.
// A packet goes into its bucket in constant time, and the packets due
// come out of a few small buckets, sorted there, instead of through a
// heap of every packet in flight (thousands at a few hundred players on
// a 120 ms link). They come out in the order the heap gives: by due
// time, ties in sending order.
type packetWheel struct {
	width   int64      // a bucket's span, ns
	buckets [][]packet // ring; bucket b holds due times in [b*width, (b+1)*width)
	next    int64      // the first bucket not drained
	far     packetHeap // due beyond the ring
	n       int        // packets held
}

// wheelBuckets is the ring's length: at a 1 ms tick, packets due more
// than about a second ahead wait in the heap.
const wheelBuckets = 1024

func newPacketWheel(width time.Duration) packetWheel {
	return packetWheel{width: max(int64(width), 1), buckets: make([][]packet, wheelBuckets)}
}

func (w *packetWheel) len() int { return w.n }

func (w *packetWheel) push(k packet) {
	w.n++
	b := max(k.at/w.width, w.next) // one already due goes out with the next drain
	if b-w.next >= int64(len(w.buckets)) {
		w.far.push(k)
		return
	}
	i := b % int64(len(w.buckets))
	w.buckets[i] = append(w.buckets[i], k)
}

// due appends to out the packets due at or before now, in order, and
// removes them.
func (w *packetWheel) due(now int64, out []packet) []packet {
	start := len(out)
	last := now / w.width
	for w.next <= last {
		i := w.next % int64(len(w.buckets))
		bk := w.buckets[i]
		if len(bk) > 1 {
			slices.SortFunc(bk, cmpPacket)
		}
		k := len(bk)
		if w.next == last {
			// The current bucket: only what is due by now.
			k, _ = slices.BinarySearchFunc(bk, now, func(p packet, t int64) int {
				if p.at <= t {
					return -1
				}
				return 1
			})
		}
		out = append(out, bk[:k]...)
		if w.next == last {
			// The current bucket stays: packets due later in it may
			// still come.
			rest := copy(bk, bk[k:])
			clear(bk[rest:])
			w.buckets[i] = bk[:rest]
			break
		}
		clear(bk)
		w.buckets[i] = bk[:0]
		w.next++
	}
	fromFar := false
	for len(w.far) > 0 && w.far[0].at <= now {
		out = append(out, w.far.pop())
		fromFar = true
	}
	if fromFar {
		slices.SortFunc(out[start:], cmpPacket)
	}
	w.n -= len(out) - start
	return out
}

func cmpPacket(a, b packet) int {
	switch {
	case a.before(&b):
		return -1
	case b.before(&a):
		return 1
	}
	return 0
}

func (h packetHeap) len() int { return len(h) }
