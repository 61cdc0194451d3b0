package sim_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// localClock is a settable local time source.
type localClock struct{ t *int64 }

func (l localClock) Nanos() int64 { return *l.t }

// scriptedAuthority plays the authority's side of one session by hand, so
// a test controls exactly which deliveries reach a client core and when.
// Its clock is the client's local clock plus offset; it answers every
// time-sync request at the next frame. Its frames reach the client in
// the order they were sent, as on the reliable ordered stream: a frame
// held back holds back every later one.
type scriptedAuthority struct {
	t      *testing.T
	core   *netcode.ClientCore
	local  *int64
	offset int64
	enc    *wire.Encoder
	dec    *wire.Decoder
	syncs  []int64 // ClientSend of requests to answer at the next step
	queue  []sent  // frames on their way, in sending order
	stall  time.Duration
}

// sent is a frame on its way, due at the authority's time at.
type sent struct {
	at    int64
	frame []byte
}

const frame = 16 * time.Millisecond

func newScriptedAuthority(t *testing.T) *scriptedAuthority {
	t.Helper()
	local := new(int64)
	*local = int64(50 * time.Second)
	clk, err := timesync.New(localClock{local}, timesync.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	core, err := netcode.NewClientCore(netcode.ClientOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := wire.NewEncoder(wire.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	dec, err := wire.NewDecoder(wire.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	a := &scriptedAuthority{t: t, core: core, local: local, offset: int64(950 * time.Second), enc: enc, dec: dec}
	if err := core.Connect(); err != nil {
		t.Fatal(err)
	}
	a.collect()
	cfg := netcode.DefaultConfig()
	a.send(&wire.Message{Kind: wire.KindWelcome, Welcome: wire.Welcome{
		Creator: 7, ServerTime: a.now(),
		MaxChangeAge: cfg.MaxChangeAge, MaxRewind: cfg.MaxRewind, MaxFutureSkew: cfg.MaxFutureSkew,
	}})
	for i := 0; !core.Clock().Synced(); i++ {
		if i == 1000 {
			t.Fatal("client clock did not sync within 1000 frames")
		}
		a.step()
	}
	return a
}

// now is the authority's time.
func (a *scriptedAuthority) now() int64 { return *a.local + a.offset }

// send puts one frame holding msgs on the link: it arrives a millisecond
// later, or a.stall later when a stall is set (its first packet was lost
// and resent), and never before a frame sent earlier.
func (a *scriptedAuthority) send(msgs ...*wire.Message) {
	a.t.Helper()
	buf := a.enc.BeginFrame(nil)
	for _, m := range msgs {
		var err error
		if buf, err = a.enc.Append(buf, m); err != nil {
			a.t.Fatal(err)
		}
	}
	at := a.now() + int64(time.Millisecond)
	if a.stall > 0 {
		at, a.stall = a.now()+int64(a.stall), 0
	}
	if n := len(a.queue); n > 0 {
		at = max(at, a.queue[n-1].at)
	}
	a.queue = append(a.queue, sent{at, buf})
	a.deliver()
}

// deliver hands the client the frames that are due, in order.
func (a *scriptedAuthority) deliver() {
	a.t.Helper()
	for len(a.queue) > 0 && a.queue[0].at <= a.now() {
		if err := a.core.Receive(a.queue[0].frame, *a.local); err != nil {
			a.t.Fatal(err)
		}
		a.queue = a.queue[1:]
	}
}

// collect reads the client's outgoing frames and notes its time-sync
// requests; everything else (Hello, watches) needs no answer here.
func (a *scriptedAuthority) collect() {
	a.t.Helper()
	var m wire.Message
	for _, f := range a.core.Outgoing() {
		if err := a.dec.Start(f); err != nil {
			a.t.Fatal(err)
		}
		for {
			err := a.dec.Next(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				a.t.Fatal(err)
			}
			if m.Kind == wire.KindTimeSyncRequest {
				a.syncs = append(a.syncs, m.TimeSyncRequest.ClientSend)
			}
		}
	}
}

// step advances one frame: the authority answers the time-sync requests
// of the previous frame, then the client ticks and sends.
func (a *scriptedAuthority) step() {
	a.t.Helper()
	*a.local += int64(frame)
	a.deliver()
	for _, cs := range a.syncs {
		now := a.now()
		a.send(&wire.Message{Kind: wire.KindTimeSyncReply, TimeSyncReply: wire.TimeSyncReply{ClientSend: cs, ServerRecv: now - int64(frame)/2, ServerSend: now - int64(frame)/2}})
	}
	a.syncs = a.syncs[:0]
	a.core.Tick()
	a.core.Events()
	a.collect()
}

// run steps until the authority's clock reaches at.
func (a *scriptedAuthority) run(at int64) {
	a.t.Helper()
	for a.now() < at {
		a.step()
	}
}

// TestLateInvalidationAfterTrim replays, against one client core, what
// the 16-bot demo match under the awful profile (seed 1) did to one
// player's gravity path, reduced to two writes of it:
//
//   - W1: a value that stays valid.
//   - W2 = W1 + 100 ms: a call's output, valid when delivered, that the
//     authority invalidates at W2 + 700 ms (a late input; within
//     MaxChangeAge, so legal) and does not replace (the call ran out of
//     re-runs). The authority's latest valid value is W1's again.
//
// The state change is sent at once but the reliable, ordered stream holds
// it back (a lost packet, retransmitted on a growing timeout): in the
// match it reached the client 1.76 s after it was sent. If it arrives
// after the client's clock passed W2 + MaxRewind + MaxChangeAge, the
// client's history trimming (ClientCore.Tick) has already dropped W1 as
// older than "the latest valid value before the cut" (W2, still valid to
// it), and once W2 turns invalid the client has no valid value at all:
// it never converges. Trimming takes W2's state as final by the client's
// clock, while a state change can reach the client arbitrarily late.
func TestLateInvalidationAfterTrim(t *testing.T) {
	const path = "players/9/gravity"
	tests := []struct {
		name    string
		arrival time.Duration // after W2, when the invalidation (sent at W2 + 700 ms) reaches the client
	}{
		{name: "invalidation before the trim", arrival: 800 * time.Millisecond},
		{name: "invalidation delayed past the trim", arrival: 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newScriptedAuthority(t)
			w1 := a.now() + int64(100*time.Millisecond)
			w2 := w1 + int64(100*time.Millisecond)
			old := wire.Value{Path: path, Time: wire.Time{Nanos: w1, Creator: 9}, Value: []byte("old"), State: wire.StateValid}
			cur := wire.Value{Path: path, Time: wire.Time{Nanos: w2, Creator: 9}, Value: []byte("new"), State: wire.StateValid}
			a.run(w2 + int64(50*time.Millisecond))
			a.send(&wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: []wire.Value{old, cur}}})
			a.run(w2 + int64(700*time.Millisecond))
			a.stall = tt.arrival - 700*time.Millisecond
			a.send(&wire.Message{Kind: wire.KindValidStates, ValidStates: wire.ValidStates{Items: []wire.StateChange{
				{Path: path, Time: cur.Time, State: wire.StateInvalid}}}})
			a.run(w2 + int64(tt.arrival) + int64(time.Second))
			if len(a.queue) > 0 {
				t.Fatalf("%d frames still on their way", len(a.queue))
			}

			got, ok := a.core.Read(path)
			if !ok || string(got) != "old" {
				t.Errorf("Read(%s) = %q, %v; want the authority's latest valid value \"old\" (W1)", path, got, ok)
			}
			var hist []string
			for _, v := range a.core.History(path) {
				hist = append(hist, string(v.Value))
			}
			if diff := cmp.Diff([]string{"old"}, hist); diff != "" {
				t.Errorf("History(%s) valid values (-want +got):\n%s", path, diff)
			}
		})
	}
}
