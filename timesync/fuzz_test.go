package timesync

import (
	"errors"
	"testing"
)

// FuzzObserve feeds hostile replies: whatever the timestamps, Observe
// returns an error or accepts, never panics, and the clock stays
// monotonic.
func FuzzObserve(f *testing.F) {
	f.Add(int64(0), int64(5000), int64(5010), int64(300), int64(100))
	f.Add(int64(-1), int64(-1), int64(-1), int64(-1), int64(0))
	f.Add(int64(0), int64(9223372036854775807), int64(9223372036854775807), int64(1), int64(1<<62))
	f.Fuzz(func(t *testing.T, skew, recv, send, back, lag int64) {
		src := &fakeSource{}
		src.ns.Store(1 << 40)
		c, err := New(src, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		var prev int64
		for i := range MinSyncSamples + 2 {
			req := c.Request()
			src.advance(max(0, lag%1e9) + 1)
			rep := Reply{ClientSend: req.ClientSend + skew*int64(i%2), ServerRecv: recv + int64(i), ServerSend: send + int64(i)}
			err := c.Observe(rep, c.Local()-back%1e6)
			if err != nil && !errors.Is(err, ErrBadSample) && !errors.Is(err, ErrRTTTooLarge) && !errors.Is(err, ErrUnexpectedReply) {
				t.Fatalf("Observe: untyped error %v", err)
			}
			if v := c.Now(); v < prev {
				t.Fatalf("Now went from %d to %d", prev, v)
			} else {
				prev = v
			}
		}
		_ = c.Status()
	})
}
