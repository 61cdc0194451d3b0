package authority

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode/wire"
)

// welcomeOf sends a Hello (with an optional resume token) from a new
// session named name and returns the Welcome it got.
func welcomeOf(t testing.TB, h *harness, name string, resume []byte) wire.Welcome {
	t.Helper()
	h.exec("connect " + name)
	h.send(name, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Resume: resume}})
	got := h.drain()
	if !strings.Contains(got, name+" <- Welcome") {
		t.Fatalf("%s got no Welcome:\n%s", name, got)
	}
	c := h.clients[name]
	return wire.Welcome{Creator: c.creator, Resume: c.resume}
}

func TestResumeConfig(t *testing.T) {
	for name, tt := range map[string]struct {
		mut func(*Config)
		ok  bool
	}{
		"short key":       {func(c *Config) { c.ResumeKey = make([]byte, MinResumeKeyBytes-1) }, false},
		"key at minimum":  {func(c *Config) { c.ResumeKey = make([]byte, MinResumeKeyBytes) }, true},
		"no key":          {func(c *Config) { c.ResumeKey = nil }, true},
		"negative window": {func(c *Config) { c.ResumeWindow = -time.Second }, false},
		"zero window":     {func(c *Config) { c.ResumeWindow = 0 }, true},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig(nil)
			tt.mut(&c)
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadConfig) {
				t.Errorf("error %v does not wrap ErrBadConfig", err)
			}
		})
	}
	n, err := NewNode(Config{Store: DefaultConfig(nil).Store, Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.ResumeWindow != DefaultResumeWindow {
		t.Errorf("zero ResumeWindow became %v, want %v", n.cfg.ResumeWindow, DefaultResumeWindow)
	}
}

// TestResumeDisabled: without a key the Welcome carries no token and a
// Hello's token is ignored (a fresh creator every time).
func TestResumeDisabled(t *testing.T) {
	h := newHarness(t)
	h.n.cfg.ResumeKey = nil
	w := welcomeOf(t, h, "a", nil)
	if len(w.Resume) != 0 {
		t.Fatalf("Welcome without a key carries token %x", w.Resume)
	}
	// A token another node (with a key) issued for creator 1.
	h2 := newHarness(t)
	tok := welcomeOf(t, h2, "x", nil).Resume
	if w2 := welcomeOf(t, h, "b", tok); w2.Creator == w.Creator {
		t.Fatalf("resumed creator %d with resuming disabled", w2.Creator)
	}
	if st := h.n.Stats(); st.Resumes != 0 || len(h.n.creators) != 0 {
		t.Fatalf("resumes=%d creators=%d with resuming disabled", st.Resumes, len(h.n.creators))
	}
}

// TestResumeTokenBinding: a token resumes only on a node with the same key
// and NodeID, for the player it was issued to.
func TestResumeTokenBinding(t *testing.T) {
	secret := []byte("0123456789abcdef0123")
	newAuthHarness := func() *harness {
		h := newHarness(t)
		auth, _ := NewHMACAuth(secret, 0)
		h.n.cfg.Auth = auth
		return h
	}
	var nonce byte
	hello := func(h *harness, name, player string, resume []byte) uint32 {
		t.Helper()
		nonce++
		tok, _ := IssueToken(secret, player, h.now+int64(time.Minute), [16]byte{nonce})
		h.exec("connect " + name)
		h.send(name, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: tok, Resume: resume}})
		if got := h.drain(); !strings.Contains(got, name+" <- Welcome") {
			t.Fatalf("%s got no Welcome:\n%s", name, got)
		}
		return h.clients[name].creator
	}
	h := newAuthHarness()
	alice := hello(h, "alice", "alice", nil)
	tok := h.clients["alice"].resume
	if got := hello(h, "bob", "bob", tok); got == alice {
		t.Errorf("bob resumed alice's creator %d with her token", got)
	}
	if got := hello(h, "alice2", "alice", tok); got != alice {
		t.Errorf("alice resumed as creator %d, want %d", got, alice)
	}

	// Another key, or another NodeID with the same key: not resumed.
	other := newHarness(t)
	other.n.cfg.ResumeKey = []byte("another key, also long enough!!")
	welcomeOf(t, other, "o", nil)
	if w := welcomeOf(t, other, "o2", welcomeOf(t, newHarness(t), "x", nil).Resume); w.Creator == 1 {
		t.Errorf("a token of another key resumed creator %d", w.Creator)
	}
	node2 := newHarness(t)
	node2.n.cfg.NodeID = 2
	node2.n.nextCrea = 1
	tok1 := welcomeOf(t, newHarness(t), "x", nil).Resume // creator 1 of node 0
	if w := welcomeOf(t, node2, "y", tok1); w.Creator>>24 != 2 {
		t.Errorf("node 2 assigned creator %#x from node 0's token", w.Creator)
	}
}

// TestResumeRecordsBounded: the node remembers at most Limits.MaxSessions
// ended creators, forgetting the oldest first; resuming one and ending
// again does not count it twice.
func TestResumeRecordsBounded(t *testing.T) {
	h := newHarness(t) // MaxSessions 8
	max := h.n.cfg.Limits.MaxSessions
	var toks [][]byte
	var creators []uint32
	for i := range max + 3 {
		name := fmt.Sprintf("s%d", i)
		w := welcomeOf(t, h, name, nil)
		toks = append(toks, w.Resume)
		creators = append(creators, w.Creator)
		h.exec("disconnect " + name)
	}
	if len(h.n.creators) != max || h.n.endedLive != max {
		t.Fatalf("%d creators and %d ended records remembered, want %d", len(h.n.creators), h.n.endedLive, max)
	}
	// The newest max resume, each ending again, several times over: the
	// stale entries they leave push nobody out.
	for round := range 3 {
		for i := len(toks) - 1; i >= 3; i-- {
			name := fmt.Sprintf("r%d-%d", round, i)
			if w := welcomeOf(t, h, name, toks[i]); w.Creator != creators[i] {
				t.Fatalf("%s: creator %d, want %d resumed", name, w.Creator, creators[i])
			}
			h.exec("disconnect " + name)
		}
	}
	if len(h.n.creators) != max || h.n.endedLive != max || len(h.n.ended) > 2*max {
		t.Fatalf("%d creators, %d current and %d filed ended records, want %d, %d and at most %d",
			len(h.n.creators), h.n.endedLive, len(h.n.ended), max, max, 2*max)
	}
	// The three oldest were forgotten: a fresh creator each.
	for i := range 3 {
		if w := welcomeOf(t, h, fmt.Sprintf("old%d", i), toks[i]); w.Creator == creators[i] {
			t.Errorf("forgotten creator %d resumed", creators[i])
		}
	}
}

// TestResumeFreshCreatorSkipsRemembered: after the creator counter wraps,
// a fresh session never gets an id a resumable session still holds.
func TestResumeFreshCreatorSkipsRemembered(t *testing.T) {
	h := newHarness(t)
	w := welcomeOf(t, h, "a", nil)
	h.exec("disconnect a")
	h.n.nextCrea = w.Creator // as if 16M sessions later
	if got := welcomeOf(t, h, "b", nil); got.Creator == w.Creator {
		t.Fatalf("fresh session got remembered creator %d", got.Creator)
	}
	if got := welcomeOf(t, h, "a2", w.Resume); got.Creator != w.Creator {
		t.Fatalf("resume got creator %d, want %d", got.Creator, w.Creator)
	}
}

// FuzzNodeResume offers the node arbitrary resume tokens: it must never
// panic, and it must resume creator 1 only for a token it issued.
func FuzzNodeResume(f *testing.F) {
	issued := welcomeOf(f, newHarness(f), "a", nil).Resume
	f.Add(issued)
	tampered := bytes.Clone(issued)
	tampered[len(tampered)-1] ^= 0x80
	f.Add(tampered)
	f.Add(issued[:len(issued)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tok []byte) {
		h := newHarness(t)
		first := welcomeOf(t, h, "a", nil)
		if !bytes.Equal(first.Resume, issued) {
			t.Fatalf("the node is not deterministic: token %x, then %x", issued, first.Resume)
		}
		h.exec("connect b")
		h.send("b", &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Resume: tok}})
		got := h.drain()
		if !strings.Contains(got, "b <- Welcome") {
			t.Fatalf("no Welcome for token %x:\n%s", tok, got)
		}
		if resumed := h.clients["b"].creator == first.Creator; resumed != bytes.Equal(tok, issued) {
			t.Fatalf("token %x: resumed=%v (issued %x)", tok, resumed, issued)
		}
	})
}

// TestServerResumeKey: a server without a resume key generates a random
// one of its own; a key that is set is kept.
func TestServerResumeKey(t *testing.T) {
	keyOf := func(key []byte) []byte {
		t.Helper()
		cfg := DefaultServerConfig("127.0.0.1:0", nil)
		cfg.Node.ResumeKey = key
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.node.cfg.ResumeKey
	}
	k1, k2 := keyOf(nil), keyOf(nil)
	if len(k1) != 32 || len(k2) != 32 || bytes.Equal(k1, k2) {
		t.Errorf("generated keys %x and %x: want 32 random bytes each", k1, k2)
	}
	set := []byte("a cluster-wide resume key, shared")
	if got := keyOf(set); !bytes.Equal(got, set) {
		t.Errorf("set key became %x", got)
	}
}

// BenchmarkHello measures a session's whole Hello on the node (Connect,
// Hello, Welcome, Ready, Disconnect): without a resume key (the baseline),
// with one (a token issued), and resuming (a token checked, then issued).
func BenchmarkHello(b *testing.B) {
	enc, _ := wire.NewEncoder(wire.Limits{})
	for _, bc := range []struct {
		name   string
		key    []byte
		resume bool
	}{
		{"no-key", nil, false},
		{"fresh", []byte("benchmark resume key, 32 bytes!!"), false},
		{"resume", []byte("benchmark resume key, 32 bytes!!"), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig(testRegistry())
			cfg.ResumeKey = bc.key
			n, err := NewNode(cfg)
			if err != nil {
				b.Fatal(err)
			}
			now := int64(10 * time.Second)
			hello := func(tok []byte) []byte {
				frame, err := enc.AppendHello(enc.BeginFrame(nil), &wire.Hello{Version: wire.ProtocolVersion, Resume: tok})
				if err != nil {
					b.Fatal(err)
				}
				return frame
			}
			frame := hello(nil)
			if bc.resume {
				id, _ := n.Connect(now, "b")
				n.Step(now, id, frame)
				n.Ready()
				n.Disconnect(now, id)
				var tok []byte
				for _, s := range n.creators {
					tok = n.resumeToken(s.creator, now, "")
				}
				frame = hello(tok)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				id, err := n.Connect(now, "b")
				if err != nil {
					b.Fatal(err)
				}
				n.Step(now, id, frame)
				if out := n.Ready(); len(out) != 1 || len(out[0].Frames) != 1 {
					b.Fatalf("no Welcome: %+v", out)
				}
				n.Disconnect(now, id)
			}
			b.StopTimer()
			if st := n.Stats(); bc.resume && st.Resumes != uint64(b.N) {
				b.Fatalf("%d resumes in %d Hellos", st.Resumes, b.N)
			}
		})
	}
}
