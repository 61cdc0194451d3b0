package netcode_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
	"github.com/rewindnet/rewind/timesync"
)

// BenchmarkClientFrame measures one 33 ms frame of a player as rewind-load
// runs it: Tick, one call, and one frame from the authority holding the
// latest positions of the 20 entities in its spatial watch, the time-sync
// replies and the matched results of its calls (a round trip late), with an
// entity leaving and another entering every fourth frame; then Events.
func BenchmarkClientFrame(b *testing.B) {
	const (
		visible = 20
		frame   = 33 * time.Millisecond
		rttF    = 9 // frames a call waits for its result
	)
	local := int64(1000 * time.Second)
	clk, _ := timesync.New(vclock{&local}, timesync.DefaultConfig())
	core, _ := netcode.NewClientCore(netcode.ClientOptions{Registry: counterReg(), Clock: clk, SendInterval: frame})
	h := newHandSession(&testing.T{}, core)
	if err := core.WatchNear("players/", "players/5/", 1000); err != nil {
		b.Fatal(err)
	}
	enc, _ := wire.NewEncoder(wire.Limits{})
	dec, _ := wire.NewDecoder(wire.Limits{})
	ents := make([]int, visible)
	for i := range ents {
		ents[i] = 100 + i
	}
	next := 100 + visible
	var calls []wire.CallID // awaiting their result, oldest first
	var msgs []wire.Message
	var in wire.Message
	step := 0
	one := func() {
		step++
		local += int64(frame)
		core.Tick()
		if core.Connected() && clk.Synced() {
			if _, err := core.Call("place", binary.LittleEndian.AppendUint64(nil, uint64(step))); err != nil {
				b.Fatal(err)
			}
		}
		msgs = msgs[:0]
		for _, f := range core.Outgoing() {
			if err := dec.Start(f); err != nil {
				b.Fatal(err)
			}
			for dec.Next(&in) == nil {
				switch in.Kind {
				case wire.KindTimeSyncRequest:
					msgs = append(msgs, wire.Message{Kind: wire.KindTimeSyncReply, TimeSyncReply: wire.TimeSyncReply{ClientSend: in.TimeSyncRequest.ClientSend, ServerRecv: local, ServerSend: local}})
				case wire.KindCall:
					calls = append(calls, in.Call.ID)
				}
			}
		}
		vals := make([]wire.Value, 0, visible)
		for _, e := range ents {
			vals = append(vals, wire.Value{Path: "players/" + strconv.Itoa(e) + "/pos", Time: wire.Time{Nanos: local - int64(50*time.Millisecond), Creator: uint32(e)}, Value: binary.LittleEndian.AppendUint64(nil, uint64(step+e))})
		}
		msgs = append(msgs, wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: vals}})
		if step%4 == 0 {
			k := step / 4 % visible
			msgs = append(msgs, wire.Message{Kind: wire.KindLeave, Leave: wire.Leave{Prefix: "players/" + strconv.Itoa(ents[k]) + "/"}})
			ents[k] = next
			next++
			msgs = append(msgs,
				wire.Message{Kind: wire.KindValues, Values: wire.Values{Items: []wire.Value{{Path: "players/" + strconv.Itoa(ents[k]) + "/pos", Time: wire.Time{Nanos: local - int64(40*time.Millisecond), Creator: uint32(ents[k])}, Value: binary.LittleEndian.AppendUint64(nil, 1)}}}},
				wire.Message{Kind: wire.KindWatchDone, WatchDone: wire.WatchDone{Prefix: "players/" + strconv.Itoa(ents[k]) + "/"}})
		}
		if len(calls) > rttF {
			msgs = append(msgs, wire.Message{Kind: wire.KindCallResult, CallResult: wire.CallResult{ID: calls[0], Matched: true}})
			calls = calls[1:]
		}
		f := enc.BeginFrame(nil)
		for i := range msgs {
			var err error
			if f, err = enc.Append(f, &msgs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := core.Receive(f, local); err != nil {
			b.Fatal(err)
		}
		core.Events()
	}
	for range 300 { // sync, fill the history
		one()
	}
	if !clk.Synced() {
		b.Fatal("clock not synced")
	}
	_ = h
	b.ReportAllocs()
	for b.Loop() {
		one()
	}
}
