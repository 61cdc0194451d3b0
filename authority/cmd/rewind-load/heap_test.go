package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPacketWheelOrder: the wheel gives the packets out as the heap does
// (due time, ties in sending order, none before it is due), with packets
// near, far beyond the ring and already due, pushed between drains.
func TestPacketWheelOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const width = int64(time.Millisecond)
	w := newPacketWheel(time.Millisecond)
	var h packetHeap
	now, seq := int64(0), uint64(0)
	var out []packet
	for step := range 20000 {
		for range rng.IntN(6) {
			seq++
			var at int64
			switch rng.IntN(10) {
			case 0:
				at = now - rng.Int64N(3*width) // due already
			case 1:
				at = now + rng.Int64N(3*wheelBuckets*width) // beyond the ring
			default:
				at = now + rng.Int64N(200*width)
			}
			at = max(at, 0)
			if rng.IntN(8) == 0 && h.len() > 0 {
				at = h[rng.IntN(h.len())].at // a tie
			}
			k := packet{at: at, seq: seq}
			w.push(k)
			h.push(k)
		}
		now += rng.Int64N(3 * width)
		out = w.due(now, out[:0])
		for i, k := range out {
			if h.len() == 0 || h[0].at > now {
				t.Fatalf("step %d: the wheel gave %d packets, the heap %d", step, len(out), i)
			}
			if want := h.pop(); k.at != want.at || k.seq != want.seq {
				t.Fatalf("step %d: packet %d is (%d, %d), want (%d, %d)", step, i, k.at, k.seq, want.at, want.seq)
			}
		}
		if h.len() > 0 && h[0].at <= now {
			t.Fatalf("step %d: the wheel kept a packet due at %d at %d", step, h[0].at, now)
		}
		if w.len() != h.len() {
			t.Fatalf("step %d: the wheel holds %d, the heap %d", step, w.len(), h.len())
		}
	}
}
