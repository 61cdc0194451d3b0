package timesync

import (
	"testing"
	"time"
)

// BenchmarkNow is the cost of a synced read on the system clock; its
// baselines, in the same run, are the raw Source read it is built on and
// time.Now.
func BenchmarkNow(b *testing.B) {
	src := SystemSource()
	b.Run("baseline=time.Now", func(b *testing.B) {
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("baseline=SystemSource.Nanos", func(b *testing.B) {
		for b.Loop() {
			_ = src.Nanos()
		}
	})
	c := syncedClock(b, src)
	b.Run("Clock.Now", func(b *testing.B) {
		for b.Loop() {
			_ = c.Now()
		}
	})
	// The clock's own work, without the system clock read: a fixed
	// source.
	fixed := &fakeSource{}
	fixed.ns.Store(src.Nanos())
	cf := syncedClock(b, fixed)
	b.Run("Clock.Now/fixed-source", func(b *testing.B) {
		for b.Loop() {
			_ = cf.Now()
		}
	})
	b.Run("Clock.Now/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = c.Now()
			}
		})
	})
}

// syncedClock returns a clock on src that has taken a full window of
// perfect samples, so Now runs its synced path.
func syncedClock(b *testing.B, src Source) *Clock {
	c, err := New(src, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for range DefaultConfig().Window {
		req := c.Request()
		at := src.Nanos() + int64(time.Second)
		if err := c.Observe(Answer(req, at, at), c.Local()); err != nil {
			b.Fatal(err)
		}
	}
	if !c.Synced() {
		b.Fatal("not synced")
	}
	return c
}

// BenchmarkIngest is the cost of one sample with a full window (128):
// Estimator.Add alone and Clock.Observe (Add plus retargeting). The
// baseline is Cristian's filter over the same window: keep the samples,
// take the lowest round trip's offset.
func BenchmarkIngest(b *testing.B) {
	const step = int64(100 * time.Millisecond)
	sample := func(i int64) Sample {
		t := 1e15 + i*step
		d := 20e6 + (i*7919)%5e6 // deterministic jitter
		return Sample{ClientSend: t, ServerRecv: t + d + 1e9, ServerSend: t + d + 1e9, ClientRecv: t + 2*d}
	}
	b.Run("baseline=cristian-min-rtt", func(b *testing.B) {
		win := make([]Sample, 0, 128)
		var i int64
		var sink int64
		for b.Loop() {
			s := sample(i)
			i++
			if err := s.Check(int64(time.Second)); err != nil {
				b.Fatal(err)
			}
			if len(win) == cap(win) {
				win = append(win[:0], win[1:]...)
			}
			win = append(win, s)
			best := win[0]
			for _, w := range win[1:] {
				if w.RTT() < best.RTT() {
					best = w
				}
			}
			sink += best.Offset()
		}
		_ = sink
	})
	b.Run("Estimator.Add", func(b *testing.B) {
		e, _ := NewEstimator(DefaultConfig())
		var i int64
		for b.Loop() {
			if _, err := e.Add(sample(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Clock.Observe", func(b *testing.B) {
		src := &fakeSource{}
		src.ns.Store(1e15)
		c, _ := New(src, DefaultConfig())
		for b.Loop() {
			req := c.Request()
			src.advance(20e6)
			at := src.Nanos() + 1e9
			src.advance(20e6)
			if err := c.Observe(Answer(req, at, at), c.Local()); err != nil {
				b.Fatal(err)
			}
			src.advance(step)
		}
	})
}
