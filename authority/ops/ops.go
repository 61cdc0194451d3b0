// Package ops is an authority's operator side over HTTP: Prometheus
// metrics, health and readiness probes, Go's profiler, and a live page of
// what the authority is doing.
//
// An Endpoint listens on its own address, apart from the game's UDP port,
// before the authority exists: a restart that recovers a large archive
// answers /healthz (alive) while /readyz says it is still recovering.
// Attach hands it the server once NewServer has returned:
//
//	ep, err := ops.Start(ops.Config{Addr: "127.0.0.1:9090", Logger: log})
//	...
//	srv, err := authority.NewServer(cfg) // recovers from the archive
//	...
//	ep.Attach(srv)
//	err = srv.Serve(ctx)
//	ep.Shutdown(context.Background())
//
// It serves:
//
//   - /metrics: Prometheus text format, every name rewind_*, units in the
//     names, labels from small fixed sets (a function of the registry, a
//     cause, a peer's node id, a range), never a session or a path; Go's
//     runtime and process metrics beside them.
//   - /healthz: 200 while the process is alive and its node goroutine
//     answers within Config.StatusTimeout; 503 once it does not (stuck),
//     or after the server stopped.
//   - /readyz: 200 once the authority recovered its archive, caught up
//     with its cluster with a quorum (if it is in one), and serves; 503
//     with the reason otherwise, and from the moment it starts shutting
//     down.
//   - /debug/pprof/: Go's profiler.
//   - POST /admin/move-range (only with Config.Admin): moves a range of
//     the shard map to another node live (Server.MoveRange) and answers
//     once every member holds the new map; form values range (as the
//     page lists it: "players/" or "players/[00000000-7fffffff]"), to
//     (a node id), and optionally from (the owner that leaves; default
//     the primary) and settle (a duration; default 1 s).
//   - GET /admin/shard-map (only with Config.Admin): JSON, this node's id,
//     the calls it has run, and the live ranges of its shard map with
//     their owners (ShardMapInfo): what a rebalancer (rewind-rebalance)
//     reads of each node.
//   - /debug/rewind: a page that refreshes itself every two seconds: the
//     sessions (player, round trip, clock offset, calls per second,
//     strikes), the functions, refusals and disconnects by reason, the
//     shard map with owners and lag, the members, the archive, and the
//     latest re-runs with why each happened.
//
// Nothing here touches the node: every answer is built from one
// Server.Status, which the node goroutine fills in between its rounds.
// Keep the address off the public network (loopback, or a cluster's pod
// network): the page names players and addresses, and the profiler costs
// CPU while it runs.
package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rewindnet/rewind/authority"
)

// Config configures an Endpoint.
type Config struct {
	// Addr is the TCP address to listen on ("127.0.0.1:9090"; port 0
	// picks one).
	Addr string
	// Name is the program's name, shown on the page.
	Name string
	// Logger receives the endpoint's own logs. Nil discards them.
	Logger *slog.Logger
	// StatusTimeout bounds how long a request waits for the node
	// goroutine; past it /healthz fails. Zero: DefaultStatusTimeout.
	StatusTimeout time.Duration
	// PageSessions bounds the sessions the page lists (lowest ids
	// first). Zero: DefaultPageSessions.
	PageSessions int
	// Admin serves the operator's commands (POST /admin/move-range)
	// beside the read-only endpoints.
	Admin bool
}

// Defaults.
const (
	DefaultStatusTimeout = 5 * time.Second
	DefaultPageSessions  = 200
	// MoveTimeout bounds a range move that /admin/move-range waits for.
	MoveTimeout = 5 * time.Minute
	// RefreshEvery is how often the page refreshes itself.
	RefreshEvery = 2 * time.Second
)

// ErrRecovering is what an Endpoint without a server says: the authority
// is still starting (recovering its archive, joining its cluster).
var ErrRecovering = errors.New("ops: recovering: no server yet")

// Endpoint serves the operator endpoints of one authority.
type Endpoint struct {
	cfg   Config
	log   *slog.Logger
	srv   atomic.Pointer[authority.Server]
	reg   *prometheus.Registry
	mux   *http.ServeMux
	ln    net.Listener
	http  *http.Server
	start time.Time

	mu    sync.Mutex // guards rates
	rates rates
}

// New returns an Endpoint that is not listening: its Handler can be
// mounted on a server of the caller's. Start is New with a listener.
func New(cfg Config) *Endpoint {
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = DefaultStatusTimeout
	}
	if cfg.PageSessions <= 0 {
		cfg.PageSessions = DefaultPageSessions
	}
	if cfg.Name == "" {
		cfg.Name = "authority"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Endpoint{cfg: cfg, log: log, reg: prometheus.NewRegistry(), mux: http.NewServeMux(), start: time.Now()}
	e.reg.MustRegister(newCollector(e), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e.mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	e.mux.HandleFunc("GET /healthz", e.healthz)
	e.mux.HandleFunc("GET /readyz", e.readyz)
	e.mux.HandleFunc("GET /debug/rewind", e.page)
	e.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	e.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	e.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	e.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	e.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	if cfg.Admin {
		e.mux.HandleFunc("POST /admin/move-range", e.moveRange)
		e.mux.HandleFunc("GET /admin/shard-map", e.shardMap)
	}
	e.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/debug/rewind", http.StatusFound)
	})
	return e
}

// Start listens on cfg.Addr and serves until Shutdown.
func Start(cfg Config) (*Endpoint, error) {
	e := New(cfg)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	e.ln = ln
	e.http = &http.Server{Handler: e.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)}
	go func() {
		if err := e.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("http endpoint stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	e.log.Info("http endpoint listening", "addr", ln.Addr().String())
	return e, nil
}

// Addr returns the address Start listens on (nil after New).
func (e *Endpoint) Addr() net.Addr {
	if e.ln == nil {
		return nil
	}
	return e.ln.Addr()
}

// Handler returns the endpoint's routes.
func (e *Endpoint) Handler() http.Handler { return e.mux }

// Attach hands the endpoint the server it reports on: the authority has
// recovered. Calls before Attach report that it is recovering.
func (e *Endpoint) Attach(s *authority.Server) { e.srv.Store(s) }

// Shutdown stops listening and waits, within ctx, for the requests being
// served (a no-op after New).
func (e *Endpoint) Shutdown(ctx context.Context) error {
	if e.http == nil {
		return nil
	}
	return e.http.Shutdown(ctx)
}

// readiness is what /readyz checks.
type readiness struct {
	recovered, joined, serving bool
	why                        string
}

func (r readiness) ok() bool { return r.recovered && r.joined && r.serving }

// status reads the attached server's status and judges its readiness.
func (e *Endpoint) status(ctx context.Context, opts authority.StatusOptions) (authority.Status, readiness, error) {
	s := e.srv.Load()
	if s == nil {
		return authority.Status{}, readiness{why: "recovering: the archive is being read, or the server is starting"}, ErrRecovering
	}
	st, err := s.Status(ctx, opts)
	if err != nil {
		return st, readiness{recovered: true, why: "the node goroutine did not answer: " + err.Error()}, err
	}
	r := readiness{recovered: true, joined: st.Joined, serving: st.Serving}
	switch {
	case !st.Serving:
		r.why = "not serving: starting, shutting down or stopped"
	case !st.Joined:
		r.why = "joining the cluster: catching up with its members, or without a quorum"
	}
	return st, r, nil
}

func (e *Endpoint) healthz(w http.ResponseWriter, r *http.Request) {
	s := e.srv.Load()
	if s == nil {
		io.WriteString(w, "ok: recovering\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.StatusTimeout)
	defer cancel()
	st, err := s.Status(ctx, authority.StatusOptions{})
	switch {
	case err != nil:
		http.Error(w, fmt.Sprintf("unhealthy: the node goroutine did not answer within %v", e.cfg.StatusTimeout), http.StatusServiceUnavailable)
	case st.Stopped:
		http.Error(w, "unhealthy: the server stopped", http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ok\n")
	}
}

func (e *Endpoint) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.StatusTimeout)
	defer cancel()
	_, rd, _ := e.status(ctx, authority.StatusOptions{})
	var b strings.Builder
	check := func(name string, ok bool) {
		state := "ok"
		if !ok {
			state = "no"
		}
		fmt.Fprintf(&b, "%s: %s\n", name, state)
	}
	check("recovered", rd.recovered)
	check("joined", rd.joined)
	check("serving", rd.serving)
	if !rd.ok() {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n%s", rd.why, b.String())
		return
	}
	fmt.Fprintf(w, "ready\n%s", b.String())
}
