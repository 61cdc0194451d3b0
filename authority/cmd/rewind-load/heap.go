package main

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
