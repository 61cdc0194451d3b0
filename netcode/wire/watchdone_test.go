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

// rawOldWatch builds a Watch body the way the schema before the done
// field laid it out (three fields).
func rawOldWatch(prefixes ...string) []byte {
	b := flatbuffers.NewBuilder(64)
	offs := make([]flatbuffers.UOffsetT, len(prefixes))
	for i, p := range prefixes {
		offs[i] = b.CreateString(p)
	}
	fb.WatchStartPrefixesVector(b, len(offs))
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	ps := b.EndVector(len(offs))
	b.StartObject(3) // the old WatchStart
	fb.WatchAddPrefixes(b, ps)
	fb.WatchAddMode(b, byte(WatchHistory))
	fb.WatchAddWindowNs(b, int64(time.Second))
	b.Finish(fb.WatchEnd(b))
	return b.FinishedBytes()
}

// rawWatchDone builds a WatchDone body; noPrefix leaves the field out.
func rawWatchDone(prefix string, noPrefix bool) []byte {
	b := flatbuffers.NewBuilder(64)
	var p flatbuffers.UOffsetT
	if !noPrefix {
		p = b.CreateString(prefix)
	}
	fb.WatchDoneStart(b)
	if !noPrefix {
		fb.WatchDoneAddPrefix(b, p)
	}
	b.Finish(fb.WatchDoneEnd(b))
	return b.FinishedBytes()
}

// TestWatchFromOlderClient: a Watch laid out before the done field decodes
// with Done false, even into a Message whose Watch asked for it before.
func TestWatchFromOlderClient(t *testing.T) {
	body := rawOldWatch("things/", "total")
	root, err := rootTable(body)
	if err != nil {
		t.Fatal(err)
	}
	if root.vtLen > 4+2*3 {
		t.Fatalf("hand-built old Watch has a vtable of %d bytes, want at most %d", root.vtLen, 4+2*3)
	}
	_, d := newPair(t, Limits{})
	m := Message{Watch: Watch{Done: true}}
	if err := d.Start(rawFrame(KindWatch, body)); err != nil {
		t.Fatal(err)
	}
	if err := d.Next(&m); err != nil {
		t.Fatal(err)
	}
	want := Watch{Prefixes: []string{"things/", "total"}, Mode: WatchHistory, Window: time.Second}
	if diff := cmp.Diff(want, m.Watch); diff != "" {
		t.Errorf("old-format Watch (-want +got):\n%s", diff)
	}
}

// TestWatchDoneRoundTrip: the done flag and the marker survive a frame
// that carries them among other messages, in order.
func TestWatchDoneRoundTrip(t *testing.T) {
	msgs := []Message{
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"things/"}, Done: true}},
		{Kind: KindValues, Values: Values{Items: []Value{{Path: "things/a", Time: Time{Nanos: 5}, Value: []byte("a")}}}},
		{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: "things/"}},
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"things/"}}},
		{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: strings.Repeat("p", 1024)}},
	}
	roundTrip(t, msgs)
}

func TestWatchDoneDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		body []byte
		want error
	}{
		{"no prefix", Limits{}, rawWatchDone("", true), ErrMalformed},
		{"empty prefix", Limits{}, rawWatchDone("", false), ErrMalformed},
		{"prefix over limit", Limits{MaxPathBytes: 4}, rawWatchDone("abcde/", false), ErrTooLarge},
		{"cut", Limits{}, rawWatchDone("things/", false)[:12], ErrBadOffset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newPair(t, tt.lim)
			_, err := decodeAll(d, rawFrame(KindWatchDone, tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "wire: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

// TestDecodeWatchDoneAllocs: a marker for the prefix the Message held
// last decodes without allocating, as a client receives one per watch.
func TestDecodeWatchDoneAllocs(t *testing.T) {
	e, d := newPair(t, Limits{})
	frame, err := e.AppendWatchDone(e.BeginFrame(nil), &WatchDone{Prefix: "things/"})
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Start(frame); err != nil {
			t.Fatal(err)
		}
		if err := d.Next(&m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || m.WatchDone.Prefix != "things/" {
		t.Errorf("decoded %q with %v allocs, want %q with 0", m.WatchDone.Prefix, allocs, "things/")
	}
}
