// Package game holds the rules of the demo shooter: its state as path
// values, the functions the client predicts and the authority runs, the
// helpers a program needs to draw the game, and bots. It is pure: no
// clock, goroutine or global random source; time is the call's write
// time, randomness tx.Rand() or a Bot's seed.
//
// # Using it
//
//	reg := game.Registry()                       // link into client and authority
//	c.Watch(game.PlayersPrefix); c.Watch("events/")
//	c.Call(game.FuncJoin, game.JoinArgs("ann"))
//	each frame:
//		c.Call(game.FuncSetKeys, game.SetKeysArgs(keys))   // when the keys change
//		c.Call(game.FuncShoot, game.ShootArgs(angle))      // on click
//		me, _ := game.PlayerAt(view, id, now+1)            // own player, predicted
//		them := game.Players(view, now-viewDelay)          // others, as the shots see them
//		for _, w := range game.Walls() { draw(w) }
//
// # State
//
// A player's id is the Creator id of the connection that joined. Under
// players/<id>/:
//
//   - name: UTF-8, at most MaxNameLen bytes.
//   - motion: a Motion: the keys held, the time T they changed and the
//     position then (integer milli-px), the velocity from then on, a
//     gravity drift interval and velocity, the time the motion halts (its
//     first contact with a wall or another player, found with a swept
//     circle when it was written) and whether the player is dead. The
//     position at any t is Motion.At(t), exact integer arithmetic, so the
//     client and the authority agree bit for bit.
//   - aim: float64 radians; life: health and the time of the last death
//     (respawn allowed RespawnDelay later); score: kills and deaths;
//     shot: the last Shot (its time starts the shot cooldown); gravity:
//     the last use of the power (its time starts the cooldown).
//
// Every shot is also emitted at ShotEvents (shooter, origin, end point,
// target or 0, kill, write and view time). The walls are a fixed layout in
// code (Walls), identical everywhere.
//
// # Rules
//
//  1. setKeys writes a new motion from the position the old one gives at
//     W; it halts at the first contact with a wall or another player as
//     the caller saw that player (its motion read at the caller's view
//     time: a player collides with what it sees, which its client knows,
//     so it predicts its own motion as the authority computes it); a later
//     change of theirs does not move it again until its own next key
//     change. Moving into a touched wall
//     slides along it.
//  2. shoot is hitscan from the shooter's position at W; the other
//     players are read at the shooter's view time (tx.ReadView: W minus
//     the call's view delay, clamped by the transaction to W - MaxRewind,
//     the max rewind) and the ray is cast through them and the walls in a
//     physics World at that time. Damage applies to the target's health at
//     W. Dead players cannot move, aim, shoot or use gravity, and cannot
//     be hit; one shot per ShotCooldown. A shooter fires when it is alive
//     at W or was alive at its view time: a player killed within its view
//     delay still gets its shot off (a trade), because its client could
//     not know yet and its shot was predicted as fired; a player respawned
//     within it fires too, as its client knows it is alive.
//  3. gravity gives every other living player within GravityRadius a drift
//     towards (or away from) the caller, starting GravityDelay after the
//     call (a wind-up that lets the news reach them) for GravityDuration,
//     written into their motions so positions stay exactly computable. A
//     player whose drift has not ended yet is left alone: replacing the
//     drift would move it from W on, before its client can know.
//  4. respawn, RespawnDelay after death, and join place the player at a
//     free spawn point chosen with tx.Rand() among those clear of the other
//     players as the caller saw them (at its view time), so prediction and
//     authority choose the same one.
//  5. Each shoot, setKeys or gravity reads one motion per player; with
//     MaxPlayers players that stays within the default MaxLocks.
//
// # Bots
//
// NewBot(seed).Think(view, me, now) returns the calls a bot makes this
// frame: it wanders, takes cover behind a wall when hurt and seen, aims at
// the nearest enemy in line of sight after a reaction time and with a
// normal aim error, shoots at its cooldown, and uses gravity now and then.
package game
