package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// Function names of the built-in workload.
const (
	FuncMove  = "move"  // args: player uint16, dx int8, dy int8
	FuncBump  = "bump"  // args: counter uint8
	FuncShove = "shove" // args: player uint16, dx int8, dy int8
	FuncLook  = "look"  // args: player uint16, target uint16
)

// Paths of the built-in workload.
const (
	PlayersPrefix  = "players/"     // players/<n>: a Player, encoded
	CountersPrefix = "counters/"    // counters/<k>: a uint64, little-endian
	BumpEvents     = "events/bumps" // emitted by every bump: the counter's new value
	SeenPrefix     = "seen/"        // seen/<n>: what player n last saw of its target, encoded
)

// Units of the workload's world: positions are int64 milli-units, so
// positions computed from key state and time are exact integers.
const (
	Unit       = 1000     // milli-units per world unit
	Speed      = 5 * Unit // milli-units per second while a key is held
	ShoveReach = Unit / 2 // milli-units a shove moves its target
)

// ErrBadArgs is returned by a workload function given malformed arguments.
var ErrBadArgs = errors.New("sim: bad workload arguments")

// Player is the state at players/<n>: where the player was at T and the
// velocity its keys gave it from then on.
type Player struct {
	X, Y   int64 // milli-units at T
	VX, VY int32 // milli-units per second
	T      int64 // synced nanoseconds when the keys last changed
}

// playerSize is the encoded size of a Player.
const playerSize = 32

// At returns the position at synced time t (t >= p.T), exactly.
func (p Player) At(t int64) (x, y int64) {
	d := max(0, t-p.T)
	return p.X + int64(p.VX)*d/int64(time.Second), p.Y + int64(p.VY)*d/int64(time.Second)
}

// Append encodes p.
func (p Player) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(p.X))
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Y))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.VX))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.VY))
	return binary.LittleEndian.AppendUint64(b, uint64(p.T))
}

// DecodePlayer decodes a Player; ok is false unless b is one.
func DecodePlayer(b []byte) (p Player, ok bool) {
	if len(b) != playerSize {
		return Player{}, false
	}
	p.X = int64(binary.LittleEndian.Uint64(b))
	p.Y = int64(binary.LittleEndian.Uint64(b[8:]))
	p.VX = int32(binary.LittleEndian.Uint32(b[16:]))
	p.VY = int32(binary.LittleEndian.Uint32(b[20:]))
	p.T = int64(binary.LittleEndian.Uint64(b[24:]))
	return p, true
}

// Distance returns how far apart two encoded player states are, in world
// units, each at its own time of last change. ok is false unless both
// decode.
func Distance(a, b []byte) (d float64, ok bool) {
	pa, oka := DecodePlayer(a)
	pb, okb := DecodePlayer(b)
	if !oka || !okb {
		return 0, false
	}
	t := max(pa.T, pb.T)
	ax, ay := pa.At(t)
	bx, by := pb.At(t)
	return math.Hypot(float64(ax-bx), float64(ay-by)) / Unit, true
}

// PlayerPath returns the path of player n.
func PlayerPath(n int) string { return PlayersPrefix + strconv.Itoa(n) }

// SeenPath returns the path of what player n last saw.
func SeenPath(n int) string { return SeenPrefix + strconv.Itoa(n) }

// LookArgs encodes the arguments of player's look at target.
func LookArgs(player, target int) []byte {
	return []byte{byte(player), byte(player >> 8), byte(target), byte(target >> 8)}
}

// CounterPath returns the path of counter k.
func CounterPath(k int) string { return CountersPrefix + strconv.Itoa(k) }

// MoveArgs, BumpArgs and ShoveArgs encode the workload's call arguments.
func MoveArgs(player int, dx, dy int8) []byte {
	return []byte{byte(player), byte(player >> 8), byte(dx), byte(dy)}
}

// BumpArgs encodes the arguments of a bump of counter k.
func BumpArgs(k int) []byte { return []byte{byte(k)} }

// ShoveArgs encodes the arguments of a shove of player in direction (dx, dy).
func ShoveArgs(player int, dx, dy int8) []byte { return MoveArgs(player, dx, dy) }

func playerArgs(args []byte) (path string, dx, dy int8, err error) {
	if len(args) != 4 {
		return "", 0, 0, fmt.Errorf("%w: %d bytes, want 4", ErrBadArgs, len(args))
	}
	dx, dy = int8(args[2]), int8(args[3])
	if dx < -1 || dx > 1 || dy < -1 || dy > 1 {
		return "", 0, 0, fmt.Errorf("%w: direction (%d, %d)", ErrBadArgs, dx, dy)
	}
	return PlayerPath(int(binary.LittleEndian.Uint16(args))), dx, dy, nil
}

// move: the player's keys changed to (dx, dy) at the call's write time.
func move(tx *netcode.Tx, args []byte) error {
	path, dx, dy, err := playerArgs(args)
	if err != nil {
		return err
	}
	var p Player
	if b, ok := tx.Read(path); ok {
		if p, ok = DecodePlayer(b); !ok {
			return fmt.Errorf("%w: %s holds %d bytes", ErrBadArgs, path, len(b))
		}
	}
	now := tx.Time().Nanos
	p.X, p.Y = p.At(now)
	p.VX, p.VY, p.T = int32(dx)*Speed, int32(dy)*Speed, now
	tx.Write(path, p.Append(make([]byte, 0, playerSize)))
	return nil
}

// shove pushes another player by ShoveReach in direction (dx, dy): it
// writes a path its owner is predicting, so late shoves force corrections.
func shove(tx *netcode.Tx, args []byte) error {
	path, dx, dy, err := playerArgs(args)
	if err != nil {
		return err
	}
	b, ok := tx.Read(path)
	if !ok {
		return nil // nobody there yet
	}
	p, ok := DecodePlayer(b)
	if !ok {
		return fmt.Errorf("%w: %s holds %d bytes", ErrBadArgs, path, len(b))
	}
	now := tx.Time().Nanos
	p.X, p.Y = p.At(now)
	p.X += int64(dx) * ShoveReach
	p.Y += int64(dy) * ShoveReach
	p.T = now
	tx.Write(path, p.Append(make([]byte, 0, playerSize)))
	return nil
}

// look records, at seen/<player>, the target's state as the caller saw
// it (its path, then its encoded Player, or nothing yet): a read of a path
// that, sharded, another range holds, written into the caller's own.
func look(tx *netcode.Tx, args []byte) error {
	if len(args) != 4 {
		return fmt.Errorf("%w: %d bytes, want 4", ErrBadArgs, len(args))
	}
	target := PlayerPath(int(binary.LittleEndian.Uint16(args[2:])))
	b, _ := tx.Read(target)
	v := append([]byte(target+"="), b...)
	tx.Write(SeenPath(int(binary.LittleEndian.Uint16(args))), v)
	return nil
}

// bump adds one to a shared counter and emits the new value as an event.
func bump(tx *netcode.Tx, args []byte) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: %d bytes, want 1", ErrBadArgs, len(args))
	}
	path := CounterPath(int(args[0]))
	var n uint64
	if b, ok := tx.Read(path); ok && len(b) == 8 {
		n = binary.LittleEndian.Uint64(b)
	}
	v := binary.LittleEndian.AppendUint64(nil, n+1)
	tx.Write(path, v)
	tx.Emit(BumpEvents, v)
	return nil
}

// Registry returns a registry holding the workload's functions. Link it
// into the authority and into every client (each needs its own only if it
// registers more; the registry is read-only once built).
func Registry() *netcode.Registry {
	r := netcode.NewRegistry()
	for _, f := range []struct {
		name string
		fn   netcode.Func
		key  func(caller uint32, args []byte) string
	}{{FuncMove, move, playerKey}, {FuncBump, bump, counterKey}, {FuncShove, shove, playerKey}, {FuncLook, look, seenKey}} {
		if err := r.Register(f.name, f.fn, netcode.FuncOptions{ShardKey: f.key}); err != nil {
			panic(err) // fixed names: a failure is a bug here
		}
	}
	return r
}

// The workload's shard keys: the path each function writes (move and
// shove their player, bump its counter, look its player's seen/ path).
func playerKey(_ uint32, args []byte) string {
	if len(args) < 2 {
		return ""
	}
	return PlayerPath(int(binary.LittleEndian.Uint16(args)))
}

func counterKey(_ uint32, args []byte) string {
	if len(args) != 1 {
		return ""
	}
	return CounterPath(int(args[0]))
}

func seenKey(_ uint32, args []byte) string {
	if len(args) < 2 {
		return ""
	}
	return SeenPath(int(binary.LittleEndian.Uint16(args)))
}

// Workload says how often each simulated player acts. Rates are per
// player per second of game time; each frame draws from the player's own
// seeded source, so the workload is part of what the seed reproduces.
type Workload struct {
	KeyChanges float64 // move calls (key state changes)
	Bumps      float64 // bump calls
	Shoves     float64 // shove calls on another player
	Looks      float64 // look calls at another player (seen/ is then watched and checked too)
	Counters   int     // counters bumped: counters/0 .. counters/Counters-1
	// WatchEvents adds a watch on "events/", so every client also
	// receives the others' bump events (checked for duplicates).
	WatchEvents bool
}

// DefaultWorkload is lean but contended: a few key changes per second per
// player, a bump a second on one of four counters, a shove every few
// seconds.
func DefaultWorkload() Workload {
	return Workload{KeyChanges: 3, Bumps: 1, Shoves: 0.3, Counters: 4}
}

func (w Workload) validate() error {
	for _, r := range []float64{w.KeyChanges, w.Bumps, w.Shoves, w.Looks} {
		if math.IsNaN(r) || r < 0 || r > 60 {
			return fmt.Errorf("%w: workload rate %v outside [0, 60] per second", ErrBadConfig, r)
		}
	}
	if w.Counters < 1 || w.Counters > 256 {
		return fmt.Errorf("%w: workload counters %d outside [1, 256]", ErrBadConfig, w.Counters)
	}
	return nil
}
