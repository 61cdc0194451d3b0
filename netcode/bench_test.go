package netcode

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const benchPaths = 100_000

func benchPathNames() []string {
	names := make([]string, benchPaths)
	for i := range names {
		names[i] = "players/" + strconv.Itoa(i) + "/pos"
	}
	return names
}

// benchRegistry: "move" reads 4 paths and writes 2 (args pick the paths).
func benchRegistry(names []string) *Registry {
	r := NewRegistry()
	r.Register("move", func(tx *Tx, args []byte) error {
		var sum byte
		for i := 0; i < 4; i++ {
			v, _ := tx.Read(names[int(getU64(args[i*8:]))])
			if len(v) > 0 {
				sum += v[0]
			}
		}
		tx.Write(names[int(getU64(args[0:]))], []byte{sum, 1, 2, 3, 4, 5, 6, 7})
		tx.Write(names[int(getU64(args[8:]))], []byte{sum, 7, 6, 5, 4, 3, 2, 1})
		return nil
	}, FuncOptions{})
	return r
}

// BenchmarkCommitTx runs and commits a transaction of 4 reads and 2 writes
// against a store of 100,000 paths with history (each path written 4 times
// before the clock starts, finality ticking every 1,000 transactions).
// Compare with BenchmarkCommitTxBaseline.
func BenchmarkCommitTx(b *testing.B) {
	cfg, s, reg, now := commitTxStore(b)
	step := int64(benchStep)
	r := rand.New(rand.NewPCG(1, 2))
	args := make([]byte, 32)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 4; k++ {
			putU64(args[k*8:], uint64(r.IntN(benchPaths)))
		}
		now += step
		out := reg.Run(s, &cfg, Call{ID: CallID{Creator: uint32(i%1000 + 1), Seq: uint64(i)}, Name: "move", Args: args, Time: now}, 0)
		if _, err := s.Commit(now, &out); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			s.Tick(now)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu0)
}

// commitTxStore builds BenchmarkCommitTx's store: 100,000 paths each
// written 4 times, all of it final. It returns the time of the last Tick.
func commitTxStore(b *testing.B) (Config, *Store, *Registry, int64) {
	names := benchPathNames()
	cfg := DefaultConfig()
	s := mustStore(b, cfg)
	reg := benchRegistry(names)
	now := int64(time.Second)
	for round := 0; round < 4; round++ {
		for i, n := range names {
			now += 100
			mustInsert(b, s, now, PathValue{Path: n, Time: Time{Nanos: now, Creator: uint32(i + 1)}, Value: []byte{byte(round), 0, 0, 0, 0, 0, 0, 0}})
		}
	}
	// Settle the setup: its values become final history before the clock
	// starts, so the timed loop pays only for the finality of its own
	// writes (steady state: every committed value is finalized later).
	now += int64(2 * time.Second)
	s.Tick(now)
	return cfg, s, reg, now
}

// BenchmarkCommitTxPhases is BenchmarkCommitTx with each phase timed
// apart (wall clock around each call): run-ns (the function's run, its
// reads and the outcome), commit-ns and tick-ns (finality), per op. The
// clock reads add to ns/op; the phases show where a change moved time.
func BenchmarkCommitTxPhases(b *testing.B) {
	cfg, s, reg, now := commitTxStore(b)
	step := int64(benchStep)
	r := rand.New(rand.NewPCG(1, 2))
	args := make([]byte, 32)
	var run, commit, tick time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 4; k++ {
			putU64(args[k*8:], uint64(r.IntN(benchPaths)))
		}
		now += step
		t0 := time.Now()
		out := reg.Run(s, &cfg, Call{ID: CallID{Creator: uint32(i%1000 + 1), Seq: uint64(i)}, Name: "move", Args: args, Time: now}, 0)
		t1 := time.Now()
		if _, err := s.Commit(now, &out); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		run += t1.Sub(t0)
		commit += t2.Sub(t1)
		if i%1000 == 999 {
			s.Tick(now)
			tick += time.Since(t2)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(run)/float64(b.N), "run-ns")
	b.ReportMetric(float64(commit)/float64(b.N), "commit-ns")
	b.ReportMetric(float64(tick)/float64(b.N), "tick-ns")
}

// reportCPU reports the process's CPU time per op since cpu0: on a shared
// machine, wall time per op measures the other load as much as the code.
func reportCPU(b *testing.B, cpu0 int64) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is this process's user and system CPU time, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCommitTxBaseline is the same 4 reads and 2 writes on a plain Go
// map from path to value, with no history, locks or validity.
func BenchmarkCommitTxBaseline(b *testing.B) {
	names := benchPathNames()
	m := make(map[string][]byte, benchPaths)
	for _, n := range names {
		m[n] = []byte{0, 0, 0, 0, 0, 0, 0, 0}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var idx [4]int
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range idx {
			idx[k] = r.IntN(benchPaths)
		}
		var sum byte
		for _, k := range idx {
			if v := m[names[k]]; len(v) > 0 {
				sum += v[0]
			}
		}
		m[names[idx[0]]] = []byte{sum, 1, 2, 3, 4, 5, 6, 7}
		m[names[idx[1]]] = []byte{sum, 7, 6, 5, 4, 3, 2, 1}
	}
	b.StopTimer()
	reportCPU(b, cpu0)
}

func putU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// BenchmarkLateWriteCascade inserts one late write that invalidates a chain
// of 1,000 dependent values (value i read value i-1). It reports ns per
// invalidated value beside ns/op for the whole cascade.
func BenchmarkLateWriteCascade(b *testing.B) {
	const chain = 1000
	names := make([]string, chain+1)
	for i := range names {
		names[i] = "chain/" + strconv.Itoa(i)
	}
	now := int64(10 * time.Second)
	build := func() *Store {
		s := mustStore(b, DefaultConfig())
		base := now - int64(500*time.Millisecond)
		mustInsert(b, s, now, PathValue{Path: names[0], Time: Time{Nanos: base, Creator: 1}, Value: []byte{1}})
		for i := 1; i <= chain; i++ {
			W := Time{Nanos: base + int64(i)*1000, Creator: 1}
			prev := Time{Nanos: base + int64(i-1)*1000, Creator: 1}
			mustInsert(b, s, now, PathValue{Path: names[i], Time: W, Value: []byte{1},
				Locks: []ReadLock{{Path: names[i-1], Start: prev, End: W}}})
		}
		return s
	}
	late := PathValue{Path: names[0], Time: Time{Nanos: now - int64(500*time.Millisecond) + 500, Creator: 2}, Value: []byte{2}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := build()
		b.StartTimer()
		ch, err := s.Insert(now, late)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch) != chain+1 {
			b.Fatalf("%d changes, want %d", len(ch), chain+1)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/chain, "ns/value")
}

// BenchmarkFinalValueMemory measures the heap held per final value (locks
// dropped), payload excluded: 1,000 paths × 100 final values of 8 bytes,
// history kept (MaxRewind large), then the payload bytes subtracted.
func BenchmarkFinalValueMemory(b *testing.B) {
	const paths, perPath, payload = 1000, 100, 8
	var perValue float64
	for i := 0; i < b.N; i++ {
		cfg := DefaultConfig()
		cfg.MaxRewind = 3 * time.Hour // keep every final value
		cfg.MaxChangeAge = time.Hour
		names := make([]string, paths)
		for p := range names {
			names[p] = fmt.Sprintf("m/%d", p)
		}
		now := int64(2 * time.Hour)
		var s *Store
		measure := func() uint64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		s = mustStore(b, cfg)
		// Every path holds one final value before measuring, so the path
		// records themselves are outside the measurement.
		for p, n := range names {
			mustInsert(b, s, now, PathValue{Path: n, Time: Time{Nanos: now - int64(time.Hour) + 1, Creator: uint32(p + 1)}, Value: make([]byte, payload)})
		}
		before := measure()
		for k := 1; k < perPath; k++ {
			for p, n := range names {
				W := Time{Nanos: now - int64(time.Hour) + int64(k)*1000, Creator: uint32(p + 1)}
				prev := Time{Nanos: now - int64(time.Hour) + int64(k-1)*1000, Creator: uint32(p + 1)}
				if k == 1 {
					prev.Nanos = now - int64(time.Hour) + 1
				}
				mustInsert(b, s, now, PathValue{Path: n, Time: W, Value: make([]byte, payload),
					Locks: []ReadLock{{Path: n, Start: prev, End: W}}})
			}
		}
		s.Tick(now + int64(time.Hour) + int64(time.Second))
		if st := s.Stats(); st.FinalValues != paths*perPath || st.LiveValues != 0 {
			b.Fatalf("stats %+v", st)
		}
		after := measure()
		n := float64(paths * (perPath - 1))
		perValue = (float64(after)-float64(before))/n - payload
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perValue, "B/final-value")
}

// benchStep is the game time between two committed transactions in
// BenchmarkCommitTx: 33 µs, i.e. 30,000 transactions per second (1,000
// players each making 30 calls a second), so about 63,000 values are live
// (inside MaxChangeAge) at any time.
var benchStep = 33 * time.Microsecond
