package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/agones"
	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

var program = cli.Program{Name: "cli-test", Functions: counter.Registry}

// syncBuffer collects the server's logs from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log lines with message msg.
func (s *syncBuffer) records(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestEnvName(t *testing.T) {
	if got := cli.EnvName("cluster-key"); got != "REWIND_CLUSTER_KEY" {
		t.Fatalf("EnvName(cluster-key) = %s", got)
	}
}

func TestNodeIDFromName(t *testing.T) {
	for name, want := range map[string]uint8{"rewind-0": 1, "rewind-2": 3, "a-b-c-254": 255} {
		if got, err := cli.NodeIDFromName(name); err != nil || got != want {
			t.Errorf("NodeIDFromName(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"rewind", "rewind-", "rewind-x", "rewind-255", "rewind-+1", ""} {
		if _, err := cli.NodeIDFromName(name); err == nil {
			t.Errorf("NodeIDFromName(%q) accepted", name)
		}
	}
}

// TestParseRanges: -ranges as the README writes it.
func TestParseRanges(t *testing.T) {
	got, err := cli.ParseRanges(`counters/=1,2; players/[00000000-7fffffff]=2,3;"players/"[80000000-ffffffff]=3`)
	if err != nil {
		t.Fatal(err)
	}
	want := []authority.RangeOwners{
		{Range: shardmap.Whole("counters/"), Owners: []uint8{1, 2}},
		{Range: shardmap.Range{Prefix: "players/", Lo: 0, Hi: 0x7fffffff}, Owners: []uint8{2, 3}},
		{Range: shardmap.Range{Prefix: "players/", Lo: 0x80000000, Hi: 0xffffffff}, Owners: []uint8{3}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRanges = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", ";", "players/", "players/=", "players/=0", "players/=1,1", "players/=256", "players=1"} {
		if r, err := cli.ParseRanges(bad); err == nil {
			t.Errorf("ParseRanges(%q) = %+v: want an error", bad, r)
		}
	}
}

// TestUsageErrors: bad values of the operator flags, from the command line
// or the environment, are usage errors before anything starts.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"bad log format", []string{"-log-format", "xml"}, nil},
		{"negative end-when-empty", []string{"-end-when-empty", "-1s"}, nil},
		{"negative join timeout", []string{"-join-timeout", "-1s"}, nil},
		{"node id twice", []string{"-node-id", "2", "-node-id-from-name", "rewind-1"}, nil},
		{"node id from a bad name", []string{"-node-id-from-name", "rewind"}, nil},
		{"ranges without a cluster", []string{"-ranges", "players/=1"}, nil},
		{"watch without a cluster", []string{"-watch", "players/"}, nil},
		{"bad range", []string{"-gossip", "127.0.0.1:0", "-cluster-key", "the cluster key of this test", "-ranges", "players=1"}, nil},
		{"bad owner", []string{"-gossip", "127.0.0.1:0", "-cluster-key", "the cluster key of this test", "-ranges", "players/=1,x"}, nil},
		{"admin without http", []string{"-http-admin"}, nil},
		{"bad environment value", nil, map[string]string{"REWIND_TICK": "often"}},
		{"bad log format from the environment", nil, map[string]string{"REWIND_LOG_FORMAT": "xml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"-listen", "127.0.0.1:0"}, tc.args...)
			err := program.Run(context.Background(), args, io.Discard, func(net.Addr) { t.Error("server started") })
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("run(%q, %v) = %v, want a usage error", tc.args, tc.env, err)
			}
		})
	}
}

// TestAgonesMatch runs a one-match server as an Agones Fleet does: the
// flags from the environment (REWIND_*), a fake of the Agones sidecar
// named by AGONES_SDK_HTTP_PORT. The server tells it Ready, pings Health,
// serves /readyz and /metrics on -http, logs the player's leaving in JSON,
// ends the match once its player left, and tells the sidecar Shutdown.
func TestAgonesMatch(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []string
	)
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "{}")
	}))
	defer sidecar.Close()
	t.Setenv(agones.EnvPort, sidecar.URL[strings.LastIndexByte(sidecar.URL, ':')+1:])
	t.Setenv("REWIND_HTTP", "127.0.0.1:0")
	t.Setenv("REWIND_LOG_FORMAT", "json")
	t.Setenv("REWIND_END_WHEN_EMPTY", "300ms")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- program.Run(ctx, []string{"-listen", "127.0.0.1:0", "-transport", "lan"}, logs, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("the server stopped: %v\n%s", err, logs.b.String())
	}
	waitFor(t, "Ready and a Health ping", func() bool {
		s := seen()
		return len(s) >= 2 && s[0] == "/ready" && s[1] == "/health"
	})

	listening := logs.records("http endpoint listening")
	if len(listening) != 1 {
		t.Fatalf("http endpoint logged %d times", len(listening))
	}
	base := "http://" + listening[0]["addr"].(string)
	for _, path := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !strings.Contains(string(body), "rewind_ready 1") {
			t.Fatalf("/metrics does not say ready:\n%s", body)
		}
	}

	tcfg := transport.LAN()
	tcfg.HandshakeTimeout = 20 * time.Second
	c, err := testclient.Dial(ctx, addr.String(), testclient.Config{Transport: tcfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(counter.Add, counter.AddArgs("x", 1), c.ServerNow(), 0); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == wire.KindCallResult {
			break
		}
	}
	// The match is not over while its player stays: more than the
	// end-when-empty wait passes with the server serving.
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("the match ended with its player connected: %v", err)
	default:
	}
	c.Close("game over")

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the match did not end once its player left")
	}
	s := seen()
	if s[len(s)-1] != "/shutdown" || slices.Index(s, "/shutdown") != len(s)-1 {
		t.Fatalf("sidecar saw %v, want Shutdown last and once", s)
	}
	if len(logs.records("match over: every player left")) != 1 {
		t.Fatalf("no match-over log")
	}
	closed := logs.records("session closed")
	if len(closed) == 0 || closed[0]["cause"] != "transport" || closed[0]["session"] == nil || closed[0]["reason"] == "" {
		t.Fatalf("session closes logged: %v", closed)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
