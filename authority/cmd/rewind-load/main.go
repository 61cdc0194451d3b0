// Command rewind-load measures what an authority costs per player: it
// starts an authority in a process of its own, on one core
// (GOMAXPROCS=1), serving the field game (authority/internal/field), and
// drives N simulated players against it from this process over loopback,
// each behind a lag profile, moving at -rate inputs a second, shooting at
// the nearest player it sees twice a second and watching only the players
// within -radius of itself (a spatial watch). The players run in -loops
// goroutines (one socket each, no goroutine or socket per player; see
// players.go). It reads the authority's
// CPU time from /proc and writes a JSON report, and PNG plots when
// given -plot.
//
//	rewind-load -players 1000 -rate 30 -duration 30s -lag mobile -report load.json -plot docs/load
//	rewind-load -sweep 100,250,500,1000 -report load.json -plot docs/load
//
// With -sweep it runs each player count in turn (a fresh authority for
// each) and the report is the list of runs; the plots show them against
// the player count. The authority's per-player CPU covers the measured
// span (after a warm-up); -idle adds a span in which the players stop
// acting (they only keep their sessions and clocks), measured the same
// way. The commit is given with -commit (make load passes git's).
// With -data DIR the authority is durable, as with authority -data: each
// run keeps its archive (write-ahead log, snapshot blocks) in a fresh
// directory under DIR, removed after the run, and the report gives the
// archive's size.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "rewind-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rewind-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.players, "players", 100, "simulated players")
	sweep := fs.String("sweep", "", "comma-separated player counts to run in turn (overrides -players)")
	fs.Float64Var(&o.rate, "rate", 30, "inputs (move calls) per second per player")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured span")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "play before measuring")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "idle span measured after the active one (0: none)")
	fs.StringVar(&o.lag, "lag", "mobile", "lag profile of every player's link, both ways (a lagsim preset, or none)")
	fs.Float64Var(&o.radius, "radius", 300, "radius of each player's spatial watch, field units")
	fs.Float64Var(&o.neighbours, "neighbours", 20, "players within the radius on average: sets the field's size")
	fs.DurationVar(&o.flush, "flush", 33*time.Millisecond, "the authority's watch flush period")
	fec := fs.String("fec", "10,3", "FEC data,parity shards of every session (0,0: none); the transport's Internet preset is 10,3")
	fs.DurationVar(&o.coalesce, "coalesce", 0, "the authority's socket loop gathers packets this long between reads (transport Config.Coalesce)")
	fs.StringVar(&o.report, "report", "", "write the JSON report to this file")
	fs.StringVar(&o.plot, "plot", "", "write PNG plots to this directory")
	fs.StringVar(&o.commit, "commit", "", "the commit the binaries were built from, for the report")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the players' choices and links")
	fs.IntVar(&o.loops, "loops", 0, "goroutines (each with one socket) running the players (0: one per core this process may use, GOMAXPROCS)")
	fs.IntVar(&o.sockBuf, "sockbuf", -1, "the authority socket's receive and send buffers, bytes (transport Config.SocketBuffer; 0: the system's default, -1: the preset's)")
	fs.DurationVar(&o.tick, "loop-tick", time.Millisecond, "period of a player loop: packets wait for it at most, each way")
	fs.DurationVar(&o.idleSync, "idle-sync", 0, "the players' timesync IdleInterval (0: the default)")
	fs.StringVar(&o.data, "data", "", "make the authority durable: each run keeps its archive (write-ahead log, snapshots) in a fresh directory under this one, removed after the run")
	fs.StringVar(&o.dataDir, "data-dir", "", "internal: the authority's archive directory with -serve")
	serve := fs.Bool("serve", false, "internal: run the authority (the child process)")
	listen := fs.String("listen", "127.0.0.1:0", "internal: the authority's address with -serve")
	replot := fs.String("replot", "", "draw the plots (-plot) of an earlier sweep's report instead of running")
	fs.StringVar(&o.cpuProfile, "authority-cpuprofile", "", "write the authority's CPU profile (the whole run) to this file")
	selfProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the players' side) to this file")
	memProfile := fs.String("memprofile", "", "write this process's allocation profile (the players' side, the whole run) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := fmt.Sscanf(*fec, "%d,%d", &o.dataShards, &o.parityShards); err != nil {
		return fmt.Errorf("-fec %q: want data,parity", *fec)
	}
	if *replot != "" {
		b, err := os.ReadFile(*replot)
		if err != nil {
			return err
		}
		var runs []Report
		if err := json.Unmarshal(b, &runs); err != nil {
			return fmt.Errorf("-replot %s: %w", *replot, err)
		}
		if o.plot == "" {
			return fmt.Errorf("-replot needs -plot")
		}
		return plotRuns(o.plot, runs)
	}
	if *serve {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return serveAuthority(ctx, *listen, o, stdout)
	}
	// The players' side allocates steadily (frames, events); collecting
	// less often leaves more of its core to the players. The authority
	// (-serve, above) keeps the runtime's default.
	debug.SetGCPercent(400)
	counts := []int{o.players}
	if *sweep != "" {
		counts = counts[:0]
		for _, f := range strings.Split(*sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("-sweep: %q is not a player count", f)
			}
			counts = append(counts, n)
		}
	}
	if err := o.validate(); err != nil {
		return err
	}
	if o.loops == 0 {
		o.loops = runtime.GOMAXPROCS(0)
		if max(o.players, slices.Max(counts)) > o.loops*maxPerLoop {
			return fmt.Errorf("-loops %d too few for %d players", o.loops, slices.Max(counts))
		}
	}
	o.fec = *fec
	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				fmt.Fprintln(stderr, "rewind-load: -memprofile:", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintln(stderr, "rewind-load: -memprofile:", err)
			}
		}()
	}
	var runs []Report
	for _, n := range counts {
		o.players = n
		fmt.Fprintf(stderr, "rewind-load: %d players, %v measured...\n", n, o.duration)
		r, err := measure(context.Background(), o)
		if err != nil {
			return fmt.Errorf("%d players: %w", n, err)
		}
		b, _ := json.Marshal(r)
		fmt.Fprintln(stdout, string(b))
		runs = append(runs, r)
	}
	if o.report != "" {
		var v any = runs[0]
		if *sweep != "" {
			v = runs
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(o.report), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.report, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.plot != "" {
		if err := plotRuns(o.plot, runs); err != nil {
			return fmt.Errorf("plots: %w", err)
		}
	}
	return nil
}
