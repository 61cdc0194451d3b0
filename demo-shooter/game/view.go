package game

// PlayerIDs lists the ids of the players in v, ascending.
func PlayerIDs(v View) []uint32 {
	var ids []uint32
	for _, s := range v.Children(PlayersPrefix) {
		if id, ok := parseID(s); ok {
			ids = append(ids, id)
		}
	}
	// Children sorts as strings; ids sort as numbers.
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// PlayerAt decodes player id as of synced time t: each field is its
// latest value written strictly before t, and Pos is the exact position
// at t: the motion's plus the drift of every gravity field that takes the
// player (the records of all players read GravityDelay before t, as the
// game's functions read them). To see the own player's latest prediction
// at now, ask for now+1. ok is false when the player has no decodable
// motion by then; a field that is absent or does not decode is left zero.
func PlayerAt(v View, id uint32, t int64) (p Player, ok bool) {
	return playerAt(v, viewFields(v, PlayerIDs(v), t), id, t)
}

// playerAt is PlayerAt with the gravity fields already read.
func playerAt(v View, fs []field, id uint32, t int64) (p Player, ok bool) {
	b, ok := v.ReadAt(PlayerPath(id, FieldMotion), t)
	if !ok {
		return Player{}, false
	}
	m, err := DecodeMotion(b)
	if err != nil {
		return Player{}, false
	}
	p = Player{ID: id, Motion: m, Pos: newTrack(id, m, fs).pos(t)}
	if b, ok := v.ReadAt(PlayerPath(id, FieldName), t); ok {
		p.Name = string(b)
	}
	if b, ok := v.ReadAt(PlayerPath(id, FieldAim), t); ok {
		p.Aim = aimAngle(b)
	}
	if b, ok := v.ReadAt(PlayerPath(id, FieldLife), t); ok {
		p.Life, _ = decodeLife(b)
	}
	if b, ok := v.ReadAt(PlayerPath(id, FieldScore), t); ok {
		p.Score, _ = decodeScore(b)
	}
	if b, ok := v.ReadAt(PlayerPath(id, FieldShot), t); ok {
		p.Shot, _ = DecodeShot(b)
	}
	if b, ok := v.ReadAt(PlayerPath(id, FieldGravity), t); ok {
		if uses, err := decodeGravity(b); err == nil {
			p.Gravity = uses[0]
		}
	}
	return p, true
}

// Players decodes every player at t, by ascending id.
func Players(v View, t int64) []Player {
	ids := PlayerIDs(v)
	out := make([]Player, 0, len(ids))
	fs := viewFields(v, ids, t)
	for _, id := range ids {
		if p, ok := playerAt(v, fs, id, t); ok {
			out = append(out, p)
		}
	}
	return out
}
