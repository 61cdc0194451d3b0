// Package match runs the demo shooter's clients: a Player is one
// netcode.Client with what the demo shows and measures about it (the HUD's
// counters, the quality recorder), driven by a bot or by the window's
// input; Run plays a headless match of bots against an authority in its
// own process and summarises it as a quality.Profile.
//
// Everything here is a shell around netcode.Client: it owns no game rule
// (those are package game's) and draws nothing (that is package main's).
package match

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/quality"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/physics"
)

// Player bounds and defaults.
const (
	// SmoothTau is the time constant that hides correction snaps of the
	// own player.
	SmoothTau = 100 * time.Millisecond
	// trackCalls bounds the calls a Player remembers awaiting their
	// result; the client's own MaxPending (256) is lower, so the bound is
	// only reached if results are lost, and then the oldest are forgotten.
	trackCalls = 1024
	// hitMemory is how long a confirmed hit is remembered for a late
	// re-run by the authority that takes it back.
	hitMemory = 5 * time.Second
	// snapMin is the smallest jump of the own player (px) handed to the
	// smoother: below it nothing visible moves.
	snapMin = 0.05
)

// callInfo is what a Player remembers of a call until its result.
type callInfo struct {
	name  string
	at    time.Time // wall clock at Call
	hit   uint32    // the target the prediction hit (shoot), 0: none
	epoch uint64    // the recorder's epoch at Call: only calls of the current one count
	cross bool      // crosses a region boundary (a sharded match): recorded in CrossRec too
	route int8      // a sharded match: 1 run on the client's node, 2 relayed to another, 0 unknown
}

// confirmedHit is a hit the authority confirmed, kept for hitMemory.
type confirmedHit struct {
	target uint32
	at     time.Time
	cross  bool
}

// Player is one client of the match and what the demo measures about it.
// The goroutine that calls Frame owns it.
type Player struct {
	C    *netcode.Client
	Name string
	// Bot plays this player; nil for a human at the window.
	Bot *game.Bot
	// Idle stops the bot from acting (its frames only update): a headless
	// match sets it after the measured span, while the answers to the
	// span's calls arrive.
	Idle bool
	// Rec records the report's observations; Reset it to start measuring.
	Rec quality.Recorder
	// Smooth holds the own player's correction offset (key "me").
	Smooth *netcode.Smoother
	// LastCorrection explains the latest correction ("why did I snap").
	LastCorrection string
	// KilledBy is the player whose shot last killed this one (0: none
	// yet), as the shot events told.
	KilledBy uint32
	// Graph is the HUD's recent RTT and corrections.
	Graph Graph
	// Link follows the connection: silence, loss, reconnection.
	Link Link
	// Errors counts calls the client refused (not connected, too many
	// pending); LastError is the latest of them or of a failed call.
	Errors    uint64
	LastError string
	// Trace, if set, tags every call and keeps its latest result (a
	// cluster match's check of lost and duplicate calls): the authority
	// must then run TracedRegistry.
	Trace *Trace
	// Confirmed is the wall time of the last frame that brought a
	// successful result, ConfirmedAddr the authority the client was
	// connected to then.
	Confirmed     time.Time
	ConfirmedAddr string
	// Regions, if above zero, cuts the arena into that many regions (a
	// sharded match): every call carries its region (RegionRegistry),
	// the authorities must run RegionRegistry. CrossRec records, besides
	// Rec, what crosses a region boundary: shots at a target in another
	// region, and own-motion writes within crossWindow of moving to
	// another region; RegionMoves counts those moves (reset with the
	// recorder).
	Regions     int
	CrossRec    quality.Recorder
	RegionMoves uint64
	// Relayed, if set, says whether a call of region made through the
	// authority at addr runs on another node (ok false: not known, a
	// range move under way). LocalLat and RelayedLat hold the confirmed
	// calls' latency minus RTT (ms) of each kind (reset with the
	// recorder).
	Relayed              func(region int, addr string) (relayed, ok bool)
	LocalLat, RelayedLat quality.Samples

	region    int       // the region of the last call, -1 before the first
	crossedAt time.Time // when the calls' region last changed

	view    *clientView
	notes   notes
	mispred uint64 // Stats.Mispredictions at the last frame
	epoch   uint64 // bumped by ResetRecorder
	calls   map[netcode.CallID]callInfo
	hits    map[netcode.CallID]confirmedHit
	shots   []game.Shot // recent shots seen (emitted events)
}

// NewPlayer wraps a connected client. It watches the players in the
// arena (a spatial watch, with the history interpolation needs) and the
// shot events.
func NewPlayer(c *netcode.Client, name string, bot *game.Bot) (*Player, error) {
	p := &Player{
		C: c, Name: name, Bot: bot,
		Smooth: netcode.NewSmoother(SmoothTau),
		view:   newClientView(c),
		calls:  make(map[netcode.CallID]callInfo),
		hits:   make(map[netcode.CallID]confirmedHit),
		region: -1,
	}
	// The players in the arena, with the history interpolation needs. The
	// watch is spatial (the players inside an area): the arena is one
	// screen, so the area is the whole arena; a larger world would watch
	// the players near its own (WatchNear).
	arena := wire.Area{Kind: wire.AreaRegion, X1: game.ArenaWidth, Y1: game.ArenaHeight}
	if err := c.WatchArea(game.PlayersPrefix, arena, time.Second); err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	if err := c.Watch(game.ShotEvents); err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	return p, nil
}

// ResetRecorder starts measuring afresh: the recorder is emptied and the
// calls and hits made before are no longer counted when their results
// arrive, so every counted outcome belongs to a counted call.
func (p *Player) ResetRecorder() {
	p.Rec = quality.Recorder{}
	p.CrossRec = quality.Recorder{}
	p.RegionMoves = 0
	p.LocalLat, p.RelayedLat = quality.Samples{}, quality.Samples{}
	p.epoch++
	clear(p.hits)
}

// Awaiting returns how many of the player's calls have no result yet.
func (p *Player) Awaiting() int { return len(p.calls) }

// View returns the game's view of the client.
func (p *Player) View() game.View { return p.view }

// Me returns the player's id (its client's Creator).
func (p *Player) Me() uint32 { return p.C.Creator() }

// Call makes a call and remembers it for the report.
func (p *Player) Call(a game.Action) error {
	before := p.C.Now()
	args := a.Args
	var seq uint32
	if p.Trace != nil {
		var err error
		if seq, err = p.Trace.next(); err != nil {
			p.Errors++
			p.LastError = fmt.Sprintf("%s: %v", a.Name, err)
			return err
		}
		args = traceArgs(args, p.Trace.Bot, seq)
	}
	region := 0
	if p.Regions > 0 {
		region = max(p.region, 0)
		if pos, ok := p.ownPos(before); ok {
			region = Region(pos.X, p.Regions)
		}
		if p.region >= 0 && region != p.region {
			p.RegionMoves++
			p.crossedAt = time.Now()
		}
		p.region = region
		args = append(slices.Clip(args), byte(region))
	}
	id, err := p.C.Call(a.Name, args)
	if err != nil {
		p.Errors++
		p.LastError = fmt.Sprintf("%s: %v", a.Name, err)
		return err
	}
	if p.Trace != nil {
		p.Trace.made(id, seq)
	}
	info := callInfo{name: a.Name, at: time.Now(), epoch: p.epoch}
	if p.Regions > 0 && p.Relayed != nil {
		if relayed, ok := p.Relayed(region, p.C.Stats().Addr); ok {
			info.route = 1
			if relayed {
				info.route = 2
			}
		}
	}
	if a.Name == game.FuncShoot {
		if b, ok := p.C.Read(game.PlayerPath(p.Me(), game.FieldShot)); ok {
			// A failed prediction leaves the previous shot there: only a
			// shot stamped by this call (W >= the time before it) counts.
			if s, err := game.DecodeShot(b); err == nil && s.Target != 0 && s.Shooter == p.Me() && s.Time >= before {
				info.hit = s.Target
				p.Rec.HitsSeen++
				if p.Regions > 0 {
					if t, ok := game.PlayerAt(p.view, s.Target, s.Time); ok && Region(t.Pos.X, p.Regions) != region {
						info.cross = true
						p.CrossRec.HitsSeen++
					}
				}
			}
		}
	} else if p.Regions > 0 && game.WritesMotion(a.Name) && !p.crossedAt.IsZero() && time.Since(p.crossedAt) < crossWindow {
		info.cross = true
	}
	if len(p.calls) >= trackCalls {
		p.forgetOldestCall()
	}
	p.calls[id] = info
	return nil
}

func (p *Player) forgetOldestCall() {
	var oldest netcode.CallID
	var at time.Time
	first := true
	for id, c := range p.calls {
		if first || c.at.Before(at) {
			oldest, at, first = id, c.at, false
		}
	}
	delete(p.calls, oldest)
}

// Frame runs one frame: Update, the bookkeeping of its events, then, for
// a bot, its decisions. It returns the events for the caller (the window
// draws some of them).
func (p *Player) Frame(wall time.Time) []netcode.Event {
	now := p.C.Now()
	before, hadBefore := p.ownPos(now)
	evs := p.C.Update()
	p.view.observe(evs)
	me := p.Me()
	motion := game.PlayerPath(me, game.FieldMotion)
	shotPath := game.PlayerPath(me, game.FieldShot)

	// Corrections first: a result's correction comes in the same Update.
	corrected := map[netcode.CallID]*netcode.Correction{}
	ncorr := 0
	for _, ev := range evs {
		switch ev.Kind {
		case netcode.EventCorrection:
			c := ev.Correction
			if c == nil {
				continue
			}
			ncorr++
			info, known := p.calls[c.Call]
			p.notes.corr = keep(p.notes.corr, seer{p.view, me}.explain(c, info.name, wall, now))
			counted := !known || info.epoch == p.epoch
			if d, ok := game.MotionDistance(c.Predicted, c.Authoritative, now); ok && c.Path == motion && counted {
				p.Rec.Correction.Add(d)
				if d > 0 {
					p.Rec.Corrected.Add(d)
				}
				if known && info.cross {
					p.CrossRec.Correction.Add(d)
					if d > 0 {
						p.CrossRec.Corrected.Add(d)
					}
				}
			}
			if c.Path == shotPath {
				corrected[c.Call] = c
				p.retractHit(c)
			}
		case netcode.EventEmitted:
			if ev.Path == game.ShotEvents {
				if s, err := game.DecodeShot(ev.Value); err == nil {
					p.addShot(s)
					p.noteShot(s, wall)
					if s.Killed && s.Target == me {
						p.KilledBy = s.Shooter
					}
				}
			}
		}
	}
	confirmed := false
	for _, ev := range evs {
		if ev.Kind != netcode.EventResult {
			continue
		}
		if p.Trace != nil {
			p.Trace.result(ev.Call, ev.Err)
		}
		confirmed = confirmed || ev.Err == nil
		info, ok := p.calls[ev.Call]
		if !ok {
			continue
		}
		delete(p.calls, ev.Call)
		if ev.Err != nil {
			p.LastError = fmt.Sprintf("%s: %v", info.name, ev.Err)
			// Its corrections, in this frame or before, were all the
			// failure.
			p.notes.failed(ev.Call, info.name, ev.Err)
		}
		if info.epoch != p.epoch {
			continue // made before the recorder was reset: not counted
		}
		if ev.Err != nil {
			p.Rec.Fail(FailReason(ev.Err))
			if info.hit != 0 {
				p.lostHit(&p.Rec, ev.Err)
				if info.cross {
					p.lostHit(&p.CrossRec, ev.Err)
				}
			}
			continue
		}
		rtt := p.C.Stats().RTT
		lat := float64(wall.Sub(info.at)-rtt) / float64(time.Millisecond)
		p.Rec.ConfirmMinusRTT.Add(lat)
		switch info.route {
		case 1:
			p.LocalLat.Add(lat)
		case 2:
			p.RelayedLat.Add(lat)
		}
		if game.WritesMotion(info.name) {
			if !p.correctedMotion(evs, ev.Call, motion) {
				p.Rec.Correction.Add(0)
				if info.cross {
					p.CrossRec.Correction.Add(0)
				}
			}
		}
		if info.hit != 0 {
			target := info.hit
			if c := corrected[ev.Call]; c != nil {
				target = 0
				if s, err := game.DecodeShot(c.Authoritative); err == nil {
					target = s.Target
				}
			}
			if target == info.hit {
				p.Rec.HitsConfirmed++
				if info.cross {
					p.CrossRec.HitsConfirmed++
				}
				p.hits[ev.Call] = confirmedHit{target: target, at: wall, cross: info.cross}
			} else {
				p.Rec.HitsMissed++
				if info.cross {
					p.CrossRec.HitsMissed++
				}
			}
		}
	}
	if n := len(p.notes.corr); n > 0 {
		p.LastCorrection = p.notes.corr[n-1].Text
	}
	for id, h := range p.hits {
		if wall.Sub(h.at) > hitMemory {
			delete(p.hits, id)
		}
	}

	// Hide the snap: the own player jumped between the two views.
	if after, ok := p.ownPos(now); ok && hadBefore {
		if dist(before, after) > snapMin {
			p.Smooth.Correct("me", []float64{before.X, before.Y}, []float64{after.X, after.Y})
		}
	}
	st := p.C.Stats()
	if confirmed {
		p.Confirmed, p.ConfirmedAddr = wall, st.Addr
	}
	mis := int(st.Mispredictions - min(p.mispred, st.Mispredictions))
	p.mispred = st.Mispredictions
	p.Graph.Add(wall, st.RTT, st.Offset, ncorr, mis)
	p.Link.Observe(wall, evs, st)

	if p.Bot != nil && !p.Idle && p.C.Connected() {
		p.Bot.ViewDelay = p.C.ViewDelay()
		for _, a := range p.Bot.Think(p.view, me, p.C.Now()) {
			p.Call(a)
		}
	}
	return evs
}

// correctedMotion reports whether evs hold a correction of the own motion
// by call id.
func (p *Player) correctedMotion(evs []netcode.Event, id netcode.CallID, motion string) bool {
	for _, ev := range evs {
		if ev.Kind == netcode.EventCorrection && ev.Correction != nil && ev.Correction.Call == id && ev.Correction.Path == motion {
			return true
		}
	}
	return false
}

// lostHit files a seen hit whose call failed under its reason in rec.
func (p *Player) lostHit(rec *quality.Recorder, err error) {
	switch FailReason(err) {
	case quality.FailDead:
		rec.HitsShooterDead++
	case quality.FailLate:
		rec.HitsLate++
	default:
		rec.HitsFailedOther++
	}
}

// FailReason sorts a failed call's error into one of the quality.Fail*
// reasons. The authority's error arrives as text, so the game's errors are
// recognised by their messages.
func FailReason(err error) string {
	msg := err.Error()
	has := func(e error) bool { return errors.Is(err, e) || strings.Contains(msg, e.Error()) }
	switch {
	case has(game.ErrDead):
		return quality.FailDead
	case has(game.ErrCooldown):
		return quality.FailCooldown
	case has(game.ErrAlive):
		return quality.FailAlive
	case has(game.ErrNotJoined):
		return quality.FailNotJoined
	case errors.Is(err, netcode.ErrCallTimeout) || strings.Contains(msg, "older than the change window"):
		return quality.FailLate
	}
	return quality.FailOther
}

// retractHit undoes a confirmed hit that a later re-run by the authority
// took back.
func (p *Player) retractHit(c *netcode.Correction) {
	h, ok := p.hits[c.Call]
	if !ok {
		return
	}
	if s, err := game.DecodeShot(c.Authoritative); err == nil && s.Target == h.target {
		return
	}
	delete(p.hits, c.Call)
	if p.Rec.HitsConfirmed > 0 {
		p.Rec.HitsConfirmed--
		p.Rec.HitsRetracted++
	}
	if h.cross && p.CrossRec.HitsConfirmed > 0 {
		p.CrossRec.HitsConfirmed--
		p.CrossRec.HitsRetracted++
	}
}

// ownPos is the own player's position at now in the local view
// (predictions included), before smoothing.
func (p *Player) ownPos(now int64) (physics.Vec2, bool) {
	pl, ok := game.PlayerAt(p.view, p.Me(), now+1)
	if !ok {
		return physics.Vec2{}, false
	}
	return pl.Pos, true
}

// maxShots bounds the recent shots kept for drawing.
const maxShots = 256

// ShotFade is how long a shot stays drawn.
const ShotFade = 600 * time.Millisecond

func (p *Player) addShot(s game.Shot) {
	if len(p.shots) >= maxShots {
		p.shots = slices.Delete(p.shots, 0, len(p.shots)-maxShots+1)
	}
	p.shots = append(p.shots, s)
}

// Shots returns the shots of the last ShotFade before now, oldest first.
func (p *Player) Shots(now int64) []game.Shot {
	i := 0
	for i < len(p.shots) && p.shots[i].Time < now-int64(ShotFade) {
		i++
	}
	p.shots = p.shots[i:]
	return p.shots
}

// Scene is what a frame shows, in arena pixels: the own player predicted
// and smoothed, the others at the view delay behind now (exactly, from
// their motions: what the own shots are checked against).
type Scene struct {
	Now     int64
	Me      uint32
	Players []game.Player // Pos already as drawn
	Shots   []game.Shot
	// Ghost is the own player as the authority has confirmed it so far
	// (the confirmed values only, no prediction), at now; GhostOK is false
	// before its first confirmed motion.
	Ghost   physics.Vec2
	GhostOK bool
}

// Scene computes what to draw now.
func (p *Player) Scene() Scene {
	now := p.C.Now()
	me := p.Me()
	sc := Scene{Now: now, Me: me}
	view := now - int64(p.C.ViewDelay())
	for _, id := range game.PlayerIDs(p.view) {
		t := view
		if id == me {
			t = now + 1
		}
		pl, ok := game.PlayerAt(p.view, id, t)
		if !ok {
			continue
		}
		if id == me {
			v := p.Smooth.Apply("me", []float64{pl.Pos.X, pl.Pos.Y}, now)
			pl.Pos = physics.Vec2{X: v[0], Y: v[1]}
		}
		sc.Players = append(sc.Players, pl)
	}
	sc.Shots = p.Shots(now)
	if g, ok := game.PlayerAt(confirmedView{p.view}, me, now+1); ok {
		sc.Ghost, sc.GhostOK = g.Pos, true
	}
	return sc
}

func dist(a, b physics.Vec2) float64 { return math.Hypot(a.X-b.X, a.Y-b.Y) }

// clientView adapts a netcode.Client to game.View. The client has no
// Children, so the players are the ids seen in its events under
// game.PlayersPrefix, plus its own once it called join.
type clientView struct {
	c   *netcode.Client
	ids map[uint32]bool
}

// maxViewIDs bounds the player ids a view remembers.
const maxViewIDs = 4 * game.MaxPlayers

func newClientView(c *netcode.Client) *clientView {
	return &clientView{c: c, ids: make(map[uint32]bool)}
}

func (v *clientView) observe(evs []netcode.Event) {
	for _, ev := range evs {
		if ev.Kind != netcode.EventValue {
			continue
		}
		rest, ok := strings.CutPrefix(ev.Path, game.PlayersPrefix)
		if !ok {
			continue
		}
		seg, _, _ := strings.Cut(rest, "/")
		id, err := strconv.ParseUint(seg, 10, 32)
		if err != nil || v.ids[uint32(id)] || len(v.ids) >= maxViewIDs {
			continue
		}
		v.ids[uint32(id)] = true
	}
}

func (v *clientView) Read(path string) ([]byte, bool) { return v.c.Read(path) }

func (v *clientView) ReadAt(path string, t int64) ([]byte, bool) { return v.c.ReadAt(path, t) }

// Children lists the known player ids under game.PlayersPrefix (the only
// prefix the game lists), sorted as strings like the store's.
func (v *clientView) Children(prefix string) []string {
	if prefix != game.PlayersPrefix {
		return nil
	}
	out := make([]string, 0, len(v.ids)+1)
	me := v.c.Creator()
	if _, ok := v.c.Read(game.PlayerPath(me, game.FieldMotion)); ok && !v.ids[me] {
		out = append(out, strconv.FormatUint(uint64(me), 10))
	}
	for id := range v.ids {
		out = append(out, strconv.FormatUint(uint64(id), 10))
	}
	slices.Sort(out)
	return out
}
