package match

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/netcode"
)

// Errors of the authority helpers.
var (
	// ErrChild: the authority child process failed to start, announce its
	// address or report its counters.
	ErrChild = errors.New("match: authority process")
	// ErrCutShort: a graceful shutdown ran out of time and the sessions
	// were closed at once (their clients did not all acknowledge the end
	// in time).
	ErrCutShort = errors.New("graceful shutdown cut short: sessions closed at once")
)

// Lines an authority started by Serve prints on its output, so a parent
// process can find its address and its counters.
const (
	listeningPrefix = "authority listening on "
	statsPrefix     = "authority stats "
)

// ServeStats are the counters an authority reports when it stops.
type ServeStats struct {
	Calls   uint64 `json:"calls"`
	Reruns  uint64 `json:"reruns"`
	Kicked  uint64 `json:"kicked"`
	TooSlow uint64 `json:"too_slow"`
	// RelayedIn counts calls this node ran for a client of another node
	// (it owns their shard key's range); Forwarded the calls it sent on
	// to an owner.
	RelayedIn uint64 `json:"relayed_in"`
	Forwarded uint64 `json:"forwarded"`
}

// Serve runs an authority serving reg's functions until ctx ends: the
// demo's -serve mode and the process StartChild starts. It is the
// authority binary's command line (package authority/cli), so it takes
// every flag the binary takes (durability: -data, -data-dirs, -parity,
// -wal-flush, -recover; cluster: -node-id, -gossip, -join, -cluster-key,
// -cluster-size, ...), plus -serve ADDR (the listen address, as -listen)
// -cpuprofile FILE, -trace-calls (TracedRegistry) and -regions N
// (RegionRegistry). name names the command in its usage text, errors
// and logs. It prints the bound address when listening and its counters
// when it stops, one line each, on out; logs go to stderr. A bad command
// line wraps cli.ErrUsage; -h returns flag.ErrHelp after the usage.
func Serve(ctx context.Context, name string, args []string, reg func() *netcode.Registry, out, stderr io.Writer) error {
	var listen, cpuProfile *string
	var trace *bool
	var regions *int
	var srv *authority.Server
	var prof *os.File
	p := cli.Program{
		Name: name,
		Functions: func() *netcode.Registry {
			r := reg
			if *trace {
				r = TracedRegistry(r)
			}
			if *regions > 0 {
				r = RegionRegistry(r, *regions)
			}
			return r()
		},
		Flags: func(fs *flag.FlagSet) {
			listen = fs.String("serve", "", "UDP `address` to listen on (the same as -listen, which it overrides)")
			cpuProfile = fs.String("cpuprofile", "", "write the authority's CPU profile to `file`")
			trace = fs.Bool("trace-calls", false, "run the functions traced, as a cluster match's bots call them (each call tagged and counted under "+TracePrefix+")")
			regions = fs.Int("regions", 0, "route the functions by region, as a sharded match's bots call them: each call's last argument byte is its region, below `N`, and its shard key "+RegionPrefix+"<region>/<caller> (0: no regions)")
		},
		Configure: func(cfg *authority.ServerConfig) error {
			if *regions < 0 || *regions > 255 {
				return fmt.Errorf("%w: -regions %d: want 0 to 255", cli.ErrUsage, *regions)
			}
			if *listen != "" {
				cfg.Addr = *listen
			}
			if *cpuProfile == "" {
				return nil
			}
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return err
			}
			prof = f
			return nil
		},
		Started: func(s *authority.Server) { srv = s },
	}
	err := p.Run(ctx, args, stderr, func(a net.Addr) { fmt.Fprintf(out, "%s%s\n", listeningPrefix, a) })
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	if srv != nil {
		st := srv.Stats()
		b, _ := json.Marshal(ServeStats{Calls: st.Node.Calls, Reruns: st.Node.Reruns, Kicked: st.Node.Kicked, TooSlow: st.Transport.TooSlow,
			RelayedIn: st.Node.CallsRelayedIn, Forwarded: st.Node.CallsForwarded})
		fmt.Fprintf(out, "%s%s\n", statsPrefix, b)
	}
	return err
}

// StoppedMsg is the message of the line LogStopped writes after a clean
// stop.
const StoppedMsg = "authority stopped cleanly"

// LogStopped logs, at Info level, what an authority did once its Serve
// returned err (nil: a clean shutdown). The counters are named for what
// they count: calls run, and of them failed (refused by a game rule) or
// rejected (never run); calls re-run after a late input; values stored in
// all, whether written by calls or directly; raw_values_written (as the
// generic authority binary names it), the values clients wrote with Write
// messages rather than through a call (0 for the shooter, whose clients
// only call); values sent to watchers. A nil log logs nothing.
func LogStopped(log *slog.Logger, st authority.ServerStats, uptime time.Duration, err error) {
	if log == nil {
		return
	}
	args := []any{"uptime", uptime.Round(time.Millisecond), "sessions", st.Node.Connects,
		"calls", st.Node.Calls, "calls_failed", st.Node.CallErrors, "calls_rejected", st.Node.CallsRejected,
		"reruns", st.Node.Reruns, "values_stored", st.Node.Store.Inserted, "raw_values_written", st.Node.Writes,
		"values_sent", st.Node.ValuesSent}
	switch {
	case errors.Is(err, ErrCutShort):
		log.Warn("authority stopped", append(args, "error", err)...)
		return
	case err != nil:
		log.Error("authority stopped", append(args, "error", err)...)
		return
	}
	log.Info(StoppedMsg, args...)
}

// Child is an authority running in a process of its own, so that its CPU
// time can be measured apart from the clients'.
type Child struct {
	Addr  string
	cmd   *exec.Cmd
	lines chan string // stdout lines after the address

	waited  sync.Once
	waitErr error
}

// StartChild starts cmd (a program that ends up in Serve on a loopback
// address) and waits, at most timeout, for it to announce its address.
func StartChild(cmd *exec.Cmd, timeout time.Duration) (*Child, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	c := &Child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads chatter beyond the bound; drop it
			}
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.kill()
				return nil, fmt.Errorf("%w: exited before listening: %v", ErrChild, c.wait())
			}
			if a, found := strings.CutPrefix(line, listeningPrefix); found {
				c.Addr = a
				return c, nil
			}
		case <-t.C:
			c.kill()
			return nil, fmt.Errorf("%w: no address after %v", ErrChild, timeout)
		}
	}
}

func (c *Child) kill() {
	c.cmd.Process.Kill()
	c.wait()
}

// wait waits for the process once (exec.Cmd.Wait must not run twice).
func (c *Child) wait() error {
	c.waited.Do(func() { c.waitErr = c.cmd.Wait() })
	return c.waitErr
}

// Kill kills the child with SIGKILL, by its PID, and waits for it: a
// crash, nothing flushed.
func (c *Child) Kill() error {
	if err := c.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("%w: kill: %w", ErrChild, err)
	}
	c.wait()
	return nil
}

// Signal sends the child sig (SIGSTOP and SIGCONT freeze and thaw it).
func (c *Child) Signal(sig os.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%w: %v: %w", ErrChild, sig, err)
	}
	return nil
}

// CPU returns the CPU time (user plus system, every thread) the child has
// used so far, read from /proc: 10 ms resolution.
func (c *Child) CPU() (time.Duration, error) {
	return procCPU(c.cmd.Process.Pid)
}

// Stop interrupts the child (a graceful shutdown), waits at most timeout
// for it to exit and returns the counters it printed.
func (c *Child) Stop(timeout time.Duration) (ServeStats, error) {
	c.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(timeout)
	defer t.Stop()
	var st ServeStats
	got := false
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				err := c.wait()
				if !got {
					return st, fmt.Errorf("%w: no counters at exit (%v)", ErrChild, err)
				}
				return st, nil
			}
			if s, found := strings.CutPrefix(line, statsPrefix); found {
				if err := json.Unmarshal([]byte(s), &st); err != nil {
					return st, fmt.Errorf("%w: counters %q: %w", ErrChild, s, err)
				}
				got = true
			}
		case <-t.C:
			c.kill()
			return st, fmt.Errorf("%w: still running %v after interrupt, killed", ErrChild, timeout)
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux the demo targets (it is part of the user ABI).
const clockTicks = 100

// procCPU reads utime+stime of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("%w: cpu time: %w", ErrChild, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime + stime of a /proc/PID/stat line.
func parseStatCPU(s string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields count from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: cpu time: bad stat %q", ErrChild, s)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, utime 14, stime 15 → indexes 11, 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: cpu time: short stat %q", ErrChild, s)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: cpu time: %w", ErrChild, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
