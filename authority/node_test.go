package authority

import (
	"errors"
	"github.com/rewindnet/rewind/netcode"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode/wire"
)

func TestHMACAuth(t *testing.T) {
	secret := []byte("0123456789abcdef0123")
	a, err := NewHMACAuth(secret, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewHMACAuth([]byte("short"), 0); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("short secret: %v", err)
	}
	now := int64(time.Hour)
	tok, err := IssueToken(secret, "alice", now+int64(time.Minute), [16]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(now, tok); err != nil || p != "alice" {
		t.Fatalf("valid token: %q %v", p, err)
	}
	if _, err := a.Authenticate(now, tok); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replayed token: %v", err)
	}
	expired, _ := IssueToken(secret, "bob", now, [16]byte{2})
	if _, err := a.Authenticate(now, expired); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	forged, _ := IssueToken([]byte("another secret, wrong one"), "mallory", now+1e9, [16]byte{3})
	if _, err := a.Authenticate(now, forged); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged token: %v", err)
	}
	tampered := append([]byte(nil), tok...)
	tampered[2] ^= 1
	if _, err := a.Authenticate(now, tampered); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered token: %v", err)
	}
	for _, junk := range [][]byte{nil, {0}, make([]byte, 100)} {
		if _, err := a.Authenticate(now, junk); !errors.Is(err, ErrAuth) {
			t.Fatalf("junk token %x: %v", junk, err)
		}
	}
	// The replay memory is bounded: with 2 live tokens remembered, a third
	// is refused until one expires.
	t2, _ := IssueToken(secret, "carol", now+int64(time.Minute), [16]byte{4})
	t3, _ := IssueToken(secret, "dave", now+int64(time.Minute), [16]byte{5})
	if _, err := a.Authenticate(now, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(now, t3); !errors.Is(err, ErrAuth) {
		t.Fatalf("over the replay memory: %v", err)
	}
	t4, _ := IssueToken(secret, "erin", now+int64(2*time.Minute), [16]byte{6})
	if _, err := a.Authenticate(now+int64(time.Minute), t4); err != nil {
		t.Fatalf("after expiry freed the memory: %v", err)
	}
}

func TestNodeWithAuth(t *testing.T) {
	secret := []byte("0123456789abcdef0123")
	h := newHarness(t)
	auth, _ := NewHMACAuth(secret, 0)
	h.n.cfg.Auth = auth
	h.exec("connect a")
	tok, _ := IssueToken(secret, "alice", h.now+int64(time.Minute), [16]byte{9})
	h.send("a", &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: tok}})
	if got := h.drain(); !strings.Contains(got, "Welcome") {
		t.Fatalf("valid token: %s", got)
	}
	h.exec("connect b")
	h.send("b", &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: tok}})
	if got := h.drain(); !strings.Contains(got, "code=3") || !strings.Contains(got, "b closed") {
		t.Fatalf("replayed token: %s", got)
	}
}

// TestLimitsIsolateSessions: a session flooding writes and bytes is warned,
// then disconnected, while another session's calls go on unaffected.
func TestLimitsIsolateSessions(t *testing.T) {
	h := newHarness(t)
	h.n.cfg.Limits.WritesPerSecond = 3
	h.n.cfg.Limits.BytesPerSecond = 4096
	h.n.cfg.Limits.CallsPerSecond = 100
	h.exec("connect bad")
	h.exec("hello bad")
	h.exec("connect good")
	h.exec("hello good")
	var transcript strings.Builder
	for i := 0; i < 10; i++ {
		h.now += int64(time.Millisecond)
		transcript.WriteString(h.exec("write bad clients/1/x v"))
		transcript.WriteString(h.exec("call good add 1"))
	}
	got := transcript.String()
	if !strings.Contains(got, "bad closed: disconnected: over 3 written values per second") {
		t.Fatalf("flooding writer not disconnected:\n%s", got)
	}
	if n := strings.Count(got, "good <- CallResult seq="); n != 10 || strings.Contains(got, "rejected") || strings.Contains(got, "good <- Error") {
		t.Fatalf("the good session was affected:\n%s", got)
	}
	// Bytes per second: a session sending big frames is struck too.
	h.exec("connect big")
	h.exec("hello big")
	var big strings.Builder
	for i := 0; i < 8; i++ {
		big.WriteString(h.exec("call big add 1 size=1000"))
	}
	if !strings.Contains(big.String(), "bytes per second") {
		t.Fatalf("byte rate not limited:\n%s", big.String())
	}
}

// TestSlowSessionDisconnected: a watcher whose deliveries pile up beyond
// MaxPendingOutbound between flushes is disconnected rather than silently
// losing values.
func TestSlowSessionDisconnected(t *testing.T) {
	h := newHarness(t)
	h.n.cfg.Limits.MaxPendingOutbound = 3
	h.n.cfg.Limits.CallsPerSecond = 100
	h.exec("connect w")
	h.exec("hello w")
	h.exec("watch w players/")
	h.exec("connect a")
	h.exec("hello a")
	var got strings.Builder
	for i := 0; i < 5; i++ {
		h.now += int64(time.Millisecond)
		got.WriteString(h.exec("call a move 1"))
	}
	if !strings.Contains(got.String(), "w closed: too slow") {
		t.Fatalf("backlogged watcher not closed:\n%s", got.String())
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig(nil)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"sessions": func(c *Config) { c.Limits.MaxSessions = 0 },
		"watches":  func(c *Config) { c.Limits.WatchesPerSession = -1 },
		"rates":    func(c *Config) { c.Limits.CallsPerSecond = 0 },
		"strikes":  func(c *Config) { c.Limits.Strikes = 0 },
		"failover": func(c *Config) { c.Limits.FailoverCalls = -1 },
		"flush":    func(c *Config) { c.FlushEvery = -1 },
		"store":    func(c *Config) { c.Store.MaxChangeAge = 0 },
		"backlog":  func(c *Config) { c.Limits.MaxPendingOutbound = 0 },
	} {
		c := DefaultConfig(nil)
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDeliveriesKeepTheirOrder: a value that turns invalid and comes back
// within one flush reaches a watcher as value, invalid, value — in that
// order, so the watcher ends with it valid.
func TestDeliveriesKeepTheirOrder(t *testing.T) {
	h := newHarness(t)
	h.exec("connect w")
	h.exec("hello w")
	h.exec("watch w total")
	t1 := netcode.Time{Nanos: 9_000 * ms, Creator: 7}
	v := []byte("v")
	h.n.applyChanges(h.now, []netcode.Change{
		{Kind: netcode.Added, Path: "total", Time: t1, Value: v, New: netcode.Valid},
		{Kind: netcode.StateChanged, Path: "total", Time: t1, Value: v, Old: netcode.Valid, New: netcode.Invalid},
		{Kind: netcode.StateChanged, Path: "total", Time: t1, Value: v, Old: netcode.Invalid, New: netcode.Valid},
	})
	got := h.exec("tick")
	want := "w <- Values total@9000c7=\"v\"\nw <- ValidStates total@9000c7→invalid\nw <- Values total@9000c7=\"v\"\n"
	if got != want {
		t.Fatalf("deliveries:\n%s\nwant:\n%s", got, want)
	}
}
