package match

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

var seed = flag.Uint64("match.seed", 1, "seed of TestRunShort's bots and links")

// childEnv makes the test binary an authority (see TestMain), so Run's
// authority runs in a process of its own as in the demo; it holds the
// authority's command line, its arguments separated by argSep.
const (
	childEnv = "REWIND_MATCH_TEST_AUTHORITY"
	argSep   = "\x1f"
)

func TestMain(m *testing.M) {
	if a := os.Getenv(childEnv); a != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		args := append(strings.Split(a, argSep), "-log-level", "warn")
		if err := Serve(ctx, "authority", args, game.Registry, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func authorityCmd(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, argSep))
	cmd.Stderr = os.Stderr
	return cmd
}

// TestRunShort plays a short real match (2 bots, loopback, broadband)
// and checks its figures are sane: everything the report shows was
// measured and lies where a broadband link puts it.
func TestRunShort(t *testing.T) {
	prof, err := lagsim.Preset("broadband")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with -match.seed=%d", *seed)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	p, err := Run(ctx, Settings{Profile: prof, Bots: 2, Duration: 3 * time.Second, Warmup: time.Second, Seed: *seed, Authority: authorityCmd})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p)
	check := func(name string, v, lo, hi float64) {
		t.Helper()
		if v < lo || v > hi {
			t.Errorf("%s = %v, want in [%v, %v]", name, v, lo, hi)
		}
	}
	if p.Profile != "broadband" || p.Clients != 2 {
		t.Errorf("profile %q clients %d", p.Profile, p.Clients)
	}
	check("seconds", p.Seconds, 2.9, 6)
	check("calls", float64(p.Calls), 10, 1e5) // bots aim, move and shoot several times a second
	check("rtt_ms", p.RTTMs, 50, 200)         // 2 × 30 ± 5 ms, plus scheduling
	check("hits_confirmed_pct", p.HitsConfirmedPct, 0, 100)
	check("correction_p50_px", p.CorrectionP50Px, 0, p.CorrectionP99Px)
	check("correction_p99_px", p.CorrectionP99Px, 0, p.CorrectionMaxPx)
	check("misprediction_rate", p.MispredictionRate, 0, 1)
	check("reruns_per_call", p.ReRunsPerCall, 0, 100)
	check("confirm_latency_minus_rtt_ms", p.ConfirmLatencyMinusRTTMs, -50, 200)
	check("kbps_in", p.KbpsIn, 0.5, 2000)
	check("kbps_out", p.KbpsOut, 0.1, 2000)
	check("authority_cpu_pct_per_client", p.AuthorityCPUPctPerClient, 0, 100)
}

func TestRunRefusesBadSettings(t *testing.T) {
	none, _ := lagsim.Preset("none")
	tests := []struct {
		name string
		s    Settings
		want error
	}{
		{"no bots", Settings{Profile: none, Duration: time.Second, Authority: authorityCmd}, ErrBadMatch},
		{"too many bots", Settings{Profile: none, Bots: MaxBots + 1, Duration: time.Second, Authority: authorityCmd}, ErrBadMatch},
		{"no duration", Settings{Profile: none, Bots: 1, Authority: authorityCmd}, ErrBadMatch},
		{"no authority", Settings{Profile: none, Bots: 1, Duration: time.Second}, ErrBadMatch},
		{"bad profile", Settings{Profile: lagsim.Profile{Loss: 2}, Bots: 1, Duration: time.Second, Authority: authorityCmd}, lagsim.ErrInvalidProfile},
		{"regions without a cluster", Settings{Profile: none, Bots: 1, Duration: time.Second, Authority: authorityCmd, Regions: 2}, ErrBadMatch},
		{"move without regions", Settings{Profile: none, Bots: 1, Duration: 2 * time.Second, Authority: authorityCmd, Nodes: 3, MoveAfter: time.Second}, ErrBadMatch},
		{"move after the match", Settings{Profile: none, Bots: 1, Duration: time.Second, Authority: authorityCmd, Nodes: 3, Regions: 3, MoveAfter: time.Second}, ErrBadMatch},
		{"authority exits", Settings{Profile: none, Bots: 1, Duration: time.Second, Authority: func([]string) *exec.Cmd { return exec.Command("false") }}, ErrChild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.s); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks of 1/100 s, after a command name with
	// spaces and parentheses.
	const line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10"
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "4242 no-paren", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, err := parseStatCPU(bad); !errors.Is(err, ErrChild) {
			t.Errorf("parseStatCPU(%q): err %v, want ErrChild", bad, err)
		}
	}
}

// TestProcCPU checks what procCPU reads of this process against the
// kernel's own account of it (getrusage), each reading bracketed by two of
// getrusage: both count the same CPU time, so a /proc reading lies between
// the two around it, up to /proc's 10 ms ticks (rounded down in user and
// system time each), whatever else the process or the machine does
// meanwhile. The test burns 100 ms of CPU in between, so the readings move.
func TestProcCPU(t *testing.T) {
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const tick = 10 * time.Millisecond
	check := func(when string) time.Duration {
		before := self()
		p, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		after := self()
		if p < before-2*tick || p > after {
			t.Errorf("%s: procCPU read %v, outside getrusage's %v..%v around it", when, p, before, after)
		}
		return p
	}
	p0 := check("before")
	s0 := self()
	// Burn until the kernel has counted 100 ms of CPU (bounded by wall
	// time only as a guard against a process that never gets the CPU).
	x, guard := 0, time.Now().Add(2*time.Minute)
	for self()-s0 < 100*time.Millisecond && time.Now().Before(guard) {
		for range 1 << 16 {
			x++
		}
	}
	if d := self() - s0; d < 100*time.Millisecond {
		t.Fatalf("the process got %v of CPU in two minutes", d)
	}
	p1 := check("after")
	t.Logf("/proc counted %v over the burn (%d loops)", p1-p0, x)
	if _, err := procCPU(1 << 30); !errors.Is(err, ErrChild) {
		t.Errorf("missing pid: err %v, want ErrChild", err)
	}
}

func TestLagSwitchesLive(t *testing.T) {
	none, _ := lagsim.Preset("none")
	awful, _ := lagsim.Preset("awful")
	l, err := NewLag("127.0.0.1:0", none, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set(awful); err != nil {
		t.Fatal(err)
	}
	for i, c := range []any{a, b} {
		out, in := c.(*lagConn).Conn.Profile()
		if out.Name != "awful" || in.Name != "awful" {
			t.Errorf("conn %d: profile %q/%q after Set(awful)", i, out.Name, in.Name)
		}
	}
	a.Close()
	if l.Open() != 1 {
		t.Errorf("%d open after closing one of two", l.Open())
	}
	c, err := l.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := c.(*lagConn).Conn.Profile(); out.Name != "awful" {
		t.Errorf("new conn profile %q, want awful", out.Name)
	}
	b.Close()
	c.Close()
	if err := l.Set(lagsim.Profile{Loss: -1}); !errors.Is(err, lagsim.ErrInvalidProfile) {
		t.Errorf("bad profile: err %v", err)
	}
	if l.Profile().Name != "awful" {
		t.Errorf("a refused Set changed the profile to %q", l.Profile().Name)
	}
}
