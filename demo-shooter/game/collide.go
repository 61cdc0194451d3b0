package game

import (
	"fmt"
	"slices"
	"time"

	"github.com/rewindnet/rewind/physics"
)

// sweepHorizon bounds how far ahead a motion is swept for its first
// contact. The arena is closed, so any player moving at its slowest
// (Speed on a diagonal axis) touches a wall sooner than this.
const sweepHorizon = int64(12 * time.Second)

// worldConfig suits the short-lived worlds built by one call: a few dozen
// bodies, motions spanning the sweep horizon, no history to keep.
var worldConfig = physics.Config{
	CellSize:      128,
	Bucket:        time.Second,
	Window:        0,
	Extrapolate:   time.Duration(2 * sweepHorizon),
	MaxBodies:     len(walls) + MaxPlayers + 1,
	MaxKeyframes:  8,
	MaxEntryCells: 64,
}

// newWorld returns a world holding the walls. A world is built per call
// rather than shared, because a World is not safe for concurrent use and
// the registry's functions may run on several goroutines at once.
func newWorld() (*physics.World, error) {
	w, err := physics.New(worldConfig)
	if err != nil {
		return nil, fmt.Errorf("game: physics world: %w", err)
	}
	bodies := make([]physics.Body, len(walls))
	for i, wl := range walls {
		bodies[i] = physics.Body{Path: wallPaths[i], Shape: physics.Box(wl.Min, wl.Max), Motion: []physics.Keyframe{{}}}
	}
	if err := w.Seed(bodies); err != nil {
		return nil, fmt.Errorf("game: physics walls: %w", err)
	}
	return w, nil
}

// keyframes returns m as physics keyframes from t on: one per change of
// velocity (drift start and end, stop) before t + sweepHorizon.
func (m Motion) keyframes(t int64) []physics.Keyframe {
	t = max(t, m.T)
	end := t + sweepHorizon
	ks := make([]physics.Keyframe, 0, 4)
	add := func(at int64) {
		var vel physics.Vec2
		if at < m.Stop {
			vx, vy := m.velAt(at)
			vel = physics.V(float64(vx)/MilliPx, float64(vy)/MilliPx)
		}
		ks = append(ks, physics.Keyframe{T: at, Pos: m.Pos(at), Vel: vel})
	}
	add(t)
	bs := [3]int64{m.DriftStart, m.DriftEnd, m.Stop}
	slices.Sort(bs[:])
	for _, b := range bs {
		if b > ks[len(ks)-1].T && b < end && b <= m.Stop {
			add(b)
		}
	}
	return ks
}

// addPlayer puts a living player's motion into w from time t on.
func addPlayer(w *physics.World, id uint32, m Motion, t int64) error {
	if m.Dead {
		return nil
	}
	err := w.Set(physics.Body{Path: PlayerPath(id, FieldMotion), Shape: physics.Circle(PlayerRadius), Motion: m.keyframes(t)})
	if err != nil {
		return fmt.Errorf("%w: player %d: %w", ErrBadValue, id, err)
	}
	return nil
}

// settle finds where m, starting at m.T, first touches a wall or another
// body of w (which must not hold m's own player) and sets m.Stop to that
// time: the motion halts on contact. A body touched at the start that m
// moves away from (or along) is ignored; one it moves into makes m slide:
// the velocity component along the contact normal's main axis is dropped,
// which for the arena's axis-aligned walls is sliding along the wall.
func settle(w *physics.World, m Motion) (Motion, error) {
	m.Stop = Never
	if m.Dead {
		return m, nil
	}
	bounds := []int64{m.T}
	for _, b := range [2]int64{m.DriftStart, m.DriftEnd} {
		if b > bounds[len(bounds)-1] {
			bounds = append(bounds, b)
		}
	}
	for i, a := range bounds {
		b := a + sweepHorizon
		if i+1 < len(bounds) {
			b = bounds[i+1]
		}
		for range 6 {
			vx, vy := m.velAt(a)
			if vx == 0 && vy == 0 {
				break
			}
			q := physics.Sweep{Radius: PlayerRadius, From: m.Pos(a), To: m.Pos(b), T0: a, T1: b}
			c, hit, err := w.SweepCircle(q, physics.Filter{})
			if err != nil {
				return m, fmt.Errorf("%w: sweep: %w", ErrBadValue, err)
			}
			if !hit {
				break
			}
			if c.Time > a {
				m.Stop = c.Time
				return m, nil
			}
			// Touching at the start of the piece.
			v := physics.V(float64(vx), float64(vy))
			switch {
			case v.Dot(c.Normal) >= 0:
				w.Remove(c.Path) // moving away: it cannot stop us
			case i == 0 && (m.VX != 0 || m.VY != 0):
				if abs(c.Normal.X) >= abs(c.Normal.Y) {
					m.VX = 0
				} else {
					m.VY = 0
				}
			default:
				m.Stop = a
				return m, nil
			}
		}
	}
	return m, nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
