package physics

import (
	"fmt"
	"math"
)

// Keyframe starts one linear piece of a body's motion: from time T the body
// is at Pos + Vel·(t-T), until the next keyframe's T. Vel is in world units
// per second; T in synced-clock nanoseconds.
type Keyframe struct {
	T   int64
	Pos Vec2
	Vel Vec2
}

// At returns the keyframe's position at t.
func (k Keyframe) At(t int64) Vec2 {
	dt := float64(t-k.T) / 1e9
	return Vec2{k.Pos.X + k.Vel.X*dt, k.Pos.Y + k.Vel.Y*dt}
}

func (k Keyframe) validate() error {
	if k.T < MinTime || k.T > MaxTime {
		return fmt.Errorf("%w: keyframe time %d", ErrTime, k.T)
	}
	if !k.Pos.within(MaxCoord) {
		return fmt.Errorf("%w: position %v must be finite and within ±%d", ErrMotion, k.Pos, MaxCoord)
	}
	if !k.Vel.within(MaxSpeed) {
		return fmt.Errorf("%w: velocity %v must be finite and within ±%d", ErrMotion, k.Vel, MaxSpeed)
	}
	return nil
}

func validateMotion(ks []Keyframe, max int) error {
	if len(ks) == 0 {
		return fmt.Errorf("%w: no keyframes", ErrMotion)
	}
	if len(ks) > max {
		return fmt.Errorf("%w: %d keyframes, limit %d", ErrHistoryFull, len(ks), max)
	}
	for i, k := range ks {
		if err := k.validate(); err != nil {
			return err
		}
		if i > 0 && k.T <= ks[i-1].T {
			return fmt.Errorf("%w: keyframe %d at %d not after %d", ErrMotion, i, k.T, ks[i-1].T)
		}
	}
	return nil
}

// pieceEnd returns the last time piece i of ks holds: the next keyframe's
// time, or for the last keyframe its time plus extrap, or math.MaxInt64 when
// it is at rest.
func pieceEnd(ks []Keyframe, i int, extrap int64) int64 {
	if i+1 < len(ks) {
		return ks[i+1].T
	}
	if ks[i].Vel == (Vec2{}) {
		return math.MaxInt64
	}
	return ks[i].T + extrap
}

// firstAfter returns the number of keyframes with T < t.
func countBefore(ks []Keyframe, t int64) int {
	lo, hi := 0, len(ks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ks[m].T < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// activePiece returns the piece holding at t — the last keyframe with T ≤ t,
// if t is within its end — or -1.
func activePiece(ks []Keyframe, t int64, extrap int64) int {
	i := countBefore(ks, t+1) - 1 // t ≤ MaxTime, so t+1 cannot overflow
	if i < 0 || (i == len(ks)-1 && t > pieceEnd(ks, i, extrap)) {
		return -1
	}
	return i
}

// positionAt returns the position of a motion at t.
func positionAt(ks []Keyframe, t int64, extrap int64) (Vec2, bool) {
	i := activePiece(ks, t, extrap)
	if i < 0 {
		return Vec2{}, false
	}
	return ks[i].At(t), true
}

// firstPiece returns the first piece whose closed interval [Tᵢ, Tᵢ₊₁]
// reaches t0: the last keyframe strictly before t0, whose piece ends at or
// after it. A piece ending exactly at t0 holds there too.
func firstPiece(ks []Keyframe, t0 int64) int {
	i := countBefore(ks, t0) - 1
	if i < 0 {
		return 0
	}
	return i
}

// sweptBounds returns the bounds of sh over piece i clipped to [t0, t1], and
// whether that clipped interval is non-empty.
func sweptBounds(sh Shape, ks []Keyframe, i int, t0, t1, extrap int64) (AABB, bool) {
	a, b := max(t0, ks[i].T), min(t1, pieceEnd(ks, i, extrap))
	if a > b {
		return AABB{}, false
	}
	lb := sh.Bounds()
	return lb.Translate(ks[i].At(a)).Union(lb.Translate(ks[i].At(b))), true
}
