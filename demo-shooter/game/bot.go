package game

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/rewindnet/rewind/physics"
)

// Bot tuning.
const (
	botAimError     = 0.05                   // radians, standard deviation of a bot's aim
	botReactionMin  = 150 * time.Millisecond // from seeing a new target to the first shot
	botReactionMax  = 350 * time.Millisecond
	botShotJitter   = 250 * time.Millisecond // added at random to ShotCooldown between shots
	botGravityOdds  = 0.02                   // per frame with an enemy in reach and the power ready
	botDefaultDelay = 100 * time.Millisecond
	botArrive       = 8.0 // px from a goal that counts as there
)

// Bot plays one player: pure decision code. Its choices depend only on
// its seed and on what it is shown, so a seed reproduces a bot's game. A
// Bot is not safe for concurrent use.
type Bot struct {
	// ViewDelay is how far behind now the bot sees the others (its
	// client's view delay), so it aims where its shots are checked.
	// Zero: 100 ms.
	ViewDelay time.Duration

	rng         *rand.Rand
	keys        Keys
	keysSent    bool
	goal        physics.Vec2
	nextWander  int64
	target      uint32
	readyAt     int64 // first shot at the current target
	nextShot    int64
	nextGravity int64
	nextJoin    int64
	nextRespawn int64
}

// NewBot returns a bot whose choices are drawn from seed.
func NewBot(seed uint64) *Bot {
	return &Bot{rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// coverSpots are points just beside each interior wall, where a hurt bot
// hides from the enemy it sees.
var coverSpots = func() []physics.Vec2 {
	var out []physics.Vec2
	const gap = PlayerRadius + 6
	for _, w := range walls[4:] {
		mid := w.Min.Lerp(w.Max, 0.5)
		out = append(out,
			physics.V(w.Min.X-gap, mid.Y), physics.V(w.Max.X+gap, mid.Y),
			physics.V(mid.X, w.Min.Y-gap), physics.V(mid.X, w.Max.Y+gap))
	}
	return out
}()

// Think looks at the view at synced time now as player me and returns the
// calls to make this frame (none, one or a few): join when absent, respawn
// when dead and ready, setKeys to wander or take cover behind a wall when
// hurt, aim and shoot at the nearest visible enemy after a reaction time
// and with human-like error, gravity now and then. Call it once per frame.
func (b *Bot) Think(v View, me uint32, now int64) []Action {
	p, ok := PlayerAt(v, me, now+1)
	if !ok {
		if now < b.nextJoin {
			return nil
		}
		b.nextJoin = now + int64(time.Second)
		return []Action{{FuncJoin, JoinArgs("bot" + strconv.FormatUint(uint64(me), 10))}}
	}
	if p.Motion.Dead {
		b.keysSent, b.target = false, 0
		if now < p.Life.RespawnAt() || now < b.nextRespawn {
			return nil
		}
		b.nextRespawn = now + int64(300*time.Millisecond)
		return []Action{{FuncRespawn, nil}}
	}
	delay := b.ViewDelay
	if delay <= 0 {
		delay = botDefaultDelay
	}
	var (
		tgt   Player
		found bool
		best  = math.Inf(1)
	)
	ids := PlayerIDs(v)
	fs := viewFields(v, ids, now-int64(delay)) // read once for every enemy
	for _, id := range ids {
		if id == me {
			continue
		}
		e, ok := playerAt(v, fs, id, now-int64(delay))
		if !ok || e.Motion.Dead || Blocked(p.Pos, e.Pos) {
			continue
		}
		if d := e.Pos.Sub(p.Pos).Len(); d < best {
			tgt, found, best = e, true, d
		}
	}
	var acts []Action

	// Move: to cover when hurt and seen, else wander between random goals.
	switch {
	case found && p.Life.Health <= MaxHealth/2:
		b.goal = b.cover(p.Pos, tgt.Pos)
		b.nextWander = now + int64(time.Second)
	case now >= b.nextWander || p.Pos.Sub(b.goal).Len() < botArrive || p.Motion.Stop <= now && b.keys != 0:
		b.goal = physics.V(40+b.rng.Float64()*(ArenaWidth-80), 40+b.rng.Float64()*(ArenaHeight-80))
		b.nextWander = now + int64(time.Second) + b.rng.Int64N(int64(2*time.Second))
	}
	if k := keysToward(p.Pos, b.goal); k != b.keys || !b.keysSent {
		b.keys, b.keysSent = k, true
		acts = append(acts, Action{FuncSetKeys, SetKeysArgs(k)})
	}

	// Aim and shoot at the nearest visible enemy.
	if !found {
		b.target = 0
		return acts
	}
	if tgt.ID != b.target {
		b.target = tgt.ID
		b.readyAt = now + int64(botReactionMin) + b.rng.Int64N(int64(botReactionMax-botReactionMin))
		acts = append(acts, Action{FuncAim, AimArgs(angleTo(p.Pos, tgt.Pos))})
	}
	if now >= b.readyAt && now >= b.nextShot && now-p.Shot.Time >= int64(ShotCooldown) {
		a := angleTo(p.Pos, tgt.Pos) + b.rng.NormFloat64()*botAimError
		acts = append(acts, Action{FuncShoot, ShootArgs(a)})
		b.nextShot = now + int64(ShotCooldown) + b.rng.Int64N(int64(botShotJitter))
	}
	if best <= GravityRadius && now >= b.nextGravity && (p.Gravity.Time == 0 || now-p.Gravity.Time >= int64(GravityCooldown)) && b.rng.Float64() < botGravityOdds {
		acts = append(acts, Action{FuncGravity, GravityArgs(b.rng.IntN(2) == 0)})
		b.nextGravity = now + int64(GravityCooldown) + b.rng.Int64N(int64(6*time.Second))
	}
	return acts
}

// cover returns the nearest cover spot hidden from the enemy at e, or the
// point straight away from it when none is.
func (b *Bot) cover(me, e physics.Vec2) physics.Vec2 {
	best, bestD := me.Add(me.Sub(e).Unit().Scale(100)), math.Inf(1)
	for _, s := range coverSpots {
		if !Blocked(s, e) {
			continue
		}
		if d := s.Sub(me).Len(); d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

func angleTo(a, b physics.Vec2) float64 { return math.Atan2(b.Y-a.Y, b.X-a.X) }

// keysToward returns the keys that move from p towards goal.
func keysToward(p, goal physics.Vec2) Keys {
	var k Keys
	d := goal.Sub(p)
	switch {
	case d.X > botArrive:
		k |= KeyRight
	case d.X < -botArrive:
		k |= KeyLeft
	}
	switch {
	case d.Y > botArrive:
		k |= KeyDown
	case d.Y < -botArrive:
		k |= KeyUp
	}
	return k
}
