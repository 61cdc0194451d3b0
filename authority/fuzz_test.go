package authority

import (
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode/wire"
)

// FuzzNodeStep feeds a session arbitrary frames after a valid Hello: the
// node must never panic, its store must keep its lock invariant, and a
// second, well-behaved session must still be served.
func FuzzNodeStep(f *testing.F) {
	enc, _ := wire.NewEncoder(wire.Limits{})
	frame := func(ms ...*wire.Message) []byte {
		buf := enc.BeginFrame(nil)
		for _, m := range ms {
			var err error
			if buf, err = enc.Append(buf, m); err != nil {
				f.Fatal(err)
			}
		}
		return buf
	}
	now := int64(10 * time.Second)
	f.Add(frame(&wire.Message{Kind: wire.KindCall, Call: wire.Call{ID: wire.CallID{Creator: 1, Seq: 1}, Name: "add", Args: u64(3), Time: wire.Time{Nanos: now, Creator: 1}}}))
	f.Add(frame(&wire.Message{Kind: wire.KindWrite, Write: wire.Write{Items: []wire.Value{{Path: "clients/1/x", Time: wire.Time{Nanos: now, Creator: 1}, Value: []byte("v"),
		Locks: []wire.Lock{{Path: "total", End: wire.Time{Nanos: now - 1}}}}}}}))
	f.Add(frame(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{"total", "players/"}, Mode: wire.WatchHistory, Window: time.Second}},
		&wire.Message{Kind: wire.KindPing, Ping: wire.Ping{Seq: 9}}))
	f.Add([]byte{1, 9, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig(testRegistry())
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hostile, _ := n.Connect(now, "hostile")
		good, _ := n.Connect(now, "good")
		hello := func(id SessionID) *wire.Encoder {
			e, _ := wire.NewEncoder(wire.Limits{})
			buf := e.BeginFrame(nil)
			buf, _ = e.AppendHello(buf, &wire.Hello{Version: wire.ProtocolVersion})
			n.Step(now, id, buf)
			return e
		}
		hello(hostile)
		ge := hello(good)
		// The fuzz input is split into frames at every 0xff byte.
		start := 0
		for i := 0; i <= len(data); i++ {
			if i == len(data) || data[i] == 0xff {
				n.Step(now, hostile, data[start:i])
				start = i + 1
			}
		}
		n.Tick(now + int64(time.Millisecond))
		n.Ready()
		buf := ge.BeginFrame(nil)
		buf, _ = ge.AppendCall(buf, &wire.Call{ID: wire.CallID{Creator: 2, Seq: 1}, Name: "add", Args: u64(1), Time: wire.Time{Nanos: now, Creator: 2}})
		n.Step(now, good, buf)
		if st := n.Stats(); st.Calls == 0 {
			t.Fatalf("the good session's call was not run: %+v", st)
		}
		if err := n.Store().Verify(); err != nil {
			t.Fatal(err)
		}
	})
}
