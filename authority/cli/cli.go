// Package cli is the authority's command line as a library: the flags,
// logging, signal handling and exit statuses of authority/cmd/authority,
// for a game's own server command to reuse with its own functions.
//
// A game's server is a few lines (examples/counter/cmd/counter-server is
// one to copy):
//
//	package main
//
//	import (
//		"github.com/rewindnet/rewind/authority/cli"
//		"example.com/mygame/rules" // the registry the game's client links too
//	)
//
//	func main() {
//		cli.Main(cli.Program{Name: "mygame-server", Functions: rules.Registry})
//	}
//
// It then takes every flag the generic binary takes (-listen, -secret,
// -transport, timing, limits, -log-level; -h lists them), serves the
// game's functions, shuts down gracefully on SIGINT or SIGTERM (every
// client is told why, after what was queued for it) and exits 0; a bad
// flag exits 2 and any other failure (a busy port) exits 1, each with the
// reason on stderr. A game that needs more than flags give (its own
// Authenticator, WriteRule or logger) sets Program.Configure, flags of its
// own Program.Flags, and Program.Started hands it the server once it
// listens (demo-shooter -serve is built so); or it embeds authority.Server
// directly (see package authority).
//
// Every flag can also come from the environment, as REWIND_ and the
// flag's name in capitals with '_' for '-' (REWIND_CLUSTER_KEY for
// -cluster-key), which suits containers: a secret from a Kubernetes
// Secret, a setting from a ConfigMap. A flag on the command line wins.
// In a StatefulSet, -node-id-from-name $(POD_NAME) makes pod rewind-2
// node 3, and -join-timeout keeps members that start together trying to
// join until one answers.
//
// A cluster sharded by ranges: -ranges gives ranges of paths their owners
// ("counters/=1,2;players/[00000000-7fffffff]=2,3", see ParseRanges),
// -watch the prefixes a member holds without owning them, and
// -http-admin serves POST /admin/move-range on -http, which moves a range
// to another member live (authority.Server.MoveRange), and GET
// /admin/shard-map, which rewind-rebalance reads.
//
// Operations:
//
//   - -http ADDR serves /metrics (Prometheus), /healthz, /readyz,
//     /debug/pprof/ and the live page /debug/rewind on a TCP address of
//     its own (package authority/ops). It listens before the archive is
//     recovered, so /healthz answers during a long recovery while
//     /readyz does not.
//   - Logs go to stderr through log/slog, as text or, with -log-format
//     json, one JSON object a line; every refused request and every
//     closed session is logged with its session, player and reason.
//   - Under Agones (AGONES_SDK_HTTP_PORT set), the server tells the
//     Agones sidecar Ready once it serves, Health every two seconds while
//     its node goroutine answers, and Shutdown when it stops; with
//     -end-when-empty the match ends (a graceful stop) once its players
//     have all left (package authority/agones).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/agones"
	"github.com/rewindnet/rewind/authority/membership"
	"github.com/rewindnet/rewind/authority/ops"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// EnvPrefix starts the environment variable that sets a flag.
const EnvPrefix = "REWIND_"

// EnvName returns the environment variable that sets flag name:
// "cluster-key" is REWIND_CLUSTER_KEY.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// NodeIDFromName returns the node id of a member named as a StatefulSet
// names its pods, "<set>-<ordinal>": the ordinal plus one (node ids of a
// cluster start at 1), at most 255.
func NodeIDFromName(name string) (uint8, error) {
	i := strings.LastIndexByte(name, '-')
	digits := name[i+1:]
	ord, err := strconv.Atoi(digits)
	if i < 0 || err != nil || strings.Trim(digits, "0123456789") != "" || ord > 254 {
		return 0, fmt.Errorf("%q does not end in -N with N from 0 to 254", name)
	}
	return uint8(ord + 1), nil
}

// ErrUsage marks an error in the command line: Main exits with status 2.
var ErrUsage = errors.New("usage")

// Program describes a server command.
type Program struct {
	// Name is the command's name, in its usage text, errors and logs.
	Name string
	// Functions returns the registry the server runs: the game's
	// functions, the same registry its clients link. Nil with no
	// Registries serves no functions (a plain path-value store).
	Functions func() *netcode.Registry
	// Registries, when set, lets the -functions flag choose the registry
	// by name (Functions is then ignored); Default names the one served
	// without the flag.
	Registries map[string]func() *netcode.Registry
	Default    string
	// Configure, if set, adjusts the server's configuration after the
	// flags are applied and before it is validated: an Authenticator, a
	// WriteRule, a logger of the game's own.
	Configure func(*authority.ServerConfig) error
	// Flags, if set, defines the command's own flags on the flag set
	// before it is parsed, beside the authority's (a profiler's file, a
	// listen address under another name); Configure reads them.
	Flags func(*flag.FlagSet)
	// Started, if set, is called with the server once it listens, just
	// before it serves: a command keeps it to read its Stats once Run
	// returns, or starts what runs beside it.
	Started func(*authority.Server)
}

// Main runs the program on os.Args until SIGINT or SIGTERM, then exits:
// 0 after a graceful shutdown (or -h), 2 on a bad command line, 1 on any
// other failure, with the reason on stderr.
func Main(p Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := p.Run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, p.name()+":") {
		msg = p.name() + ": " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	if errors.Is(err, ErrUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

func (p Program) name() string {
	if p.Name == "" {
		return "authority"
	}
	return p.Name
}

// transports maps -transport names to transport presets.
var transports = map[string]func() transport.Config{
	"internet": transport.Internet,
	"lan":      transport.LAN,
}

func names[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, "|")
}

// Run parses args, serves until ctx ends and shuts down gracefully. It
// calls ready, if set, with the bound address once the server listens.
// Command-line errors wrap ErrUsage; -h returns flag.ErrHelp after
// printing the usage on stderr.
func (p Program) Run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	def := authority.DefaultConfig(nil)
	fs := flag.NewFlagSet(p.name(), flag.ContinueOnError)
	fs.SetOutput(stderr)
	var functions *string
	if len(p.Registries) > 0 {
		functions = fs.String("functions", p.Default, "function registry to serve: "+names(p.Registries))
	}
	var (
		listen     = fs.String("listen", "127.0.0.1:7777", "UDP `address` to listen on")
		secret     = fs.String("secret", "", "shared secret (at least 16 bytes): clients must present HMAC tokens signed with it, and the transport is encrypted with a key derived from it; empty accepts everyone, unencrypted")
		preset     = fs.String("transport", "internet", "transport preset: "+names(transports))
		nodeID     = fs.Uint("node-id", 0, "this authority's id in its cluster (0-255)")
		idFromName = fs.String("node-id-from-name", "", "take the node id from a `name` ending in -N, as N+1 (a StatefulSet pod's name: rewind-0 is node 1), instead of -node-id")
		changeAge  = fs.Duration("max-change-age", def.Store.MaxChangeAge, "writes older than this are refused; values older become final")
		rewind     = fs.Duration("max-rewind", def.Store.MaxRewind, "past-time reads are clamped to this far back")
		futureSkew = fs.Duration("max-future-skew", def.Store.MaxFutureSkew, "writes further ahead than this are refused")
		tick       = fs.Duration("tick", authority.DefaultTick, "node tick period (finality, watch flushes)")
		flush      = fs.Duration("flush", 0, "batch watch deliveries this long (0: every tick)")
		sessions   = fs.Int("max-sessions", def.Limits.MaxSessions, "players (sessions that said Hello) at once")
		pending    = fs.Int("max-pending-sessions", def.Limits.MaxPendingSessions, "sessions waiting for their Hello at once, apart from players")
		helloWait  = fs.Duration("hello-timeout", def.Limits.HelloTimeout, "time a session has to say Hello")
		calls      = fs.Float64("calls-per-sec", def.Limits.CallsPerSecond, "calls per second per session")
		writes     = fs.Float64("writes-per-sec", def.Limits.WritesPerSecond, "raw values written per second per session")
		bytes      = fs.Float64("bytes-per-sec", def.Limits.BytesPerSecond, "bytes received per second per session")
		watches    = fs.Int("watches", def.Limits.WatchesPerSession, "watched prefixes per session")
		messages   = fs.Float64("messages-per-sec", def.Limits.MessagesPerSecond, "messages handled per second per session (each prefix of a watch counts)")
		snapshots  = fs.Float64("snapshot-values-per-sec", def.Limits.SnapshotValuesPerSecond, "watch snapshot values per second per session")
		hsHost     = fs.Float64("handshakes-per-host", 0, "new sessions per second from one IP address (0: the transport preset's)")
		hsAll      = fs.Float64("handshakes-per-sec", 0, "new sessions per second in all (0: the transport preset's)")
		level      = fs.String("log-level", "info", "log level: debug|info|warn|error")
		data       = fs.String("data", "", "data `directory`: the authority is durable (write-ahead log, snapshots) and restarts from it; empty keeps everything in memory")
		dataDirs   = fs.String("data-dirs", "", "comma-separated data directories (disks) to spread the archive over, instead of -data: Reed-Solomon shards across them, the log mirrored on the first parity+1")
		parity     = fs.Int("parity", 0, "parity shards with -data-dirs: any this many of the directories can be lost")
		walFlush   = fs.Duration("wal-flush", archive.DefaultFlushEvery, "group-commit interval of the write-ahead log: a crash loses at most this much")
		recoverArg = fs.String("recover", "tail", "what a restart does about damage in the archive: tail (cut a torn tail, refuse other damage), skip (skip damaged records, report them) or strict (refuse any)")
		gossip     = fs.String("gossip", "", "gossip `address` (UDP and TCP) for cluster membership: this authority joins a cluster (needs -cluster-key and a distinct -node-id per member); empty: a single authority")
		join       = fs.String("join", "", "comma-separated gossip addresses of cluster members to join (empty: found a cluster the others join)")
		advertise  = fs.String("advertise", "", "address the other authorities reach this one at (default: -listen)")
		clusterKey = fs.String("cluster-key", "", "secret shared by the cluster (at least 16 bytes): authenticates authorities to each other, encrypts gossip and signs resume tokens valid on every member")
		size       = fs.Int("cluster-size", 0, "authorities in the cluster: without a majority of them alive an authority refuses calls (0: no quorum rule)")
		joinWait   = fs.Duration("join-timeout", 0, "keep trying to join the cluster this long when no -join address answers yet, once a second (0: try once); members started together, as a StatefulSet's are, need it")
		ranges     = fs.String("ranges", "", "shard map `ranges` this authority sets when it starts, ';'-separated, each RANGE=OWNERS: a prefix (\"players/\", \"\" for every path) or a prefix with a hexadecimal hash range (\"players/[00000000-7fffffff]\"), and comma-separated node ids, the primary first (\"counters/=1,2;players/=2,3\"); the same on every member, or on one (the map is gossiped). Empty: every member owns every path")
		watch      = fs.String("watch", "", "comma-separated path prefixes this authority holds from the start though it does not own them (those its clients watch and its functions read across ranges)")
		confirm    = fs.String("confirm", "replicas", "when a call is confirmed in a cluster: replicas (once a majority of the cluster, or every replica, has it) or local (once stored here)")
		httpAddr   = fs.String("http", "", "TCP `address` for /metrics, /healthz, /readyz, /debug/pprof/ and /debug/rewind (empty: off); keep it off the public network")
		httpAdmin  = fs.Bool("http-admin", false, "serve the operator's commands on -http too: POST /admin/move-range moves a range of the shard map to another node live; GET /admin/shard-map says this node's id, calls run and map (what rewind-rebalance reads)")
		logFormat  = fs.String("log-format", "text", "log format: text or json (one object a line)")
		endEmpty   = fs.Duration("end-when-empty", 0, "end the match (a graceful stop) once no player has been connected for this long, after the first joined (0: never); for one-match servers such as an Agones Fleet's")
	)
	if p.Flags != nil {
		p.Flags(fs) // before the environment is read: a game's own flags come from it too
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s:\n  Every flag can also be set by the environment variable %s<FLAG> (-cluster-key: %s); the command line wins.\n",
			p.name(), EnvPrefix, EnvName("cluster-key"))
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %w", ErrUsage, EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: -log-level %q: want debug, info, warn or error", ErrUsage, *level)
	}
	newReg, served := p.Functions, ""
	if functions != nil {
		var ok bool
		if newReg, ok = p.Registries[*functions]; !ok {
			return fmt.Errorf("%w: -functions %q: want one of %s", ErrUsage, *functions, names(p.Registries))
		}
		served = *functions
	}
	newTransport, ok := transports[*preset]
	if !ok {
		return fmt.Errorf("%w: -transport %q: want one of %s", ErrUsage, *preset, names(transports))
	}
	if *tick <= 0 {
		return fmt.Errorf("%w: -tick %v: want a positive duration", ErrUsage, *tick)
	}
	if *nodeID > 255 {
		return fmt.Errorf("%w: -node-id %d: want 0 to 255", ErrUsage, *nodeID)
	}
	if *idFromName != "" {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "node-id" })
		if set {
			return fmt.Errorf("%w: -node-id and -node-id-from-name: give one", ErrUsage)
		}
		id, err := NodeIDFromName(*idFromName)
		if err != nil {
			return fmt.Errorf("%w: -node-id-from-name: %w", ErrUsage, err)
		}
		*nodeID = uint(id)
	}
	if *joinWait < 0 {
		return fmt.Errorf("%w: -join-timeout %v: want zero or a positive duration", ErrUsage, *joinWait)
	}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	default:
		return fmt.Errorf("%w: -log-format %q: want text or json", ErrUsage, *logFormat)
	}
	if *endEmpty < 0 {
		return fmt.Errorf("%w: -end-when-empty %v: want zero or a positive duration", ErrUsage, *endEmpty)
	}
	var dirs []string
	switch {
	case *data != "" && *dataDirs != "":
		return fmt.Errorf("%w: -data and -data-dirs: give one", ErrUsage)
	case *data != "":
		dirs = []string{*data}
	case *dataDirs != "":
		dirs = strings.Split(*dataDirs, ",")
	}
	if *parity != 0 && len(dirs) < 2 {
		return fmt.Errorf("%w: -parity %d needs -data-dirs with more directories than that", ErrUsage, *parity)
	}
	mode, err := archive.ParseRecoveryMode(*recoverArg)
	if err != nil {
		return fmt.Errorf("%w: -recover: %w", ErrUsage, err)
	}
	if *gossip != "" && *clusterKey == "" {
		return fmt.Errorf("%w: -gossip needs -cluster-key", ErrUsage)
	}
	var owned []authority.RangeOwners
	var watched []string
	if *gossip == "" && (*ranges != "" || *watch != "") {
		return fmt.Errorf("%w: -ranges and -watch need a cluster (-gossip)", ErrUsage)
	}
	if *ranges != "" {
		var err error
		if owned, err = ParseRanges(*ranges); err != nil {
			return fmt.Errorf("%w: -ranges: %w", ErrUsage, err)
		}
	}
	if *watch != "" {
		watched = strings.Split(*watch, ",")
	}
	if *httpAdmin && *httpAddr == "" {
		return fmt.Errorf("%w: -http-admin needs -http", ErrUsage)
	}
	if *confirm != "replicas" && *confirm != "local" {
		return fmt.Errorf("%w: -confirm %q: want replicas or local", ErrUsage, *confirm)
	}

	var reg *netcode.Registry
	if newReg != nil {
		reg = newReg()
	}
	cfg := authority.DefaultServerConfig(*listen, reg)
	cfg.Logger = log
	cfg.Tick = *tick
	cfg.Transport = newTransport()
	if *hsHost != 0 {
		cfg.Transport.HandshakeRatePerHost = *hsHost
	}
	if *hsAll != 0 {
		cfg.Transport.HandshakeRate = *hsAll
	}
	if len(dirs) > 0 {
		cfg.Data = archive.DefaultOptions(dirs[0])
		cfg.Data.Dirs = dirs
		cfg.Data.Parity = *parity
		cfg.Data.FlushEvery = *walFlush
		cfg.Data.Recover = mode
		cfg.Data.Logger = log
	}
	n := &cfg.Node
	n.NodeID = uint8(*nodeID)
	if *gossip != "" {
		cfg.Cluster = authority.ServerCluster{Gossip: *gossip, Advertise: *advertise, Ranges: owned}
		if *join != "" {
			cfg.Cluster.Join = strings.Split(*join, ",")
		}
		n.Cluster = authority.ClusterConfig{Key: []byte(*clusterKey), Size: *size, ConfirmLocal: *confirm == "local", Watch: watched}
	}
	n.Store.MaxChangeAge, n.Store.MaxRewind, n.Store.MaxFutureSkew = *changeAge, *rewind, *futureSkew
	n.FlushEvery = *flush
	n.Limits.MaxSessions = *sessions
	n.Limits.MaxPendingSessions, n.Limits.HelloTimeout = *pending, *helloWait
	n.Limits.CallsPerSecond, n.Limits.WritesPerSecond, n.Limits.BytesPerSecond = *calls, *writes, *bytes
	n.Limits.WatchesPerSession = *watches
	n.Limits.MessagesPerSecond, n.Limits.SnapshotValuesPerSecond = *messages, *snapshots
	if *secret != "" {
		auth, err := authority.NewHMACAuth([]byte(*secret), 0)
		if err != nil {
			return fmt.Errorf("%w: -secret: %w", ErrUsage, err)
		}
		n.Auth = auth
		cfg.Transport.Secret = []byte(*secret)
	}
	if p.Configure != nil {
		if err := p.Configure(&cfg); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}

	var ep *ops.Endpoint
	if *httpAddr != "" {
		// Before NewServer, which recovers the archive: alive meanwhile,
		// not ready.
		var err error
		if ep, err = ops.Start(ops.Config{Addr: *httpAddr, Name: p.name(), Logger: log, Admin: *httpAdmin}); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ep.Shutdown(sctx)
		}()
		if cfg.Node.RunClock == nil {
			// Per-function run times for /metrics and the page.
			t0 := time.Now()
			cfg.Node.RunClock = func() int64 { return int64(time.Since(t0)) }
		}
	}
	srv, err := authority.NewServer(cfg)
	for deadline := time.Now().Add(*joinWait); errors.Is(err, membership.ErrJoin) && time.Now().Before(deadline); {
		log.Warn("no cluster member answered yet: trying again in a second", "join", *join, "error", err)
		select {
		case <-ctx.Done():
			log.Info(p.name() + " stopped before joining its cluster")
			return nil
		case <-time.After(time.Second):
		}
		srv, err = authority.NewServer(cfg)
	}
	if err != nil {
		return err
	}
	if ep != nil {
		ep.Attach(srv)
	}
	var fnames []string
	if reg != nil {
		fnames = reg.Names()
	}
	log.Info(p.name()+" starting", "addr", srv.Addr().String(), "registry", served, "functions", strings.Join(fnames, ","),
		"transport", *preset, "auth", *secret != "", "max_change_age", *changeAge, "max_rewind", *rewind,
		"data", strings.Join(dirs, ","), "http", *httpAddr)
	if ready != nil {
		ready(srv.Addr())
	}
	if p.Started != nil {
		p.Started(srv)
	}
	start := time.Now()
	matchCtx, endMatch := context.WithCancel(ctx)
	defer endMatch()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(matchCtx) }()
	sdk, underAgones := agones.FromEnv()
	if underAgones {
		go func() {
			// Ready once the node goroutine answers: the server serves.
			for {
				sctx, cancel := context.WithTimeout(matchCtx, time.Second)
				st, err := srv.Status(sctx, authority.StatusOptions{})
				cancel()
				if err == nil && st.Serving {
					break
				}
				if st.Stopped || matchCtx.Err() != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := sdk.Ready(matchCtx); err != nil {
				log.Error("agones: Ready failed", "error", err)
				return
			}
			log.Info("agones: ready")
			sdk.KeepHealthy(matchCtx, agones.HealthEvery, func(ctx context.Context) bool {
				hctx, cancel := context.WithTimeout(ctx, agones.HealthEvery)
				defer cancel()
				st, err := srv.Status(hctx, authority.StatusOptions{})
				return err == nil && st.Serving
			})
		}()
	}
	if *endEmpty > 0 {
		go endWhenEmpty(matchCtx, srv, *endEmpty, endMatch, log)
	}
	err = <-serveErr
	if underAgones {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := sdk.Shutdown(sctx); serr != nil {
			log.Error("agones: Shutdown failed", "error", serr)
		} else {
			log.Info("agones: shutdown sent")
		}
		cancel()
	}
	st := srv.Stats()
	log.Info(p.name()+" stopped", "uptime", time.Since(start).Round(time.Millisecond),
		"connects", st.Node.Connects, "calls", st.Node.Calls, "call_errors", st.Node.CallErrors,
		"calls_rejected", st.Node.CallsRejected, "reruns", st.Node.Reruns,
		"raw_values_written", st.Node.Writes, "values_sent", st.Node.ValuesSent,
		"reruns_too_late", st.Node.RerunsTooLate, "reruns_abandoned", st.Node.RerunsAbandoned,
		"takeovers", st.Node.Takeovers, "failover_calls", st.Node.FailoverCalls)
	return err
}

// ParseRanges parses -ranges: ';'-separated RANGE=OWNERS, each range as
// shardmap.ParseRange reads it and its owners comma-separated node ids,
// the primary first ("counters/=1,2;players/[00000000-7fffffff]=2,3").
func ParseRanges(spec string) ([]authority.RangeOwners, error) {
	var out []authority.RangeOwners
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.LastIndexByte(part, '=')
		if i < 0 {
			return nil, fmt.Errorf("%q: want RANGE=OWNERS", part)
		}
		r, err := shardmap.ParseRange(part[:i])
		if err != nil {
			return nil, err
		}
		var owners []uint8
		for _, o := range strings.Split(part[i+1:], ",") {
			id, err := strconv.ParseUint(strings.TrimSpace(o), 10, 8)
			if err != nil || id == 0 {
				return nil, fmt.Errorf("%q: owner %q is not a node id from 1 to 255", part, o)
			}
			if slices.Contains(owners, uint8(id)) {
				return nil, fmt.Errorf("%q: owner %d listed twice", part, id)
			}
			owners = append(owners, uint8(id))
		}
		if len(owners) > shardmap.MaxOwners {
			return nil, fmt.Errorf("%q: more than %d owners", part, shardmap.MaxOwners)
		}
		out = append(out, authority.RangeOwners{Range: r, Owners: owners})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: no range", spec)
	}
	return out, nil
}

// endWhenEmpty ends the match (calls end) once no player has been
// connected for idle, counting from when the last one left after the
// first joined. It looks once a second, or every idle if shorter.
func endWhenEmpty(ctx context.Context, srv *authority.Server, idle time.Duration, end context.CancelFunc, log *slog.Logger) {
	every := min(time.Second, idle)
	t := time.NewTicker(every)
	defer t.Stop()
	joined := false
	var emptySince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := srv.Status(sctx, authority.StatusOptions{})
		cancel()
		if err != nil {
			continue
		}
		switch players := st.Stats.Node.Players; {
		case players > 0:
			joined, emptySince = true, time.Time{}
		case !joined:
		case emptySince.IsZero():
			emptySince = time.Now()
		case time.Since(emptySince) >= idle:
			log.Info("match over: every player left", "empty_for", time.Since(emptySince).Round(time.Millisecond))
			end()
			return
		}
	}
}
