package timesync

import (
	"fmt"
	"time"
)

// Config tunes a Clock and its Estimator. The zero value is not valid;
// start from DefaultConfig (or a preset) and change what you need.
type Config struct {
	// Reference makes the clock a cluster's reference: it is synced from
	// the start, reads its Source unchanged and takes no samples.
	Reference bool

	// MaxSlew is how far a correction may move the clock per second of
	// local time after the first sync (default 5 ms, i.e. the clock runs
	// at most 0.5 % fast or slow while it converges). Must be in
	// (0, 100 ms].
	MaxSlew time.Duration

	// MinInterval is the re-sync interval at start and after samples
	// disagree (default 10 ms). Requests are pipelined: the next one does
	// not wait for the previous reply.
	MinInterval time.Duration
	// MaxInterval is the re-sync interval once the estimate is stable
	// (default 100 ms), while requests ride on traffic that flows anyway
	// (NextSync).
	MaxInterval time.Duration
	// IdleInterval is the re-sync interval once the estimate is stable
	// when a request would travel alone (IdleSync): a follower with
	// nothing else to send then costs the reference one exchange per
	// IdleInterval (default 250 ms) instead of one per MaxInterval. Must
	// be at least MaxInterval. Longer intervals cost accuracy on jittery
	// links: in the simulator, jitter50/mobile p99 is 1.3/4.7 ms at
	// 250 ms, 2.1/8.4 ms at 500 ms, 3.0/11.5 ms at 1 s.
	IdleInterval time.Duration
	// Warmup is how many samples are taken at MinInterval before the
	// interval starts to grow (default 64). The first sync happens by
	// then at the latest.
	Warmup int
	// SyncPrecision lets the first sync happen before Warmup samples are
	// in, as soon as the estimate's Precision is this good (default
	// 1 ms) and at least MinSyncSamples samples are in. Waiting keeps the
	// first setting close, so that little is left to slew.
	SyncPrecision time.Duration

	// Window is the most samples the estimator keeps (default 128, at
	// most 4096). Ingestion cost is linear in it.
	Window int
	// MaxAge drops samples older than this, measured on the local clock
	// from the newest sample (default 60 s).
	MaxAge time.Duration
	// MaxDriftPPM is the largest frequency error believed possible
	// between the two clocks, in parts per million (default 500). Drift
	// estimates are clamped to it and shrunk towards zero while the
	// window is too short to measure drift that well.
	MaxDriftPPM float64
	// MaxRTT rejects samples whose network round trip is longer (default
	// 5 s); they bound the offset too loosely to help.
	MaxRTT time.Duration
	// MaxOutstanding is how many unanswered requests are remembered
	// (default 64); a reply to an older one is refused as unexpected.
	MaxOutstanding int
}

// MinSyncSamples is the fewest samples the first sync is taken from.
const MinSyncSamples = 8

// DefaultConfig suits a game client or a follower authority on any link
// from loopback to a mobile network.
func DefaultConfig() Config {
	return Config{
		MaxSlew:        5 * time.Millisecond,
		MinInterval:    10 * time.Millisecond,
		MaxInterval:    100 * time.Millisecond,
		IdleInterval:   250 * time.Millisecond,
		Warmup:         64,
		SyncPrecision:  time.Millisecond,
		Window:         128,
		MaxAge:         60 * time.Second,
		MaxDriftPPM:    500,
		MaxRTT:         5 * time.Second,
		MaxOutstanding: 64,
	}
}

// ReferenceConfig is the configuration of a cluster's reference node.
func ReferenceConfig() Config {
	c := DefaultConfig()
	c.Reference = true
	return c
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	bad := func(field string, v any, rule string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrBadConfig, field, v, rule)
	}
	switch {
	case c.MaxSlew <= 0 || c.MaxSlew > 100*time.Millisecond:
		return bad("MaxSlew", c.MaxSlew, "in (0, 100ms]")
	case c.MinInterval <= 0:
		return bad("MinInterval", c.MinInterval, "> 0")
	case c.MaxInterval < c.MinInterval:
		return bad("MaxInterval", c.MaxInterval, ">= MinInterval")
	case c.IdleInterval < c.MaxInterval:
		return bad("IdleInterval", c.IdleInterval, ">= MaxInterval")
	case c.Window < 2 || c.Window > 4096:
		return bad("Window", c.Window, "in [2, 4096]")
	case c.Warmup < MinSyncSamples || c.Warmup > c.Window:
		return bad("Warmup", c.Warmup, "in [MinSyncSamples, Window]")
	case c.SyncPrecision < 0:
		return bad("SyncPrecision", c.SyncPrecision, ">= 0")
	case c.MaxAge <= 0:
		return bad("MaxAge", c.MaxAge, "> 0")
	case !(c.MaxDriftPPM >= 0 && c.MaxDriftPPM <= 10000):
		return bad("MaxDriftPPM", c.MaxDriftPPM, "in [0, 10000]")
	case c.MaxRTT <= 0:
		return bad("MaxRTT", c.MaxRTT, "> 0")
	case c.MaxOutstanding < 1 || c.MaxOutstanding > 4096:
		return bad("MaxOutstanding", c.MaxOutstanding, "in [1, 4096]")
	}
	return nil
}
