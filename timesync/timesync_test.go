package timesync

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSampleCheck(t *testing.T) {
	const maxRTT = int64(time.Second)
	for _, tc := range []struct {
		name string
		s    Sample
		want error
	}{
		{"ok", Sample{100, 5000, 5010, 300}, nil},
		{"negative", Sample{-1, 5000, 5010, 300}, ErrBadSample},
		{"client-reversed", Sample{300, 5000, 5010, 100}, ErrBadSample},
		{"server-reversed", Sample{100, 5010, 5000, 300}, ErrBadSample},
		{"hold-longer-than-trip", Sample{100, 5000, 5300, 300}, ErrBadSample},
		{"rtt-too-large", Sample{0, 5000, 5000, 2 * maxRTT}, ErrRTTTooLarge},
		{"extremes", Sample{0, math.MaxInt64, math.MaxInt64, math.MaxInt64}, ErrRTTTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Check(maxRTT)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check(%+v) = %v, want %v", tc.s, err, tc.want)
			}
		})
	}
}

func TestSampleOffsetRTT(t *testing.T) {
	// Client 1000 behind the server; 30 up, 10 hold, 50 down.
	s := Sample{ClientSend: 0, ServerRecv: 1030, ServerSend: 1040, ClientRecv: 90}
	if got := s.RTT(); got != 80 {
		t.Errorf("RTT = %d, want 80", got)
	}
	// Cristian: off by half the asymmetry, (30-50)/2.
	if got := s.Offset(); got != 1000-10 {
		t.Errorf("Offset = %d, want 990", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"reference", func(c *Config) { *c = ReferenceConfig() }, true},
		{"no-slew", func(c *Config) { c.MaxSlew = 0 }, false},
		{"huge-slew", func(c *Config) { c.MaxSlew = time.Second }, false},
		{"no-interval", func(c *Config) { c.MinInterval = 0 }, false},
		{"max-below-min", func(c *Config) { c.MaxInterval = c.MinInterval / 2 }, false},
		{"idle-below-max", func(c *Config) { c.IdleInterval = c.MaxInterval / 2 }, false},
		{"tiny-window", func(c *Config) { c.Window = 1 }, false},
		{"huge-window", func(c *Config) { c.Window = 5000 }, false},
		{"warmup-over-window", func(c *Config) { c.Warmup = c.Window + 1 }, false},
		{"warmup-too-small", func(c *Config) { c.Warmup = MinSyncSamples - 1 }, false},
		{"nan-drift", func(c *Config) { c.MaxDriftPPM = math.NaN() }, false},
		{"no-age", func(c *Config) { c.MaxAge = 0 }, false},
		{"no-rtt", func(c *Config) { c.MaxRTT = 0 }, false},
		{"no-outstanding", func(c *Config) { c.MaxOutstanding = 0 }, false},
		{"negative-precision", func(c *Config) { c.SyncPrecision = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadConfig)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// fakeSource is a local clock a test sets by hand; safe for concurrent
// use.
type fakeSource struct{ ns atomic.Int64 }

func (f *fakeSource) Nanos() int64    { return f.ns.Load() }
func (f *fakeSource) advance(d int64) { f.ns.Add(d) }

// exchange runs one perfect round trip of the given one-way delay
// against a server whose clock is local+offset.
func exchange(t *testing.T, c *Clock, src *fakeSource, offset, oneWay int64) {
	t.Helper()
	req := c.Request()
	src.advance(oneWay)
	at := src.Nanos() + offset
	rep := Answer(req, at, at)
	src.advance(oneWay)
	if err := c.Observe(rep, c.Local()); err != nil {
		t.Fatalf("Observe: %v", err)
	}
}

func TestClockFirstSyncAndSlew(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(int64(time.Hour))
	c, err := New(src, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.Synced() || c.Now() != 0 {
		t.Fatalf("before any sample: Synced %v, Now %d; want false, 0", c.Synced(), c.Now())
	}
	// A server 10 minutes behind: the first sync may set the clock
	// backwards from the local time, because Now read 0 until then.
	offset := -int64(10 * time.Minute)
	for range MinSyncSamples {
		exchange(t, c, src, offset, int64(time.Millisecond))
	}
	if !c.Synced() {
		t.Fatalf("not synced after %d perfect samples", MinSyncSamples)
	}
	// Within a microsecond: bounds carried forward widen by the drift's
	// uncertainty.
	if got, want := c.Now(), src.Nanos()+offset; abs(got-want) > 1000 {
		t.Fatalf("Now = %d, want %d (set at once)", got, want)
	}
	// The server's clock moves 50 ms ahead: slewed, 5 ms per second.
	offset += int64(50 * time.Millisecond)
	for range 200 {
		exchange(t, c, src, offset, int64(time.Millisecond))
	}
	// The 200 exchanges took 400 ms, so at most 2 ms have been slewed.
	if got := src.Nanos() + offset - c.Now(); got < int64(48*time.Millisecond) || got > int64(50*time.Millisecond) {
		t.Fatalf("behind by %v after 400 ms, want 48..50 ms (slewing at 5 ms/s)", time.Duration(got))
	}
	src.advance(int64(10 * time.Second))
	if got := src.Nanos() + offset - c.Now(); abs(got) > 1000 {
		t.Fatalf("behind by %v after 10 s more, want 0 within 1 us", time.Duration(got))
	}
}

func TestClockRefusesBadReplies(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(1000)
	c, err := New(src, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	req := c.Request()
	src.advance(100)
	if err := c.Observe(Reply{ClientSend: req.ClientSend + 1, ServerRecv: 5, ServerSend: 5}, c.Local()); !errors.Is(err, ErrUnexpectedReply) {
		t.Errorf("reply to no request: %v, want ErrUnexpectedReply", err)
	}
	if err := c.Observe(Reply{ClientSend: req.ClientSend, ServerRecv: 9, ServerSend: 5}, c.Local()); !errors.Is(err, ErrBadSample) {
		t.Errorf("server send before receive: %v, want ErrBadSample", err)
	}
	rep := Answer(req, 5, 5)
	if err := c.Observe(rep, c.Local()); err != nil {
		t.Fatalf("good reply after a bad one: %v", err)
	}
	if err := c.Observe(rep, c.Local()); !errors.Is(err, ErrUnexpectedReply) {
		t.Errorf("duplicate reply: %v, want ErrUnexpectedReply", err)
	}
	if st := c.Status(); st.Samples != 1 {
		t.Errorf("Samples = %d, want 1", st.Samples)
	}
	// The outstanding set is bounded: the oldest request is forgotten.
	cfg := DefaultConfig()
	cfg.MaxOutstanding = 2
	c, _ = New(src, cfg)
	first := c.Request()
	src.advance(1)
	c.Request()
	src.advance(1)
	c.Request()
	if err := c.Observe(Answer(first, 5, 5), c.Local()); !errors.Is(err, ErrUnexpectedReply) {
		t.Errorf("reply to a forgotten request: %v, want ErrUnexpectedReply", err)
	}
}

// TestCanRequestAndForget: CanRequest says whether a new request would
// leave every outstanding one remembered; ForgetRequests drops them all
// (their connection is gone), so their replies are refused and new
// requests can be made.
func TestCanRequestAndForget(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(1000)
	cfg := DefaultConfig()
	cfg.MaxOutstanding = 2
	c, err := New(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanRequest() {
		t.Fatal("a fresh clock refuses a request")
	}
	first := c.Request()
	src.advance(1)
	if !c.CanRequest() {
		t.Fatal("one of two outstanding: CanRequest false")
	}
	c.Request()
	if c.CanRequest() {
		t.Fatal("two of two outstanding: CanRequest true")
	}
	// An answered request frees its place.
	src.advance(1)
	if err := c.Observe(Answer(first, 5000, 5000), c.Local()); err != nil {
		t.Fatal(err)
	}
	if !c.CanRequest() {
		t.Fatal("after a reply: CanRequest false")
	}
	second := c.Request()
	c.ForgetRequests()
	if !c.CanRequest() {
		t.Fatal("after ForgetRequests: CanRequest false")
	}
	src.advance(1)
	if err := c.Observe(Answer(second, 5000, 5000), c.Local()); !errors.Is(err, ErrUnexpectedReply) {
		t.Errorf("reply to a forgotten request: %v, want ErrUnexpectedReply", err)
	}
}

func TestReferenceClock(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(12345)
	c, err := New(src, ReferenceConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Synced() || c.Now() != 12345 {
		t.Fatalf("reference: Synced %v, Now %d; want true, 12345", c.Synced(), c.Now())
	}
	if c.NextSync() != math.MaxInt64 {
		t.Errorf("reference NextSync = %d, want never", c.NextSync())
	}
	if err := c.Observe(Reply{}, 0); !errors.Is(err, ErrReference) {
		t.Errorf("reference Observe: %v, want ErrReference", err)
	}
	if _, err := New(nil, DefaultConfig()); !errors.Is(err, ErrBadConfig) {
		t.Errorf("nil source: %v, want ErrBadConfig", err)
	}
}

func TestNextSyncAdapts(t *testing.T) {
	src := &fakeSource{}
	cfg := DefaultConfig()
	c, _ := New(src, cfg)
	if c.NextSync() != 0 {
		t.Fatalf("first request not due at once")
	}
	interval := func() time.Duration { return time.Duration(c.NextSync() - src.Nanos()) }
	idle := func() time.Duration { return time.Duration(c.IdleSync() - src.Nanos()) }
	for range cfg.Warmup - 1 {
		exchange(t, c, src, 0, int64(time.Millisecond))
	}
	c.Request()
	if got := interval(); got != cfg.MinInterval {
		t.Fatalf("interval during warmup = %v, want %v", got, cfg.MinInterval)
	}
	if got := idle(); got != cfg.MinInterval {
		t.Fatalf("idle interval during warmup = %v, want %v (no back-off before the estimate is stable)", got, cfg.MinInterval)
	}
	for range 40 {
		exchange(t, c, src, 0, int64(time.Millisecond))
	}
	c.Request()
	if got := interval(); got != cfg.MaxInterval {
		t.Fatalf("interval when stable = %v, want %v", got, cfg.MaxInterval)
	}
	if got := idle(); got != cfg.IdleInterval {
		t.Fatalf("idle interval when stable = %v, want %v", got, cfg.IdleInterval)
	}
	// The reference steps a second ahead: samples disagree, back to fast.
	exchange(t, c, src, int64(time.Second), int64(time.Millisecond))
	c.Request()
	if got := interval(); got != cfg.MinInterval {
		t.Fatalf("interval after disagreement = %v, want %v", got, cfg.MinInterval)
	}
	if got := idle(); got != cfg.MinInterval {
		t.Fatalf("idle interval after disagreement = %v, want %v", got, cfg.MinInterval)
	}
	if st := c.Status(); st.Disagreements != 1 {
		t.Fatalf("Disagreements = %d, want 1", st.Disagreements)
	}
}

func TestEstimatorExact(t *testing.T) {
	e, _ := NewEstimator(DefaultConfig())
	if _, ok := e.Estimate(0); ok {
		t.Fatal("estimate from no samples")
	}
	// Symmetric 5 ms each way, server 7 s ahead, 1 ms hold: exact.
	const off, d, hold = int64(7 * time.Second), int64(5 * time.Millisecond), int64(time.Millisecond)
	var now int64 = 1e12
	for range 10 {
		s := Sample{ClientSend: now, ServerRecv: now + d + off, ServerSend: now + d + hold + off, ClientRecv: now + 2*d + hold}
		if ok, err := e.Add(s); !ok || err != nil {
			t.Fatalf("Add: %v %v", ok, err)
		}
		now += int64(100 * time.Millisecond)
	}
	got, _ := e.Estimate(now)
	// Carrying bounds forward widens them by the drift's uncertainty,
	// which is small but not zero after 1 s of samples: allow 1 us.
	if got.At != now || got.Samples != 10 || got.Drift != 0 || got.Precision != 0 ||
		abs(got.Offset-off) > 1000 || got.Bound < d || got.Bound > d+1000 {
		t.Errorf("Estimate = %+v, want offset %d and bound %d within 1 us", got, off, d)
	}
	if diff := cmp.Diff(RTTStats{Min: 2 * d, Mean: 2 * d}, e.RTT()); diff != "" {
		t.Errorf("RTT (-want +got):\n%s", diff)
	}
	// Bad input changes nothing.
	if _, err := e.Add(Sample{ClientSend: 5, ClientRecv: 1}); !errors.Is(err, ErrBadSample) {
		t.Errorf("bad sample: %v", err)
	}
	if e.Len() != 10 {
		t.Errorf("Len = %d after a refused sample, want 10", e.Len())
	}
}

func TestEstimatorWindowBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window, cfg.Warmup = 16, 16
	e, _ := NewEstimator(cfg)
	var now int64 = 1e12
	for range 100 {
		if _, err := e.Add(Sample{now, now + 10, now + 10, now + 20}); err != nil {
			t.Fatal(err)
		}
		now += int64(time.Millisecond)
	}
	if e.Len() != 16 {
		t.Errorf("Len = %d, want the window's 16", e.Len())
	}
	now += int64(cfg.MaxAge) + 1
	e.Add(Sample{now, now + 10, now + 10, now + 20})
	if e.Len() != 1 {
		t.Errorf("Len = %d after MaxAge, want 1", e.Len())
	}
}

// TestNowConcurrent: the game thread reads while the network goroutine
// feeds samples; every reader sees a non-decreasing clock. Run with
// -race.
func TestNowConcurrent(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(int64(time.Hour))
	c, _ := New(src, DefaultConfig())
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev int64
			for !stop.Load() {
				v := c.Now()
				if v < prev {
					errs <- "Now went backwards"
					return
				}
				prev = v
			}
		}()
	}
	offset := int64(0)
	for i := range 2000 {
		if i%500 == 0 {
			offset += int64(20 * time.Millisecond) // reference wanders
		}
		req := c.Request()
		src.advance(int64(time.Millisecond))
		at := src.Nanos() + offset
		src.advance(int64(time.Millisecond))
		if err := c.Observe(Answer(req, at, at), c.Local()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestAllocations(t *testing.T) {
	src := &fakeSource{}
	src.ns.Store(int64(time.Hour))
	c, _ := New(src, DefaultConfig())
	for range 100 {
		exchange(t, c, src, 0, int64(time.Millisecond))
	}
	if n := testing.AllocsPerRun(100, func() { c.Now() }); n != 0 {
		t.Errorf("Now allocates %v times, want 0", n)
	}
	e, _ := NewEstimator(DefaultConfig())
	var now int64 = 1e12
	if n := testing.AllocsPerRun(500, func() {
		e.Add(Sample{now, now + 10, now + 10, now + 20})
		now += int64(time.Millisecond)
	}); n != 0 {
		t.Errorf("Estimator.Add allocates %v times, want 0", n)
	}
}

func abs(v int64) int64 { return max(v, -v) }
