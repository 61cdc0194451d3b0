package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/vector"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
)

// Screen layout, in screen pixels. One view shows the arena at full size
// with a side panel (HUD, graphs) to its right; -split shows two views at
// half size side by side, each with its panel below it. Nothing is drawn
// over the arena but transient messages (death, connection) and the
// overlays.
const (
	arenaW = game.ArenaWidth
	arenaH = game.ArenaHeight
	sideW  = 400 // the single view's side panel
	pad    = 8   // text inset in a panel
)

// Colours. The screenshot test looks for the exact player and wall
// colours, so shapes are drawn without anti-aliasing. Translucent colours
// are premultiplied (each channel at most alpha), as Ebiten takes them.
var (
	colBackground = color.RGBA{0x10, 0x12, 0x18, 0xff}
	colFloor      = color.RGBA{0x1c, 0x20, 0x2a, 0xff}
	colWall       = color.RGBA{0x5a, 0x64, 0x82, 0xff}
	colMe         = color.RGBA{0x3c, 0xdc, 0x78, 0xff}
	colOther      = color.RGBA{0xe6, 0x5a, 0x46, 0xff}
	colDead       = color.RGBA{0x50, 0x50, 0x58, 0xff}
	colAim        = color.RGBA{0xf0, 0xf0, 0xf0, 0xff}
	colShot       = color.RGBA{0xff, 0xe0, 0x40, 0xff}
	colHit        = color.RGBA{0xff, 0x40, 0x40, 0xff}
	colGravity    = color.RGBA{0x80, 0x60, 0xff, 0xff}
	colPanel      = color.RGBA{0x16, 0x19, 0x22, 0xff}
	colRule       = color.RGBA{0x30, 0x36, 0x48, 0xff}
	colHelp       = color.RGBA{0x08, 0x09, 0x0c, 0xf8}
	colRTT        = color.RGBA{0x40, 0xd0, 0xf0, 0xff}
	colOffset     = color.RGBA{0xf0, 0xc0, 0x40, 0xff}
	colCorr       = color.RGBA{0xf0, 0x50, 0xd0, 0xff}
	colMispred    = color.RGBA{0xff, 0x90, 0x30, 0xff}
	colLinkBad    = color.RGBA{0x90, 0x10, 0x10, 0xe0}
	colLinkWarn   = color.RGBA{0x80, 0x60, 0x00, 0xe0}
	colLinkGood   = color.RGBA{0x10, 0x60, 0x20, 0xe0}
)

// layout places the panes and their panels.
func (a *app) layout() {
	if len(a.panes) == 1 {
		pn := a.panes[0]
		pn.x, pn.y, pn.scale = 0, 0, 1
		pn.panel = image.Rect(arenaW, 0, arenaW+sideW, arenaH)
		return
	}
	w := arenaW / len(a.panes)
	for i, pn := range a.panes {
		pn.scale = float64(w) / arenaW
		pn.x, pn.y = float64(i*w), 0
		top := int(arenaH * pn.scale)
		pn.panel = image.Rect(i*w, top, (i+1)*w, arenaH)
	}
}

// Layout: the single view is the arena at one screen px per arena px plus
// the side panel; the split view fills the arena's size with its panes.
func (a *app) Layout(int, int) (int, int) {
	if len(a.panes) > 1 {
		return arenaW, arenaH
	}
	return arenaW + sideW, arenaH
}

// windowSize is the window's size for a logical size w×h: as large, unless
// the monitor is smaller (then scaled down to fit, Ebiten scaling the
// picture).
func windowSize(w, h int) (int, int) {
	mw, mh := ebiten.Monitor().Size()
	s := 1.0
	if mw > 0 && mh > 0 {
		s = min(1, 0.95*float64(mw)/float64(w), 0.9*float64(mh)/float64(h))
	}
	return int(float64(w) * s), int(float64(h) * s)
}

// Draw renders the current state; it changes nothing but the screen (and,
// with -screenshot, saves the last frame).
func (a *app) Draw(screen *ebiten.Image) {
	screen.Fill(colBackground)
	for _, pn := range a.panes {
		a.drawPane(screen, pn)
	}
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

// moment reports whether the first pane shows the -screenshot-when moment
// now (always, without one).
func (a *app) moment() bool {
	pn := a.panes[0]
	switch a.shotWhen {
	case "correction":
		ns := pn.p.Notes(a.now)
		if len(ns) == 0 {
			return false
		}
		n := ns[len(ns)-1]
		return a.now.Sub(n.Wall) < 300*time.Millisecond && (len(n.Pred) > 1 && len(n.Auth) > 1 && n.Moved > 5 || n.Shot)
	case "hit":
		for _, n := range pn.p.ShotNotes(a.now) {
			if n.Hit && n.Shot.Shooter == pn.p.Me() && a.now.Sub(n.Wall) < 300*time.Millisecond {
				return true
			}
		}
		return false
	case "dead":
		return pn.dead
	case "ahead":
		sc := pn.p.Scene()
		for _, pl := range sc.Players {
			if pl.ID == sc.Me && sc.GhostOK && sc.Ghost.Sub(pl.Pos).Len() > 10 {
				return true
			}
		}
		return false
	}
	return true
}

// arenaRect is the pane's arena on screen.
func (pn *pane) arenaRect() image.Rectangle {
	return image.Rect(int(pn.x), int(pn.y), int(pn.x+arenaW*pn.scale), int(pn.y+arenaH*pn.scale))
}

// pt maps arena px to screen px.
func (pn *pane) pt(v float64, w float64) (float32, float32) {
	return float32(pn.x + v*pn.scale), float32(pn.y + w*pn.scale)
}

func (a *app) drawPane(screen *ebiten.Image, pn *pane) {
	arena := drawFloor(screen, pn)
	sc := pn.p.Scene()
	drawShots(arena, pn, sc)
	tags := a.drawOverlaysUnder(arena, pn, sc)
	drawPlayers(arena, pn, sc)
	a.drawOverlaysOver(arena, pn, sc, tags)
	a.drawLife(arena, pn)
	a.drawLink(arena, pn)
	a.drawPanel(screen, pn, sc)
}

// drawFloor draws the pane's arena floor and walls and returns the arena's
// sub-image. Everything of the arena is drawn into it, so it is clipped
// to it: a gravity circle near the border ends at the arena's edge, never
// in the panel or the other pane.
func drawFloor(screen *ebiten.Image, pn *pane) *ebiten.Image {
	arena := screen.SubImage(pn.arenaRect()).(*ebiten.Image)
	s := float32(pn.scale)
	vector.FillRect(arena, float32(pn.x), float32(pn.y), arenaW*s, arenaH*s, colFloor, false)
	for _, w := range game.Walls() {
		x0, y0 := pn.pt(max(w.Min.X, 0), max(w.Min.Y, 0))
		x1, y1 := pn.pt(min(w.Max.X, arenaW), min(w.Max.Y, arenaH))
		if x1 > x0 && y1 > y0 {
			vector.FillRect(arena, x0, y0, x1-x0, y1-y0, colWall, false)
		}
	}
	return arena
}

// drawShots draws the scene's shots, fading, and its gravity fields.
func drawShots(arena *ebiten.Image, pn *pane, sc match.Scene) {
	s := float32(pn.scale)
	for _, shot := range sc.Shots {
		age := float64(sc.Now-shot.Time) / float64(match.ShotFade)
		c := colShot
		if shot.Target != 0 {
			c = colHit
		}
		c.A = uint8(255 * min(max(1-age, 0), 1))
		x0, y0 := pn.pt(shot.Origin.X, shot.Origin.Y)
		x1, y1 := pn.pt(shot.End.X, shot.End.Y)
		vector.StrokeLine(arena, x0, y0, x1, y1, max(2*s, 1), premultiply(c), true)
	}
	for _, pl := range sc.Players {
		if g := pl.Gravity; g.End > sc.Now && g.Start > 0 {
			cx, cy := pn.pt(g.Center.X, g.Center.Y)
			vector.StrokeCircle(arena, cx, cy, float32(game.GravityRadius)*s, 1, colGravity, true)
		}
	}
}

// drawPlayers draws the scene's players: the own one green, the others
// red, the dead grey, each living one with its aim.
func drawPlayers(arena *ebiten.Image, pn *pane, sc match.Scene) {
	s := float32(pn.scale)
	for _, pl := range sc.Players {
		c := colOther
		if pl.ID == sc.Me {
			c = colMe
		}
		if !pl.Life.Alive() {
			c = colDead
		}
		cx, cy := pn.pt(pl.Pos.X, pl.Pos.Y)
		vector.FillCircle(arena, cx, cy, game.PlayerRadius*s, c, false)
		if pl.Life.Alive() {
			ex, ey := pn.pt(pl.Pos.X+math.Cos(pl.Aim)*game.PlayerRadius*1.8, pl.Pos.Y+math.Sin(pl.Aim)*game.PlayerRadius*1.8)
			vector.StrokeLine(arena, cx, cy, ex, ey, max(2*s, 1), colAim, true)
		}
	}
}

// drawLife shows the own player's death, until the respawn, and the
// respawn for a moment after it.
func (a *app) drawLife(dst *ebiten.Image, pn *pane) {
	var lines []string
	var c color.RGBA
	switch {
	case pn.dead:
		by := "killed"
		if k := pn.p.KilledBy; k != 0 {
			by = "killed by " + pn.p.NameOf(k)
		}
		wait := time.Duration(pn.respawnAt - pn.p.C.Now())
		again := "respawning..."
		if wait > 0 {
			again = fmt.Sprintf("respawn in %.1f s", wait.Seconds())
		}
		lines = []string{"YOU WERE " + strings.ToUpper(by), again}
		c = colLinkBad
	case !pn.respawned.IsZero() && a.now.Sub(pn.respawned) < respawnShown:
		lines = []string{"respawned: back in the game"}
		c = colLinkGood
	default:
		return
	}
	r := pn.arenaRect()
	box(dst, lines, float32(r.Min.X+r.Dx()/2), float32(r.Min.Y+r.Dy()/3), c)
}

// respawnShown is how long the respawn message stays.
const respawnShown = 2 * time.Second

// drawLink shows, across the pane's arena, a connection that is silent,
// lost or just back, and a cut link.
func (a *app) drawLink(dst *ebiten.Image, pn *pane) {
	l := &pn.p.Link
	var msg []string
	c := colLinkBad
	switch l.State(a.now) {
	case match.LinkSilent:
		msg = append(msg, fmt.Sprintf("no news from the authority for %.1f s", a.now.Sub(l.Heard).Seconds()))
		c = colLinkWarn
	case match.LinkLost:
		st := pn.p.C.Stats()
		msg = append(msg, fmt.Sprintf("CONNECTION LOST %.0f s ago: %s", a.now.Sub(l.Lost).Seconds(), l.Why),
			fmt.Sprintf("reconnecting (%d attempts so far)", st.Redials))
	case match.LinkRecovered:
		msg = append(msg, "connected again "+l.Again())
		c = colLinkGood
	}
	if pn.lag.Cut() {
		msg = append(msg, "link cut: every packet lost both ways [L restores it]")
	}
	r := pn.arenaRect()
	cols := r.Dx()/glyphW - 4
	box(dst, fitAll(cols, 2, msg...), float32(r.Min.X+r.Dx()/2), float32(r.Min.Y+r.Dy()/2), c)
}

// drawPanel fills the pane's panel: the HUD's text, then the graphs, then
// the keys.
func (a *app) drawPanel(screen *ebiten.Image, pn *pane, sc match.Scene) {
	r := pn.panel
	vector.FillRect(screen, float32(r.Min.X), float32(r.Min.Y), float32(r.Dx()), float32(r.Dy()), colPanel, false)
	vector.StrokeLine(screen, float32(r.Min.X), float32(r.Min.Y), float32(r.Min.X), float32(r.Max.Y), 1, colRule, false)
	cols := (r.Dx() - 2*pad) / glyphW
	split := len(a.panes) > 1
	x, y := r.Min.X+pad, r.Min.Y+pad
	y = printLines(screen, a.hudLines(pn, sc, cols, split), x, y)

	foot := fitAll(cols, 2, a.keysLines()...)
	footY := r.Max.Y - pad - len(foot)*lineH
	printLines(screen, foot, x, footY)
	gr := image.Rect(x, y+4, r.Max.X-pad, footY-6)
	drawGraphs(screen, gr, pn.p.Graph.Buckets())
}

// hudLines is the panel's text: who and where, the link, the counters,
// the last correction explained, the last refusal and the kills.
func (a *app) hudLines(pn *pane, sc match.Scene, cols int, split bool) []string {
	st := pn.p.C.Stats()
	prof := pn.lag.Profile()
	var me game.Player
	for _, pl := range sc.Players {
		if pl.ID == sc.Me {
			me = pl
		}
	}
	comp := "on"
	if !a.comp {
		comp = "OFF (shots checked against targets now)"
	}
	link := fmt.Sprintf("%v ± %v, %.1f%% loss each way", prof.Delay, prof.Jitter, prof.Loss*100)
	if pn.lag.Cut() {
		link = "CUT"
	}
	why := pn.p.LastCorrection
	if why == "" {
		why = "no correction yet"
	}
	whyLines, refusalLines := 4, 2
	if split {
		whyLines, refusalLines = 2, 1
	}
	name := me.Name
	if name == "" {
		name = pn.p.Name
	}
	lines := fitAll(cols, 2,
		fmt.Sprintf("%s (creator %d): health %d, kills %d, deaths %d; %d players", name, st.Creator, me.Life.Health, me.Score.Kills, me.Score.Deaths, len(sc.Players)),
		fmt.Sprintf("lag %s: %s", prof.Name, link),
		fmt.Sprintf("ping %v, clock offset %v, view delay %v", st.RTT.Round(time.Millisecond), st.Offset.Round(100*time.Microsecond), st.ViewDelay.Round(time.Millisecond)),
		fmt.Sprintf("calls %d: mispredicted %d, re-simulated %d, corrections %d", st.Calls, st.Mispredictions, st.Reruns, st.Corrections),
		fmt.Sprintf("kbps in %.1f, out %.1f; lag compensation %s", st.BytesInPerSec*8/1000, st.BytesOutPerSec*8/1000, comp),
	)
	lines = append(lines, "")
	lines = append(lines, fit("why did I snap: "+why, cols, whyLines, "  ")...)
	if pn.p.LastError != "" {
		lines = append(lines, fit("last refusal: "+pn.p.LastError, cols, refusalLines, "  ")...)
	}
	if !split {
		lines = append(lines, "")
		kills := pn.p.Kills()
		for i := max(0, len(kills)-3); i < len(kills); i++ {
			k := kills[i]
			if a.now.Sub(k.Wall) < 15*time.Second {
				lines = append(lines, fit(fmt.Sprintf("%s killed %s", pn.p.Who(k.Shooter), pn.p.Who(k.Target)), cols, 1, "")...)
			}
		}
	}
	return lines
}

// keysLines list the keys, with the overlays' state.
func (a *app) keysLines() []string {
	on := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	return []string{"F1 help, 1-7 lag, P lag compensation, L cut the link",
		fmt.Sprintf("F2 ghost %s, F3 hitboxes %s, F4 corrections %s", on(a.overlay.ghost), on(a.overlay.hitboxes), on(a.overlay.corrections))}
}

func (a *app) drawHelp(screen *ebiten.Image) {
	const text = `Rewind shooter

WASD      move (predicted at once, corrected smoothly)
mouse     aim        click  shoot (hitscan, checked at your view time)
G         gravity pull       shift+G  gravity push
1-7       lag profile: none lan broadband wifi mobile transatlantic awful
P         lag compensation on/off: off, your shots are checked against
          where targets are now, not where you saw them
L         cut the link (every packet lost) / restore it: the panel shows
          the silence, the lost session and the reconnection
F2        ghost: where the authority has confirmed you (white ring)
          beside where your prediction draws you
F3        rewound hitboxes: for each shot, where the target was at the
          shooter's view time (the position the shot was checked against)
          and an arrow to where it was at the shot's time
F4        corrections: the predicted path (dashed) and the authority's
          (solid) where a correction happened, with its cause
F1        this help

Green is you (predicted), red are the others (shown a view delay behind).
The panel counts mispredictions, re-simulations and corrections, says why
the last correction happened and graphs the last 10 s.
Ctrl-C or closing the window quits.`
	lines := strings.Split(text, "\n")
	w, h := a.Layout(0, 0)
	box(screen, lines, float32(w)/2, float32(h)/2, colHelp)
}

// drawGraphs draws the connection graphs over GraphSpan into r: RTT and
// clock offset as lines, corrections and mispredictions as bars per
// bucket, each plot with its scale, under a legend.
func drawGraphs(dst *ebiten.Image, r image.Rectangle, bs []match.GraphBucket) {
	if r.Dy() < 3*lineH+60 || r.Dx() < 120 {
		return // no room
	}
	x, y := r.Min.X, r.Min.Y
	y = printLines(dst, []string{fmt.Sprintf("last %v, one bar per %v:", match.GraphSpan, match.GraphStep)}, x, y)
	// Legend: a swatch and a name per series.
	lx := x
	for _, s := range []struct {
		name string
		c    color.RGBA
		line bool
	}{{"rtt", colRTT, true}, {"clock offset", colOffset, true}, {"corrections", colCorr, false}, {"mispredictions", colMispred, false}} {
		w := 10 + 4 + len(s.name)*glyphW + 10
		if lx+w > r.Max.X {
			lx, y = x, y+lineH
		}
		if s.line {
			vector.StrokeLine(dst, float32(lx), float32(y+8), float32(lx+10), float32(y+8), 2, s.c, false)
		} else {
			vector.FillRect(dst, float32(lx+2), float32(y+3), 6, 10, s.c, false)
		}
		printLines(dst, []string{s.name}, lx+14, y)
		lx += w
	}
	y += lineH + 4

	const axis = 7 * glyphW // room for the scale's labels
	px0, px1 := float32(x+axis), float32(r.Max.X)
	xlabels := lineH
	h := float32(r.Max.Y-y-xlabels) / 3
	step := (px1 - px0) / float32(len(bs))
	bx := func(i int) float32 { return px0 + float32(i)*step }

	// Plot 1: RTT, from 0.
	var maxRTT, maxOff time.Duration
	maxN := 1
	for _, b := range bs {
		maxRTT = max(maxRTT, b.RTT)
		maxOff = max(maxOff, b.Offset, -b.Offset)
		maxN = max(maxN, b.Corrections, b.Mispredictions)
	}
	top := float32(y)
	rttScale := niceMs(maxRTT, 10*time.Millisecond)
	frame(dst, px0, top, px1, top+h-6, []label{{fmt.Sprintf("%d ms", rttScale.Milliseconds()), 0}, {"0", 1}}, x)
	series(dst, bs, func(b match.GraphBucket) float32 {
		return top + (h-6)*(1-float32(b.RTT)/float32(rttScale))
	}, bx, step, colRTT)

	// Plot 2: clock offset, around 0.
	top += h
	offScale := niceMs(maxOff, time.Millisecond)
	mid := top + (h-6)/2
	frame(dst, px0, top, px1, top+h-6, []label{{fmt.Sprintf("+%d ms", offScale.Milliseconds()), 0}, {fmt.Sprintf("-%d", offScale.Milliseconds()), 1}, {"0", 0.5}}, x)
	vector.StrokeLine(dst, px0, mid, px1, mid, 1, colRule, false)
	series(dst, bs, func(b match.GraphBucket) float32 {
		return mid - (h-6)/2*float32(b.Offset)/float32(offScale)
	}, bx, step, colOffset)

	// Plot 3: corrections and mispredictions per bucket, side by side.
	top += h
	base := top + h - 6
	frame(dst, px0, top, px1, base, []label{{fmt.Sprintf("%d", maxN), 0}, {"0", 1}}, x)
	bw := max(step/2-1, 1)
	for i, b := range bs {
		for k, n := range []int{b.Corrections, b.Mispredictions} {
			if n == 0 {
				continue
			}
			bh := (h - 6) * float32(n) / float32(maxN)
			c := colCorr
			if k == 1 {
				c = colMispred
			}
			vector.FillRect(dst, bx(i)+float32(k)*(bw+1), base-bh, bw, bh, c, false)
		}
	}
	// The time axis under the last plot.
	ty := int(base) + 2
	span := int(match.GraphSpan / time.Second)
	printLines(dst, []string{fmt.Sprintf("-%d s", span)}, int(px0), ty)
	mx := int((px0+px1)/2) - 3*glyphW
	printLines(dst, []string{fmt.Sprintf("-%d s", span/2)}, mx, ty)
	printLines(dst, []string{"now"}, int(px1)-3*glyphW, ty)
}

// label is a scale's label at a fraction of the plot's height from its top.
type label struct {
	text string
	at   float32
}

// frame draws a plot's box and its scale's labels to its left (from x),
// in the order given, leaving out a label that would overlap one drawn.
func frame(dst *ebiten.Image, x0, y0, x1, y1 float32, labels []label, x int) {
	vector.StrokeRect(dst, x0, y0, x1-x0, y1-y0, 1, colRule, false)
	var drawn []float32
	for _, l := range labels {
		ly := y0 + (y1-y0)*l.at - lineH/2
		ly = min(max(ly, y0-4), y1-lineH+4)
		if slices.ContainsFunc(drawn, func(d float32) bool { return d-lineH < ly && ly < d+lineH }) {
			continue
		}
		drawn = append(drawn, ly)
		printLines(dst, []string{l.text}, x, int(ly))
	}
}

// series draws one line through the buckets that had a frame.
func series(dst *ebiten.Image, bs []match.GraphBucket, y func(match.GraphBucket) float32, bx func(int) float32, step float32, c color.RGBA) {
	// Buckets no frame fell in (a slow machine) are bridged.
	var path vector.Path
	started := false
	for i, b := range bs {
		if !b.Seen {
			continue
		}
		if !started {
			path.MoveTo(bx(i)+step/2, y(b))
			started = true
			continue
		}
		path.LineTo(bx(i)+step/2, y(b))
	}
	stroke(dst, &path, 1.5, c)
}

// niceMs rounds d up to a scale that reads well: 1, 2 or 5 times a power of
// ten milliseconds, at least floor.
func niceMs(d, floor time.Duration) time.Duration {
	d = max(d, floor)
	ms := float64(d) / float64(time.Millisecond)
	p := math.Pow(10, math.Floor(math.Log10(ms)))
	for _, m := range []float64{1, 2, 5, 10} {
		if ms <= m*p {
			return time.Duration(m * p * float64(time.Millisecond))
		}
	}
	return d
}

// premultiply turns a straight-alpha colour into Ebiten's premultiplied
// form.
func premultiply(c color.RGBA) color.RGBA {
	f := float64(c.A) / 255
	return color.RGBA{uint8(float64(c.R) * f), uint8(float64(c.G) * f), uint8(float64(c.B) * f), c.A}
}

// savePNG writes the screen as it is now (inside Draw, so it is the
// frame being shown) to file.
func savePNG(screen *ebiten.Image, file string) error {
	b := screen.Bounds()
	img := image.NewRGBA(b)
	screen.ReadPixels(img.Pix)
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("shooter: screenshot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("shooter: screenshot: %w", err)
	}
	return f.Close()
}
