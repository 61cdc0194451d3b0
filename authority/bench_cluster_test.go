package authority

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/rewindnet/rewind/netcode/wire"
)

// BenchmarkNodeCallsReplicated is BenchmarkNodeCalls on a node of a
// cluster with 0, 1 or 2 replicas: every call's outputs, its record and a
// Sync go to each replica, encoded into its stream's frames, and the
// call's result waits for the replicas' acknowledgements (a majority of
// Cluster.Size = replicas + 1), which come back as Sync frames every 1,000
// calls (decoding the node's frames and encoding the acknowledgements, the
// replicas' side, is outside the timer; handling them is inside). Compare
// the replicas/1 and replicas/2 calls/s with replicas/0 in the same run.
func BenchmarkNodeCallsReplicated(b *testing.B) {
	for _, replicas := range []int{0, 1, 2} {
		b.Run(map[int]string{0: "replicas=0", 1: "replicas=1", 2: "replicas=2"}[replicas], func(b *testing.B) {
			benchReplicated(b, replicas)
		})
	}
}

// benchReplica is the far end of a replication stream: it reads the
// node's frames and answers their Syncs.
type benchReplica struct {
	id  SessionID
	dec *wire.Decoder
	enc *wire.Encoder
	msg wire.Message
	buf []byte
}

func benchReplicated(b *testing.B, replicas int) {
	const sessions = 1000
	n, clients, now := benchNode(b, sessions, 10, false)
	n.cfg.Cluster = ClusterConfig{Key: []byte("a cluster key for the benchmark"), Size: replicas + 1}
	var reps []*benchReplica
	for r := range replicas {
		id, err := n.ConnectPeer(now, uint8(100+r), "replica")
		if err != nil {
			b.Fatal(err)
		}
		rp := &benchReplica{id: id}
		rp.dec, _ = wire.NewDecoder(n.cfg.Wire)
		rp.enc, _ = wire.NewEncoder(n.cfg.Wire)
		reps = append(reps, rp)
	}
	byID := map[SessionID]*benchReplica{}
	for _, rp := range reps {
		byID[rp.id] = rp
	}
	// answer reads the node's output, answers each replica's last Sync
	// with an acknowledgement (untimed) and has the node handle it.
	var untimed int64 // CPU spent in the replicas' side, not the node's
	answer := func(now int64) {
		b.StopTimer()
		c0 := cpuTime()
		var acks [][]byte
		var to []SessionID
		for _, o := range n.Ready() {
			rp := byID[o.Session]
			if rp == nil {
				continue
			}
			var seq uint64
			for _, f := range o.Frames {
				if err := rp.dec.Start(f); err != nil {
					b.Fatal(err)
				}
				for {
					err := rp.dec.Next(&rp.msg)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if rp.msg.Kind == wire.KindSync {
						seq = max(seq, rp.msg.Sync.Seq)
					}
				}
			}
			if seq > 0 {
				rp.buf = rp.enc.BeginFrame(rp.buf[:0])
				rp.buf, _ = rp.enc.Append(rp.buf, &wire.Message{Kind: wire.KindSync, Sync: wire.Sync{Ack: seq}})
				acks = append(acks, rp.buf)
				to = append(to, rp.id)
			}
		}
		untimed += cpuTime() - c0
		b.StartTimer()
		for i, f := range acks {
			n.Step(now, to[i], f)
		}
	}
	answer(now)
	step := int64(16*time.Millisecond) / 1000
	frames := make([][]byte, b.N)
	for i := range frames {
		c := clients[i%sessions]
		t := now + int64(i+1)*step
		buf := c.enc.BeginFrame(nil)
		buf, err := c.enc.Append(buf, &wire.Message{Kind: wire.KindCall, Call: wire.Call{
			ID: wire.CallID{Creator: c.creator, Seq: uint64(i)}, Name: "step", Args: []byte{byte(i)},
			Time: wire.Time{Nanos: t - int64(30*time.Millisecond), Creator: c.creator}}})
		if err != nil {
			b.Fatal(err)
		}
		frames[i] = buf
	}
	out0 := n.Stats().ReplicatedOut
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += step
		n.Step(now, clients[i%sessions].id, frames[i])
		if i%1000 == 999 {
			n.Tick(now)
			answer(now)
		}
	}
	n.Tick(now)
	answer(now)
	b.StopTimer()
	// CPU time of the process per call, the replicas' side left out: on
	// a shared machine, wall time per call measures the other load as
	// much as this code.
	b.ReportMetric(float64(cpuTime()-cpu0-untimed)/float64(b.N), "cpu-ns/call")
	st := n.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(st.ReplicatedOut-out0)/float64(b.N), "replicated/call")
	if st.CallsRejected+st.CallErrors > 0 {
		b.Fatalf("calls failed: %+v", st)
	}
	if len(n.waits) > 1000*replicas+1000 {
		b.Fatalf("%d results still waiting for acknowledgements", len(n.waits))
	}
}

// cpuTime is this process's user and system CPU time, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
