package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("shooter: usage")

// Bounds of the command line.
const (
	maxBots     = 64
	maxFrames   = 100000
	maxDuration = time.Hour
	// maxAuthorityProcs bounds -authority-procs (Go accepts far more).
	maxAuthorityProcs = 1024
	maxShutdownWait   = time.Minute
	// A replay's speed, a factor of real time.
	minSpeed, maxSpeed = 1.0 / 16, 64.0
)

// serving reports whether args ask for the authority alone (-serve): the
// whole command line is then the authority's (match.Serve), not parsed
// here.
func serving(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "serve" {
			return true
		}
	}
	return false
}

// isHelp reports whether a command-line argument asks for help.
func isHelp(a string) bool {
	switch a {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// shotMoments are the moments -screenshot-when waits for, in the first
// pane: a correction just drawn (the own player moved more than 5 px, with
// both paths, or a shot's two versions), an own hit just drawn with its
// rewound hitbox, the own player dead, the own prediction more than 10 px
// from the authority's confirmed position.
var shotMoments = []string{"correction", "hit", "dead", "ahead"}

// mode is what the program runs.
type mode uint8

const (
	modeWindow   mode = iota // a window: embedded authority or -connect
	modeHeadless             // -headless: bots only, a quality report
	modeReplay               // -replay: a recorded match in the window
	modeSummary              // -replay -headless: a recorded match summarised
)

// config is the parsed command line.
type config struct {
	mode    mode
	connect string // -connect address; empty: an embedded authority
	// data: the embedded authority (or each headless match's) keeps its
	// archive here, which -replay plays back.
	data string
	// replay: the archive's directories; parity its parity shards.
	replay []string
	parity int
	// speed: the replay's starting speed; viewer: whose view (an id or a
	// name, empty: the first player); from: where it starts, from the
	// match's first value.
	speed    float64
	viewer   string
	from     time.Duration
	bots     int
	lag      lagsim.Profile // the window's (left view's) link
	splitLag lagsim.Profile // the right view's link with -split
	split    bool
	// headless
	duration time.Duration
	report   string
	profiles []lagsim.Profile
	// window
	screenshot string
	frames     int
	// shotWhen: after -frames, the screenshot waits for this moment
	// (see shotMoments).
	shotWhen string
	seed     uint64
	// cpuProfile: the authority (-serve, or the headless matches' child)
	// writes a CPU profile here.
	cpuProfile string
	// cluster: the headless matches' authority is a cluster of this many
	// processes (0: one authority); killAfter: one of them is killed
	// with SIGKILL this far into the measured span (0: none).
	cluster   int
	killAfter time.Duration
	// stallFor: with killAfter, the node is stopped (SIGSTOP) instead of
	// killed, and continued this long after.
	stallFor time.Duration
	// shards: "region" cuts the cluster match's arena into a region per
	// node, each a range of the shard map; moveAfter: region 0's range
	// moves to another node this far into the measured span (0: none).
	shards    string
	moveAfter time.Duration
	// authorityProcs is the GOMAXPROCS of the headless matches'
	// authority process; 0 leaves the Go default (every core).
	authorityProcs int
	// shutdownWait bounds the embedded authority's graceful shutdown when
	// the window ends.
	shutdownWait time.Duration
	// overlays are on from the start (-overlays).
	overlays overlays
	// autopilot: a bot plays the window's player(s).
	autopilot bool
	// noLagComp starts with lag compensation off.
	noLagComp bool
}

// usageHead opens the usage text, before the flags.
const usageHead = `Usage: demo-shooter [flags]

Rewind's demo: a top-down shooter showing prediction, lag compensation and
corrections under a simulated link, and measuring them.

  demo-shooter                         a window: an embedded authority, you and 4 bots, mobile link
  demo-shooter -split                  two clients side by side, one per link
  demo-shooter -connect host:7777      play against a running authority
  demo-shooter -headless -bots 16 -duration 60s -profiles broadband,mobile,awful -report q.json
  demo-shooter -headless -cluster 3 -kill-node-after 15s -bots 16 -duration 40s -profiles mobile -report c.json
                                       against a cluster of three authorities, one killed mid-match
  demo-shooter -headless -cluster 3 -shards region -bots 32 -duration 60s -move-range-after 30s -profiles mobile -report s.json
                                       the arena cut into a region per authority, each region's calls
                                       run on its owners, one region moved to another node mid-match
  demo-shooter -data DIR               record the match in an archive (also with -headless)
  demo-shooter -replay DIR             play a recorded match back (-headless: summarise it)
  demo-shooter -serve 127.0.0.1:7777 [authority flags]
                                       the authority alone: it takes every flag of the
                                       authority binary (-data, -wal-flush, -recover, -gossip,
                                       -join, -node-id, -cluster-key, ...);
                                       demo-shooter -serve ADDR -h lists them

In the window F1 lists the keys. Ctrl-C, SIGTERM or closing the window ends
the program and shuts the embedded authority down.

Flags:
`

// parseFlags parses args (without the program name). -h prints the usage
// on out and returns flag.ErrHelp (wrapped in errUsage); errors and their
// usage go to errOut.
func parseFlags(args []string, out, errOut io.Writer) (*config, error) {
	fs := flag.NewFlagSet("demo-shooter", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		w := errOut
		if slices.ContainsFunc(args, isHelp) {
			w = out
		}
		fs.SetOutput(w)
		fmt.Fprint(w, usageHead)
		fs.PrintDefaults()
		fs.SetOutput(errOut)
	}
	presets := strings.Join(lagsim.PresetNames(), "|")
	var (
		_          = fs.String("serve", "", "run only the authority, listening on `ADDR` (host:port); the rest of the command line is the authority's flags (demo-shooter -serve ADDR -h lists them)")
		data       = fs.String("data", "", "the embedded authority (or -headless match's) keeps an archive of the match in `DIR`, for -replay")
		replay     = fs.String("replay", "", "play back the match recorded in the archive `DIR` (comma-separated directories with -parity); with -headless, print its summary")
		parity     = fs.Int("parity", 0, "parity shards of the -replay archive spread over several directories")
		speed      = fs.Float64("speed", 1, "the replay's starting speed, a factor of real time (the arrow keys change it)")
		viewer     = fs.String("player", "", "the replay shows this player's view: its id or name (default: the first; Tab switches)")
		from       = fs.Duration("from", 0, "the replay starts this far into the match")
		connect    = fs.String("connect", "", "play against the authority at `ADDR` instead of an embedded one")
		bots       = fs.Int("bots", 4, "bots to run (each is a client of the authority)")
		lag        = fs.String("lag", "mobile", "lag profile of this client's link, one way: "+presets)
		delay      = fs.Duration("delay", 0, "custom one-way delay (instead of -lag)")
		jitter     = fs.Duration("jitter", 0, "custom one-way jitter, uniform ± (instead of -lag)")
		loss       = fs.Float64("loss", 0, "custom loss probability per packet, 0..1 (instead of -lag)")
		split      = fs.Bool("split", false, "two clients side by side: left under -lag, right under -split-lag")
		splitLag   = fs.String("split-lag", "none", "lag profile of the right view with -split")
		headless   = fs.Bool("headless", false, "no window: bots play a match per profile and a quality report is written")
		duration   = fs.Duration("duration", 60*time.Second, "length of each headless match")
		report     = fs.String("report", "", "write the headless quality report as JSON to `FILE`")
		profiles   = fs.String("profiles", "", "comma-separated lag profiles of the headless matches (default: -lag)")
		screenshot = fs.String("screenshot", "", "run the window for -frames frames, save the last as PNG to `FILE`, exit")
		frames     = fs.Int("frames", 120, "frames to run with -screenshot")
		shotWhen   = fs.String("screenshot-when", "", "after -frames, wait (at most as many frames again) for a moment to save: "+strings.Join(shotMoments, ", "))
		seed       = fs.Uint64("seed", 1, "seed of the bots and the lag simulator")
		cpuProfile = fs.String("cpuprofile", "", "write the authority's CPU profile to `file` (-serve, or the authority of -headless matches)")
		clusterN   = fs.Int("cluster", 0, "with -headless, the authority is a cluster of `N` processes on loopback (2 to 9), each durable in a temporary directory, the bots spread across them with the others as failover addresses, every call traced")
		killAfter  = fs.Duration("kill-node-after", 0, "with -cluster, kill the first node with SIGKILL this long into the measured span, and report lost and duplicate calls, failover times and replica divergence")
		stallFor   = fs.Duration("stall-node-for", 0, "with -kill-node-after, stop the node (SIGSTOP) instead of killing it, and continue it (SIGCONT) this long after: a frozen process that comes back, checked with the others at the end")
		shards     = fs.String("shards", "", "with -cluster, shard the match: region cuts the arena into a vertical strip per node, each a range of the shard map owned by its node and the next, every call run on an owner of its caller's region (relayed by the bot's node)")
		moveAfter  = fs.Duration("move-range-after", 0, "with -shards, move region 0's range to another node this long into the measured span, live, through the operator endpoint (POST /admin/move-range)")
		authProcs  = fs.Int("authority-procs", 1, "cores (GOMAXPROCS) the authority of -headless matches runs on, as a server per match would; 0: every core")
		overlayOn  = fs.String("overlays", "", "netcode overlays on from the start, comma-separated: ghost, hitboxes, corrections or all (F2, F3, F4 toggle them)")
		autopilot  = fs.Bool("autopilot", false, "a bot plays your player (a demo to watch, or screenshots)")
		lagComp    = fs.Bool("lag-compensation", true, "start with lag compensation on (P toggles it)")
		shutWait   = fs.Duration("shutdown-wait", 600*time.Millisecond, "when the window ends, how long the embedded authority may take to end its sessions gracefully before it closes them at once")
	)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	bad := func(format string, a ...any) (*config, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}

	c := &config{connect: *connect, data: *data, parity: *parity, speed: *speed, viewer: *viewer, from: *from, bots: *bots, split: *split, duration: *duration,
		report: *report, screenshot: *screenshot, frames: *frames, shotWhen: *shotWhen, seed: *seed,
		cpuProfile: *cpuProfile, cluster: *clusterN, killAfter: *killAfter, stallFor: *stallFor, shards: *shards, moveAfter: *moveAfter, authorityProcs: *authProcs, shutdownWait: *shutWait, autopilot: *autopilot, noLagComp: !*lagComp}
	if *replay != "" {
		c.replay = strings.Split(*replay, ",")
		for _, f := range []string{"connect", "split", "bots", "data", "report", "profiles", "autopilot", "lag", "delay", "jitter", "loss", "duration", "authority-procs", "lag-compensation", "split-lag"} {
			if set[f] {
				return bad("-replay plays a recorded match back: no -%s", f)
			}
		}
	}
	for _, f := range []string{"speed", "player", "from", "parity"} {
		if set[f] && *replay == "" {
			return bad("-%s needs -replay", f)
		}
	}
	switch {
	case *speed < minSpeed || *speed > maxSpeed:
		return bad("-speed %v outside [%v, %v]", *speed, minSpeed, maxSpeed)
	case *from < 0:
		return bad("-from %v is negative", *from)
	case *parity < 0 || *parity >= len(c.replay) && *parity > 0:
		return bad("-parity %d: want 0 up to one less than the -replay directories (%d)", *parity, len(c.replay))
	case *data != "" && *connect != "":
		return bad("-data records the embedded authority's match: not with -connect")
	case *data != "" && *headless && len(strings.Split(*profiles, ",")) > 1:
		return bad("-data records one match: give -headless one profile")
	case *headless && *replay == "" && (*connect != "" || *screenshot != "" || *split):
		return bad("-headless runs its own authority and no window: no -connect, -screenshot or -split")
	case *bots < 0 || *bots > maxBots:
		return bad("-bots %d outside [0, %d]", *bots, maxBots)
	case *headless && *bots < 1:
		return bad("-headless needs at least one bot")
	case *duration <= 0 || *duration > maxDuration:
		return bad("-duration %v outside (0, %v]", *duration, maxDuration)
	case *frames < 1 || *frames > maxFrames:
		return bad("-frames %d outside [1, %d]", *frames, maxFrames)
	case *shotWhen != "" && !slices.Contains(shotMoments, *shotWhen):
		return bad("-screenshot-when %q: want one of %s", *shotWhen, strings.Join(shotMoments, ", "))
	case *shotWhen != "" && *screenshot == "":
		return bad("-screenshot-when needs -screenshot")
	case set["report"] && !*headless:
		return bad("-report needs -headless")
	case set["profiles"] && !*headless:
		return bad("-profiles needs -headless")
	case set["split-lag"] && !*split:
		return bad("-split-lag needs -split")
	case set["cluster"] && !*headless:
		return bad("-cluster needs -headless")
	case set["cluster"] && (*clusterN < 2 || *clusterN > match.MaxNodes):
		return bad("-cluster %d outside [2, %d]", *clusterN, match.MaxNodes)
	case set["cluster"] && *data != "":
		return bad("-cluster keeps each node's data in a temporary directory: no -data")
	case set["kill-node-after"] && !set["cluster"]:
		return bad("-kill-node-after needs -cluster")
	case *killAfter < 0 || set["kill-node-after"] && *killAfter >= *duration:
		return bad("-kill-node-after %v: want a time inside the measured -duration %v", *killAfter, *duration)
	case set["stall-node-for"] && (!set["kill-node-after"] || *stallFor <= 0 || *killAfter+*stallFor >= *duration):
		return bad("-stall-node-for %v: needs -kill-node-after, and to end inside the measured -duration %v", *stallFor, *duration)
	case set["shards"] && !set["cluster"]:
		return bad("-shards needs -cluster")
	case set["shards"] && *shards != "region":
		return bad("-shards %q: want region", *shards)
	case set["move-range-after"] && !set["shards"]:
		return bad("-move-range-after needs -shards")
	case *moveAfter < 0 || set["move-range-after"] && *moveAfter >= *duration:
		return bad("-move-range-after %v: want a time inside the measured -duration %v", *moveAfter, *duration)
	case set["authority-procs"] && !*headless:
		return bad("-authority-procs needs -headless")
	case *authProcs < 0 || *authProcs > maxAuthorityProcs:
		return bad("-authority-procs %d outside [0, %d]", *authProcs, maxAuthorityProcs)
	case *shutWait <= 0 || *shutWait > maxShutdownWait:
		return bad("-shutdown-wait %v outside (0, %v]", *shutWait, maxShutdownWait)
	}
	if err := c.overlays.set(*overlayOn); err != nil {
		return bad("-overlays: %w", err)
	}
	for _, f := range []string{"overlays", "autopilot", "lag-compensation", "shutdown-wait"} {
		if set[f] && *headless {
			return bad("-%s is the window's: not with -headless", f)
		}
	}
	if *replay != "" && *shotWhen != "" && *shotWhen != "hit" && *shotWhen != "dead" {
		return bad("-screenshot-when %q: a replay has the hit and dead moments only", *shotWhen)
	}
	if *replay != "" && (c.overlays.ghost || c.overlays.corrections) {
		return bad("-overlays: a replay has the hitboxes only (the ghost and the corrections are a live client's)")
	}
	switch {
	case *replay != "" && *headless:
		c.mode = modeSummary
		if *screenshot != "" {
			return bad("-replay -headless prints a summary: no -screenshot")
		}
	case *replay != "":
		c.mode = modeReplay
	case *headless:
		c.mode = modeHeadless
	}

	custom := set["delay"] || set["jitter"] || set["loss"]
	if custom && set["lag"] {
		return bad("-lag and -delay/-jitter/-loss exclude each other")
	}
	if custom {
		c.lag = lagsim.Profile{Name: "custom", Delay: *delay, Jitter: *jitter, Loss: *loss}
		if err := c.lag.Validate(); err != nil {
			return bad("%w", err)
		}
	} else {
		p, err := lagsim.Preset(*lag)
		if err != nil {
			return bad("-lag: %w", err)
		}
		c.lag = p
	}
	p, err := lagsim.Preset(*splitLag)
	if err != nil {
		return bad("-split-lag: %w", err)
	}
	c.splitLag = p

	c.profiles = []lagsim.Profile{c.lag}
	if *profiles != "" {
		c.profiles = nil
		for _, name := range strings.Split(*profiles, ",") {
			p, err := lagsim.Preset(strings.TrimSpace(name))
			if err != nil {
				return bad("-profiles: %w", err)
			}
			if slices.ContainsFunc(c.profiles, func(q lagsim.Profile) bool { return q.Name == p.Name }) {
				return bad("-profiles: %q twice", p.Name)
			}
			c.profiles = append(c.profiles, p)
		}
	}
	return c, nil
}
