package main

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var saveShot = flag.String("shooter.save", "", "also copy the screenshot test's PNG to this file (docs/screenshot.png)")

// mainEnv makes the test binary run the program itself (see TestMain), so
// the window tests run the real program without building it separately.
const mainEnv = "REWIND_SHOOTER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		var args []string
		for _, a := range os.Args[1:] {
			if !strings.HasPrefix(a, "-test.") {
				args = append(args, a)
			}
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// program returns a command that runs the program with args, under
// xvfb-run when xvfb is set.
func program(ctx context.Context, xvfb bool, args ...string) *exec.Cmd {
	self := []string{os.Args[0], "-test.run=^$"}
	var cmd *exec.Cmd
	if xvfb {
		cmd = exec.CommandContext(ctx, "xvfb-run", append(append([]string{"-a", "-s", "-screen 0 1280x720x24"}, self...), args...)...)
	} else {
		cmd = exec.CommandContext(ctx, self[0], append(self[1:], args...)...)
	}
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	return cmd
}

// TestScreenshot runs the real window under Xvfb for a few frames (an
// embedded authority, this client and 4 bots on a perfect link) and
// checks the saved PNG shows the arena: the own player's colour, another
// player's and the walls' are on it.
func TestScreenshot(t *testing.T) {
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not found: `make deps` installs Xvfb, which the window test needs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "shot.png")
	cmd := program(ctx, true, "-screenshot", file, "-frames", "90", "-lag", "none", "-bots", "4")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("window run: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, screenW, screenH) {
		t.Errorf("screenshot is %v, want %dx%d", got, screenW, screenH)
	}
	counts := map[color.RGBA]int{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			counts[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}]++
		}
	}
	// A player disc of radius 14 covers about 600 px (less its aim line);
	// walls far more. Bots shoot from the first frames, so any player may
	// be dead (grey) by the last one.
	if n := counts[colMe] + counts[colDead]; n < 300 {
		t.Errorf("own player (colour %v, or %v dead): %d pixels, want at least 300", colMe, colDead, n)
	}
	if n := counts[colMe] + counts[colOther] + counts[colDead]; n < 4*450 {
		t.Errorf("players (colours %v, %v, %v): %d pixels, want at least %d for 5 players", colMe, colOther, colDead, n, 4*450)
	}
	if n := counts[colWall]; n < 5000 {
		t.Errorf("walls (colour %v): %d pixels, want at least 5000", colWall, n)
	}
	if n := counts[colFloor]; n < 100000 {
		t.Errorf("floor (colour %v): %d pixels, want at least 100000", colFloor, n)
	}
	if *saveShot != "" {
		if err := os.WriteFile(*saveShot, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoDisplay: without a display the window mode exits non-zero and
// points at -headless.
func TestNoDisplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := program(ctx, false, "-frames", "1")
	var env []string
	for _, e := range cmd.Env {
		if !strings.HasPrefix(e, "DISPLAY=") && !strings.HasPrefix(e, "WAYLAND_DISPLAY=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "-headless") {
		t.Errorf("message does not suggest -headless:\n%s", out)
	}
}

// TestBadFlagExits2: a bad command line exits 2 with the reason.
func TestBadFlagExits2(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-bots", "999"}, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "-bots 999") {
		t.Errorf("stderr %q does not name the flag", stderr.String())
	}
}

// TestHelpExits0: -h prints the usage on stdout and exits 0.
func TestHelpExits0(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d, want 0; stderr %q", arg, code, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "Usage: demo-shooter") || !strings.Contains(stdout.String(), "-headless") {
			t.Errorf("%s: stdout %q is not the usage", arg, stdout.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("%s: stderr %q, want nothing", arg, stderr.String())
		}
	}
}
