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

// keyframes returns k as physics keyframes from t on: one at t and one
// per change of velocity (a drift's start or end, the keys' stop) before
// t + sweepHorizon, at most worldConfig.MaxKeyframes (the last one's
// velocity then stands for the rest: a body's later drifts are
// approximated, its position at t is exact).
func (k track) keyframes(t int64) []physics.Keyframe {
	t = max(t, k.m.T)
	end := t + sweepHorizon
	times := []int64{t, k.m.Stop}
	for _, d := range k.m.Drifts {
		times = append(times, d.End)
	}
	for _, p := range k.ps {
		times = append(times, p.start, p.end)
	}
	slices.Sort(times)
	ks := make([]physics.Keyframe, 0, 4)
	for _, at := range times {
		if at < t || at >= end || len(ks) > 0 && at == ks[len(ks)-1].T || len(ks) == worldConfig.MaxKeyframes {
			continue
		}
		vx, vy := k.vel(at)
		ks = append(ks, physics.Keyframe{T: at, Pos: k.pos(at), Vel: physics.V(float64(vx)/MilliPx, float64(vy)/MilliPx)})
	}
	return ks
}

// addPlayer puts a living player into w from time t on.
func addPlayer(w *physics.World, k track, t int64) error {
	if k.m.Dead {
		return nil
	}
	err := w.Set(physics.Body{Path: PlayerPath(k.id, FieldMotion), Shape: physics.Circle(PlayerRadius), Motion: k.keyframes(t)})
	if err != nil {
		return fmt.Errorf("%w: player %d: %w", ErrBadValue, k.id, err)
	}
	return nil
}

// settle finds where m's keys' velocity, from (X, Y) at T, first touches
// a wall or another body of w (which must not hold m's own player) and
// sets m.Stop to that time: the keys' motion halts on contact. Drifts are
// not swept: a gravity field that starts later is not known when the
// motion is written, and a carried drift is treated the same way for one
// simple rule; drifted players pass through walls and players, held only
// inside the border walls (track.at). A body touched at the start that m
// moves away from (or along) is ignored; one it moves into makes m
// slide: the velocity component along the contact normal's main axis is
// dropped, which for the arena's axis-aligned walls is sliding along the
// wall.
func settle(w *physics.World, m Motion) (Motion, error) {
	m.Stop = Never
	if m.Dead {
		return m, nil
	}
	a, b := m.T, m.T+sweepHorizon
	from := toPx(m.X, m.Y)
	for range 6 {
		if m.VX == 0 && m.VY == 0 {
			break
		}
		to := toPx(m.X+m.VX*sweepHorizon/1e9, m.Y+m.VY*sweepHorizon/1e9)
		q := physics.Sweep{Radius: PlayerRadius, From: from, To: to, T0: a, T1: b}
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
		// Touching at the start.
		v := physics.V(float64(m.VX), float64(m.VY))
		switch {
		case v.Dot(c.Normal) >= 0:
			w.Remove(c.Path) // moving away: it cannot stop us
		case abs(c.Normal.X) >= abs(c.Normal.Y):
			m.VX = 0
		default:
			m.VY = 0
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
