package authority

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// benchClient is a session's client end: its encoder for calls and its
// decoder for what the node sends.
type benchClient struct {
	id      SessionID
	enc     *wire.Encoder
	dec     *wire.Decoder
	creator uint32
	buf     []byte
	msg     wire.Message
}

func benchNode(b *testing.B, sessions, watchesEach int, persist bool) (*Node, []*benchClient, int64) {
	reg := netcode.NewRegistry()
	// step: reads the caller's position and one neighbour's, writes the
	// caller's position: 2 reads, 1 write.
	names := make([]string, sessions+1)
	for i := range names {
		names[i] = fmt.Sprintf("players/%d/pos", i)
	}
	reg.Register("step", func(tx *netcode.Tx, args []byte) error {
		me := int(tx.Caller() & 0xffffff)
		pos, _ := tx.Read(names[me])
		other, _ := tx.Read(names[int(args[0])%sessions+1])
		v := make([]byte, 8)
		copy(v, pos)
		v[0] += byte(len(other)) + 1
		tx.Write(names[me], v)
		return nil
	}, netcode.FuncOptions{})
	cfg := DefaultConfig(reg)
	cfg.Limits.MaxSessions = sessions + 1
	cfg.Limits.CallsPerSecond = 1e9
	cfg.Limits.BytesPerSecond = 1e12
	cfg.Limits.MaxPendingOutbound = 1 << 30
	cfg.Persist = persist
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := int64(100 * time.Second)
	clients := make([]*benchClient, sessions)
	for i := range clients {
		c := &benchClient{}
		c.id, _ = n.Connect(now, "bench")
		c.enc, _ = wire.NewEncoder(cfg.Wire)
		c.dec, _ = wire.NewDecoder(cfg.Wire)
		clients[i] = c
		c.send(b, n, now, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion}})
		w := wire.Watch{}
		for k := 0; k < watchesEach; k++ {
			w.Prefixes = append(w.Prefixes, names[(i+k)%sessions+1])
		}
		c.send(b, n, now, &wire.Message{Kind: wire.KindWatch, Watch: w})
	}
	deliver(b, n, clients)
	return n, clients, now
}

func (c *benchClient) send(b *testing.B, n *Node, now int64, m *wire.Message) {
	c.buf = c.enc.BeginFrame(c.buf[:0])
	var err error
	c.buf, err = c.enc.Append(c.buf, m)
	if err != nil {
		b.Fatal(err)
	}
	n.Step(now, c.id, c.buf)
}

// deliver decodes every frame the node produced with the receiving
// client's decoder, as the network would.
func deliver(b *testing.B, n *Node, clients []*benchClient) (values int) {
	for _, o := range n.Ready() {
		c := clients[o.Session-1]
		for _, f := range o.Frames {
			if err := c.dec.Start(f); err != nil {
				b.Fatal(err)
			}
			for {
				err := c.dec.Next(&c.msg)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				switch c.msg.Kind {
				case wire.KindWelcome:
					c.creator = c.msg.Welcome.Creator
				case wire.KindValues:
					values += len(c.msg.Values.Items)
				case wire.KindError:
					b.Fatalf("node error: %s", c.msg.Error.Text)
				}
			}
		}
	}
	return values
}

// BenchmarkNodeCalls: calls through the node without network: 1,000
// sessions each watching 10 paths call a 2-read/1-write function in turn;
// the node ticks (finality and a watch flush) every 1,000 calls, i.e. every
// 16 ms of game time at 60,000 calls per second. Each op is one call through
// the node: frame decode, run, commit, call result, deliveries to watchers
// and their encoding into each session's frames. The clients' side (encoding
// calls, decoding what they receive) is done outside the timer: call frames
// are encoded beforehand and output frames are handed to no network, then
// back to the node (Recycle), as the server does once it sent them.
// The clients predict as netcode's client does and send each call with
// its prediction's digest; their predictions are right (they are made
// beforehand on a replica of the store that commits the same calls at the
// same times), so each call is answered with a matched result.
// Reports calls/s.
func BenchmarkNodeCalls(b *testing.B) { benchNodeCalls(b, false, true) }

// BenchmarkNodeCallsUnpredicted is BenchmarkNodeCalls with clients that
// send no digest (as clients that predate it, or predict nothing): each
// call is answered with its output values, outputs and reads.
func BenchmarkNodeCallsUnpredicted(b *testing.B) { benchNodeCalls(b, false, false) }

// BenchmarkNodeCallsArchived is BenchmarkNodeCalls with a durable node, as
// the server runs it with a data directory: after each frame the node's
// entries are appended to an archive's write-ahead log (group commit every
// 20 ms by its flusher goroutine, fdatasync'ed on the disk), after each
// tick the values that became final are queued for snapshots, and every
// 60 ticks (a second of game time) a snapshot block is written in the
// background. The log is synced before the timer stops. Compare with
// BenchmarkNodeCalls in the same run.
func BenchmarkNodeCallsArchived(b *testing.B) { benchNodeCalls(b, true, true) }

func benchNodeCalls(b *testing.B, archived, predicted bool) {
	const sessions = 1000
	n, clients, now := benchNode(b, sessions, 10, archived)
	var arch *archive.Archive
	if archived {
		var err error
		if arch, err = archive.Open(archive.DefaultOptions(b.TempDir())); err != nil {
			b.Fatal(err)
		}
		defer arch.Close()
	}
	persist := func() {
		if arch == nil {
			return
		}
		p := n.TakePersist()
		for i := range p.Entries {
			if err := arch.Append(p.Entries[i].Now, &p.Entries[i]); err != nil {
				b.Fatal(err)
			}
		}
		arch.AddFinal(p.Final)
	}
	persist()
	step := int64(16*time.Millisecond) / 1000
	frames := make([][]byte, b.N)
	// The replica the clients predict on: it commits every call at the
	// time the node will, and finalizes when the node ticks.
	replica, err := netcode.NewStore(n.cfg.Store)
	if err != nil {
		b.Fatal(err)
	}
	for i := range frames {
		c := clients[i%sessions]
		t := now + int64(i+1)*step
		call := wire.Call{ID: wire.CallID{Creator: c.creator, Seq: uint64(i)}, Name: "step", Args: []byte{byte(i)},
			Time: wire.Time{Nanos: t - int64(30*time.Millisecond), Creator: c.creator}}
		if predicted {
			out := n.reg.Run(replica, &n.cfg.Store, netcode.Call{ID: netcode.CallID{Creator: c.creator, Seq: uint64(i)},
				Name: call.Name, Args: call.Args, Time: call.Time.Nanos}, 0)
			call.Digest = out.Digest()
			if _, err := replica.Commit(t, &out); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				replica.Tick(t)
			}
		}
		buf := c.enc.BeginFrame(nil)
		buf, err := c.enc.Append(buf, &wire.Message{Kind: wire.KindCall, Call: call})
		if err != nil {
			b.Fatal(err)
		}
		frames[i] = buf
	}
	matched := n.Stats().CallsMatched
	sent := n.Stats().ValuesSent
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += step
		n.Step(now, clients[i%sessions].id, frames[i])
		persist()
		if i%1000 == 999 {
			n.Tick(now)
			persist()
			if arch != nil && i%60000 == 59999 {
				h := n.Store().Horizon()
				arch.Snapshot(h, h-int64(n.cfg.Store.MaxFutureSkew), n.ArchiveMeta())
			}
			for _, o := range n.Ready() {
				n.Recycle(o.Frames) // as the server does once it sent them
			}
		}
	}
	n.Tick(now)
	persist()
	n.Ready()
	if arch != nil {
		if err := arch.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := n.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	// On a shared machine wall time measures the other load as much as the
	// node: the process's CPU time per call (collector included) beside it.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/call")
	b.ReportMetric(float64(st.ValuesSent-sent)/float64(b.N), "deliveries/call")
	if st.CallsRejected+st.CallErrors > 0 {
		b.Fatalf("calls failed: %+v", st)
	}
	if m := st.CallsMatched - matched; predicted && m != uint64(b.N) {
		b.Fatalf("%d of %d predicted calls answered with a matched result", m, b.N)
	}
	if arch != nil {
		if err := arch.WaitSnapshots(); err != nil {
			b.Fatal(err)
		}
		as := arch.Stats()
		b.ReportMetric(float64(as.Log.Records)/float64(b.N), "records/call")
	}
}

// BenchmarkFanOut: one value delivered to 1,000 watchers: the write, the
// flush that encodes it into each session's frame (each session has its own
// path dictionary, so the encoding is per session; the value bytes are
// shared, not copied), and the watchers' decode. Reports ns per watcher.
func BenchmarkFanOut(b *testing.B) {
	const watchers = 1000
	reg := netcode.NewRegistry()
	reg.Register("set", func(tx *netcode.Tx, args []byte) error {
		tx.Write("world/state", args)
		return nil
	}, netcode.FuncOptions{})
	cfg := DefaultConfig(reg)
	cfg.Limits.MaxSessions = watchers + 1
	cfg.Limits.CallsPerSecond = 1e9
	cfg.Limits.BytesPerSecond = 1e12
	n, err := NewNode(cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := int64(100 * time.Second)
	clients := make([]*benchClient, watchers+1)
	for i := range clients {
		c := &benchClient{}
		c.id, _ = n.Connect(now, "bench")
		c.enc, _ = wire.NewEncoder(cfg.Wire)
		c.dec, _ = wire.NewDecoder(cfg.Wire)
		clients[i] = c
		c.send(b, n, now, &wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion}})
		if i > 0 {
			c.send(b, n, now, &wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{"world/"}}})
		}
	}
	deliver(b, n, clients)
	writer := clients[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += int64(time.Millisecond)
		writer.send(b, n, now, &wire.Message{Kind: wire.KindCall, Call: wire.Call{
			ID: wire.CallID{Creator: writer.creator, Seq: uint64(i)}, Name: "set", Args: []byte{1, 2, 3, 4, 5, 6, 7, byte(i)},
			Time: wire.Time{Nanos: now, Creator: writer.creator}}})
		n.Tick(now)
		// The watchers get the value; the writer gets it with its result.
		if got := deliver(b, n, clients); got != watchers+1 {
			b.Fatalf("delivered %d values, want %d", got, watchers+1)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/watchers, "ns/watcher")
}
