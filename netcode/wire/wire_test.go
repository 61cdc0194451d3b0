package wire

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// cmpMsg compares decoded messages with what was encoded: nil and empty
// slices of items are the same message (byte fields are compared exactly).
var cmpMsg = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmp.AllowUnexported(Message{}),
	cmpopts.IgnoreFields(Message{}, "locks"),
}

// sampleMessages returns one or more messages of every kind, exercising
// optional fields, extreme numbers, nil versus empty values and locks.
func sampleMessages() []Message {
	t0 := Time{Nanos: 1_700_000_000_000_000_000, Version: 0, Creator: 7}
	return []Message{
		{Kind: KindHello, Hello: Hello{Version: ProtocolVersion, Token: []byte("secret-token"), Nonce: []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
		{Kind: KindHello, Hello: Hello{Version: 9}},
		{Kind: KindHello, Hello: Hello{Version: ProtocolVersion, Nonce: []byte{9}, Resume: []byte("0123456789abcdefghijklmnopqrstuvwxyz")}},
		{Kind: KindWelcome, Welcome: Welcome{Creator: 42, ServerTime: 123456789, MaxChangeAge: time.Second, MaxRewind: 500 * time.Millisecond, MaxFutureSkew: 50 * time.Millisecond}},
		{Kind: KindWelcome, Welcome: Welcome{Creator: math.MaxUint32, ServerTime: -1, MaxChangeAge: time.Second, Resume: []byte{0, 0, 0, 42, 1, 2, 3, 4, 5, 6, 7, 8, 0xff}}},
		{Kind: KindTimeSyncRequest, TimeSyncRequest: TimeSyncRequest{ClientSend: -5}},
		{Kind: KindTimeSyncReply, TimeSyncReply: TimeSyncReply{ClientSend: 1, ServerRecv: math.MaxInt64, ServerSend: math.MinInt64}},
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"players/", "world/items/"}, Mode: WatchHistory, Window: 2 * time.Second}},
		{Kind: KindWatch, Watch: Watch{}},
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"things/", "things/a/", "total"}, Done: true}},
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"players/"}, Done: true, Area: Area{Kind: AreaNear, Entity: "players/42/", Radius: 500}}},
		{Kind: KindWatch, Watch: Watch{Prefixes: []string{"players/"}, Area: Area{Kind: AreaRegion, X0: -10, Y0: 0, X1: 300.5, Y1: 400}}},
		{Kind: KindUnwatch, Unwatch: Unwatch{Prefixes: []string{"players/"}}},
		{Kind: KindValues, Values: Values{Items: []Value{
			{Path: "players/1/pos", Time: t0, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
			{Path: "players/2/pos", Time: Time{Nanos: t0.Nanos - 3_000_000, Version: 2, Creator: 9}, Value: []byte{}, State: StatePending, Flags: FlagEvent},
			{Path: "players/1/hp", Time: Time{Nanos: math.MinInt64, Creator: math.MaxUint32, Version: math.MaxUint32}, State: StateInvalid, Flags: FlagEvent | FlagPredicted | 0x80},
			{Path: "players/1/pos", Time: Time{Nanos: math.MaxInt64}, Value: []byte("again")},
		}}},
		{Kind: KindValues, Values: Values{}},
		{Kind: KindValidStates, ValidStates: ValidStates{Items: []StateChange{
			{Path: "players/1/pos", Time: t0, State: StateInvalid},
			{Path: "bullets/3", Time: Time{Nanos: 1, Version: 4, Creator: 5}, State: StatePending},
		}}},
		{Kind: KindCall, Call: Call{ID: CallID{Creator: 3, Seq: math.MaxUint64}, Name: "move", Args: []byte{0, 1}, Time: t0, ViewDelay: 100 * time.Millisecond}},
		{Kind: KindCall, Call: Call{}},
		{Kind: KindCall, Call: Call{ID: CallID{Creator: 1 << 24, Seq: 9}, Name: "bump", Time: t0, Runner: 3}},
		{Kind: KindCall, Call: Call{ID: CallID{Creator: 1 << 24, Seq: 10}, Name: "bump", Time: t0, Relay: 2, Hops: 1}},
		{Kind: KindCall, Call: Call{ID: CallID{Creator: 3, Seq: 11}, Name: "move", Time: t0, Digest: math.MaxUint64 - 5}},
		{Kind: KindCallResult, CallResult: CallResult{ID: CallID{Creator: 3, Seq: 11}, Status: CallOK, Matched: true}},
		{Kind: KindCallResult, CallResult: CallResult{ID: CallID{Creator: 3, Seq: 17}, Status: CallOK, Outputs: []ValueRef{{Path: "players/3/pos", Time: t0}, {Path: "players/3/vel", Time: Time{Nanos: 5}}}}},
		{Kind: KindCallResult, CallResult: CallResult{ID: CallID{Creator: 3, Seq: 18}, Status: CallFailed, Error: "out of ammo"}},
		{Kind: KindCallResult, CallResult: CallResult{ID: CallID{Creator: 4, Seq: 1}, Status: CallOK,
			Outputs: []ValueRef{{Path: "players/4/pos", Time: t0}},
			Reads: []Lock{
				{Path: "players/4/pos", Start: Time{Nanos: t0.Nanos - 16_000_000, Version: 1, Creator: 4}, End: t0},
				{Path: "world/walls", End: t0}, // nothing written before: zero Start
				{Path: "players/9/hp", Start: Time{Nanos: math.MinInt64, Version: math.MaxUint32, Creator: math.MaxUint32}, End: Time{Nanos: math.MaxInt64}},
				{Path: "players/9/pos", Start: Time{Nanos: 5, Version: 1, Creator: 2}, End: Time{Nanos: 5, Version: 1, Creator: 3}},
			}}},
		{Kind: KindWrite, Write: Write{Items: []Value{
			{Path: "players/1/pos", Time: t0, Value: []byte{9}, Locks: []Lock{
				{Path: "players/1/pos", Start: Time{}, End: t0},
				{Path: "world/walls", Start: Time{Nanos: 10, Version: 1, Creator: 2}, End: Time{Nanos: 20, Version: 3, Creator: 4}},
			}},
			{Path: "players/2/pos", Time: t0, Value: nil},
		}}},
		{Kind: KindError, Error: Error{Code: 3, Text: "bad token"}},
		{Kind: KindError, Error: Error{}},
		{Kind: KindPing, Ping: Ping{Seq: 99}},
		{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: "things/"}},
		{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: "players/42/pos"}},
		{Kind: KindLeave, Leave: Leave{Prefix: "players/42/"}},
		{Kind: KindSync, Sync: Sync{Closed: 1 << 62, Seq: 7, Ack: 1<<64 - 1}},
		{Kind: KindSync, Sync: Sync{Closed: -5, Seq: 1, HandedOver: []byte{3, 0, 255}, TakenOver: []byte{2}}},
		{Kind: KindSync, Sync: Sync{}},
	}
}

func newPair(t testing.TB, lim Limits) (*Encoder, *Decoder) {
	t.Helper()
	e, err := NewEncoder(lim)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(lim)
	if err != nil {
		t.Fatal(err)
	}
	return e, d
}

// decodeAll decodes every message of frame.
func decodeAll(d *Decoder, frame []byte) ([]Message, error) {
	if err := d.Start(frame); err != nil {
		return nil, err
	}
	var out []Message
	for {
		var m Message
		err := d.Next(&m)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestRoundTripEachKind(t *testing.T) {
	for i, m := range sampleMessages() {
		t.Run(fmt.Sprintf("%d-%v", i, m.Kind), func(t *testing.T) {
			e, d := newPair(t, Limits{})
			frame, err := e.Append(e.BeginFrame(nil), &m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAll(d, frame)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]Message{m}, got, cmpMsg...); diff != "" {
				t.Errorf("round trip (-sent +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripManyPerFrame(t *testing.T) {
	roundTrip(t, sampleMessages())
}

// roundTrip encodes msgs into one frame, decodes it with a fresh pair,
// checks that every message comes back as sent and returns them.
func roundTrip(t *testing.T, msgs []Message) []Message {
	t.Helper()
	e, d := newPair(t, Limits{})
	frame := e.BeginFrame(nil)
	for i := range msgs {
		var err error
		if frame, err = e.Append(frame, &msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(msgs, got, cmpMsg...); diff != "" {
		t.Errorf("round trip (-sent +got):\n%s", diff)
	}
	return got
}

// TestNilAndEmptyValues checks that a deletion (nil) and an empty value
// stay distinct, which EquateEmpty would hide.
func TestNilAndEmptyValues(t *testing.T) {
	e, d := newPair(t, Limits{})
	in := Values{Items: []Value{{Path: "a", Value: nil}, {Path: "b", Value: []byte{}}}}
	frame, err := e.AppendValues(e.BeginFrame(nil), &in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[0].Values.Items; v[0].Value != nil || v[1].Value == nil {
		t.Errorf("got values %#v and %#v, want nil and empty", v[0].Value, v[1].Value)
	}
}

// TestDictionaryFollowsEviction streams random batches through a small
// dictionary, frame by frame, and checks that every decoded path matches
// what was sent: the decoder follows the encoder's evictions.
func TestDictionaryFollowsEviction(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	lim := Limits{MaxPaths: 16}
	e, d := newPair(t, lim)
	var m Message
	var frame []byte
	for f := range 300 {
		frame = e.BeginFrame(frame[:0])
		var sent []Values
		for range 1 + rng.IntN(3) {
			var vs Values
			for range rng.IntN(8) { // at most 14 paths with locks: within MaxPaths
				p := fmt.Sprintf("p/%d", rng.IntN(40))
				v := Value{Path: p, Time: Time{Nanos: rng.Int64N(1e9)}, Value: []byte(p)}
				if rng.IntN(4) == 0 {
					v.Locks = []Lock{{Path: fmt.Sprintf("p/%d", rng.IntN(40)), End: v.Time}}
				}
				vs.Items = append(vs.Items, v)
			}
			var err error
			if frame, err = e.AppendValues(frame, &vs); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, f, err)
			}
			sent = append(sent, vs)
		}
		if err := d.Start(frame); err != nil {
			t.Fatalf("seed %d frame %d: %v", seed, f, err)
		}
		for _, want := range sent {
			if err := d.Next(&m); err != nil {
				t.Fatalf("seed %d frame %d: %v", seed, f, err)
			}
			if diff := cmp.Diff(want, m.Values, cmpMsg...); diff != "" {
				t.Fatalf("seed %d frame %d (-sent +got):\n%s", seed, f, diff)
			}
		}
		if err := d.Next(&m); err != io.EOF {
			t.Fatalf("seed %d frame %d: got %v after the last message, want EOF", seed, f, err)
		}
		// The decoder counts the bytes of the paths it holds, through
		// every replacement.
		want := 0
		for _, p := range e.dict.paths {
			want += len(p)
		}
		if got := d.DictBytes(); got != want {
			t.Fatalf("seed %d frame %d: DictBytes %d, want %d", seed, f, got, want)
		}
	}
	if len(e.dict.paths) != lim.MaxPaths {
		t.Errorf("dictionary holds %d ids, want it full at %d", len(e.dict.paths), lim.MaxPaths)
	}
}

func TestDictionaryTooManyPathsInOneMessage(t *testing.T) {
	e, d := newPair(t, Limits{MaxPaths: 4})
	var vs Values
	for i := range 5 {
		vs.Items = append(vs.Items, Value{Path: fmt.Sprintf("p/%d", i)})
	}
	frame := e.BeginFrame(nil)
	if _, err := e.AppendValues(frame, &vs); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// The failed message left no trace: the next one defines its paths.
	vs.Items = vs.Items[1:]
	frame, err := e.AppendValues(frame, &vs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vs, got[0].Values, cmpMsg...); diff != "" {
		t.Errorf("(-sent +got):\n%s", diff)
	}
}

// TestFailedAppendRollsBack fills a frame to its limit and checks that a
// message that does not fit leaves the frame and dictionary usable.
func TestFailedAppendRollsBack(t *testing.T) {
	e, d := newPair(t, Limits{MaxFrameBytes: 200})
	frame := e.BeginFrame(nil)
	small := Values{Items: []Value{{Path: "a/1", Value: []byte{1}}}}
	frame, err := e.AppendValues(frame, &small)
	if err != nil {
		t.Fatal(err)
	}
	big := Values{Items: []Value{{Path: "b/new", Value: make([]byte, 300)}}}
	before := len(frame)
	frame, err = e.AppendValues(frame, &big)
	if !errors.Is(err, ErrTooLarge) || len(frame) != before {
		t.Fatalf("got %v and %d bytes, want ErrTooLarge and %d bytes", err, len(frame), before)
	}
	if got, err := decodeAll(d, frame); err != nil || len(got) != 1 {
		t.Fatalf("frame after rollback: %d messages, %v", len(got), err)
	}
	// b/new was rolled back, so it is defined again in the next frame.
	big.Items[0].Value = []byte{2}
	frame, err = e.AppendValues(e.BeginFrame(frame[:0]), &big)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(big, got[0].Values, cmpMsg...); diff != "" {
		t.Errorf("(-sent +got):\n%s", diff)
	}
}

func TestEncoderRejects(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		m    Message
		want error
	}{
		{"empty path", Limits{}, Message{Kind: KindValues, Values: Values{Items: []Value{{Path: ""}}}}, ErrInvalid},
		{"long path", Limits{MaxPathBytes: 4}, Message{Kind: KindValues, Values: Values{Items: []Value{{Path: "abcde"}}}}, ErrTooLarge},
		{"bad state", Limits{}, Message{Kind: KindValues, Values: Values{Items: []Value{{Path: "a", State: 3}}}}, ErrInvalid},
		{"big value", Limits{MaxValueBytes: 2}, Message{Kind: KindWrite, Write: Write{Items: []Value{{Path: "a", Value: []byte{1, 2, 3}}}}}, ErrTooLarge},
		{"many locks", Limits{MaxLocks: 1}, Message{Kind: KindWrite, Write: Write{Items: []Value{{Path: "a", Locks: make([]Lock, 2)}}}}, ErrTooLarge},
		{"empty lock path", Limits{}, Message{Kind: KindWrite, Write: Write{Items: []Value{{Path: "a", Locks: make([]Lock, 1)}}}}, ErrInvalid},
		{"big batch", Limits{MaxBatch: 1}, Message{Kind: KindValidStates, ValidStates: ValidStates{Items: make([]StateChange, 2)}}, ErrTooLarge},
		{"bad watch mode", Limits{}, Message{Kind: KindWatch, Watch: Watch{Mode: 7}}, ErrInvalid},
		{"empty watch done prefix", Limits{}, Message{Kind: KindWatchDone}, ErrInvalid},
		{"empty leave prefix", Limits{}, Message{Kind: KindLeave}, ErrInvalid},
		{"area kind", Limits{}, Message{Kind: KindWatch, Watch: Watch{Prefixes: []string{"p/"}, Area: Area{Kind: 9}}}, ErrInvalid},
		{"area on two prefixes", Limits{}, Message{Kind: KindWatch, Watch: Watch{Prefixes: []string{"p/", "q/"}, Area: Area{Kind: AreaRegion, X1: 1, Y1: 1}}}, ErrInvalid},
		{"near without radius", Limits{}, Message{Kind: KindWatch, Watch: Watch{Prefixes: []string{"p/"}, Area: Area{Kind: AreaNear, Entity: "p/1/"}}}, ErrInvalid},
		{"unordered region", Limits{}, Message{Kind: KindWatch, Watch: Watch{Prefixes: []string{"p/"}, Area: Area{Kind: AreaRegion, X0: 5, X1: 1, Y1: 1}}}, ErrInvalid},
		{"long watch done prefix", Limits{MaxPathBytes: 4}, Message{Kind: KindWatchDone, WatchDone: WatchDone{Prefix: "abcde/"}}, ErrTooLarge},
		{"many prefixes", Limits{MaxPrefixes: 1}, Message{Kind: KindUnwatch, Unwatch: Unwatch{Prefixes: []string{"a/", "b/"}}}, ErrTooLarge},
		{"matched with outputs", Limits{}, Message{Kind: KindCallResult, CallResult: CallResult{Status: CallOK, Matched: true, Outputs: []ValueRef{{Path: "a", Time: Time{Nanos: 1}}}}}, ErrInvalid},
		{"matched with reads", Limits{}, Message{Kind: KindCallResult, CallResult: CallResult{Status: CallOK, Matched: true, Reads: []Lock{{Path: "a", End: Time{Nanos: 1}}}}}, ErrInvalid},
		{"matched and failed", Limits{}, Message{Kind: KindCallResult, CallResult: CallResult{Status: CallFailed, Error: "x", Matched: true}}, ErrInvalid},
		{"long call name", Limits{MaxTextBytes: 3}, Message{Kind: KindCall, Call: Call{Name: "fire"}}, ErrTooLarge},
		{"long token", Limits{MaxTextBytes: 3}, Message{Kind: KindHello, Hello: Hello{Token: []byte("toolong")}}, ErrTooLarge},
		{"long hello resume", Limits{MaxTextBytes: 3}, Message{Kind: KindHello, Hello: Hello{Resume: []byte("toolong")}}, ErrTooLarge},
		{"long welcome resume", Limits{MaxTextBytes: 3}, Message{Kind: KindWelcome, Welcome: Welcome{Resume: []byte("toolong")}}, ErrTooLarge},
		{"path defs by hand", Limits{}, Message{Kind: KindPathDefs}, ErrUnknownKind},
		{"zero kind", Limits{}, Message{}, ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newPair(t, tt.lim)
			frame := e.BeginFrame(nil)
			got, err := e.Append(frame, &tt.m)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(got) != len(frame) {
				t.Errorf("frame grew to %d bytes on error", len(got))
			}
		})
	}
}

// validFrame returns a frame holding all sample messages.
func validFrame(t testing.TB) []byte {
	e, _ := newPair(t, Limits{})
	msgs := sampleMessages()
	frame := e.BeginFrame(nil)
	for i := range msgs {
		var err error
		if frame, err = e.Append(frame, &msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return frame
}

func TestDecoderRejects(t *testing.T) {
	ping := func() []byte {
		e, _ := newPair(t, Limits{})
		f, err := e.AppendPing(e.BeginFrame(nil), &Ping{Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	values := func(limits Limits) []byte {
		e, _ := newPair(t, limits)
		f, err := e.AppendValues(e.BeginFrame(nil), &Values{Items: []Value{{Path: "a/b", Value: []byte{1, 2, 3}}}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// pathDefsLen is the length of the PathDefs message that opens values().
	pathDefsLen := func(f []byte) int { return 2 + int(f[2]) }
	tests := []struct {
		name  string
		lim   Limits
		frame func() []byte
		want  error
	}{
		{"empty", Limits{}, func() []byte { return nil }, ErrTruncated},
		{"version", Limits{}, func() []byte { return []byte{ProtocolVersion + 1} }, ErrVersion},
		{"frame too large", Limits{MaxFrameBytes: 8}, func() []byte { return make([]byte, 9) }, ErrTooLarge},
		{"unknown kind", Limits{}, func() []byte { f := ping(); f[1] = 200; return f }, ErrUnknownKind},
		{"zero kind", Limits{}, func() []byte { f := ping(); f[1] = 0; return f }, ErrUnknownKind},
		{"length overruns", Limits{}, func() []byte { f := ping(); f[2]++; return f }, ErrTruncated},
		{"length cut", Limits{}, func() []byte { return []byte{ProtocolVersion, byte(KindPing), 0x80} }, ErrTruncated},
		{"body too short", Limits{}, func() []byte { return []byte{ProtocolVersion, byte(KindPing), 2, 0, 0} }, ErrTruncated},
		{"root offset out", Limits{}, func() []byte { return []byte{ProtocolVersion, byte(KindPing), 4, 0xff, 0xff, 0, 0} }, ErrBadOffset},
		{"vtable out", Limits{}, func() []byte { f := ping(); f[3+int(f[3])] = 0x7f; return f }, ErrBadOffset},
		{"too many messages", Limits{MaxMessages: 2}, func() []byte {
			f := ping()
			return append(f, append(f[1:], f[1:]...)...)
		}, nil},
		{"unknown path id", Limits{}, func() []byte {
			f := values(Limits{})
			// Drop the PathDefs message so the id is undefined.
			return append([]byte{ProtocolVersion}, f[1+pathDefsLen(f):]...)
		}, ErrUnknownPathID},
		{"path id beyond dictionary", Limits{MaxPaths: 1}, func() []byte {
			e, _ := newPair(t, Limits{MaxPaths: 2})
			f, err := e.AppendValues(e.BeginFrame(nil), &Values{Items: []Value{{Path: "a"}, {Path: "b"}}})
			if err != nil {
				t.Fatal(err)
			}
			return f
		}, ErrTooLarge},
		{"value over limit", Limits{MaxValueBytes: 2}, func() []byte { return values(Limits{}) }, ErrTooLarge},
		{"path over limit", Limits{MaxPathBytes: 2}, func() []byte { return values(Limits{}) }, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newPair(t, tt.lim)
			_, err := decodeAll(d, tt.frame())
			if tt.want == nil {
				tt.want = ErrTooLarge
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") && !strings.Contains(err.Error(), "wire: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

// TestDecoderErrorIsSticky: after an error, Next keeps failing rather than
// resynchronising on garbage.
func TestDecoderErrorIsSticky(t *testing.T) {
	_, d := newPair(t, Limits{})
	f := validFrame(t)
	f[1] = 250
	if err := d.Start(f); err != nil {
		t.Fatal(err)
	}
	var m Message
	for range 3 {
		if err := d.Next(&m); !errors.Is(err, ErrUnknownKind) {
			t.Fatalf("got %v, want ErrUnknownKind", err)
		}
	}
}

// TestEveryCutAndFlip cuts a valid frame at every length and flips every
// byte: decoding must return an error or messages that were sent, never
// panic. A cut that succeeds must fall between messages and yield a prefix
// of what was sent.
func TestEveryCutAndFlip(t *testing.T) {
	f := validFrame(t)
	msgs := sampleMessages()
	for n := range len(f) {
		_, d := newPair(t, Limits{})
		got, err := decodeAll(d, f[:n])
		if err != nil {
			continue
		}
		if diff := cmp.Diff(msgs[:len(got)], got, cmpMsg...); diff != "" {
			t.Fatalf("frame cut at %d decoded to something never sent (-sent +got):\n%s", n, diff)
		}
	}
	for i := range f {
		g := append([]byte(nil), f...)
		g[i] ^= 0xff
		_, d := newPair(t, Limits{})
		_, _ = decodeAll(d, g) // only the absence of a panic matters here
	}
}

func TestDecodeValuesAllocs(t *testing.T) {
	e, d := newPair(t, Limits{})
	vs := benchValues(64)
	// Warm the dictionary, as on a live connection.
	first, err := e.AppendValues(e.BeginFrame(nil), &vs)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := e.AppendValues(e.BeginFrame(nil), &vs)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if _, err := decodeAll(d, first); err != nil { // defines the paths
		t.Fatal(err)
	}
	var buf []byte
	encAllocs := testing.AllocsPerRun(100, func() {
		buf, _ = e.AppendValues(e.BeginFrame(buf[:0]), &vs)
	})
	decAllocs := testing.AllocsPerRun(100, func() {
		if err := d.Start(frame); err != nil {
			t.Fatal(err)
		}
		if err := d.Next(&m); err != nil {
			t.Fatal(err)
		}
	})
	if encAllocs != 0 || decAllocs != 0 {
		t.Errorf("warm 64-value frame: %v allocs to encode, %v to decode; want 0 and 0", encAllocs, decAllocs)
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		ok   bool
	}{
		{"zero means defaults", Limits{}, true},
		{"defaults", DefaultLimits(), true},
		{"negative", Limits{MaxBatch: -1}, false},
		{"dictionary too big", Limits{MaxPaths: maxPathsCeiling + 1}, false},
		{"frame too big", Limits{MaxFrameBytes: maxFrameCeiling + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lim.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if _, err := NewEncoder(tt.lim); (err == nil) != tt.ok {
				t.Errorf("NewEncoder: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestAliasedBytesAreClipped: appending to a decoded byte field must not
// overwrite the rest of the frame.
func TestAliasedBytesAreClipped(t *testing.T) {
	e, d := newPair(t, Limits{})
	frame, err := e.AppendCall(e.BeginFrame(nil), &Call{Name: "f", Args: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if frame, err = e.AppendValues(frame, &Values{Items: []Value{{Path: "a", Value: []byte{2}}}}); err != nil {
		t.Fatal(err)
	}
	if frame, err = e.AppendHello(frame, &Hello{Token: []byte{3}, Nonce: []byte{4}, Resume: []byte{5}}); err != nil {
		t.Fatal(err)
	}
	if frame, err = e.AppendWelcome(frame, &Welcome{Resume: []byte{6}}); err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(d, frame)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"Call.Args":      got[0].Call.Args,
		"Value.Value":    got[1].Values.Items[0].Value,
		"Hello.Token":    got[2].Hello.Token,
		"Hello.Nonce":    got[2].Hello.Nonce,
		"Hello.Resume":   got[2].Hello.Resume,
		"Welcome.Resume": got[3].Welcome.Resume,
	} {
		if cap(b) != len(b) {
			t.Errorf("%s has cap %d beyond its length %d", name, cap(b), len(b))
		}
	}
}

// TestEncoderKeepsMessageLimit: a frame never holds more than
// Limits.MaxMessages messages, path definitions included, so the peer's
// decoder (which counts them all) can read every frame the encoder builds.
func TestEncoderKeepsMessageLimit(t *testing.T) {
	e, d := newPair(t, Limits{MaxMessages: 3})
	frame := e.BeginFrame(nil)
	var err error
	for range 2 {
		if frame, err = e.AppendPing(frame, &Ping{Seq: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// A batch with a new path needs two messages (PathDefs, Values): one
	// slot is left, so it must go into the next frame.
	vals := &Values{Items: []Value{{Path: "a/b", Value: []byte{1}}}}
	got, err := e.AppendValues(frame, vals)
	if !errors.Is(err, ErrTooLarge) || len(got) != len(frame) {
		t.Fatalf("third and fourth message: %v, frame %d → %d bytes", err, len(frame), len(got))
	}
	if frame, err = e.AppendPing(frame, &Ping{Seq: 2}); err != nil {
		t.Fatalf("third message: %v", err)
	}
	if _, err := e.AppendPing(frame, &Ping{Seq: 3}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("fourth message: %v", err)
	}
	if msgs, err := decodeAll(d, frame); err != nil || len(msgs) != 3 {
		t.Fatalf("full frame: %d messages, %v", len(msgs), err)
	}
	// The refused batch goes into a new frame, its path definition with it.
	next, err := e.AppendValues(e.BeginFrame(nil), vals)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := decodeAll(d, next); err != nil || len(msgs) != 1 || msgs[0].Values.Items[0].Path != "a/b" {
		t.Fatalf("next frame: %v, %v", msgs, err)
	}
}

// TestEncoderLetsGoOfLargeScratch: after a large batch, the next frame
// starts with the encoder's scratch buffers back under keepScratch, so a
// long-lived encoder (one per session on a server) does not hold its
// largest batch's buffers for good.
func TestEncoderLetsGoOfLargeScratch(t *testing.T) {
	e, _ := newPair(t, Limits{})
	var vs Values
	for i := range 2000 {
		// Long paths: their definitions grow the builder, the records e.rec.
		vs.Items = append(vs.Items, Value{Path: fmt.Sprintf("p/%d/%040d", i, i), Value: make([]byte, 200)})
	}
	if _, err := e.AppendValues(e.BeginFrame(nil), &vs); err != nil {
		t.Fatal(err)
	}
	if cap(e.rec) <= keepScratch || len(e.b.Bytes) <= keepScratch {
		t.Fatalf("the batch did not grow the scratch (%d, %d bytes): the test needs a larger one", cap(e.rec), len(e.b.Bytes))
	}
	e.BeginFrame(nil)
	if cap(e.rec) > keepScratch || len(e.b.Bytes) > keepScratch {
		t.Errorf("scratch of %d and %d bytes kept, limit %d", cap(e.rec), len(e.b.Bytes), keepScratch)
	}
}
