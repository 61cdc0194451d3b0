// Command authority runs a Rewind authority: the server that keeps the
// authoritative store, runs game functions and streams values to watching
// clients over KCP.
//
//	authority -listen 127.0.0.1:7777 -functions counter -log-level debug
//
// Games that link their own functions embed authority.Server instead; this
// binary serves a registry chosen by name (-functions). SIGINT or SIGTERM
// shuts it down gracefully (every client is told why, after what was
// queued for it) and it exits 0; a bad flag or a busy port exits non-zero
// with the reason on stderr.
package main

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

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/transport"
)

// registries maps -functions names to the registry they serve. A game's
// functions are added here by name.
var registries = map[string]func() *netcode.Registry{
	// none serves no functions: a plain path-value store for raw writes
	// and watches.
	"none": func() *netcode.Registry { return nil },
	// counter serves "add" (see testclient.Counter), for smoke tests.
	"counter": testclient.Counter,
	// shooter serves the demo shooter's functions (see demo-shooter/game).
	"shooter": game.Registry,
}

// transports maps -transport names to transport presets.
var transports = map[string]func() transport.Config{
	"internet": transport.Internet,
	"lan":      transport.LAN,
}

// errUsage marks an error in the command line (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "authority:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "authority:", err)
		os.Exit(1)
	}
}

func names[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, "|")
}

// run parses args, serves until ctx ends and shuts down gracefully. It
// calls ready, if set, with the bound address once the server listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	def := authority.DefaultConfig(nil)
	fs := flag.NewFlagSet("authority", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen     = fs.String("listen", "127.0.0.1:7777", "UDP `address` to listen on")
		secret     = fs.String("secret", "", "shared secret (at least 16 bytes): clients must present HMAC tokens signed with it, and the transport is encrypted with a key derived from it; empty accepts everyone, unencrypted")
		functions  = fs.String("functions", "none", "function registry to serve: "+names(registries))
		preset     = fs.String("transport", "internet", "transport preset: "+names(transports))
		nodeID     = fs.Uint("node-id", 0, "this authority's id in its cluster (0-255)")
		changeAge  = fs.Duration("max-change-age", def.Store.MaxChangeAge, "writes older than this are refused; values older become final")
		rewind     = fs.Duration("max-rewind", def.Store.MaxRewind, "past-time reads are clamped to this far back")
		futureSkew = fs.Duration("max-future-skew", def.Store.MaxFutureSkew, "writes further ahead than this are refused")
		tick       = fs.Duration("tick", authority.DefaultTick, "node tick period (finality, watch flushes)")
		flush      = fs.Duration("flush", 0, "batch watch deliveries this long (0: every tick)")
		sessions   = fs.Int("max-sessions", def.Limits.MaxSessions, "sessions at once")
		calls      = fs.Float64("calls-per-sec", def.Limits.CallsPerSecond, "calls per second per session")
		writes     = fs.Float64("writes-per-sec", def.Limits.WritesPerSecond, "raw values written per second per session")
		bytes      = fs.Float64("bytes-per-sec", def.Limits.BytesPerSecond, "bytes received per second per session")
		watches    = fs.Int("watches", def.Limits.WatchesPerSession, "watched prefixes per session")
		level      = fs.String("log-level", "info", "log level: debug|info|warn|error")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: -log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	newReg, ok := registries[*functions]
	if !ok {
		return fmt.Errorf("%w: -functions %q: want one of %s", errUsage, *functions, names(registries))
	}
	newTransport, ok := transports[*preset]
	if !ok {
		return fmt.Errorf("%w: -transport %q: want one of %s", errUsage, *preset, names(transports))
	}
	if *tick <= 0 {
		return fmt.Errorf("%w: -tick %v: want a positive duration", errUsage, *tick)
	}
	if *nodeID > 255 {
		return fmt.Errorf("%w: -node-id %d: want 0 to 255", errUsage, *nodeID)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	cfg := authority.DefaultServerConfig(*listen, newReg())
	cfg.Logger = log
	cfg.Tick = *tick
	cfg.Transport = newTransport()
	n := &cfg.Node
	n.NodeID = uint8(*nodeID)
	n.Store.MaxChangeAge, n.Store.MaxRewind, n.Store.MaxFutureSkew = *changeAge, *rewind, *futureSkew
	n.FlushEvery = *flush
	n.Limits.MaxSessions = *sessions
	n.Limits.CallsPerSecond, n.Limits.WritesPerSecond, n.Limits.BytesPerSecond = *calls, *writes, *bytes
	n.Limits.WatchesPerSession = *watches
	if *secret != "" {
		auth, err := authority.NewHMACAuth([]byte(*secret), 0)
		if err != nil {
			return fmt.Errorf("%w: -secret: %w", errUsage, err)
		}
		n.Auth = auth
		cfg.Transport.Secret = []byte(*secret)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	srv, err := authority.NewServer(cfg)
	if err != nil {
		return err
	}
	log.Info("authority starting", "addr", srv.Addr().String(), "functions", *functions,
		"transport", *preset, "auth", *secret != "", "max_change_age", *changeAge, "max_rewind", *rewind)
	if ready != nil {
		ready(srv.Addr())
	}
	start := time.Now()
	err = srv.Serve(ctx)
	st := srv.Stats()
	log.Info("authority stopped", "uptime", time.Since(start).Round(time.Millisecond),
		"connects", st.Node.Connects, "calls", st.Node.Calls, "writes", st.Node.Writes, "values_sent", st.Node.ValuesSent)
	return err
}
