package game

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

// Registry returns a registry holding the game's functions (FuncJoin ...
// FuncRespawn), each keeping the client's write time. Link the same
// registry into the client and the authority. Key changes are movement,
// which others see played out: after a failover in a cluster, those
// older than the change window are refused rather than run back in time
// (netcode.FuncOptions.NoLateFailover), so they cannot take back the hits
// others scored on the player where they saw it.
func Registry() *netcode.Registry {
	r := netcode.NewRegistry()
	for _, f := range []struct {
		name string
		fn   netcode.Func
		opts netcode.FuncOptions
	}{
		{FuncJoin, join, netcode.FuncOptions{}}, {FuncSetKeys, setKeys, netcode.FuncOptions{NoLateFailover: true}},
		{FuncAim, aim, netcode.FuncOptions{}}, {FuncShoot, shoot, netcode.FuncOptions{}},
		{FuncGravity, gravity, netcode.FuncOptions{}}, {FuncRespawn, respawn, netcode.FuncOptions{}},
	} {
		if err := r.Register(f.name, f.fn, f.opts); err != nil {
			panic(err) // fixed names: a failure is a bug here
		}
	}
	// The players are a spatial layer, placed by their motion (its
	// position at its start), so clients can watch the players in an area
	// (netcode's WatchArea).
	if err := r.Spatial(netcode.Layer{Prefix: PlayersPrefix, Field: FieldMotion, CellSize: 256, Pos: func(v []byte) (float64, float64, bool) {
		m, err := DecodeMotion(v)
		return float64(m.X) / MilliPx, float64(m.Y) / MilliPx, err == nil
	}}); err != nil {
		panic(err)
	}
	return r
}

// playerIDs lists the players, at most MaxPlayers of them (join keeps
// the arena at that size; a longer listing is cut). The listing is an
// unsafe read: every value that matters is then read.
func playerIDs(tx *netcode.Tx) []uint32 {
	var ids []uint32
	for _, s := range tx.Children(PlayersPrefix) {
		if id, ok := parseID(s); ok && len(ids) < MaxPlayers {
			ids = append(ids, id)
		}
	}
	return ids
}

// body is a player's motion as read by a call.
type body struct {
	id uint32
	m  Motion
}

// readMotion reads players/<id>/motion at W (past is false) or at the
// caller's view time (past is true).
func readMotion(tx *netcode.Tx, id uint32, past bool) (Motion, bool, error) {
	path := PlayerPath(id, FieldMotion)
	var b []byte
	var ok bool
	if past {
		b, ok = tx.ReadView(path)
	} else {
		b, ok = tx.Read(path)
	}
	if !ok {
		return Motion{}, false, nil
	}
	m, err := DecodeMotion(b)
	if err != nil {
		return Motion{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return m, true, nil
}

// others is what a call reads of the other players: their motions at
// the caller's view time and every player's gravity fields.
type others struct {
	fs []field
	bs []body // the other players' motions at the view time
}

// readOthers reads the motion of every other player at the caller's view
// time and the gravity record of every player (see readFields). With
// MaxPlayers players that is at most 2·MaxPlayers-1 read locks.
func readOthers(tx *netcode.Tx, me uint32) (others, error) {
	ids := playerIDs(tx)
	var o others
	for _, id := range ids {
		if id == me {
			continue
		}
		m, ok, err := readMotion(tx, id, true)
		if err != nil {
			return o, err
		}
		if ok {
			o.bs = append(o.bs, body{id, m})
		}
	}
	var err error
	o.fs, err = readFields(tx, ids)
	return o, err
}

// track returns player id's track for motion m under the fields read.
func (o others) track(id uint32, m Motion) track { return newTrack(id, m, o.fs) }

// self reads the caller's motion, failing unless it has joined and is
// alive.
func self(tx *netcode.Tx) (uint32, Motion, error) {
	me := tx.Caller()
	m, ok, err := readMotion(tx, me, false)
	switch {
	case err != nil:
		return me, m, err
	case !ok:
		return me, m, ErrNotJoined
	case m.Dead:
		return me, m, ErrDead
	}
	return me, m, nil
}

// obstacles builds a world of the walls and the other living players,
// as they move from t on (drifts included).
func (o others) obstacles(t int64) (*physics.World, error) {
	w, err := newWorld()
	if err != nil {
		return nil, err
	}
	for _, b := range o.bs {
		if err := addPlayer(w, o.track(b.id, b.m), t); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// spawnPoint picks a spawn point with tx.Rand(): the first, from a random
// start, that no living player of bs is within a diameter of. bs are the
// others as the caller saw them (read at its view time) and placed at the
// view time, so a client predicts the same point as the authority: where
// players are at W itself, a client cannot know yet.
func spawnPoint(tx *netcode.Tx, o others) (x, y int64) {
	now := tx.ViewTime()
	start := tx.Rand().IntN(len(spawns))
	for k := range spawns {
		p := spawns[(start+k)%len(spawns)]
		free := true
		for _, b := range o.bs {
			if !b.m.Dead && o.track(b.id, b.m).pos(now).Sub(p).Len() < 2*PlayerRadius+1 {
				free = false
				break
			}
		}
		if free || k == len(spawns)-1 {
			return int64(p.X) * MilliPx, int64(p.Y) * MilliPx
		}
	}
	panic("unreachable")
}

// join adds the caller's player at a free spawn point, or renames it when
// it already exists.
func join(tx *netcode.Tx, args []byte) error {
	name, err := decodeName(args)
	if err != nil {
		return err
	}
	me := tx.Caller()
	if _, ok, err := readMotion(tx, me, false); err != nil || ok {
		if err == nil {
			tx.Write(PlayerPath(me, FieldName), []byte(name))
		}
		return err
	}
	o, err := readOthers(tx, me)
	if err != nil {
		return err
	}
	if len(o.bs) >= MaxPlayers {
		return fmt.Errorf("%w (%d players)", ErrFull, MaxPlayers)
	}
	x, y := spawnPoint(tx, o)
	now := tx.Time().Nanos
	tx.Write(PlayerPath(me, FieldName), []byte(name))
	tx.Write(PlayerPath(me, FieldMotion), Motion{T: now, X: x, Y: y, Stop: Never}.Append(nil))
	tx.Write(PlayerPath(me, FieldLife), Life{Health: MaxHealth}.append(nil))
	tx.Write(PlayerPath(me, FieldScore), Score{}.append(nil))
	tx.Write(PlayerPath(me, FieldAim), AimArgs(0))
	return nil
}

// setKeys: the caller's keys changed at W. The new motion starts where
// the player is at W (its motion and the drifts so far), carries on the
// drifts under way, and its keys' velocity stops at the first contact
// with a wall or another player (moving as the caller saw them: read at
// its view time).
func setKeys(tx *netcode.Tx, args []byte) error {
	keys, err := decodeKeys(args)
	if err != nil {
		return err
	}
	me, m, err := self(tx)
	if err != nil {
		return err
	}
	now := tx.Time().Nanos
	// Other players as the caller saw them (at its view time): a player
	// collides with what it sees, which its client knows completely, so the
	// prediction of its own motion matches the authority's.
	o, err := readOthers(tx, me)
	if err != nil {
		return err
	}
	w, err := o.obstacles(now)
	if err != nil {
		return err
	}
	nm, err := settle(w, restart(o.track(me, m), now, keys))
	if err != nil {
		return err
	}
	tx.Write(PlayerPath(me, FieldMotion), nm.Append(nil))
	return nil
}

// restart returns the motion that starts at now from where k is then,
// with keys held and the drifts under way carried on (Stop is set by
// settle). Fields starting at or after now are evaluated for the new
// motion when it is read, so none is counted twice.
func restart(k track, now int64, keys Keys) Motion {
	x, y := k.at(now)
	nm := Motion{T: now, X: x, Y: y, Keys: keys, Stop: Never, Drifts: k.carry(now)}
	nm.VX, nm.VY = keys.Velocity()
	return nm
}

// aim stores the caller's aim angle, for others to draw.
func aim(tx *netcode.Tx, args []byte) error {
	a, err := decodeAngle(args)
	if err != nil {
		return err
	}
	me, _, err := self(tx)
	if err != nil {
		return err
	}
	tx.Write(PlayerPath(me, FieldAim), AimArgs(a))
	return nil
}

// shoot fires a hitscan shot from the caller's position at W along angle,
// against the other players where the caller saw them: their motions are
// read at the caller's view time (tx.ReadView, which the transaction
// clamps to W - MaxRewind) and the ray is cast at that time through the
// walls and them. A hit takes Damage from the target's health at W (a
// target dead by then takes none); a kill freezes the target, counts a
// kill and a death. The shot is stored as the caller's last shot and
// emitted at ShotEvents.
func shoot(tx *netcode.Tx, args []byte) error {
	angle, err := decodeAngle(args)
	if err != nil {
		return err
	}
	// A shooter fires if it is alive at W or was alive at its view time.
	// A player killed within its view delay still gets its shot off (a
	// trade): its client could not know yet, and predicted the shot as
	// fired. A player that respawned within its view delay fires too: its
	// client knows it is alive, though the view time still finds it dead.
	me := tx.Caller()
	m, ok, err := readMotion(tx, me, false)
	switch {
	case err != nil:
		return err
	case !ok:
		return ErrNotJoined
	}
	if m.Dead {
		mv, ok, err := readMotion(tx, me, true)
		switch {
		case err != nil:
			return err
		case !ok || mv.Dead:
			return ErrDead
		}
	}
	now := tx.Time().Nanos
	shotPath := PlayerPath(me, FieldShot)
	if b, ok := tx.Read(shotPath); ok {
		last, err := DecodeShot(b)
		if err != nil {
			return fmt.Errorf("%s: %w", shotPath, err)
		}
		if now-last.Time < int64(ShotCooldown) {
			return fmt.Errorf("%w: shot %v after the last", ErrCooldown, float64(now-last.Time)/1e9)
		}
	}
	vt := tx.ViewTime()
	o, err := readOthers(tx, me)
	if err != nil {
		return err
	}
	w, err := o.obstacles(vt)
	if err != nil {
		return err
	}
	origin := o.track(me, m).pos(now)
	dir := physics.V(math.Cos(angle), math.Sin(angle))
	s := Shot{Shooter: me, Time: now, ViewTime: vt, Origin: origin, End: origin.Add(dir.Scale(ShotRange))}
	hit, ok, err := w.Raycast(physics.Ray{Origin: origin, Dir: dir, MaxDist: ShotRange}, vt, physics.Filter{})
	if err != nil {
		return fmt.Errorf("%w: raycast: %w", ErrBadValue, err)
	}
	if ok {
		s.End = hit.Point
		if rest, found := strings.CutPrefix(hit.Path, PlayersPrefix); found {
			s.Target, _ = parseID(strings.TrimSuffix(rest, "/"+FieldMotion))
		}
	}
	if s.Target != 0 {
		if s.Killed, err = damage(tx, o, me, s.Target); err != nil {
			return err
		}
	}
	v := s.Append(nil)
	tx.Write(shotPath, v)
	tx.Write(PlayerPath(me, FieldAim), AimArgs(angle))
	tx.Emit(ShotEvents, v)
	return nil
}

// damage applies a hit by shooter on target at W and reports a kill.
func damage(tx *netcode.Tx, o others, shooter, target uint32) (bool, error) {
	lp := PlayerPath(target, FieldLife)
	b, ok := tx.Read(lp)
	if !ok {
		return false, nil
	}
	l, err := decodeLife(b)
	if err != nil || !l.Alive() {
		return false, err
	}
	now := tx.Time().Nanos
	l.Health = max(0, l.Health-Damage)
	if l.Alive() {
		tx.Write(lp, l.append(nil))
		return false, nil
	}
	l.DiedAt = now
	tx.Write(lp, l.append(nil))
	if tm, ok, err := readMotion(tx, target, false); err != nil {
		return false, err
	} else if ok {
		x, y := o.track(target, tm).at(now)
		tx.Write(PlayerPath(target, FieldMotion), Motion{T: now, X: x, Y: y, Dead: true, Stop: Never}.Append(nil))
	}
	if err := addScore(tx, shooter, 1, 0); err != nil {
		return false, err
	}
	return true, addScore(tx, target, 0, 1)
}

func addScore(tx *netcode.Tx, id uint32, kills, deaths uint32) error {
	p := PlayerPath(id, FieldScore)
	var s Score
	if b, ok := tx.Read(p); ok {
		var err error
		if s, err = decodeScore(b); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	s.Kills += kills
	s.Deaths += deaths
	tx.Write(p, s.append(nil))
	return nil
}

// gravity stores a use of the power in the caller's own gravity record:
// a field centred on the caller's position at W over
// [W + GravityDelay, W + GravityDelay + GravityDuration). It writes
// nothing else: the players it takes, and their drifts, follow from their
// own motions when positions are computed (newTrack), so a late key
// change of theirs never invalidates it. At most one use per
// GravityCooldown.
func gravity(tx *netcode.Tx, args []byte) error {
	pull, err := decodePull(args)
	if err != nil {
		return err
	}
	me, m, err := self(tx)
	if err != nil {
		return err
	}
	now := tx.Time().Nanos
	gp := PlayerPath(me, FieldGravity)
	var uses []Gravity
	if b, ok := tx.Read(gp); ok {
		if uses, err = decodeGravity(b); err != nil {
			return fmt.Errorf("%s: %w", gp, err)
		}
		if now-uses[0].Time < int64(GravityCooldown) {
			return fmt.Errorf("%w: gravity %vs after the last", ErrCooldown, float64(now-uses[0].Time)/1e9)
		}
	}
	fs, err := readFields(tx, playerIDs(tx))
	if err != nil {
		return err
	}
	g := Gravity{Pull: pull, Center: newTrack(me, m, fs).pos(now), Time: now, Start: now + int64(GravityDelay)}
	g.End = g.Start + int64(GravityDuration)
	tx.Write(gp, appendGravity(nil, append([]Gravity{g}, uses...)))
	return nil
}

// respawn brings the dead caller back at a free spawn point with full
// health, once RespawnDelay has passed since its death.
func respawn(tx *netcode.Tx, _ []byte) error {
	me := tx.Caller()
	lp := PlayerPath(me, FieldLife)
	b, ok := tx.Read(lp)
	if !ok {
		return ErrNotJoined
	}
	l, err := decodeLife(b)
	if err != nil {
		return fmt.Errorf("%s: %w", lp, err)
	}
	now := tx.Time().Nanos
	if l.Alive() {
		return ErrAlive
	}
	if now < l.RespawnAt() {
		return fmt.Errorf("%w: respawn in %vs", ErrCooldown, float64(l.RespawnAt()-now)/1e9)
	}
	o, err := readOthers(tx, me)
	if err != nil {
		return err
	}
	x, y := spawnPoint(tx, o)
	tx.Write(PlayerPath(me, FieldMotion), Motion{T: now, X: x, Y: y, Stop: Never}.Append(nil))
	l.Health = MaxHealth
	tx.Write(lp, l.append(nil))
	return nil
}

// aimAngle decodes a stored aim.
func aimAngle(b []byte) float64 {
	if len(b) != aimSize {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}
