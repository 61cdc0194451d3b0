package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/ebitenutil"
	"github.com/hajimehoshi/ebiten/v2/vector"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
)

// Screen layout, in screen pixels. One view shows the arena at full size
// with the HUD on top of it; -split shows two views at half size side by
// side with their HUDs below.
const (
	screenW = game.ArenaWidth
	screenH = game.ArenaHeight
	hudW    = 330
	graphW  = 200
	graphH  = 60
)

// Colours. The screenshot test looks for the exact player and wall
// colours, so shapes are drawn without anti-aliasing.
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
	colPanel      = color.RGBA{0x00, 0x00, 0x00, 0xb0}
	colRTT        = color.RGBA{0x40, 0xd0, 0xf0, 0xff}
	colCorr       = color.RGBA{0xf0, 0x50, 0xd0, 0xff}
	colLinkBad    = color.RGBA{0x90, 0x10, 0x10, 0xe0}
	colLinkWarn   = color.RGBA{0x80, 0x60, 0x00, 0xe0}
	colLinkGood   = color.RGBA{0x10, 0x60, 0x20, 0xe0}
)

// layout places the panes: one at full size, or two at half size side by
// side with their HUDs below.
func (a *app) layout() {
	if len(a.panes) < 2 {
		return
	}
	for i, pn := range a.panes {
		pn.scale = 0.5
		pn.x = float64(i) * screenW / 2
	}
}

// Layout keeps the arena's own resolution: one arena px per screen px.
func (a *app) Layout(int, int) (int, int) { return screenW, screenH }

// Draw renders the current state; it changes nothing but the screen (and,
// with -screenshot, saves the last frame).
func (a *app) Draw(screen *ebiten.Image) {
	screen.Fill(colBackground)
	for _, pn := range a.panes {
		a.drawPane(screen, pn)
	}
	if a.help {
		drawHelp(screen)
	}
	if a.shotFile != "" && !a.saved && a.frame >= a.frames {
		a.saveErr = savePNG(screen, a.shotFile)
		a.saved = true
	}
}

func (a *app) drawPane(screen *ebiten.Image, pn *pane) {
	s := float32(pn.scale)
	ox, oy := float32(pn.x), float32(pn.y)
	pt := func(x, y float64) (float32, float32) { return ox + float32(x)*s, oy + float32(y)*s }
	vector.FillRect(screen, ox, oy, game.ArenaWidth*s, game.ArenaHeight*s, colFloor, false)
	for _, w := range game.Walls() {
		x0, y0 := pt(max(w.Min.X, 0), max(w.Min.Y, 0))
		x1, y1 := pt(min(w.Max.X, game.ArenaWidth), min(w.Max.Y, game.ArenaHeight))
		if x1 > x0 && y1 > y0 {
			vector.FillRect(screen, x0, y0, x1-x0, y1-y0, colWall, false)
		}
	}
	sc := pn.p.Scene()
	for _, shot := range sc.Shots {
		age := float64(sc.Now-shot.Time) / float64(match.ShotFade)
		c := colShot
		if shot.Target != 0 {
			c = colHit
		}
		c.A = uint8(255 * min(max(1-age, 0), 1))
		x0, y0 := pt(shot.Origin.X, shot.Origin.Y)
		x1, y1 := pt(shot.End.X, shot.End.Y)
		vector.StrokeLine(screen, x0, y0, x1, y1, 2*s, premultiply(c), true)
	}
	for _, pl := range sc.Players {
		if g := pl.Gravity; g.End > sc.Now && g.Start > 0 {
			cx, cy := pt(g.Center.X, g.Center.Y)
			vector.StrokeCircle(screen, cx, cy, float32(game.GravityRadius)*s, 1, colGravity, true)
		}
	}
	for _, pl := range sc.Players {
		c := colOther
		if pl.ID == sc.Me {
			c = colMe
		}
		if !pl.Life.Alive() {
			c = colDead
		}
		cx, cy := pt(pl.Pos.X, pl.Pos.Y)
		vector.FillCircle(screen, cx, cy, game.PlayerRadius*s, c, false)
		if pl.Life.Alive() {
			ex, ey := pt(pl.Pos.X+math.Cos(pl.Aim)*game.PlayerRadius*1.8, pl.Pos.Y+math.Sin(pl.Aim)*game.PlayerRadius*1.8)
			vector.StrokeLine(screen, cx, cy, ex, ey, 2, colAim, true)
		}
	}
	a.drawHUD(screen, pn, sc)
	a.drawLink(screen, pn)
}

// drawLink shows, across the pane's arena, a connection that is silent,
// lost or just back.
func (a *app) drawLink(screen *ebiten.Image, pn *pane) {
	l := &pn.p.Link
	var msg string
	c := colLinkBad
	switch l.State(a.now) {
	case match.LinkSilent:
		msg = fmt.Sprintf("no news from the authority for %.1f s", a.now.Sub(l.Heard).Seconds())
		c = colLinkWarn
	case match.LinkLost:
		st := pn.p.C.Stats()
		msg = fmt.Sprintf("CONNECTION LOST %.0f s ago: %s\nreconnecting (%d attempts so far)", a.now.Sub(l.Lost).Seconds(), l.Why, st.Redials)
	case match.LinkRecovered:
		msg = "connected again: " + l.Again()
		c = colLinkGood
	}
	if pn.lag.Cut() {
		if msg != "" {
			msg += "\n"
		}
		msg += "link cut: every packet lost both ways [L restores it]"
	}
	if msg == "" {
		return
	}
	lines := strings.Split(msg, "\n")
	w := 0
	for _, l := range lines {
		w = max(w, len([]rune(l)))
	}
	bw, bh := float32(w*6+16), float32(len(lines)*16+8)
	x := float32(pn.x+game.ArenaWidth*pn.scale/2) - bw/2
	y := float32(pn.y+game.ArenaHeight*pn.scale/2) - bh/2
	vector.FillRect(screen, x, y, bw, bh, c, false)
	ebitenutil.DebugPrintAt(screen, msg, int(x)+8, int(y)+4)
}

// drawHUD shows the client's counters and the RTT/corrections graph.
func (a *app) drawHUD(screen *ebiten.Image, pn *pane, sc match.Scene) {
	st := pn.p.C.Stats()
	prof := pn.lag.Profile()
	comp := "on"
	if !a.comp {
		comp = "OFF (calls carry no view delay)"
	}
	var me game.Player
	for _, pl := range sc.Players {
		if pl.ID == sc.Me {
			me = pl
		}
	}
	lines := []string{
		fmt.Sprintf("lag %s (%v ± %v, %.1f%% loss each way)   [1-7]", prof.Name, prof.Delay, prof.Jitter, prof.Loss*100),
		fmt.Sprintf("ping %v   clock offset %v   view delay %v", st.RTT.Round(time.Millisecond), st.Offset.Round(100*time.Microsecond), st.ViewDelay.Round(time.Millisecond)),
		fmt.Sprintf("calls %d  mispredictions %d  re-runs %d  corrections %d", st.Calls, st.Mispredictions, st.Reruns, st.Corrections),
		fmt.Sprintf("kbps in %.1f  out %.1f   lag compensation %s [P]", st.BytesInPerSec*8/1000, st.BytesOutPerSec*8/1000, comp),
		fmt.Sprintf("health %d  kills %d  deaths %d   players %d   F1 help", me.Life.Health, me.Score.Kills, me.Score.Deaths, len(sc.Players)),
	}
	why := pn.p.LastCorrection
	if why == "" {
		why = "none yet"
	}
	lines = append(lines, "why did I snap: "+wrap(why, 52, 3))
	if pn.p.LastError != "" {
		lines = append(lines, "last refusal: "+wrap(pn.p.LastError, 52, 1))
	}
	text := strings.Join(lines, "\n")
	x, y := int(pn.x)+8, int(pn.y)+8
	if pn.scale < 1 {
		y = int(pn.y+game.ArenaHeight*pn.scale) + 8
	}
	h := 16 * (strings.Count(text, "\n") + 1)
	vector.FillRect(screen, float32(x-4), float32(y-4), hudW+16*float32(pn.scale), float32(h+8), colPanel, false)
	ebitenutil.DebugPrintAt(screen, text, x, y)

	// The graph: RTT as a line, corrections as bars, over GraphSpan.
	gx := float32(pn.x+game.ArenaWidth*pn.scale) - graphW - 8
	gy := float32(y - 4)
	vector.FillRect(screen, gx, gy, graphW, graphH+14, colPanel, false)
	ebitenutil.DebugPrintAt(screen, fmt.Sprintf("rtt / corrections %v", match.GraphSpan), int(gx)+2, int(gy))
	bs := pn.p.Graph.Buckets()
	maxRTT := 50 * time.Millisecond
	maxC := 1
	for _, b := range bs {
		maxRTT = max(maxRTT, b.RTT)
		maxC = max(maxC, b.Corrections)
	}
	step := float32(graphW) / float32(len(bs))
	base := gy + graphH + 12
	for i, b := range bs {
		bx := gx + float32(i)*step
		if b.Corrections > 0 {
			hh := float32(b.Corrections) / float32(maxC) * graphH / 2
			vector.FillRect(screen, bx, base-hh, max(step-1, 1), hh, colCorr, false)
		}
		if i > 0 && bs[i-1].RTT > 0 && b.RTT > 0 {
			y0 := base - float32(bs[i-1].RTT)/float32(maxRTT)*graphH
			y1 := base - float32(b.RTT)/float32(maxRTT)*graphH
			vector.StrokeLine(screen, bx-step, y0, bx, y1, 1, colRTT, true)
		}
	}
}

func wrap(s string, width, lines int) string {
	var out []string
	for len(s) > 0 && len(out) < lines {
		n := min(width, len(s))
		out = append(out, s[:n])
		s = s[n:]
	}
	return strings.Join(out, "\n  ")
}

func drawHelp(screen *ebiten.Image) {
	const text = `Rewind shooter

WASD        move (predicted at once, corrected smoothly)
mouse       aim          click   shoot (hitscan, checked at your view time)
G           gravity pull        shift+G   gravity push
1-7         lag profile: none lan broadband wifi mobile transatlantic awful
P           lag compensation on/off: off, your shots are checked against
            where targets are now, not where you saw them
L           cut the link (every packet lost) / restore it: the HUD shows the
            silence, the lost session and the reconnection
F1          this help

Green is you (predicted), red are the others (shown a view delay behind).
The HUD counts mispredictions, re-runs and corrections, and says why the
last correction happened.`
	vector.FillRect(screen, 200, 150, 880, 260, colPanel, false)
	ebitenutil.DebugPrintAt(screen, text, 220, 165)
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
