package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/authority/ops"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

// testSecret signs the players' tokens, so sessions have player names.
var testSecret = []byte("ops test secret, 16+ bytes")

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rig is an authority serving the counter game on loopback with an
// endpoint in front of it.
type rig struct {
	t    testing.TB
	srv  *authority.Server
	ep   *ops.Endpoint
	base string // http://127.0.0.1:port
	logs *syncBuffer
	tcfg transport.Config
	ctx  context.Context
	last map[*testclient.Client]int64 // each client's latest call time
	// latest is the latest call time of any client: calls calls after
	// it, so clients whose clocks disagree by a little never make a call
	// late for another's (a re-run the test did not ask for).
	latest int64
}

func newRig(t testing.TB, tweak func(*authority.ServerConfig)) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	tcfg := transport.LAN()
	tcfg.CloseLinger = 200 * time.Millisecond
	tcfg.HandshakeTimeout = 20 * time.Second // a loaded machine
	tcfg.IdleTimeout = 30 * time.Second
	cfg := authority.DefaultServerConfig("127.0.0.1:0", counter.Registry())
	cfg.Transport = tcfg
	cfg.Logger = log
	// A minute's change window: a loaded machine cannot make calls late.
	cfg.Node.Store.MaxChangeAge = time.Minute
	cfg.Node.Store.MaxRewind = time.Minute
	t0 := time.Now()
	cfg.Node.RunClock = func() int64 { return int64(time.Since(t0)) }
	auth, err := authority.NewHMACAuth(testSecret, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.Auth = auth
	if tweak != nil {
		tweak(&cfg)
	}
	ep, err := ops.Start(ops.Config{Addr: "127.0.0.1:0", Name: "ops-test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Shutdown(context.Background()) })
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ep.Attach(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return &rig{t: t, srv: srv, ep: ep, base: "http://" + ep.Addr().String(), logs: logs, tcfg: tcfg, ctx: ctx,
		last: make(map[*testclient.Client]int64)}
}

// dial connects a player.
func (r *rig) dial(player string) *testclient.Client {
	r.t.Helper()
	tok, err := authority.IssueToken(testSecret, player, time.Now().Add(time.Hour).UnixNano(), [16]byte{byte(len(player)), player[0]})
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := testclient.Dial(r.ctx, r.srv.Addr().String(), testclient.Config{Transport: r.tcfg, Token: tok})
	if err != nil {
		r.t.Fatalf("dial %s: %v", player, err)
	}
	r.t.Cleanup(func() { c.Close("test over") })
	return c
}

// call makes a call of add at write time at, which must be later than
// the client's previous call's.
func (r *rig) call(c *testclient.Client, at int64) {
	r.t.Helper()
	if _, err := c.Call(counter.Add, counter.AddArgs("clicks", 1), at, 0); err != nil {
		r.t.Fatal(err)
	}
	r.last[c] = at
	r.latest = max(r.latest, at)
}

// calls makes n calls of add, each at the client's clock or just after
// the latest call of any client, and waits for as many results.
func (r *rig) calls(c *testclient.Client, n int) {
	r.t.Helper()
	for range n {
		r.call(c, max(c.ServerNow(), r.latest+1))
	}
	r.await(c, n)
}

// await waits for n results of c's calls, each a success.
func (r *rig) await(c *testclient.Client, n int) {
	r.t.Helper()
	for got := 0; got < n; {
		m, err := c.Next(r.ctx)
		if err != nil {
			r.t.Fatalf("waiting for results: %v", err)
		}
		if m.Kind == wire.KindCallResult {
			if m.CallResult.Status != wire.CallOK {
				r.t.Fatalf("call %d: %v %s", m.CallResult.ID.Seq, m.CallResult.Status, m.CallResult.Error)
			}
			got++
		}
	}
}

func (r *rig) get(path string) (int, string) {
	r.t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape parses /metrics with Prometheus' text parser.
func (r *rig) scrape() map[string]*dto.MetricFamily {
	r.t.Helper()
	code, body := r.get("/metrics")
	if code != http.StatusOK {
		r.t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		r.t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (a counter's or gauge's value, a histogram's count), and
// whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// eventually polls cond until it holds, failing after a bound that no
// loaded machine reaches.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsMoveWithCalls: the counters on /metrics, parsed with
// Prometheus' parser, move as players call, are refused and leave; the
// log names the session, player and reason of each refusal and close.
func TestMetricsMoveWithCalls(t *testing.T) {
	r := newRig(t, nil)
	fams := r.scrape()
	if v, ok := value(fams, "rewind_ready"); !ok || v != 1 {
		t.Fatalf("rewind_ready %v %v", v, ok)
	}
	if v, _ := value(fams, "rewind_calls_total", "function", counter.Add); v != 0 {
		t.Fatalf("calls before any: %v", v)
	}
	bytesBefore, _ := value(fams, "rewind_received_bytes_total")

	alice, bob := r.dial("alice"), r.dial("bob")
	r.calls(alice, 5)
	r.calls(bob, 3)
	fams = r.scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rewind_calls_total", []string{"function", counter.Add}, 8},
		{"rewind_call_duration_seconds", []string{"function", counter.Add}, 8}, // no re-run: one run a call
		{"rewind_sessions", []string{"state", "player"}, 2},
		{"rewind_sessions_opened_total", nil, 2},
		{"rewind_refusals_total", []string{"reason", "unknown_function"}, 0},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, _ := value(fams, "rewind_received_bytes_total"); v <= bytesBefore {
		t.Errorf("bytes received %v, before the calls %v", v, bytesBefore)
	}
	if v, _ := value(fams, "rewind_store_paths"); v < 1 {
		t.Errorf("store paths %v", v)
	}
	eventually(t, "a tick: finality has a horizon", func() bool {
		_, ok := value(r.scrape(), "rewind_finality_lag_seconds")
		return ok
	})
	for _, name := range []string{"rewind_clock_error_bound_seconds", "rewind_frames_sent_total",
		"rewind_late_writes_total", "rewind_invalidations_total", "rewind_send_queue_dropped_frames_total", "go_goroutines"} {
		if _, ok := value(fams, name); !ok {
			t.Errorf("%s missing", name)
		}
	}
	for name := range fams {
		if !strings.HasPrefix(name, "rewind_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s outside rewind_*", name)
		}
	}

	// A refused call: counted by reason, and logged with who and why.
	if _, err := alice.Call("nosuch", nil, alice.ServerNow(), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refusal counted", func() bool {
		v, _ := value(r.scrape(), "rewind_refusals_total", "reason", "unknown_function")
		return v == 1
	})
	if v, _ := value(r.scrape(), "rewind_strikes_total", "reason", "unknown_function"); v != 1 {
		t.Errorf("strikes for the unknown function: %v", v)
	}
	refused := findLog(t, r.logs.String(), "request refused")
	if refused["player"] != "alice" || refused["session"] == nil || !strings.Contains(fmt.Sprint(refused["reason"]), `unknown function "nosuch"`) {
		t.Errorf("refusal log %v", refused)
	}

	// bob leaves: a disconnect by the transport, logged with his name.
	bob.Close("bye")
	eventually(t, "bob's disconnect counted", func() bool {
		v, _ := value(r.scrape(), "rewind_disconnects_total", "reason", "transport")
		return v == 1
	})
	closed := findLog(t, r.logs.String(), "session closed")
	if closed["player"] != "bob" || closed["session"] == nil || closed["cause"] != "transport" || closed["reason"] == "" {
		t.Errorf("close log %v", closed)
	}
	if v, _ := value(r.scrape(), "rewind_sessions", "state", "player"); v != 1 {
		t.Errorf("players after bob left: %v", v)
	}
}

// findLog returns the first JSON log line with message msg.
func findLog(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	for line := range strings.Lines(logs) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no log %q in:\n%s", msg, logs)
	return nil
}

// TestProbes: /healthz and /readyz through an endpoint's life: before the
// server exists (recovering), serving, and stopped; /debug/pprof/ is
// served.
func TestProbes(t *testing.T) {
	ep := ops.New(ops.Config{StatusTimeout: 10 * time.Second})
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		rec := newRecorder()
		ep.Handler().ServeHTTP(rec, req)
		return rec.code, rec.body.String()
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "recovering") {
		t.Errorf("healthz before the server: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "recovered: no") {
		t.Errorf("readyz before the server: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "rewind_ready 0") {
		t.Errorf("metrics before the server: %d %q", code, body)
	}

	r := newRig(t, nil)
	if code, body := r.get("/healthz"); code != 200 {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := r.get("/readyz"); code != 200 || !strings.Contains(body, "joined: ok") {
		t.Errorf("readyz: %d %q", code, body)
	}
	if code, body := r.get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof: %d", code)
	}
	if code, body := r.get("/debug/pprof/cmdline"); code != 200 || body == "" {
		t.Errorf("pprof cmdline: %d", code)
	}
	r.srv.Close()
	if code, body := r.get("/readyz"); code != 503 || !strings.Contains(body, "serving: no") {
		t.Errorf("readyz after close: %d %q", code, body)
	}
	if code, _ := r.get("/healthz"); code != 503 {
		t.Errorf("healthz after close: %d", code)
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	code int
	hdr  http.Header
	body bytes.Buffer
}

func newRecorder() *recorder { return &recorder{code: 200, hdr: http.Header{}} }

func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestMetricsArchive: a durable authority reports its log's group commits
// as a histogram and its durable lag.
func TestMetricsArchive(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, func(c *authority.ServerConfig) { c.Data = archiveOptions(dir) })
	r.calls(r.dial("carol"), 4)
	eventually(t, "a group commit", func() bool {
		v, _ := value(r.scrape(), "rewind_archive_fsync_duration_seconds")
		return v >= 1
	})
	fams := r.scrape()
	for _, name := range []string{"rewind_archive_durable_lag_seconds", "rewind_archive_recovery_skipped_bytes", "rewind_archive_log_records_total"} {
		if _, ok := value(fams, name); !ok {
			t.Errorf("%s missing", name)
		}
	}
	if v, _ := value(fams, "rewind_archive_log_records_total"); v < 4 {
		t.Errorf("log records %v, want at least the 4 calls", v)
	}
	if code, body := r.get("/debug/rewind"); code != 200 || !strings.Contains(body, dir) || !strings.Contains(body, "group commits") {
		t.Errorf("the page does not show the archive")
	}
}

func archiveOptions(dir string) archive.Options { return archive.DefaultOptions(dir) }

// TestMetricsCluster: three authorities over loopback, each with its
// endpoint: every one reports three members alive, a quorum, the shard
// map's ranges with their closed-time lag, a replication lag per peer, and
// is ready; calls made on one are counted as replicated in on the others;
// the page shows the members and the shard map.
func TestMetricsCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities over loopback")
	}
	var rigs []*rig
	for i := range 3 {
		rigs = append(rigs, newRig(t, func(c *authority.ServerConfig) {
			c.Node.NodeID = uint8(i + 1)
			c.Node.Cluster = authority.ClusterConfig{Key: []byte("the cluster key of this test run"), Size: 3}
			c.Cluster = authority.ServerCluster{Gossip: "127.0.0.1:0"}
			if i == 0 {
				c.Cluster.Ranges = []authority.RangeOwners{
					{Range: shardmap.Whole(""), Owners: []uint8{1, 2, 3}},
					{Range: shardmap.Whole("players/"), Owners: []uint8{2, 3}},
				}
			} else {
				c.Cluster.Join = []string{rigs[0].srv.GossipAddr()}
			}
		}))
	}
	for i, r := range rigs {
		eventually(t, fmt.Sprintf("node %d sees the cluster", i+1), func() bool {
			f := r.scrape()
			alive, _ := value(f, "rewind_cluster_members", "state", "alive")
			ready, _ := value(f, "rewind_ready")
			ranges, _ := value(f, "rewind_cluster_ranges_owned")
			_, lag2 := value(f, "rewind_cluster_replication_lag_seconds", "peer", strconv.Itoa(1+(i+1)%3))
			_, lag3 := value(f, "rewind_cluster_replication_lag_seconds", "peer", strconv.Itoa(1+(i+2)%3))
			_, closed := value(f, "rewind_cluster_closed_lag_seconds", "range", shardmap.Whole("players/").String())
			return alive == 3 && ready == 1 && ranges == float64(min(i+1, 2)) && lag2 && lag3 && closed
		})
	}
	if v, _ := value(rigs[0].scrape(), "rewind_cluster_quorum"); v != 1 {
		t.Errorf("quorum %v", v)
	}
	rigs[0].calls(rigs[0].dial("dana"), 3)
	for _, r := range rigs[1:] {
		eventually(t, "the calls replicated", func() bool {
			v, _ := value(r.scrape(), "rewind_cluster_replicated_values_total", "direction", "in")
			return v >= 3
		})
	}
	code, body := rigs[1].get("/debug/rewind")
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{"Shard map", shardmap.Whole("players/").String(), "(owned here)", "Members", "alive", rigs[2].srv.GossipAddr()} {
		if !strings.Contains(body, template.HTMLEscapeString(want)) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

// TestAdminMoveRange: POST /admin/move-range is served only with
// Config.Admin, refuses malformed forms, and a server without a cluster;
// the move itself is TestClusterMove's (authority/cmd/authority).
func TestAdminMoveRange(t *testing.T) {
	post := func(ep *ops.Endpoint, form string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "/admin/move-range", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := newRecorder()
		ep.Handler().ServeHTTP(rec, req)
		return rec.code, rec.body.String()
	}
	if code, _ := post(ops.New(ops.Config{}), "range=players/&to=2"); code == http.StatusOK || code == http.StatusConflict {
		t.Errorf("admin command served without Config.Admin: %d", code)
	}
	ep := ops.New(ops.Config{Admin: true})
	if code, body := post(ep, "range=players/&to=2"); code != http.StatusServiceUnavailable {
		t.Errorf("before the server: %d %q", code, body)
	}
	r := newRig(t, nil)
	ep.Attach(r.srv)
	for _, tc := range []struct {
		form string
		code int
		says string
	}{
		{"range=players&to=2", 400, "range"},
		{"range=players/&to=0", 400, "to"},
		{"range=players/", 400, "to"},
		{"range=players/&to=2&from=x", 400, "from"},
		{"range=players/&to=2&settle=-1s", 400, "settle"},
		{"range=players/&to=2", 400, "cluster"},
	} {
		if code, body := post(ep, tc.form); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.form, code, body, tc.code, tc.says)
		}
	}
}
