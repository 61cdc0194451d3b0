package main

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/vector"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/physics"
)

// overlays are the netcode views a key toggles over the arena.
type overlays struct {
	ghost       bool // F2: the authority's confirmed own position
	hitboxes    bool // F3: the rewound hitbox that decided each shot
	corrections bool // F4: each correction's paths and cause, where it happened
}

// overlayNames are the names -overlays takes.
var overlayNames = []string{"ghost", "hitboxes", "corrections"}

// set turns on the overlays named (comma-separated, or "all"); it reports
// an unknown name.
func (o *overlays) set(names string) error {
	for _, n := range strings.Split(names, ",") {
		switch strings.TrimSpace(n) {
		case "":
		case "all":
			*o = overlays{true, true, true}
		case "ghost":
			o.ghost = true
		case "hitboxes":
			o.hitboxes = true
		case "corrections":
			o.corrections = true
		default:
			return fmt.Errorf("unknown overlay %q (want %s or all)", n, strings.Join(overlayNames, ", "))
		}
	}
	return nil
}

// How long the overlays keep a shot's hitboxes on show (a correction's
// drawing stays match.NoteFade), and how many corrections they draw at
// once (the latest).
const (
	hitboxShown   = 1500 * time.Millisecond
	maxNotesShown = 3
	// ghostLabelled is how far (px) the ghost must be from the drawn
	// player for a label: the smoother keeps the two a pixel or two apart
	// for a moment after each small correction.
	ghostLabelled = 4
)

var (
	colGhost     = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colRewound   = color.RGBA{0xff, 0xe0, 0x40, 0xff}
	colNearMiss  = color.RGBA{0xa0, 0xa0, 0xb0, 0xff}
	colAtW       = color.RGBA{0x90, 0x90, 0x90, 0xff}
	colPredPath  = color.RGBA{0xf0, 0x50, 0xd0, 0xff}
	colAuthPath  = color.RGBA{0x60, 0xf0, 0xff, 0xff}
	colCauseMark = color.RGBA{0xff, 0x90, 0x30, 0xff}
)

// fade returns c with its alpha scaled by f (0..1), premultiplied.
func fade(c color.RGBA, f float64) color.RGBA {
	c.A = uint8(float64(c.A) * min(max(f, 0), 1))
	return premultiply(c)
}

// tagText is text the overlays put on the arena, drawn over the players.
type tagText struct {
	text string
	x, y float32
	f    float64 // fade
}

// drawOverlaysUnder draws the shapes of the overlays that belong under the
// players (rewound hitboxes and corrections) and returns their labels.
func (a *app) drawOverlaysUnder(dst *ebiten.Image, pn *pane, sc match.Scene) []tagText {
	var tags []tagText
	s := float32(pn.scale)
	if a.overlay.hitboxes {
		for _, n := range pn.p.ShotNotes(a.now) {
			age := a.now.Sub(n.Wall)
			if n.Target == 0 || age > hitboxShown {
				continue
			}
			f := 1 - float64(age)/float64(hitboxShown)
			tags = append(tags, drawHitbox(dst, pn, n.Shot, n.Rewound, n.AtW, n.Hit, n.Shot.Shooter == sc.Me || n.Hit, f)...)
		}
	}
	if a.overlay.corrections {
		notes := pn.p.Notes(a.now)
		// The latest few only: a late input corrects a chain of calls at
		// once, and their drawings would cover each other.
		notes = notes[max(0, len(notes)-maxNotesShown):]
		for _, n := range notes {
			f := 1 - float64(a.now.Sub(n.Wall))/float64(match.NoteFade)
			switch {
			case len(n.Pred) > 1 || len(n.Auth) > 1:
				// The predicted path dashed, the authority's solid, an
				// arrow from where the prediction had the player to where
				// the authority has it; the label where the player ends.
				var x, y float32
				if len(n.Pred) > 1 {
					polyline(dst, pn, n.Pred, fade(colPredPath, f), true)
					x, y = pn.pt(n.Pred[len(n.Pred)-1].X, n.Pred[len(n.Pred)-1].Y)
				}
				if len(n.Auth) > 1 {
					polyline(dst, pn, n.Auth, fade(colAuthPath, f), false)
					ax, ay := pn.pt(n.Auth[len(n.Auth)-1].X, n.Auth[len(n.Auth)-1].Y)
					if len(n.Pred) > 1 && math.Hypot(float64(ax-x), float64(ay-y)) > 2 {
						arrow(dst, x, y, ax, ay, fade(colAuthPath, f), s)
					}
					x, y = ax, ay
				}
				tags = append(tags, a.noteTag(dst, pn, n, x, y, f)...)
			case n.Shot:
				for _, v := range []struct {
					shot game.Shot
					c    color.RGBA
					dash bool
				}{{n.PredShot, colPredPath, true}, {n.AuthShot, colAuthPath, false}} {
					x0, y0 := pn.pt(v.shot.Origin.X, v.shot.Origin.Y)
					x1, y1 := pn.pt(v.shot.End.X, v.shot.End.Y)
					if v.dash {
						dashed(dst, x0, y0, x1, y1, fade(v.c, f))
					} else {
						vector.StrokeLine(dst, x0, y0, x1, y1, 1.5, fade(v.c, f), false)
					}
				}
				x, y := pn.pt(n.AuthShot.End.X, n.AuthShot.End.Y)
				tags = append(tags, a.noteTag(dst, pn, n, x, y, f)...)
			}
		}
	}
	return tags
}

// drawHitbox draws a shot's rewound hitbox: where the target (or, for a
// miss, the player nearest the line) was at the shooter's view time, what
// the shot was checked against, and, faint, where it was at the shot's
// time, with an arrow between: how far lag compensation took the shot
// back. With label, it returns the label saying so. f fades it.
func drawHitbox(dst *ebiten.Image, pn *pane, shot game.Shot, rewound, atW physics.Vec2, hit, label bool, f float64) []tagText {
	s := float32(pn.scale)
	rx, ry := pn.pt(rewound.X, rewound.Y)
	wx, wy := pn.pt(atW.X, atW.Y)
	c := colRewound
	if !hit {
		c = colNearMiss
	}
	vector.StrokeCircle(dst, wx, wy, game.PlayerRadius*s, 1, fade(colAtW, f*0.7), false)
	if math.Hypot(float64(wx-rx), float64(wy-ry)) > 2 {
		arrow(dst, rx, ry, wx, wy, fade(colAtW, f), s)
	}
	vector.StrokeCircle(dst, rx, ry, game.PlayerRadius*s, 2, fade(c, f), false)
	if !label {
		return nil
	}
	rewind := time.Duration(shot.Time - shot.ViewTime).Round(time.Millisecond)
	what := "hit"
	if !hit {
		what = "missed"
	}
	return []tagText{{fmt.Sprintf("%s, rewound %v", what, rewind), rx + (game.PlayerRadius+4)*s, ry - lineH/2, f}}
}

// noteTag labels a correction where it happened, and marks its cause:
// where the player whose write made the difference was when it wrote.
func (a *app) noteTag(dst *ebiten.Image, pn *pane, n match.Note, x, y float32, f float64) []tagText {
	var tags []tagText
	if n.CauseAtOK {
		cx, cy := pn.pt(n.CauseAt.X, n.CauseAt.Y)
		dashed(dst, x, y, cx, cy, fade(colCauseMark, f))
		var path vector.Path
		d := float32(5)
		path.MoveTo(cx-d, cy-d)
		path.LineTo(cx+d, cy+d)
		path.MoveTo(cx-d, cy+d)
		path.LineTo(cx+d, cy-d)
		stroke(dst, &path, 2, fade(colCauseMark, f))
		tags = append(tags, tagText{"cause: " + n.CauseText, cx + 8, cy + 4, f})
	}
	cols := 44
	if pn.scale < 1 {
		cols = 30
	}
	lines := fit(n.Text, cols, 3, "  ")
	return append(tags, tagText{strings.Join(lines, "\n"), x + 10, y + 6, f})
}

// drawOverlaysOver draws the overlays that belong over the players (the
// ghost) and the labels.
func (a *app) drawOverlaysOver(dst *ebiten.Image, pn *pane, sc match.Scene, tags []tagText) {
	if a.overlay.ghost && sc.GhostOK {
		tags = append(tags, a.drawGhost(dst, pn, sc)...)
	}
	for _, t := range placeTags(tags, pn.arenaRect()) {
		tag(dst, t.text, t.x, t.y, t.f)
	}
}

// placeTags keeps each label inside r and moves it off the labels placed
// before it (down, then up, a label's height at a time), as far as a few
// tries allow.
func placeTags(tags []tagText, r image.Rectangle) []tagText {
	var placed []image.Rectangle
	out := make([]tagText, 0, len(tags))
	for _, t := range tags {
		lines := strings.Split(t.text, "\n")
		w, h := widest(lines)*glyphW+6, len(lines)*lineH+2
		at := func(y float32) image.Rectangle {
			x := int(max(min(t.x, float32(r.Max.X-w-1)), float32(r.Min.X+3)))
			yy := int(max(min(y, float32(r.Max.Y-h-1)), float32(r.Min.Y+1)))
			return image.Rect(x, yy, x+w, yy+h)
		}
		box := at(t.y)
		for try := 1; try <= 6; try++ {
			if !slices.ContainsFunc(placed, box.Overlaps) {
				break
			}
			step := float32((try + 1) / 2 * (h + 2))
			if try%2 == 0 {
				step = -step
			}
			box = at(t.y + step)
		}
		placed = append(placed, box)
		t.x, t.y = float32(box.Min.X), float32(box.Min.Y)
		out = append(out, t)
	}
	return out
}

// drawGhost rings the own player where the authority has confirmed it and
// returns the label saying how far behind the prediction that is.
func (a *app) drawGhost(dst *ebiten.Image, pn *pane, sc match.Scene) []tagText {
	s := float32(pn.scale)
	gx, gy := pn.pt(sc.Ghost.X, sc.Ghost.Y)
	vector.StrokeCircle(dst, gx, gy, (game.PlayerRadius+3)*s, 2, fade(colGhost, 0.9), false)
	for _, pl := range sc.Players {
		if pl.ID != sc.Me {
			continue
		}
		d := sc.Ghost.Sub(pl.Pos).Len()
		if d > ghostLabelled {
			mx, my := pn.pt(pl.Pos.X, pl.Pos.Y)
			dashed(dst, mx, my, gx, gy, fade(colGhost, 0.7))
			text := fmt.Sprintf("confirmed: %.0f px from the prediction", d)
			// On the side of the ghost away from the player.
			x := gx + (game.PlayerRadius+6)*s
			if gx < mx {
				x = gx - (game.PlayerRadius+6)*s - float32(len(text)*glyphW+6)
			}
			return []tagText{{text, x, gy - lineH/2, 1}}
		}
	}
	return nil
}

// tag prints text on a translucent box at (x, y), faded by f.
func tag(dst *ebiten.Image, text string, x, y float32, f float64) {
	if f <= 0.05 {
		return
	}
	lines := strings.Split(text, "\n")
	w := float32(widest(lines)*glyphW + 6)
	h := float32(len(lines)*lineH + 2)
	vector.FillRect(dst, x-3, y-1, w, h, fade(color.RGBA{0, 0, 0, 0xb0}, f), false)
	printLines(dst, lines, int(x), int(y))
}

// polyline draws the arena points ps as a line, dashed or solid.
func polyline(dst *ebiten.Image, pn *pane, ps []physics.Vec2, c color.RGBA, dash bool) {
	var path vector.Path
	for i := 1; i < len(ps); i++ {
		x0, y0 := pn.pt(ps[i-1].X, ps[i-1].Y)
		x1, y1 := pn.pt(ps[i].X, ps[i].Y)
		if dash {
			dashes(&path, x0, y0, x1, y1)
		} else {
			if i == 1 {
				path.MoveTo(x0, y0)
			}
			path.LineTo(x1, y1)
		}
	}
	stroke(dst, &path, 2, c)
}

// dashed draws a dashed line.
func dashed(dst *ebiten.Image, x0, y0, x1, y1 float32, c color.RGBA) {
	var path vector.Path
	dashes(&path, x0, y0, x1, y1)
	stroke(dst, &path, 1.5, c)
}

// dashes adds the dashes of a line to path.
func dashes(path *vector.Path, x0, y0, x1, y1 float32) {
	const dash, gap = 6, 4
	l := float32(math.Hypot(float64(x1-x0), float64(y1-y0)))
	if l == 0 {
		return
	}
	dx, dy := (x1-x0)/l, (y1-y0)/l
	for t := float32(0); t < l; t += dash + gap {
		e := min(t+dash, l)
		path.MoveTo(x0+dx*t, y0+dy*t)
		path.LineTo(x0+dx*e, y0+dy*e)
	}
}

// arrow draws a line from (x0, y0) with a head at (x1, y1).
func arrow(dst *ebiten.Image, x0, y0, x1, y1 float32, c color.RGBA, s float32) {
	l := float32(math.Hypot(float64(x1-x0), float64(y1-y0)))
	if l == 0 {
		return
	}
	var path vector.Path
	path.MoveTo(x0, y0)
	path.LineTo(x1, y1)
	dx, dy := (x1-x0)/l, (y1-y0)/l
	hl := 8 * max(s, 0.6)
	for _, sgn := range []float32{1, -1} {
		path.MoveTo(x1, y1)
		path.LineTo(x1-dx*hl+sgn*dy*hl/2, y1-dy*hl-sgn*dx*hl/2)
	}
	stroke(dst, &path, 1.5, c)
}

// stroke draws path in one call, in the premultiplied colour c. Overlay
// shapes are not anti-aliased: each anti-aliased draw takes an offscreen
// pass of its own, and with every overlay on under software rendering
// (Xvfb) 600 frames took 38-43 s anti-aliased against 29-35 s without.
func stroke(dst *ebiten.Image, path *vector.Path, width float32, c color.RGBA) {
	op := &vector.DrawPathOptions{}
	op.ColorScale.ScaleWithColor(c)
	vector.StrokePath(dst, path, &vector.StrokeOptions{Width: width}, op)
}
