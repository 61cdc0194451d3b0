package agones_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority/agones"
)

// sidecar is a fake of the Agones SDK server's REST endpoints: it records
// every request and answers with status(path), 200 by default.
type sidecar struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []string
	status func(path string, n int) int // n: how many requests of path came before
}

func newSidecar(t *testing.T) *sidecar {
	s := &sidecar{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := 0
		for _, c := range s.calls {
			if c == r.URL.Path {
				n++
			}
		}
		s.calls = append(s.calls, r.URL.Path)
		status := s.status
		s.mu.Unlock()
		switch {
		case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || string(body) != "{}":
			http.Error(w, "want POST of {} as JSON", http.StatusBadRequest)
		case status != nil:
			w.WriteHeader(status(r.URL.Path, n))
		default:
			io.WriteString(w, "{}")
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sidecar) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCalls(t *testing.T) {
	sc := newSidecar(t)
	c := agones.New(sc.URL + "/")
	ctx := bounded(t)
	for _, f := range []func(context.Context) error{c.Ready, c.Health, c.Shutdown} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sc.seen(), []string{"/ready", "/health", "/shutdown"}; !slices.Equal(got, want) {
		t.Fatalf("sidecar saw %v, want %v", got, want)
	}
}

// TestRetries: a sidecar that is not up yet, or answers 5xx, is asked
// again; a 4xx is not retried.
func TestRetries(t *testing.T) {
	sc := newSidecar(t)
	sc.status = func(path string, n int) int {
		if path == "/ready" && n < 2 {
			return http.StatusServiceUnavailable
		}
		if path == "/health" {
			return http.StatusNotFound
		}
		return http.StatusOK
	}
	c := agones.New(sc.URL)
	ctx := bounded(t)
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sc.seen(); !slices.Equal(got, []string{"/ready", "/ready", "/ready"}) {
		t.Fatalf("sidecar saw %v", got)
	}
	if err := c.Health(ctx); !errors.Is(err, agones.ErrRefused) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("health against a 404: %v", err)
	}
	if got := sc.seen(); len(got) != 4 {
		t.Fatalf("a 4xx was retried: %v", got)
	}

	// Nothing listening: retried until the context ends.
	addr := sc.URL
	sc.Close()
	short, cancel := context.WithTimeout(context.Background(), 3*agones.FirstBackoff)
	defer cancel()
	if err := agones.New(addr).Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown with no sidecar: %v", err)
	}
}

// TestKeepHealthy: Health goes out every period while healthy says so,
// none while it does not, and KeepHealthy returns when ctx ends.
func TestKeepHealthy(t *testing.T) {
	sc := newSidecar(t)
	c := agones.New(sc.URL)
	var healthy atomic.Bool
	healthy.Store(true)
	var asked atomic.Int64
	ctx, cancel := context.WithCancel(bounded(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.KeepHealthy(ctx, 10*time.Millisecond, func(context.Context) bool {
			asked.Add(1)
			return healthy.Load()
		})
	}()
	waitFor(t, "three health pings", func() bool { return len(sc.seen()) >= 3 })
	healthy.Store(false)
	// Once asked twice more, every later answer is unhealthy: no ping.
	a := asked.Load()
	waitFor(t, "two more checks", func() bool { return asked.Load() >= a+2 })
	n := len(sc.seen())
	b := asked.Load()
	waitFor(t, "three more checks", func() bool { return asked.Load() >= b+3 })
	if got := len(sc.seen()); got != n {
		t.Fatalf("%d pings while unhealthy", got-n)
	}
	cancel()
	<-done
	for _, p := range sc.seen() {
		if p != "/health" {
			t.Fatalf("KeepHealthy sent %s", p)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(agones.EnvPort, "")
	if _, ok := agones.FromEnv(); ok {
		t.Fatal("a client without AGONES_SDK_HTTP_PORT")
	}
	sc := newSidecar(t)
	t.Setenv(agones.EnvPort, sc.URL[strings.LastIndexByte(sc.URL, ':')+1:])
	c, ok := agones.FromEnv()
	if !ok {
		t.Fatal("no client with AGONES_SDK_HTTP_PORT set")
	}
	if err := c.Ready(bounded(t)); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
