package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/internal/replay"
)

// TestServeCommandLine: -serve is the authority binary's command line: -h
// lists its durability and cluster flags (exit 0), a flag of the window's
// is refused (exit 2).
func TestServeCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-serve", "127.0.0.1:0", "-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-serve -h: exit %d, want 0\n%s", code, stderr.String())
	}
	for _, f := range []string{"-data", "-data-dirs", "-parity", "-wal-flush", "-recover", "-node-id", "-gossip", "-join", "-cluster-key", "-cluster-size", "-cpuprofile"} {
		if !strings.Contains(stderr.String(), "\n  "+f+" ") {
			t.Errorf("-serve -h does not list %s:\n%s", f, stderr.String())
		}
	}
	stderr.Reset()
	if code := run([]string{"-serve", "127.0.0.1:0", "-bots", "3"}, &stdout, &stderr); code != 2 {
		t.Errorf("-serve with -bots: exit %d, want 2\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "-bots") {
		t.Errorf("the refusal does not name -bots: %s", stderr.String())
	}
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"-serve", "a:1"}, true}, {[]string{"--serve=a:1"}, true}, {[]string{"-data", "d", "-serve", "a:1"}, true},
		{nil, false}, {[]string{"-headless"}, false}, {[]string{"-server"}, false}, {[]string{"-report", "serve"}, false},
		{[]string{"--", "-serve"}, false},
	} {
		if got := serving(tt.args); got != tt.want {
			t.Errorf("serving(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestReplay records a headless match of bots (its authority, the
// program's own -serve, keeps an archive with -data), then plays it back:
// -replay -headless prints the summary the archive holds, and the replay
// window, under Xvfb, draws each living player where the archive's values
// put it at the exact time the screenshot was taken.
func TestReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "match")
	out, err := program(ctx, false, "-headless", "-bots", "4", "-duration", "3s", "-lag", "none", "-data", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("the recorded match: %v\n%s", err, out)
	}
	m, err := replay.Open([]string{dir}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Players()); got != 4 {
		t.Fatalf("the archive holds %d players, want 4", got)
	}
	var want bytes.Buffer
	if err := m.Summarise().WriteText(&want); err != nil {
		t.Fatal(err)
	}
	out, err = program(ctx, false, "-replay", dir, "-headless").CombinedOutput()
	if err != nil || !strings.Contains(string(out), want.String()) {
		t.Fatalf("-replay -headless (%v) printed:\n%s\nwant the summary:\n%s", err, out, want.String())
	}
	t.Logf("%s", out)

	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not found: `make deps` installs Xvfb, which the window test needs")
	}
	// The picture's time is exact: -from, then -frames steps of the
	// speed's share of a 60 Hz frame.
	const frames, speed = 30, 0.5
	from := time.Duration(m.End-m.Start) / 2
	at := m.Start + int64(from) + frames*(&replayApp{speed: speed}).step()
	var viewer uint32
	for _, id := range m.Players() {
		if p, ok := m.Player(id, at); ok && p.Life.Alive() {
			viewer = id
			break
		}
	}
	if viewer == 0 {
		t.Skipf("no player alive at %v into the match", time.Duration(at-m.Start))
	}
	file := filepath.Join(t.TempDir(), "replay.png")
	out, err = program(ctx, true, "-replay", dir, "-from", from.String(), "-speed", strconv.FormatFloat(speed, 'g', -1, 64),
		"-frames", strconv.Itoa(frames), "-player", strconv.FormatUint(uint64(viewer), 10), "-screenshot", file).CombinedOutput()
	if err != nil {
		t.Fatalf("replay window: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, arenaW+sideW, arenaH) {
		t.Fatalf("screenshot is %v", got)
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
	// Pixels of colour c within r px of (x, y).
	near := func(x, y float64, r int, c color.RGBA) int {
		n := 0
		for dy := -r; dy <= r; dy++ {
			for dx := -r; dx <= r; dx++ {
				px, py := int(math.Round(x))+dx, int(math.Round(y))+dy
				if dx*dx+dy*dy > r*r || !image.Pt(px, py).In(image.Rect(0, 0, arenaW, arenaH)) {
					continue
				}
				i := rgba.PixOffset(px, py)
				if (color.RGBA{rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3]}) == c {
					n++
				}
			}
		}
		return n
	}
	// A disc of radius 10 is about 314 px; an aim line or a shot may
	// cross it.
	for _, id := range m.Players() {
		p, ok := m.Player(id, at)
		if !ok {
			continue
		}
		c := colOther
		switch {
		case !p.Life.Alive():
			c = colDead
		case id == viewer:
			c = colMe
		}
		if n := near(p.Pos.X, p.Pos.Y, 10, c); n < 150 {
			t.Errorf("player %d (alive %v) at (%.0f, %.0f): %d pixels of %v around, want at least 150", id, p.Life.Alive(), p.Pos.X, p.Pos.Y, n, c)
		}
	}
	if t.Failed() {
		t.Logf("replay output:\n%s", out)
	}
	if *saveReplay != "" {
		if err := os.WriteFile(*saveReplay, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
