// Command hostile-report measures the authority under each attack class
// of the hostile suite on the real stack, over 127.0.0.1: for each class
// it starts an authority in a child process (this program again, with
// -serve), seeds a world of 1,000 counters, has 20 players call add 20
// times a second each, measures their confirm latency for a baseline
// window and then while the attack runs, and reports the latency, calls
// unanswered or refused, players disconnected, how long after its first
// abusive frame each abuser was cut off, how long a player joining
// mid-attack took to be welcomed, and the child's resident memory and CPU.
//
//	go run ./authority/cmd/hostile-report                    # every class
//	go run ./authority/cmd/hostile-report -attack garbage,no-hello
//
// The figures are wall-clock measurements on whatever machine runs it:
// state its load beside them (the report prints uptime's). docs/
// BENCHMARKS.md records a run; the property the suite asserts on virtual
// time is TestHostile in authority/internal/hostile.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/hostile"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hostile-report:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("hostile-report", flag.ContinueOnError)
	var (
		serve    = fs.Bool("serve", false, "run the authority (the child process) and print its address and stats")
		hsHost   = fs.Float64("handshakes-per-host", 0, "with -serve: the listener's per-host handshake rate (0: the preset's)")
		attacks  = fs.String("attack", "", "comma-separated classes to run (default: all)")
		players  = fs.Int("players", 20, "honest players")
		rate     = fs.Float64("rate", 20, "calls per second per player")
		window   = fs.Duration("window", 5*time.Second, "length of the baseline and of the attack windows")
		outFile  = fs.String("o", "", "also write the table to this file")
		listOnly = fs.Bool("list", false, "list the classes and exit")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve {
		return serveChild(*hsHost)
	}
	classes := allClasses()
	if *listOnly {
		for _, c := range classes {
			fmt.Printf("%-24s %s\n", c.name, c.what)
		}
		return nil
	}
	if *attacks != "" {
		want := map[string]bool{}
		for _, a := range strings.Split(*attacks, ",") {
			want[strings.TrimSpace(a)] = true
		}
		var sel []class
		for _, c := range classes {
			if want[c.name] {
				sel = append(sel, c)
				delete(want, c.name)
			}
		}
		if len(want) > 0 {
			return fmt.Errorf("unknown classes %v (see -list)", keys(want))
		}
		classes = sel
	}
	load, _ := os.ReadFile("/proc/loadavg")
	var out strings.Builder
	fmt.Fprintf(&out, "%d players × %.0f calls/s, windows of %v, GOMAXPROCS %d, load at start: %s\n\n", *players, *rate, *window, runtime.GOMAXPROCS(0), strings.TrimSpace(string(load)))
	fmt.Fprintln(&out, "| class | baseline p50 / p99 | attack p50 / p99 / max | unanswered / refused | disconnected | abusers cut off (slowest) | late join | RSS base → peak | CPU in attack | node rounds ≥ 100 ms, longest (if new) |")
	fmt.Fprintln(&out, "|---|---|---|---|---|---|---|---|---|---|")
	fmt.Print(out.String())
	for _, c := range classes {
		line, err := measure(c, *players, *rate, *window)
		if err != nil {
			line = fmt.Sprintf("| %s | error: %v |", c.name, err)
		}
		fmt.Println(line)
		out.WriteString(line + "\n")
	}
	load, _ = os.ReadFile("/proc/loadavg")
	tail := fmt.Sprintf("\nload at end: %s\n", strings.TrimSpace(string(load)))
	fmt.Print(tail)
	out.WriteString(tail)
	if *outFile != "" {
		return os.WriteFile(*outFile, []byte(out.String()), 0o644)
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// --- the child: an authority that reports its counters ---

type childStats struct {
	Sessions, Waiting int
	Kicked, Strikes   uint64
	HelloTimeouts     uint64
	Evicted           uint64
	TooSlow           uint64
	Guard             transport.GuardStats
	HeapInuse         uint64
	Rounds            [5]uint64 // the node goroutine's rounds by length
	LongestRound      time.Duration
}

func serveChild(hsHost float64) error {
	cfg := authority.DefaultServerConfig("127.0.0.1:0", hostile.Registry())
	if hsHost > 0 {
		cfg.Transport.HandshakeRatePerHost = hsHost
	}
	srv, err := authority.NewServer(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }() // the parent went away
	fmt.Printf("addr %s\n", srv.Addr())
	go func() {
		enc := json.NewEncoder(os.Stdout)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st := srv.Stats()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			enc.Encode(childStats{Sessions: st.Node.Sessions, Waiting: st.Node.Waiting, Kicked: st.Node.Kicked, Strikes: st.Node.Strikes,
				HelloTimeouts: st.Node.HelloTimeouts, Evicted: st.Node.WaitingEvicted, TooSlow: st.Transport.TooSlow,
				Guard: st.Transport.Guard, HeapInuse: ms.HeapInuse, Rounds: st.Rounds, LongestRound: st.LongestRound})
		}
	}()
	return srv.Serve(ctx)
}

// child is a running authority process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string

	mu   sync.Mutex
	last childStats
}

func startChild(extra ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"-serve"}, extra...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "addr ") {
		c.stop()
		return nil, errors.New("the child printed no address")
	}
	c.addr = strings.TrimPrefix(sc.Text(), "addr ")
	go func() {
		for sc.Scan() {
			var st childStats
			if json.Unmarshal(sc.Bytes(), &st) == nil {
				c.mu.Lock()
				c.last = st
				c.mu.Unlock()
			}
		}
	}()
	return c, nil
}

func (c *child) stats() childStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// stop ends the child it started: its stdin closes, then, if it is still
// there a moment later, SIGKILL to its PID.
func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// rss returns the child's resident set in bytes, cpu its user+system CPU
// time so far (from /proc).
func (c *child) rss() uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ, 100 on Linux
}

// --- the classes ---

type class struct {
	name, what string
	child      []string // extra flags for the child
	// run attacks addr until ctx ends; it reports its abusers (how many
	// and how many were cut off, the slowest cut-off) if it has any.
	run func(ctx context.Context, addr string, tcfg transport.Config) abuse
}

type abuse struct {
	n, cut  int
	slowest time.Duration
	note    string
}

func allClasses() []class {
	var out []class
	for _, fc := range hostile.FrameClasses() {
		out = append(out, class{name: fc.Name, what: fc.What, run: func(ctx context.Context, addr string, tcfg transport.Config) abuse {
			lasted, cut, err := hostile.Abuse(ctx, addr, tcfg, fc)
			a := abuse{n: 1, slowest: lasted}
			if cut {
				a.cut = 1
			}
			if err != nil {
				a.note = err.Error()
			}
			return a
		}})
	}
	mute := func(src string) func(ctx context.Context, addr string, tcfg transport.Config) abuse {
		return func(ctx context.Context, addr string, tcfg transport.Config) abuse {
			opened, closed := hostile.Mute(ctx, addr, src, tcfg, 2000, 2000)
			return abuse{n: opened, cut: closed, note: fmt.Sprintf("%d of 2,000 sessions opened", opened)}
		}
	}
	return append(out,
		class{name: "garbage", what: "20,000 random datagrams a second from 256 source ports", run: func(ctx context.Context, addr string, _ transport.Config) abuse {
			n, _ := hostile.Garbage(ctx, addr, 256, 20000, 1)
			return abuse{note: fmt.Sprintf("%d datagrams", n)}
		}},
		class{name: "half-open", what: "200 conversations a second sending 3 bytes of the hello record", run: func(ctx context.Context, addr string, _ transport.Config) abuse {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			var wg sync.WaitGroup
			for ctx.Err() == nil {
				wave, cancel := context.WithTimeout(ctx, time.Second)
				wg.Add(1)
				go func() { defer wg.Done(); defer cancel(); hostile.HalfOpen(wave, addr, 200) }()
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
			wg.Wait()
			return abuse{}
		}},
		class{name: "no-hello", what: "2,000 sessions that never say Hello, dialled as fast as admitted, from the players' host", run: mute("")},
		class{name: "no-hello-other-host", what: "the same from another address (127.0.0.2)", run: mute("127.0.0.2")},
		class{name: "no-hello-unguarded", what: "the same with the per-host handshake rate lifted (the node's caps alone)", child: []string{"-handshakes-per-host", "1e6"}, run: mute("")},
		class{name: "idle-players", what: "1,000 more players join and stay idle (the memory a player costs)", child: []string{"-handshakes-per-host", "1e6"}, run: func(ctx context.Context, addr string, tcfg transport.Config) abuse {
			var mu sync.Mutex
			var cs []*testclient.Client
			var wg sync.WaitGroup
			sem := make(chan struct{}, 100)
			for range 1000 {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					if c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: tcfg}); err == nil {
						mu.Lock()
						cs = append(cs, c)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			<-ctx.Done()
			for _, c := range cs {
				go c.Close("idle done")
			}
			return abuse{note: fmt.Sprintf("%d of 1,000 joined", len(cs))}
		}},
		class{name: "mass-churn", what: "2,000 players join as fast as admitted, then leave", child: []string{"-handshakes-per-host", "1e6"}, run: func(ctx context.Context, addr string, tcfg transport.Config) abuse {
			var mu sync.Mutex
			var cs []*testclient.Client
			var wg sync.WaitGroup
			sem := make(chan struct{}, 200)
			for range 2000 {
				if ctx.Err() != nil {
					break
				}
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: tcfg})
					if err == nil {
						mu.Lock()
						cs = append(cs, c)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, c := range cs {
				go c.Close("churn")
			}
			return abuse{note: fmt.Sprintf("%d of 2,000 joined and left", len(cs))}
		}},
	)
}

// measure runs one class against a fresh child and returns its table row.
func measure(c class, players int, rate float64, window time.Duration) (string, error) {
	ch, err := startChild(c.child...)
	if err != nil {
		return "", err
	}
	defer ch.stop()
	tcfg := transport.Internet()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := seed(ctx, ch.addr, tcfg); err != nil {
		return "", err
	}
	var ps []*hostile.Player
	for i := range players {
		p, err := hostile.JoinPlayer(ctx, ch.addr, fmt.Sprintf("p%d", i), tcfg)
		if err != nil {
			return "", fmt.Errorf("player %d: %w", i, err)
		}
		defer p.Close()
		ps = append(ps, p)
	}
	play, stop := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for _, p := range ps {
		pwg.Add(1)
		go func() { defer pwg.Done(); p.Play(play, rate) }()
	}
	// Memory samples every 100 ms.
	var mu sync.Mutex
	var peak uint64
	sample, stopSample := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for sample.Err() == nil {
			if r := ch.rss(); r > 0 {
				mu.Lock()
				peak = max(peak, r)
				mu.Unlock()
			}
			<-t.C
		}
	}()
	time.Sleep(time.Second) // players settle
	b0 := time.Now()
	time.Sleep(window)
	mu.Lock()
	baseRSS := peak
	peak = 0
	mu.Unlock()
	a0 := time.Now()
	cpu0 := ch.cpu()
	st0 := ch.stats()
	attack, stopAttack := context.WithTimeout(ctx, window)
	res := make(chan abuse, 1)
	go func() { res <- c.run(attack, ch.addr, tcfg) }()
	// A player joins in the middle of the attack.
	time.Sleep(window / 2)
	join := time.Now()
	late, err := hostile.JoinPlayer(ctx, ch.addr, "late", tcfg)
	lateJoin := "failed: " + fmt.Sprint(err)
	if err == nil {
		lateJoin = time.Since(join).Round(time.Millisecond).String()
		late.Close()
	}
	<-attack.Done()
	a1 := time.Now()
	cpu := ch.cpu() - cpu0
	ab := <-res
	stopAttack()
	stop()
	pwg.Wait()
	// Answers still on their way: a bounded wait.
	for deadline := time.Now().Add(5 * time.Second); hostile.Unanswered(ps) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stopSample()
	base := hostile.Collect(ps, b0, a0)
	att := hostile.Collect(ps, a0, a1)
	mu.Lock()
	atkRSS := peak
	mu.Unlock()
	cutoff := "—"
	if ab.n > 0 {
		cutoff = fmt.Sprintf("%d / %d", ab.cut, ab.n)
		if ab.slowest > 0 {
			cutoff += fmt.Sprintf(" (%v)", ab.slowest.Round(time.Millisecond))
		}
	}
	if ab.note != "" {
		cutoff += "; " + ab.note
	}
	time.Sleep(200 * time.Millisecond) // the child's next report
	st := ch.stats()
	slow := st.Rounds[3] + st.Rounds[4] - st0.Rounds[3] - st0.Rounds[4]
	longest := "—"
	if st.LongestRound > st0.LongestRound {
		longest = st.LongestRound.Round(time.Millisecond).String()
	}
	cutoff += fmt.Sprintf("; node: kicked %d, hello timeouts %d, evicted %d; guard: admitted %d, dropped %d", st.Kicked, st.HelloTimeouts, st.Evicted, st.Guard.Admitted, st.Guard.NotOpening+st.Guard.HostLimited+st.Guard.Limited)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	return fmt.Sprintf("| %s | %s / %s ms | %s / %s / %s ms | %d / %d of %d | %d | %s | %s | %d → %d MiB | %.0f %% | %d, %s |",
		c.name, ms(base.P50), ms(base.P99), ms(att.P50), ms(att.P99), ms(att.Max), att.Unanswered, att.Refused, att.Sent,
		len(att.Disconnected), cutoff, lateJoin, baseRSS>>20, atkRSS>>20, 100*cpu.Seconds()/a1.Sub(a0).Seconds(), slow, longest), nil
}

// seed has the child write the world: 1,000 counters, 50 a call.
func seed(ctx context.Context, addr string, tcfg transport.Config) error {
	c, err := testclient.Dial(ctx, addr, testclient.Config{Transport: tcfg})
	if err != nil {
		return err
	}
	defer c.Close("seeded")
	for i := 0; i < 1000; i += 50 {
		if _, err := c.Call("seed", []byte{byte(i), byte(i >> 8), 0, 0}, c.ServerNow(), 0); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	answered := 0
	for answered < 20 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := c.Next(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		if m.Kind == wire.KindCallResult {
			if m.CallResult.Status != wire.CallOK {
				return fmt.Errorf("seeding: %s", m.CallResult.Error)
			}
			answered++
		}
	}
	return nil
}
