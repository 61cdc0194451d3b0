// Package field is the load generator's game: players moving on an open
// square field and shooting each other with hitscan, lag-compensated as
// the demo shooter's shots are, sized for a thousand players. Every
// player's state is one compact value, so a position update costs the
// wire as little as it can; every player watches only the players near it
// (a spatial layer on Prefix).
//
// # State
//
// players/<id>/pos holds a Pos (12 bytes): the time it was written (the
// low 32 bits of the synced clock in milliseconds), the position then in
// quarter units (0 to 16383.75 on each axis) and the velocity in units
// per second. The position at a later time t is the stored one plus
// velocity × (t − written), held inside the field. players/<id>/shot
// holds the player's last Shot.
//
// # Functions
//
//   - move(vx, vy int16): the caller's position now, from its last Pos,
//     and its new velocity. A first move places it at (X, Y) given after
//     the velocity (two more uint16, quarter units). A move that keeps the
//     velocity writes nothing (dead reckoning: the stored Pos already
//     gives the position at any time), unless the player reached the
//     field's edge, where it stops; so input at 30 Hz costs the watchers
//     only the changes of direction.
//   - shoot(target uint32, angle float32): a ray from the caller's
//     position at the call's time in direction angle, against the
//     target's position at the caller's view time (lag compensation);
//     hit when it passes within HitRadius before Range. Writes the Shot.
//
// Both are deterministic and read only their own player and, for shoot,
// the target, so they stay far inside the lock limits at any player
// count.
package field

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/rewindnet/rewind/netcode"
)

// Game constants. Units are the field's.
const (
	Prefix    = "players/"
	FieldPos  = "pos"
	FieldShot = "shot"
	MaxCoord  = 16383.75 // largest coordinate a Pos holds
	quantum   = 4        // Pos steps per unit
	MaxSpeed  = 400      // units per second on each axis
	HitRadius = 16.0     // a player's radius for shots
	Range     = 800.0    // how far a shot reaches
	// CellSize is the spatial index's cell: about the radius players
	// watch.
	CellSize = 256.0

	FuncMove  = "move"
	FuncShoot = "shoot"

	posSize  = 12
	shotSize = 9
)

// ErrArgs: a call's arguments or a stored value do not decode.
var ErrArgs = errors.New("field: bad arguments")

// Pos is a player's stored state.
type Pos struct {
	Ms     uint32  // low 32 bits of the write time, ms
	X, Y   float64 // position at Ms, units (quantised to quarter units)
	VX, VY int16   // units per second
}

// At returns the position at synced time t (ns), held inside the field.
func (p Pos) At(t int64) (x, y float64) {
	dt := float64(int32(uint32(t/1e6)-p.Ms)) / 1000
	return clamp(p.X + float64(p.VX)*dt), clamp(p.Y + float64(p.VY)*dt)
}

func clamp(v float64) float64 { return math.Min(math.Max(v, 0), MaxCoord) }

func quant(v float64) uint16 { return uint16(math.Round(clamp(v) * quantum)) }

// Encode returns the 12-byte value.
func (p Pos) Encode() []byte {
	b := make([]byte, posSize)
	binary.LittleEndian.PutUint32(b, p.Ms)
	binary.LittleEndian.PutUint16(b[4:], quant(p.X))
	binary.LittleEndian.PutUint16(b[6:], quant(p.Y))
	binary.LittleEndian.PutUint16(b[8:], uint16(p.VX))
	binary.LittleEndian.PutUint16(b[10:], uint16(p.VY))
	return b
}

// DecodePos decodes a stored Pos.
func DecodePos(b []byte) (Pos, error) {
	if len(b) != posSize {
		return Pos{}, fmt.Errorf("%w: pos of %d bytes", ErrArgs, len(b))
	}
	return Pos{
		Ms: binary.LittleEndian.Uint32(b),
		X:  float64(binary.LittleEndian.Uint16(b[4:])) / quantum,
		Y:  float64(binary.LittleEndian.Uint16(b[6:])) / quantum,
		VX: int16(binary.LittleEndian.Uint16(b[8:])),
		VY: int16(binary.LittleEndian.Uint16(b[10:])),
	}, nil
}

// Shot is a player's last shot.
type Shot struct {
	Target uint32
	Hit    bool
	Seq    uint32 // the shooter's shot count, so each shot's value differs
}

// DecodeShot decodes a stored Shot.
func DecodeShot(b []byte) (Shot, error) {
	if len(b) != shotSize {
		return Shot{}, fmt.Errorf("%w: shot of %d bytes", ErrArgs, len(b))
	}
	return Shot{Target: binary.LittleEndian.Uint32(b), Hit: b[4] == 1, Seq: binary.LittleEndian.Uint32(b[5:])}, nil
}

func (s Shot) encode() []byte {
	b := make([]byte, shotSize)
	binary.LittleEndian.PutUint32(b, s.Target)
	if s.Hit {
		b[4] = 1
	}
	binary.LittleEndian.PutUint32(b[5:], s.Seq)
	return b
}

// PosPath and ShotPath name a player's values; Entity its spatial entity.
func PosPath(id uint32) string  { return Prefix + strconv.FormatUint(uint64(id), 10) + "/" + FieldPos }
func ShotPath(id uint32) string { return Prefix + strconv.FormatUint(uint64(id), 10) + "/" + FieldShot }
func Entity(id uint32) string   { return Prefix + strconv.FormatUint(uint64(id), 10) + "/" }

// MoveArgs encodes a move; start places a player that has no position yet.
func MoveArgs(vx, vy int16, startX, startY float64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint16(b, uint16(vx))
	binary.LittleEndian.PutUint16(b[2:], uint16(vy))
	binary.LittleEndian.PutUint16(b[4:], quant(startX))
	binary.LittleEndian.PutUint16(b[6:], quant(startY))
	return b
}

// ShootArgs encodes a shot at target in direction angle (radians).
func ShootArgs(target uint32, angle float32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, target)
	binary.LittleEndian.PutUint32(b[4:], math.Float32bits(angle))
	return b
}

// Registry returns the game's functions and its spatial layer.
func Registry() *netcode.Registry {
	r := netcode.NewRegistry()
	must := func(err error) {
		if err != nil {
			panic(err) // fixed, valid names and layer
		}
	}
	must(r.Register(FuncMove, move, netcode.FuncOptions{}))
	must(r.Register(FuncShoot, shoot, netcode.FuncOptions{}))
	must(r.Spatial(netcode.Layer{Prefix: Prefix, Field: FieldPos, CellSize: CellSize, Pos: func(v []byte) (float64, float64, bool) {
		p, err := DecodePos(v)
		return p.X, p.Y, err == nil
	}}))
	return r
}

func move(tx *netcode.Tx, args []byte) error {
	if len(args) != 8 {
		return fmt.Errorf("%w: move of %d bytes", ErrArgs, len(args))
	}
	vx, vy := int16(binary.LittleEndian.Uint16(args)), int16(binary.LittleEndian.Uint16(args[2:]))
	if vx < -MaxSpeed || vx > MaxSpeed || vy < -MaxSpeed || vy > MaxSpeed {
		return fmt.Errorf("%w: velocity (%d, %d) beyond %d", ErrArgs, vx, vy, MaxSpeed)
	}
	now := tx.Time().Nanos
	p := Pos{Ms: uint32(now / 1e6), VX: vx, VY: vy}
	if old, ok := tx.Read(PosPath(tx.Caller())); ok {
		q, err := DecodePos(old)
		if err != nil {
			return err
		}
		if q.VX == vx && q.VY == vy {
			x, y := q.At(now)
			if x > 0 && x < MaxCoord && y > 0 && y < MaxCoord {
				// Dead reckoning: the stored motion already says where
				// the player is; nothing to write, nothing to send.
				return nil
			}
		}
		p.X, p.Y = q.At(now)
	} else {
		p.X = float64(binary.LittleEndian.Uint16(args[4:])) / quantum
		p.Y = float64(binary.LittleEndian.Uint16(args[6:])) / quantum
	}
	tx.Write(PosPath(tx.Caller()), p.Encode())
	return nil
}

func shoot(tx *netcode.Tx, args []byte) error {
	if len(args) != 8 {
		return fmt.Errorf("%w: shoot of %d bytes", ErrArgs, len(args))
	}
	target := binary.LittleEndian.Uint32(args)
	angle := float64(math.Float32frombits(binary.LittleEndian.Uint32(args[4:])))
	if math.IsNaN(angle) || math.IsInf(angle, 0) {
		return fmt.Errorf("%w: angle %v", ErrArgs, angle)
	}
	me, ok := tx.Read(PosPath(tx.Caller()))
	if !ok {
		return fmt.Errorf("%w: the shooter has no position", ErrArgs)
	}
	mp, err := DecodePos(me)
	if err != nil {
		return err
	}
	seq := uint32(1)
	if old, ok := tx.Read(ShotPath(tx.Caller())); ok {
		if s, err := DecodeShot(old); err == nil {
			seq = s.Seq + 1
		}
	}
	shot := Shot{Target: target, Seq: seq}
	if tv, ok := tx.ReadView(PosPath(target)); ok && target != tx.Caller() {
		tp, err := DecodePos(tv)
		if err != nil {
			return err
		}
		ox, oy := mp.At(tx.Time().Nanos)
		tx2, ty2 := tp.At(tx.ViewTime())
		shot.Hit = Hits(ox, oy, angle, tx2, ty2)
	}
	tx.Write(ShotPath(tx.Caller()), shot.encode())
	return nil
}

// Hits reports whether a shot from (ox, oy) in direction angle hits a
// player at (tx, ty): the ray passes within HitRadius of it before Range.
func Hits(ox, oy, angle, tx, ty float64) bool {
	dx, dy := math.Cos(angle), math.Sin(angle)
	rx, ry := tx-ox, ty-oy
	along := rx*dx + ry*dy
	if along < 0 || along > Range {
		return false
	}
	off := math.Abs(rx*dy - ry*dx)
	return off <= HitRadius
}
