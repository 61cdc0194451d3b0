package game

import (
	"errors"
	"time"

	"github.com/rewindnet/rewind/physics"
)

// Arena and rules. Distances are in pixels (px), the arena's own unit;
// positions are stored in milli-pixels (MilliPx per px) so that a position
// computed from a Motion is an exact integer.
const (
	ArenaWidth   = 1280 // px, x grows to the right
	ArenaHeight  = 720  // px, y grows downwards
	PlayerRadius = 14.0 // px
	MilliPx      = 1000 // stored position units per px

	// Speed is how fast a player moves while a direction key is held, in
	// px per second; diagonals move at Speed·DiagonalPermille/1000 on
	// each axis.
	Speed            = 220
	DiagonalPermille = 707

	MaxPlayers = 32 // players a shoot or setKeys reads at most (each costs a read lock)
	MaxNameLen = 16 // bytes of a player name

	MaxHealth = 100    // health at spawn
	Damage    = 25     // health a hit takes
	ShotRange = 1500.0 // px a shot travels at most

	ShotCooldown = 250 * time.Millisecond // between two shots of one player
	RespawnDelay = 2 * time.Second        // from death to the earliest respawn

	// A gravity power pulls (or pushes) every other living player within
	// GravityRadius of the caller's position at the call, towards (away
	// from) that point at GravitySpeed, from GravityDelay after the call
	// for GravityDuration. The delay is the power's wind-up: it lets the
	// news reach the affected players before they start to drift, so
	// that the key changes they make meanwhile, predicted without the
	// drift, put them where the authority does. The news takes the
	// caller's uplink and the player's downlink, retransmissions
	// included: on a mobile link (120 ± 40 ms each way, 2 % loss) it took
	// up to 0.9 s in the simulated 16-bot match, hence a second.
	GravityRadius   = 260.0 // px
	GravitySpeed    = 160   // px per second
	GravityDelay    = time.Second
	GravityDuration = 2 * time.Second
	GravityCooldown = 8 * time.Second // from one use to the next
)

// Function names, registered by Registry.
const (
	FuncJoin    = "join"    // args: JoinArgs(name)
	FuncSetKeys = "setKeys" // args: SetKeysArgs(keys)
	FuncAim     = "aim"     // args: AimArgs(angle)
	FuncShoot   = "shoot"   // args: ShootArgs(angle)
	FuncGravity = "gravity" // args: GravityArgs(pull)
	FuncRespawn = "respawn" // args: none
)

// WritesMotion reports whether a call of the function named fn writes the
// caller's own motion (players/<id>/motion): join, setKeys and respawn.
func WritesMotion(fn string) bool {
	return fn == FuncSetKeys || fn == FuncJoin || fn == FuncRespawn
}

// Paths. A player's id is the Creator id of the connection that joined
// (tx.Caller()), in decimal: players/<id>/<field>; see the package
// documentation for the fields.
const (
	PlayersPrefix = "players/"
	ShotEvents    = "events/shots" // every shot, emitted by shoot: a Shot
)

// Player fields, the last segment of players/<id>/<field>.
const (
	FieldName    = "name"    // UTF-8, at most MaxNameLen bytes
	FieldMotion  = "motion"  // a Motion
	FieldAim     = "aim"     // float64 radians, little-endian bits
	FieldLife    = "life"    // a Life
	FieldScore   = "score"   // a Score
	FieldShot    = "shot"    // the player's last Shot (its time is the cooldown's start)
	FieldGravity = "gravity" // the player's last Gravity use
)

// Errors returned by the game functions and decoders, matched with
// errors.Is. A function that returns an error stores nothing.
var (
	// ErrBadArgs: a call's arguments do not decode.
	ErrBadArgs = errors.New("game: bad arguments")
	// ErrBadValue: a stored value does not decode.
	ErrBadValue = errors.New("game: bad stored value")
	// ErrNotJoined: the caller has no player (call join first).
	ErrNotJoined = errors.New("game: caller has not joined")
	// ErrDead: a dead player cannot move, aim, shoot or use gravity.
	ErrDead = errors.New("game: player is dead")
	// ErrAlive: respawn needs a dead player.
	ErrAlive = errors.New("game: player is alive")
	// ErrCooldown: the shot, the gravity power or the respawn is not ready
	// yet.
	ErrCooldown = errors.New("game: not ready yet")
	// ErrFull: the arena holds MaxPlayers players.
	ErrFull = errors.New("game: arena full")
)

// Keys is the state of the movement keys, a bitmask. Opposite keys held
// together cancel.
type Keys uint8

// Movement keys.
const (
	KeyUp    Keys = 1 << iota // W: y decreases
	KeyLeft                   // A: x decreases
	KeyDown                   // S: y increases
	KeyRight                  // D: x increases

	allKeys = KeyUp | KeyLeft | KeyDown | KeyRight
)

// Never is the Stop time of a motion that does not stop.
const Never int64 = 1<<63 - 1

// Motion is the state at players/<id>/motion: where the player was at T
// and how it moves from then on, written only by the player's own calls
// (and by the shot that kills it). At computes exactly, in integers:
// velocity (VX, VY) from T until Stop (the first contact of that
// velocity with a wall or another player, found by a swept circle when
// the motion was written), plus each carried drift from T until its End.
// The player's position is At plus the drift of every gravity field
// starting at or after T that takes it (see PlayerAt); client and
// authority compute bit-identical positions from the same values.
type Motion struct {
	T      int64 // synced nanoseconds the motion starts
	X, Y   int64 // milli-px at T, every drift until T included
	VX, VY int64 // milli-px per second from the keys (after sliding along a touched wall)
	Keys   Keys  // keys held
	Dead   bool  // a dead player does not move, collide, drift or get hit

	// Drifts are the gravity drifts under way at T, carried on from the
	// motion before: fields that started before T are not evaluated
	// again (the player's position at their start is not in this motion).
	Drifts []Drift

	Stop int64 // synced nanoseconds the keys' velocity halts (Never: it does not)
}

// Drift is a gravity drift a motion carries: (DX, DY) milli-px per
// second from the motion's T until End.
type Drift struct {
	End    int64
	DX, DY int64
}

// Life is the state at players/<id>/life.
type Life struct {
	Health int32 // 0: dead
	DiedAt int64 // synced nanoseconds of the last death (0: never died)
}

// Alive reports whether the player is alive.
func (l Life) Alive() bool { return l.Health > 0 }

// RespawnAt returns the earliest time a dead player may respawn.
func (l Life) RespawnAt() int64 { return l.DiedAt + int64(RespawnDelay) }

// Score is the state at players/<id>/score.
type Score struct {
	Kills, Deaths uint32
}

// Shot is one shot: the event at ShotEvents and the shooter's last shot
// at players/<id>/shot.
type Shot struct {
	Shooter  uint32
	Target   uint32 // the player hit, 0 when none
	Killed   bool   // the hit killed the target
	Time     int64  // the call's write time W
	ViewTime int64  // the time the targets were read at (W - view delay, clamped to W - MaxRewind)
	Origin   physics.Vec2
	End      physics.Vec2 // where the shot stopped: the hit point, a wall, or ShotRange
}

// Gravity is one use of the power, a gravity field. The state at
// players/<id>/gravity is the player's last uses, newest first (at most
// gravityKeep), written only by the player's own gravity calls.
type Gravity struct {
	Pull       bool         // pull towards Center (false: push away)
	Center     physics.Vec2 // px, the caller's position at Time
	Time       int64        // write time of the use (the cooldown's start)
	Start, End int64        // interval the field drifts the players it takes
}

// Wall is an axis-aligned box players and shots cannot pass, in px.
type Wall struct {
	Min, Max physics.Vec2
}

// Player is a player as seen at one time, decoded by PlayerAt.
type Player struct {
	ID      uint32
	Name    string
	Motion  Motion
	Pos     physics.Vec2 // px at the time asked
	Aim     float64      // radians, 0 along +x, π/2 along +y
	Life    Life
	Score   Score
	Shot    Shot    // last shot (zero when none)
	Gravity Gravity // last use of the power (zero when none)
}

// View is what the helpers and bots read: the client's local view
// (predicted and confirmed values), or a test's store. *netcode.ClientCore
// satisfies it.
type View interface {
	// Read returns the latest value of path.
	Read(path string) ([]byte, bool)
	// ReadAt returns the latest value of path strictly before synced time t.
	ReadAt(path string, t int64) ([]byte, bool)
	// Children lists the next segments of the paths under prefix, sorted.
	Children(prefix string) []string
}

// Action is a call a bot wants made: client.Call(a.Name, a.Args).
type Action struct {
	Name string
	Args []byte
}
