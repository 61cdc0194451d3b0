package transport

import (
	"bufio"
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"testing/synctest"
)

// TestSessionRecvOverflowBytes: the receive queue is bounded in bytes too
// (Config.RecvQueueBytes), not only in frames, so an owner that falls
// behind holds at most that much of a peer's data before the session is
// closed.
func TestSessionRecvOverflowBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.RecvQueueFrames = 1000
		cfg.RecvQueueBytes = 2500 // two and a half frames of 1000 bytes
		a, b := pipePair(t, cfg)
		for range 3 {
			if err := a.Send(make([]byte, 1000), Data); err != nil {
				t.Fatal(err)
			}
		}
		<-b.Done()
		if err := b.Err(); !errors.Is(err, ErrRecvOverflow) {
			t.Fatalf("Err = %v, want ErrRecvOverflow", err)
		}
		for range 2 {
			if _, err := b.Recv(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSessionIdleMemory: what a session allocates for itself, as the
// listener and the dialer make it, stays small while it is idle: the
// reader's buffer, the writer's batch buffer and the receive queue grow
// with use instead of being allocated whole up front (they were 64 KiB,
// 64 KiB and 48 KiB a session). kcp-go's own per-session buffers are not
// counted here; docs/BENCHMARKS.md states the whole.
func TestSessionIdleMemory(t *testing.T) {
	const n = 64
	const budget = 16 << 10 // bytes a session may allocate before it carries anything
	synctest.Test(t, func(t *testing.T) {
		cfg := Internet()
		var ms runtime.MemStats
		pipes := make([]net.Conn, 0, 2*n)
		for range n {
			a, b := net.Pipe()
			pipes = append(pipes, a, b)
		}
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		var ss []*Session
		for i := range n {
			c := pipes[2*i]
			ss = append(ss, newSession(cfg, c, bufio.NewReaderSize(c, readBufferSize), nil, c.LocalAddr(), c.RemoteAddr(), nil))
		}
		synctest.Wait() // the reader and writer goroutines started and are waiting
		runtime.ReadMemStats(&ms)
		per := (ms.TotalAlloc - before) / n
		for _, s := range ss {
			s.finish(&CloseError{Reason: "test over"})
		}
		for _, p := range pipes {
			p.Close()
		}
		t.Logf("%d bytes allocated per idle session", per)
		if per > budget {
			t.Errorf("an idle session allocated %d bytes, budget %d", per, budget)
		}
	})
}
