package game

import "github.com/rewindnet/rewind/physics"

// wallThickness is the thickness of the border walls, px.
const wallThickness = 40

// walls is the arena's fixed layout: the borders, then cover placed
// symmetrically so neither side is favoured.
var walls = [...]Wall{
	{physics.V(-wallThickness, -wallThickness), physics.V(ArenaWidth+wallThickness, 0)},
	{physics.V(-wallThickness, ArenaHeight), physics.V(ArenaWidth+wallThickness, ArenaHeight+wallThickness)},
	{physics.V(-wallThickness, 0), physics.V(0, ArenaHeight)},
	{physics.V(ArenaWidth, 0), physics.V(ArenaWidth+wallThickness, ArenaHeight)},

	{physics.V(200, 150), physics.V(360, 180)},
	{physics.V(920, 150), physics.V(1080, 180)},
	{physics.V(200, 540), physics.V(360, 570)},
	{physics.V(920, 540), physics.V(1080, 570)},
	{physics.V(610, 300), physics.V(670, 420)},
	{physics.V(440, 260), physics.V(470, 460)},
	{physics.V(810, 260), physics.V(840, 460)},
	{physics.V(560, 80), physics.V(720, 110)},
	{physics.V(560, 610), physics.V(720, 640)},
	{physics.V(80, 320), physics.V(110, 440)},
	{physics.V(1170, 320), physics.V(1200, 440)},
}

// wallPaths names the walls as physics bodies.
var wallPaths = func() [len(walls)]string {
	var p [len(walls)]string
	for i := range p {
		p[i] = "walls/" + string(rune('a'+i))
	}
	return p
}()

// spawns are the points join and respawn choose from, each at least a
// player's diameter clear of every wall.
var spawns = [...]physics.Vec2{
	{X: 60, Y: 60}, {X: 1220, Y: 60}, {X: 60, Y: 660}, {X: 1220, Y: 660},
	{X: 640, Y: 200}, {X: 640, Y: 520}, {X: 300, Y: 360}, {X: 980, Y: 360},
	{X: 120, Y: 230}, {X: 1160, Y: 230}, {X: 120, Y: 500}, {X: 1160, Y: 500},
	{X: 400, Y: 40}, {X: 880, Y: 40}, {X: 400, Y: 680}, {X: 880, Y: 680},
}

// Walls returns the arena's walls, a fixed layout: four borders just
// outside [0, ArenaWidth] × [0, ArenaHeight], then the cover inside. The
// slice is a copy.
func Walls() []Wall { return append([]Wall(nil), walls[:]...) }

// Blocked reports whether the segment from a to b crosses a wall (touching
// counts): line of sight for drawing and for bots. Shots use the physics
// raycast, which agrees with it on walls.
func Blocked(a, b physics.Vec2) bool {
	for i := range walls {
		if segmentHitsBox(a, b, walls[i].Min, walls[i].Max) {
			return true
		}
	}
	return false
}

// segmentHitsBox is the slab test of segment a–b against the box.
func segmentHitsBox(a, b, lo, hi physics.Vec2) bool {
	t0, t1 := 0.0, 1.0
	d := b.Sub(a)
	for _, ax := range [2]struct{ o, d, lo, hi float64 }{{a.X, d.X, lo.X, hi.X}, {a.Y, d.Y, lo.Y, hi.Y}} {
		if ax.d == 0 {
			if ax.o < ax.lo || ax.o > ax.hi {
				return false
			}
			continue
		}
		u, v := (ax.lo-ax.o)/ax.d, (ax.hi-ax.o)/ax.d
		if u > v {
			u, v = v, u
		}
		t0, t1 = max(t0, u), min(t1, v)
		if t0 > t1 {
			return false
		}
	}
	return true
}

// circleHitsBox reports whether the circle (c, r) shares a point with the
// box.
func circleHitsBox(c physics.Vec2, r float64, lo, hi physics.Vec2) bool {
	q := physics.V(min(max(c.X, lo.X), hi.X), min(max(c.Y, lo.Y), hi.Y))
	return c.Sub(q).Len2() <= r*r
}
