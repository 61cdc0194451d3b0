package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"
	"github.com/hajimehoshi/ebiten/v2/vector"

	"github.com/rewindnet/rewind/demo-shooter/internal/replay"
)

// Replay controls: a seek's step, and how long a kill stays in the feed.
const (
	seekStep  = 5 * time.Second
	seekFine  = 500 * time.Millisecond
	killsKept = 15 * time.Second
)

// summary prints the summary of the match recorded in cfg.replay.
func summary(cfg *config, stdout io.Writer) error {
	m, err := replay.Open(cfg.replay, cfg.parity)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replay of %s: ", strings.Join(cfg.replay, ","))
	return m.Summarise().WriteText(stdout)
}

// replayApp is the window of -replay: a recorded match stepped through
// at any speed, from any player's view. Nothing is simulated: every frame
// is decoded from the archive's values at the replay's time.
type replayApp struct {
	ctx    context.Context
	out    io.Writer
	m      *replay.Match
	where  string
	pn     *pane
	t      int64   // the replay's synced time
	speed  float64 // factor of real time
	paused bool
	viewer int  // index into m.Players()
	asSeen bool // the others where the viewer's client showed them
	boxes  bool // F3: rewound hitboxes
	help   bool
	frame  int
	quit   string

	shotFile string
	frames   int
	shotWhen string // "", "hit" or "dead"
	saveErr  error
	saved    bool
}

// replayWindow plays the match recorded in cfg.replay in a window until it
// is closed or ctx ends.
func replayWindow(ctx context.Context, cfg *config, stderr io.Writer) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("shooter: no display ($DISPLAY is empty): run with -headless for the replay's summary, or under xvfb-run")
	}
	m, err := replay.Open(cfg.replay, cfg.parity)
	if err != nil {
		return err
	}
	a := &replayApp{ctx: ctx, out: stderr, m: m, where: strings.Join(cfg.replay, ","), speed: cfg.speed,
		shotFile: cfg.screenshot, frames: cfg.frames, shotWhen: cfg.shotWhen, boxes: cfg.overlays.hitboxes,
		pn: &pane{scale: 1, panel: image.Rect(arenaW, 0, arenaW+sideW, arenaH)}}
	a.t = min(m.Start+int64(cfg.from), m.End)
	if cfg.viewer != "" {
		id, err := m.Find(cfg.viewer)
		if err != nil {
			return err
		}
		for i, p := range m.Players() {
			if p == id {
				a.viewer = i
			}
		}
	}
	if d := m.Damage(); d != "" {
		fmt.Fprintf(stderr, "shooter: replay: the archive was damaged, what could be read plays: %s\n", d)
	}
	ebiten.SetWindowSize(windowSize(a.Layout(0, 0)))
	ebiten.SetWindowResizingMode(ebiten.WindowResizingModeEnabled)
	ebiten.SetWindowTitle("Rewind shooter — replay of " + a.where)
	ebiten.SetTPS(60)
	ebiten.SetRunnableOnUnfocused(true)
	ebiten.SetWindowClosingHandled(true)
	err = ebiten.RunGame(a)
	if errors.Is(err, ebiten.Termination) {
		err = nil
	}
	if err == nil {
		err = a.saveErr
	}
	return err
}

// Layout is the single view's: the arena and the side panel.
func (a *replayApp) Layout(int, int) (int, int) { return arenaW + sideW, arenaH }

// me is the viewed player's id.
func (a *replayApp) me() uint32 { return a.m.Players()[a.viewer] }

// step is how far one frame moves the replay at the current speed.
func (a *replayApp) step() int64 { return int64(a.speed * float64(time.Second) / 60) }

// Update is the fixed step: the keys, then the replay's clock. With
// -screenshot the clock stops at -frames, so the picture is of an exact
// time: -from plus frames × speed / 60 s.
func (a *replayApp) Update() error {
	switch {
	case a.saved || a.saveErr != nil:
		a.quit = "screenshot taken"
	case a.ctx.Err() != nil:
		a.quit = "interrupted"
	case ebiten.IsWindowBeingClosed():
		a.quit = "window closed"
	}
	if a.quit != "" {
		if a.quit != "screenshot taken" {
			fmt.Fprintf(a.out, "shooter: %s, closing the replay\n", a.quit)
		}
		return ebiten.Termination
	}
	if a.frame == 0 {
		fmt.Fprintf(a.out, "%s: replay of %s, %.1f s, %d players; Ctrl-C or closing the window quits\n",
			readyLine, a.where, time.Duration(a.m.End-a.m.Start).Seconds(), len(a.m.Players()))
	}
	if a.shotFile != "" && a.frame >= a.frames && (a.moment() || a.frame >= 2*a.frames) {
		return nil // held for the screenshot
	}
	a.frame++
	a.input()
	if !a.paused {
		a.t += a.step()
	}
	if a.t >= a.m.End {
		a.t, a.paused = a.m.End, true
	}
	return nil
}

// input reads the replay's keys and a click on the time bar.
func (a *replayApp) input() {
	shift := ebiten.IsKeyPressed(ebiten.KeyShift)
	seek := func(d time.Duration) { a.t = min(max(a.t+int64(d), a.m.Start), a.m.End) }
	step := seekStep
	if shift {
		step = seekFine
	}
	n := len(a.m.Players())
	switch {
	case inpututil.IsKeyJustPressed(ebiten.KeySpace):
		a.paused = !a.paused
		if !a.paused && a.t >= a.m.End {
			a.t = a.m.Start // played to the end: again from the start
		}
	case inpututil.IsKeyJustPressed(ebiten.KeyRight):
		seek(step)
	case inpututil.IsKeyJustPressed(ebiten.KeyLeft):
		seek(-step)
	case inpututil.IsKeyJustPressed(ebiten.KeyUp):
		a.speed = min(a.speed*2, maxSpeed)
	case inpututil.IsKeyJustPressed(ebiten.KeyDown):
		a.speed = max(a.speed/2, minSpeed)
	case inpututil.IsKeyJustPressed(ebiten.KeyTab) && shift:
		a.viewer = (a.viewer + n - 1) % n
	case inpututil.IsKeyJustPressed(ebiten.KeyTab):
		a.viewer = (a.viewer + 1) % n
	case inpututil.IsKeyJustPressed(ebiten.KeyV):
		a.asSeen = !a.asSeen
	case inpututil.IsKeyJustPressed(ebiten.KeyF3):
		a.boxes = !a.boxes
	case inpututil.IsKeyJustPressed(ebiten.KeyHome):
		a.t = a.m.Start
	case inpututil.IsKeyJustPressed(ebiten.KeyF1):
		a.help = !a.help
	}
	if inpututil.IsMouseButtonJustPressed(ebiten.MouseButtonLeft) {
		x, y := ebiten.CursorPosition()
		if bar := a.bar(); image.Pt(x, y).In(bar.Inset(-4)) {
			f := float64(x-bar.Min.X) / float64(bar.Dx())
			a.t = a.m.Start + int64(min(max(f, 0), 1)*float64(a.m.End-a.m.Start))
		}
	}
}

// Draw renders the replay at its time (and saves the -screenshot).
func (a *replayApp) Draw(screen *ebiten.Image) {
	screen.Fill(colBackground)
	pn := a.pn
	me := a.me()
	sc := a.m.Scene(me, a.t, a.asSeen)
	arena := drawFloor(screen, pn)
	drawShots(arena, pn, sc)
	var tags []tagText
	if a.boxes {
		for _, s := range a.m.Shots(a.t-int64(hitboxShown), a.t+1) {
			if hb, ok := a.m.Hitbox(s); ok {
				f := 1 - float64(a.t-s.Time)/float64(hitboxShown)
				mine := s.Shooter == me || s.Target == me
				tags = append(tags, drawHitbox(arena, pn, s, hb.Rewound, hb.AtW, true, mine, f)...)
			}
		}
	}
	drawPlayers(arena, pn, sc)
	for _, t := range placeTags(tags, pn.arenaRect()) {
		tag(arena, t.text, t.x, t.y, t.f)
	}
	a.drawDeath(arena, me)
	a.drawPanel(screen, me)
	if a.help {
		a.drawHelp(screen)
	}
	if a.shotFile != "" && !a.saved && a.frame >= a.frames && (a.moment() || a.frame >= 2*a.frames) {
		if a.shotWhen != "" && !a.moment() {
			fmt.Fprintf(a.out, "shooter: no %q moment in %d frames; saving the last\n", a.shotWhen, a.frame)
		}
		a.saveErr = savePNG(screen, a.shotFile)
		a.saved = true
	}
}

// moment reports whether the replay shows the -screenshot-when moment
// (always, without one): a hit of the viewed player's within the last
// 300 ms of the match, or its death.
func (a *replayApp) moment() bool {
	me := a.me()
	switch a.shotWhen {
	case "hit":
		for _, s := range a.m.Shots(a.t-int64(300*time.Millisecond), a.t+1) {
			if s.Shooter == me && s.Target != 0 {
				return true
			}
		}
		return false
	case "dead":
		p, ok := a.m.Player(me, a.t)
		return ok && !p.Life.Alive()
	}
	return true
}

// drawDeath shows the viewed player's death until it respawns.
func (a *replayApp) drawDeath(dst *ebiten.Image, me uint32) {
	pl, ok := a.m.Player(me, a.t)
	if !ok || pl.Life.Alive() {
		return
	}
	by := "killed"
	for _, k := range a.m.Kills(pl.Life.DiedAt, pl.Life.DiedAt+1) {
		if k.Target == me {
			by = "killed by " + a.m.Name(k.Shooter)
		}
	}
	again := "may respawn now"
	if wait := time.Duration(pl.Life.RespawnAt() - a.t); wait > 0 {
		again = fmt.Sprintf("may respawn in %.1f s", wait.Seconds())
	}
	r := a.pn.arenaRect()
	box(dst, []string{strings.ToUpper(a.m.Name(me) + " was " + by), again}, float32(r.Min.X+r.Dx()/2), float32(r.Min.Y+r.Dy()/3), colLinkBad)
}

// secs is a replay time as seconds into the match.
func (a *replayApp) secs(t int64) float64 { return time.Duration(t - a.m.Start).Seconds() }

// drawPanel: where the replay is, whose view, the kills so far, the
// scores, the time bar and the keys.
func (a *replayApp) drawPanel(screen *ebiten.Image, me uint32) {
	r := a.pn.panel
	vector.FillRect(screen, float32(r.Min.X), float32(r.Min.Y), float32(r.Dx()), float32(r.Dy()), colPanel, false)
	vector.StrokeLine(screen, float32(r.Min.X), float32(r.Min.Y), float32(r.Min.X), float32(r.Max.Y), 1, colRule, false)
	cols := (r.Dx() - 2*pad) / glyphW
	state := fmt.Sprintf("speed ×%g", a.speed)
	if a.paused {
		state += ", PAUSED"
	}
	pl, _ := a.m.Player(me, a.t)
	others := "the others where they were"
	if a.asSeen {
		others = fmt.Sprintf("the others as %s's client showed them, %v behind (its view delay)",
			a.m.Name(me), a.m.ViewDelay(me, a.t).Round(time.Millisecond))
	}
	lines := fitAll(cols, 2,
		"REPLAY of "+a.where,
		fmt.Sprintf("%.1f s of %.1f s, %s", a.secs(a.t), a.secs(a.m.End), state),
		fmt.Sprintf("view of %s (player %d): health %d, kills %d, deaths %d", a.m.Name(me), me, pl.Life.Health, pl.Score.Kills, pl.Score.Deaths),
		others,
		"values as the authority stored them: nothing re-simulated",
	)
	lines = append(lines, "", "kills:")
	kills := a.m.Kills(a.t-int64(killsKept), a.t+1)
	for _, k := range kills[max(0, len(kills)-4):] {
		lines = append(lines, fit(fmt.Sprintf("%6.1f s  %s killed %s", a.secs(k.Time), a.m.Name(k.Shooter), a.m.Name(k.Target)), cols, 1, "")...)
	}
	lines = append(lines, "", fmt.Sprintf("%-16s %5s %6s", "player", "kills", "deaths"))
	for _, id := range a.m.Players() {
		p, ok := a.m.Player(id, a.t)
		if !ok {
			continue
		}
		mark := " "
		if id == me {
			mark = ">"
		}
		lines = append(lines, fmt.Sprintf("%s%-15s %5d %6d", mark, a.m.Name(id), p.Score.Kills, p.Score.Deaths))
	}
	x, y := r.Min.X+pad, r.Min.Y+pad
	printLines(screen, lines, x, y)

	foot := fitAll(cols, 2,
		"space pause, left/right seek 5 s (shift: 0.5 s), up/down speed",
		fmt.Sprintf("Tab player, V as seen, F3 hitboxes %s, F1 help", map[bool]string{true: "on", false: "off"}[a.boxes]))
	footY := r.Max.Y - pad - len(foot)*lineH
	printLines(screen, foot, x, footY)
	a.drawBar(screen)
}

// bar is the time bar's rectangle on screen, above the keys.
func (a *replayApp) bar() image.Rectangle {
	r := a.pn.panel
	y := r.Max.Y - pad - 2*lineH - 22
	return image.Rect(r.Min.X+pad, y, r.Max.X-pad, y+10)
}

// drawBar draws the match's time bar: the kills as ticks (the viewed
// player's in its colour), the replay's time as a cursor.
func (a *replayApp) drawBar(screen *ebiten.Image) {
	b := a.bar()
	span := float64(a.m.End - a.m.Start)
	if span <= 0 {
		return
	}
	at := func(t int64) float32 { return float32(b.Min.X) + float32(float64(t-a.m.Start)/span)*float32(b.Dx()) }
	vector.FillRect(screen, float32(b.Min.X), float32(b.Min.Y), float32(b.Dx()), float32(b.Dy()), colFloor, false)
	me := a.me()
	for _, k := range a.m.Kills(a.m.Start, a.m.End) {
		c := colRule
		switch me {
		case k.Shooter:
			c = colMe
		case k.Target:
			c = colHit
		}
		vector.FillRect(screen, at(k.Time), float32(b.Min.Y), 2, float32(b.Dy()), c, false)
	}
	vector.FillRect(screen, at(a.t)-1, float32(b.Min.Y-3), 3, float32(b.Dy()+6), colAim, false)
}

func (a *replayApp) drawHelp(screen *ebiten.Image) {
	const text = `Rewind shooter: replay

A recorded match, read back from the authority's archive: every frame
is decoded from the values the authority stored (motions, shots, lives,
scores) at the replay's time. Nothing is simulated again.

space       pause / play (at the end: again from the start)
left/right  seek 5 s back / ahead (with shift: 0.5 s); click the bar
up/down     speed ×2 / ÷2
Tab         the next player's view (shift+Tab: the previous)
V           the others as the viewed player's client showed them (its
            view delay behind, from its latest shot), or where they were
F3          rewound hitboxes: for each hit, where the target was at the
            shooter's view time, what the authority checked the shot
            against, with an arrow to where it was when the shot was fired
Home        back to the start
F1          this help

Green is the viewed player, red the others; on the time bar, the
viewed player's kills in green, its deaths in red.`
	lines := strings.Split(text, "\n")
	w, h := a.Layout(0, 0)
	box(screen, lines, float32(w)/2, float32(h)/2, colHelp)
}
