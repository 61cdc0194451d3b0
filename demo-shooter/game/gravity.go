package game

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

// gravityKeep is how many of its last uses a gravity record keeps. A
// field drifts a player whose motion started before it for as long as
// the record still holds it: with GravityCooldown between uses, a motion
// unchanged for more than gravityKeep cooldowns (24 s) loses the drift of
// a use that old.
const gravityKeep = 3

// field is one gravity use as positions see it, in milli-px.
type field struct {
	caster     uint32
	pull       bool
	cx, cy     int64
	start, end int64
}

// piece is a drift of velocity (dx, dy) milli-px/s over [start, end).
type piece struct {
	start, end, dx, dy int64
}

// fieldsReadTime returns when the gravity records are read for a
// position at t: GravityDelay before it (plus one, reads being strictly
// before). Every field starting before t was written before then, since
// a field starts GravityDelay after its use; reading no later keeps a
// use made within the last GravityDelay (which cannot move anyone yet)
// from invalidating the read.
func fieldsReadTime(t int64) int64 { return t - int64(GravityDelay) + 1 }

// appendFields appends the uses of caster's record b.
func appendFields(fs []field, caster uint32, b []byte) ([]field, error) {
	uses, err := decodeGravity(b)
	if err != nil {
		return fs, err
	}
	for _, g := range uses {
		fs = append(fs, field{
			caster: caster, pull: g.Pull,
			cx: int64(math.Round(g.Center.X * MilliPx)), cy: int64(math.Round(g.Center.Y * MilliPx)),
			start: g.Start, end: g.End,
		})
	}
	return fs, nil
}

// sortFields orders fields by (start, caster): the order their effects
// are evaluated in.
func sortFields(fs []field) {
	slices.SortFunc(fs, func(a, b field) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.caster, b.caster)
	})
}

// readFields reads the gravity record of each of ids as of
// fieldsReadTime(W), each read lock-recorded, and returns their fields
// sorted. ids are every player, the caller included (its fields move the
// others).
func readFields(tx *netcode.Tx, ids []uint32) ([]field, error) {
	at := fieldsReadTime(tx.Time().Nanos)
	var fs []field
	for _, id := range ids {
		p := PlayerPath(id, FieldGravity)
		b, ok := tx.ReadPast(p, at)
		if !ok {
			continue
		}
		var err error
		if fs, err = appendFields(fs, id, b); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	sortFields(fs)
	return fs, nil
}

// viewFields reads the gravity records in v for a position at t, sorted.
// A record that does not decode is skipped.
func viewFields(v View, ids []uint32, t int64) []field {
	at := fieldsReadTime(t)
	var fs []field
	for _, id := range ids {
		if b, ok := v.ReadAt(PlayerPath(id, FieldGravity), at); ok {
			fs, _ = appendFields(fs, id, b)
		}
	}
	sortFields(fs)
	return fs
}

// track is a player's motion with the drifts the gravity fields give it:
// its exact position at any time.
type track struct {
	id uint32
	m  Motion
	ps []piece // drifts of the fields starting at or after m.T that take the player
}

// newTrack evaluates fs (sorted) for player id moving by m. A field of
// another player starting at or after m.T takes a living player whose
// position at the field's start is within GravityRadius of its centre
// (and not on it): it drifts the player at GravitySpeed towards the
// centre (away from it for a push) from that position, over the field's
// interval. Fields are taken in (start, caster) order, each seeing the
// drifts of those before, so the result is the same wherever it is
// computed.
func newTrack(id uint32, m Motion, fs []field) track {
	k := track{id: id, m: m}
	if m.Dead {
		return k
	}
	const r = int64(GravityRadius * MilliPx)
	for _, f := range fs {
		if f.caster == id || f.start < m.T || f.end <= f.start {
			continue
		}
		x, y := k.at(f.start)
		dx, dy := f.cx-x, f.cy-y
		if dx < -r || dx > r || dy < -r || dy > r {
			continue
		}
		d2 := dx*dx + dy*dy
		if d2 > r*r || d2 == 0 {
			continue
		}
		dist := math.Sqrt(float64(d2))
		s := float64(GravitySpeed*MilliPx) / dist
		end := f.end
		if f.pull {
			// A pull ends on reaching a player's diameter of the centre,
			// where the caster stood, instead of passing through it.
			end = min(end, f.start+int64((dist-2*PlayerRadius*MilliPx)/(GravitySpeed*MilliPx)*1e9))
		} else {
			s = -s
		}
		if end <= f.start {
			continue
		}
		k.ps = append(k.ps, piece{start: f.start, end: end, dx: int64(math.Round(float64(dx) * s)), dy: int64(math.Round(float64(dy) * s))})
	}
	return k
}

// at returns the position at t in milli-px: the motion's plus the
// drifts', kept inside the arena's border walls (drift is not swept
// against walls or players; see settle).
func (k track) at(t int64) (x, y int64) {
	x, y = k.m.At(t)
	for _, p := range k.ps {
		if b := min(t, p.end); b > p.start {
			d := min(b-p.start, maxElapsed)
			x += p.dx * d / 1e9
			y += p.dy * d / 1e9
		}
	}
	const lo = int64(PlayerRadius * MilliPx)
	return min(max(x, lo), ArenaWidth*MilliPx-lo), min(max(y, lo), ArenaHeight*MilliPx-lo)
}

// pos returns the position at t in px.
func (k track) pos(t int64) physics.Vec2 { return toPx(k.at(t)) }

// vel returns the velocity (milli-px/s) of the piece starting at t:
// the keys' until Stop plus every drift under way.
func (k track) vel(t int64) (vx, vy int64) {
	if t < k.m.Stop {
		vx, vy = k.m.VX, k.m.VY
	}
	for _, d := range k.m.Drifts {
		if t < d.End {
			vx, vy = vx+d.DX, vy+d.DY
		}
	}
	for _, p := range k.ps {
		if t >= p.start && t < p.end {
			vx, vy = vx+p.dx, vy+p.dy
		}
	}
	return vx, vy
}

// carry returns the drifts under way at t (started before it, ending
// after it), which a motion starting at t carries on: the fields that
// started before t are not evaluated again for it. At most maxDrifts are
// kept.
func (k track) carry(t int64) []Drift {
	var ds []Drift
	for _, d := range k.m.Drifts {
		if d.End > t {
			ds = append(ds, d)
		}
	}
	for _, p := range k.ps {
		if p.start < t && p.end > t {
			ds = append(ds, Drift{End: p.end, DX: p.dx, DY: p.dy})
		}
	}
	return ds[:min(len(ds), maxDrifts)]
}
