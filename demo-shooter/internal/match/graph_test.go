package match

import (
	"testing"
	"time"
)

func TestGraph(t *testing.T) {
	var g Graph
	t0 := time.Unix(100, 0)
	ms := time.Millisecond
	g.Add(t0, 10*ms, ms, 1, 0)
	g.Add(t0.Add(GraphStep/2), 20*ms, -2*ms, 2, 1)
	g.Add(t0.Add(GraphStep*3/2), 30*ms, 3*ms, 0, 0)
	bs := g.Buckets()
	n := len(bs)
	if n != int(GraphSpan/GraphStep) {
		t.Fatalf("%d buckets", n)
	}
	if got := bs[n-2]; got != (GraphBucket{Seen: true, RTT: 20 * ms, Offset: -2 * ms, Corrections: 3, Mispredictions: 1}) {
		t.Errorf("previous bucket %+v", got)
	}
	if got := bs[n-1]; got != (GraphBucket{Seen: true, RTT: 30 * ms, Offset: 3 * ms}) {
		t.Errorf("current bucket %+v", got)
	}
	if bs[n-3].Seen {
		t.Errorf("bucket before the first frame %+v, want unseen", bs[n-3])
	}
	// A pause longer than the span leaves only the new sample.
	g.Add(t0.Add(time.Hour), 40*ms, 0, 5, 2)
	bs = g.Buckets()
	for i, b := range bs[:n-1] {
		if b != (GraphBucket{}) {
			t.Fatalf("bucket %d after a long pause: %+v", i, b)
		}
	}
	if bs[n-1] != (GraphBucket{Seen: true, RTT: 40 * ms, Corrections: 5, Mispredictions: 2}) {
		t.Errorf("current bucket after a long pause %+v", bs[n-1])
	}
}
