package authority

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rewindnet/rewind/netcode/wire"
)

// TestErrorTextsAreWireSafe: the texts the node sends (a function's error,
// a write rule's refusal) are cut to the wire's text limit and made valid
// UTF-8, so a game function's odd error never closes its caller's session
// with an encoding failure.
func TestErrorTextsAreWireSafe(t *testing.T) {
	h := newHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	got := h.exec("call a junk")
	if !strings.Contains(got, "CallResult seq=1 failed") || strings.Contains(got, "closed") {
		t.Fatalf("a failing call with a junk error text:\n%s", got)
	}
	line := got[strings.Index(got, "failed"):]
	if !strings.Contains(line, "bin\uFFFD ") {
		t.Errorf("the text's bad bytes are not replaced: %.80s", line)
	}
	// "bin", the replacement rune, a space, then as many 2-byte runes as
	// fit in the wire's text limit.
	if n, want := strings.Count(line, "é"), (h.n.cfg.Wire.MaxTextBytes-7)/2; n != want {
		t.Errorf("%d runes of the text kept, want %d", n, want)
	}
	// The call still answers with a text within the limit, and the
	// session goes on.
	if got := h.exec("ping a"); !strings.Contains(got, "Ping 7") {
		t.Fatalf("session unusable after the junk error:\n%s", got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("transcript not UTF-8")
	}
}

// TestRepliesSplitToFrameLimits: two frames of 600 Pings handled before the
// node's output is sent make 1,200 replies; they must leave in frames the
// client can read (at most Wire.MaxMessages messages each), and an Error
// closing the session after them must be readable too.
func TestRepliesSplitToFrameLimits(t *testing.T) {
	h := newHarness(t)
	h.exec("connect a")
	h.exec("hello a")
	c := h.clients["a"]
	pings := func() []byte {
		f := c.enc.BeginFrame(nil)
		for i := range 600 {
			var err error
			if f, err = c.enc.AppendPing(f, &wire.Ping{Seq: uint64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	h.n.Step(h.now, c.id, pings())
	h.n.Step(h.now, c.id, pings())
	h.n.Step(h.now, c.id, []byte{0xff}) // a bad frame: an Error, then the close
	got := h.drain()                    // fails the test on a frame the client cannot decode
	if n := strings.Count(got, "a <- Ping"); n != 1200 {
		t.Errorf("%d Pings echoed, want 1200", n)
	}
	if !strings.Contains(got, "a <- Error code=1") || !strings.Contains(got, "a closed") {
		t.Errorf("no readable Error before the close:\n%s", got[max(0, len(got)-300):])
	}
}
