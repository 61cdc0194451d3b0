package match

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/physics"
)

// What a Player keeps for the window's overlays and feeds.
const (
	// NoteFade is how long a correction or a shot stays on show.
	NoteFade = 4 * time.Second
	// maxNotes bounds the corrections, shots and kills kept.
	maxNotes = 32
	// pathSamples is how many points draw a trajectory.
	pathSamples = 16
	// pathSpan is the longest stretch of a trajectory drawn, back from
	// the time of the correction.
	pathSpan = 2 * time.Second
	// nearMiss is how close (px, centre to the shot's line) a player a shot
	// missed must have been at the view time for its rewound hitbox to be
	// drawn.
	nearMiss = 4 * game.PlayerRadius
)

// Note explains one correction of one of the player's calls, with where it
// happened for the overlay.
type Note struct {
	Wall time.Time // when it arrived
	T    int64     // synced time it arrived
	Path string    // the corrected path
	Call string    // the corrected call's function ("" when no longer known)
	id   netcode.CallID
	// Text says what changed and why, in a sentence for the HUD.
	Text string
	// Moved is how far the own player was moved (px), for a correction of
	// its motion; Motion reports whether it is one.
	Motion bool
	Moved  float64
	// Pred and Auth trace the predicted and the authority's motion over
	// the last pathSpan before T (motion corrections; gravity fields are
	// the same on both sides and left out).
	Pred, Auth []physics.Vec2
	// Shot reports a correction of a shot; PredShot and AuthShot are the
	// two versions.
	Shot               bool
	PredShot, AuthShot game.Shot
	// Cause, when the authority named one: the path whose value it read
	// differently, the player who wrote it, when, and, for a motion, where
	// that player was then (CauseAtOK).
	CauseKnown bool
	CauseText  string // "bot4's motion, 0.54 s before", for a label
	CausePath  string
	CauseBy    uint32
	CauseTime  int64
	CauseAt    physics.Vec2
	CauseAtOK  bool
}

// ShotNote is a shot as the overlay draws it: the shot and the hitbox
// that decided it, where the target was at the shooter's view time (the
// rewound position the authority casts the ray against), next to where it
// was at the shot's own time W.
type ShotNote struct {
	Wall time.Time
	Shot game.Shot
	// Target is the player the hitbox is drawn for: the one hit, or, for a
	// miss, the player nearest the shot's line at the view time (0: none
	// near).
	Target  uint32
	Hit     bool
	Rewound physics.Vec2 // the target at Shot.ViewTime
	AtW     physics.Vec2 // the target at Shot.Time
}

// Kill is a shot that killed, for the kill feed.
type Kill struct {
	Wall            time.Time
	Shooter, Target uint32
}

// notes keeps the recent corrections, shots and kills, each bounded.
type notes struct {
	corr  []Note
	shots []ShotNote
	kills []Kill
}

func keep[T any](s []T, v T) []T {
	if len(s) >= maxNotes {
		s = append(s[:0], s[len(s)-maxNotes+1:]...)
	}
	return append(s, v)
}

// Notes returns the corrections of the last NoteFade before now, oldest
// first.
func (p *Player) Notes(now time.Time) []Note {
	return recent(p.notes.corr, now, func(n Note) time.Time { return n.Wall })
}

// ShotNotes returns the shots of the last NoteFade before now, oldest
// first.
func (p *Player) ShotNotes(now time.Time) []ShotNote {
	return recent(p.notes.shots, now, func(n ShotNote) time.Time { return n.Wall })
}

// Kills returns the recent kills, oldest first (at most maxNotes).
func (p *Player) Kills() []Kill { return p.notes.kills }

func recent[T any](s []T, now time.Time, at func(T) time.Time) []T {
	i := 0
	for i < len(s) && now.Sub(at(s[i])) > NoteFade {
		i++
	}
	return s[i:]
}

// NameOf returns player id's name as the client knows it, or its id.
func (p *Player) NameOf(id uint32) string { return nameIn(p.view, id) }

// Who names player id for a sentence: "you" for this player.
func (p *Player) Who(id uint32) string { return seer{p.view, p.Me()}.who(id) }

func nameIn(v game.View, id uint32) string {
	if b, ok := v.Read(game.PlayerPath(id, game.FieldName)); ok && len(b) > 0 {
		return string(b)
	}
	return "player " + strconv.FormatUint(uint64(id), 10)
}

// seer is what an explanation reads: a view and whose it is.
type seer struct {
	v  game.View
	me uint32
}

// who names a player for a sentence: "you" for the own player.
func (s seer) who(id uint32) string {
	if id == s.me {
		return "you"
	}
	return nameIn(s.v, id)
}

// pathPlayer splits players/<id>/<field>.
func pathPlayer(path string) (id uint32, field string, ok bool) {
	rest, found := strings.CutPrefix(path, game.PlayersPrefix)
	if !found {
		return 0, "", false
	}
	seg, field, found := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(seg, 10, 32)
	if !found || err != nil {
		return 0, "", false
	}
	return uint32(n), field, true
}

// explain turns a correction of a call (its function fn, "" unknown) into
// a Note at synced time now, naming players as p sees them.
func (p seer) explain(c *netcode.Correction, fn string, wall time.Time, now int64) Note {
	n := Note{Wall: wall, T: now, Path: c.Path, Call: fn, id: c.Call}
	id, field, isPlayer := pathPlayer(c.Path)
	call := fn
	if call == "" {
		// The call's result came first; what it wrote says what it was.
		call = "a call"
		if isPlayer && id == p.me {
			switch field {
			case game.FieldShot:
				call = game.FuncShoot
			case game.FieldGravity:
				call = game.FuncGravity
			}
		}
	}
	if isPlayer && field == game.FieldMotion {
		// Either side's trace, whichever decodes (one may be absent).
		if m, err := game.DecodeMotion(c.Predicted); err == nil {
			n.Pred = trace(m, now)
		}
		if m, err := game.DecodeMotion(c.Authoritative); err == nil {
			n.Auth = trace(m, now)
		}
	}
	var what string
	switch {
	case c.Authoritative == nil:
		what = fmt.Sprintf("%s: the authority did not write %s, the prediction did", call, c.Path)
	case c.Predicted == nil:
		what = fmt.Sprintf("%s: the authority wrote %s, the prediction did not", call, c.Path)
	case isPlayer && field == game.FieldMotion:
		pm, err1 := game.DecodeMotion(c.Predicted)
		am, err2 := game.DecodeMotion(c.Authoritative)
		if err1 != nil || err2 != nil {
			what = fmt.Sprintf("%s: %s differs", call, c.Path)
			break
		}
		d := pm.Pos(now).Sub(am.Pos(now)).Len()
		n.Motion, n.Moved = id == p.me, d
		switch {
		case id != p.me && am.Dead != pm.Dead:
			what = fmt.Sprintf("%s: %s %s at the authority", call, p.who(id), map[bool]string{true: "died", false: "did not die"}[am.Dead])
		case d == 0:
			what = fmt.Sprintf("%s: %s motion differs, not the position now", call, possessive(p.who(id)))
		default:
			what = fmt.Sprintf("%s moved %s %.1f px", call, p.who(id), d)
		}
	case isPlayer && field == game.FieldShot:
		ps, err1 := game.DecodeShot(c.Predicted)
		as, err2 := game.DecodeShot(c.Authoritative)
		if err1 != nil || err2 != nil {
			what = fmt.Sprintf("%s: %s differs", call, c.Path)
			break
		}
		n.Shot, n.PredShot, n.AuthShot = true, ps, as
		if ps.Target == as.Target && ps.Killed == as.Killed {
			what = fmt.Sprintf("%s: %s in the prediction and at the authority, %.1f px apart", call, p.shotOutcome(ps), ps.End.Sub(as.End).Len())
			break
		}
		what = fmt.Sprintf("%s: predicted %s, the authority %s", call, p.shotOutcome(ps), p.shotOutcome(as))
	case isPlayer && field == game.FieldLife:
		pl, _ := game.DecodeLife(c.Predicted)
		al, _ := game.DecodeLife(c.Authoritative)
		what = fmt.Sprintf("%s: %s health predicted %d, the authority %d", call, possessive(p.who(id)), pl.Health, al.Health)
	case isPlayer:
		what = fmt.Sprintf("%s: %s %s differs", call, possessive(p.who(id)), field)
	default:
		what = fmt.Sprintf("%s: %s differs", call, c.Path)
	}
	n.Text = what
	if c.CauseKnown {
		n.CauseKnown, n.CausePath, n.CauseBy, n.CauseTime = true, c.CausePath, c.Cause.Creator, c.Cause.Nanos
		cause := c.CausePath
		if cid, cfield, ok := pathPlayer(c.CausePath); ok {
			cause = possessive(p.who(cid)) + " " + cfield
			if cfield == game.FieldMotion {
				if pl, ok := game.PlayerAt(p.v, cid, c.Cause.Nanos+1); ok {
					n.CauseAt, n.CauseAtOK = pl.Pos, true
				}
			}
		}
		n.Text += fmt.Sprintf(", because %s written by %s %.2f s ago was not what the prediction read",
			cause, p.who(c.Cause.Creator), secs(now-c.Cause.Nanos))
		n.CauseText = fmt.Sprintf("%s, written %.2f s ago", cause, secs(now-c.Cause.Nanos))
	} else {
		n.Text += " (no cause named)"
	}
	return n
}

// Failed rewrites the note of a correction whose call then failed at the
// authority (fn, err): the authority kept nothing of it, which is the
// whole correction.
func (n *Note) Failed(fn string, err error) {
	n.Text = fmt.Sprintf("%s failed at the authority (%v), so what its prediction wrote was taken back", fn, err)
	n.CauseKnown, n.CauseAtOK, n.CauseText = false, false, ""
}

// failed rewrites, with Note.Failed, every kept note of call id, whose
// result (a failure) may arrive in the frame of its correction or later.
func (ns *notes) failed(id netcode.CallID, fn string, err error) {
	for i := range ns.corr {
		if ns.corr[i].id == id {
			ns.corr[i].Failed(fn, err)
		}
	}
}

func (p seer) shotOutcome(s game.Shot) string {
	switch {
	case s.Target == 0:
		return "a miss"
	case s.Killed:
		return "a kill of " + p.who(s.Target)
	}
	return "a hit on " + p.who(s.Target)
}

func possessive(who string) string {
	if who == "you" {
		return "your"
	}
	return who + "'s"
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

// trace samples m's positions over the last pathSpan before now (from m's
// start at the earliest).
func trace(m game.Motion, now int64) []physics.Vec2 {
	from := max(m.T, now-int64(pathSpan))
	out := make([]physics.Vec2, 0, pathSamples)
	for i := range pathSamples {
		t := from + (now-from)*int64(i)/(pathSamples-1)
		out = append(out, m.Pos(t))
	}
	return out
}

// noteShot files a shot seen in an emitted event, with the hitbox that
// decided it, and a kill.
func (p *Player) noteShot(s game.Shot, wall time.Time) {
	if s.Killed {
		p.notes.kills = keep(p.notes.kills, Kill{Wall: wall, Shooter: s.Shooter, Target: s.Target})
	}
	p.notes.shots = keep(p.notes.shots, shotNote(p.view, s, wall))
}

// shotNote finds the hitbox that decided s in v.
func shotNote(v game.View, s game.Shot, wall time.Time) ShotNote {
	n := ShotNote{Wall: wall, Shot: s, Target: s.Target, Hit: s.Target != 0}
	if n.Target == 0 {
		// A miss: the player nearest the line, as the shooter saw it.
		best := nearMiss
		for _, pl := range game.Players(v, s.ViewTime) {
			if pl.ID == s.Shooter || !pl.Life.Alive() {
				continue
			}
			if d := segmentDist(pl.Pos, s.Origin, s.End); d < best {
				best, n.Target = d, pl.ID
			}
		}
	}
	if n.Target != 0 {
		if pl, ok := game.PlayerAt(v, n.Target, s.ViewTime); ok {
			n.Rewound = pl.Pos
			n.AtW = pl.Pos
			if pl, ok := game.PlayerAt(v, n.Target, s.Time); ok {
				n.AtW = pl.Pos
			}
		} else {
			n.Target = 0
		}
	}
	return n
}

// segmentDist is the distance from q to the segment a–b.
func segmentDist(q, a, b physics.Vec2) float64 {
	ab := b.Sub(a)
	l := ab.X*ab.X + ab.Y*ab.Y
	if l == 0 {
		return q.Sub(a).Len()
	}
	t := ((q.X-a.X)*ab.X + (q.Y-a.Y)*ab.Y) / l
	t = min(max(t, 0), 1)
	return q.Sub(a.Add(ab.Scale(t))).Len()
}

// confirmedView is the client's view without its predictions: the
// authority's confirmed values only, for the ghost.
type confirmedView struct{ v *clientView }

func (c confirmedView) Read(path string) ([]byte, bool) {
	h := c.v.c.History(path)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Flags&netcode.FlagEvent == 0 {
			if h[i].Value == nil {
				return nil, false
			}
			return h[i].Value, true
		}
	}
	return nil, false
}

func (c confirmedView) ReadAt(path string, t int64) ([]byte, bool) {
	h := c.v.c.History(path)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Time.Nanos < t && h[i].Flags&netcode.FlagEvent == 0 {
			if h[i].Value == nil {
				return nil, false
			}
			return h[i].Value, true
		}
	}
	return nil, false
}

func (c confirmedView) Children(prefix string) []string { return c.v.Children(prefix) }
