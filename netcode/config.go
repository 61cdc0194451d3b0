package netcode

import (
	"fmt"
	"time"
)

// Config holds the timing rules and limits a Store (and every transaction run
// against it) follows. Every node of a cluster and its clients must agree on
// MaxChangeAge, MaxRewind and MaxFutureSkew; the authority sends them in its
// Welcome.
type Config struct {
	// MaxChangeAge: writes older than now - MaxChangeAge are refused; values
	// older than now - MaxChangeAge - FinalitySkew are final and can no
	// longer change state. Games run around 1 s.
	MaxChangeAge time.Duration
	// MaxFutureSkew: writes later than now + MaxFutureSkew are refused.
	MaxFutureSkew time.Duration
	// MaxRewind bounds past-time reads: ReadPast clamps its time to
	// write time - MaxRewind, and a lock whose End is older than that is
	// refused.
	MaxRewind time.Duration
	// FinalitySkew is the margin for clock differences between nodes added
	// before values become final.
	FinalitySkew time.Duration
	// Limits bound everything that grows.
	Limits Limits
}

// Limits bound sizes and counts. Zero fields are invalid; start from
// DefaultLimits.
type Limits struct {
	MaxValueSize   int // bytes per value
	MaxLocks       int // read locks per value (= distinct reads per transaction)
	MaxReads       int // reads per transaction, repeated reads included
	MaxWrites      int // paths written per transaction
	MaxPaths       int // paths held by a store
	MaxLivePerPath int // values per path that can still change state
}

// DefaultLimits suits a game server: small values, small transactions.
func DefaultLimits() Limits {
	return Limits{
		MaxValueSize:   64 << 10,
		MaxLocks:       128,
		MaxReads:       256,
		MaxWrites:      64,
		MaxPaths:       1 << 22,
		MaxLivePerPath: 4096,
	}
}

// DefaultConfig is the configuration for a typical action game: one second
// to change, one second of rewind for lag compensation.
func DefaultConfig() Config {
	return Config{
		MaxChangeAge:  time.Second,
		MaxFutureSkew: 250 * time.Millisecond,
		MaxRewind:     time.Second,
		FinalitySkew:  50 * time.Millisecond,
		Limits:        DefaultLimits(),
	}
}

// Validate reports the first out-of-range field, wrapping ErrBadConfig.
func (c Config) Validate() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("%w: %s = %v", ErrBadConfig, field, v)
	}
	switch {
	case c.MaxChangeAge <= 0:
		return bad("MaxChangeAge", c.MaxChangeAge)
	case c.MaxFutureSkew < 0:
		return bad("MaxFutureSkew", c.MaxFutureSkew)
	case c.MaxRewind < 0:
		return bad("MaxRewind", c.MaxRewind)
	case c.FinalitySkew < 0:
		return bad("FinalitySkew", c.FinalitySkew)
	case c.Limits.MaxValueSize <= 0:
		return bad("Limits.MaxValueSize", c.Limits.MaxValueSize)
	case c.Limits.MaxLocks <= 0 || c.Limits.MaxLocks > 1<<16:
		return bad("Limits.MaxLocks (1 to 65536)", c.Limits.MaxLocks)
	case c.Limits.MaxReads < c.Limits.MaxLocks:
		return bad("Limits.MaxReads (< MaxLocks)", c.Limits.MaxReads)
	case c.Limits.MaxWrites <= 0:
		return bad("Limits.MaxWrites", c.Limits.MaxWrites)
	case c.Limits.MaxPaths <= 0:
		return bad("Limits.MaxPaths", c.Limits.MaxPaths)
	case c.Limits.MaxLivePerPath <= 0:
		return bad("Limits.MaxLivePerPath", c.Limits.MaxLivePerPath)
	}
	return nil
}
