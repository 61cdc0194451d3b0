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
	"strings"
	"syscall"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

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
		confirm    = fs.String("confirm", "replicas", "when a call is confirmed in a cluster: replicas (once a majority of the cluster, or every replica, has it) or local (once stored here)")
	)
	if p.Flags != nil {
		p.Flags(fs)
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
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
		cfg.Cluster = authority.ServerCluster{Gossip: *gossip, Advertise: *advertise}
		if *join != "" {
			cfg.Cluster.Join = strings.Split(*join, ",")
		}
		n.Cluster = authority.ClusterConfig{Key: []byte(*clusterKey), Size: *size, ConfirmLocal: *confirm == "local"}
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

	srv, err := authority.NewServer(cfg)
	if err != nil {
		return err
	}
	var fnames []string
	if reg != nil {
		fnames = reg.Names()
	}
	log.Info(p.name()+" starting", "addr", srv.Addr().String(), "registry", served, "functions", strings.Join(fnames, ","),
		"transport", *preset, "auth", *secret != "", "max_change_age", *changeAge, "max_rewind", *rewind,
		"data", strings.Join(dirs, ","))
	if ready != nil {
		ready(srv.Addr())
	}
	if p.Started != nil {
		p.Started(srv)
	}
	start := time.Now()
	err = srv.Serve(ctx)
	st := srv.Stats()
	log.Info(p.name()+" stopped", "uptime", time.Since(start).Round(time.Millisecond),
		"connects", st.Node.Connects, "calls", st.Node.Calls, "call_errors", st.Node.CallErrors,
		"calls_rejected", st.Node.CallsRejected, "reruns", st.Node.Reruns,
		"raw_values_written", st.Node.Writes, "values_sent", st.Node.ValuesSent)
	return err
}
