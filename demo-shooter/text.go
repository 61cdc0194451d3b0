package main

import (
	"strings"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/ebitenutil"
	"github.com/hajimehoshi/ebiten/v2/vector"
)

// The debug font's cell: every glyph is glyphW wide, every line lineH
// high. Text is fitted to its box by counting cells.
const (
	glyphW = 6
	lineH  = 16
	// ellipsis ends a line cut short (the debug font has no "…").
	ellipsis = "..."
)

// fit word-wraps s into lines of at most cols characters, at most
// maxLines of them, continuation lines indented by indent. A word longer
// than a line is split; text that does not fit ends the last line with
// ellipsis. Newlines in s start new (unindented) lines.
func fit(s string, cols, maxLines int, indent string) []string {
	ind := []rune(indent)
	if cols <= len(ind)+len(ellipsis) || maxLines <= 0 {
		return nil
	}
	var lines []string
	cut := false
	emit := func(l []rune) bool {
		if len(lines) == maxLines {
			cut = true
			return false
		}
		lines = append(lines, string(l))
		return true
	}
paras:
	for _, para := range strings.Split(s, "\n") {
		var cur []rune
		start := 0 // where the line's own text starts (after the indent)
		words := strings.Fields(para)
		for i := 0; i < len(words); {
			w := []rune(words[i])
			sep := 0
			if len(cur) > start {
				sep = 1
			}
			if len(cur)+sep+len(w) <= cols {
				if sep == 1 {
					cur = append(cur, ' ')
				}
				cur = append(cur, w...)
				i++
				continue
			}
			if len(cur) == start { // longer than a line: split it
				n := cols - len(cur)
				cur = append(cur, w[:n]...)
				words[i] = string(w[n:])
			}
			if !emit(cur) {
				break paras
			}
			cur = append([]rune(nil), ind...)
			start = len(cur)
		}
		if !emit(cur) {
			break
		}
	}
	if cut {
		last := []rune(lines[len(lines)-1])
		if n := cols - len(ellipsis); len(last) > n {
			last = last[:n]
		}
		lines[len(lines)-1] = strings.TrimRight(string(last), " ") + ellipsis
	}
	return lines
}

// fitAll fits each of texts (see fit) into cols, each at most maxLines.
func fitAll(cols, maxLines int, texts ...string) []string {
	var out []string
	for _, t := range texts {
		out = append(out, fit(t, cols, maxLines, "  ")...)
	}
	return out
}

// widest returns the widest line's width in characters.
func widest(lines []string) int {
	w := 0
	for _, l := range lines {
		w = max(w, len([]rune(l)))
	}
	return w
}

// printLines draws lines from (x, y) down and returns the y below them.
func printLines(dst *ebiten.Image, lines []string, x, y int) int {
	if len(lines) > 0 {
		ebitenutil.DebugPrintAt(dst, strings.Join(lines, "\n"), x, y)
	}
	return y + len(lines)*lineH
}

// box draws lines in a filled box centred on (cx, cy), the box sized to
// the text.
func box(dst *ebiten.Image, lines []string, cx, cy float32, fill interface {
	RGBA() (r, g, b, a uint32)
}) {
	if len(lines) == 0 {
		return
	}
	w := float32(widest(lines)*glyphW + 16)
	h := float32(len(lines)*lineH + 8)
	x, y := cx-w/2, cy-h/2
	vector.FillRect(dst, x, y, w, h, fill, false)
	printLines(dst, lines, int(x)+8, int(y)+4)
}
