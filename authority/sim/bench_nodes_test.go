//go:build linux

package sim_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/authority/sim"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// clockThreadCPU is Linux's CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPU = 3

// threadCPU returns the calling thread's CPU time, ns (clock_gettime of
// CLOCK_THREAD_CPUTIME_ID: to the nanosecond, where getrusage counts
// whole microseconds or ticks).
func threadCPU() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPU, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}

// cpuServer times, in thread CPU, everything the simulator has its node
// do (not the final checks, Verify and Latest).
type cpuServer struct {
	sim.ShardServer
	cpu     *int64
	entries *int64 // timed entries, for the timer's own cost
}

func (s cpuServer) timed(f func()) {
	t := threadCPU()
	f()
	*s.cpu += threadCPU() - t
	*s.entries++
}

// NeedsReset is the adapter's, which the simulator looks for.
func (s cpuServer) NeedsReset() bool {
	r, ok := s.ShardServer.(interface{ NeedsReset() bool })
	return ok && r.NeedsReset()
}

// timerCost returns the CPU one timed entry adds by itself (two
// clock_gettime calls), measured over 10,000 empty ones.
func timerCost() float64 {
	var cpu, n int64
	s := cpuServer{cpu: &cpu, entries: &n}
	for range 10000 {
		s.timed(func() {})
	}
	return float64(cpu) / float64(n)
}

func (s cpuServer) Connect(now int64, remote string) (id uint64, err error) {
	s.timed(func() { id, err = s.ShardServer.Connect(now, remote) })
	return id, err
}
func (s cpuServer) Step(now int64, id uint64, frame []byte) {
	s.timed(func() { s.ShardServer.Step(now, id, frame) })
}
func (s cpuServer) Disconnect(now int64, id uint64) {
	s.timed(func() { s.ShardServer.Disconnect(now, id) })
}
func (s cpuServer) Tick(now int64) { s.timed(func() { s.ShardServer.Tick(now) }) }
func (s cpuServer) Ready(emit func(id uint64, frames [][]byte, close bool, reason string)) {
	// The frames are gathered inside the timer and handed to the
	// simulator outside it.
	type out struct {
		id     uint64
		frames [][]byte
		close  bool
		reason string
	}
	var outs []out
	s.timed(func() {
		s.ShardServer.Ready(func(id uint64, frames [][]byte, close bool, reason string) {
			outs = append(outs, out{id, frames, close, reason})
		})
	})
	for _, o := range outs {
		emit(o.id, o.frames, o.close, o.reason)
	}
}
func (s cpuServer) ConnectPeer(now int64, id uint8, remote string) (sid uint64, err error) {
	s.timed(func() { sid, err = s.ShardServer.ConnectPeer(now, id, remote) })
	return sid, err
}
func (s cpuServer) PeerUp(now int64, id uint8)   { s.timed(func() { s.ShardServer.PeerUp(now, id) }) }
func (s cpuServer) PeerDown(now int64, id uint8) { s.timed(func() { s.ShardServer.PeerDown(now, id) }) }
func (s cpuServer) SetShardMap(now int64, m *shardmap.Map) {
	s.timed(func() { s.ShardServer.SetShardMap(now, m) })
}

// nodesWorkload is the run BenchmarkShardedNodes measures: 64 broadband
// clients for 10 s of play (moves, bumps, shoves and looks), no fault.
func nodesWorkload() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = 7
	cfg.Profile, _ = lagsim.Preset("broadband")
	cfg.Clients = 64
	cfg.Warmup = 2 * time.Second
	cfg.Active = 10 * time.Second
	cfg.Quiet = 3 * time.Second
	cfg.VerifyEvery = 0
	cfg.Workload.Looks = 1
	cfg.Workload.Counters = 8
	return cfg
}

// BenchmarkShardedNodes runs one workload (nodesWorkload, same seed)
// on 1 node, and sharded over 2 and 3 nodes (players/, counters/ and
// seen/ in as many ranges as nodes, each of 1 or 2 owners; every node
// watches what the clients watch), and reports the node CPU per call the
// clients made: in all (cpu-ns/call) and on the busiest node
// (busiest-ns/call), whose CPU bounds the cluster's throughput. Thread
// CPU time (CLOCK_THREAD_CPUTIME_ID, Linux) of the simulator's goroutine, locked to
// its thread, inside the nodes' entry points only.
func BenchmarkShardedNodes(b *testing.B) {
	for _, c := range []struct{ nodes, owners int }{{1, 1}, {2, 1}, {2, 2}, {3, 1}, {3, 2}} {
		b.Run(fmt.Sprintf("nodes=%d/owners=%d", c.nodes, c.owners), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var total, busiest, calls float64
			tc := timerCost()
			for range b.N {
				cfg := nodesWorkload()
				cpu := make([]int64, c.nodes)
				entries := make([]int64, c.nodes)
				var s *sim.Sim
				var err error
				if c.nodes == 1 {
					node, nerr := authority.NewNode(authority.DefaultConfig(sim.Registry()))
					if nerr != nil {
						b.Fatal(nerr)
					}
					s, err = sim.New(cfg, cpuServer{sim.NodeServer(node).(sim.ShardServer), &cpu[0], &entries[0]}, sim.Registry())
				} else {
					cfg.Cluster = sim.DefaultClusterConfig()
					cfg.Cluster.Ranges = c.nodes
					cfg.Cluster.Replicas = c.owners
					mk := clusterNodes(b, c.nodes, sim.PlayersPrefix, sim.CountersPrefix, sim.SeenPrefix)
					s, err = sim.NewCluster(cfg, c.nodes, func(id uint8) sim.Server {
						return cpuServer{mk(id).(sim.ShardServer), &cpu[id-1], &entries[id-1]}
					}, sim.Registry())
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
				r := s.Report()
				var sum, top float64
				for i, x := range cpu {
					net := float64(x) - tc*float64(entries[i])
					sum += net
					top = max(top, net)
				}
				total += sum / float64(r.Calls)
				busiest += top / float64(r.Calls)
				calls += float64(r.Calls)
			}
			b.ReportMetric(total/float64(b.N), "cpu-ns/call")
			b.ReportMetric(busiest/float64(b.N), "busiest-ns/call")
			b.ReportMetric(calls/float64(b.N), "calls")
			b.ReportMetric(tc, "timer-ns/entry")
		})
	}
}
