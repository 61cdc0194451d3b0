package game

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rewindnet/rewind/physics"
)

// Encoded sizes of the stored values.
const (
	motionHead  = 8 + 8*2 + 8*2 + 1 + 1 + 8 + 1 // then driftSize per carried drift
	driftSize   = 8 * 3
	lifeSize    = 4 + 8
	scoreSize   = 4 + 4
	shotSize    = 4 + 4 + 1 + 8 + 8 + 8*4
	gravitySize = 1 + 8*2 + 8*3 // one use; a record holds 1 to gravityKeep of them after a count byte
	aimSize     = 8
)

// maxDrifts bounds the drifts a motion carries: one per other player.
const maxDrifts = MaxPlayers - 1

// maxVel bounds a stored velocity component, milli-px per second, so
// that velocity × elapsed time stays inside int64 (see maxElapsed).
const maxVel = 1 << 20

// maxElapsed bounds the time a motion integrates over: an hour, far more
// than any motion lives (every moving motion halts within sweepHorizon).
const maxElapsed = int64(3600e9)

// PlayerPath returns players/<id>/<field>.
func PlayerPath(id uint32, field string) string {
	return PlayersPrefix + strconv.FormatUint(uint64(id), 10) + "/" + field
}

// parseID parses a player id segment; ok is false for anything but a
// canonical decimal uint32 other than 0.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return uint32(n), true
}

// JoinArgs encodes the arguments of join: the player's name, cut to
// MaxNameLen bytes.
func JoinArgs(name string) []byte {
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	return []byte(name)
}

// SetKeysArgs encodes the arguments of setKeys: the keys now held.
func SetKeysArgs(k Keys) []byte { return []byte{byte(k)} }

// AimArgs encodes the arguments of aim: the aim angle in radians.
func AimArgs(angle float64) []byte {
	return binary.LittleEndian.AppendUint64(nil, math.Float64bits(angle))
}

// ShootArgs encodes the arguments of shoot: the aim angle in radians.
func ShootArgs(angle float64) []byte { return AimArgs(angle) }

// GravityArgs encodes the arguments of gravity: pull (true) or push.
func GravityArgs(pull bool) []byte {
	if pull {
		return []byte{1}
	}
	return []byte{0}
}

func decodeName(args []byte) (string, error) {
	if len(args) == 0 || len(args) > MaxNameLen || strings.ContainsRune(string(args), '\uFFFD') {
		return "", fmt.Errorf("%w: name of %d bytes (1 to %d bytes of UTF-8)", ErrBadArgs, len(args), MaxNameLen)
	}
	return string(args), nil
}

func decodeKeys(args []byte) (Keys, error) {
	if len(args) != 1 || Keys(args[0])&^allKeys != 0 {
		return 0, fmt.Errorf("%w: keys %x", ErrBadArgs, args)
	}
	return Keys(args[0]), nil
}

// decodeAngle decodes an aim angle; it must be finite and within ±2π·8.
func decodeAngle(args []byte) (float64, error) {
	if len(args) != aimSize {
		return 0, fmt.Errorf("%w: angle of %d bytes, want %d", ErrBadArgs, len(args), aimSize)
	}
	a := math.Float64frombits(binary.LittleEndian.Uint64(args))
	if math.IsNaN(a) || math.Abs(a) > 16*math.Pi {
		return 0, fmt.Errorf("%w: angle %v", ErrBadArgs, a)
	}
	return a, nil
}

func decodePull(args []byte) (bool, error) {
	if len(args) != 1 || args[0] > 1 {
		return false, fmt.Errorf("%w: gravity mode %x", ErrBadArgs, args)
	}
	return args[0] == 1, nil
}

// Velocity returns the velocity keys give, in milli-px per second.
// Opposite keys cancel; a diagonal moves at DiagonalPermille/1000 of
// Speed on each axis.
func (k Keys) Velocity() (vx, vy int64) {
	if k&KeyLeft != 0 {
		vx--
	}
	if k&KeyRight != 0 {
		vx++
	}
	if k&KeyUp != 0 {
		vy--
	}
	if k&KeyDown != 0 {
		vy++
	}
	s := int64(Speed * MilliPx)
	if vx != 0 && vy != 0 {
		s = s * DiagonalPermille / 1000
	}
	return vx * s, vy * s
}

// At returns the position at t in milli-px that m alone gives, exactly:
// the keys' velocity over [T, Stop) and each carried drift over [T, its
// End) (clamped to an hour after T); t before T gives the position at T.
// Gravity fields starting at or after T are not part of m: a player's
// position is m plus them, as PlayerAt computes it. Integer division
// truncates towards zero, the same way everywhere.
func (m Motion) At(t int64) (x, y int64) {
	if t <= m.T {
		return m.X, m.Y
	}
	d := min(min(t, m.Stop)-m.T, maxElapsed)
	x = m.X + m.VX*d/1e9
	y = m.Y + m.VY*d/1e9
	for _, dr := range m.Drifts {
		if b := min(t, dr.End); b > m.T {
			dd := min(b-m.T, maxElapsed)
			x += dr.DX * dd / 1e9
			y += dr.DY * dd / 1e9
		}
	}
	return x, y
}

// Pos returns At(t) in px.
func (m Motion) Pos(t int64) physics.Vec2 {
	x, y := m.At(t)
	return toPx(x, y)
}

func toPx(x, y int64) physics.Vec2 {
	return physics.V(float64(x)/MilliPx, float64(y)/MilliPx)
}

// Append encodes m.
func (m Motion) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint64(b, uint64(m.T))
	b = le.AppendUint64(b, uint64(m.X))
	b = le.AppendUint64(b, uint64(m.Y))
	b = le.AppendUint64(b, uint64(m.VX))
	b = le.AppendUint64(b, uint64(m.VY))
	b = append(b, byte(m.Keys), boolByte(m.Dead))
	b = le.AppendUint64(b, uint64(m.Stop))
	b = append(b, byte(len(m.Drifts)))
	for _, d := range m.Drifts {
		b = le.AppendUint64(b, uint64(d.End))
		b = le.AppendUint64(b, uint64(d.DX))
		b = le.AppendUint64(b, uint64(d.DY))
	}
	return b
}

// DecodeMotion decodes a Motion, wrapping ErrBadValue on malformed input:
// a wrong size, unknown keys, more than MaxPlayers-1 drifts, a velocity
// beyond ±2²⁰ milli-px/s, a position beyond the physics limits, Stop
// before T or a drift ending at or before T.
func DecodeMotion(b []byte) (Motion, error) {
	if len(b) < motionHead || (len(b)-motionHead)%driftSize != 0 || (len(b)-motionHead)/driftSize != int(b[motionHead-1]) || int(b[motionHead-1]) > maxDrifts {
		return Motion{}, fmt.Errorf("%w: motion of %d bytes", ErrBadValue, len(b))
	}
	le := binary.LittleEndian
	i64 := func(i int) int64 { return int64(le.Uint64(b[i:])) }
	m := Motion{T: i64(0), X: i64(8), Y: i64(16), VX: i64(24), VY: i64(32), Keys: Keys(b[40]), Stop: i64(42)}
	switch {
	case m.Keys&^allKeys != 0 || b[41] > 1:
		return Motion{}, fmt.Errorf("%w: motion flags %x %x", ErrBadValue, b[40], b[41])
	case outside(m.VX, maxVel) || outside(m.VY, maxVel):
		return Motion{}, fmt.Errorf("%w: motion velocity (%d, %d)", ErrBadValue, m.VX, m.VY)
	case outside(m.X, maxCoordMilli) || outside(m.Y, maxCoordMilli):
		return Motion{}, fmt.Errorf("%w: motion position (%d, %d)", ErrBadValue, m.X, m.Y)
	case m.Stop < m.T || m.T <= 0:
		return Motion{}, fmt.Errorf("%w: motion time %d stop %d", ErrBadValue, m.T, m.Stop)
	}
	for i := motionHead; i < len(b); i += driftSize {
		d := Drift{End: i64(i), DX: i64(i + 8), DY: i64(i + 16)}
		if d.End <= m.T || outside(d.DX, maxVel) || outside(d.DY, maxVel) {
			return Motion{}, fmt.Errorf("%w: motion drift %+v", ErrBadValue, d)
		}
		m.Drifts = append(m.Drifts, d)
	}
	m.Dead = b[41] == 1
	return m, nil
}

// maxCoordMilli bounds stored coordinates: a million px, well inside the
// physics limits even after an hour of motion at maxVel.
const maxCoordMilli = 1e6 * MilliPx

func outside(v, lim int64) bool { return v < -lim || v > lim }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// MotionDistance returns how far apart (px) the positions At(t) of two
// encoded motions are: the visible size of a correction of a
// players/<id>/motion value (the gravity fields, read from other paths,
// are the same on both sides). ok is false unless both decode.
func MotionDistance(a, b []byte, t int64) (d float64, ok bool) {
	ma, err := DecodeMotion(a)
	if err != nil {
		return 0, false
	}
	mb, err := DecodeMotion(b)
	if err != nil {
		return 0, false
	}
	return ma.Pos(t).Sub(mb.Pos(t)).Len(), true
}

func (l Life) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Health))
	return binary.LittleEndian.AppendUint64(b, uint64(l.DiedAt))
}

// DecodeLife decodes a Life (players/<id>/life), wrapping ErrBadValue on
// malformed input.
func DecodeLife(b []byte) (Life, error) { return decodeLife(b) }

func decodeLife(b []byte) (Life, error) {
	if len(b) != lifeSize {
		return Life{}, fmt.Errorf("%w: life of %d bytes, want %d", ErrBadValue, len(b), lifeSize)
	}
	l := Life{Health: int32(binary.LittleEndian.Uint32(b)), DiedAt: int64(binary.LittleEndian.Uint64(b[4:]))}
	if l.Health < 0 || l.Health > MaxHealth {
		return Life{}, fmt.Errorf("%w: health %d", ErrBadValue, l.Health)
	}
	return l, nil
}

func (s Score) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, s.Kills)
	return binary.LittleEndian.AppendUint32(b, s.Deaths)
}

func decodeScore(b []byte) (Score, error) {
	if len(b) != scoreSize {
		return Score{}, fmt.Errorf("%w: score of %d bytes, want %d", ErrBadValue, len(b), scoreSize)
	}
	return Score{Kills: binary.LittleEndian.Uint32(b), Deaths: binary.LittleEndian.Uint32(b[4:])}, nil
}

func appendVec(b []byte, v physics.Vec2) []byte {
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.X))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Y))
}

func decodeVec(b []byte) (physics.Vec2, bool) {
	v := physics.V(math.Float64frombits(binary.LittleEndian.Uint64(b)), math.Float64frombits(binary.LittleEndian.Uint64(b[8:])))
	ok := !math.IsNaN(v.X) && !math.IsNaN(v.Y) && math.Abs(v.X) <= physics.MaxCoord && math.Abs(v.Y) <= physics.MaxCoord
	return v, ok
}

// Append encodes s.
func (s Shot) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, s.Shooter)
	b = le.AppendUint32(b, s.Target)
	b = append(b, boolByte(s.Killed))
	b = le.AppendUint64(b, uint64(s.Time))
	b = le.AppendUint64(b, uint64(s.ViewTime))
	b = appendVec(b, s.Origin)
	return appendVec(b, s.End)
}

// DecodeShot decodes a Shot (the ShotEvents event or players/<id>/shot),
// wrapping ErrBadValue on malformed input.
func DecodeShot(b []byte) (Shot, error) {
	if len(b) != shotSize {
		return Shot{}, fmt.Errorf("%w: shot of %d bytes, want %d", ErrBadValue, len(b), shotSize)
	}
	le := binary.LittleEndian
	s := Shot{Shooter: le.Uint32(b), Target: le.Uint32(b[4:]), Time: int64(le.Uint64(b[9:])), ViewTime: int64(le.Uint64(b[17:]))}
	o, ok1 := decodeVec(b[25:])
	e, ok2 := decodeVec(b[41:])
	if b[8] > 1 || !ok1 || !ok2 || s.Shooter == 0 {
		return Shot{}, fmt.Errorf("%w: shot fields", ErrBadValue)
	}
	s.Killed, s.Origin, s.End = b[8] == 1, o, e
	return s, nil
}

func (g Gravity) append(b []byte) []byte {
	b = append(b, boolByte(g.Pull))
	b = appendVec(b, g.Center)
	b = binary.LittleEndian.AppendUint64(b, uint64(g.Time))
	b = binary.LittleEndian.AppendUint64(b, uint64(g.Start))
	return binary.LittleEndian.AppendUint64(b, uint64(g.End))
}

// appendGravity encodes a gravity record: its uses, newest first, at
// most gravityKeep of them.
func appendGravity(b []byte, uses []Gravity) []byte {
	uses = uses[:min(len(uses), gravityKeep)]
	b = append(b, byte(len(uses)))
	for _, g := range uses {
		b = g.append(b)
	}
	return b
}

// decodeGravity decodes a gravity record: 1 to gravityKeep uses, newest
// first, each with a centre inside the stored-coordinate bounds and
// 0 < Time ≤ Start ≤ End.
func decodeGravity(b []byte) ([]Gravity, error) {
	if len(b) < 1 || b[0] < 1 || b[0] > gravityKeep || len(b) != 1+int(b[0])*gravitySize {
		return nil, fmt.Errorf("%w: gravity record of %d bytes", ErrBadValue, len(b))
	}
	le := binary.LittleEndian
	uses := make([]Gravity, 0, b[0])
	for i := 1; i < len(b); i += gravitySize {
		u := b[i : i+gravitySize]
		c, ok := decodeVec(u[1:])
		if u[0] > 1 || !ok || outside(int64(c.X), maxCoordMilli/MilliPx) || outside(int64(c.Y), maxCoordMilli/MilliPx) {
			return nil, fmt.Errorf("%w: gravity use %x", ErrBadValue, u[:17])
		}
		g := Gravity{Pull: u[0] == 1, Center: c, Time: int64(le.Uint64(u[17:])), Start: int64(le.Uint64(u[25:])), End: int64(le.Uint64(u[33:]))}
		if g.Time <= 0 || g.Start < g.Time || g.End < g.Start {
			return nil, fmt.Errorf("%w: gravity times %d %d %d", ErrBadValue, g.Time, g.Start, g.End)
		}
		uses = append(uses, g)
	}
	return uses, nil
}
