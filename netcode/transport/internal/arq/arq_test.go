package arq

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

func testConfig() Config {
	return Config{MTU: 1200, SendWindow: 128, RecvWindow: 128, Interval: 10, NoDelay: true, FastResend: 2, NoCongestion: true}
}

// link is a simulated one-way path on virtual time: each packet is lost
// with probability loss, else delivered after delay plus up to jitter ms
// (so packets reorder).
type link struct {
	rng        *rand.Rand
	loss       float64
	delay, jit uint32
	queue      []flight
	sent       int
}

type flight struct {
	at  uint32
	pkt []byte
}

func (l *link) send(now uint32, pkt []byte) {
	l.sent++
	if l.rng.Float64() < l.loss {
		return
	}
	at := now + l.delay
	if l.jit > 0 {
		at += uint32(l.rng.IntN(int(l.jit) + 1))
	}
	l.queue = append(l.queue, flight{at, bytes.Clone(pkt)})
}

// due removes and returns the packets due at now.
func (l *link) due(now uint32) [][]byte {
	var out [][]byte
	k := 0
	for _, f := range l.queue {
		if diff(now, f.at) >= 0 {
			out = append(out, f.pkt)
		} else {
			l.queue[k] = f
			k++
		}
	}
	l.queue = l.queue[:k]
	return out
}

// TestStreamOverLossyLink sends a random byte stream each way between two
// Conns over links with loss, jitter and reordering, on virtual time
// driven only by Deadline, and checks both streams arrive intact.
func TestStreamOverLossyLink(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		for _, loss := range []float64{0, 0.05, 0.2} {
			rng := rand.New(rand.NewPCG(seed, 99))
			a, b := New(7, testConfig()), New(7, testConfig())
			ab := &link{rng: rng, loss: loss, delay: 20, jit: 15}
			ba := &link{rng: rng, loss: loss, delay: 20, jit: 15}
			wantA := make([]byte, 200_000) // a → b
			wantB := make([]byte, 50_000)  // b → a
			for i := range wantA {
				wantA[i] = byte(rng.Uint32())
			}
			for i := range wantB {
				wantB[i] = byte(rng.Uint32())
			}
			var gotA, gotB []byte
			offA, offB := 0, 0
			now := uint32(1000)
			for step := 0; step < 200_000 && (len(gotA) < len(wantA) || len(gotB) < len(wantB)); step++ {
				// Write in chunks as a producer would, keeping the queue bounded.
				if offA < len(wantA) && a.Pending() < 256 {
					k := min(len(wantA)-offA, 1+rng.IntN(3000))
					a.Write(wantA[offA : offA+k])
					offA += k
				}
				if offB < len(wantB) && b.Pending() < 256 {
					k := min(len(wantB)-offB, 1+rng.IntN(500))
					b.Write(wantB[offB : offB+k])
					offB += k
				}
				for _, p := range ab.due(now) {
					if err := b.Input(now, p, true); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range ba.due(now) {
					if err := a.Input(now, p, true); err != nil {
						t.Fatal(err)
					}
				}
				gotA = append(gotA, b.Stream()...)
				b.Consume(len(b.Stream()))
				gotB = append(gotB, a.Stream()...)
				a.Consume(len(a.Stream()))
				for _, x := range []struct {
					c *Conn
					l *link
				}{{a, ab}, {b, ba}} {
					if d, ok := x.c.Deadline(now); x.c.Owed(false) || ok && diff(now, d) >= 0 {
						if err := x.c.Flush(now, func(p []byte) { x.l.send(now, p) }); err != nil {
							t.Fatalf("seed %d loss %v: %v", seed, loss, err)
						}
					}
				}
				now++
			}
			if !bytes.Equal(gotA, wantA) || !bytes.Equal(gotB, wantB) {
				t.Fatalf("seed %d loss %v: got %d/%d and %d/%d bytes, or different", seed, loss, len(gotA), len(wantA), len(gotB), len(wantB))
			}
			if loss > 0 && a.Retransmits == 0 {
				t.Errorf("seed %d loss %v: no retransmission counted", seed, loss)
			}
			srtt, _, _ := a.RTT()
			if srtt < 40 {
				t.Errorf("seed %d: srtt %d ms below the 40 ms minimum round trip", seed, srtt)
			}
			// Both quiet: nothing is owed, so no timer is needed.
			for range 200 {
				for _, p := range ab.due(now) {
					b.Input(now, p, true)
				}
				for _, p := range ba.due(now) {
					a.Input(now, p, true)
				}
				for _, x := range []struct {
					c *Conn
					l *link
				}{{a, ab}, {b, ba}} {
					if d, ok := x.c.Deadline(now); ok && diff(now, d) >= 0 {
						x.c.Flush(now, func(p []byte) { x.l.send(now, p) })
					}
				}
				now++
			}
			if _, ok := a.Deadline(now); ok && a.Pending() == 0 {
				t.Errorf("seed %d loss %v: an idle conversation still wants a timer", seed, loss)
			}
		}
	}
}

// TestInteropKCPGo runs a byte stream each way between a Conn and
// kcp-go's own KCP state machine (message mode, the only one its exported
// API offers: its fragments arrive here as stream bytes, and this core's
// segments arrive there as one message each) over a lossy in-memory link.
// kcp-go reads the wall clock, so the test runs in real time, about a
// second.
func TestInteropKCPGo(t *testing.T) {
	start := time.Now()
	ms := func() uint32 { return uint32(time.Since(start) / time.Millisecond) }
	rng := rand.New(rand.NewPCG(5, 5))
	var toOurs, toTheirs [][]byte
	lossy := func(q *[][]byte, p []byte) {
		if rng.Float64() < 0.1 {
			return
		}
		*q = append(*q, bytes.Clone(p))
	}
	ours := New(42, testConfig())
	theirs := kcp.NewKCP(42, func(buf []byte, size int) { lossy(&toOurs, buf[:size]) })
	theirs.NoDelay(1, 10, 2, 1)
	theirs.WndSize(128, 128)
	theirs.SetMtu(1200)

	want := make([]byte, 100_000)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	var gotOurs, gotTheirs []byte
	off := 0
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(20 * time.Second)
	for (len(gotOurs) < len(want) || len(gotTheirs) < len(want)) && time.Now().Before(deadline) {
		if off < len(want) && ours.Pending() < 100 && theirs.WaitSnd() < 100 {
			k := min(len(want)-off, 4000)
			ours.Write(want[off : off+k])
			theirs.Send(want[off : off+k])
			off += k
		}
		now := ms()
		for _, p := range toOurs {
			if err := ours.Input(now, p, true); err != nil {
				t.Fatal(err)
			}
		}
		toOurs = toOurs[:0]
		for _, p := range toTheirs {
			theirs.Input(p, kcp.IKCP_PACKET_REGULAR, false)
		}
		toTheirs = toTheirs[:0]
		gotOurs = append(gotOurs, ours.Stream()...)
		ours.Consume(len(ours.Stream()))
		for {
			n := theirs.Recv(buf)
			if n < 0 {
				break
			}
			gotTheirs = append(gotTheirs, buf[:n]...)
		}
		if d, ok := ours.Deadline(now); ours.Owed(false) || ok && diff(now, d) >= 0 {
			ours.Flush(now, func(p []byte) { lossy(&toTheirs, p) })
		}
		theirs.Update()
		time.Sleep(time.Millisecond)
	}
	if !bytes.Equal(gotOurs, want) || !bytes.Equal(gotTheirs, want) {
		t.Fatalf("got %d and %d of %d bytes, or different", len(gotOurs), len(gotTheirs), len(want))
	}
}

func TestInputRejects(t *testing.T) {
	c := New(1, testConfig())
	seg := func(conv uint32, cmd byte, n uint32, data int) []byte {
		p := make([]byte, Overhead+data)
		p[0] = byte(conv)
		p[4] = cmd
		p[20] = byte(n)
		return p
	}
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"short", make([]byte, Overhead-1)},
		{"other conversation", seg(2, cmdPush, 0, 0)},
		{"truncated", seg(1, cmdPush, 10, 5)},
		{"unknown command", seg(1, 99, 0, 0)},
	}
	for _, tt := range tests {
		if err := c.Input(0, tt.pkt, true); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if c.Input(0, seg(1, cmdPush, 3, 3), true) != nil || !bytes.Equal(c.Stream(), []byte{0, 0, 0}) {
		t.Fatalf("a valid push was not taken: %q", c.Stream())
	}
}
