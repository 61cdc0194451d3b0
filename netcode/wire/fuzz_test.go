package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fuzz targets: FuzzFrame for the frame decoder and one per message kind
// for the body decoders. Each is seeded with valid input; `go test` runs the
// seeds (and anything saved under testdata/fuzz) as ordinary tests, and
// `make fuzz` explores from them. Beyond "no panic", each checks the round
// trip: whatever decodes must re-encode and decode to the same messages.

type rawMessage struct {
	kind Kind
	body []byte
}

// splitFrame returns the messages of a frame the encoder built.
func splitFrame(t testing.TB, frame []byte) []rawMessage {
	var out []rawMessage
	for p := 1; p < len(frame); {
		n, w := binary.Uvarint(frame[p+1:])
		if w <= 0 {
			t.Fatalf("bad frame at %d", p)
		}
		start := p + 1 + w
		out = append(out, rawMessage{Kind(frame[p]), frame[start : start+int(n)]})
		p = start + int(n)
	}
	return out
}

// checkReencode encodes msgs with a fresh encoder, decodes them with a fresh
// decoder and wants them back unchanged.
func checkReencode(t *testing.T, msgs []Message) {
	t.Helper()
	e, d := newPair(t, Limits{})
	frame := e.BeginFrame(nil)
	for i := range msgs {
		var err error
		frame, err = e.Append(frame, &msgs[i])
		if errors.Is(err, ErrTooLarge) {
			return // the re-encoding may be larger than a densely packed original
		}
		if err != nil {
			t.Fatalf("decoded message %d (%v) does not re-encode: %v", i, msgs[i].Kind, err)
		}
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatalf("re-encoded frame does not decode: %v", err)
	}
	if diff := cmp.Diff(msgs, got, cmpMsg...); diff != "" {
		t.Fatalf("round trip changed the messages (-decoded +re-decoded):\n%s", diff)
	}
}

func FuzzFrame(f *testing.F) {
	f.Add(validFrame(f))
	for _, m := range sampleMessages() {
		e, _ := newPair(f, Limits{})
		frame, err := e.Append(e.BeginFrame(nil), &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte{ProtocolVersion})
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, d := newPair(t, Limits{})
		msgs, err := decodeAll(d, frame)
		if err != nil {
			return
		}
		// Copy what aliases the frame or the reused Message before
		// re-encoding (decodeAll already uses a fresh Message each time).
		checkReencode(t, msgs)
	})
}

// fuzzKind fuzzes the body decoder of kind k. The decoder has first read a
// frame of every sample message, so its dictionary defines the sample paths
// and batch bodies can resolve their ids.
func fuzzKind(f *testing.F, k Kind) {
	frame := validFrame(f)
	for _, raw := range splitFrame(f, frame) {
		if raw.kind == k {
			f.Add(raw.body)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, d := newPair(t, Limits{})
		if _, err := decodeAll(d, frame); err != nil {
			t.Fatal(err)
		}
		if k == KindPathDefs {
			if err := d.applyPathDefs(body); err != nil {
				return
			}
			if len(d.paths) > d.lim.MaxPaths {
				t.Fatalf("dictionary grew to %d ids, limit %d", len(d.paths), d.lim.MaxPaths)
			}
			return
		}
		var m Message
		if err := d.decodeBody(k, body, &m); err != nil {
			return
		}
		m.Kind = k
		checkReencode(t, []Message{m})
	})
}

func FuzzHello(f *testing.F)           { fuzzKind(f, KindHello) }
func FuzzWelcome(f *testing.F)         { fuzzKind(f, KindWelcome) }
func FuzzTimeSyncRequest(f *testing.F) { fuzzKind(f, KindTimeSyncRequest) }
func FuzzTimeSyncReply(f *testing.F)   { fuzzKind(f, KindTimeSyncReply) }
func FuzzWatch(f *testing.F)           { fuzzKind(f, KindWatch) }
func FuzzUnwatch(f *testing.F)         { fuzzKind(f, KindUnwatch) }
func FuzzValues(f *testing.F)          { fuzzKind(f, KindValues) }
func FuzzValidStates(f *testing.F)     { fuzzKind(f, KindValidStates) }
func FuzzCall(f *testing.F)            { fuzzKind(f, KindCall) }
func FuzzCallResult(f *testing.F)      { fuzzKind(f, KindCallResult) }
func FuzzWrite(f *testing.F)           { fuzzKind(f, KindWrite) }
func FuzzPathDefs(f *testing.F)        { fuzzKind(f, KindPathDefs) }
func FuzzError(f *testing.F)           { fuzzKind(f, KindError) }
func FuzzPing(f *testing.F)            { fuzzKind(f, KindPing) }
func FuzzWatchDone(f *testing.F)       { fuzzKind(f, KindWatchDone) }
func FuzzLeave(f *testing.F)           { fuzzKind(f, KindLeave) }
func FuzzSync(f *testing.F)            { fuzzKind(f, KindSync) }

// TestFuzzSeedsCoverEveryKind keeps the per-kind targets honest: each must
// have at least one valid seed, and every kind must have a target.
func TestFuzzSeedsCoverEveryKind(t *testing.T) {
	seen := map[Kind]bool{}
	for _, raw := range splitFrame(t, validFrame(t)) {
		seen[raw.kind] = true
	}
	for k := KindHello; k <= maxKind; k++ {
		if !seen[k] {
			t.Errorf("no seed for %v", k)
		}
	}
}
