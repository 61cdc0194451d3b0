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
//     position then (integer milli-px), the velocity from then on, the
//     time that velocity halts (its first contact with a wall or another
//     player, found with a swept circle when it was written), the gravity
//     drifts under way at T that it carries on, and whether the player is
//     dead. Only the player's own calls write it (and the shot that kills
//     it). The position at t is the motion's plus the drift of the gravity
//     fields that take the player (rule 3), exact integer arithmetic, so
//     the client and the authority agree bit for bit; PlayerAt computes it.
//   - aim: float64 radians; life: health and the time of the last death
//     (respawn allowed RespawnDelay later); score: kills and deaths;
//     shot: the last Shot (its time starts the shot cooldown); gravity:
//     the last three uses of the power, newest first, each a field (centre,
//     start, end, pull; the newest's time starts the cooldown).
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
//  3. gravity writes only the caller's own gravity record: a field centred
//     on the caller's position at W, active from GravityDelay after the
//     call (a wind-up that lets the news reach the others) for
//     GravityDuration. A field takes every other living player whose motion
//     started at or before the field's start and whose position then is
//     within GravityRadius of the centre: it drifts at GravitySpeed towards
//     (away from) the centre, from that position, over the field's interval
//     (a pull ends a player's diameter from the centre). Fields are taken in
//     (start, caster id) order, each from the position the earlier ones
//     give. A key change carries on the drifts under way (its new motion
//     starts where they put the player and holds their velocities until
//     they end); fields starting later are evaluated for the new motion.
//     Drift is not swept against walls or players; positions are held
//     inside the border walls. Because a use reads no other player's
//     motion, a victim's late key change never invalidates it. Records are
//     read GravityDelay before W, so a use within the last GravityDelay
//     (which cannot move anyone yet) never invalidates a call either. A
//     record keeps three uses: a motion left unchanged for more than three
//     cooldowns (24 s) loses the drift of a use older than that.
//  4. respawn, RespawnDelay after death, and join place the player at a
//     free spawn point chosen with tx.Rand() among those clear of the other
//     players as the caller saw them (at its view time), so prediction and
//     authority choose the same one.
//  5. Each shoot, setKeys, join or respawn reads one motion and one gravity
//     record per player (at most 2·MaxPlayers + 6 read locks); gravity
//     reads the records and its own motion. With MaxPlayers players that
//     stays within the default MaxLocks of 128.
//
// # Bots
//
// NewBot(seed).Think(view, me, now) returns the calls a bot makes this
// frame: it wanders, takes cover behind a wall when hurt and seen, aims at
// the nearest enemy in line of sight after a reaction time and with a
// normal aim error, shoots at its cooldown, and uses gravity now and then.
package game
