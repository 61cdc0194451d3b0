package physics

import (
	"fmt"
	"math"
	"time"
)

// Time bounds. Times are synced-clock nanoseconds; keeping them within
// ±2⁶¹ keeps every difference of two times, and every time plus a window or
// an extrapolation, inside int64.
const (
	MinTime int64 = -1 << 61
	MaxTime int64 = 1 << 61
)

// Config sets the index geometry and the limits of a World.
type Config struct {
	// CellSize is the side of a grid cell in world units. Rule of thumb:
	// about twice the diameter of a typical moving body, and no smaller
	// than the distance a fast body travels in Extrapolate. Bodies much
	// larger than a cell (long walls) are fine: they occupy several cells,
	// or the oversize list beyond MaxEntryCells.
	CellSize float64
	// Bucket is the time span of one index layer. A point-in-time query
	// reads one layer, a range query every layer it spans. About the
	// history written between two Advance calls, or a few ticks.
	Bucket time.Duration
	// Window is how much history is kept behind the latest Advance: the
	// oldest time a query may ask about (the lag-compensation rewind limit
	// plus margin).
	Window time.Duration
	// Extrapolate is how long a body's last keyframe is assumed to hold
	// when its velocity is not zero. Past it the body has no known
	// position and queries do not see it. A last keyframe with zero
	// velocity holds for ever (walls, resting bodies).
	Extrapolate time.Duration
	// MaxBodies bounds the number of bodies.
	MaxBodies int
	// MaxKeyframes bounds the keyframes kept per body.
	MaxKeyframes int
	// MaxEntryCells bounds the grid cells (cells × buckets) one keyframe
	// may occupy; a keyframe that would need more goes to a short
	// oversize list that every query scans.
	MaxEntryCells int
}

// DefaultConfig suits a shooter-sized world: bodies of radius 10–20 moving
// up to a few hundred units per second, lag compensation up to 1 s.
func DefaultConfig() Config {
	return Config{
		CellSize:      64,
		Bucket:        100 * time.Millisecond,
		Window:        time.Second,
		Extrapolate:   100 * time.Millisecond,
		MaxBodies:     1 << 16,
		MaxKeyframes:  256,
		MaxEntryCells: 64,
	}
}

// Validate reports whether c can build a World.
func (c Config) Validate() error {
	switch {
	case math.IsNaN(c.CellSize) || c.CellSize < 1 || c.CellSize > MaxCoord:
		return fmt.Errorf("%w: CellSize %v must be in [1, %d]", ErrConfig, c.CellSize, MaxCoord)
	case c.Bucket <= 0 || int64(c.Bucket) > MaxTime:
		return fmt.Errorf("%w: Bucket %v must be positive", ErrConfig, c.Bucket)
	case c.Window < 0 || int64(c.Window) > MaxTime:
		return fmt.Errorf("%w: Window %v must be in [0, 2^61ns]", ErrConfig, c.Window)
	case c.Extrapolate < 0 || int64(c.Extrapolate) > MaxTime:
		return fmt.Errorf("%w: Extrapolate %v must be in [0, 2^61ns]", ErrConfig, c.Extrapolate)
	case c.MaxBodies < 1 || c.MaxBodies > math.MaxInt32:
		return fmt.Errorf("%w: MaxBodies %d must be in [1, 2^31)", ErrConfig, c.MaxBodies)
	case c.MaxKeyframes < 1 || c.MaxKeyframes > 1<<20:
		return fmt.Errorf("%w: MaxKeyframes %d must be in [1, 2^20]", ErrConfig, c.MaxKeyframes)
	case c.MaxEntryCells < 1 || c.MaxEntryCells > 1<<20:
		return fmt.Errorf("%w: MaxEntryCells %d must be in [1, 2^20]", ErrConfig, c.MaxEntryCells)
	}
	return nil
}
