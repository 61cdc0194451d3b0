// Command demo-shooter is Rewind's demo: a top-down shooter that makes
// prediction, lag compensation and correction visible under a simulated
// link, and measures them.
//
//	demo-shooter                          an authority on loopback, this client and 4 bots, mobile link
//	demo-shooter -lag awful -bots 8       another link, more bots
//	demo-shooter -split -split-lag none   two clients side by side, one per link
//	demo-shooter -connect host:7777       play against a running authority
//	demo-shooter -headless -bots 16 -duration 60s -profiles broadband,mobile,awful -report q.json
//	demo-shooter -headless -cluster 3 -kill-node-after 15s -bots 16 -duration 40s -profiles mobile -report c.json
//	                                      the same against a cluster of three authorities, one
//	                                      killed with SIGKILL mid-match: lost and duplicate
//	                                      calls, failover times, replica divergence
//	demo-shooter -headless -cluster 3 -shards region -bots 32 -duration 60s -move-range-after 30s -profiles mobile -report s.json
//	                                      the arena cut into a region per authority, each region's
//	                                      calls run on its owners, region 0 moved live mid-match
//	demo-shooter -screenshot shot.png -frames 120
//	demo-shooter -data DIR                record the match in an archive (also with -headless)
//	demo-shooter -replay DIR              play a recorded match back; with -headless, its summary
//	demo-shooter -serve 127.0.0.1:7777 -data DIR
//	                                      the authority alone, with every flag of the authority
//	                                      binary (package authority/cli): durable, clustered, ...
//
// Keys: WASD move, mouse aims, click shoots, G pulls (shift+G pushes),
// 1–7 switch the lag profile live, P toggles lag compensation, F1 help.
// In a replay: space pauses, the arrows seek and change the speed, Tab
// switches the player whose view is shown.
//
// The window needs a display (X11); without one the program says so and
// suggests -headless. The game's rules live in package game, the clients'
// bookkeeping and the headless match in internal/match, the replay's
// reading of an archive in internal/replay: this package only parses
// flags, reads input and draws.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/demo-shooter/internal/quality"
)

// errNoDisplay: window mode without a display to open it on.
var errNoDisplay = errors.New("shooter: no display ($DISPLAY is empty): run with -headless for a match of bots and a report, or under xvfb-run")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the program at once.
		<-ctx.Done()
		stop()
	}()
	if serving(args) {
		// The authority alone: its own command line (authority/cli's).
		err := match.Serve(ctx, "demo-shooter -serve", args, game.Registry, stdout, stderr)
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, cli.ErrUsage):
			fmt.Fprintln(stderr, "demo-shooter -serve:", err)
			return 2
		}
		fmt.Fprintln(stderr, "demo-shooter -serve:", err)
		return 1
	}
	cfg, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	switch cfg.mode {
	case modeHeadless:
		err = headless(ctx, cfg, stdout)
	case modeSummary:
		err = summary(cfg, stdout)
	case modeReplay:
		err = replayWindow(ctx, cfg, stderr)
	default:
		err = window(ctx, cfg, stderr)
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil // a signal while connecting: nothing more to do
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// headless plays a match per profile and reports them.
func headless(ctx context.Context, cfg *config, stdout io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("shooter: %w", err)
	}
	rep := quality.Report{Machine: machine(), Command: "shooter " + strings.Join(os.Args[1:], " "), Seed: cfg.seed,
		AuthorityProcs: cfg.authorityProcs}
	regions := 0
	if cfg.shards == "region" {
		regions = cfg.cluster
	}
	for _, prof := range cfg.profiles {
		fmt.Fprintf(stdout, "match: %d bots, %v, %s link...\n", cfg.bots, cfg.duration, prof.Name)
		p, err := match.Run(ctx, match.Settings{
			Profile: prof, Bots: cfg.bots, Duration: cfg.duration, Seed: cfg.seed,
			Nodes: cfg.cluster, KillAfter: cfg.killAfter, StallFor: cfg.stallFor, Regions: regions, MoveAfter: cfg.moveAfter,
			Authority: func(args []string) *exec.Cmd {
				args = slices.Clone(args)
				if cfg.data != "" {
					args = append(args, "-data", cfg.data)
				}
				if cfg.cpuProfile != "" {
					// In a cluster, one profile per node.
					args = append(args, "-cpuprofile", cfg.cpuProfile+"."+prof.Name+nodeSuffix(args))
				}
				cmd := exec.Command(self, args...)
				cmd.Stderr = os.Stderr
				if cfg.authorityProcs > 0 {
					cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", cfg.authorityProcs))
				}
				return cmd
			},
		})
		if err != nil {
			return fmt.Errorf("shooter: %s match: %w", prof.Name, err)
		}
		rep.Profiles = append(rep.Profiles, p)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if cfg.report == "" {
		return nil
	}
	f, err := os.Create(cfg.report)
	if err != nil {
		return fmt.Errorf("shooter: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// nodeSuffix is ".nN" for the command line of cluster node N, else "".
func nodeSuffix(args []string) string {
	if i := slices.Index(args, "-node-id"); i >= 0 && i+1 < len(args) {
		return ".n" + args[i+1]
	}
	return ""
}

// machine describes where a report was measured.
func machine() string {
	m := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return m + ", " + strings.TrimSpace(v)
		}
	}
	return m
}
