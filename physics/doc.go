// Package physics answers spatial questions about shapes moving over time —
// what a shot, a body or an area touches now, or at a time in the past —
// without testing every body, and answers them exactly.
//
// It is a pure core with no dependency on the rest of Rewind: no clock (time
// is an argument of every call, in synced-clock nanoseconds), no goroutines,
// no global state. A World is not safe for concurrent use; give each one an
// owner, as the authority's game loop does.
//
// # Model
//
// A body is a path ("players/42"), a Shape (point, circle, segment, capsule
// or axis-aligned box, in the body's local frame) and a piecewise-linear
// motion: Keyframes (T, Pos, Vel), each holding from its T until the next
// one. The last keyframe holds for Config.Extrapolate when the body moves
// and for ever when it is at rest, so walls are bodies with one keyframe and
// zero velocity. Velocities are in world units per second.
//
// The World keeps Config.Window of history behind the latest Advance, so a
// past-time query within the window is answered from the exact motion the
// authority knew, not from an interpolation.
//
// # Index
//
// Each keyframe piece is filed in a uniform grid (Config.CellSize) under the
// cells its swept bounds cover, in a layer per time bucket (Config.Bucket).
// A point-in-time query reads two layers, a range query the layers it spans;
// Advance drops whole layers as they leave the window. Every candidate the
// grid yields is then tested exactly against the body's motion, so the grid
// only decides cost, never answers.
//
// Writes are cheap because they are batched: Upsert queues a new piece, and
// the queue is filed, grouped by cell, by the next query or Advance. The
// first query after a tick of writes therefore pays for filing them; an
// answer never depends on the queue. Advance costs the layers it drops, not
// the number of bodies: a body's expired keyframes go with its next writes.
//
// # Rules
//
//  1. Write each body's motion with Upsert as it changes (one keyframe per
//     tick is the common case; a keyframe at an earlier time rewrites the
//     motion from there on — a correction). Seed adds many bodies at once.
//  2. Call Advance(now) once per tick. Queries and writes before
//     now - Window fail with ErrTooOld.
//  3. Query at the time the question is about: the shooter's view time for
//     a lag-compensated shot, the tick's interval for a move.
//  4. Every answer is deterministic: the same writes and queries give
//     bit-identical results, ties go to the smaller path, and results do
//     not depend on insertion or map order.
//  5. Bad input (NaN, out-of-range coordinates or times, inverted ranges)
//     returns an error matched with errors.Is; nothing panics. Every growing
//     structure has a limit in Config.
//
// # Queries
//
//   - Raycast: first body a ray touches at time t (path, distance, point,
//     normal).
//   - SweepCircle: first contact of a circle moving over [T0, T1] with the
//     moving bodies, at its exact time.
//   - Overlaps: bodies a shape overlaps at time t.
//   - Nearest: the k bodies nearest a point at time t.
//   - Candidates: bodies whose swept bounds meet a shape's bounds during a
//     time range (the broadphase alone, for a caller's own narrowphase).
//
// Contact is inclusive (touching counts). Times of contact and distances
// are solved in closed form in float64 with no epsilon, so they are exact up
// to rounding: a contact tangent to within a few ulps of the coordinates may
// go either way, always the same way for the same inputs.
//
// # Lag-compensated hitscan
//
// On the authority, each player's motion is upserted every tick and the
// world advanced; a shot fired by a client whose view was ViewDelay behind
// is cast at that past time, so it hits what the shooter saw:
//
//	w, _ := physics.New(physics.DefaultConfig())
//	wall := physics.Segment(physics.V(0, 0), physics.V(0, 200))
//	_ = w.Set(physics.Body{Path: "walls/1", Shape: wall, Motion: []physics.Keyframe{{Pos: physics.V(300, 0)}}})
//
//	// Every tick, for every player:
//	_ = w.Upsert("players/7", physics.Circle(16), physics.Keyframe{T: now, Pos: pos, Vel: vel})
//	_ = w.Advance(now)
//
//	// A shot from players/42, fired at write time W with the client's view
//	// delay, is checked at the time the shooter saw:
//	view := W - viewDelay
//	hit, ok, err := w.Raycast(physics.Ray{Origin: muzzle, Dir: aim, MaxDist: 1500},
//		view, physics.Filter{Exclude: "players/42"})
//	if err == nil && ok && strings.HasPrefix(hit.Path, "players/") {
//		// damage hit.Path; hit.Point and hit.Normal place the effect
//	}
//
// The runnable version is Example_lagCompensatedHitscan.
package physics
