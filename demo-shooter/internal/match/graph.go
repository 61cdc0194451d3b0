package match

import "time"

// GraphSpan and GraphStep shape the HUD's graphs: GraphSpan of history in
// buckets of GraphStep.
const (
	GraphSpan = 10 * time.Second
	GraphStep = 250 * time.Millisecond
)

// Graph keeps the HUD's recent connection figures, one bucket per
// GraphStep over GraphSpan.
type Graph struct {
	buckets [GraphSpan / GraphStep]GraphBucket
	head    int       // index of the current bucket
	start   time.Time // start of the current bucket
}

// GraphBucket is one GraphStep: the latest RTT and clock offset measured
// in it, and the corrections and mispredictions that arrived in it. Seen
// is false for a bucket no frame fell in (before the client started, or
// during a pause).
type GraphBucket struct {
	Seen           bool
	RTT, Offset    time.Duration
	Corrections    int
	Mispredictions int
}

// Add records a frame at wall time now: the RTT and clock offset then, and
// the corrections and mispredictions that arrived in it.
func (g *Graph) Add(now time.Time, rtt, offset time.Duration, corrections, mispredictions int) {
	if g.start.IsZero() {
		g.start = now
	}
	for steps := 0; now.Sub(g.start) >= GraphStep; steps++ {
		g.start = g.start.Add(GraphStep)
		if steps >= len(g.buckets) { // a long pause: everything is old
			g.start = now
		}
		g.head = (g.head + 1) % len(g.buckets)
		g.buckets[g.head] = GraphBucket{}
	}
	b := &g.buckets[g.head]
	b.Seen = true
	b.RTT, b.Offset = rtt, offset
	b.Corrections += corrections
	b.Mispredictions += mispredictions
}

// Buckets returns the buckets oldest first, the current one last.
func (g *Graph) Buckets() []GraphBucket {
	n := len(g.buckets)
	out := make([]GraphBucket, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, g.buckets[(g.head+i)%n])
	}
	return out
}
