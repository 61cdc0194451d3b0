package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/demo-shooter/internal/quality"
)

var (
	saveShot   = flag.String("shooter.save", "", "also copy the screenshot test's PNG to this file (docs/screenshot.png)")
	saveReplay = flag.String("shooter.save-replay", "", "also copy the replay test's PNG to this file")
)

// mainEnv makes the test binary run the program itself (see TestMain), so
// the window tests run the real program without building it separately.
const mainEnv = "REWIND_SHOOTER_TEST_MAIN"

// pidEnv names a file the program run by a test writes its process id to,
// so the test can signal it under xvfb-run.
const pidEnv = "REWIND_SHOOTER_TEST_PIDFILE"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		if f := os.Getenv(pidEnv); f != "" {
			if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
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
// embedded authority, this client and 4 bots on a perfect link), once as
// one view with every overlay on and once split, and checks the saved
// PNG: its size; the arena shows the own player's colour, other players'
// and the walls'; the panels (HUD and graphs) hold none of the arena's
// floor, so they never cover it; in the split view both arenas are drawn.
func TestScreenshot(t *testing.T) {
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not found: `make deps` installs Xvfb, which the window test needs")
	}
	tests := []struct {
		name   string
		args   []string
		size   image.Point
		arenas []image.Rectangle
	}{
		{"one view, overlays on", []string{"-overlays", "all"}, image.Pt(arenaW+sideW, arenaH),
			[]image.Rectangle{image.Rect(0, 0, arenaW, arenaH)}},
		{"split", []string{"-split"}, image.Pt(arenaW, arenaH),
			[]image.Rectangle{image.Rect(0, 0, arenaW/2, arenaH/2), image.Rect(arenaW/2, 0, arenaW, arenaH/2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			file := filepath.Join(t.TempDir(), "shot.png")
			args := append([]string{"-screenshot", file, "-frames", "90", "-lag", "none", "-bots", "4"}, tt.args...)
			out, err := program(ctx, true, args...).CombinedOutput()
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
			if got := img.Bounds(); got != (image.Rectangle{Max: tt.size}) {
				t.Fatalf("screenshot is %v, want %v", got, tt.size)
			}
			// The pixels as RGBA, read directly (img.At per pixel is slow
			// under the race detector).
			rgba := image.NewRGBA(img.Bounds())
			draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
			at := func(x, y int) color.RGBA {
				i := rgba.PixOffset(x, y)
				return color.RGBA{rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3]}
			}
			counts := map[color.RGBA]int{}
			for i, ar := range tt.arenas {
				floor := 0
				for y := ar.Min.Y; y < ar.Max.Y; y++ {
					for x := ar.Min.X; x < ar.Max.X; x++ {
						c := at(x, y)
						counts[c]++
						if c == colFloor {
							floor++
						}
					}
				}
				if want := ar.Dx() * ar.Dy() / 3; floor < want {
					t.Errorf("arena %d: %d floor pixels, want at least %d", i, floor, want)
				}
			}
			// Outside the arenas (the panels) no floor.
			inArena := func(x, y int) bool {
				for _, ar := range tt.arenas {
					if x >= ar.Min.X && x < ar.Max.X && y >= ar.Min.Y && y < ar.Max.Y {
						return true
					}
				}
				return false
			}
			for y := range tt.size.Y {
				for x := range tt.size.X {
					if !inArena(x, y) && at(x, y) == colFloor {
						t.Fatalf("arena floor at (%d, %d), in a panel", x, y)
					}
				}
			}
			// A player disc of radius 14 covers about 600 px at full
			// size (less its aim line); walls far more. Bots shoot from
			// the first frames, so any player may be dead (grey) by the
			// last one.
			scale := float64(tt.arenas[0].Dx()) / arenaW
			area := func(n float64) int { return int(n * scale * scale) }
			if n := counts[colMe] + counts[colDead]; n < area(300) {
				t.Errorf("own player (colour %v, or %v dead): %d pixels, want at least %d", colMe, colDead, n, area(300))
			}
			if n := counts[colMe] + counts[colOther] + counts[colDead]; n < area(4*450) {
				t.Errorf("players (colours %v, %v, %v): %d pixels, want at least %d for 5 players", colMe, colOther, colDead, n, area(4*450))
			}
			if n := counts[colWall]; n < area(5000) {
				t.Errorf("walls (colour %v): %d pixels, want at least %d", colWall, n, area(5000))
			}
			if *saveShot != "" && len(tt.arenas) == 1 {
				if err := os.WriteFile(*saveShot, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
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

// output collects a process's output for a test that reads it while the
// process runs.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor polls cond until it holds or ctx ends, then fails the test
// with what.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// started is a program a test runs: its command and output.
type started struct {
	cmd    *exec.Cmd
	out    *output
	pid    int // the program itself (under xvfb-run: its child)
	waited chan error
}

// start runs the program with args (under xvfb-run when xvfb is set) and
// waits for its process id. The test's cleanup kills it, by that id, if it
// is still running.
func start(t *testing.T, ctx context.Context, xvfb bool, args ...string) *started {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := program(ctx, xvfb, args...)
	cmd.Env = append(cmd.Env, pidEnv+"="+pidFile)
	cmd.WaitDelay = 5 * time.Second
	s := &started{cmd: cmd, out: &output{}, waited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if s.pid != 0 && syscall.Kill(s.pid, 0) == nil {
			syscall.Kill(s.pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		<-s.waited
	})
	waitFor(t, ctx, "the program's pid", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		s.pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	return s
}

// exit waits, at most until ctx ends, for the program to exit and returns
// its status.
func (s *started) exit(t *testing.T, ctx context.Context) int {
	t.Helper()
	select {
	case err := <-s.waited:
		s.waited <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v\n%s", err, s.out)
		}
		return 0
	case <-ctx.Done():
		t.Fatalf("the program did not exit: %v\n%s", ctx.Err(), s.out)
		return -1
	}
}

// TestSignalEndsWindow: SIGINT and SIGTERM each end the window, with exit
// status 0, after the embedded authority has logged a clean stop. The
// waits are bounded and poll; how long the exit took is logged, not
// asserted, and the graceful shutdown is given far longer than its
// default 600 ms, so that a loaded machine does not cut it short.
func TestSignalEndsWindow(t *testing.T) {
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not found: `make deps` installs Xvfb, which the window test needs")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p := start(t, ctx, true, "-lag", "none", "-bots", "2", "-shutdown-wait", "20s")
			waitFor(t, ctx, "the window to open", func() bool { return strings.Contains(p.out.String(), readyLine) })
			sent := time.Now()
			if err := syscall.Kill(p.pid, sig); err != nil {
				t.Fatal(err)
			}
			if code := p.exit(t, ctx); code != 0 {
				t.Fatalf("exit status %d after %v, want 0\n%s", code, sig, p.out)
			}
			t.Logf("exited %v after %v:\n%s", time.Since(sent).Round(time.Millisecond), sig, p.out)
			out := p.out.String()
			// The game loop acts on the signal at its next step, or, when
			// it has not stepped for a while (a loaded machine), the
			// signal's side does; both shut down the same way.
			if !strings.Contains(out, "shooter: interrupted") {
				t.Errorf("no word of the interrupt:\n%s", out)
			}
			if !strings.Contains(out, match.StoppedMsg) {
				t.Errorf("the embedded authority did not log %q:\n%s", match.StoppedMsg, out)
			}
		})
	}
}

// TestWindowReconnects: a window playing against a separate authority
// shows when that authority goes away and reconnects when one listens at
// the address again (a new session: the new authority does not know the
// old one's players, and the window joins again).
func TestWindowReconnects(t *testing.T) {
	if _, err := exec.LookPath("xvfb-run"); err != nil {
		t.Skip("xvfb-run not found: `make deps` installs Xvfb, which the window test needs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	serve := func(addr string) *started {
		s := start(t, ctx, false, "-serve", addr)
		waitFor(t, ctx, "the authority to listen", func() bool { return strings.Contains(s.out.String(), "authority listening on ") })
		return s
	}
	srv := serve("127.0.0.1:0")
	_, rest, _ := strings.Cut(srv.out.String(), "authority listening on ")
	addr, _, _ := strings.Cut(rest, "\n")
	win := start(t, ctx, true, "-connect", addr, "-lag", "none", "-bots", "0", "-shutdown-wait", "20s")
	waitFor(t, ctx, "the window to open", func() bool { return strings.Contains(win.out.String(), readyLine) })

	// A graceful stop tells the client at once.
	if err := syscall.Kill(srv.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.exit(t, ctx); code != 0 {
		t.Fatalf("authority exit status %d\n%s", code, srv.out)
	}
	t.Logf("the first authority stopped:\n%s", srv.out)
	waitFor(t, ctx, "the window to report the lost connection", func() bool {
		return strings.Contains(win.out.String(), "you1: connection lost")
	})
	serve(addr)
	waitFor(t, ctx, "the window to reconnect", func() bool {
		return strings.Contains(win.out.String(), "you1: connected again")
	})
	if err := syscall.Kill(win.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := win.exit(t, ctx); code != 0 {
		t.Errorf("window exit status %d\n%s", code, win.out)
	}
	t.Logf("window output:\n%s", win.out)
}

// TestClusterKillRun runs the headless match against a cluster of three
// authority processes with one killed by SIGKILL mid-match (the flags
// -cluster and -kill-node-after, as a user runs them, on a few bots for
// seconds) and checks what must hold whatever the machine's speed: every
// call a bot saw confirmed is on both survivors, once; no call ran twice;
// the survivors hold the same values; the killed node's bots failed over
// and got calls confirmed through another node. No timing is asserted.
// The stall case stops the node (SIGSTOP, -stall-node-for) for 4 s
// instead, as a frozen process, and continues it: its bots fail over
// the same, and all three nodes, the stalled one among them, must then
// hold every confirmed call once and the same values.
func TestClusterKillRun(t *testing.T) {
	if testing.Short() {
		t.Skip("three authority processes and a match")
	}
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"kill", nil},
		{"stall", []string{"-stall-node-for", "4s"}},
	} {
		t.Run(tc.name, func(t *testing.T) { clusterKillRun(t, tc.flags) })
	}
}

func clusterKillRun(t *testing.T, flags []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound against a hang
	defer cancel()
	report := filepath.Join(t.TempDir(), "cluster.json")
	args := append([]string{"-headless", "-cluster", "3", "-kill-node-after", "3s", "-bots", "4",
		"-duration", "12s", "-profiles", "mobile", "-report", report}, flags...)
	out, err := program(ctx, false, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	f, err := os.Open(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := quality.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Profiles[0]
	c := p.Cluster
	if c == nil {
		t.Fatalf("no cluster figures in the report:\n%s", out)
	}
	t.Logf("%+v", *c)
	stalled := len(flags) > 0
	switch {
	case !stalled && (c.Nodes != 3 || c.Killed != 1):
		t.Errorf("%d nodes, %d killed: want 3 and 1", c.Nodes, c.Killed)
	case stalled && (c.Nodes != 3 || c.Killed != 0 || c.StalledMs != 4000):
		t.Errorf("%d nodes, %d killed, stalled %.0f ms: want 3, 0 and 4000", c.Nodes, c.Killed, c.StalledMs)
	case c.ConfirmedCalls == 0 || c.ComparedPaths == 0:
		t.Errorf("nothing checked: %d confirmed calls, %d paths compared", c.ConfirmedCalls, c.ComparedPaths)
	}
	if c.LostConfirmedCalls != 0 || c.DuplicateCalls != 0 || c.StrayTraces != 0 || c.ReplicaDivergence != 0 {
		t.Errorf("%d confirmed calls lost, %d applied twice, %d stray traces, %d paths diverged: want none\n%s",
			c.LostConfirmedCalls, c.DuplicateCalls, c.StrayTraces, c.ReplicaDivergence, out)
	}
	// Bots 0 and 3 dial node 1, the one killed; on a loaded machine one
	// of them can be on another node when the kill comes (a dial or a
	// session that went on to its failover address), so the kill finds
	// one or both there.
	if c.FailoverClients < 1 || c.FailoverClients > 2 || c.FailoverUnconfirmed != 0 {
		t.Errorf("failover: %d clients of the killed node (want 1 or 2), %d without a confirmed call after (want 0)", c.FailoverClients, c.FailoverUnconfirmed)
	}
	// Each bot's session was lost, then resumed on another node, then had
	// a call confirmed there, in that order: so are the medians.
	if !(c.FailoverNoticedMsP50 > 0 && c.FailoverNoticedMsP50 <= c.FailoverResumedMsP50 && c.FailoverResumedMsP50 <= c.FailoverMsP50) {
		t.Errorf("failover breakdown: noticed %.0f ms, resumed %.0f ms, confirmed %.0f ms (p50): want 0 < noticed <= resumed <= confirmed",
			c.FailoverNoticedMsP50, c.FailoverResumedMsP50, c.FailoverMsP50)
	}
}

// TestShardedRun plays the demo's sharded cluster match (the flags
// -cluster, -shards region and -move-range-after, as a user runs them, on
// a few bots for seconds): region 0's range moves from node 1 to node 3
// mid-match while the bots play. What must hold whatever the machine's
// speed: every call a bot saw confirmed is on every node, once; no call
// ran twice; the nodes hold the same values; the move was made; and calls
// were relayed (the bots of node 3 join in region 0, which node 3 does
// not own at first). No timing is asserted.
func TestShardedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("three authority processes and a match")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound against a hang
	defer cancel()
	report := filepath.Join(t.TempDir(), "sharded.json")
	out, err := program(ctx, false, "-headless", "-cluster", "3", "-shards", "region", "-move-range-after", "3s", "-bots", "6",
		"-duration", "10s", "-profiles", "mobile", "-report", report).CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	f, err := os.Open(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := quality.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Profiles[0].Cluster
	if c == nil || c.Shards == nil {
		t.Fatalf("no sharded figures in the report:\n%s", out)
	}
	t.Logf("%+v %+v", *c, *c.Shards)
	sh := c.Shards
	switch {
	case c.Nodes != 3 || c.Killed != 0 || sh.Regions != 3:
		t.Errorf("%d nodes, %d killed, %d regions: want 3, 0, 3", c.Nodes, c.Killed, sh.Regions)
	case c.ConfirmedCalls == 0 || c.ComparedPaths == 0:
		t.Errorf("nothing checked: %d confirmed calls, %d paths compared", c.ConfirmedCalls, c.ComparedPaths)
	case sh.RangeMoves != 1 || !strings.Contains(sh.RangeMove, `"regions/0/" to node 3: owners [1 2] → [3 2]`):
		t.Errorf("range moves %d (%q): want region 0 moved from [1 2] to [3 2]", sh.RangeMoves, sh.RangeMove)
	case sh.CrossShardCalls < 2 || sh.Handoffs < 1:
		t.Errorf("%d cross-shard calls (want at least the joins of node 3's two bots), %d handoffs", sh.CrossShardCalls, sh.Handoffs)
	}
	if c.LostConfirmedCalls != 0 || c.DuplicateCalls != 0 || c.StrayTraces != 0 || c.ReplicaDivergence != 0 {
		t.Errorf("%d confirmed calls lost, %d applied twice, %d stray traces, %d paths diverged: want none\n%s",
			c.LostConfirmedCalls, c.DuplicateCalls, c.StrayTraces, c.ReplicaDivergence, out)
	}
}
