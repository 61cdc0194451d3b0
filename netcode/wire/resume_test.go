package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/google/go-cmp/cmp"

	"github.com/rewindnet/rewind/netcode/wire/fb"
)

// rawHello builds a Hello body with the generated builder. resume == nil
// leaves the field out and lays the table out the way the schema before
// it did (three fields), as an older peer sends it.
func rawHello(token []byte, resume []byte) []byte {
	b := flatbuffers.NewBuilder(64)
	tok := b.CreateByteVector(token)
	var res flatbuffers.UOffsetT
	if resume != nil {
		res = b.CreateByteVector(resume)
		fb.HelloStart(b)
	} else {
		b.StartObject(3) // the old HelloStart
	}
	fb.HelloAddVersion(b, ProtocolVersion)
	fb.HelloAddToken(b, tok)
	if resume != nil {
		fb.HelloAddResume(b, res)
	}
	b.Finish(fb.HelloEnd(b))
	return b.FinishedBytes()
}

// rawWelcome is rawHello for Welcome: resume == nil gives the old
// five-field layout.
func rawWelcome(creator uint32, resume []byte) []byte {
	b := flatbuffers.NewBuilder(64)
	var res flatbuffers.UOffsetT
	if resume != nil {
		res = b.CreateByteVector(resume)
		fb.WelcomeStart(b)
	} else {
		b.StartObject(5) // the old WelcomeStart
	}
	fb.WelcomeAddCreator(b, creator)
	fb.WelcomeAddMaxChangeAgeNs(b, int64(time.Second))
	if resume != nil {
		fb.WelcomeAddResume(b, res)
	}
	b.Finish(fb.WelcomeEnd(b))
	return b.FinishedBytes()
}

// TestResumeFromOlderPeer decodes a Hello and a Welcome laid out by the
// schema before the resume fields: they must decode with empty Resume,
// even into a Message whose Resume fields held a token from before.
func TestResumeFromOlderPeer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		kind   Kind
		body   []byte
		fields int64
		want   Message
	}{
		{"hello", KindHello, rawHello([]byte("tok"), nil), 3, Message{Kind: KindHello, Hello: Hello{Version: ProtocolVersion, Token: []byte("tok")}}},
		{"welcome", KindWelcome, rawWelcome(7, nil), 5, Message{Kind: KindWelcome, Welcome: Welcome{Creator: 7, MaxChangeAge: time.Second}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, err := rootTable(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			// The builder trims absent trailing fields from a vtable, so
			// the old layout has at most the old field count.
			if root.vtLen > 4+2*tt.fields {
				t.Fatalf("hand-built old %v has a vtable of %d bytes, want at most %d", tt.kind, root.vtLen, 4+2*tt.fields)
			}
			_, d := newPair(t, Limits{})
			m := Message{Hello: Hello{Resume: []byte("stale")}, Welcome: Welcome{Resume: []byte("stale")}}
			if err := d.Start(rawFrame(tt.kind, tt.body)); err != nil {
				t.Fatal(err)
			}
			if err := d.Next(&m); err != nil {
				t.Fatal(err)
			}
			got := Message{Kind: m.Kind}
			switch tt.kind {
			case KindHello:
				got.Hello = m.Hello
			case KindWelcome:
				got.Welcome = m.Welcome
			}
			if diff := cmp.Diff(tt.want, got, cmpMsg...); diff != "" {
				t.Errorf("old-format %v (-want +got):\n%s", tt.kind, diff)
			}
		})
	}
}

// TestResumeRoundTrip: a token survives encode and decode exactly, and a
// nil token stays absent (a new session).
func TestResumeRoundTrip(t *testing.T) {
	tok := []byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0xa, 0xb, 0xc, 0xd}
	msgs := []Message{
		{Kind: KindHello, Hello: Hello{Version: ProtocolVersion, Resume: tok}},
		{Kind: KindWelcome, Welcome: Welcome{Creator: 9, Resume: tok}},
		{Kind: KindHello, Hello: Hello{Version: ProtocolVersion}},
		{Kind: KindWelcome, Welcome: Welcome{Creator: 10}},
	}
	got := roundTrip(t, msgs)
	if got[2].Hello.Resume != nil || got[3].Welcome.Resume != nil {
		t.Errorf("absent token decoded as %q / %q, want nil", got[2].Hello.Resume, got[3].Welcome.Resume)
	}
}

func TestResumeDecoderRejects(t *testing.T) {
	long := []byte(strings.Repeat("r", 17))
	tests := []struct {
		name string
		body []byte
		kind Kind
	}{
		{"hello resume over limit", rawHello(nil, long), KindHello},
		{"welcome resume over limit", rawWelcome(1, long), KindWelcome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newPair(t, Limits{MaxTextBytes: 16})
			_, err := decodeAll(d, rawFrame(tt.kind, tt.body))
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want %v", err, ErrTooLarge)
			}
			if !strings.Contains(err.Error(), "wire: ") {
				t.Errorf("error %q does not name the package", err)
			}
			// At the limit exactly, it decodes.
			_, d = newPair(t, Limits{MaxTextBytes: 17})
			if _, err := decodeAll(d, rawFrame(tt.kind, tt.body)); err != nil {
				t.Errorf("token at the limit: %v", err)
			}
		})
	}
	// A resume field whose vector runs past the message is a bad offset,
	// not a panic.
	body := rawHello(nil, []byte("0123456789"))
	cut := body[:len(body)-8]
	_, d := newPair(t, Limits{})
	if _, err := decodeAll(d, rawFrame(KindHello, cut)); err == nil {
		t.Error("truncated resume token decoded")
	}
}
